"""Turning keep-scores and predictions into table rows, curves and the operating point."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from rpra_agent.core.decision import Decision
from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.metrics.agreement import agreement_report
from rpra_agent.evaluation.metrics.baselines import answer_length_keep_scores, baseline_summaries, summarize_router
from rpra_agent.evaluation.metrics.routing import apgr_difference, deferral_precision_recall, operating_point
from rpra_agent.evaluation.report.results import Curve, OperatingPoint, PredictorRow
from rpra_agent.evaluation.runs.routers import BASELINES

__all__ = [
    "agreement_row",
    "baseline_rows",
    "card_summary",
    "computed_operating_point",
    "graph_operating_point",
    "leader_comparison",
    "predictor_row",
]

_CURVE_POINTS = 201


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _curve(name: str, deferral: np.ndarray, quality: np.ndarray) -> Curve:
    """The curve thinned to at most ``_CURVE_POINTS`` points (a plot needs no more)."""
    if len(deferral) > _CURVE_POINTS:
        xs = np.linspace(0.0, 1.0, _CURVE_POINTS)
        return Curve(name, [float(x) for x in xs], [float(y) for y in np.interp(xs, deferral, quality)])
    return Curve(name, [float(x) for x in deferral], [float(y) for y in quality])


def predictor_row(
    name: str,
    weak: np.ndarray,
    strong: np.ndarray,
    keep: np.ndarray,
    *,
    true_labels: Sequence[str] | None = None,
    distributions: Sequence[Mapping[str, float]] | None = None,
    scale: GradeScale | None = None,
    kind: str = "predictor",
    note: str = "",
) -> tuple[PredictorRow, Curve]:
    """A predictor's routing figures (and agreement figures when it gives distributions)."""
    summary = summarize_router(name, weak, strong, keep)
    agree: dict[str, float | None] = {}
    if distributions is not None and true_labels is not None and scale is not None:
        rep = agreement_report(true_labels, distributions, scale)
        agree = {k: _num(getattr(rep, k)) for k in ("accuracy", "macro_f1", "auroc", "spearman", "ece", "mae")}
    row = PredictorRow(
        name=name,
        kind=kind,
        apgr=_num(summary.apgr),
        cpt50=_num(summary.cpt50),
        cpt80=_num(summary.cpt80),
        note=note,
        **agree,
    )
    assert summary.curve is not None  # noqa: S101 - summarize_router always returns the curve
    return row, _curve(name, summary.curve.deferral, summary.curve.quality)


def baseline_rows(
    weak: np.ndarray, strong: np.ndarray, small_texts: Sequence[str | None] | None
) -> list[tuple[PredictorRow, Curve | None]]:
    """Random (its expectation), oracle, always-small, always-large and answer length."""
    notes = {
        "random": "expectation over random routing",
        "oracle": "reads both answers' scores: an upper bound",
        "answer_length": "defers the shortest small answers first",
    }
    out: list[tuple[PredictorRow, Curve | None]] = []
    for s in baseline_summaries(weak, strong, small_texts):
        if s.kind == "fixed":
            note = f"quality {s.quality:.3f} at {100 * (s.deferral_rate or 0):.0f}% deferred"
            out.append((PredictorRow(s.name, "baseline", None, note=note), None))
            continue
        assert s.curve is not None  # noqa: S101 - curve routers carry their curve
        row = PredictorRow(s.name, "baseline", _num(s.apgr), _num(s.cpt50), _num(s.cpt80), note=notes.get(s.name, ""))
        out.append((row, _curve(s.name, s.curve.deferral, s.curve.quality)))
    return out


