"""Search and read a local folder of text documents (offline BM25, no path escape).

Only regular text files under the folder (``.md``, ``.txt``, ``.rst`` by default)
are visible. A path argument must be relative, may not contain ``..``, and must
resolve (symlinks followed) inside the folder; hidden files and files or symlinks
pointing outside are never indexed.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from tools._common import validation_message

__all__ = ["DocumentError", "DocumentFolder", "Hit"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by do does for from has have how i in is it of on or that the this to was what when "
    "where which who why will with".split()
)


class DocumentError(ValueError):
    """A path outside the folder, an unreadable file, or a bad query."""


@dataclass(frozen=True)
class Hit:
    """A search result: the document's relative path, its score and the best passage."""

    path: str
    score: float
    snippet: str


def _tokens(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def _passages(text: str, size: int = 400) -> list[str]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return [p[:size] for p in paragraphs] or [text[:size]]


class DocumentFolder:
    """A folder of documents the assistant may search and read.

    Args:
        root: The folder.
        extensions: File suffixes that count as documents.
        max_file_bytes: Larger files are skipped.
        max_files: At most this many files are indexed.

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
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise DocumentError(f"document folder {str(root)!r} does not exist or is not a directory")
        self.extensions, self.max_file_bytes, self.max_files = extensions, max_file_bytes, max_files
        self._lock = threading.Lock()
        self._signature: tuple[tuple[str, float, int], ...] | None = None
        self._docs: dict[str, list[str]] = {}
        self._texts: dict[str, str] = {}
        self._df: Counter[str] = Counter()

    # -- paths -----------------------------------------------------------------
    def _inside(self, path: Path) -> bool:
        try:
            path.resolve(strict=True).relative_to(self.root)
        except (OSError, ValueError):
            return False
        return True

    def resolve(self, relative: str) -> Path:
        """The file a relative path names, refusing anything outside the folder."""
        text = relative.strip().replace("\\", "/")
        parts = PurePosixPath(text).parts
        if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text) or ".." in parts or "\x00" in text:
            raise DocumentError(f"{relative!r} is not a relative path inside the document folder")
        path = self.root.joinpath(*parts)
        if not self._inside(path):
            raise DocumentError(f"{relative!r} is outside the document folder or does not exist")
        if not path.is_file() or path.suffix.lower() not in self.extensions:
            raise DocumentError(f"{relative!r} is not a document ({', '.join(self.extensions)})")
        return path.resolve()

    def _files(self) -> list[Path]:
        found = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root)
            if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() not in self.extensions:
                continue
            if path.is_file() and self._inside(path) and path.stat().st_size <= self.max_file_bytes:
                found.append(path)
            if len(found) >= self.max_files:
                break
        return found

    # -- index -------------------------------------------------------------------
    def _refresh(self) -> None:
        files = self._files()
        signature = tuple((str(p), p.stat().st_mtime, p.stat().st_size) for p in files)
        if signature == self._signature:
            return
        docs, texts = {}, {}
        for path in files:
            rel = path.relative_to(self.root).as_posix()
            texts[rel] = path.read_text(encoding="utf-8", errors="replace")
            docs[rel] = _tokens(texts[rel])
        self._docs, self._texts, self._signature = docs, texts, signature
        self._df = Counter(t for tokens in docs.values() for t in set(tokens))

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` best documents for ``query`` (BM25), each with its best passage."""
        terms = _tokens(query)
        if not terms:
            raise DocumentError("the query has no searchable words")
        with self._lock:
            self._refresh()
            docs, texts, df = self._docs, self._texts, self._df
        n = len(docs)
        avg = sum(len(t) for t in docs.values()) / n if n else 1.0
        scores: dict[str, float] = {}
        for rel, tokens in docs.items():
            tf = Counter(tokens)
            score = 0.0
            for term in set(terms):
                if tf[term]:
                    idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                    score += idf * tf[term] * 2.2 / (tf[term] + 1.2 * (0.25 + 0.75 * len(tokens) / avg))
            if score > 0:
                scores[rel] = score
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        wanted = set(terms)
        return [
            Hit(rel, round(score, 4), max(_passages(texts[rel]), key=lambda p: len(wanted & set(_tokens(p)))))
            for rel, score in best
        ]

    def read(self, relative: str, max_chars: int = 4000) -> str:
        """The text of one document (truncated to ``max_chars``)."""
        path = self.resolve(relative)
        if path.stat().st_size > self.max_file_bytes:
            raise DocumentError(f"{relative!r} is larger than {self.max_file_bytes} bytes")
        text = path.read_text(encoding="utf-8", errors="replace")
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
            except DocumentError as exc:
                raise ToolException(f"Error: {exc}") from None

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
        description="Relative path of a document, as search_documents shows it.", min_length=1, max_length=300
    )
