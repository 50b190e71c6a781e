"""The SQL decision store: SQLite by default, PostgreSQL at scale, nothing lost."""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, func, select

from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ConfigError, StoreError
from rpra_agent.core.verdict import Verdict
from rpra_agent.store import _migrate
from rpra_agent.store._privacy import TextMode, TextPolicy, scrub_json, scrub_secrets
from rpra_agent.store._queries import insert_artifact, latest_artifact, read_runs, read_verdicts
from rpra_agent.store._rows import Record, decision_record, run_record, verdict_record
from rpra_agent.store._spool import Spool
from rpra_agent.store._sqlfile import FileIdentity
from rpra_agent.store._sqlio import _with_legs, decision_query, insert_records, is_outage, iter_decisions, make_engine
from rpra_agent.store._url import DatabaseURL, resolve_url
from rpra_agent.store._writer import BackgroundWriter, Durability, OnFull, OnLoss
from rpra_agent.store.base import Artifact, DecisionFilter
from rpra_agent.store.errors import DatabaseReplacedError

__all__ = ["SQLDecisionStore"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
OnReplaced = Literal["raise", "recreate"]


class SQLDecisionStore:
    """A :class:`~rpra_agent.store.DecisionStore` on SQLAlchemy: SQLite or PostgreSQL (psycopg 3).

    A background thread writes batches. With ``durability="sync"``, ``add``/``aadd``
    return once the decision is committed or spooled (concurrent steps share one
    transaction); with ``"async"`` they only queue it, and a SIGKILL loses what was
    queued and not yet committed (see docs/STORAGE.md for the measured window). If the
    database is unreachable, records go to a local JSONL spool and are re-inserted when
    it is back (automatically, or with :meth:`replay` / ``rpra log replay``). If the spool
    fails too, nothing is dropped silently: see ``on_loss``. Reads flush the queue first,
    so a process always reads its own writes.

    Args:
        url: A database URL (see :func:`rpra_agent.store.open_store`).
        store_text: ``"full"`` (secrets scrubbed), ``"hash"`` (sha256 only) or a
            callable that redacts request/response text.
        durability: ``"sync"`` (durable before ``add`` returns) or ``"async"`` (batched).
        on_loss: When neither the database nor the spool takes a record (disk full,
            read-only, deleted directory): ``"raise"``
            :class:`~rpra_agent.store.errors.DecisionNotDurableError` from ``add`` (the
            step fails), or ``"log"`` an ERROR and go on. ``flush`` raises either way.
        on_replaced: When the SQLite file is deleted or replaced under the store:
            ``"raise"`` :class:`~rpra_agent.store.errors.DatabaseReplacedError` on reads
            (writes go to the spool), or ``"recreate"`` the file (logged as an ERROR).
        on_full: When the queue is full, ``"block"`` the caller or ``"spill"`` to the spool.
        max_queue: Queue capacity.
        max_batch: Records per transaction at most.
        spool_path: The JSONL spool (default: beside the SQLite file, or under
            ``$RPRA_SPOOL_DIR`` / ``~/.local/state/rpra`` for PostgreSQL).
        retry_interval: Seconds between reconnection attempts during an outage.
        batch_wait: Seconds the writer waits for more records to batch (reads and
            ``flush`` never wait for it).
        busy_timeout_ms: SQLite's busy timeout.
        connect_timeout_s: PostgreSQL's connect timeout.
        auto_upgrade: Create or upgrade the schema on first use.

    Raises:
        ConfigError: on a bad URL or option.
    """

    def __init__(
        self,
        url: str | DatabaseURL,
        *,
        store_text: TextMode | Callable[[str], str] = "full",
        durability: Durability = "async",
        on_loss: OnLoss = "raise",
        on_replaced: OnReplaced = "raise",
        on_full: OnFull = "block",
        max_queue: int = 10_000,
        max_batch: int = 500,
        spool_path: str | None = None,
        retry_interval: float = 5.0,
        batch_wait: float = 0.05,
        busy_timeout_ms: int = 30_000,
        connect_timeout_s: int = 5,
        auto_upgrade: bool = True,
    ) -> None:
        db = resolve_url(url) if isinstance(url, str) else url
        if db is None:
            raise ConfigError("memory:// is not an SQL database: use open_store('memory://') for the in-memory store")
        self.db = db
        self.url = db.masked
        self.text_policy = TextPolicy(store_text)
        self.auto_upgrade = auto_upgrade
        if on_replaced not in ("raise", "recreate"):
            raise ConfigError(f"on_replaced must be 'raise' or 'recreate', not {on_replaced!r}")
        self.on_replaced = on_replaced
        self.engine = make_engine(db, busy_timeout_ms=busy_timeout_ms, connect_timeout_s=connect_timeout_s)
        path = db.sqlite_path if db.dialect == "sqlite" else None
        self._file = FileIdentity(path) if path is not None else None
        self._write_engine = self.engine.execution_options(rpra_write=True)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self.spool = Spool(spool_path or db.default_spool_path())
        self._writer = BackgroundWriter(
            write=self._write_records,
            prepare=self._prepare,
            spool=self.spool,
            is_outage=lambda exc: isinstance(exc, DatabaseReplacedError) or is_outage(exc),
            name=self.url,
            durability=durability,
            on_loss=on_loss,
            max_queue=max_queue,
            max_batch=max_batch,
            on_full=on_full,
            retry_interval=retry_interval,
            batch_wait=batch_wait,
        )
        self._closed = False
        atexit.register(_close_at_exit, weakref.ref(self))
        self.durability = durability
        logger.debug("decision store %s (durability=%s, text=%s)", self.url, durability, self.text_policy.name)

    @classmethod
    def from_url(cls, url: str, **opts: Any) -> SQLDecisionStore:
        """Open a store on ``url`` (``sqlite:///file.db`` or ``postgresql://...``); options as for the constructor."""
        return cls(url, **opts)

    def __repr__(self) -> str:
        return f"SQLDecisionStore({self.url!r})"

    # -- schema --------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        self._check_file()
        if self._schema_ready or not self.auto_upgrade:
            return
        with self._schema_lock:
            if not self._schema_ready:
                _migrate.upgrade(self.engine)
                self._schema_ready = True
                if self._file is not None:
                    self._file.capture()

    def _check_file(self) -> None:
        """Detect a deleted or replaced SQLite file (its device and inode changed)."""
        if self._file is None:
            return
        with self._schema_lock:
            error = self._file.changed()
            if error is None:
                return
            if self.on_replaced == "raise":
                raise error
            logger.error("%s; re-creating it (on_replaced='recreate')", error)
            self.engine.dispose()  # drop connections to the old file
            self._file.forget()
            self._schema_ready = False

    def upgrade(self, revision: str = "head") -> tuple[str | None, str]:
        """Upgrade the schema (what ``rpra db upgrade`` runs); returns ``(before, after)`` revisions."""
        return self._guard("upgrade", lambda: _migrate.upgrade(self.engine, revision), ensure=False)

    def _guard(self, what: str, fn: Callable[[], _T], *, ensure: bool = True) -> _T:
        try:
            if ensure:
                self._ensure_schema()
            return fn()
        except StoreError:
            raise
        except Exception as exc:
            if is_outage(exc):
                detail = scrub_secrets(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0])
                raise StoreError(
                    f"cannot {what}: the database {self.url} is unreachable ({type(exc).__name__}: {detail})"
                ) from None
            raise

    # -- writing -------------------------------------------------------------------
    def _prepare(self, item: Decision | Record) -> Record:
        return decision_record(item, self.text_policy) if isinstance(item, Decision) else item

    def _write_records(self, records: list[Record]) -> None:
        self._ensure_schema()
        with self._write_engine.begin() as conn:
            insert_records(conn, records)

    def add(self, decision: Decision) -> None:
        """Record a decision (idempotent on its id).

        In ``sync`` mode this returns once the decision is committed or spooled; in
        ``async`` mode it only queues it.

        Raises:
            DecisionNotDurableError: neither the database nor the spool took it
                (``on_loss="raise"``; in ``async`` mode, from a later call).
        """
        self._writer.put(decision)

    async def aadd(self, decision: Decision) -> None:
        """Async twin of :meth:`add`; waiting (sync mode, a full queue) happens off the event loop."""
        await self._writer.aput(decision)

    def upsert_run(
        self, run_id: str, *, thread_id: str | None, paradigm: str, config: Mapping[str, Any], status: str
    ) -> None:
        """Queue a run's create-or-update (an empty ``config`` keeps the stored snapshot).

        Never waits for the commit, in either mode: the queue is first in, first out, so a
        run's row is committed no later than the next decision added after it (which
        ``sync`` mode waits for); only a status set after a run's last decision can be
        lost to a SIGKILL.
        """
        self._writer.put(
            run_record(run_id, thread_id=thread_id, paradigm=paradigm, config=config, status=status), wait=False
        )

    def add_verdicts(self, verdicts: Sequence[Verdict]) -> None:
        """Write verdicts now (idempotent on their ids); spooled if the database is unreachable."""
        records = [verdict_record(v) for v in verdicts]
        if not records:
            return
        try:
            self._write_records(records)
        except Exception as exc:
            if not is_outage(exc):
                raise StoreError(
                    f"could not store {len(records)} verdicts in {self.url}: {type(exc).__name__}"
                ) from exc
            logger.warning(
                "the database %s is unreachable; %d verdicts spooled to %s", self.url, len(records), self.spool.path
            )
            self._writer.spill(records)

    def put_artifact(self, kind: str, name: str, payload: Mapping[str, Any]) -> Artifact:
        """Store a new version of an artifact (report card, calibration ...).

        Raises:
            StoreError: when the database is unreachable (nothing is stored; the
                caller still holds the payload).
        """
        clean = scrub_json(dict(payload))
        return self._guard(
            f"store artifact {kind}/{name}", lambda: insert_artifact(self._write_engine, kind, name, clean)
        )

    # -- reading -------------------------------------------------------------------
    def _read(self, what: str, fn: Callable[[Connection], _T]) -> _T:
        self.flush()

        def run() -> _T:
            with self.engine.connect() as conn:
                return fn(conn)

        return self._guard(what, run)

    def decisions(self, where: DecisionFilter | None = None) -> list[Decision]:
        """Decisions matching ``where``, oldest first."""
        query = decision_query(where or DecisionFilter())
        return self._read("read decisions", lambda conn: _with_legs(conn, list(conn.execute(query).mappings())))

    def iter_decisions(
        self, where: DecisionFilter | None = None, *, batch_size: int = 1000
    ) -> Iterator[list[Decision]]:
        """Decisions matching ``where`` in batches, streamed (for exports of any size)."""
        self.flush()
        self._guard("read decisions", lambda: None)
        yield from iter_decisions(self.engine, where or DecisionFilter(), batch_size=batch_size)

    def count(self, where: DecisionFilter | None = None) -> int:
        """How many decisions match ``where``."""
        query = select(func.count()).select_from(decision_query(where or DecisionFilter()).order_by(None).subquery())
        return self._read("count decisions", lambda conn: int(conn.execute(query).scalar() or 0))

    def verdicts(self, decision_ids: Sequence[str] | None = None) -> list[Verdict]:
        """Verdicts, optionally only for some decisions, oldest first."""
        return self._read("read verdicts", lambda conn: read_verdicts(conn, decision_ids))

    def runs(self) -> dict[str, dict[str, Any]]:
        """All runs by id: thread_id, paradigm, config and status."""
        return self._read("read runs", read_runs)

    def latest_artifact(self, kind: str, name: str) -> Artifact | None:
        """The newest version of an artifact, or ``None``."""

        def read() -> Artifact | None:
            with self.engine.connect() as conn:
                return latest_artifact(conn, kind, name)

        return self._guard(f"read artifact {kind}/{name}", read)

    # -- durability ----------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Records neither committed nor spooled (held in memory and retried; see ``on_loss``)."""
        return self._writer.pending

    @property
    def offline(self) -> bool:
        """Whether the writer is currently spooling because the database is unreachable."""
        return self._writer.offline

    def replay(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-insert every spooled record now (what ``rpra log replay`` runs); returns how many.

        Raises:
            StoreError: when the database is still unreachable (the spool is kept).
        """

        def drain() -> int:
            return self.spool.drain(self._writer.replay_batch, progress=progress)

        return self._guard("replay the spool", drain)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every decision added so far is in the database (or, during an outage, the spool)."""
        self._writer.flush(timeout)

    def close(self) -> None:
        """Flush, stop the writer and release connections."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.close()  # raises DecisionNotDurableError if records could not be saved
        finally:
            self.engine.dispose()

    # -- async twins ---------------------------------------------------------------
    async def aflush(self) -> None:
        """Async twin of :meth:`flush` (waits off the event loop)."""
        await asyncio.to_thread(self.flush)

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await asyncio.to_thread(self.close)

    async def adecisions(self, where: DecisionFilter | None = None) -> list[Decision]:
        """Async twin of :meth:`decisions`."""
        return await asyncio.to_thread(self.decisions, where)

    async def aadd_verdicts(self, verdicts: Sequence[Verdict]) -> None:
        """Async twin of :meth:`add_verdicts`."""
        await asyncio.to_thread(self.add_verdicts, verdicts)

    async def averdicts(self, decision_ids: Sequence[str] | None = None) -> list[Verdict]:
        """Async twin of :meth:`verdicts`."""
        return await asyncio.to_thread(self.verdicts, decision_ids)

    async def aput_artifact(self, kind: str, name: str, payload: Mapping[str, Any]) -> Artifact:
        """Async twin of :meth:`put_artifact`."""
        return await asyncio.to_thread(self.put_artifact, kind, name, payload)

    async def alatest_artifact(self, kind: str, name: str) -> Artifact | None:
        """Async twin of :meth:`latest_artifact`."""
        return await asyncio.to_thread(self.latest_artifact, kind, name)

    def __enter__(self) -> SQLDecisionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_at_exit(ref: weakref.ref[SQLDecisionStore]) -> None:
    store = ref()
    if store is not None and not store._closed:
        try:
            store.close()
        except Exception:  # noqa: BLE001  (report, never raise at interpreter exit)
            logger.exception("closing the decision store %s at exit failed", store.url)
