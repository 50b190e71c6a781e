"""A read-only SQL tool over the decision log (SQLite or PostgreSQL).

Three independent guards, so one mistake cannot turn into a write:

1. the statement is validated: exactly one ``SELECT``/``WITH`` statement, with no
   data-changing or file/server-touching keyword or function outside string literals;
2. the connection is read-only: SQLite is opened with ``mode=ro`` and an authorizer
   that allows only reads of the ``rpra_*`` tables and a whitelist of functions;
   PostgreSQL runs in a ``READ ONLY`` transaction that is always rolled back, and the
   query's plan (``EXPLAIN``) may only touch ``rpra_*`` relations;
3. resources are bounded: a row limit, truncated cells and a time limit.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from rpra_agent.store._url import resolve_url
from tools._common import validation_message

__all__ = ["DecisionLogSQL", "SQLRefused", "check_query"]

MAX_QUERY_CHARS = 5000
_FORBIDDEN = frozenset(
    "insert update delete drop alter create attach detach pragma truncate grant revoke vacuum copy call do lock "
    "set reset listen notify unlisten execute prepare deallocate into merge upsert reindex analyze comment "
    "security refresh cluster discard load import begin commit rollback savepoint release checkpoint "
    "load_extension readfile writefile edit fts3_tokenizer pg_read_file pg_read_binary_file pg_ls_dir pg_stat_file "
    "lo_import lo_export lo_get lo_put lo_from_bytea dblink dblink_exec pg_sleep pg_sleep_for pg_sleep_until "
    "set_config pg_terminate_backend pg_cancel_backend pg_reload_conf pg_promote pg_rotate_logfile "
    "pg_switch_wal pg_create_restore_point nextval setval currval query_to_xml".split()
)
_SQLITE_FUNCTIONS = frozenset(
    "abs avg count coalesce group_concat string_agg ifnull iif instr length like glob lower upper ltrim rtrim trim "
    "max min nullif printf format quote round substr substring sum total typeof date time datetime julianday "
    "strftime unixepoch replace hex unicode char sign ceil ceiling floor".split()
)
_LEX = re.compile(r"--[^\n]*|/\*.*?(\*/|$)|'(?:[^']|'')*('|$)|\"(?:[^\"]|\"\")*(\"|$)|\$(\w*)\$.*?(\$\4\$|$)", re.S)


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


def _cell(value: Any, width: int = 200) -> str:
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else "NULL" if value is None else str(value)
    text = text.replace("\t", " ").replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _format(columns: Sequence[str], rows: Sequence[Sequence[Any]], limit: int) -> str:
    shown = rows[:limit]
    lines = ["\t".join(columns), *("\t".join(_cell(v) for v in row) for row in shown)]
    note = f"({len(shown)} row{'s' if len(shown) != 1 else ''}"
    note += f"; stopped at the limit of {limit}, refine the query)" if len(rows) > limit else ")"
    return "\n".join(lines + [note])


class DecisionLogSQL:
    """Runs validated read-only queries on the decision log.

    Args:
        url: The decision log's database URL (``sqlite:///...`` or ``postgresql://...``).
        max_rows: The largest row limit a query may ask for.
        timeout_s: Time limit per query.

    Raises:
        ValueError: when the URL is not an SQL database (e.g. ``memory://``).
    """

    def __init__(self, url: str, *, max_rows: int = 200, timeout_s: float = 5.0) -> None:
        db = resolve_url(url)
        if db is None or (db.dialect == "sqlite" and db.sqlite_path is None):
            raise ValueError(f"the SQL tool needs an SQLite file or PostgreSQL database, not {url!r}")
        self.db, self.max_rows, self.timeout_s = db, max_rows, timeout_s

    # -- SQLite ------------------------------------------------------------------
    def _sqlite(self, sql: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
        path = self.db.sqlite_path
        if path is None or not path.exists():
            raise ToolException(f"Error: the decision log {path} does not exist yet")
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=self.timeout_s)
        try:
            deadline = time.monotonic() + self.timeout_s
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            conn.set_authorizer(_sqlite_authorizer)
            cursor = conn.execute(sql)
            return [d[0] for d in cursor.description or ()], cursor.fetchmany(limit + 1)
        finally:
            conn.close()

    # -- PostgreSQL --------------------------------------------------------------
    def _postgres(self, sql: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
        import psycopg

        with psycopg.connect(self.db.libpq, connect_timeout=max(1, int(self.timeout_s))) as conn:
            try:
                with conn.cursor() as cur:
                    cur.execute("SET TRANSACTION READ ONLY")
                    cur.execute(f"SET LOCAL statement_timeout = {int(self.timeout_s * 1000)}")
                    cur.execute("EXPLAIN (FORMAT JSON) " + sql)  # type: ignore[arg-type]
                    plan = cur.fetchone()
                    outside = sorted(r for r in _relations(plan[0] if plan else []) if not r.startswith("rpra_"))
                    if outside:
                        raise SQLRefused(f"only the decision log's rpra_* tables may be read, not {', '.join(outside)}")
                    cur.execute(sql)  # type: ignore[arg-type]
                    return [d.name for d in cur.description or ()], cur.fetchmany(limit + 1)
            finally:
                conn.rollback()

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
            raise ToolException(f"Error: the database refused the query: {message}") from None
        return _format(columns, rows, limit)

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


def _relations(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(str(plan["Relation Name"]))
        for value in plan.values():
            found |= _relations(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= _relations(item)
    return found


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, dbname: str | None, source: str | None) -> int:
    if action == sqlite3.SQLITE_SELECT or action == getattr(sqlite3, "SQLITE_RECURSIVE", 33):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_READ:
        return sqlite3.SQLITE_OK if (arg1 or "").startswith("rpra_") or not arg1 else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or "").lower()
        return sqlite3.SQLITE_OK if name in _SQLITE_FUNCTIONS or name.startswith("json") else sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_DENY


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
        description="A single SELECT statement over the rpra_* tables.", min_length=1, max_length=MAX_QUERY_CHARS
    )
    limit: int = Field(default=50, ge=1, le=200, description="Maximum number of rows to return.")
