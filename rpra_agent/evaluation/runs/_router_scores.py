"""Computing the selected routers' keep-scores in a run (learned, TF-IDF + ridge, artifacts, length)."""

from __future__ import annotations

import logging

import numpy as np

from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.evaluation.metrics.baselines import answer_length_keep_scores
from rpra_agent.evaluation.runs._learned import learned_scores
from rpra_agent.evaluation.runs.artifacts import artifact_scores
from rpra_agent.evaluation.runs.routers import RouterScores, RouterSelection

__all__ = ["length_scores", "router_scores"]

logger = logging.getLogger(__name__)

_TFIDF = (("tfidf", "request", "request only"), ("tfidf_draft", "draft", "request + the small answer"))


def router_scores(
    ds: EvalDataset,
    scale: GradeScale,
    selection: RouterSelection,
    folds: np.ndarray,
    seed: int,
    *,
    learned: bool,
    neighbours: str | None = None,
) -> list[RouterScores]:
    """The selected routers other than the report card and the reference baselines.

    Args:
        ds: The judged dataset.
        scale: Its grade scale.
        selection: Which routers run.
        folds: The run's fold of every item (every router is cross-fitted on them).
        seed: Seed of the learned predictor's inner folds.
        learned: ``True``: the learned predictor's routers; ``False``: the TF-IDF +
            ridge baselines and the artifacts (two calls, so each is timed apart).
        neighbours: The sentence-transformers model of the learned predictor's neighbour member, if any.

    Raises:
        ConfigError: when a selected artifact cannot be evaluated on ``ds``.
    """
    if learned:
        wanted = tuple(n for n in ("learned", "learned_draft") if selection.wants(n))
        if not wanted:
            return []
        return learned_scores(ds, scale, folds=folds, seed=seed, names=wanted, neighbours=neighbours)
    out: list[RouterScores] = []
    has_text = all(t is not None for t in ds.texts(ds.weak))
    for name, mode, what in _TFIDF:
        if selection.wants(name) and (mode == "request" or has_text):
            keep = _tfidf_keep(ds, mode, folds)
            if keep is not None:
                note = f"{what}; TF-IDF + ridge, cross-fitted on the run's folds"
                out.append(_as_grades(name, keep, scale, note, mode=mode))
    out += [artifact_scores(ds, path, scale) for path in selection.artifacts]
    return out


def _as_grades(name: str, predicted: np.ndarray, scale: GradeScale, note: str, *, mode: str) -> RouterScores:
    """A predicted score as a grade distribution on its two nearest grades (its mean: the score, clipped to the scale).

    So a regression baseline can set the operating point through the graph like any
    grade predictor; its keep-score is that mean.
    """
    from rpra_agent.predictors.baselines import point_distribution

    dists = [point_distribution(scale, float(v)) for v in predicted]
    keep = np.array([sum(d[lab] * v for lab, v in zip(scale.labels, scale.values, strict=True)) for d in dists])
    note += "; the score spread on its two nearest grades"
    return RouterScores(name, keep, dists, scale, note, extra={"mode": mode})


def length_scores(ds: EvalDataset) -> RouterScores:
    """Shortest-first: the small answer's length as the keep-score."""
    return RouterScores(
        "answer_length", answer_length_keep_scores(ds.texts(ds.weak)), note="shortest answers deferred first"
    )


def _tfidf_keep(ds: EvalDataset, mode: str, folds: np.ndarray) -> np.ndarray | None:
    """TF-IDF + ridge's cross-fitted predicted small-model score, or ``None`` when not installed."""
    try:
        from rpra_agent.predictors.baselines import RidgeTextPredictor
        from rpra_agent.predictors.crossfit import crossfit_scores
    except ImportError as exc:
        logger.warning("the TF-IDF + ridge baseline is not installed (%s); skipping it", exc)
        return None
    return np.asarray(
        crossfit_scores(ds, lambda: RidgeTextPredictor(mode=mode), mode=mode, folds=folds),  # type: ignore[arg-type]
        dtype=float,
    )
