"""A read-only SQL tool over the decision log (SQLite or PostgreSQL).

Read-only is enforced by the database, not by parsing the query:

- PostgreSQL: the tool connects as a reader role that may only ``SELECT`` the
  ``rpra_*`` tables, and refuses to start on a role that can do more
  (:func:`check_reader_role`; :func:`create_reader_role` makes such a role). Each query
  is a subquery, sent as one statement with the extended protocol, in a ``READ ONLY``
  transaction that is always rolled back, with a server-side ``statement_timeout``, a
  server-side ``LIMIT`` and cells cut by the server (``tools/_sql_postgres.py``).
- SQLite: a ``mode=ro`` + ``query_only`` connection with an authorizer, SQLite's limit
  API on value sizes, a progress-handler time limit and row-by-row fetching
  (``tools/_sql_sqlite.py``).

:func:`check_query` (one ``SELECT``/``WITH`` statement, no writing keyword outside
literals) stays as a first guard that gives the model a clear message early; nothing
relies on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.redact import scrub_secrets
from rpra_agent.store._url import resolve_url
from tools._common import validation_message
from tools._sql_postgres import check_reader_role, create_reader_role, reader_role_sql, run_postgres
from tools._sql_sqlite import run_sqlite

__all__ = ["DecisionLogSQL", "SQLRefused", "check_query", "check_reader_role", "create_reader_role", "reader_role_sql"]

MAX_QUERY_CHARS = 5000
#: The tool schema's ``maxLength``: llama.cpp's JSON-schema grammar fails on 5000.
MAX_TOOL_QUERY_CHARS = 1000
_FORBIDDEN = frozenset(
    "insert update delete drop alter create attach detach pragma truncate grant revoke vacuum copy call do lock "
    "set reset listen notify unlisten execute prepare deallocate into merge upsert reindex analyze comment "
    "security refresh cluster discard load import begin commit rollback savepoint release checkpoint abort "
    "load_extension readfile writefile edit fts3_tokenizer pg_read_file pg_read_binary_file pg_ls_dir pg_stat_file "
    "lo_import lo_export lo_get lo_put lo_from_bytea lo_create lo_unlink dblink dblink_exec pg_sleep pg_sleep_for "
    "pg_sleep_until set_config pg_terminate_backend pg_cancel_backend pg_reload_conf pg_promote pg_rotate_logfile "
    "pg_switch_wal pg_create_restore_point nextval setval currval query_to_xml table_to_xml database_to_xml "
    "schema_to_xml cursor_to_xml query_to_xml_and_xmlschema table_to_xml_and_xmlschema".split()
)
# Comments; E'...' strings (backslash escapes); '...' strings; "identifiers"; $tag$...$tag$ not glued to a word.
_LEX = re.compile(
    r"--[^\n]*|/\*.*?(\*/|$)|(?<![\w$])[eE]'(?:[^'\\]|\\.|'')*('|$)|'(?:[^']|'')*('|$)"
    r"|\"(?:[^\"]|\"\")*(\"|$)|(?<![\w$])\$([A-Za-z_]\w*|)\$.*?(\$\5\$|$)",
    re.S,
)


class SQLRefused(ValueError):
    """The query was refused before it ran (not read-only, several statements, too long ...)."""


def _strip(sql: str) -> str:
    """The query with comments removed and literals blanked (quoted identifiers kept as words)."""

    def blank(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith(("--", "/*")):
            return " "
        if token.startswith('"'):
            return " " + re.sub(r"\W", "_", token.strip('"')) + " "
        return " '' "

    return _LEX.sub(blank, sql)


def check_query(sql: str) -> str:
    """Validate a query for the read-only tool and return it without a trailing ``;``.

    Raises:
        SQLRefused: with the reason, when the query is not a single read-only SELECT.
    """
    text = sql.strip()
    if not text:
        raise SQLRefused("the query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise SQLRefused(f"the query is longer than {MAX_QUERY_CHARS} characters")
    bare = _strip(text).strip()
    while bare.endswith(";"):
        bare = bare[:-1].rstrip()
        text = text.rstrip()[:-1] if text.rstrip().endswith(";") else text
    if ";" in bare:
        raise SQLRefused("only one statement is allowed (found ';' inside the query)")
    words = re.findall(r"[a-z_][a-z0-9_]*", bare.lower())
    if not words or words[0] not in ("select", "with"):
        raise SQLRefused("only read-only SELECT (or WITH ... SELECT) queries are allowed")
    bad = sorted(set(words) & _FORBIDDEN)
    if bad:
        raise SQLRefused(f"the query uses {', '.join(bad)}, which is not allowed in a read-only query")
    return text.rstrip().rstrip(";").rstrip()


def _cell(value: Any, width: int) -> str:
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else "NULL" if value is None else str(value)
    text = text.replace("\t", " ").replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _format(columns: Sequence[str], rows: Sequence[Sequence[Any]], limit: int, width: int) -> str:
    shown = rows[:limit]
    lines = ["\t".join(columns), *("\t".join(_cell(v, width) for v in row) for row in shown)]
    note = f"({len(shown)} row{'s' if len(shown) != 1 else ''}"
    note += f"; stopped at the limit of {limit}, refine the query)" if len(rows) > limit else ")"
    return "\n".join(lines + [note])


class DecisionLogSQL:
    """Runs read-only queries on the decision log, with least privilege the database enforces.

    On PostgreSQL, ``url`` must name a reader role (see :func:`create_reader_role`): the
    constructor checks the role's privileges and refuses one that can write, create
    objects or read a table outside the decision log. On SQLite the file is opened
    read-only. :func:`check_query` runs first, but only as a first guard.

    Args:
        url: The decision log's database URL (``sqlite:///...`` or ``postgresql://reader@...``).
        max_rows: The largest row limit a query may ask for.
        timeout_s: Time limit per query (a progress handler on SQLite, ``statement_timeout`` on PostgreSQL).
        cell_chars: Longer cells are cut (server-side on PostgreSQL).
        max_value_bytes: SQLite's limit on any string or blob a query makes or reads.
        max_columns: The most columns a result may have.

    Raises:
        ConfigError: when the URL is not an SQL database (e.g. ``memory://``), or the
            PostgreSQL role may do more than read the decision log.
    """

    def __init__(self, url: str, *, max_rows: int = 200, timeout_s: float = 5.0, cell_chars: int = 200,
                 max_value_bytes: int = 1_000_000, max_columns: int = 64) -> None:  # fmt: skip
        db = resolve_url(url)
        if db is None or (db.dialect == "sqlite" and db.sqlite_path is None):
            raise ConfigError(f"the SQL tool needs an SQLite file or PostgreSQL database, not {scrub_secrets(url)!r}")
        self.db, self.max_rows, self.timeout_s = db, max_rows, timeout_s
        self.cell_chars, self.max_value_bytes, self.max_columns = cell_chars, max_value_bytes, max_columns
        if db.dialect == "postgresql":
            check_reader_role(db.libpq, timeout_s=timeout_s)

    def _sqlite(self, sql: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
        path = self.db.sqlite_path
        if path is None or not path.exists():
            raise ToolException(f"Error: the decision log {path} does not exist yet")
        return run_sqlite(path, sql, limit, timeout_s=self.timeout_s, cell_chars=self.cell_chars,
                          max_value_bytes=self.max_value_bytes, max_columns=self.max_columns)  # fmt: skip

    def _postgres(self, sql: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
        return run_postgres(self.db.libpq, sql, limit, timeout_s=self.timeout_s, cell_chars=self.cell_chars,
                            max_columns=self.max_columns)  # fmt: skip

    def query(self, sql: str, limit: int = 50) -> str:
        """Run one read-only query and format at most ``limit`` rows as tab-separated text.

        Raises:
            SQLRefused: when validation refuses the query.
            ToolException: when the database rejects it (a message for the model).
        """
        limit = max(1, min(int(limit), self.max_rows))
        statement = check_query(sql)
        try:
            if self.db.dialect == "sqlite":
                columns, rows = self._sqlite(statement, limit)
            else:
                columns, rows = self._postgres(statement, limit)
        except (SQLRefused, ToolException):
            raise
        except Exception as exc:  # the database's own refusal or error, reported to the model
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "interrupted" in message or "statement timeout" in message:
                message += f" (the time limit is {self.timeout_s:g} s: narrow the query)"
            raise ToolException(f"Error: the database refused the query: {message}") from None
        return _format(columns, rows, limit, self.cell_chars)

    def tool(self) -> BaseTool:
        """The ``query_decision_log`` tool."""

        def query_decision_log(sql: str, limit: int = 50) -> str:
            try:
                return self.query(sql, limit)
            except SQLRefused as exc:
                raise ToolException(f"Error: refused: {exc}") from None

        return StructuredTool.from_function(
            func=query_decision_log,
            name="query_decision_log",
            description=_describe(),
            args_schema=_QueryInput,
            handle_tool_error=True,
            handle_validation_error=validation_message,
        )


def _describe() -> str:
    try:
        from rpra_agent.store._schema import metadata

        tables = "; ".join(f"{t.name}({', '.join(c.name for c in t.columns)})" for t in metadata.sorted_tables)
    except ImportError:  # pragma: no cover - the store is part of the package
        tables = "rpra_runs, rpra_decisions, rpra_decision_legs, rpra_verdicts, rpra_artifacts"
    return (
        "Run ONE read-only SQL SELECT over the RPRA decision log and get rows back as tab-separated text. "
        "Writes, several statements and other tables are refused. Tables: " + tables
    )


class _QueryInput(BaseModel):
    sql: str = Field(
        description="A single SELECT statement over the rpra_* tables.", min_length=1, max_length=MAX_TOOL_QUERY_CHARS
    )
    limit: int = Field(default=50, ge=1, le=200, description="Maximum number of rows to return.")
