"""Featurizers for the learned predictor: what it sees of a request (and of a draft).

A :class:`Sample` is the predictor's view of one step: the bare request, the earlier
conversation, the task tag and, in draft mode, the small model's drafted answer.
A :class:`Featurizer` turns samples into a feature matrix. It is fitted on the training
samples, and saves itself as a JSON ``config`` plus named numpy arrays, so that an
artifact can be rebuilt without pickle (:func:`featurizer_from_state`).

Built in:

- :class:`TextFeaturizer` (the default, no model needed): TF-IDF or hashed word
  n-grams of the request (and of the draft in draft mode), hand-made cues (lengths,
  numbers, code, refusals, hedging, arithmetic checks ...) and a one-hot task tag.
- :class:`~rpra_agent.predictors.embeddings.LlamaEmbeddingFeaturizer`: the small
  model's own embeddings through llama.cpp (a probe on the model's representation).
- :class:`~rpra_agent.predictors.embeddings.SentenceTransformerFeaturizer`:
  sentence-transformers, when installed.
- :class:`FeatureUnion`: several featurizers side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar, runtime_checkable

import numpy as np
from scipy import sparse

from rpra_agent.errors import ConfigError
from rpra_agent.prediction import PredictionRequest
from rpra_agent.predictors._cues import DRAFT_CUES, REQUEST_CUES, draft_cues, request_cues
from rpra_agent.predictors._prompt import message_text
from rpra_agent.predictors._textvec import TextVectorizer

__all__ = [
    "FeatureUnion",
    "Featurizer",
    "Sample",
    "TextFeaturizer",
    "featurizer_from_state",
    "register_featurizer",
]

_CONTEXT_CHARS = 4000
_ROLES = {"human": "user", "ai": "assistant", "tool": "tool"}


@dataclass(frozen=True)
class Sample:
    """What the learned predictor sees of one step.

    Attributes:
        request: The bare request (the last user message).
        context: The earlier conversation as text (``role: content`` lines), if any.
        draft: The small model's drafted answer or action (draft mode), if any.
        task: The task tag (category), if any.
        kind: ``"answer"`` or ``"action"``.
    """

    request: str
    context: str = ""
    draft: str | None = None
    task: str | None = None
    kind: str = "answer"

    @classmethod
    def from_request(cls, request: PredictionRequest) -> Sample:
        """The sample of a :class:`~rpra_agent.prediction.PredictionRequest`."""
        messages = [m for m in request.messages if m.type != "system"]
        last = max((i for i, m in enumerate(messages) if m.type == "human"), default=-1)
        earlier = [{"role": _ROLES.get(m.type, m.type), "content": message_text(m)} for m in messages[:last]]
        if request.tool_names:
            earlier.append({"role": "tools", "content": " ".join(request.tool_names)})
        return cls(
            request=request.request_text,
            context=_render(earlier),
            draft=message_text(request.draft) if request.draft is not None else None,
            task=request.task,
            kind=request.kind,
        )

    @classmethod
    def from_messages(
        cls,
        messages: Sequence[Mapping[str, Any]],
        *,
        draft: str | None = None,
        task: str | None = None,
        kind: str = "answer",
    ) -> Sample:
        """The sample of OpenAI-style ``{"role", "content"}`` messages (a dataset item)."""
        msgs = [m for m in messages if m.get("role") != "system"]
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=-1)
        request = str(msgs[last].get("content") or "") if last >= 0 else ""
        return cls(request=request, context=_render(msgs[: max(last, 0)]), draft=draft, task=task, kind=kind)


def _render(messages: Sequence[Mapping[str, Any]]) -> str:
    text = "\n".join(f"{m.get('role', 'user')}: {m.get('content') or ''}" for m in messages)
    return text[-_CONTEXT_CHARS:]


FeatureMatrix: TypeAlias = sparse.csr_matrix


@runtime_checkable
class Featurizer(Protocol):
    """Turns samples into a feature matrix; saved as a JSON config plus numpy arrays.

    Implementations are registered with :func:`register_featurizer` under ``kind``
    and rebuilt by :func:`featurizer_from_state`.
    """

    kind: str

    def fit(self, samples: Sequence[Sample], *, draft: bool) -> None:
        """Learn vocabularies / scalers from training samples; ``draft`` says whether drafts count."""
        ...

    def transform(self, samples: Sequence[Sample]) -> FeatureMatrix:
        """The feature matrix (one row per sample)."""
        ...

    def config(self) -> dict[str, Any]:
        """A JSON-serialisable description (includes ``kind``)."""
        ...

    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays (numeric or unicode; never objects)."""
        ...


F = TypeVar("F")
_REGISTRY: dict[str, Callable[..., Featurizer]] = {}


def register_featurizer(kind: str) -> Callable[[F], F]:
    """Class decorator: rebuild configs of ``kind`` with ``cls.from_state(config, arrays, **resources)``."""

    def deco(cls: F) -> F:
        _REGISTRY[kind] = cls.from_state  # type: ignore[attr-defined]
        return cls

    return deco


