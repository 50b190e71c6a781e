"""Honest metrics of a learned predictor from its inner cross-validation's out-of-fold predictions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rpra_agent.core.grades import GradeScale
from rpra_agent.predictors._ordinal import OrdinalLogit
from rpra_agent.predictors.ranking import auroc, expected_calibration_error, spearman

__all__ = ["oof_metrics"]


def _num(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def oof_metrics(
    model: OrdinalLogit, y: np.ndarray, scores: np.ndarray, scale: GradeScale, oof: np.ndarray | None = None
) -> dict[str, Any]:
    """Agreement of the out-of-fold predictions (at the chosen ``C``) with the judge.

    ``y`` are the grade positions and ``scores`` the scores on ``scale``; ``oof`` the
    out-of-fold cumulative probabilities (default: the model's own inner CV's).
    ``ece`` is the expected calibration error of ``p_acceptable`` (10 equal-width
    bins); ``auroc`` of acceptable vs not; ``spearman`` of the expected score with
    the judge's score; ``accuracy`` of the most probable grade against the nearest
    grade. Only the head is cross-validated: the featurizer's vocabulary saw every
    training example, so these are slightly optimistic. Only ``C`` when no inner
    cross-validation ran.
    """
    out: dict[str, Any] = {"C": model.C}
    cumulative = oof if oof is not None else model.oof_cumulative
    if cumulative is None or len(y) != cumulative.shape[0]:
        return out
    proba = OrdinalLogit.to_proba(cumulative)
    values = np.asarray(scale.values, dtype=float)
    first_ok = scale.labels.index(scale.acceptable_from)
    p_ok = proba[:, first_ok:].sum(axis=1)
    acceptable = (scores >= scale.acceptable_value - 1e-9).astype(float)
    out.update(
        n=int(len(y)),
        accuracy=_num(float(np.mean(proba.argmax(axis=1) == np.rint(y)))),
        ece=_num(expected_calibration_error(acceptable, p_ok)),
        auroc=_num(auroc(acceptable, p_ok)),
        spearman=_num(spearman(scores, proba @ values)),
        cv_logloss=_num(model.cv_loss.get(repr(model.C), float("nan"))),
        base_rate_acceptable=_num(float(acceptable.mean())),
    )
    return out
