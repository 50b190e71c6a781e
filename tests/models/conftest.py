from tests.fixtures_llama import llama_server, random_gguf, scripted_gguf  # noqa: F401
