from tests.fixtures_llama import random_gguf, scripted_gguf  # noqa: F401