def featurizer_from_state(config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], **resources: Any) -> Featurizer:
    """Rebuild a fitted featurizer from :meth:`Featurizer.config` and :meth:`Featurizer.state`.

    Args:
        config: The saved config.
        arrays: The saved arrays.
        **resources: Live objects a featurizer may need (e.g. ``llama=`` a loaded
            ``llama_cpp.Llama`` or ``llama_model_path=``).

    Raises:
        ConfigError: for an unknown featurizer kind.
    """
    kind = str(config.get("kind", ""))
    if kind not in _REGISTRY:
        import rpra_agent.predictors.embeddings  # noqa: F401  (registers its featurizers)
    if kind not in _REGISTRY:
        raise ConfigError(f"unknown featurizer kind {kind!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[kind](config, arrays, **resources)


def _scaled(block: sparse.spmatrix | np.ndarray, weight: float) -> sparse.csr_matrix:
    out = sparse.csr_matrix(block, dtype=np.float64)
    return out * weight if weight != 1.0 else out


@register_featurizer("text")
class TextFeaturizer:
    """TF-IDF (or hashed) word n-grams, hand-made cues and the task tag: the default.

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
        weights: Multipliers per block: ``request``, ``draft``, ``cues``, ``task``.
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
        self.context = context
        self.cues = cues
        self.task = task
        self.weights = {"request": 1.0, "draft": 1.0, "cues": 1.0, "task": 1.0, **(weights or {})}
        self.draft = False
        self._request: TextVectorizer | None = None
        self._draft: TextVectorizer | None = None
        self._mean = np.zeros(0)
        self._scale = np.ones(0)
        self._tasks: dict[str, int] = {}

    # -- fitting ---------------------------------------------------------------
    def _request_text(self, s: Sample) -> str:
        return f"{s.context}\n{s.request}" if self.context and s.context else s.request

    def _cue_matrix(self, samples: Sequence[Sample]) -> np.ndarray:
        rows = [request_cues(s.request) + (draft_cues(s.draft or "", s.request) if self.draft else []) for s in samples]
        width = len(REQUEST_CUES) + (len(DRAFT_CUES) if self.draft else 0)
        return np.asarray(rows, dtype=float).reshape(len(samples), width)

    def fit(self, samples: Sequence[Sample], *, draft: bool) -> None:
        """Learn the vocabularies, the cue scaler and the task tags."""
        self.draft = draft
        self._request = TextVectorizer.fit(self.params, [self._request_text(s) for s in samples])
        self._draft = TextVectorizer.fit(self.params, [s.draft or "" for s in samples]) if draft else None
        if self.cues:
            cues = self._cue_matrix(samples)
            self._mean = cues.mean(axis=0)
            scale = cues.std(axis=0)
            self._scale = np.where(scale > 1e-9, scale, 1.0)
        tags = sorted({s.task for s in samples if s.task})
        self._tasks = {t: i for i, t in enumerate(tags)} if self.task else {}

    def transform(self, samples: Sequence[Sample]) -> FeatureMatrix:
        """The feature matrix: request block, draft block, cues, task one-hot."""
        if self._request is None:
            raise ConfigError("the featurizer is not fitted: call fit() first")
        w = self.weights
        blocks = [_scaled(self._request.transform([self._request_text(s) for s in samples]), w["request"])]
        if self._draft is not None:
            blocks.append(_scaled(self._draft.transform([s.draft or "" for s in samples]), w["draft"]))
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
            "draft": self.draft,
            "tasks": sorted(self._tasks, key=self._tasks.__getitem__),
        }

    def state(self) -> dict[str, np.ndarray]:
        """Vocabularies, IDF weights and the cue scaler."""
        out: dict[str, np.ndarray] = {"cue_mean": self._mean, "cue_scale": self._scale}
        for prefix, vec in (("request", self._request), ("draft", self._draft)):
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
            weights={str(k): float(v) for k, v in config["weights"].items()},
        )
        self.draft = bool(config["draft"])
        self._mean = np.asarray(arrays["cue_mean"], dtype=float)
        self._scale = np.asarray(arrays["cue_scale"], dtype=float)
        self._tasks = {str(t): i for i, t in enumerate(config["tasks"])}

        def sub(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + "_")}

        self._request = TextVectorizer.from_state(self.params, sub("request"))
        self._draft = TextVectorizer.from_state(self.params, sub("draft")) if self.draft else None
        return self


@register_featurizer("union")
class FeatureUnion:
    """Several featurizers side by side (their matrices concatenated).

    Args:
        parts: The featurizers, e.g. ``[TextFeaturizer(), LlamaEmbeddingFeaturizer(path)]``.
    """

    kind = "union"

    def __init__(self, parts: Sequence[Featurizer]) -> None:
        if not parts:
            raise ConfigError("FeatureUnion needs at least one featurizer")
        self.parts = list(parts)

    def fit(self, samples: Sequence[Sample], *, draft: bool) -> None:
        """Fit every part."""
        for part in self.parts:
            part.fit(samples, draft=draft)

    def transform(self, samples: Sequence[Sample]) -> FeatureMatrix:
        """Every part's matrix, side by side."""
        return sparse.hstack([p.transform(samples) for p in self.parts], format="csr")

    def config(self) -> dict[str, Any]:
        """The parts' configs."""
        return {"kind": self.kind, "parts": [p.config() for p in self.parts]}

    def state(self) -> dict[str, np.ndarray]:
        """The parts' arrays, keys prefixed with the part's index."""
        return {f"{i}/{k}": v for i, p in enumerate(self.parts) for k, v in p.state().items()}

    @classmethod
    def from_state(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], **resources: Any) -> FeatureUnion:
        """Rebuild every part."""
        parts = []
        for i, part in enumerate(config["parts"]):
            prefix = f"{i}/"
            sub = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            parts.append(featurizer_from_state(part, sub, **resources))
        return cls(parts)
