"""Text baselines the learned predictor must beat, usable as predictors and as rows of ``rpra eval``.

:class:`RidgeTextPredictor` is TF-IDF + ridge regression on the same inputs as the
learned predictor (the request with its earlier turns; in draft mode also the small
model's answer): word 1-2-gram sublinear TF-IDF blocks (no cues, no task tag, no
character n-grams), a ridge regression of the small answer's score. It is the
baseline of issue 15's bar (and of the bundled recordings' extraction notes), written once so the
evaluation and the benchmarks score the same thing.

Example::

    from rpra_agent.predictors.baselines import RidgeTextPredictor
    from rpra_agent.predictors.crossfit import crossfit_scores

    keep = crossfit_scores(dataset, lambda: RidgeTextPredictor(mode="draft"), mode="draft")
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.predictors._featurebase import fit_features
from rpra_agent.predictors._text import TextFeaturizer
from rpra_agent.predictors._training import Mode, dataset_examples
from rpra_agent.predictors.data import RecordedDataset, scale_of
from rpra_agent.predictors.features import Sample

__all__ = ["RidgeTextPredictor", "point_distribution"]


def point_distribution(scale: GradeScale, value: float) -> dict[str, float]:
    """A distribution whose mean is ``value`` (clipped to the scale): mass on the two nearest grades."""
    pos = scale.position(value)
    low = int(math.floor(pos))
    out = dict.fromkeys(scale.labels, 0.0)
    if low >= len(scale.labels) - 1:
        out[scale.labels[-1]] = 1.0
        return out
    frac = pos - low
    out[scale.labels[low]] = 1.0 - frac
    out[scale.labels[low + 1]] += frac
    return out


class RidgeTextPredictor:
    """TF-IDF + ridge regression of the small answer's score: the baseline of the learned predictor.

    Args:
        mode: ``"request"`` (request and earlier turns) or ``"draft"`` (also the
            small model's answer, as its own TF-IDF block).
        alpha: Ridge penalty.
        scale: The scores' grade scale (inferred by :meth:`fit_dataset`; default
            :meth:`GradeScale.paper` for :meth:`fit`).
        name: Recorded as the predictor's name (default ``ridge_text`` / ``ridge_text_draft``).
    """

    def __init__(
        self, *, mode: Mode = "request", alpha: float = 1.0, scale: GradeScale | None = None, name: str | None = None
    ) -> None:
        if mode not in ("request", "draft"):
            raise ConfigError(f"mode must be 'request' or 'draft', not {mode!r}")
        if alpha <= 0:
            raise ConfigError(f"alpha must be positive, got {alpha}")
        self.mode: Mode = mode
        self.alpha = float(alpha)
        self.scale = scale or GradeScale.paper()
        self._scale_given = scale is not None
        self.name = name or ("ridge_text_draft" if mode == "draft" else "ridge_text")
        self.featurizer = TextFeaturizer(cues=False, task=False, chars=None)
        self._model: Any = None
        self._version = "unfitted"

    @property
    def version(self) -> str:
        """``ridge-<mode>-<hash of the training data>``."""
        return self._version

    @property
    def needs_draft(self) -> bool:
        """Draft mode: it predicts from the small model's drafted answer (the graph's ``verify`` paradigm)."""
        return self.mode == "draft"

    def fit(self, samples: Sequence[Sample], scores: Sequence[float] | np.ndarray) -> RidgeTextPredictor:
        """Train on samples and the small answers' scores (NaN scores are left out).

        Raises:
            ConfigError: with fewer than two scored samples or a missing draft in draft mode.
        """
        from sklearn.linear_model import Ridge

        y = np.asarray(scores, dtype=float)
        if len(y) != len(samples):
            raise ConfigError(f"{len(samples)} samples but {len(y)} scores")
        self.scale.check_scores(y)
        keep = np.flatnonzero(~np.isnan(y))
        if len(keep) < 2:
            raise ConfigError(f"the ridge baseline needs at least 2 judged examples, got {len(keep)}")
        train = [samples[int(i)] for i in keep]
        if self.mode == "draft" and any(s.draft is None for s in train):
            raise ConfigError("draft mode needs every training sample's draft (the small model's answer)")
        X = fit_features(self.featurizer, train, draft=self.mode == "draft")
        self._model = Ridge(alpha=self.alpha).fit(X, y[keep])
        digest = hashlib.sha256(
            repr([(s.request, s.draft, float(v)) for s, v in zip(train, y[keep], strict=True)]).encode()
        )
        self._version = f"ridge-{self.mode}-{digest.hexdigest()[:10]}"
        return self

    def fit_dataset(self, dataset: RecordedDataset) -> RidgeTextPredictor:
        """Train on a recorded dataset: the weak model's scores are the labels."""
        if not self._scale_given:
            self.scale = scale_of(dataset)
        samples, scores, _ = dataset_examples(dataset, mode=self.mode)
        return self.fit(samples, scores)

    def keep_scores(self, samples: Sequence[Sample]) -> np.ndarray:
        """The predicted score of each sample (higher = keep the small answer)."""
        if self._model is None:
            raise PredictorError("the ridge baseline is not trained: fit() it first", predictor=self.name)
        return np.asarray(self._model.predict(self.featurizer.transform(samples)), dtype=float)

    def predict(self, request: PredictionRequest) -> Prediction:
        """The predicted score as a distribution on its two nearest grades (mean = the prediction).

        Raises:
            PredictorError: when untrained, or draft mode gets no draft.
        """
        start = time.perf_counter()
        sample = Sample.from_request(request)
        if self.mode == "draft" and sample.draft is None:
            raise PredictorError("this ridge baseline was trained in draft mode and needs a draft", predictor=self.name)
        value = float(self.keep_scores([sample])[0])
        return Prediction.from_distribution(
            point_distribution(self.scale, value),
            scale=self.scale,
            predictor=self.name,
            version=self.version,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            method="learned",
        )

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict` (no I/O)."""
        return self.predict(request)
