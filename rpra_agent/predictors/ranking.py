"""Ranking figures the predictors need without importing the evaluation (which re-uses the same definitions).

- :func:`routing_area`: RouteLLM's APGR (area under the performance-gap-recovered curve,
  every point, exact over ties), used by the learned predictor's inner validation.
- :func:`auroc`, :func:`spearman`, :func:`expected_calibration_error`: agreement
  with the judge, for a trained predictor's honest (out-of-fold) metrics.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["auroc", "expected_calibration_error", "routing_area", "spearman"]


def routing_area(weak_scores: ArrayLike, strong_scores: ArrayLike, keep_scores: ArrayLike) -> float:
    """APGR of a keep-score (lowest deferred first), exact over ties; NaN when the models tie on average.

    Deferring ``j`` of ``n`` items gains the expected sum of ``strong - weak`` over the
    ``j`` lowest keep-scores, a tied group contributing in proportion; the PGR curve
    over ``j / n`` is integrated with the trapezoid rule, as RouteLLM does.
    """
    w = np.asarray(weak_scores, dtype=float)
    s = np.asarray(strong_scores, dtype=float)
    k = np.asarray(keep_scores, dtype=float)
    n = len(w)
    gap = float(s.mean() - w.mean()) if n else 0.0
    if n == 0 or gap == 0.0 or not math.isfinite(gap):
        return float("nan")
    order = np.argsort(k, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum((s - w)[order])])
    _, first, inverse, counts = np.unique(k[order], return_index=True, return_inverse=True, return_counts=True)
    j = np.arange(1, n + 1)
    a, c = first[inverse], counts[inverse]  # the tie group of the j-th deferred item
    gained = np.concatenate([[0.0], cum[a] + (j - a) / c * (cum[a + c] - cum[a])])
    pgr = gained / n / gap
    return float(np.trapezoid(pgr, np.arange(n + 1) / n))


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (NaN with one class)."""
    y = np.asarray(labels, dtype=float)
    if len(np.unique(y)) < 2:
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, np.asarray(scores, dtype=float)))


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rank correlation (NaN when either side is constant)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def expected_calibration_error(labels: ArrayLike, probs: ArrayLike, bins: int = 10) -> float:
    """Expected calibration error of probabilities for binary labels (equal-width bins)."""
    y, p = np.asarray(labels, dtype=float), np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    if len(y) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(float(p[m].mean()) - float(y[m].mean()))
    return total / len(y)
