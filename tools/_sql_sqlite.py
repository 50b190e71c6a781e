"""SQLite side of the SQL tool: a read-only connection with bounded time and memory.

- the file is opened read-only (``mode=ro``) and the connection set ``query_only``;
- an authorizer allows only reads of ``rpra_*`` tables and a whitelist of functions;
  ``printf``/``format`` are not on it (their time grows with a precision argument, not
  with the result: ``printf('%.*c', 2000000000, 'x')`` spends 6 s in one step that no
  progress handler interrupts), and ``instr``, ``replace``, ``trim``, ``ltrim`` and
  ``rtrim`` are replaced by linear-time Python versions (SQLite's are O(n*m));
- SQLite's limit API bounds every string or blob (``SQLITE_LIMIT_LENGTH``), the number
  of columns, the expression depth and the ``LIKE`` pattern length;
- a progress handler stops the statement after the time limit; page cache is small and
  temporary tables go to files, so sorting and recursive queries spill instead of growing;
- rows are fetched one at a time and every cell is cut at once, so at most one full row
  is held in memory.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["SQLITE_FUNCTIONS", "run_sqlite"]

SQLITE_FUNCTIONS = frozenset(
    "abs avg count coalesce group_concat string_agg ifnull iif instr length like glob lower upper ltrim rtrim trim "
    "max min nullif quote round substr substring sum total typeof date time datetime julianday "
    "strftime unixepoch replace hex unicode char sign ceil ceiling floor".split()
)
_RECURSIVE = getattr(sqlite3, "SQLITE_RECURSIVE", 33)


def _authorizer(action: int, arg1: str | None, arg2: str | None, dbname: str | None, source: str | None) -> int:
    if action in (sqlite3.SQLITE_SELECT, _RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_READ:
        if dbname is None:  # a common table expression or subquery, not a stored table
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_OK if dbname == "main" and (arg1 or "").startswith("rpra_") else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or "").lower()
        return sqlite3.SQLITE_OK if name in SQLITE_FUNCTIONS or name.startswith("json") else sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_DENY


def _text(value: Any) -> str | bytes | None:
    return value if value is None or isinstance(value, str | bytes) else str(value)


def _instr(haystack: Any, needle: Any) -> int | None:
    h, n = _text(haystack), _text(needle)
    if h is None or n is None:
        return None
    if isinstance(h, bytes) != isinstance(n, bytes):
        h, n = str(h), str(n)
    return h.find(n) + 1  # type: ignore[arg-type]


def _replacer(max_bytes: int) -> Any:
    def replace(text: Any, old: Any, new: Any) -> Any:
        t, o, n = _text(text), _text(old), _text(new)
        if t is None or o is None or n is None:
            return None
        if not o:
            return t
        if isinstance(t, bytes) or isinstance(o, bytes) or isinstance(n, bytes):
            t, o, n = (v if isinstance(v, bytes) else v.encode() for v in (t, o, n))
        if len(t) + t.count(o) * (len(n) - len(o)) > max_bytes:  # type: ignore[arg-type]
            raise ValueError("string or blob too big")  # checked before anything is allocated
        return t.replace(o, n)  # type: ignore[arg-type]

    return replace


def _trimmer(left: bool, right: bool) -> Any:
    """SQLite's trim/ltrim/rtrim in linear time (a set lookup per character; str.strip is O(n*m) too)."""

    def trim(text: Any, chars: Any = " ") -> Any:
        t, c = _text(text), _text(chars)
        if t is None or c is None:
            return None
        if isinstance(t, bytes) != isinstance(c, bytes):
            c = c.encode() if isinstance(c, str) else c.decode(errors="replace")
        strip = set(c)
        start, end = 0, len(t)
        while left and start < end and t[start] in strip:
            start += 1
        while right and end > start and t[end - 1] in strip:
            end -= 1
        return t[start:end]

    return trim


def _cut(value: Any, chars: int) -> Any:
    if isinstance(value, str | bytes) and len(value) > chars:
        return value[:chars]
    return value


def run_sqlite(path: Path, sql: str, limit: int, *, timeout_s: float, cell_chars: int, max_value_bytes: int,
               max_columns: int) -> tuple[list[str], list[tuple[Any, ...]]]:  # fmt: skip
    """Run one query on a read-only connection; at most ``limit + 1`` rows, cells cut to ``cell_chars + 1``.

    Raises:
        sqlite3.Error: the database's refusal (authorizer, time limit, too big a value ...).
    """
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=timeout_s)
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("PRAGMA cache_size = -8192")  # 8 MiB of pages; sorts and temp b-trees spill to files
        conn.execute("PRAGMA temp_store = FILE")
        for name, value in (
            ("SQLITE_LIMIT_LENGTH", max_value_bytes),
            ("SQLITE_LIMIT_SQL_LENGTH", 100_000),
            ("SQLITE_LIMIT_COLUMN", max_columns),
            ("SQLITE_LIMIT_EXPR_DEPTH", 200),
            ("SQLITE_LIMIT_COMPOUND_SELECT", 50),
            ("SQLITE_LIMIT_FUNCTION_ARG", 32),
            ("SQLITE_LIMIT_ATTACHED", 0),
            ("SQLITE_LIMIT_LIKE_PATTERN_LENGTH", 1000),
        ):
            conn.setlimit(getattr(sqlite3, name), value)
        conn.create_function("instr", 2, _instr, deterministic=True)
        conn.create_function("replace", 3, _replacer(max_value_bytes), deterministic=True)
        for name, left, right in (("trim", True, True), ("ltrim", True, False), ("rtrim", False, True)):
            conn.create_function(name, 1, _trimmer(left, right), deterministic=True)
            conn.create_function(name, 2, _trimmer(left, right), deterministic=True)
        deadline = time.monotonic() + timeout_s
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        conn.set_authorizer(_authorizer)
        cursor = conn.execute(sql)
        rows: list[tuple[Any, ...]] = []
        while len(rows) <= limit:
            row = cursor.fetchone()
            if row is None:
                break
            rows.append(tuple(_cut(v, cell_chars + 1) for v in row))
        return [d[0] for d in cursor.description or ()], rows
    finally:
        conn.close()
