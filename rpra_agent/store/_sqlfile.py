"""Noticing that the SQLite file under an open store was deleted or replaced."""

from __future__ import annotations

import os
from pathlib import Path

from rpra_agent.store.errors import DatabaseReplacedError

__all__ = ["FileIdentity"]


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class FileIdentity:
    """The ``(st_dev, st_ino)`` of the SQLite file a store opened.

    Args:
        path: The SQLite file (it may not exist yet: the first check records it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None

    def capture(self) -> None:
        """Record the identity of the file now at ``path`` (after the store created it)."""
        self._seen = _identity(self.path)

    def forget(self) -> None:
        """Forget the recorded identity (the next check records the new file)."""
        self._seen = None

    def changed(self) -> DatabaseReplacedError | None:
        """The error to raise if the file was deleted or replaced since it was recorded, else ``None``."""
        if self._seen is None:
            self.capture()
            return None
        found = _identity(self.path)
        return None if found == self._seen else DatabaseReplacedError(self.path, self._seen, found)
