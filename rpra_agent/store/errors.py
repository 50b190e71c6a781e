"""The store's errors: when a decision could not be made durable, and why.

The tree (both are :class:`~rpra_agent.core.errors.StoreError`)::

    StoreError
    ├── DecisionNotDurableError   neither the database nor the spool took some records
    └── DatabaseReplacedError     the SQLite file was deleted or replaced under the store
"""

from __future__ import annotations

from pathlib import Path

from rpra_agent.core.errors import StoreError

__all__ = ["DatabaseReplacedError", "DecisionNotDurableError"]


class DecisionNotDurableError(StoreError):
    """Records are neither in the database nor in the spool (disk full, read-only, deleted).

    The records are still held in memory (up to ``max_queue`` of them) and retried; they
    are lost only if the process ends first, or when that backlog overflows (``lost``).

    Attributes:
        pending: Records held in memory, not durable.
        lost: Records dropped because the in-memory backlog was full (since the store opened).
        database_error: Class name and first line of the database's error.
        spool_error: Class name and first line of the spool's error.
        spool_path: The spool file that could not be written.
    """

    def __init__(
        self, *, pending: int, lost: int, database_error: str | None, spool_error: str | None, spool_path: Path
    ) -> None:
        self.pending, self.lost = pending, lost
        self.database_error, self.spool_error, self.spool_path = database_error, spool_error, spool_path
        dropped = f"; {lost} were dropped because the backlog was full" if lost else ""
        super().__init__(
            f"{pending} decision-log records are not durable: the database failed ({database_error or 'offline'}) "
            f"and so did the spool {spool_path} ({spool_error}){dropped}. They are kept in memory and retried; "
            "free disk space or fix the permissions, then call flush() again"
        )


class DatabaseReplacedError(StoreError):
    """The SQLite file the store opened was deleted or replaced by another file.

    Attributes:
        path: The SQLite file.
        expected: ``(st_dev, st_ino)`` of the file the store opened.
        found: ``(st_dev, st_ino)`` now at ``path``, or ``None`` when it is gone.
    """

    def __init__(self, path: Path, expected: tuple[int, int], found: tuple[int, int] | None) -> None:
        self.path, self.expected, self.found = path, expected, found
        what = "deleted" if found is None else "replaced by another file"
        super().__init__(
            f"the SQLite file {path} was {what} while the store had it open; decisions written since are in "
            "the spool. Restore the file, or open the store with on_replaced='recreate' to start a new one"
        )
