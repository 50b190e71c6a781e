from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401
