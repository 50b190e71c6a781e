"""Second-stage members of the learned head (TF-IDF + ridge, principal-component ridge, the draft's length).

The ordinal head and a ridge regression of the same target on the character n-gram
TF-IDF blocks (``ridge_block``: or the words, or both) err differently (a log-loss over
every threshold with words, characters, cues and the task tag, against a squared loss
on one block); on held-out model pairs the ridge sometimes orders better, on the
bundled data the head. The blend adds the ridge's
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

A second ridge runs on the top principal components of the word and character blocks
(``pcr_weight``, 0.5 by default; ranks :data:`PCR_RANKS`, averaged): the TF-IDF's
broad directions without the rare n-grams a plain ridge fits to noise on a few hundred
rows. In the dual it is the same solve over the eigenvectors of the centred Gram
matrix, ``a = U_k (S_k^2 + alpha)^-1 U_k^T (y - mean y)``, so it is exact and still
linear in the features; it is gated like the ridge.

In draft mode the draft's log length (LLM judges favour longer answers; deferring the
shortest answers first is a baseline) joins the same way, with an equal share
(``weight`` 1) but only where, on the inner folds, it alone routes at least as well as
the head: then the head has missed a signal that a single feature carries. It is the
``draft_log_chars`` cue's column, so folding it in changes one weight.

With ``target="auto"``, a third member is available and off by default
(``gain_weight``): where the ``small`` target is kept, the ``gain`` target's head (at
its own best ``C``; its linear score is linear in the same features) joins where its
inner figure is at least the ``small`` head's. On held-out model pairs the two targets
err differently; on MT-bench it cost more than it gave (docs/LEARNED.md).

With an embedding model (``LearnedPredictor(neighbours=...)``: a sentence-transformers
model, or the small model's own llama.cpp embeddings), a fourth member is a
similarity-weighted k-nearest-neighbour regression of the target over the training
requests' embeddings (cosine similarity, the ``knn_k`` most similar, ``knn_weight`` 1
by default), gated as the ridge. It is issue 15's lead (a blend with kNN on sentence
embeddings in request mode). It is not linear in the TF-IDF features, so it does not
fold into the head's weights: the artifact keeps the training embeddings and targets,
and a prediction embeds the request and adds the member's share to the linear score.

The ridge is solved in the dual (an ``n x n`` Gram matrix of the member's columns) when
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

from rpra_agent.core.errors import ConfigError
from rpra_agent.predictors._threads import one_blas_thread

__all__ = [
    "GAIN_WEIGHT",
    "KNN_K",
    "KNN_WEIGHT",
    "LENGTH_WEIGHT",
    "PCR_BLOCK",
    "PCR_MAX_ROWS",
    "PCR_RANKS",
    "PCR_WEIGHT",
    "RIDGE_ALPHA",
    "RIDGE_BLOCK",
    "RIDGE_BLOCKS",
    "RIDGE_WEIGHT",
    "Blend",
    "DualRidge",
    "Member",
    "Neighbours",
    "choose_member",
    "fold_in",
    "length_column",
    "neighbour_oof",
    "neighbour_values",
    "ridge_columns",
    "unit_rows",
]

RIDGE_WEIGHT = 0.25
"""The ridge's share, in standard deviations of the head's out-of-fold linear score per sd of its own."""
LENGTH_WEIGHT = 1.0
"""The draft length's share when it joins (only where it alone routes at least as well as the head)."""
GAIN_WEIGHT = 0.0
"""The gain head's share where the small target is chosen and it routes at least as well (off by default)."""
KNN_WEIGHT = 1.0
"""The neighbour member's share where an embedding model is given (``neighbours=``) and it joins."""
KNN_K = 20
"""How many of the most similar training requests the neighbour member averages."""
RIDGE_ALPHA = 1.0
"""The ridge penalty (the TF-IDF + ridge baseline's)."""
_DUAL_MAX_ROWS = 2500
"""Solve in the dual (``n x n`` Gram matrix) up to this many rows; scikit-learn's sparse solver above."""


