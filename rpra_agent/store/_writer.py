"""The background writer: batches records off the hot path, spools them during outages.

A daemon thread drains a bounded queue, turns objects into rows (privacy applied), and
writes them in one transaction per batch. When the database is unreachable the batch
goes to the spool, and a retry timer re-inserts the spool once the database is back.

Durability modes (LangGraph's names):

- ``"sync"``: ``put`` returns only once the record is committed or spooled (records of
  concurrent callers share one transaction: group commit). A SIGKILL loses nothing
  that ``put`` returned for.
- ``"async"``: ``put`` only queues; the writer lingers ``batch_wait`` seconds to batch.
  A SIGKILL loses what was queued and not yet committed (the loss window).

When both the database and the spool fail, the records stay in an in-memory backlog
(retried, bounded by ``max_queue``) and the loss is reported: ``flush`` raises
:class:`~rpra_agent.store.errors.DecisionNotDurableError`, and so does ``put`` when
``on_loss="raise"``; ``on_loss="log"`` logs an ERROR instead (``flush`` still raises).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Literal

from rpra_agent.core.errors import ConfigError, StoreError
from rpra_agent.store._persist import Persister
from rpra_agent.store._rows import Record
from rpra_agent.store._spool import Spool
from rpra_agent.store._tickets import Flush as _Flush
from rpra_agent.store._tickets import Ticket as _Ticket
from rpra_agent.store.errors import DecisionNotDurableError

__all__ = ["BackgroundWriter", "Durability", "OnFull", "OnLoss"]

logger = logging.getLogger(__name__)

OnFull = Literal["block", "spill"]
Durability = Literal["sync", "async"]
OnLoss = Literal["raise", "log"]


_STOP = object()


class BackgroundWriter:
    """A bounded queue in front of a batch-writing daemon thread.

    Args:
        write: Writes a batch of records to the database (raises on failure).
        prepare: Turns a queued object into a record (applies privacy).
        spool: Where records wait while the database is unreachable.
        is_outage: Tells an outage (spool, retry) from bad data (reject).
        name: Thread name and log label (the masked URL).
        durability: ``"sync"`` or ``"async"`` (see the module docstring).
        on_loss: ``"raise"`` or ``"log"`` when records are neither committed nor spooled.
        max_queue: Queue capacity (and in-memory backlog capacity).
        max_batch: Records per transaction at most.
        on_full: ``"block"`` the caller or ``"spill"`` the record to the spool.
        retry_interval: Seconds between reconnection attempts during an outage.
        batch_wait: Seconds to wait for more records after the first of a batch
            (``async`` only; a flush never waits).
    """

    def __init__(
        self,
        *,
        write: Callable[[list[Record]], None],
        prepare: Callable[[Any], Record],
        spool: Spool,
        is_outage: Callable[[BaseException], bool],
        name: str,
        durability: Durability = "async",
        on_loss: OnLoss = "raise",
        max_queue: int = 10_000,
        max_batch: int = 500,
        on_full: OnFull = "block",
        retry_interval: float = 5.0,
        batch_wait: float = 0.05,
    ) -> None:
        if on_full not in ("block", "spill"):
            raise ConfigError(f"on_full must be 'block' or 'spill', not {on_full!r}")
        if durability not in ("sync", "async"):
            raise ConfigError(f"durability must be 'sync' or 'async', not {durability!r}")
        if on_loss not in ("raise", "log"):
            raise ConfigError(f"on_loss must be 'raise' or 'log', not {on_loss!r}")
        if max_queue < 1 or max_batch < 1:
            raise ConfigError("max_queue and max_batch must be at least 1")
        self._prepare, self.spool, self.name = prepare, spool, name
        self.durability, self.on_loss, self.max_queue = durability, on_loss, max_queue
        self.max_batch, self.on_full, self.retry_interval = max_batch, on_full, retry_interval
        self.batch_wait = batch_wait if durability == "async" else 0.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._urgent = threading.Event()
        self.persister = Persister(
            write=write, spool=spool, is_outage=is_outage, name=name, on_loss=on_loss, capacity=max_queue,
            retry_interval=retry_interval,
        )  # fmt: skip
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"rpra-writer {name}", daemon=True)
        self._thread.start()

    # -- producer side -------------------------------------------------------------
    def _enqueue(self, entry: Any, *, block: bool = True) -> None:
        if self._closed:
            raise StoreError(f"the store for {self.name} is closed")
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            if self.on_full == "spill" and not isinstance(entry, _Ticket):
                self.spill([self._prepare(entry)])
            elif not block:
                raise
            else:
                self._queue.put(entry)
        if isinstance(entry, _Ticket):
            self._urgent.set()
        elif self.on_loss == "raise" and self.persister.at_risk():
            # async: this record is queued (and will be retried), but earlier ones are not durable
            raise self.persister.loss_error()

    def put(self, item: Any, *, wait: bool = True) -> None:
        """Queue an object; in ``sync`` mode (and ``wait``), return once it is committed or spooled.

        Raises:
            DecisionNotDurableError: the record is neither committed nor spooled
                (``on_loss="raise"``; in ``async`` mode, raised by the next ``put``).
            StoreError: the store is closed.
        """
        if self.durability == "async" or not wait:
            self._enqueue(item)
            return
        ticket = _Ticket(item)
        self._enqueue(ticket)
        self._settle(ticket)

    async def aput(self, item: Any) -> None:
        """Async twin of :meth:`put`: waits for the commit without blocking the event loop."""
        entry = item if self.durability == "async" else _Ticket(item)
        try:
            self._enqueue(entry, block=False)
        except queue.Full:
            await asyncio.to_thread(self._enqueue, entry)
        if isinstance(entry, _Ticket):
            try:
                await entry.await_()
            except DecisionNotDurableError:
                if self.on_loss == "raise":
                    raise

    def _settle(self, ticket: _Ticket) -> None:
        try:
            ticket.wait()
        except DecisionNotDurableError:
            if self.on_loss == "raise":
                raise

    def spill(self, records: list[Record]) -> None:
        """Write records to the spool now; the writer re-inserts them later."""
        self.persister.spill(records)

    def replay_batch(self, records: list[Record]) -> None:
        """Write a spooled batch (see :meth:`Persister.replay_batch`)."""
        self.persister.replay_batch(records)

    @property
    def offline(self) -> bool:
        """Whether the database is unavailable (records go to the spool)."""
        return self.persister.offline

    def flush(self, timeout: float | None = None) -> None:
        """Block until every object queued so far is in the database or the spool.

        Raises:
            DecisionNotDurableError: records are held in memory only (never a silent loss).
            StoreError: if the writer thread is gone or ``timeout`` expires.
        """
        if not self._thread.is_alive():
            if self._queue.empty() and not self.persister.pending:
                return
            raise StoreError(f"the writer thread for {self.name} is not running; records are still queued")
        marker = _Flush()
        self._queue.put(marker)
        self._urgent.set()
        if not marker.event.wait(timeout):
            raise StoreError(f"flush of {self.name} did not finish within {timeout} s")
        if marker.error is not None:
            raise marker.error

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the thread (the flush's error, if any, is raised after)."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            self._queue.put(_STOP)
            self._urgent.set()
            self._thread.join(timeout)

    @property
    def queued(self) -> int:
        """Objects waiting in the queue."""
        return self._queue.qsize()

    @property
    def pending(self) -> int:
        """Records that are neither committed nor spooled (held in memory, retried)."""
        return self.persister.pending

    # -- the thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                if self._step():
                    return
            except Exception:  # noqa: BLE001  (the writer must outlive any single failure)
                logger.exception("the decision writer for %s hit an unexpected error; it keeps running", self.name)

    def _step(self) -> bool:
        try:
            first = self._queue.get(timeout=self.persister.idle_wait())
        except queue.Empty:
            self.persister.recover()
            return False
        lingering = self.batch_wait > 0 and self._queue.qsize() + 1 < self.max_batch
        if lingering and first is not _STOP and not isinstance(first, _Ticket):
            # Linger so records accumulate into one transaction. Sleeping on an event (not on
            # the queue) means puts do not wake this thread; a flush or close cuts it short.
            self._urgent.wait(self.batch_wait)
        self._urgent.clear()
        items: list[tuple[Any, _Ticket | None]] = []
        markers: list[_Flush] = []
        stop, entry = False, first
        while True:
            if entry is _STOP:
                stop = True
            elif isinstance(entry, _Flush):
                markers.append(entry)
            elif isinstance(entry, _Ticket):
                items.append((entry.item, entry))
            else:
                items.append((entry, None))
            if len(items) >= self.max_batch or stop:
                break
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
        try:
            if items:
                self._write_items(items)
            self.persister.recover(force=bool(markers) or stop)
        finally:
            for marker in markers:
                marker.resolve(self.persister.loss_error() if self.persister.at_risk() else None)
            if markers:
                self.persister.reported()  # a dropped record is reported by one flush, not by every later one
        return stop

    def _write_items(self, items: list[tuple[Any, _Ticket | None]]) -> None:
        records: list[Record] = []
        owners: list[_Ticket | None] = []
        for item, ticket in items:
            try:
                records.append(self._prepare(item))
                owners.append(ticket)
            except Exception as exc:  # noqa: BLE001
                logger.error("could not prepare a record for %s (%s); it is not stored", self.name, type(exc).__name__)
                if ticket is not None:
                    ticket.resolve(StoreError(f"could not prepare a record for {self.name}: {type(exc).__name__}"))
        unsaved = {id(r) for r in self.persister.persist(records)}
        for record, ticket in zip(records, owners, strict=True):
            if ticket is not None:  # one exception object per waiting thread
                ticket.resolve(self.persister.loss_error() if id(record) in unsaved else None)
