from tests.fixtures_llama import (  # noqa: F401
    family_gguf,
    llama_server,
    random_gguf,
    scripted_family,
    scripted_gguf,
    vocab_dir,
)