PCR_WEIGHT = 0.5
"""The principal-component member's share (the same gate as the ridge's)."""
PCR_RANKS: tuple[int, ...] = (20, 50, 100)
"""The principal-component member's ranks (one regression per rank, averaged; each capped at the data's rank)."""
PCR_MAX_ROWS = 2500
"""The principal-component member is tried up to this many training rows: above, the head
has the data it needs, and the SVD doubled MMLU's fit (34 to 65 s of CPU) for a member
that never joined (docs/LEARNED.md)."""
PCR_BLOCK = "text"
"""The principal-component member's blocks: the words and the characters."""

RIDGE_BLOCK = "chars"
"""The ridge member's default block: the character n-grams, which held up better than the words on held-out pairs (docs/LEARNED.md)."""

RIDGE_BLOCKS: dict[str, tuple[str, ...]] = {
    "words": ("request", "draft"),
    "chars": ("request_chars", "draft_chars"),
    "text": ("request", "draft", "request_chars", "draft_chars"),
}
"""The featurizer blocks a ridge member regresses on, per ``ridge_block`` option."""


def ridge_columns(featurizer: Any, width: int, block: str = RIDGE_BLOCK) -> np.ndarray:
    """The columns of the ridge member's TF-IDF blocks (:data:`RIDGE_BLOCKS`; characters by default).

    Falls back to the word blocks when the featurizer has none of ``block``'s (no
    character n-grams), and to every column when it has no named blocks at all.
    """
    blocks = getattr(featurizer, "blocks", None)
    ranges = blocks() if callable(blocks) else {}
    for names in (RIDGE_BLOCKS[block], RIDGE_BLOCKS["words"]):
        cols = [np.arange(*ranges[b]) for b in names if b in ranges]
        if cols:
            return np.concatenate(cols)
    return np.arange(width)


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

    def solve(
        self, rows: np.ndarray, y: np.ndarray, alpha: float, ranks: Sequence[int] | None = None
    ) -> tuple[np.ndarray, float, float]:
        """Dual coefficients over ``rows``, the label mean and the offset ``mean(K a)``.

        With ``ranks``, the ridge runs on the top principal components of the rows
        instead of on every direction (principal-component regression, one fit per
        rank, averaged): with ``K_c = U S^2 U^T``, ``a = U_k (S_k^2 + alpha)^-1 U_k^T (y - mean y)``.
        """
        K = self.K[np.ix_(rows, rows)]
        n = len(rows)
        row_mean = K.mean(axis=0)
        Kc = K - row_mean[None, :] - row_mean[:, None] + K.mean()
        ybar = float(y.mean())
        with one_blas_thread():  # threads cost more than they save at this size
            if ranks is None:
                a = np.linalg.solve(Kc + alpha * np.eye(n), y - ybar)
            else:
                values, vectors = np.linalg.eigh(Kc)
                values, vectors = values[::-1], vectors[:, ::-1]  # eigh's order is ascending
                live = int(np.sum(values > 1e-10 * max(float(values[0]), 1e-300)))
                proj = vectors.T @ (y - ybar)
                a = np.zeros(n)
                for rank in ranks:
                    k = max(1, min(int(rank), live))
                    a += vectors[:, :k] @ (proj[:k] / (values[:k] + alpha))
                a /= len(ranks)
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


def fit_ridge(
    X: sparse.csr_matrix, y: np.ndarray, alpha: float = RIDGE_ALPHA, ranks: Sequence[int] | None = None
) -> tuple[np.ndarray, float]:
    """Ridge weights and intercept of ``y`` on ``X`` (dual when few rows, scikit-learn otherwise).

    With ``ranks``: principal-component regression, averaged over the ranks (the
    :data:`PCR_RANKS` member); still linear in ``X``, so it folds into the head.
    """
    n = X.shape[0]
    if n <= _DUAL_MAX_ROWS:
        dual = DualRidge(X)
        rows = np.arange(n)
        return dual.weights(rows, dual.solve(rows, y, alpha, ranks))
    from sklearn.linear_model import Ridge

    if ranks is None:
        model = Ridge(alpha=alpha).fit(X, y)
        return np.asarray(model.coef_, dtype=np.float64).ravel(), float(model.intercept_)
    from sklearn.decomposition import TruncatedSVD

    top = min(max(ranks), min(X.shape) - 1)
    svd = TruncatedSVD(max(1, top), random_state=0).fit(X)  # uncentred (sparse); the ridge fits the intercept
    Z = svd.transform(X)
    coef, intercept = np.zeros(X.shape[1]), 0.0
    for rank in ranks:
        k = max(1, min(int(rank), Z.shape[1]))
        model = Ridge(alpha=alpha).fit(Z[:, :k], y)
        coef += svd.components_[:k].T @ np.asarray(model.coef_, dtype=np.float64).ravel()
        intercept += float(model.intercept_)
    return coef / len(ranks), intercept / len(ranks)


