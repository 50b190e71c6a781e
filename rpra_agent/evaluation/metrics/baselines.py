"""Baseline routers, always shown beside the predictors, and simple built-in keep-scores.

Baselines (``keep`` = keep-score; lowest deferred first, ties averaged exactly):

- ``random``: every item tied, so each point is the exact expectation of random
  routing: PGR(c) = c and APGR = 0.5 exactly.
- ``oracle``: ``keep = weak - strong``: defers first where the large answer gains the
  most. Every point of its curve is the best quality reachable at exactly that
  deferral rate, so it ends by deferring items where the small answer was better;
  (RouteLLM's plotted "optimal" instead never defers past the last gain).
- ``always_small`` / ``always_large``: the fixed operating points c = 0 and c = 1.
- ``answer_length``: ``keep = len(small answer)`` in characters: defer the shortest
  small answers first. Needs the small answers' text.

Built-in keep-scores for calibration (:data:`KEEP_SCORERS`), usable from a dataset
alone: ``category`` (cross-fitted share of acceptable small answers in the item's
category: a statistical report card, a ``p_acceptable``), ``length``, ``random``
and ``oracle`` (for reference only: it reads the answers' scores).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from rpra_agent.core.errors import ConfigError
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.evaluation.metrics.routing import RoutingCurve, routing_curve

__all__ = [
    "BASELINES",
    "KEEP_SCORERS",
    "KeepScorer",
    "RouterSummary",
    "answer_length_keep_scores",
    "baseline_summaries",
    "category_keep_scores",
    "dataset_baselines",
    "keep_scores",
    "oracle_keep_scores",
    "random_keep_scores",
    "summarize_router",
]

BASELINES: tuple[str, ...] = ("random", "oracle", "always_small", "always_large", "answer_length")


def random_keep_scores(n: int) -> np.ndarray:
    """All-equal keep-scores: the exact expectation of random routing."""
    return np.zeros(int(n), dtype=float)


def oracle_keep_scores(weak_scores: ArrayLike, strong_scores: ArrayLike) -> np.ndarray:
    """``weak - strong``: the largest gains from deferring come first."""
    return np.asarray(weak_scores, dtype=float) - np.asarray(strong_scores, dtype=float)


def answer_length_keep_scores(texts: Sequence[str | None]) -> np.ndarray:
    """The small answers' lengths in characters (shortest deferred first).

    Raises:
        ValueError: if any text is missing.
    """
    if any(t is None for t in texts):
        raise ValueError("answer_length needs every small answer's text; this dataset has none for some items")
    return np.array([len(t or "") for t in texts], dtype=float)


def category_keep_scores(
    categories: Sequence[Hashable],
    weak_scores: ArrayLike,
    acceptable: float,
    *,
    folds: int = 5,
    seed: int = 0,
    prior_strength: float = 1.0,
    groups: Sequence[Hashable] | None = None,
) -> np.ndarray:
    """A statistical report card: the share of acceptable small answers in the item's category.

    Cross-fitted: items are split into ``folds`` random folds and each item's score is
    computed from the other folds only, so no item informs its own prediction. The
    share is smoothed toward the other folds' overall share with ``prior_strength``
    pseudo-items. ``groups`` (e.g. conversation keys) keeps related items in one fold.

    Returns:
        A ``p_acceptable`` in [0, 1] per item.
    """
    ok = (np.asarray(weak_scores, dtype=float) >= acceptable).astype(float)
    n = len(ok)
    if len(categories) != n:
        raise ValueError(f"{len(categories)} categories for {n} scores")
    if n < 2:
        return np.full(n, 0.5)
    codes = np.unique(np.asarray([str(c) for c in categories]), return_inverse=True)[1]
    from rpra_agent.predictors.folds import fold_ids

    units = len({str(g) for g in groups}) if groups is not None else n
    k = min(folds, units)
    if k < 2:
        return np.full(n, 0.5)
    fold = fold_ids(n, k, seed, groups=groups)
    out = np.empty(n, dtype=float)
    for f in range(k):
        test, train = fold == f, fold != f
        prior = ok[train].mean()
        hits = np.bincount(codes[train], weights=ok[train], minlength=codes.max() + 1)
        counts = np.bincount(codes[train], minlength=codes.max() + 1)
        rate = (hits + prior_strength * prior) / (counts + prior_strength)
        out[test] = rate[codes[test]]
    return out


@dataclass(frozen=True)
class RouterSummary:
    """One router's (or fixed policy's) results on one dataset.

    Attributes:
        name: Router name.
        kind: ``"curve"`` for a scored router, ``"fixed"`` for always-small/large.
        apgr: APGR (curve routers; ``None`` for fixed policies).
        cpt50: CPT(50%) (curve routers).
        cpt80: CPT(80%) (curve routers).
        deferral_rate: The fixed policy's deferral rate (0 or 1).
        quality: The fixed policy's mean score.
        curve: The routing curve (curve routers).
    """

    name: str
    kind: Literal["curve", "fixed"]
    apgr: float | None = None
    cpt50: float | None = None
    cpt80: float | None = None
    deferral_rate: float | None = None
    quality: float | None = None
    curve: RoutingCurve | None = None


def summarize_router(name: str, weak_scores: ArrayLike, strong_scores: ArrayLike, keep: ArrayLike) -> RouterSummary:
    """APGR, CPT(50%), CPT(80%) and the curve of one router."""
    curve = routing_curve(weak_scores, strong_scores, keep)
    return RouterSummary(name, "curve", apgr=curve.apgr, cpt50=curve.cpt(0.5), cpt80=curve.cpt(0.8), curve=curve)


def baseline_summaries(
    weak_scores: ArrayLike, strong_scores: ArrayLike, small_texts: Sequence[str | None] | None = None
) -> list[RouterSummary]:
    """Every baseline on one set of judged items (``answer_length`` only with texts)."""
    w = np.asarray(weak_scores, dtype=float)
    s = np.asarray(strong_scores, dtype=float)
    rows = [
        summarize_router("random", w, s, random_keep_scores(len(w))),
        summarize_router("oracle", w, s, oracle_keep_scores(w, s)),
        RouterSummary("always_small", "fixed", deferral_rate=0.0, quality=float(w.mean())),
        RouterSummary("always_large", "fixed", deferral_rate=1.0, quality=float(s.mean())),
    ]
    if small_texts is not None and all(t is not None for t in small_texts):
        rows.append(summarize_router("answer_length", w, s, answer_length_keep_scores(small_texts)))
    return rows


def dataset_baselines(dataset: EvalDataset) -> list[RouterSummary]:
    """Every baseline on a dataset's judged items (weak = small, strong = large)."""
    judged = dataset.judged()
    return baseline_summaries(judged.scores(judged.weak), judged.scores(judged.strong), judged.texts(judged.weak))


