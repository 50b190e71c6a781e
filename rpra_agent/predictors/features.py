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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse

from rpra_agent.core.errors import ConfigError
from rpra_agent.predictors._featurebase import (
    REGISTRY,
    FeatureMatrix,
    Featurizer,
    Sample,
    fit_features,
    register_featurizer,
)
from rpra_agent.predictors._text import TextFeaturizer

__all__ = [
    "FeatureUnion",
    "Featurizer",
    "Sample",
    "TextFeaturizer",
    "featurizer_from_state",
    "fit_features",
    "register_featurizer",
]


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
    if kind not in REGISTRY:
        import rpra_agent.predictors.embeddings  # noqa: F401  (registers its featurizers)
    if kind not in REGISTRY:
        raise ConfigError(f"unknown featurizer kind {kind!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[kind](config, arrays, **resources)


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

    @property
    def blocking(self) -> bool:
        """Whether any part calls a model (then async prediction runs in a thread)."""
        return any(getattr(p, "blocking", False) for p in self.parts)

    def fit(self, samples: Sequence[Sample], *, draft: bool) -> None:
        """Fit every part."""
        for part in self.parts:
            part.fit(samples, draft=draft)

    def fit_transform(self, samples: Sequence[Sample], *, draft: bool) -> FeatureMatrix:
        """Fit every part and return the samples' matrix (each part's own ``fit_transform`` where it has one)."""
        return sparse.hstack([fit_features(p, samples, draft=draft) for p in self.parts], format="csr")

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
