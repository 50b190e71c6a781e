"""Where a batch goes: the database, else the spool, else an in-memory backlog (never silently nowhere).

:class:`Persister` is the writer thread's state machine for one store: it commits a
batch, spools it during an outage, keeps it in a bounded backlog (retried) when the
spool fails too, re-inserts the spool when the database is back, and reports what is
not durable as :class:`~rpra_agent.store.errors.DecisionNotDurableError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rpra_agent.store._rows import Record
from rpra_agent.store._spool import Spool
from rpra_agent.store._tickets import first_line as _first_line
from rpra_agent.store.errors import DecisionNotDurableError

__all__ = ["Persister"]

logger = logging.getLogger("rpra_agent.store._writer")


class Persister:
    """Commit, spool or keep batches of records; only the writer thread calls it.

    Args:
        write: Writes a batch of records to the database (raises on failure).
        spool: Where records wait while the database is unreachable.
        is_outage: Tells an outage (spool, retry) from bad data (reject).
        name: Log label (the masked URL).
        on_loss: ``"log"`` logs every loss; ``"raise"`` logs the first of an episode.
        capacity: Records the in-memory backlog holds at most (older ones are dropped, counted).
        retry_interval: Seconds between reconnection attempts during an outage.
    """

    def __init__(
        self,
        *,
        write: Callable[[list[Record]], None],
        spool: Spool,
        is_outage: Callable[[BaseException], bool],
        name: str,
        on_loss: str,
        capacity: int,
        retry_interval: float,
    ) -> None:
        self._write, self.spool, self._is_outage, self.name = write, spool, is_outage, name
        self.on_loss, self.max_queue, self.retry_interval = on_loss, capacity, retry_interval
        self.offline = False
        self._last_attempt = 0.0
        self.written = self.spooled = self.lost = self._lost_reported = 0
        self._backlog: list[Record] = []  # neither committed nor spooled; retried
        self._db_error: str | None = None
        self._spool_error: str | None = None

    @property
    def pending(self) -> int:
        """Records neither committed nor spooled."""
        return len(self._backlog)

    def loss_error(self) -> DecisionNotDurableError:
        """The error describing what is not durable now."""
        return DecisionNotDurableError(
            pending=len(self._backlog), lost=self.lost, database_error=self._db_error,
            spool_error=self._spool_error, spool_path=self.spool.path,
        )  # fmt: skip

    def at_risk(self) -> bool:
        """Records held only in memory, or dropped since a flush last reported it."""
        return bool(self._backlog) or self.lost > self._lost_reported

    def reported(self) -> None:
        """A flush reported the dropped records: later flushes need not report them again."""
        self._lost_reported = self.lost

    def idle_wait(self) -> float | None:
        """How long the writer may sleep on an empty queue before retrying (``None``: forever)."""
        return self.retry_interval if (self.offline or self._backlog or self.spool.pending()) else None

    def spill(self, records: list[Record]) -> None:
        """Write records to the spool now; they are re-inserted later."""
        self.spool.append(records)
        self.spooled += len(records)

    def persist(self, records: list[Record]) -> list[Record]:
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
            logger.error("%s", self.loss_error())

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

    def recover(self, force: bool = False) -> None:
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
            if self.persist(backlog):  # still failing: _persist put them back in the backlog
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
