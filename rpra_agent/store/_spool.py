"""A local JSONL spool: where records wait while the database is unreachable.

Each line is ``{"t": "decision" | "run" | "verdict", "d": <row>}``; rows are already
privacy-processed, so the spool holds nothing the database would not. Appends and
drains take an exclusive ``flock`` on the file, so several processes can share one
spool. A drain re-inserts everything (inserts are idempotent on client UUIDs) and
truncates the file only after the database accepted all of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["Spool"]

logger = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: in-process locking only)
    fcntl = None  # type: ignore[assignment]

Record = dict[str, Any]


class Spool:
    """An append-only JSONL file of pending records, shared safely between processes.

    Args:
        path: The spool file (created on first append, with its parent directory).
        fsync: Force each append to disk (survives a machine crash, not only a process crash).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.RLock()

    @property
    def rejected_path(self) -> Path:
        """Where records the database refused (or unreadable lines) are kept for inspection."""
        return self.path.with_name(self.path.stem + ".rejected.jsonl")

    def pending(self) -> bool:
        """Whether the spool holds records."""
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def count(self) -> int:
        """Number of records waiting (lines in the file)."""
        try:
            with self.path.open("rb") as fh:
                return sum(1 for line in fh if line.strip())
        except FileNotFoundError:
            return 0

    @contextlib.contextmanager
    def _locked(self, mode: str) -> Iterator[IO[str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open(mode, encoding="utf-8") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield fh
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def append(self, records: Sequence[Record]) -> None:
        """Append records durably (all of them, or none: a failed write is cut off).

        Raises:
            OSError: the file cannot be written (disk full, read-only, no permission).
        """
        if not records:
            return
        data = "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in records).encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                start = os.lseek(fd, 0, os.SEEK_END)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    if self.fsync:
                        os.fsync(fd)
                except OSError:
                    # Disk full or read-only: cut the torn tail, so later appends stay parseable.
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, start)
                    raise
            finally:
                os.close(fd)  # closing releases the flock

    def reject(self, record: Record, error: str) -> None:
        """Keep a record the database refused, with the error class, beside the spool."""
        self.rejected_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.rejected_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({**record, "error": error}, default=str) + "\n")
        logger.error(
            "a %s record was refused by the database (%s); kept in %s", record.get("t"), error, self.rejected_path
        )

    def drain(
        self,
        handler: Callable[[list[Record]], None],
        *,
        batch_size: int = 1000,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Hand every spooled record to ``handler`` in batches, then empty the spool.

        If ``handler`` raises, the spool is left as it was (records already handed
        over are re-inserted next time, harmlessly) and the error propagates.

        Args:
            handler: Writes a batch to the database.
            batch_size: Records per batch.
            progress: Called with ``(done, total)`` after each batch.

        Returns:
            How many records were handed over.
        """
        if not self.pending():
            return 0
        with self._locked("r+") as fh:
            lines = fh.read().splitlines()
            records: list[Record] = []
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    # A torn last line from a killed process: keep it, never drop it silently.
                    self.reject({"t": "unreadable", "line": number, "text": line}, "JSONDecodeError")
            for start in range(0, len(records), batch_size):
                handler(records[start : start + batch_size])
                if progress is not None:
                    progress(min(start + batch_size, len(records)), len(records))
            fh.seek(0)
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
        logger.info("replayed %d spooled records from %s", len(records), self.path)
        return len(records)
