"""Statistics over the decision log: deferral rates, tokens and cost per leg, predictor-judge agreement.

:func:`compute_stats` aggregates in SQL on an :class:`SQLDecisionStore` (using its
indexes) and in Python on any other :class:`DecisionStore`; both give the same numbers.
``rpra stats`` only renders what it returns.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rpra_agent.store.base import DecisionFilter, DecisionStore
from rpra_agent.store.prices import PriceTable

__all__ = ["Agreement", "DeferralRow", "LegRow", "StoreStats", "compute_stats"]


@dataclass(frozen=True)
class DeferralRow:
    """Decisions and deferrals in one group (a kind, step, model, day or reason)."""

    key: str
    decisions: int
    deferred: int

    @property
    def rate(self) -> float:
        """Share of the group's decisions that went to the large model."""
        return self.deferred / self.decisions if self.decisions else 0.0


@dataclass(frozen=True)
class LegRow:
    """Usage of one leg (``predict``, ``reason``, ``small``, ``large``) on one model."""

    leg: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    latency_ms_mean: float
    cost: float | None


@dataclass(frozen=True)
class Agreement:
    """How often the predicted grade matched the judge's grade of the small model's response.

    A verdict counts when it is about the small model's response: ``subject="small"``,
    or ``subject="given"`` on a step the small model answered. The latest such verdict
    per decision is used.
    """

    judged: int = 0
    matches: int = 0
    confusion: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        """Exact-match accuracy of the predicted label, or ``None`` without verdicts."""
        return self.matches / self.judged if self.judged else None


