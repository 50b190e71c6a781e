from tests.fixtures_deploy import scripted_models  # noqa: F401
from tests.fixtures_llama import random_gguf, scripted_family, scripted_gguf, vocab_dir  # noqa: F401
from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401
