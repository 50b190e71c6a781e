"""A second member for the learned head: TF-IDF + ridge on the word blocks, folded into the head's weights.

The ordinal head and a ridge regression of the same target on the word TF-IDF blocks
err differently (a log-loss over every threshold with character n-grams, cues and the
task tag, against a squared loss on words alone); on held-out model pairs the ridge
sometimes orders better, on the bundled data the head. The blend adds the ridge's
centred prediction to the head's linear score,
``eta(x) = x . beta + c * (ridge(x) - mean ridge OOF)``, with ``c = weight * sd(head
OOF score) / sd(ridge OOF)``: a fixed, small share (``weight``, 0.25 by default) in
the head's own units. Both are linear in the features, so the blend *is* a
proportional-odds model with weights ``beta + c * ridge_coef``: it predicts at the
head's cost and saves as the head does.

The inner validation decides only whether the ridge takes part: it is left out when
its out-of-fold routing quality is below the head's by more than ``1 / sqrt(n)``
(about twice the inner APGR's noise), e.g. on GSM8K, where it predicts the gain far
worse than the head. Choosing the weight itself by the inner APGR was measured and
dropped: at 128-300 training items the choice is noise (docs/LEARNED.md).

The ridge is solved in the dual (an ``n x n`` Gram matrix of the word columns) when
there are few rows, which is exact and several times faster than scikit-learn's
iterative sparse solver at this size; scikit-learn's ``Ridge`` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

__all__ = ["RIDGE_ALPHA", "RIDGE_WEIGHT", "DualRidge", "RidgeMember", "word_columns"]

RIDGE_WEIGHT = 0.25
"""The ridge's share, in standard deviations of the head's out-of-fold linear score per sd of its own."""
RIDGE_ALPHA = 1.0
"""The ridge penalty (the TF-IDF + ridge baseline's)."""
_DUAL_MAX_ROWS = 2500
"""Solve in the dual (``n x n`` Gram matrix) up to this many rows; scikit-learn's sparse solver above."""


def word_columns(featurizer: Any, width: int) -> np.ndarray:
    """The columns of the word TF-IDF blocks (``request``, ``draft``), or every column when the featurizer has none."""
    blocks = getattr(featurizer, "blocks", None)
    ranges = blocks() if callable(blocks) else {}
    cols = [np.arange(*ranges[b]) for b in ("request", "draft") if b in ranges]
    return np.concatenate(cols) if cols else np.arange(width)


class DualRidge:
    """Ridge regression with an intercept, over the rows of one Gram matrix (exact, for few rows).

    With the rows centred, the weights are ``X_c^T a`` for ``a = (K_c + alpha I)^-1 (y - mean y)``,
    where ``K_c`` is the doubly centred Gram matrix; ``a`` sums to zero, so a new row's
    prediction is ``mean y + k(x)^T a - mean(K a)``.

    Args:
        X: All rows (sparse).
    """

    def __init__(self, X: sparse.csr_matrix) -> None:
        self.X = X
        self.K = np.asarray((X @ X.T).toarray(), dtype=np.float64)

    def solve(self, rows: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float, float]:
        """Dual coefficients over ``rows``, the label mean and the offset ``mean(K a)``."""
        K = self.K[np.ix_(rows, rows)]
        n = len(rows)
        row_mean = K.mean(axis=0)
        Kc = K - row_mean[None, :] - row_mean[:, None] + K.mean()
        ybar = float(y.mean())
        a = np.linalg.solve(Kc + alpha * np.eye(n), y - ybar)
        return a, ybar, float(row_mean @ a)

    def predict(self, rows: np.ndarray, fit: tuple[np.ndarray, float, float], at: np.ndarray) -> np.ndarray:
        """Predictions at the rows ``at`` of a :meth:`solve` over ``rows``."""
        a, ybar, offset = fit
        return ybar + self.K[np.ix_(at, rows)] @ a - offset

    def weights(self, rows: np.ndarray, fit: tuple[np.ndarray, float, float]) -> tuple[np.ndarray, float]:
        """The primal weights over ``X``'s columns and the intercept."""
        a, ybar, offset = fit
        coef = np.asarray(self.X[rows].T @ a).ravel()
        return coef, ybar - offset


def fit_ridge(X: sparse.csr_matrix, y: np.ndarray, alpha: float = RIDGE_ALPHA) -> tuple[np.ndarray, float]:
    """Ridge weights and intercept of ``y`` on ``X`` (dual when few rows, scikit-learn otherwise)."""
    n = X.shape[0]
    if n <= _DUAL_MAX_ROWS:
        dual = DualRidge(X)
        rows = np.arange(n)
        return dual.weights(rows, dual.solve(rows, y, alpha))
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha).fit(X, y)
    return np.asarray(model.coef_, dtype=np.float64).ravel(), float(model.intercept_)