@dataclass(frozen=True)
class StoreStats:
    """Everything ``rpra stats`` shows."""

    decisions: int
    deferred: int
    by_kind: list[DeferralRow]
    by_step: list[DeferralRow]
    by_model: list[DeferralRow]
    by_day: list[DeferralRow]
    by_reason: list[DeferralRow]
    legs: list[LegRow]
    agreement: Agreement
    currency: str = "USD"

    @property
    def deferral_rate(self) -> float:
        """Share of all decisions that went to the large model."""
        return self.deferred / self.decisions if self.decisions else 0.0

    @property
    def total_cost(self) -> float | None:
        """Summed estimated cost of the priced legs (``None`` when no leg is priced)."""
        costs = [leg.cost for leg in self.legs if leg.cost is not None]
        return sum(costs) if costs else None

    @property
    def prediction_share(self) -> dict[str, float | None]:
        """The prediction's share of what the steps cost: of tokens, of model-call time, and of priced cost.

        Every model call of a step is a leg; the ``predict`` leg is the predictor's
        own call (zero tokens for a predictor that calls no model).
        """

        def share(value: Any) -> float | None:
            total = sum(value(leg) for leg in self.legs)
            part = sum(value(leg) for leg in self.legs if leg.leg == "predict")
            return part / total if total else None

        priced = all(leg.cost is not None for leg in self.legs) and bool(self.legs)
        return {
            "tokens": share(lambda leg: leg.input_tokens + leg.output_tokens),
            "latency": share(lambda leg: leg.latency_ms_mean * leg.calls),
            "cost": share(lambda leg: leg.cost or 0.0) if priced else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (``rpra stats --json``)."""
        data = asdict(self)
        data["deferral_rate"] = self.deferral_rate
        data["total_cost"] = self.total_cost
        data["prediction_share"] = self.prediction_share
        data["agreement"]["accuracy"] = self.agreement.accuracy
        for name in ("by_kind", "by_step", "by_model", "by_day", "by_reason"):
            for row, obj in zip(data[name], getattr(self, name), strict=True):
                row["rate"] = obj.rate
        return data


# (decision id, predicted grade, route, verdict grade, verdict subject, verdict time)
_Pair = tuple[str, str | None, str, str | None, str, str]


def _agreement(pairs: Iterable[_Pair]) -> Agreement:
    chosen: dict[str, _Pair] = {}
    for pair in sorted(pairs, key=lambda p: (p[4] == "small", p[5])):
        _id, predicted, route, grade, subject, _at = pair
        if predicted is None or grade is None:
            continue
        if subject == "small" or (subject == "given" and route == "small"):
            chosen[_id] = pair  # sorted so that "small" verdicts, then later ones, win
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for _id, predicted, _route, grade, _subject, _at in chosen.values():
        confusion[str(predicted)][str(grade)] += 1
    return Agreement(
        judged=len(chosen),
        matches=sum(confusion[g][g] for g in confusion),
        confusion={p: dict(sorted(c.items())) for p, c in sorted(confusion.items())},
    )


def _rows(counts: Mapping[Any, tuple[int, int]], *, numeric: bool = False) -> list[DeferralRow]:
    keys = sorted(counts, key=lambda k: (k is None, int(k) if numeric and k is not None else str(k)))
    return [DeferralRow("-" if k is None else str(k), int(counts[k][0]), int(counts[k][1] or 0)) for k in keys]


def _leg_rows(raw: Iterable[tuple[str, str, int, int, int, float]], prices: PriceTable) -> list[LegRow]:
    order = {"reason": 0, "plan": 1, "predict": 2, "reason_again": 3, "small": 4, "act_to_learn": 5, "large": 6}
    rows = [
        LegRow(
            leg,
            model,
            int(calls),
            int(tin or 0),
            int(tout or 0),
            float(lat or 0.0),
            prices.cost(model, int(tin or 0), int(tout or 0)),
        )
        for leg, model, calls, tin, tout, lat in raw
    ]
    return sorted(rows, key=lambda r: (order.get(r.leg, 9), r.leg, r.model))


def _python_stats(store: DecisionStore, since: str | None, prices: PriceTable) -> StoreStats:
    decisions = store.decisions(DecisionFilter(since=since))
    groups: dict[str, dict[Any, list[int]]] = {
        g: defaultdict(lambda: [0, 0]) for g in ("kind", "step", "model", "day", "reason")
    }
    legs: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for d in decisions:
        for name, key in (
            ("kind", d.kind),
            ("step", d.step),
            ("model", d.small_model),
            ("day", d.created_at[:10]),
            ("reason", d.reason),
        ):
            groups[name][key][0] += 1
            groups[name][key][1] += int(d.deferred)
        for leg, usage in d.legs.items():
            acc = legs[(leg, usage.model)]
            acc[0] += 1
            acc[1] += usage.input_tokens
            acc[2] += usage.output_tokens
            acc[3] += usage.latency_ms
    by_id = {d.id: d for d in decisions}
    pairs: list[_Pair] = []
    for v in store.verdicts(list(by_id)):
        d = by_id[v.decision_id]
        pred = d.prediction
        pairs.append((d.id, pred.grade if pred else None, d.route, v.grade, v.subject, v.created_at))
    counted = {name: {k: (c[0], c[1]) for k, c in g.items()} for name, g in groups.items()}
    return StoreStats(
        decisions=len(decisions),
        deferred=sum(d.deferred for d in decisions),
        by_kind=_rows(counted["kind"]),
        by_step=_rows(counted["step"], numeric=True),
        by_model=_rows(counted["model"]),
        by_day=_rows(counted["day"]),
        by_reason=_rows(counted["reason"]),
        legs=_leg_rows(
            ((leg, m, int(a[0]), int(a[1]), int(a[2]), a[3] / a[0]) for (leg, m), a in legs.items()), prices
        ),
        agreement=_agreement(pairs),
        currency=prices.currency,
    )


def compute_stats(store: DecisionStore, *, prices: PriceTable | None = None, since: str | None = None) -> StoreStats:
    """Aggregate the decision log.

    Args:
        store: Any decision store (SQL stores aggregate in the database).
        prices: Price table for cost estimates (local GGUF models are free; hosted
            models have no price unless given).
        since: Only decisions created at or after this ISO date/time.

    Returns:
        Deferral rates overall and by kind, step, small model, day and reason; tokens,
        latency and cost per leg and model; predicted-vs-judged grade agreement.
    """
    prices = prices or PriceTable()
    from rpra_agent.store.sql import SQLDecisionStore

    if isinstance(store, SQLDecisionStore):
        from rpra_agent.store._sqlstats import sql_stats

        return sql_stats(store, since, prices)
    return _python_stats(store, since, prices)
