"""An incremental BM25 index: documents are added and removed one at a time."""

from __future__ import annotations

import math
import re
from collections import Counter

__all__ = ["BM25Index", "passages", "tokens"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by do does for from has have how i in is it of on or that the this to was what when "
    "where which who why will with".split()
)


def tokens(text: str) -> list[str]:
    """Lower-case words of ``text`` without stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def passages(text: str, size: int = 400) -> list[str]:
    """The paragraphs of ``text``, each cut to ``size`` characters."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return [p[:size] for p in paragraphs] or [text[:size]]


class BM25Index:
    """Term counts per document, with postings, so add, remove and search touch only what they need."""

    def __init__(self) -> None:
        self._docs: dict[str, tuple[int, Counter[str]]] = {}  # key -> (length, term counts)
        self._postings: dict[str, set[str]] = {}
        self._total = 0

    def __len__(self) -> int:
        return len(self._docs)

    def add(self, key: str, counts: Counter[str]) -> None:
        """Index (or re-index) one document."""
        self.remove(key)
        length = sum(counts.values())
        self._docs[key] = (length, counts)
        self._total += length
        for term in counts:
            self._postings.setdefault(term, set()).add(key)

    def remove(self, key: str) -> None:
        """Forget one document (no-op when absent)."""
        entry = self._docs.pop(key, None)
        if entry is None:
            return
        self._total -= entry[0]
        for term in entry[1]:
            keys = self._postings.get(term)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._postings[term]

    def top(self, terms: list[str], k: int) -> list[tuple[str, float]]:
        """The ``k`` best ``(key, score)`` pairs for ``terms`` (BM25, k1=1.2, b=0.75), ties by key."""
        n = len(self._docs)
        if not n:
            return []
        avg = self._total / n or 1.0
        scores: dict[str, float] = {}
        for term in set(terms):
            keys = self._postings.get(term, ())
            if not keys:
                continue
            idf = math.log(1 + (n - len(keys) + 0.5) / (len(keys) + 0.5))
            for key in keys:
                length, counts = self._docs[key]
                tf = counts[term]
                scores[key] = scores.get(key, 0.0) + idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / avg))
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