def ridge_oof(X: sparse.csr_matrix, y: np.ndarray, fold: np.ndarray, alpha: float = RIDGE_ALPHA) -> np.ndarray:
    """Out-of-fold ridge predictions over the folds ``fold`` (one Gram matrix shared by every fold)."""
    out = np.zeros(len(y))
    dual = DualRidge(X) if X.shape[0] <= _DUAL_MAX_ROWS else None
    for f in np.unique(fold):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        if dual is not None:
            out[test] = dual.predict(train, dual.solve(train, y[train], alpha), test)
        else:
            coef, intercept = fit_ridge(X[train], y[train], alpha)
            out[test] = np.asarray(X[test] @ coef).ravel() + intercept
    return out


@dataclass
class RidgeMember:
    """What the inner validation found about the ridge member, and its share when it takes part.

    Attributes:
        used: Whether the ridge is folded into the head.
        scale: ``c``: the multiplier of the centred ridge prediction in the head's linear score.
        center: The mean of the ridge's out-of-fold predictions (subtracted, so the thresholds stay calibrated).
        head_area: The head's inner APGR (or Spearman without large scores).
        ridge_area: The ridge's.
        tolerance: How far below the head the ridge may be and still take part (``1 / sqrt(n)``).
        weight: The share asked for.
    """

    used: bool
    scale: float = 0.0
    center: float = 0.0
    head_area: float = float("nan")
    ridge_area: float = float("nan")
    tolerance: float = float("nan")
    weight: float = RIDGE_WEIGHT
    oof: np.ndarray | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        """A JSON record for the manifest's ``training["blend"]``."""

        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else round(float(x), 5)

        return {
            "ridge": self.used,
            "weight": self.weight,
            "scale": num(self.scale),
            "head_inner": num(self.head_area),
            "ridge_inner": num(self.ridge_area),
            "tolerance": num(self.tolerance),
        }


def choose_ridge(
    head_score: np.ndarray,
    head_area: float,
    ridge: np.ndarray,
    rank: Any,
    *,
    weight: float = RIDGE_WEIGHT,
) -> RidgeMember:
    """Whether the ridge (out-of-fold ``ridge``) joins the head (out-of-fold linear ``head_score``).

    Args:
        head_score: The head's out-of-fold linear score.
        head_area: The head's inner routing quality.
        ridge: The ridge's out-of-fold predictions of the same target.
        rank: ``rank(keep_scores) -> float``: the inner routing quality of a keep-score.
        weight: The ridge's share (0 leaves it out).
    """
    n = len(ridge)
    tol = 1.0 / math.sqrt(max(n, 1))
    area = float(rank(ridge))
    member = RidgeMember(False, head_area=head_area, ridge_area=area, tolerance=tol, weight=weight)
    sd_r, sd_h = float(np.std(ridge)), float(np.std(head_score))
    if weight <= 0 or not (sd_r > 1e-12 and sd_h > 1e-12) or not math.isfinite(area):
        return member
    if math.isfinite(head_area) and area < head_area - tol:
        return member
    member.used, member.scale, member.center, member.oof = True, weight * sd_h / sd_r, float(np.mean(ridge)), ridge
    return member


def fold_in(
    beta: np.ndarray,
    theta: np.ndarray,
    columns: np.ndarray | Sequence[int],
    coef: np.ndarray,
    intercept: float,
    member: RidgeMember,
) -> tuple[np.ndarray, np.ndarray]:
    """The head's weights and thresholds with ``member.scale * (ridge(x) - member.center)`` added to its score."""
    out = np.array(beta, dtype=np.float64, copy=True)
    out[np.asarray(columns, dtype=int)] += member.scale * np.asarray(coef, dtype=np.float64)
    return out, np.asarray(theta, dtype=np.float64) + member.scale * (intercept - member.center)
