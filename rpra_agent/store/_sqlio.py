"""Engines and the SQL that writes and reads the decision log (both dialects)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, Select, case, create_engine, event, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import StaticPool

from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ConfigError
from rpra_agent.store._rows import Record, decision_from_row
from rpra_agent.store._schema import decision_legs, decisions, runs, verdicts
from rpra_agent.store._url import DatabaseURL
from rpra_agent.store.base import DecisionFilter

__all__ = ["decision_query", "insert_records", "is_outage", "iter_decisions", "make_engine"]

_CHUNK = 500


def make_engine(db: DatabaseURL, *, busy_timeout_ms: int = 30_000, connect_timeout_s: int = 5) -> Engine:
    """An engine for ``db``: SQLite in WAL mode with a busy timeout, or PostgreSQL via psycopg 3."""
    if db.dialect == "sqlite":
        path = db.sqlite_path
        kwargs: dict[str, Any] = {"connect_args": {"timeout": busy_timeout_ms / 1000, "check_same_thread": False}}
        if path is None:
            kwargs["poolclass"] = StaticPool  # one shared in-memory database
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the directory of the SQLite file {path}: {exc.strerror}") from None
        engine = create_engine(db.url, **kwargs)
        event.listen(engine, "connect", _sqlite_connect(busy_timeout_ms, in_memory=path is None))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        db.url,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=4,
        connect_args={"connect_timeout": connect_timeout_s, "application_name": "rpra"},
    )


def _sqlite_connect(busy_timeout_ms: int, *, in_memory: bool) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun by _sqlite_begin
        cur = dbapi_conn.cursor()
        if not in_memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA synchronous=FULL")  # every commit reaches the disk; batching keeps that cheap
        cur.close()

    return on_connect


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front (BEGIN IMMEDIATE), so the busy timeout applies
    # instead of SQLite's immediate SQLITE_BUSY on a read-to-write upgrade.
    write = conn.get_execution_options().get("rpra_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable or busy (retry later), not that the data is bad."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, ConnectionError | TimeoutError)


_STATEMENTS: dict[str, dict[str, Any]] = {}


def _statements(dialect: str) -> dict[str, Any]:
    """The write statements for a dialect, built once (rebuilding them costs more than the insert)."""
    cached = _STATEMENTS.get(dialect)
    if cached is not None:
        return cached
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = insert(runs)
    ex = upsert.excluded
    newer = runs.c.updated_at <= ex.updated_at
    built = {
        "run": upsert.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "thread_id": func.coalesce(ex.thread_id, runs.c.thread_id),
                "paradigm": func.coalesce(ex.paradigm, runs.c.paradigm),
                "config": func.coalesce(ex.config, runs.c.config),
                "status": case((newer, ex.status), else_=runs.c.status),
                "updated_at": case((newer, ex.updated_at), else_=runs.c.updated_at),
            },
        ),
        "decision": insert(decisions).on_conflict_do_nothing(index_elements=["id"]),
        "leg": insert(decision_legs).on_conflict_do_nothing(index_elements=["decision_id", "leg"]),
        "verdict": insert(verdicts).on_conflict_do_nothing(index_elements=["id"]),
    }
    _STATEMENTS[dialect] = built
    return built


def _merge_runs(rows: Sequence[Record]) -> list[Record]:
    merged: dict[str, Record] = {}
    for row in rows:
        old = merged.get(row["id"])
        if old is None:
            merged[row["id"]] = dict(row)
            continue
        merged[row["id"]] = {
            **old,
            **{k: v for k, v in row.items() if v is not None and k != "created_at"},
        }
    return list(merged.values())


def insert_records(conn: Connection, records: Sequence[Record]) -> None:
    """Write spool-format records idempotently (``ON CONFLICT DO NOTHING`` on client ids)."""
    decision_rows: list[Record] = []
    leg_rows: list[Record] = []
    run_rows: list[Record] = []
    verdict_rows: list[Record] = []
    for record in records:
        kind, row = record["t"], record["d"]
        if kind == "decision":
            decision_rows.append(row)  # its "legs" key is not a column: the statements ignore it
            legs = row.get("legs") or ()
            if legs and "decision_id" not in legs[0]:  # spool files written before legs carried it
                legs = [{"decision_id": row["id"], **leg} for leg in legs]
            leg_rows.extend(legs)
        elif kind == "run":
            run_rows.append(row)
        elif kind == "verdict":
            verdict_rows.append(row)
        else:
            raise ValueError(f"unknown record type {kind!r}")
    if run_rows:
        _executemany(conn, "run", _merge_runs(run_rows))
    if decision_rows:
        _executemany(conn, "decision", decision_rows)
    if leg_rows:
        _executemany(conn, "leg", leg_rows)
    if verdict_rows:
        _executemany(conn, "verdict", verdict_rows)


_JSON_COLUMNS = frozenset({"prediction", "tool_calls", "meta", "config"})
_DRIVER_SQL: dict[tuple[str, str], tuple[str, tuple[str, ...] | None]] = {}


def _executemany(conn: Connection, key: str, rows: Sequence[Record]) -> None:
    """Run a cached statement over many rows with driver-level parameters.

    The statement is compiled once per dialect; rows go to the driver's executemany
    with JSON pre-serialised, skipping SQLAlchemy's per-row type processing (most of
    a batch's CPU time). Errors are still wrapped as SQLAlchemy exceptions.
    """
    cached = _DRIVER_SQL.get((conn.dialect.name, key))
    if cached is None:
        compiled = _statements(conn.dialect.name)[key].compile(dialect=conn.dialect)
        cached = (str(compiled), tuple(compiled.positiontup or ()) if compiled.positional else None)
        _DRIVER_SQL[(conn.dialect.name, key)] = cached
    sql, order = cached
    dumps = json.dumps
    if order is not None:  # positional (SQLite): tuples in the compiled order, via C-level itemgetter
        getter = itemgetter(*order)
        json_at = [n for n, name in enumerate(order) if name in _JSON_COLUMNS]
        params: list[Any] = []
        for row in rows:
            values = list(getter(row))
            for n in json_at:
                if values[n] is not None:
                    values[n] = dumps(values[n])
            params.append(tuple(values))
    else:  # named (psycopg)
        params = [
            {**row, "legs": None, **{k: dumps(row[k]) for k in _JSON_COLUMNS.intersection(row) if row[k] is not None}}
            for row in rows
        ]
    conn.exec_driver_sql(sql, params)


def decision_query(where: DecisionFilter) -> Select[Any]:
    """The SELECT for ``where``, oldest first."""
    query = select(decisions)
    if where.run_id is not None:
        query = query.where(decisions.c.run_id == where.run_id)
    if where.thread_id is not None:
        query = query.where(decisions.c.thread_id == where.thread_id)
    if where.task is not None:
        query = query.where(decisions.c.task == where.task)
    if where.kind is not None:
        query = query.where(decisions.c.kind == where.kind)
    if where.since is not None:
        query = query.where(decisions.c.created_at >= where.since)
    if where.unjudged:
        judged = exists().where(verdicts.c.decision_id == decisions.c.id, verdicts.c.grade.is_not(None))
        query = query.where(~judged)
    query = query.order_by(decisions.c.created_at, decisions.c.step, decisions.c.id)
    if where.limit is not None:
        query = query.limit(where.limit)
    return query


def _with_legs(conn: Connection, rows: Sequence[Mapping[Any, Any]]) -> list[Decision]:
    legs: dict[str, list[Mapping[Any, Any]]] = {}
    ids = [row["id"] for row in rows]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for leg in conn.execute(select(decision_legs).where(decision_legs.c.decision_id.in_(chunk))).mappings():
            legs.setdefault(leg["decision_id"], []).append(leg)
    return [decision_from_row(row, legs.get(row["id"], ())) for row in rows]


def iter_decisions(engine: Engine, where: DecisionFilter, *, batch_size: int = 1000) -> Iterator[list[Decision]]:
    """Decisions matching ``where`` in batches, streamed (server-side cursor on PostgreSQL)."""
    with engine.connect() as conn, engine.connect() as legs_conn:
        result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(decision_query(where))
        for part in result.mappings().partitions(batch_size):
            yield _with_legs(legs_conn, part)
