"""Search and read a local folder of text documents (offline BM25, no path escape).

One visibility rule, :meth:`DocumentFolder.visible`, decides both what search indexes
and what ``read_document`` opens: a relative path with no hidden (``.``) component, a
document suffix, no symlinked directory on the way (the walk does not follow them), and
a regular file of at most ``max_file_bytes`` whose real path (symlinks followed) is
inside the folder and not hidden either.

The index refreshes incrementally: the folder is walked iteratively (no recursion, so
any depth works), each directory's listing is cached with its ``mtime``, and a search
re-lists only the directories whose ``mtime`` changed (one ``stat`` per directory
otherwise) and re-reads only the files whose ``mtime`` or size changed. A file edited in
place leaves its directory's ``mtime`` alone: such edits are picked up when every file
is re-checked, at most ``recheck_files_s`` apart (or on :meth:`refresh` with ``full=True``).
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from tools._bm25 import BM25Index, passages, tokens
from tools._common import validation_message

__all__ = ["DocumentError", "DocumentFolder", "Hit"]

logger = logging.getLogger(__name__)
#: A directory changed this recently may change again within the same mtime tick: list it again next time.
_RACY_NS = 2_000_000_000


class DocumentError(ValueError):
    """A path outside the folder, an unreadable file, or a bad query."""


@dataclass(frozen=True)
class Hit:
    """A search result: the document's relative path, its score and the best passage."""

    path: str
    score: float
    snippet: str


@dataclass
class _Dir:
    mtime_ns: int | None  # None: list it again next time
    files: list[str] = field(default_factory=list)
    subdirs: list[str] = field(default_factory=list)


