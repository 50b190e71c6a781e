"""Honest metrics of a learned predictor from its inner cross-validation's out-of-fold predictions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rpra_agent.core.grades import GradeScale
from rpra_agent.predictors._ordinal import OrdinalLogit

__all__ = ["oof_metrics"]


def _num(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def oof_metrics(model: OrdinalLogit, y: np.ndarray, scores: np.ndarray, scale: GradeScale) -> dict[str, Any]:
    """Agreement of the out-of-fold predictions (at the chosen ``C``) with the judge.

    ``ece`` is the expected calibration error of ``p_acceptable`` (10 equal-width
    bins); ``auroc`` of acceptable vs not; ``spearman`` of the expected score with
    the judge's score; ``accuracy`` of the most probable grade; ``cv_logloss`` the
    mean all-threshold log-loss. Only the classifier is cross-validated: the
    featurizer's vocabulary saw every training example, so these are slightly
    optimistic. Empty when no inner cross-validation ran (fixed ``C``).
    """
    from rpra_agent.evaluation.metrics.agreement import auroc, expected_calibration_error, spearman

    out: dict[str, Any] = {"C": model.C}
    if model.oof_cumulative is None or len(y) != model.oof_cumulative.shape[0]:
        return out
    proba = OrdinalLogit.to_proba(model.oof_cumulative)
    values = np.asarray(scale.values, dtype=float)
    first_ok = scale.labels.index(scale.acceptable_from)
    p_ok = proba[:, first_ok:].sum(axis=1)
    acceptable = (y >= first_ok).astype(float)
    out.update(
        n=int(len(y)),
        accuracy=_num(float(np.mean(proba.argmax(axis=1) == y))),
        ece=_num(expected_calibration_error(acceptable, p_ok)),
        auroc=_num(auroc(acceptable, p_ok)),
        spearman=_num(spearman(scores, proba @ values)),
        cv_logloss=_num(model.cv_loss.get(repr(model.C), float("nan"))),
        base_rate_acceptable=_num(float(acceptable.mean())),
    )
    return out
