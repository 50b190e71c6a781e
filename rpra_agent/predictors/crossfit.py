"""Cross-fitted evaluation of learned predictors on recorded datasets (no item predicts itself).

:func:`crossfit_predictions` splits a dataset's items into ``k`` folds
(:func:`~rpra_agent.predictors.folds.fold_ids` over
:func:`~rpra_agent.predictors.folds.conversation_key`: turns of one conversation
always share a fold), trains a fresh predictor on ``k - 1`` folds and scores the
held-out fold, so every item's keep-score comes from a predictor that never saw it.
:func:`crossfit_scores` does the same for any scorer with ``fit_dataset`` and
``keep_scores`` (e.g. :class:`~rpra_agent.predictors.baselines.RidgeTextPredictor`).
:func:`transfer_keep_scores` trains on one dataset and scores another.

The datasets are any :class:`~rpra_agent.predictors.data.RecordedDataset` (an
``EvalDataset`` from ``rpra_agent.evaluation.datasets.load_dataset``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.predictors._training import Mode, dataset_examples
from rpra_agent.predictors.data import RecordedDataset
from rpra_agent.predictors.features import Sample
from rpra_agent.predictors.folds import conversation_key, fold_ids
from rpra_agent.predictors.learned import LearnedPredictor, Target

__all__ = [
    "CrossFit",
    "PredictorFactory",
    "Scorer",
    "crossfit_keep_scores",
    "crossfit_predictions",
    "crossfit_proba",
    "crossfit_scores",
    "dataset_folds",
    "transfer_keep_scores",
]

Metric = Literal["expected_score", "p_acceptable"]
PredictorFactory = Callable[..., LearnedPredictor]
"""Called as ``factory(mode=mode, target=target)``; returns an untrained :class:`LearnedPredictor`."""


class Scorer(Protocol):
    """Anything trained on a dataset that gives keep-scores (higher = keep the small answer)."""

    def fit_dataset(self, dataset: Any) -> Any:
        """Train on a recorded dataset."""
        ...

    def keep_scores(self, samples: Any) -> np.ndarray:
        """One keep-score per sample."""
        ...


@dataclass(frozen=True)
class CrossFit:
    """Cross-fitted predictions for every item of a dataset.

    Attributes:
        keep: Keep-scores (higher = keep the small answer; lowest deferred first).
            Where the folds chose different targets, each fold's scores are its
            within-fold percentiles, so the folds stay comparable.
        proba: Grade distributions over ``scale.labels`` (``None`` where the folds
            chose different targets, hence scales).
        scale: The folds' common prediction scale (``None`` where they differ).
        targets: The target each fold chose.
    """

    keep: np.ndarray
    proba: np.ndarray | None
    scale: GradeScale | None
    targets: tuple[str, ...]


def _factory(predictor_factory: PredictorFactory | None, seed: int) -> PredictorFactory:
    if predictor_factory is not None:
        return predictor_factory
    return lambda mode, target: LearnedPredictor(mode=mode, target=target, seed=seed)


def dataset_folds(dataset: RecordedDataset, k: int = 5, seed: int = 0) -> np.ndarray:
    """The outer folds of ``dataset``: :func:`fold_ids` by conversation (what every router is scored on)."""
    return fold_ids(len(dataset), k, seed, groups=[conversation_key(item) for item in dataset.items])


def _percentiles(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return (rankdata(x) - 0.5) / max(len(x), 1)


def crossfit_predictions(
    dataset: RecordedDataset,
    predictor_factory: PredictorFactory | None = None,
    *,
    k: int = 5,
    mode: Mode = "request",
    seed: int = 0,
    target: Target = "auto",
    metric: Metric = "expected_score",
    folds: np.ndarray | None = None,
) -> CrossFit:
    """Cross-fitted keep-scores and distributions of the learned predictor for every item.

    Items without a weak-model score are predicted but never trained on.

    Args:
        dataset: A recorded dataset.
        predictor_factory: ``factory(mode=mode, target=target)`` returning an untrained
            :class:`LearnedPredictor` (default: ``LearnedPredictor(mode=..., target=..., seed=seed)``).
        k: Number of folds.
        mode: ``"request"`` or ``"draft"`` (needs the weak model's answer texts).
        seed: Seed of the fold assignment.
        target: See :class:`LearnedPredictor` (``auto`` chooses per fold).
        metric: The keep-score: ``expected_score`` or ``p_acceptable``.
        folds: Fold ids to use instead of :func:`dataset_folds` (to score several
            routers on the same folds).

    Raises:
        ConfigError: for fewer conversations than folds, or draft mode without answer texts.
    """
    samples, scores, _ = dataset_examples(dataset, mode=mode)
    fold = dataset_folds(dataset, k, seed) if folds is None else np.asarray(folds, dtype=int)
    make = _factory(predictor_factory, seed)
    keep = np.zeros(len(samples))
    parts: list[tuple[np.ndarray, np.ndarray, LearnedPredictor]] = []
    for f in np.unique(fold):
        train = np.flatnonzero((fold != f) & ~np.isnan(scores))
        test = np.flatnonzero(fold == f)
        predictor = make(mode=mode, target=target)
        predictor.fit_dataset(dataset.subset(train))
        proba = predictor.predict_proba([samples[i] for i in test])
        parts.append((test, proba, predictor))
    scales = {p.scale for _, _, p in parts}
    same = len(scales) == 1
    out = np.zeros((len(samples), len(parts[0][2].scale.labels))) if same else None
    for test, proba, predictor in parts:
        value = _keep(proba, predictor.scale, metric)
        keep[test] = value if same else _percentiles(value)
        if out is not None:
            out[test] = proba
    return CrossFit(keep, out, parts[0][2].scale if same else None, tuple(p.target for _, _, p in parts))


def crossfit_proba(
    dataset: RecordedDataset,
    predictor_factory: PredictorFactory | None = None,
    *,
    k: int = 5,
    mode: Mode = "request",
    seed: int = 0,
    target: Target = "small",
) -> tuple[np.ndarray, LearnedPredictor]:
    """Cross-fitted grade distributions (one target for every fold; ``small`` by default).

    Returns:
        The ``(n_items, n_grades)`` distributions and a predictor of the last fold's
        configuration (for its scale).

    Raises:
        ConfigError: for fewer items than folds, draft mode without answer texts, or
            ``target="auto"`` when the folds chose different targets.
    """
    fit = crossfit_predictions(dataset, predictor_factory, k=k, mode=mode, seed=seed, target=target)
    if fit.proba is None or fit.scale is None:
        raise ConfigError(f"the folds chose different targets {fit.targets}: use crossfit_predictions")
    predictor = _factory(predictor_factory, seed)(mode=mode, target=target)
    predictor.scale = fit.scale
    return fit.proba, predictor


def _keep(proba: np.ndarray, scale: GradeScale, metric: Metric) -> np.ndarray:
    """Each row's keep-score, computed exactly as :class:`Prediction` computes it from the distribution.

    Bit for bit (the same normalisation and summation order), so a threshold placed at one
    item's keep-score routes that item in the graph as the evaluation expects; ``proba @
    values`` differs in the last bit and flipped an item sitting exactly at the threshold.
    """
    if metric not in ("expected_score", "p_acceptable"):
        raise ConfigError(f"metric must be 'expected_score' or 'p_acceptable', not {metric!r}")
    stat = scale.expected if metric == "expected_score" else scale.p_acceptable
    labels = scale.labels
    return np.array(
        [stat(scale.normalize_distribution(dict(zip(labels, map(float, row), strict=True)))) for row in proba],
        dtype=float,
    )


def crossfit_keep_scores(
    dataset: RecordedDataset,
    predictor_factory: PredictorFactory | None = None,
    *,
    k: int = 5,
    mode: Mode = "request",
    seed: int = 0,
    metric: Metric = "expected_score",
    target: Target = "auto",
) -> np.ndarray:
    """Cross-fitted keep-scores (higher = keep the small answer) for every item.

    See :func:`crossfit_predictions`; feed the result to
    ``rpra_agent.evaluation.metrics.apgr``.
    """
    fit = crossfit_predictions(dataset, predictor_factory, k=k, mode=mode, seed=seed, target=target, metric=metric)
    return fit.keep


def crossfit_scores(
    dataset: RecordedDataset,
    make: Callable[[], Scorer],
    *,
    k: int = 5,
    mode: Mode = "request",
    seed: int = 0,
    folds: np.ndarray | None = None,
) -> np.ndarray:
    """Cross-fitted keep-scores of any :class:`Scorer` (same folds as :func:`crossfit_predictions`)."""
    samples, scores, _ = dataset_examples(dataset, mode=mode)
    fold = dataset_folds(dataset, k, seed) if folds is None else np.asarray(folds, dtype=int)
    keep = np.zeros(len(samples))
    for f in np.unique(fold):
        train = np.flatnonzero((fold != f) & ~np.isnan(scores))
        test = np.flatnonzero(fold == f)
        scorer = make()
        scorer.fit_dataset(dataset.subset(train))
        keep[test] = scorer.keep_scores([samples[i] for i in test])
    return keep


def transfer_keep_scores(
    train: RecordedDataset,
    test: RecordedDataset,
    predictor_factory: PredictorFactory | None = None,
    *,
    mode: Mode = "request",
    seed: int = 0,
    metric: Metric = "expected_score",
    target: Target = "auto",
) -> np.ndarray:
    """Keep-scores for ``test``'s items from a predictor trained on all of ``train``.

    The keep-score is normalised to [0, 1] on the training scale, so only its order
    matters on the test set (APGR depends on the order alone).
    """
    predictor = _factory(predictor_factory, seed)(mode=mode, target=target)
    predictor.fit_dataset(_judged(train))
    samples: list[Sample] = dataset_examples(test, mode=mode)[0]
    keep = _keep(predictor.predict_proba(samples), predictor.scale, metric)
    if metric == "expected_score":
        keep = np.array([predictor.scale.normalize(x) for x in keep])
    return keep


def _judged(dataset: RecordedDataset) -> Any:
    judged = getattr(dataset, "judged", None)
    return judged() if callable(judged) else dataset
