"""Real, offline, safe tools for the example assistant.

Every tool validates its input and reports bad input or refusals as a tool message
(``handle_tool_error`` / ``handle_validation_error``), so a mistake by the model
never crashes the run:

- :data:`calculator`: arithmetic on ``ast`` with no ``eval`` and bounded sizes;
- :data:`unit_converter`: unit conversion over a fixed table;
- :class:`DocumentFolder`: ``search_documents`` / ``read_document`` over a local folder,
  with an incremental index and one visibility rule for both;
- :class:`DecisionLogSQL`: ``query_decision_log``, read-only SQL over the decision log,
  read-only by the database's own privileges (see ``tools/decision_sql.py``).
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.tools import BaseTool

from tools.calculator import calculator
from tools.decision_sql import DecisionLogSQL
from tools.documents import DocumentFolder
from tools.units import unit_converter

__all__ = ["DecisionLogSQL", "DocumentFolder", "assistant_tools", "calculator", "unit_converter"]


def assistant_tools(
    *, docs_dir: str | Path | None = None, database_url: str | None = None, sql_url: str | None = None
) -> list[BaseTool]:
    """The assistant's tool set.

    Args:
        docs_dir: A folder of ``.md``/``.txt``/``.rst`` documents to search (omitted when ``None``).
        database_url: The decision log's SQL URL for ``query_decision_log`` (omitted when
            ``None`` or ``memory://``). An SQLite file is opened read-only.
        sql_url: The URL ``query_decision_log`` connects with, when it differs from
            ``database_url``: on PostgreSQL, a reader role's URL (see
            :func:`tools.decision_sql.create_reader_role`).

    Returns:
        The calculator and unit converter, plus the document and SQL tools when configured.

    Raises:
        ConfigError: when the SQL tool's PostgreSQL role may do more than read the
            decision log (the tool refuses to start).
    """
    tools: list[BaseTool] = [calculator, unit_converter]
    if docs_dir is not None:
        tools.extend(DocumentFolder(docs_dir).tools())
    url = sql_url or database_url
    if url and not url.strip().startswith("memory"):
        tools.append(DecisionLogSQL(url).tool())
    return tools
