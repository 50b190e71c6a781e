"""The background writer: batches records off the hot path, spools them during outages.

The hot path only puts an object on a bounded queue (about a microsecond). A daemon
thread drains the queue, turns objects into rows (privacy applied), and writes them in
one transaction per batch. When the database is unreachable the batch goes to the
spool, and a retry timer re-inserts the spool once the database is back. When the
queue is full, ``add`` either blocks or spills the record straight to the spool.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from rpra_agent.core.errors import ConfigError, StoreError
from rpra_agent.store._rows import Record
from rpra_agent.store._spool import Spool

__all__ = ["BackgroundWriter", "OnFull"]

logger = logging.getLogger(__name__)

OnFull = Literal["block", "spill"]


@dataclass
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()


class BackgroundWriter:
    """A bounded queue in front of a batch-writing daemon thread.

    Args:
        write: Writes a batch of records to the database (raises on failure).
        prepare: Turns a queued object into a record (applies privacy).
        spool: Where records wait while the database is unreachable.
        is_outage: Tells an outage (spool, retry) from bad data (reject).
        name: Thread name and log label (the masked URL).
        max_queue: Queue capacity.
        max_batch: Records per transaction at most.
        on_full: ``"block"`` the caller or ``"spill"`` the record to the spool.
        retry_interval: Seconds between reconnection attempts during an outage.
        batch_wait: Seconds to wait for more records after the first of a batch
            (a flush never waits).
    """

    def __init__(
        self,
        *,
        write: Callable[[list[Record]], None],
        prepare: Callable[[Any], Record],
        spool: Spool,
        is_outage: Callable[[BaseException], bool],
        name: str,
        max_queue: int = 10_000,
        max_batch: int = 500,
        on_full: OnFull = "block",
        retry_interval: float = 5.0,
        batch_wait: float = 0.05,
    ) -> None:
        if on_full not in ("block", "spill"):
            raise ConfigError(f"on_full must be 'block' or 'spill', not {on_full!r}")
        if max_queue < 1 or max_batch < 1:
            raise ConfigError("max_queue and max_batch must be at least 1")
        self._write, self._prepare, self.spool = write, prepare, spool
        self._is_outage, self.name = is_outage, name
        self.max_batch, self.on_full, self.retry_interval = max_batch, on_full, retry_interval
        self.batch_wait = batch_wait
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._urgent = threading.Event()
        self.offline = False
        self._last_attempt = 0.0
        self.written = 0
        self.spooled = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"rpra-writer {name}", daemon=True)
        self._thread.start()

    # -- producer side -------------------------------------------------------------
    def put(self, item: Any) -> None:
        """Queue an object for writing (blocks or spills when the queue is full)."""
        if self._closed:
            raise StoreError(f"the store for {self.name} is closed")
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            if self.on_full == "block":
                self._queue.put(item)
            else:
                self.spill([self._prepare(item)])

    def try_put(self, item: Any) -> bool:
        """Queue an object if there is room; ``False`` when the queue is full (never blocks, never spills)."""
        if self._closed:
            raise StoreError(f"the store for {self.name} is closed")
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def spill(self, records: list[Record]) -> None:
        """Write records to the spool now; the writer re-inserts them later."""
        self.spool.append(records)
        self.spooled += len(records)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every object queued so far is in the database or the spool.

        Raises:
            StoreError: if the writer thread is gone or ``timeout`` expires.
        """
        if not self._thread.is_alive():
            if self._queue.empty():
                return
            raise StoreError(f"the writer thread for {self.name} is not running; records are still queued")
        marker = _Flush()
        self._queue.put(marker)
        self._urgent.set()
        if not marker.done.wait(timeout):
            raise StoreError(f"flush of {self.name} did not finish within {timeout} s")

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the thread."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._queue.put(_STOP)
        self._urgent.set()
        self._thread.join(timeout)

    @property
    def queued(self) -> int:
        """Objects waiting in the queue."""
        return self._queue.qsize()

    # -- the thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                if self._step():
                    return
            except Exception:  # noqa: BLE001  (the writer must outlive any single failure)
                logger.exception("the decision writer for %s hit an unexpected error; it keeps running", self.name)

    def _step(self) -> bool:
        wait = self.retry_interval if (self.offline or self.spool.pending()) else None
        try:
            first = self._queue.get(timeout=wait)
        except queue.Empty:
            self._recover()
            return False
        lingering = self.batch_wait > 0 and self._queue.qsize() + 1 < self.max_batch
        if lingering and first is not _STOP and not isinstance(first, _Flush):
            # Linger so records accumulate into one transaction. Sleeping on an event (not on
            # the queue) means puts do not wake this thread; a flush or close cuts it short.
            self._urgent.wait(self.batch_wait)
        self._urgent.clear()
        items, markers, stop = [], [], False
        next_item: Any = first
        while True:
            if next_item is _STOP:
                stop = True
            elif isinstance(next_item, _Flush):
                markers.append(next_item)
            else:
                items.append(next_item)
            if len(items) >= self.max_batch or stop:
                break
            try:
                next_item = self._queue.get_nowait()
            except queue.Empty:
                break
        try:
            if items:
                self._write_batch(items)
            self._recover(force=bool(markers) or stop)
        finally:
            for marker in markers:
                marker.done.set()
        return stop

    def _write_batch(self, items: list[Any]) -> None:
        records = []
        for item in items:
            try:
                records.append(self._prepare(item))
            except Exception as exc:  # noqa: BLE001
                logger.error("could not prepare a record for %s (%s); it is dropped", self.name, type(exc).__name__)
        if self.offline:
            self.spill(records)
            return
        try:
            self._write(records)
            self.written += len(records)
        except Exception as exc:  # noqa: BLE001
            if self._is_outage(exc):
                self._go_offline(exc)
                self.spill(records)
            else:
                self._isolate(records)

    def _isolate(self, records: list[Record]) -> None:
        """Write one by one, so one bad record does not take its batch down with it."""
        for record in records:
            try:
                self._write([record])
                self.written += 1
            except Exception as exc:  # noqa: BLE001
                if self._is_outage(exc):
                    self._go_offline(exc)
                    self.spill([record])
                else:
                    self.spool.reject(record, type(exc).__name__)

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
        if not self.offline:
            logger.warning(
                "the database %s is unreachable (%s); spooling records to %s and retrying every %.0f s",
                self.name,
                type(exc).__name__,
                self.spool.path,
                self.retry_interval,
            )
        self.offline = True
        self._last_attempt = time.monotonic()

    def _recover(self, force: bool = False) -> None:
        """Replay the spool when the database is reachable again (or was never down)."""
        if not self.spool.pending() and not self.offline:
            return
        if self.offline and not force and time.monotonic() - self._last_attempt < self.retry_interval:
            return
        if self.offline and force and time.monotonic() - self._last_attempt < min(self.retry_interval, 1.0):
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
        self.offline = False
        self.written += replayed