def ridge_oof(
    X: sparse.csr_matrix,
    y: np.ndarray,
    fold: np.ndarray,
    alpha: float = RIDGE_ALPHA,
    ranks: Sequence[int] | None = None,
) -> np.ndarray:
    """Out-of-fold ridge predictions over the folds ``fold`` (one Gram matrix shared by every fold)."""
    out = np.zeros(len(y))
    dual = DualRidge(X) if X.shape[0] <= _DUAL_MAX_ROWS else None
    for f in np.unique(fold):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        if dual is not None:
            out[test] = dual.predict(train, dual.solve(train, y[train], alpha, ranks), test)
        else:
            coef, intercept = fit_ridge(X[train], y[train], alpha, ranks)
            out[test] = np.asarray(X[test] @ coef).ravel() + intercept
    return out


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` with every row scaled to unit length (a zero row stays zero): cosine similarity is a dot product."""
    out = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 1e-12, norms, 1.0)


def neighbour_values(query: np.ndarray, train: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """The similarity-weighted mean of ``y`` over each query's ``k`` most similar training rows.

    Rows are unit vectors (:func:`unit_rows`), so the similarity is their dot product;
    negative similarities weigh nothing, and a tiny floor keeps a query with no similar
    row at the plain mean of its ``k`` nearest.
    """
    sims = np.asarray(query, dtype=np.float64) @ np.asarray(train, dtype=np.float64).T
    k = max(1, min(int(k), sims.shape[1]))
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    weights = np.clip(np.take_along_axis(sims, top, axis=1), 0.0, None) + 1e-6
    return np.asarray((weights * np.asarray(y, dtype=np.float64)[top]).sum(axis=1) / weights.sum(axis=1))


def neighbour_oof(vectors: np.ndarray, y: np.ndarray, fold: np.ndarray, k: int) -> np.ndarray:
    """Out-of-fold :func:`neighbour_values` over the folds ``fold`` (each row's neighbours from the other folds)."""
    out = np.zeros(len(y))
    for f in np.unique(fold):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        out[test] = neighbour_values(vectors[test], vectors[train], y[train], k)
    return out


class Neighbours:
    """The neighbour member as trained: the training requests' unit embeddings and targets, and its share.

    Its value for a request is the similarity-weighted mean target of the ``k`` most
    similar training requests; the head's linear score moves by ``scale * (value -
    center)`` (the share, already shrunk with the blend to the head's spread).
    """

    def __init__(self, vectors: np.ndarray, targets: np.ndarray, k: int, scale: float, center: float) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.targets = np.asarray(targets, dtype=np.float64)
        self.k, self.scale, self.center = int(k), float(scale), float(center)

    def shift(self, queries: np.ndarray) -> np.ndarray:
        """The linear score's shift for each query embedding (a unit vector per row).

        Raises:
            ConfigError: when the embeddings' width is not the training embeddings'
                (another embedding model than the one it was trained with).
        """
        if queries.shape[1] != self.vectors.shape[1]:
            raise ConfigError(
                f"the embedding model gives {queries.shape[1]} dimensions, the neighbour member was trained on "
                f"{self.vectors.shape[1]}: load the predictor with the embedding model it was trained with"
            )
        return self.scale * (neighbour_values(queries, self.vectors, self.targets, self.k) - self.center)

    def record(self) -> dict[str, Any]:
        """The manifest's description (the arrays are saved apart)."""
        return {"k": self.k, "scale": self.scale, "center": self.center, "n": int(self.vectors.shape[0])}


def length_column(featurizer: Any) -> int | None:
    """The column of the draft's log length (the ``draft_log_chars`` cue), or ``None`` without one."""
    blocks = getattr(featurizer, "blocks", None)
    if not callable(blocks) or not getattr(featurizer, "draft", False) or not getattr(featurizer, "cues", False):
        return None
    weights = getattr(featurizer, "weights", {})
    cues = blocks().get("cues")
    if cues is None or float(weights.get("cues", 1.0)) == 0.0:
        return None
    from rpra_agent.predictors._cues import DRAFT_CUES, REQUEST_CUES

    return int(cues[0] + len(REQUEST_CUES) + DRAFT_CUES.index("draft_log_chars"))


@dataclass
class Member:
    """A second-stage member: what the inner validation found, and its share when it takes part.

    Attributes:
        name: ``"ridge"``, ``"pcr"``, ``"length"``, ``"gain"`` or ``"knn"``.
        used: Whether it is folded into the head.
        scale: ``c``: the multiplier of the member's centred value in the head's linear score.
        center: The mean of its out-of-fold values (subtracted, so the thresholds stay calibrated).
        area: Its inner APGR (or Spearman without large scores).
        floor: The least inner figure it needed to take part.
        weight: The share asked for (sd of the head's OOF score per sd of the member's).
        oof: Its out-of-fold values.
    """

    name: str
    used: bool
    scale: float = 0.0
    center: float = 0.0
    area: float = float("nan")
    floor: float = float("nan")
    weight: float = 0.0
    oof: np.ndarray | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        """A JSON record for the manifest's ``training["blend"]``."""
        return {
            "used": self.used,
            "weight": self.weight,
            "scale": _num(self.scale),
            "inner": _num(self.area),
            "needed": _num(self.floor),
        }


def _num(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 5)


@dataclass
class Blend:
    """The head's inner figure and its members."""

    head_area: float
    members: list[Member] = field(default_factory=list)

    @property
    def used(self) -> list[Member]:
        """The members that take part."""
        return [m for m in self.members if m.used]

    def shift(self) -> np.ndarray | None:
        """The out-of-fold shift of the head's linear score (``None`` when no member takes part)."""
        parts = [m.scale * (m.oof - m.center) for m in self.used if m.oof is not None]
        return np.sum(parts, axis=0) if parts else None

    def record(self) -> dict[str, Any]:
        """A JSON record for the manifest's ``training["blend"]``."""
        return {
            "used": [m.name for m in self.used],
            "head_inner": _num(self.head_area),
            **{m.name: m.record() for m in self.members},
        }


def choose_member(
    name: str,
    head_score: np.ndarray,
    head_area: float,
    oof: np.ndarray,
    rank: Any,
    *,
    weight: float,
    tolerance: float,
) -> Member:
    """Whether a member (out-of-fold values ``oof``) joins the head (out-of-fold linear ``head_score``).

    It joins with ``scale = weight * sd(head_score) / sd(oof)`` when its inner figure
    ``rank(oof)`` is at least ``head_area - tolerance``; never when it is constant or
    ``weight`` is 0.

    Args:
        name: The member's name.
        head_score: The head's out-of-fold linear score.
        head_area: The head's inner routing quality.
        oof: The member's out-of-fold values (higher = keep the small answer).
        rank: ``rank(keep_scores) -> float``: the inner routing quality of a keep-score.
        weight: The member's share.
        tolerance: How far below the head it may be (negative: how far above it must be).
    """
    area = float(rank(oof))
    floor = head_area - tolerance
    member = Member(name, False, area=area, floor=floor, weight=weight)
    sd_m, sd_h = float(np.std(oof)), float(np.std(head_score))
    if weight <= 0 or not (sd_m > 1e-12 and sd_h > 1e-12) or not math.isfinite(area):
        return member
    if math.isfinite(floor) and area < floor:
        return member
    member.used, member.scale, member.center, member.oof = True, weight * sd_h / sd_m, float(np.mean(oof)), oof
    return member


def fold_in(
    beta: np.ndarray,
    theta: np.ndarray,
    columns: np.ndarray | Sequence[int],
    coef: np.ndarray,
    intercept: float,
    member: Member,
) -> tuple[np.ndarray, np.ndarray]:
    """The head's weights and thresholds with a member's centred value added to its score.

    The added value is ``member.scale * (X[:, columns] @ coef + intercept - member.center)``.
    """
    out = np.array(beta, dtype=np.float64, copy=True)
    out[np.asarray(columns, dtype=int)] += member.scale * np.asarray(coef, dtype=np.float64)
    return out, np.asarray(theta, dtype=np.float64) + member.scale * (intercept - member.center)