def leader_comparison(
    rows: Sequence[PredictorRow],
    keeps: Mapping[str, np.ndarray],
    weak: np.ndarray,
    strong: np.ndarray,
    *,
    groups: Sequence[str],
    small_texts: Sequence[str | None] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The best router by APGR against the best of the other kind, with a paired bootstrap interval.

    The kinds are the simple baselines
    (:data:`~rpra_agent.evaluation.runs.routers.BASELINES`: TF-IDF + ridge and
    shortest-first) and the predictors (report card, learned, artifacts): a predictor
    that leads is compared with the best baseline, a baseline that leads with the best
    predictor, so the line says whether the method beats the simple baselines (or loses
    to them) by more than these items' sampling noise. With one kind only, the
    runner-up. Every router with keep-scores takes part (``keeps``, and shortest-first
    from ``small_texts`` when it has a row); random and the oracle do not. Whole
    conversations (``groups``) are resampled. Empty with fewer than two routers.
    """
    pool = dict(keeps)
    if small_texts is not None and any(r.name == "answer_length" for r in rows):
        pool["answer_length"] = answer_length_keep_scores(small_texts)
    ranked = sorted((r for r in rows if r.name in pool and r.apgr is not None), key=lambda r: -(r.apgr or 0.0))
    if len(ranked) < 2:
        return {}
    first = ranked[0].name
    other_kind = [r.name for r in ranked[1:] if (r.name in BASELINES) != (first in BASELINES)]
    second = other_kind[0] if other_kind else ranked[1].name
    against = "runner-up" if not other_kind else ("best predictor" if first in BASELINES else "best baseline")
    d = apgr_difference(weak, strong, pool[first], pool[second], groups=groups, seed=seed)
    return {"leader": first, "against": second, "against_is": against, **asdict(d), "excludes_zero": d.excludes_zero}


def graph_operating_point(
    *,
    predictor: str,
    metric: str,
    threshold: float,
    method: str,
    calibration_version: int | None,
    decisions: Sequence[Decision],
    given_scores: np.ndarray,
    weak: np.ndarray,
    strong: np.ndarray,
    keep: np.ndarray,
    weak_costs: np.ndarray | None = None,
    strong_costs: np.ndarray | None = None,
    details: Mapping[str, Any] | None = None,
    drafted: bool = False,
) -> OperatingPoint:
    """The operating point as the graph realised it (routes and verdicts from the route pass).

    The graph's routes are checked against the keep-score rule ``keep < threshold``; a
    mismatch means the graph and the evaluation disagree and is reported in ``details``.
    ``drafted``: the small model answered every item before the router read its answer
    (``verify``), so a deferred item costs both models' calls.
    """
    deferred = np.array([d.deferred for d in decisions], dtype=bool)
    expected = operating_point(weak, strong, keep, threshold)
    stats = deferral_precision_recall(weak, strong, keep, threshold)
    extra: dict[str, Any] = dict(details or {})
    mismatch = int((deferred != (keep < threshold)).sum())
    if mismatch:
        extra["route_mismatches"] = mismatch
    extra["expected_quality"] = expected.quality
    q_small, q_large = float(weak.mean()), float(strong.mean())
    quality = float(given_scores.mean())
    gap = q_large - q_small
    cost = cost_small = cost_large = None
    if weak_costs is not None and strong_costs is not None:
        cost = float(np.where(deferred, strong_costs + (weak_costs if drafted else 0.0), weak_costs).mean())
        cost_small, cost_large = float(weak_costs.mean()), float(strong_costs.mean())
    legs = {"small": 0, "large": 0}
    for d in decisions:
        for leg in ("small", "large"):
            if leg in d.legs:
                legs[leg] += d.legs[leg].output_tokens
    extra["output_tokens"] = legs
    return OperatingPoint(
        predictor=predictor,
        metric=metric,
        threshold=float(threshold),
        method=method,
        calibration_version=calibration_version,
        deferral_rate=float(deferred.mean()),
        quality=quality,
        quality_small=q_small,
        quality_large=q_large,
        pgr=(quality - q_small) / gap if gap else float("nan"),
        cost=cost,
        cost_small=cost_small,
        cost_large=cost_large,
        deferral_precision=_num(stats.precision),
        deferral_recall=_num(stats.recall),
        details=extra,
    )


def agreement_row(
    name: str,
    true_labels: Sequence[str],
    distributions: Sequence[Mapping[str, float]],
    scale: GradeScale,
    *,
    note: str = "",
) -> PredictorRow:
    """A predictor's agreement figures alone (no routing: the large model was not judged)."""
    rep = agreement_report(true_labels, distributions, scale)
    agree = {k: _num(getattr(rep, k)) for k in ("accuracy", "macro_f1", "auroc", "spearman", "ece", "mae")}
    return PredictorRow(name=name, kind="predictor", apgr=None, note=note, **agree)


def computed_operating_point(
    *,
    predictor: str,
    metric: str,
    threshold: float,
    method: str,
    calibration_version: int | None,
    weak: np.ndarray,
    strong: np.ndarray,
    keep: np.ndarray,
    details: Mapping[str, Any] | None = None,
) -> OperatingPoint:
    """The operating point computed from keep-scores ("defer when keep < threshold")."""
    op = operating_point(weak, strong, keep, threshold)
    stats = deferral_precision_recall(weak, strong, keep, threshold)
    return OperatingPoint(
        predictor=predictor,
        metric=metric,
        threshold=float(threshold),
        method=method,
        calibration_version=calibration_version,
        deferral_rate=op.deferral_rate,
        quality=op.quality,
        quality_small=float(weak.mean()),
        quality_large=float(strong.mean()),
        pgr=op.pgr,
        deferral_precision=_num(stats.precision),
        deferral_recall=_num(stats.recall),
        details={**dict(details or {}), "computed": True},
    )


def card_summary(card: Any, scale: GradeScale) -> dict[str, Any]:
    """The report card for the report: its text and per-category answer grade distributions."""
    sections = [s for s in getattr(card, "sections", ()) if s.kind == "answer"]

    def key(task: str | None) -> str:
        return "all tasks" if task == "*" else ("untagged" if task is None else str(task))

    return {
        "text": getattr(card, "text", ""),
        "version": getattr(card, "version", None),
        "labels": list(scale.labels),
        "distributions": {key(s.task): s.distribution for s in sections},
        "counts": {key(s.task): s.n for s in sections},
    }
