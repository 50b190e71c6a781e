"""Cross-fitted evaluation of learned predictors on recorded datasets (no item predicts itself).

:func:`crossfit_keep_scores` splits a dataset's items into ``k`` folds (turns of one
conversation always share a fold), trains a fresh predictor on ``k - 1`` folds and
scores the held-out fold, so every item's keep-score comes from a predictor that
never saw it. :func:`transfer_keep_scores` trains on one dataset and scores another
(does the predictor generalise?).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.predictors._ordinal import group_folds
from rpra_agent.predictors._training import Mode, conversation_group, dataset_examples
from rpra_agent.predictors.learned import LearnedPredictor, Target

if TYPE_CHECKING:
    from rpra_agent.evaluation.datasets import EvalDataset

__all__ = ["PredictorFactory", "crossfit_keep_scores", "crossfit_proba", "transfer_keep_scores"]

Metric = Literal["expected_score", "p_acceptable"]
PredictorFactory = Callable[..., LearnedPredictor]
"""Called as ``factory(mode=mode, target=target)``; returns an untrained :class:`LearnedPredictor`."""


def _factory(predictor_factory: PredictorFactory | None, seed: int) -> PredictorFactory:
    if predictor_factory is not None:
        return predictor_factory
    return lambda mode, target: LearnedPredictor(mode=mode, target=target, seed=seed)


def crossfit_proba(
    dataset: EvalDataset,
    predictor_factory: PredictorFactory | None = None,
    *,
    k: int = 5,
    mode: Mode = "request",
    seed: int = 0,
    target: Target = "small",
) -> tuple[np.ndarray, LearnedPredictor]:
    """Cross-fitted grade distributions for every item of ``dataset``.

    Items without a weak-model score are predicted but never trained on.

    Returns:
        The ``(n_items, n_grades)`` distributions and the last fold's predictor
        (for its scale and configuration).

    Raises:
        ConfigError: for fewer items than folds, or draft mode without answer texts.
    """
    if k < 2:
        raise ConfigError(f"cross-fitting needs at least 2 folds, got {k}")
    samples, scores, _ = dataset_examples(dataset, mode=mode)
    groups = [conversation_group(item) for item in dataset.items]
    if len(set(groups)) < k:
        raise ConfigError(f"cannot cross-fit {len(set(groups))} conversations in {k} folds")
    folds = group_folds(groups, k, seed)
    make = _factory(predictor_factory, seed)
    out: np.ndarray | None = None
    predictor: LearnedPredictor | None = None
    for f in range(k):
        train = np.flatnonzero((folds != f) & ~np.isnan(scores))
        test = np.flatnonzero(folds == f)
        predictor = make(mode=mode, target=target)
        predictor.fit_dataset(dataset.subset(train))
        proba = predictor.predict_proba([samples[i] for i in test])
        if out is None:
            out = np.zeros((len(samples), proba.shape[1]))
        out[test] = proba
    if out is None or predictor is None:
        raise ConfigError("no fold was evaluated")
    return out, predictor


def _keep(proba: np.ndarray, predictor: LearnedPredictor, metric: Metric) -> np.ndarray:
    scale = predictor.scale
    if metric == "expected_score":
        return proba @ np.asarray(scale.values, dtype=float)
    if metric == "p_acceptable":
        return proba[:, scale.labels.index(scale.acceptable_from) :].sum(axis=1)
    raise ConfigError(f"metric must be 'expected_score' or 'p_acceptable', not {metric!r}")


def crossfit_keep_scores(
    dataset: EvalDataset,
    predictor_factory: PredictorFactory | None = None,
    *,
    k: int = 5,
    mode: Mode = "request",
    seed: int = 0,
    metric: Metric = "expected_score",
    target: Target = "small",
) -> np.ndarray:
    """Cross-fitted keep-scores (higher = keep the small answer) for every item.

    Args:
        dataset: A recorded dataset (e.g. ``load_dataset("mt-bench")``).
        predictor_factory: ``factory(mode=mode, target=target)`` returning an untrained
            :class:`LearnedPredictor` (default: ``LearnedPredictor(mode=..., target=..., seed=seed)``).
        k: Number of folds.
        mode: ``"request"`` or ``"draft"`` (needs the weak model's answer texts).
        seed: Seed of the fold assignment.
        metric: ``"expected_score"`` (the default; ranks by the whole distribution)
            or ``"p_acceptable"``.
        target: ``"small"`` (the small answer's grade) or ``"no_worse"`` (P(the small
            answer is graded no worse than the large one)); see :class:`LearnedPredictor`.

    Returns:
        One keep-score per item, aligned with ``dataset.items``; feed it to
        :func:`rpra_agent.evaluation.metrics.apgr`.
    """
    proba, predictor = crossfit_proba(dataset, predictor_factory, k=k, mode=mode, seed=seed, target=target)
    return _keep(proba, predictor, metric)


def transfer_keep_scores(
    train: EvalDataset,
    test: EvalDataset,
    predictor_factory: PredictorFactory | None = None,
    *,
    mode: Mode = "request",
    seed: int = 0,
    metric: Metric = "expected_score",
    target: Target = "small",
) -> np.ndarray:
    """Keep-scores for ``test``'s items from a predictor trained on all of ``train``.

    The keep-score is normalised to [0, 1] on the training scale, so only its order
    matters on the test set (APGR depends on the order alone).
    """
    predictor = _factory(predictor_factory, seed)(mode=mode, target=target)
    predictor.fit_dataset(train.judged())
    samples, _, _ = dataset_examples(test, mode=mode)
    keep = _keep(predictor.predict_proba(samples), predictor, metric)
    if metric == "expected_score":
        keep = np.array([predictor.scale.normalize(x) for x in keep])
    return keep
