"""The learned predictor: a calibrated head trained on hindsight labels, no model call per request.

The judge's verdicts on the small model's past answers (the decision log) or a
recorded evaluation's scores are the labels; the request (and, in ``draft`` mode, the
small model's drafted answer) is the input. A featurizer (TF-IDF + cues by default)
feeds a proportional-odds logistic model over the grades of a
:class:`~rpra_agent.core.grades.GradeScale`, whose regularisation is tuned by an inner
cross-validation on the training data. Predicting costs about a millisecond.

Example::

    from rpra_agent.evaluation.datasets import load_dataset
    from rpra_agent.predictors.learned import LearnedPredictor

    predictor = LearnedPredictor(mode="request").fit_dataset(load_dataset("mt-bench"))
    predictor.save("artifacts/learned-mt-bench")
    predictor = LearnedPredictor.load("artifacts/learned-mt-bench")   # no pickle
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rpra_agent.core.decision import utcnow
from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.predictors._blocksearch import fit_head
from rpra_agent.predictors._learned_io import ARTIFACT_KIND, Persistent
from rpra_agent.predictors._learned_metrics import oof_metrics
from rpra_agent.predictors._ordinal import DEFAULT_CS, OrdinalLogit
from rpra_agent.predictors._training import Mode, dataset_examples, store_examples
from rpra_agent.predictors.features import Featurizer, Sample, TextFeaturizer

if TYPE_CHECKING:
    from rpra_agent.evaluation.datasets import EvalDataset
    from rpra_agent.store.base import DecisionFilter, DecisionStore

__all__ = ["ARTIFACT_KIND", "DEFAULT_BLOCK_GRID", "NO_WORSE_SCALE", "LearnedPredictor", "Target"]

logger = logging.getLogger(__name__)

Target = Literal["small", "no_worse"]

NO_WORSE_SCALE = GradeScale(("worse", "no_worse"), (0.0, 1.0), "no_worse", "no_worse")
"""The scale of ``target="no_worse"``: is the small answer graded at least as well as the large one?"""

DEFAULT_BLOCK_GRID: Mapping[str, Sequence[float]] = {"task": (1.0, 3.0), "cues": (0.5, 1.0, 2.0)}
"""Block weights searched by default (with ``C``) in the inner cross-validation."""


class LearnedPredictor(Persistent):
    """Predicts the judge's grade distribution from the request (and draft) with a trained head.

    Args:
        featurizer: How samples become features (default :class:`TextFeaturizer`).
        scale: The grade scale; inferred from the data by :meth:`fit_dataset` /
            :meth:`fit_store` when not given.
        mode: ``"request"`` (the request alone, before answering) or ``"draft"``
            (also the small model's drafted answer: verify-before-show).
        Cs: Regularisation grid searched by inner cross-validation.
        C: A fixed regularisation (skips the search over ``Cs``; faster).
        folds: Inner cross-validation folds.
        seed: Seed of the inner folds.
        block_grid: Candidate weights of the featurizer's blocks (e.g. ``task``,
            ``cues``), searched with ``C`` by the same inner cross-validation (nested:
            the held-out data never choose them). Needs a featurizer with ``blocks()``
            and ``weights`` (the :class:`TextFeaturizer`); ``None`` keeps its weights.
        target: ``"small"`` (default): predict the judge's grade of the small
            model's answer. ``"no_worse"``: predict whether the small answer is graded
            at least as well as the large model's (a calibrated P(no worse) on the
            two-label :data:`NO_WORSE_SCALE`, like RouteLLM's win probability):
            deferral is then ordered by its benefit, which helps where the large model
            also fails often (correctness data). Needs the large model's scores too.
        name: Recorded as the predictor's name (default ``learned``, with ``_draft``
            and ``_no_worse`` suffixes for those options).
    """

    name: str = "learned"

    def __init__(
        self,
        featurizer: Featurizer | None = None,
        *,
        scale: GradeScale | None = None,
        mode: Mode = "request",
        Cs: Sequence[float] = DEFAULT_CS,
        C: float | None = None,
        folds: int = 3,
        seed: int = 0,
        block_grid: Mapping[str, Sequence[float]] | None = DEFAULT_BLOCK_GRID,
        target: Target = "small",
        name: str | None = None,
    ) -> None:
        if mode not in ("request", "draft"):
            raise ConfigError(f"mode must be 'request' or 'draft', not {mode!r}")
        if target not in ("small", "no_worse"):
            raise ConfigError(f"target must be 'small' or 'no_worse', not {target!r}")
        if target == "no_worse":
            if scale is not None and scale != NO_WORSE_SCALE:
                raise ConfigError("target='no_worse' predicts on NO_WORSE_SCALE; do not pass another scale")
            scale = NO_WORSE_SCALE
        self.target: Target = target
        self.featurizer: Featurizer = featurizer if featurizer is not None else TextFeaturizer()
        self.scale = scale or GradeScale.paper()
        self._scale_given = scale is not None
        self.mode: Mode = mode
        suffix = ("_draft" if mode == "draft" else "") + ("_no_worse" if target == "no_worse" else "")
        self.name = name or f"learned{suffix}"
        self._options: dict[str, Any] = {"Cs": tuple(Cs), "C": C, "folds": folds, "seed": seed}
        self.model = OrdinalLogit(len(self.scale.labels), **self._options)
        self.block_grid = {k: tuple(float(x) for x in v) for k, v in (block_grid or {}).items()}
        self.fitted = False
        self._block_search: dict[str, Any] = {}
        self.training: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self._version = "unfitted"

    # -- training --------------------------------------------------------------
    def fit(
        self,
        samples: Sequence[Sample],
        scores: Sequence[float] | np.ndarray,
        *,
        large_scores: Sequence[float] | np.ndarray | None = None,
        groups: Sequence[str] | None = None,
        source: str = "samples",
    ) -> LearnedPredictor:
        """Train on samples and the judge's scores of the small model's answers.

        Items whose score is NaN are left out. ``groups`` keeps related items (turns
        of one conversation) together in the inner folds. With ``target="no_worse"``
        the large model's scores of the same items are needed too (``large_scores``).

        Raises:
            ConfigError: with fewer than two scored samples, drafts missing in draft
                mode, or no large scores for the ``no_worse`` target.
        """
        values = np.asarray(scores, dtype=float)
        if len(values) != len(samples):
            raise ConfigError(f"{len(samples)} samples but {len(values)} scores")
        if self.target == "no_worse":
            if large_scores is None or len(large_scores) != len(values):
                raise ConfigError("target='no_worse' needs large_scores: the large model's score of every sample")
            large = np.asarray(large_scores, dtype=float)
            values = np.where(np.isnan(values) | np.isnan(large), np.nan, (values >= large).astype(float))
        keep = np.flatnonzero(~np.isnan(values))
        if len(keep) < 2:
            raise ConfigError(f"the learned predictor needs at least 2 judged examples, got {len(keep)}")
        train = [samples[int(i)] for i in keep]
        if self.mode == "draft" and any(s.draft is None for s in train):
            raise ConfigError("draft mode needs every training sample's draft (the small model's answer)")
        labels = [self.scale.label_for(float(values[i])) for i in keep]
        y = np.array([self.scale.labels.index(lab) for lab in labels], dtype=int)
        start = time.perf_counter()
        self.featurizer.fit(train, draft=self.mode == "draft")
        self.model, self._block_search = fit_head(
            self.featurizer,
            train,
            y,
            None if groups is None else [groups[int(i)] for i in keep],
            n_labels=len(self.scale.labels),
            options=self._options,
            grid=self.block_grid,
        )
        digest = _data_hash(train, values[keep])
        self.training = {
            "n": len(train),
            "source": source,
            "data_sha256": digest,
            "label_counts": {lab: labels.count(lab) for lab in self.scale.labels if lab in labels},
            "trained_at": utcnow(),
            "seconds": round(time.perf_counter() - start, 3),
            "n_features": int(self.model.beta.shape[0]),
        }
        self.metrics = oof_metrics(self.model, y, values[keep], self.scale)
        if self._block_search:
            self.metrics["block_weights"] = self._block_search
        self.fitted = True
        self._version = self._fingerprint()
        logger.info(
            "learned predictor %s trained on %d examples from %s (C=%s, ECE %s)",
            self.version, len(train), source, self.model.C, self.metrics.get("ece"),
        )  # fmt: skip
        return self

    def fit_dataset(self, dataset: EvalDataset, *, model: str | None = None) -> LearnedPredictor:
        """Train on a recorded dataset: ``model``'s (default the weak model's) scores are the labels."""
        if not self._scale_given:
            from rpra_agent.evaluation.datasets import scale_for

            self.scale = scale_for(dataset)
        samples, scores, groups = dataset_examples(dataset, mode=self.mode, model=model)
        large = dataset.scores(dataset.strong) if self.target == "no_worse" else None
        return self.fit(samples, scores, large_scores=large, groups=groups, source=f"dataset:{dataset.name}")

    def fit_store(self, store: DecisionStore, *, where: DecisionFilter | None = None) -> LearnedPredictor:
        """Train on judged decisions (hindsight labels) from the decision log.

        The log keeps the bare request only, so a :class:`TextFeaturizer` is switched
        to ``context=False`` (what it sees at prediction time then matches training).
        """
        samples, scores, large, groups, scale_name = store_examples(store, mode=self.mode, where=where)
        if not self._scale_given and self.target == "small":
            self.scale = GradeScale.named(scale_name)
        if isinstance(self.featurizer, TextFeaturizer):
            self.featurizer.context = False
        if self.target == "no_worse" and np.isnan(large).all():
            raise ConfigError(
                "target='no_worse' needs verdicts on the large model's answers too: judge them in hindsight "
                "(`rpra judge --regenerate-large`)"
            )
        return self.fit(samples, scores, large_scores=large, groups=groups, source="store")

    # -- predicting ------------------------------------------------------------
    def predict_proba(self, samples: Sequence[Sample]) -> np.ndarray:
        """Grade distributions (one row per sample, columns in ``scale.labels`` order)."""
        if not self.fitted:
            raise PredictorError("the learned predictor is not trained: fit() or load() it first", predictor=self.name)
        return self.model.proba(self.featurizer.transform(samples))

    def keep_scores(self, samples: Sequence[Sample], metric: str = "expected_score") -> np.ndarray:
        """A keep-score per sample: ``expected_score`` or ``p_acceptable``."""
        proba = self.predict_proba(samples)
        if metric == "expected_score":
            return proba @ np.asarray(self.scale.values, dtype=float)
        if metric == "p_acceptable":
            return proba[:, self.scale.labels.index(self.scale.acceptable_from) :].sum(axis=1)
        raise ConfigError(f"metric must be 'expected_score' or 'p_acceptable', not {metric!r}")

    def predict(self, request: PredictionRequest) -> Prediction:
        """Predict the grade distribution for ``request``.

        Raises:
            PredictorError: when untrained, when draft mode gets no draft, or when
                featurizing fails (the graph then defers).
        """
        start = time.perf_counter()
        sample = Sample.from_request(request)
        if self.mode == "draft" and sample.draft is None:
            raise PredictorError(
                "this learned predictor was trained in draft mode and needs the small model's draft "
                "(use the verify paradigm, or train a request-mode predictor)",
                predictor=self.name,
            )
        try:
            row = self.predict_proba([sample])[0]
        except PredictorError:
            raise
        except Exception as exc:
            raise PredictorError(f"{type(exc).__name__} while featurizing the request", predictor=self.name) from exc
        return Prediction.from_distribution(
            {lab: float(p) for lab, p in zip(self.scale.labels, row, strict=True)},
            scale=self.scale,
            predictor=self.name,
            version=self.version,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            method="learned",
        )

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict` (featurizers that call a model run in a thread)."""
        if getattr(self.featurizer, "blocking", False):
            return await asyncio.to_thread(self.predict, request)
        return self.predict(request)


def _data_hash(samples: Sequence[Sample], scores: np.ndarray) -> str:
    digest = hashlib.sha256()
    for s, score in zip(samples, scores, strict=True):
        row = [s.request, s.context, s.draft, s.task, s.kind, float(score)]
        digest.update(json.dumps(row, ensure_ascii=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()
