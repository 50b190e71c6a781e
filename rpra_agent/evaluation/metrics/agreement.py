"""How well a predictor agrees with the judge: the RPRA paper's metrics and more.

- grade accuracy: exact match of the predicted label (the distribution's mode)
  with the judge's label, as in the paper (chance is about 1/3 on three labels);
- macro-F1 over the labels;
- AUROC of "acceptable" (judge label at or above the scale's ``acceptable_from``)
  against the predicted ``p_acceptable``;
- Spearman rank correlation of the predicted expected score with the judge's score;
- expected calibration error of ``p_acceptable`` (10 equal-width bins, the same
  binning as ``sklearn.calibration.calibration_curve(strategy="uniform")``);
- mean absolute error of the expected score, in the scale's units.

Undefined values (a single class for AUROC, constant input for Spearman) are NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from rpra_agent.core.grades import GradeScale

__all__ = [
    "AgreementReport",
    "agreement_report",
    "auroc",
    "expected_calibration_error",
    "grade_accuracy",
    "macro_f1",
    "mae",
    "spearman",
]


def grade_accuracy(true_labels: Sequence[str], predicted_labels: Sequence[str]) -> float:
    """Share of items whose predicted label equals the judge's label."""
    from sklearn.metrics import accuracy_score

    _same_length(true_labels, predicted_labels)
    return float(accuracy_score(list(true_labels), list(predicted_labels)))


def macro_f1(true_labels: Sequence[str], predicted_labels: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-label F1.

    Args:
        true_labels: The judge's labels.
        predicted_labels: The predicted labels.
        labels: The labels to average over (e.g. every label of the scale, so a
            label never predicted counts as F1 0); default: those present.
    """
    from sklearn.metrics import f1_score

    _same_length(true_labels, predicted_labels)
    return float(
        f1_score(
            list(true_labels),
            list(predicted_labels),
            labels=None if labels is None else list(labels),
            average="macro",
            zero_division=0.0,
        )
    )


def auroc(acceptable: ArrayLike, p_acceptable: ArrayLike) -> float:
    """Area under the ROC curve of ``p_acceptable`` for the truth ``acceptable``; NaN with one class."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(acceptable, dtype=bool)
    p = np.asarray(p_acceptable, dtype=float)
    _same_length(y, p)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, p))


def spearman(true_scores: ArrayLike, predicted_scores: ArrayLike) -> float:
    """Spearman rank correlation; NaN when either side is constant."""
    from scipy.stats import spearmanr

    t = np.asarray(true_scores, dtype=float)
    p = np.asarray(predicted_scores, dtype=float)
    _same_length(t, p)
    if len(t) < 2 or np.all(t == t[0]) or np.all(p == p[0]):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(t, p).statistic)


def expected_calibration_error(acceptable: ArrayLike, p_acceptable: ArrayLike, n_bins: int = 10) -> float:
    """ECE: the bin-size-weighted mean gap between confidence and accuracy.

    ``sum_b (n_b / n) * |mean(acceptable in b) - mean(p in b)|`` over ``n_bins``
    equal-width bins of ``p_acceptable``.
    """
    y = np.asarray(acceptable, dtype=float)
    p = np.asarray(p_acceptable, dtype=float)
    _same_length(y, p)
    if len(y) == 0:
        return float("nan")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p_acceptable must lie in [0, 1]")
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(bins[1:-1], p)
    conf = np.bincount(ids, weights=p, minlength=n_bins)
    hits = np.bincount(ids, weights=y, minlength=n_bins)
    return float(np.abs(hits - conf).sum() / len(y))


def mae(true_scores: ArrayLike, predicted_scores: ArrayLike) -> float:
    """Mean absolute error."""
    from sklearn.metrics import mean_absolute_error

    t = np.asarray(true_scores, dtype=float)
    p = np.asarray(predicted_scores, dtype=float)
    _same_length(t, p)
    return float(mean_absolute_error(t, p))


@dataclass(frozen=True)
class AgreementReport:
    """Every agreement metric of one predictor on one set of judged items.

    Attributes:
        n: Items compared.
        accuracy: Exact-match grade accuracy.
        macro_f1: Macro-F1 over the scale's labels.
        auroc: AUROC of acceptable vs not.
        spearman: Spearman of expected score vs judge score.
        ece: Expected calibration error of ``p_acceptable``.
        mae: Mean absolute error of the expected score (scale units).
    """

    n: int
    accuracy: float
    macro_f1: float
    auroc: float
    spearman: float
    ece: float
    mae: float


def agreement_report(
    true_labels: Sequence[str], distributions: Sequence[Mapping[str, float]], scale: GradeScale
) -> AgreementReport:
    """Compare predicted grade distributions with the judge's labels.

    Args:
        true_labels: The judge's label per item (labels of ``scale``).
        distributions: The predicted distribution over the scale's labels per item
            (``Prediction.distribution``).
        scale: The grade scale of both.
    """
    _same_length(true_labels, distributions)
    predicted = [scale.mode(d) for d in distributions]
    expected = np.array([scale.expected(d) for d in distributions], dtype=float)
    p_ok = np.array([scale.p_acceptable(d) for d in distributions], dtype=float)
    true_scores = np.array([scale.value(label) for label in true_labels], dtype=float)
    ok = np.array([scale.is_acceptable(label) for label in true_labels], dtype=bool)
    return AgreementReport(
        n=len(true_labels),
        accuracy=grade_accuracy(true_labels, predicted),
        macro_f1=macro_f1(true_labels, predicted, labels=scale.labels),
        auroc=auroc(ok, p_ok),
        spearman=spearman(true_scores, expected),
        ece=expected_calibration_error(ok, np.clip(p_ok, 0.0, 1.0)),
        mae=mae(true_scores, expected),
    )


def _same_length(a: Sequence[object] | np.ndarray, b: Sequence[object] | np.ndarray) -> None:
    if len(a) != len(b):
        raise ValueError(f"length mismatch: {len(a)} true values vs {len(b)} predictions")