def _read_text(path: str | Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


class DocumentFolder:
    """A folder of documents the assistant may search and read.

    Args:
        root: The folder.
        extensions: File suffixes that count as documents.
        max_file_bytes: Larger files are neither indexed nor read.
        max_files: At most this many files are indexed (the first in sorted walk order).
        recheck_files_s: Every file's ``mtime`` is re-checked at most this far apart
            (directories are checked on every search).

    Raises:
        DocumentError: when ``root`` is not a directory.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        extensions: tuple[str, ...] = (".md", ".txt", ".rst"),
        max_file_bytes: int = 1_000_000,
        max_files: int = 5000,
        recheck_files_s: float = 60.0,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise DocumentError(f"document folder {str(root)!r} does not exist or is not a directory")
        self.extensions = tuple(e.lower() for e in extensions)
        self.max_file_bytes, self.max_files, self.recheck_files_s = max_file_bytes, max_files, recheck_files_s
        self._lock = threading.Lock()
        self._dirs: dict[str, _Dir] = {}
        self._files: dict[str, tuple[int, int]] = {}  # rel -> (mtime_ns, size) of the indexed version
        self._index = BM25Index()
        self._checked_files_at = 0.0
        self._capped = False

    # -- visibility (one rule for search and read) -----------------------------------
    def _abs(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else str(self.root)

    def _hidden_or_foreign(self, parts: tuple[str, ...]) -> bool:
        return not parts or any(p.startswith(".") for p in parts) or not parts[-1].lower().endswith(self.extensions)

    def visible(self, relative: str, *, parents_checked: bool = False) -> os.stat_result:
        """The ``stat`` of the document at ``relative`` if search and read may see it.

        Args:
            relative: A relative POSIX path inside the folder.
            parents_checked: The caller (the walk) already knows no directory on the
                way is a symlink or hidden.

        Raises:
            DocumentError: saying which rule the path breaks.
        """
        parts = PurePosixPath(relative).parts
        if self._hidden_or_foreign(parts):
            raise DocumentError(f"{relative!r} is hidden or not a document ({', '.join(self.extensions)})")
        path = self._abs("/".join(parts))
        try:
            if not parents_checked:
                prefix = str(self.root)
                for part in parts[:-1]:  # strings, not pathlib: linear in the depth
                    prefix = f"{prefix}/{part}"
                    if not stat.S_ISDIR(os.lstat(prefix).st_mode):
                        raise DocumentError(f"{relative!r} goes through a symlink or a file, which is not followed")
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                real = Path(path).resolve(strict=True)
                if self._hidden_or_foreign(real.relative_to(self.root).parts):
                    raise DocumentError(f"{relative!r} points to a hidden file or a file that is not a document")
                info = os.stat(real)
        except (OSError, RuntimeError, ValueError):  # missing, a loop, or a link out of the folder
            raise DocumentError(f"{relative!r} is outside the document folder or does not exist") from None
        if not stat.S_ISREG(info.st_mode):
            raise DocumentError(f"{relative!r} is not a regular file")
        if info.st_size > self.max_file_bytes:
            raise DocumentError(f"{relative!r} is larger than {self.max_file_bytes} bytes")
        return info

    def resolve(self, relative: str) -> Path:
        """The file a relative path names, refusing anything search would not show."""
        text = relative.strip().replace("\\", "/")
        parts = PurePosixPath(text).parts
        if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text) or ".." in parts or "\x00" in text:
            raise DocumentError(f"{relative!r} is not a relative path inside the document folder")
        self.visible("/".join(parts))
        return Path(self._abs("/".join(parts))).resolve()

    # -- index ---------------------------------------------------------------------------
    def _list(self, rel: str) -> tuple[list[str], list[str]]:
        files, subdirs = [], []
        try:
            with os.scandir(self._abs(rel)) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    child = f"{rel}/{entry.name}" if rel else entry.name
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(child)
                    elif entry.name.lower().endswith(self.extensions):
                        files.append(child)
        except OSError:
            pass
        return sorted(files), sorted(subdirs)

    def refresh(self, *, full: bool = False) -> None:
        """Bring the index up to date (``full``: re-check every file's ``mtime`` too)."""
        with self._lock:
            self._refresh(full=full)

    def _refresh(self, *, full: bool = False) -> None:
        now = time.time()
        recheck = full or now - self._checked_files_at >= self.recheck_files_s
        live: set[str] = set()
        seen: set[str] = set()
        stack = [""]
        while stack and len(live) < self.max_files:
            rel = stack.pop()
            try:
                mtime = os.stat(self._abs(rel), follow_symlinks=False).st_mtime_ns
            except OSError:
                continue
            seen.add(rel)
            listing = self._dirs.get(rel)
            changed = listing is None or listing.mtime_ns != mtime
            if listing is None or changed:
                files, subdirs = self._list(rel)
                listing = self._dirs[rel] = _Dir(None if time.time_ns() - mtime < _RACY_NS else mtime, files, subdirs)
            for name in listing.files:
                if len(live) >= self.max_files:
                    if not self._capped:
                        logger.warning("document folder %s: indexing stops at max_files=%d", self.root, self.max_files)
                    self._capped = True
                    break
                if changed or recheck or name not in self._files:
                    self._update(name)
                if name in self._files:
                    live.add(name)
            stack.extend(reversed(listing.subdirs))
        for rel in set(self._dirs) - seen:
            del self._dirs[rel]
        for rel in set(self._files) - live:
            del self._files[rel]
            self._index.remove(rel)
        if recheck:
            self._checked_files_at = now

    def _update(self, rel: str) -> None:
        """(Re)index one file if it changed; drop it if it is no longer visible."""
        try:
            info = self.visible(rel, parents_checked=True)
        except DocumentError:
            if self._files.pop(rel, None) is not None:
                self._index.remove(rel)
            return
        signature = (info.st_mtime_ns, info.st_size)
        if self._files.get(rel) == signature:
            return
        try:
            text = _read_text(self._abs(rel))
        except OSError:
            return
        racy = time.time_ns() - info.st_mtime_ns < _RACY_NS
        self._files[rel] = (-1, -1) if racy else signature  # a racy file is read again next time it is checked
        self._index.add(rel, Counter(tokens(text)))

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` best documents for ``query`` (BM25), each with its best passage."""
        terms = tokens(query)
        if not terms:
            raise DocumentError("the query has no searchable words")
        with self._lock:
            self._refresh()
            best = self._index.top(terms, k)
        wanted = set(terms)
        hits = []
        for rel, score in best:
            try:
                self.visible(rel)
                text = _read_text(self._abs(rel))
            except (DocumentError, OSError):  # gone since the refresh
                continue
            snippet = max(passages(text), key=lambda p: len(wanted & set(tokens(p))))
            hits.append(Hit(rel, round(score, 4), snippet))
        return hits

    def read(self, relative: str, max_chars: int = 4000) -> str:
        """The text of one document (truncated to ``max_chars``)."""
        text = _read_text(self.resolve(relative))
        return (
            text if len(text) <= max_chars else text[:max_chars] + f"\n[... truncated, {len(text)} characters in all]"
        )

    # -- tools -------------------------------------------------------------------
    def tools(self) -> list[BaseTool]:
        """``search_documents`` and ``read_document`` tools over this folder."""

        def search_documents(query: str, k: int = 5) -> str:
            try:
                hits = self.search(query, k)
            except DocumentError as exc:
                raise ToolException(f"Error: {exc}") from None
            if not hits:
                return "No document matches the query."
            return "\n\n".join(f"[{h.path}] (score {h.score})\n{h.snippet}" for h in hits)

        def read_document(path: str) -> str:
            try:
                return self.read(path)
            except (DocumentError, OSError) as exc:
                raise ToolException(
                    f"Error: {exc if isinstance(exc, DocumentError) else 'cannot read ' + path}"
                ) from None

        return [
            StructuredTool.from_function(
                func=search_documents,
                name="search_documents",
                description="Search the local document folder; returns the best matching documents with a passage each.",
                args_schema=_SearchInput,
                handle_tool_error=True,
                handle_validation_error=validation_message,
            ),
            StructuredTool.from_function(
                func=read_document,
                name="read_document",
                description="Read one document of the local folder by the relative path search_documents returned.",
                args_schema=_ReadInput,
                handle_tool_error=True,
                handle_validation_error=validation_message,
            ),
        ]


class _SearchInput(BaseModel):
    query: str = Field(description="What to look for.", min_length=1, max_length=300)
    k: int = Field(default=5, ge=1, le=10, description="How many documents to return.")


class _ReadInput(BaseModel):
    path: str = Field(
        description="Relative path of a document, as search_documents shows it.", min_length=1, max_length=1000
    )
