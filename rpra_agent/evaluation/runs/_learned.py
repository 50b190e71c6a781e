"""The learned predictor in the evaluation, cross-fitted, when it is installed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.evaluation.runs.routers import RouterScores

__all__ = ["learned_available", "learned_scores"]

logger = logging.getLogger(__name__)

MODES: tuple[tuple[Literal["request", "draft"], str, str], ...] = (
    ("request", "learned", "request only"),
    ("draft", "learned_draft", "request + the small answer"),
)


def learned_available() -> bool:
    """Whether the learned predictor (``rpra_agent.predictors.crossfit``) is installed."""
    try:
        import rpra_agent.predictors.crossfit  # noqa: F401
    except ImportError:
        return False
    return True


def learned_scores(
    ds: EvalDataset, scale: GradeScale, *, folds: int, seed: int, names: Sequence[str] = ("learned", "learned_draft")
) -> list[RouterScores]:
    """The learned predictor's cross-fitted keep-scores in request-only and draft modes.

    Draft mode needs the small model's answer texts; datasets without them (MMLU)
    get the request-only router alone. Nothing when the learned predictor is not installed.
    """
    if not learned_available():
        logger.info("the learned predictor is not installed; skipping it")
        return []
    has_text = all(t is not None for t in ds.texts(ds.weak))
    modes = [m for m in MODES if m[1] in names and (m[0] == "request" or has_text)]
    if not has_text and "learned_draft" in names:
        logger.info("dataset %s has no small-answer texts: no draft-mode learned predictor", ds.name)
    out: list[RouterScores] = []
    for mode, name, what in modes:
        proba, labels_of, error = _crossfit_one(ds, mode, folds, seed)
        if error is not None or proba is None:
            logger.warning("learned predictor (%s) skipped: %s", mode, error)
            continue
        if tuple(labels_of) != tuple(scale.labels):
            logger.warning("learned predictor scale %s differs from %s; skipped", labels_of, scale.labels)
            continue
        dists = [dict(zip(scale.labels, (float(p) for p in row), strict=True)) for row in proba]
        keep = proba @ np.asarray(scale.values, dtype=float)
        note = f"{what}; learned predictor, {folds}-fold cross-fitted by conversation"
        out.append(RouterScores(name, keep, dists, scale, note))
    return out


_Outcome = tuple[np.ndarray | None, tuple[str, ...], str | None]


def _crossfit_one(ds: EvalDataset, mode: Literal["request", "draft"], folds: int, seed: int) -> _Outcome:
    """One mode's cross-fitted distributions and the label order (or the error)."""
    from rpra_agent.predictors.crossfit import crossfit_proba

    try:
        proba, predictor = crossfit_proba(ds, k=folds, mode=mode, seed=seed)
    except ConfigError as exc:
        return None, (), str(exc)
    return proba, tuple(predictor.scale.labels), None
