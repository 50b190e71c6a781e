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
import time
from collections.abc import Callable
from typing import Any, Literal

from rpra_agent.core.errors import ConfigError, StoreError
from rpra_agent.store._rows import Record
from rpra_agent.store._spool import Spool
from rpra_agent.store._tickets import Flush as _Flush
from rpra_agent.store._tickets import Ticket as _Ticket
from rpra_agent.store._tickets import first_line as _first_line
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
        self._write, self._prepare, self.spool = write, prepare, spool
        self._is_outage, self.name = is_outage, name
        self.durability, self.on_loss, self.max_queue = durability, on_loss, max_queue
        self.max_batch, self.on_full, self.retry_interval = max_batch, on_full, retry_interval
        self.batch_wait = batch_wait if durability == "async" else 0.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._urgent = threading.Event()
        self.offline = False
        self._last_attempt = 0.0
        self.written = self.spooled = self.lost = self._lost_reported = 0
        self._backlog: list[Record] = []  # neither committed nor spooled; retried
        self._db_error: str | None = None
        self._spool_error: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"rpra-writer {name}", daemon=True)
        self._thread.start()

    # -- producer side -------------------------------------------------------------
    def _loss_error(self) -> DecisionNotDurableError:
        return DecisionNotDurableError(
            pending=len(self._backlog), lost=self.lost, database_error=self._db_error,
            spool_error=self._spool_error, spool_path=self.spool.path,
        )  # fmt: skip

    def _at_risk(self) -> bool:
        """Records held only in memory, or dropped since a flush last reported it."""
        return bool(self._backlog) or self.lost > self._lost_reported

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
        elif self.on_loss == "raise" and self._at_risk():
            # async: this record is queued (and will be retried), but earlier ones are not durable
            raise self._loss_error()

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
        self.spool.append(records)
        self.spooled += len(records)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every object queued so far is in the database or the spool.

        Raises:
            DecisionNotDurableError: records are held in memory only (never a silent loss).
            StoreError: if the writer thread is gone or ``timeout`` expires.
        """
        if not self._thread.is_alive():
            if self._queue.empty() and not self._backlog:
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
        return len(self._backlog)

    # -- the thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                if self._step():
                    return
            except Exception:  # noqa: BLE001  (the writer must outlive any single failure)
                logger.exception("the decision writer for %s hit an unexpected error; it keeps running", self.name)

    def _step(self) -> bool:
        wait = self.retry_interval if (self.offline or self.spool.pending() or self._backlog) else None
        try:
            first = self._queue.get(timeout=wait)
        except queue.Empty:
            self._recover()
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
            self._recover(force=bool(markers) or stop)
        finally:
            for marker in markers:
                marker.resolve(self._loss_error() if self._at_risk() else None)
            if markers:
                self._lost_reported = self.lost  # a dropped record is reported by one flush, not by every later one
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
        unsaved = {id(r) for r in self._persist(records)}
        for record, ticket in zip(records, owners, strict=True):
            if ticket is not None:  # one exception object per waiting thread
                ticket.resolve(self._loss_error() if id(record) in unsaved else None)

    def _persist(self, records: list[Record]) -> list[Record]:
        """Commit, else spool, else keep in the backlog; returns the records only in memory."""
        if not records:
            return []
        if not self.offline:
            try:
                self._write(records)
                self.written += len(records)
                return []
            except Exception as exc:  # noqa: BLE001
                if not self._is_outage(exc):
                    return self._isolate(records)
                self._go_offline(exc)
        return self._spool_or_keep(records)

    def _spool_or_keep(self, records: list[Record]) -> list[Record]:
        try:
            self.spill(records)
        except OSError as exc:
            self._keep(records, exc)
            return records
        if self._spool_error is not None:
            logger.warning("the spool %s is writable again", self.spool.path)
            self._spool_error = None
        return []

    def _keep(self, records: list[Record], exc: OSError) -> None:
        first = self._spool_error is None
        self._spool_error = _first_line(exc)
        self._backlog.extend(records)
        overflow = len(self._backlog) - self.max_queue
        if overflow > 0:
            del self._backlog[:overflow]
            self.lost += overflow
            logger.error("the decision backlog of %s is full: %d records dropped", self.name, overflow)
        if first or self.on_loss == "log":
            logger.error("%s", self._loss_error())

    def _isolate(self, records: list[Record]) -> list[Record]:
        """Write one by one, so one bad record does not take its batch down with it."""
        unsaved: list[Record] = []
        for i, record in enumerate(records):
            if self.offline:
                unsaved += self._spool_or_keep(records[i:])
                break
            try:
                self._write([record])
                self.written += 1
            except Exception as exc:  # noqa: BLE001
                if self._is_outage(exc):
                    self._go_offline(exc)
                    unsaved += self._spool_or_keep([record])
                else:
                    try:
                        self.spool.reject(record, type(exc).__name__)
                    except OSError as spool_exc:
                        self._keep([record], spool_exc)
                        unsaved.append(record)
        return unsaved

    def replay_batch(self, records: list[Record]) -> None:
        """Write a spooled batch; records the database refuses go to the rejected file.

        Raises:
            Exception: the database's error when it is unreachable (the spool is kept).
        """
        try:
            self._write(records)
        except Exception as exc:  # noqa: BLE001
            if self._is_outage(exc):
                raise
            for record in records:
                try:
                    self._write([record])
                except Exception as one:  # noqa: BLE001
                    if self._is_outage(one):
                        raise
                    self.spool.reject(record, type(one).__name__)

    def _go_offline(self, exc: BaseException) -> None:
        self._db_error = _first_line(exc)
        if not self.offline:
            logger.warning(
                "the database %s is unavailable (%s); spooling records to %s and retrying every %g s",
                self.name,
                self._db_error,
                self.spool.path,
                self.retry_interval,
            )
        self.offline = True
        self._last_attempt = time.monotonic()

    def _recover(self, force: bool = False) -> None:
        """Retry the backlog, then replay the spool when the database is reachable again."""
        if self.offline and not force and time.monotonic() - self._last_attempt < self.retry_interval:
            return
        if self.offline and force and time.monotonic() - self._last_attempt < min(self.retry_interval, 1.0):
            if self._backlog:  # the database is still down, but the spool may take them now
                backlog, self._backlog = self._backlog, []
                self._spool_or_keep(backlog)  # failing, it puts them back in the backlog
            return
        if self._backlog:
            backlog, self._backlog = self._backlog, []
            self.offline = False
            if self._persist(backlog):  # still failing: _persist put them back in the backlog
                return
        if not self.spool.pending() and not self.offline:
            return
        try:
            replayed = self.spool.drain(self.replay_batch)
        except Exception as exc:  # noqa: BLE001
            if self._is_outage(exc):
                self._go_offline(exc)
                return
            raise
        if self.offline:
            logger.warning("the database %s is reachable again; %d spooled records replayed", self.name, replayed)
        self.offline, self._db_error = False, None
        self.written += replayed
