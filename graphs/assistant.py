"""A tool-using assistant: calculator, unit conversion, document search and read-only SQL
over its own decision log. Each step (answer or tool action) is predicted and may be
deferred to the large model; tools run server-side inside the graph.

Environment: RPRA_SMALL_MODEL, RPRA_LARGE_MODEL (required), RPRA_DATABASE_URL,
RPRA_PARADIGM, RPRA_THRESHOLD or RPRA_CALIBRATION, RPRA_MAX_STEPS, RPRA_DOCS_DIR,
RPRA_SQL_URL (on PostgreSQL, a reader role's URL for the SQL tool; see
rpra_agent.service.config).
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # `tools` lives at the repository root, beside this folder
    sys.path.append(_ROOT)

from rpra_agent.service.config import Settings, build_components, build_graph  # noqa: E402
from rpra_agent.store._url import DEFAULT_SQLITE_FILE  # noqa: E402
from tools import assistant_tools  # noqa: E402

settings = Settings.from_env()
tools = assistant_tools(
    docs_dir=settings.docs_dir,
    database_url=settings.database_url or f"sqlite:///{DEFAULT_SQLITE_FILE}",
    sql_url=settings.sql_url,
)
components = build_components(settings)
graph = build_graph(components, tools, name="rpra_assistant")