KeepScorer = Callable[[EvalDataset], np.ndarray]


@dataclass(frozen=True)
class _Scorer:
    metric: str
    fn: KeepScorer
    description: str


def _category(ds: EvalDataset) -> np.ndarray:
    from rpra_agent.predictors.folds import conversation_key

    groups = [conversation_key(item) for item in ds.items]
    return category_keep_scores(ds.categories(), ds.scores(ds.weak), ds.acceptable, groups=groups)


def _oracle(ds: EvalDataset) -> np.ndarray:
    return oracle_keep_scores(ds.scores(ds.weak), ds.scores(ds.strong))


#: Built-in keep-scores from a dataset alone: name -> (policy metric, function, description).
KEEP_SCORERS: Mapping[str, _Scorer] = {
    "category": _Scorer("p_acceptable", _category, "cross-fitted share of acceptable small answers per category"),
    "length": _Scorer("answer_chars", lambda ds: answer_length_keep_scores(ds.texts(ds.weak)), "small answer length"),
    "random": _Scorer("p_acceptable", lambda ds: np.full(len(ds), 0.5), "constant 0.5 (random routing)"),
    "oracle": _Scorer("oracle", _oracle, "weak - strong score (reads the answers' scores: reference only)"),
}


def keep_scores(dataset: EvalDataset, name: str) -> tuple[np.ndarray, str]:
    """A built-in keep-score for every item of ``dataset`` and the metric it is on.

    Raises:
        ConfigError: for an unknown name, or a scorer the dataset cannot support.
    """
    try:
        scorer = KEEP_SCORERS[name]
    except KeyError:
        raise ConfigError(f"unknown keep-score {name!r}; built in: {', '.join(KEEP_SCORERS)}") from None
    try:
        return scorer.fn(dataset), scorer.metric
    except ValueError as exc:
        raise ConfigError(f"keep-score {name!r} cannot run on dataset {dataset.name!r}: {exc}") from exc
