"""The default featurizer: TF-IDF (or hashed) word n-grams, hand-made cues and the task tag."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse

from rpra_agent.core.errors import ConfigError
from rpra_agent.predictors._cues import DRAFT_CUES, REQUEST_CUES, draft_cues, request_cues
from rpra_agent.predictors._featurebase import FeatureMatrix, Sample, register_featurizer
from rpra_agent.predictors._textvec import TextVectorizer

__all__ = ["DEFAULT_WEIGHTS", "TextFeaturizer"]

DEFAULT_WEIGHTS: dict[str, float] = {
    "request": 1.0,
    "draft": 1.0,
    "request_chars": 1.0,
    "draft_chars": 1.0,
    "cues": 0.5,
    "task": 3.0,
}
"""Block multipliers: the task tag up (3) and the cues down (0.5), what the nested search chose on
MT-bench almost every time (issue 15); a larger weight is a weaker L2 penalty on that block."""


def _scaled(block: sparse.spmatrix | np.ndarray, weight: float) -> sparse.csr_matrix:
    out = sparse.csr_matrix(block, dtype=np.float64)
    return out * weight if weight != 1.0 else out


@register_featurizer("text")
class TextFeaturizer:
    """TF-IDF (or hashed) word and character n-grams, hand-made cues and the task tag: the default.

    Args:
        vectorizer: ``"tfidf"`` (vocabulary learned from the training samples) or
            ``"hashing"`` (no vocabulary; ``n_features`` buckets).
        ngram_range: Word n-gram sizes.
        min_df: Minimum document frequency of a TF-IDF term.
        max_features: Vocabulary cap of each TF-IDF block.
        n_features: Buckets of the hashing vectorizer.
        context: Include the earlier conversation in the request's text block.
        cues: Include the hand-made cues (:mod:`rpra_agent.predictors._cues`).
        task: Include a one-hot of the task tags seen in training.
        chars: Character n-gram sizes (``char_wb`` TF-IDF of the first ``char_limit``
            characters of each text) added as the ``request_chars`` / ``draft_chars``
            blocks; ``None`` for words only.
        char_limit: Characters of each text the character block reads.
        weights: Multipliers per block: ``request``, ``draft``, ``request_chars``,
            ``draft_chars``, ``cues``, ``task`` (default :data:`DEFAULT_WEIGHTS`).
    """

    kind = "text"

    def __init__(
        self,
        *,
        vectorizer: str = "tfidf",
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        max_features: int = 20000,
        n_features: int = 2**16,
        context: bool = True,
        cues: bool = True,
        task: bool = True,
        chars: tuple[int, int] | None = (2, 4),
        char_limit: int = 2000,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        if vectorizer not in ("tfidf", "hashing"):
            raise ConfigError(f"vectorizer must be 'tfidf' or 'hashing', not {vectorizer!r}")
        self.params: dict[str, Any] = {
            "vectorizer": vectorizer,
            "ngram_range": [int(ngram_range[0]), int(ngram_range[1])],
            "min_df": int(min_df),
            "max_features": int(max_features),
            "n_features": int(n_features),
        }
        self.char_params: dict[str, Any] | None = None
        if chars is not None:
            self.char_params = {
                **self.params,
                "analyzer": "char_wb",
                "ngram_range": [int(chars[0]), int(chars[1])],
                "limit": int(char_limit),
            }
        self.context = context
        self.cues = cues
        self.task = task
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self.draft = False
        self._request: TextVectorizer | None = None
        self._draft: TextVectorizer | None = None
        self._request_chars: TextVectorizer | None = None
        self._draft_chars: TextVectorizer | None = None
        self._mean = np.zeros(0)
        self._scale = np.ones(0)
        self._tasks: dict[str, int] = {}

    # -- fitting ---------------------------------------------------------------
    def _request_text(self, s: Sample) -> str:
        return f"{s.context}\n{s.request}" if self.context and s.context else s.request

    def _chars(self, samples: Sequence[Sample], which: str) -> list[str]:
        limit = int(self.char_params["limit"]) if self.char_params else 0
        if which == "request":
            return [s.request[:limit] for s in samples]
        return [(s.draft or "")[:limit] for s in samples]

    def _cue_matrix(self, samples: Sequence[Sample]) -> np.ndarray:
        rows = [request_cues(s.request) + (draft_cues(s.draft or "", s.request) if self.draft else []) for s in samples]
        width = len(REQUEST_CUES) + (len(DRAFT_CUES) if self.draft else 0)
        return np.asarray(rows, dtype=float).reshape(len(samples), width)

    def fit(self, samples: Sequence[Sample], *, draft: bool) -> None:
        """Learn the vocabularies, the cue scaler and the task tags."""
        self._fit(samples, draft=draft)

    def fit_transform(self, samples: Sequence[Sample], *, draft: bool) -> FeatureMatrix:
        """:meth:`fit`, then :meth:`transform` of the same samples, analysing each text once (half the n-gram work)."""
        return self._assemble(samples, self._fit(samples, draft=draft))

    def transform(self, samples: Sequence[Sample]) -> FeatureMatrix:
        """The feature matrix: request block, draft block, cues, task one-hot."""
        return self._assemble(samples, {})

    def _fit(self, samples: Sequence[Sample], *, draft: bool) -> dict[str, sparse.csr_matrix]:
        """Fit, and return the fitted text blocks' rows of ``samples`` (unweighted) by block name."""
        self.draft = draft
        rows: dict[str, sparse.csr_matrix] = {}
        self._request, rows["request"] = TextVectorizer.fit_transform(
            self.params, [self._request_text(s) for s in samples]
        )
        self._draft = self._request_chars = self._draft_chars = None
        if draft:
            self._draft, rows["draft"] = TextVectorizer.fit_transform(self.params, [s.draft or "" for s in samples])
        if self.char_params is not None:
            self._request_chars, rows["request_chars"] = TextVectorizer.fit_transform(
                self.char_params, self._chars(samples, "request")
            )
            if draft:
                self._draft_chars, rows["draft_chars"] = TextVectorizer.fit_transform(
                    self.char_params, self._chars(samples, "draft")
                )
        if self.cues:
            cues = self._cue_matrix(samples)
            self._mean = cues.mean(axis=0)
            scale = cues.std(axis=0)
            self._scale = np.where(scale > 1e-9, scale, 1.0)
        tags = sorted({s.task for s in samples if s.task})
        self._tasks = {t: i for i, t in enumerate(tags)} if self.task else {}
        return rows

    def _assemble(self, samples: Sequence[Sample], rows: dict[str, sparse.csr_matrix]) -> FeatureMatrix:
        """The weighted blocks side by side; a text block in ``rows`` is used as it is, others are transformed."""
        if self._request is None:
            raise ConfigError("the featurizer is not fitted: call fit() first")
        w = self.weights
        texts: list[tuple[str, TextVectorizer | None, Callable[[], list[str]]]] = [
            ("request", self._request, lambda: [self._request_text(s) for s in samples]),
            ("draft", self._draft, lambda: [s.draft or "" for s in samples]),
            ("request_chars", self._request_chars, lambda: self._chars(samples, "request")),
            ("draft_chars", self._draft_chars, lambda: self._chars(samples, "draft")),
        ]
        blocks = [
            _scaled(rows[name] if name in rows else vec.transform(text()), w[name])
            for name, vec, text in texts
            if vec is not None
        ]
        if self.cues:
            z = np.clip((self._cue_matrix(samples) - self._mean) / self._scale, -5.0, 5.0)
            blocks.append(_scaled(z, w["cues"]))
        if self._tasks:
            onehot = sparse.lil_matrix((len(samples), len(self._tasks)))
            for i, s in enumerate(samples):
                if s.task in self._tasks:
                    onehot[i, self._tasks[s.task]] = 1.0
            blocks.append(_scaled(onehot, w["task"]))
        return sparse.hstack(blocks, format="csr")

    def blocks(self) -> dict[str, tuple[int, int]]:
        """Column range ``[start, end)`` of each block of :meth:`transform`'s output."""
        if self._request is None:
            raise ConfigError("the featurizer is not fitted: call fit() first")
        widths = [("request", self._request.width)]
        if self._draft is not None:
            widths.append(("draft", self._draft.width))
        if self._request_chars is not None:
            widths.append(("request_chars", self._request_chars.width))
        if self._draft_chars is not None:
            widths.append(("draft_chars", self._draft_chars.width))
        if self.cues:
            widths.append(("cues", len(self._mean)))
        if self._tasks:
            widths.append(("task", len(self._tasks)))
        out, start = {}, 0
        for name, width in widths:
            out[name] = (start, start + width)
            start += width
        return out

    # -- persistence -----------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """JSON description: parameters and the fitted task tags."""
        return {
            "kind": self.kind,
            **self.params,
            "context": self.context,
            "cues": self.cues,
            "task": self.task,
            "weights": dict(self.weights),
            "chars": None if self.char_params is None else list(self.char_params["ngram_range"]),
            "char_limit": None if self.char_params is None else self.char_params["limit"],
            "draft": self.draft,
            "tasks": sorted(self._tasks, key=self._tasks.__getitem__),
        }

    def state(self) -> dict[str, np.ndarray]:
        """Vocabularies, IDF weights and the cue scaler."""
        out: dict[str, np.ndarray] = {"cue_mean": self._mean, "cue_scale": self._scale}
        vectors = (
            ("request", self._request),
            ("draft", self._draft),
            ("request_chars", self._request_chars),
            ("draft_chars", self._draft_chars),
        )
        for prefix, vec in vectors:
            if vec is not None:
                out.update({f"{prefix}_{k}": v for k, v in vec.state().items()})
        return out

    @classmethod
    def from_state(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], **_: Any) -> TextFeaturizer:
        """Rebuild from :meth:`config` and :meth:`state`."""
        self = cls(
            vectorizer=str(config["vectorizer"]),
            ngram_range=(int(config["ngram_range"][0]), int(config["ngram_range"][1])),
            min_df=int(config["min_df"]),
            max_features=int(config["max_features"]),
            n_features=int(config["n_features"]),
            context=bool(config["context"]),
            cues=bool(config["cues"]),
            task=bool(config["task"]),
            chars=None if config.get("chars") is None else (int(config["chars"][0]), int(config["chars"][1])),
            char_limit=int(config.get("char_limit") or 2000),
            weights={str(k): float(v) for k, v in config["weights"].items()},
        )
        self.draft = bool(config["draft"])
        self._mean = np.asarray(arrays["cue_mean"], dtype=float)
        self._scale = np.asarray(arrays["cue_scale"], dtype=float)
        self._tasks = {str(t): i for i, t in enumerate(config["tasks"])}

        def sub(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k in (prefix + "_terms", prefix + "_idf")}

        self._request = TextVectorizer.from_state(self.params, sub("request"))
        self._draft = TextVectorizer.from_state(self.params, sub("draft")) if self.draft else None
        if self.char_params is not None:
            self._request_chars = TextVectorizer.from_state(self.char_params, sub("request_chars"))
            self._draft_chars = TextVectorizer.from_state(self.char_params, sub("draft_chars")) if self.draft else None
        return self
