"""The result of an evaluation run: what the table, the plot and the HTML report show."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rpra_agent.evaluation.metrics.routing import OperatingPoint

__all__ = ["Curve", "EvalResult", "OperatingPoint", "PredictorRow"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class PredictorRow:
    """One predictor's (or baseline's) figures.

    Attributes:
        name: Display name, e.g. ``report_card`` or ``oracle``.
        kind: ``predictor`` or ``baseline``.
        apgr: Area under the performance-gap-recovered curve (RouteLLM); ``None``
            for fixed policies (always-small / always-large).
        cpt50: Smallest deferral share reaching 50 % PGR (``None``: never).
        cpt80: Smallest deferral share reaching 80 % PGR.
        accuracy: Exact-match grade accuracy against the judge (the paper's metric).
        macro_f1: Macro-averaged F1 over the grades.
        auroc: AUROC of "acceptable" against the predicted probability of it.
        spearman: Spearman correlation of the expected grade with the judge's score.
        ece: Expected calibration error of the probability of "acceptable".
        mae: Mean absolute error of the expected grade, in score units.
        note: How the figure was obtained (cross-fitting, expectation ...).
    """

    name: str
    kind: str
    apgr: float | None
    cpt50: float | None = None
    cpt80: float | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    auroc: float | None = None
    spearman: float | None = None
    ece: float | None = None
    mae: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Curve:
    """Quality (mean judge score of the answers given) against the deferral share."""

    name: str
    deferral: Sequence[float]
    quality: Sequence[float]


@dataclass
class EvalResult:
    """Everything an evaluation run measured.

    Attributes:
        dataset: Dataset name.
        protocol: How items were routed and what was cross-fitted (said with every figure).
        n_items: Items evaluated.
        n_dropped: Items dropped because a score was missing.
        weak: The weak (small) model.
        strong: The strong (large) model.
        scale: The grade scale's name.
        rows: One row per predictor and baseline.
        curves: Quality-vs-deferral curves.
        operating: The calibrated operating point, when one was set.
        report_card: The report card (``text`` and per-category grade distributions).
        paths: Files written (``db``, ``png``, ``html``, ``json``).
        timings: Seconds per stage (wall time).
        cpu_timings: CPU seconds per stage (this process's user + system time).
        eval_id: The id that prefixes this run's graph run ids in the store.
        mode: ``replay`` or ``live``.
        warnings: What makes the figures misleading, said beside them (e.g. a weak
            model that does not score below the strong one).
        comparison: The router with the best APGR (``leader``) against the best of the
            other kind (``against``; ``against_is``: ``best baseline``, ``best
            predictor`` or ``runner-up`` when only one kind ran), their APGR
            ``difference`` and its paired bootstrap interval (``low``, ``high``,
            ``excludes_zero``, ``level``, ``resamples``, ``units``: the conversations
            resampled); empty
            with fewer than two routers.
    """

    dataset: str
    protocol: str
    n_items: int
    n_dropped: int
    weak: str
    strong: str
    scale: str
    rows: list[PredictorRow] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    operating: OperatingPoint | None = None
    report_card: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)
    eval_id: str = ""
    mode: str = "replay"
    warnings: list[str] = field(default_factory=list)
    comparison: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str) -> PredictorRow:
        """The row called ``name``.

        Raises:
            KeyError: when there is none.
        """
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no row {name!r}; rows: {[r.name for r in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (non-finite floats become ``null``)."""
        data = asdict(self)
        return dict(_clean(data))

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON to ``path``."""
        out = Path(path)
        out.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        return out
