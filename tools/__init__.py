"""Real, offline, safe tools for the example assistant.

Every tool validates its input and reports bad input or refusals as a tool message
(``handle_tool_error`` / ``handle_validation_error``), so a mistake by the model
never crashes the run:

- :data:`calculator`: arithmetic on ``ast`` with no ``eval`` and bounded sizes;
- :data:`unit_converter`: unit conversion over a fixed table;
- :class:`DocumentFolder`: ``search_documents`` / ``read_document`` over a local folder,
  with no path escape;
- :class:`DecisionLogSQL`: ``query_decision_log``, read-only SQL over the decision log.
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.tools import BaseTool

from tools.calculator import calculator
from tools.decision_sql import DecisionLogSQL
from tools.documents import DocumentFolder
from tools.units import unit_converter

__all__ = ["DecisionLogSQL", "DocumentFolder", "assistant_tools", "calculator", "unit_converter"]


def assistant_tools(*, docs_dir: str | Path | None = None, database_url: str | None = None) -> list[BaseTool]:
    """The assistant's tool set.

    Args:
        docs_dir: A folder of ``.md``/``.txt``/``.rst`` documents to search (omitted when ``None``).
        database_url: The decision log's SQL URL for ``query_decision_log`` (omitted when
            ``None`` or ``memory://``).

    Returns:
        The calculator and unit converter, plus the document and SQL tools when configured.
    """
    tools: list[BaseTool] = [calculator, unit_converter]
    if docs_dir is not None:
        tools.extend(DocumentFolder(docs_dir).tools())
    if database_url and not database_url.strip().startswith("memory"):
        tools.append(DecisionLogSQL(database_url).tool())
    return tools
