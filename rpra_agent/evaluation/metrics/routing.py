"""Routing metrics with RouteLLM's definitions: curves, APGR, CPT, costs, operating points.

Conventions (every function here):

- ``weak_scores`` / ``strong_scores``: the judge's score of the weak (small) and the
  strong (large) model's answer to each item.
- ``keep_scores``: the router's belief that the small answer is good enough; higher
  means keep it. Lower scores are deferred first; a threshold ``t`` defers exactly
  the items with ``keep < t`` (as :class:`~rpra_agent.core.policy.ThresholdPolicy` does).
- The curve has every point ``c = k/n``, ``k = 0..n``: the ``k`` lowest-scored items
  deferred. Ties in ``keep_scores`` are broken uniformly at random and each point is
  the *exact expectation* over tie-breaking (a tie group deferred in part contributes
  its mean), so one-hot predictors and the random baseline are scored fairly and
  deterministically.
- ``q(c)`` is the mean score of the answers given; ``PGR(c) = (q(c) - q_weak) /
  (q_strong - q_weak)``; ``APGR`` is the area under PGR over ``c`` in [0, 1] by the
  trapezoid rule (equal to RouteLLM's ``(AUC - weak AUC) / (strong AUC - weak AUC)``);
  ``CPT(x)`` is the smallest ``c`` at which PGR reaches ``x``, interpolated linearly
  between the curve's points. When ``q_strong == q_weak`` PGR, APGR and CPT are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "APGRDifference",
    "DeferralStats",
    "OperatingPoint",
    "RoutingCurve",
    "apgr",
    "apgr_difference",
    "cost_curve",
    "cpt",
    "deferral_precision_recall",
    "expected_deferred_sums",
    "operating_point",
    "routing_curve",
]

Truth = Literal["strong_better", "unacceptable"]


def _vector(values: ArrayLike, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} values, expected {n}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; drop unjudged items first (EvalDataset.judged())")
    return arr


def _triple(weak: ArrayLike, strong: ArrayLike, keep: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = _vector(weak, "weak_scores")
    if len(w) == 0:
        raise ValueError("no items to evaluate")
    return w, _vector(strong, "strong_scores", len(w)), _vector(keep, "keep_scores", len(w))


def expected_deferred_sums(values: ArrayLike, keep_scores: ArrayLike) -> np.ndarray:
    """Expected sum of ``values`` over the ``k`` items deferred first, for ``k = 0..n``.

    Items are deferred in increasing ``keep_scores``; within a tie group of size ``m``
    of which ``j`` are deferred, each member is deferred with probability ``j/m``, so
    the group contributes ``j/m`` of its sum (the exact expectation over random
    tie-breaking).

    Returns:
        An array of ``n + 1`` expected sums (the first is 0).
    """
    v = _vector(values, "values")
    keep = _vector(keep_scores, "keep_scores", len(v))
    n = len(v)
    order = np.argsort(keep, kind="stable")
    sorted_keep, sorted_v = keep[order], v[order]
    cum = np.concatenate([[0.0], np.cumsum(sorted_v)])
    if n == 0:
        return cum
    starts = np.flatnonzero(np.r_[True, sorted_keep[1:] != sorted_keep[:-1]])
    ends = np.r_[starts[1:], n]
    k = np.arange(n + 1)
    group = np.searchsorted(starts, k, side="right") - 1
    a, b = starts[group], ends[group]
    return cum[a] + (cum[b] - cum[a]) * (k - a) / (b - a)


@dataclass(frozen=True)
class RoutingCurve:
    """Quality against deferral rate at every point ``k/n``.

    Attributes:
        deferral: Deferral rates ``k/n``, ``k = 0..n``.
        quality: Expected mean score of the answers given at each point.
        pgr: Performance gap recovered at each point (NaN if the models tie).
        q_weak: Mean score of the weak model (always-small).
        q_strong: Mean score of the strong model (always-large).
    """

    deferral: np.ndarray
    quality: np.ndarray
    pgr: np.ndarray
    q_weak: float
    q_strong: float

    @property
    def n(self) -> int:
        """Number of items."""
        return len(self.deferral) - 1

    @property
    def apgr(self) -> float:
        """Area under the PGR curve (trapezoid rule)."""
        return float(np.trapezoid(self.pgr, self.deferral))

    def cpt(self, target: float) -> float:
        """Smallest deferral rate at which PGR reaches ``target`` (e.g. 0.5); NaN if never."""
        reached = np.flatnonzero(self.pgr >= target - 1e-12)
        if len(reached) == 0:
            return float("nan")
        k = int(reached[0])
        if k == 0:
            return 0.0
        p0, p1 = self.pgr[k - 1], self.pgr[k]
        c0, c1 = self.deferral[k - 1], self.deferral[k]
        return float(c0 + (target - p0) / (p1 - p0) * (c1 - c0))

    def quality_at(self, deferral_rate: float) -> float:
        """Expected quality at any deferral rate in [0, 1] (linear between points)."""
        return float(np.interp(deferral_rate, self.deferral, self.quality))


def routing_curve(weak_scores: ArrayLike, strong_scores: ArrayLike, keep_scores: ArrayLike) -> RoutingCurve:
    """The quality-vs-deferral curve of a router, exact over tie-breaking.

    Args:
        weak_scores: Judge scores of the small answers.
        strong_scores: Judge scores of the large answers.
        keep_scores: The router's keep-scores (lowest deferred first).

    Returns:
        The curve at every ``k/n``.
    """
    w, s, keep = _triple(weak_scores, strong_scores, keep_scores)
    n = len(w)
    quality = (w.sum() + expected_deferred_sums(s - w, keep)) / n
    q_weak, q_strong = float(w.mean()), float(s.mean())
    gap = q_strong - q_weak
    pgr = (quality - q_weak) / gap if gap != 0 else np.full(n + 1, np.nan)
    return RoutingCurve(np.arange(n + 1) / n, quality, pgr, q_weak, q_strong)


def apgr(weak_scores: ArrayLike, strong_scores: ArrayLike, keep_scores: ArrayLike) -> float:
    """Average performance gap recovered (RouteLLM's APGR) over every point of the curve."""
    return routing_curve(weak_scores, strong_scores, keep_scores).apgr


@dataclass(frozen=True)
class APGRDifference:
    """One router's APGR minus another's on the same items, with a paired bootstrap interval.

    Attributes:
        difference: The observed difference (first router minus second).
        low: The interval's lower end (percentile bootstrap).
        high: The interval's upper end.
        level: The interval's coverage, e.g. 0.95.
        resamples: Bootstrap resamples drawn (those with no gap between the models are skipped).
        units: The resampled units: conversations (or items, without groups).
    """

    difference: float
    low: float
    high: float
    level: float
    resamples: int
    units: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or wholly below 0."""
        return self.low > 0.0 or self.high < 0.0


def apgr_difference(
    weak_scores: ArrayLike,
    strong_scores: ArrayLike,
    keep_scores: ArrayLike,
    other_keep_scores: ArrayLike,
    *,
    groups: Any = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> APGRDifference:
    """APGR of ``keep_scores`` minus APGR of ``other_keep_scores``, with a paired bootstrap interval.

    Both routers are scored on each resample of the same units, so what the two share
    (which items are hard) cancels, and the interval says whether the evaluation set
    can tell them apart. With ``groups`` (e.g. conversation keys), whole groups are
    resampled, since turns of one conversation are not independent.

    Args:
        weak_scores: Judge scores of the small answers.
        strong_scores: Judge scores of the large answers.
        keep_scores: The first router's keep-scores.
        other_keep_scores: The second router's keep-scores.
        groups: One key per item; items with equal keys are resampled together.
        resamples: Bootstrap resamples.
        level: Coverage of the percentile interval.
        seed: Seed of the resampling.

    Raises:
        ValueError: on arrays of different lengths, fewer than 2 items, or ``level``
            outside (0, 1).
    """
    w, s, a = _triple(weak_scores, strong_scores, keep_scores)
    b = _vector(other_keep_scores, "other_keep_scores", len(w))
    if len(w) < 2:
        raise ValueError("apgr_difference needs at least 2 items")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if int(resamples) < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    units = np.arange(len(w)) if groups is None else np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1]
    if len(units) != len(w):
        raise ValueError(f"groups has {len(units)} keys for {len(w)} items")
    n_units = int(units.max()) + 1
    rng = np.random.default_rng(seed)
    diffs: list[np.ndarray] = []
    for size in np.diff(np.r_[np.arange(0, int(resamples), _CHUNK), int(resamples)]):
        # each resample as item multiplicities: a unit drawn m times counts its items m times
        draws = rng.integers(n_units, size=(int(size), n_units)) + n_units * np.arange(int(size))[:, None]
        counts = np.bincount(draws.ravel(), minlength=int(size) * n_units).reshape(int(size), n_units)[:, units]
        diffs.append(_weighted_apgr(w, s, a, counts) - _weighted_apgr(w, s, b, counts))
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]
    observed = apgr(w, s, a) - apgr(w, s, b)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = (float(x) for x in np.percentile(d, [tail, 100.0 - tail])) if len(d) else (math.nan, math.nan)
    return APGRDifference(float(observed), low, high, float(level), len(d), n_units)


_CHUNK = 100
"""Bootstrap resamples scored at once (a ``chunk x n`` array of multiplicities)."""


def _weighted_apgr(weak: np.ndarray, strong: np.ndarray, keep: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """APGR of ``keep`` on each row of item multiplicities ``counts`` (one resample per row), exact over ties.

    Items sorted by keep-score once; within a tie group the expected gain grows
    linearly, so the trapezoid rule over every point ``k/N`` is the sum over tie groups
    of ``dN * (G_before + G_after) / 2``, over ``N`` times the total gain.
    """
    order = np.argsort(keep, kind="stable")
    k = keep[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    c = counts[:, order]
    gains = c * (strong - weak)[order]
    J = np.cumsum(np.add.reduceat(c, starts, axis=1), axis=1, dtype=np.float64)
    G = np.cumsum(np.add.reduceat(gains, starts, axis=1), axis=1)
    J0 = np.c_[np.zeros(len(J)), J[:, :-1]]
    G0 = np.c_[np.zeros(len(G)), G[:, :-1]]
    total, n = G[:, -1], J[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        area = ((J - J0) * (G0 + G)).sum(axis=1) / (2.0 * n * total)
    no_gap = np.abs(total) <= 1e-12 * np.abs(gains).sum(axis=1)  # the models tie on this resample: no APGR
    return np.where(no_gap, np.nan, area)


def cpt(weak_scores: ArrayLike, strong_scores: ArrayLike, keep_scores: ArrayLike, target: float = 0.5) -> float:
    """Call-performance threshold: the smallest deferral rate whose PGR reaches ``target``.

    ``target=0.5`` is CPT(50%), ``target=0.8`` is CPT(80%).
    """
    return routing_curve(weak_scores, strong_scores, keep_scores).cpt(target)


def cost_curve(
    weak_costs: ArrayLike,
    strong_costs: ArrayLike,
    keep_scores: ArrayLike,
    *,
    small_always_runs: bool = False,
) -> np.ndarray:
    """Expected mean cost per item at every point ``k/n`` of the routing curve.

    Args:
        weak_costs: Cost of the small model's call per item (see :func:`item_costs`).
        strong_costs: Cost of the large model's call per item.
        keep_scores: The router's keep-scores.
        small_always_runs: Charge the small call on deferred items too (a draft that
            was made and then rejected, as in verify-style routing). By default a
            deferred item costs only the large call, as in RouteLLM's accounting.

    Returns:
        ``n + 1`` mean costs per item.
    """
    wc = _vector(weak_costs, "weak_costs")
    sc = _vector(strong_costs, "strong_costs", len(wc))
    extra = sc if small_always_runs else sc - wc
    return (wc.sum() + expected_deferred_sums(extra, keep_scores)) / len(wc)


@dataclass(frozen=True)
class OperatingPoint:
    """What a fixed threshold does on a set of items (and, in an evaluation, what the graph did).

    :func:`operating_point` fills the first four fields from recorded scores; an
    evaluation run fills the rest from what the graph actually answered.

    Attributes:
        threshold: Items with ``keep < threshold`` are deferred.
        deferral_rate: Share of items deferred.
        quality: Mean judge score of the answers given.
        pgr: Performance gap recovered (NaN if the models tie).
        predictor: The router whose keep-scores the threshold applies to.
        metric: The prediction field compared (``expected_score`` ...).
        method: ``fixed``, ``target_rate`` or ``risk`` (quality loss at most epsilon
            with confidence 1 - delta).
        calibration_version: Version of the stored calibration artifact.
        quality_small: Mean score of always-small.
        quality_large: Mean score of always-large.
        cost: Cost of the answers given under the price table (``None`` without prices).
        cost_small: Cost of always-small.
        cost_large: Cost of always-large.
        deferral_precision: Share of deferrals where the large answer was better.
        deferral_recall: Share of items with a better large answer that were deferred.
        details: The calibration's own record (bound, epsilon, delta, n ...).
    """

    threshold: float
    deferral_rate: float
    quality: float
    pgr: float
    predictor: str = ""
    metric: str = ""
    method: str = "fixed"
    calibration_version: int | None = None
    quality_small: float | None = None
    quality_large: float | None = None
    cost: float | None = None
    cost_small: float | None = None
    cost_large: float | None = None
    deferral_precision: float | None = None
    deferral_recall: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def operating_point(
    weak_scores: ArrayLike, strong_scores: ArrayLike, keep_scores: ArrayLike, threshold: float
) -> OperatingPoint:
    """Evaluate the deterministic policy "defer when keep < threshold"."""
    w, s, keep = _triple(weak_scores, strong_scores, keep_scores)
    deferred = keep < threshold
    quality = float(np.where(deferred, s, w).mean())
    gap = s.mean() - w.mean()
    pgr = float((quality - w.mean()) / gap) if gap != 0 else float("nan")
    return OperatingPoint(
        float(threshold),
        float(deferred.mean()),
        quality,
        pgr,
        quality_small=float(w.mean()),
        quality_large=float(s.mean()),
    )


@dataclass(frozen=True)
class DeferralStats:
    """Deferral precision and recall at one threshold.

    A deferral is *needed* (a positive) when, with ``truth="strong_better"``, the
    large answer scores strictly higher than the small one; with
    ``truth="unacceptable"``, when the small answer scores below the acceptable score.
    Precision: share of deferrals that were needed. Recall: share of needed
    deferrals that were made. NaN when undefined (nothing deferred / nothing needed).
    """

    threshold: float
    truth: Truth
    deferred: int
    needed: int
    true_positives: int
    precision: float
    recall: float
    f1: float
    deferral_rate: float


def deferral_precision_recall(
    weak_scores: ArrayLike,
    strong_scores: ArrayLike,
    keep_scores: ArrayLike,
    threshold: float,
    *,
    truth: Truth = "strong_better",
    acceptable: float | None = None,
) -> DeferralStats:
    """Precision/recall of the deferrals "keep < threshold" against the judged truth.

    Args:
        weak_scores: Judge scores of the small answers.
        strong_scores: Judge scores of the large answers.
        keep_scores: The router's keep-scores.
        threshold: Items with ``keep < threshold`` are deferred.
        truth: ``"strong_better"`` or ``"unacceptable"`` (see :class:`DeferralStats`).
        acceptable: The lowest acceptable score (required for ``"unacceptable"``).
    """
    from sklearn.metrics import f1_score, precision_score, recall_score

    w, s, keep = _triple(weak_scores, strong_scores, keep_scores)
    if truth == "strong_better":
        needed = s > w
    elif truth == "unacceptable":
        if acceptable is None:
            raise ValueError("truth='unacceptable' needs the acceptable score (e.g. EvalDataset.acceptable)")
        needed = w < acceptable
    else:
        raise ValueError(f"truth must be 'strong_better' or 'unacceptable', not {truth!r}")
    deferred = keep < threshold
    nan = float("nan")
    return DeferralStats(
        threshold=float(threshold),
        truth=truth,
        deferred=int(deferred.sum()),
        needed=int(needed.sum()),
        true_positives=int((deferred & needed).sum()),
        precision=float(precision_score(needed, deferred, zero_division=nan)),
        recall=float(recall_score(needed, deferred, zero_division=nan)),
        f1=float(f1_score(needed, deferred, zero_division=nan)),
        deferral_rate=float(deferred.mean()),
    )
