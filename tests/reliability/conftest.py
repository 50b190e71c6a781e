from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401
from tests.fixtures_service import serve_app  # noqa: F401
