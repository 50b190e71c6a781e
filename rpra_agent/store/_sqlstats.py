"""The SQL side of :func:`rpra_agent.store.stats.compute_stats` (GROUP BY in the database)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, case, func, select

from rpra_agent.store._schema import decision_legs, decisions, verdicts
from rpra_agent.store.prices import PriceTable
from rpra_agent.store.stats import StoreStats, _agreement, _leg_rows, _Pair, _rows

if TYPE_CHECKING:
    from rpra_agent.store.sql import SQLDecisionStore

__all__ = ["sql_stats"]


def _since(query: Any, since: str | None) -> Any:
    return query.where(decisions.c.created_at >= since) if since is not None else query


def _group(conn: Connection, key: Any, since: str | None) -> dict[Any, tuple[int, int]]:
    deferred = func.sum(case((decisions.c.route == "large", 1), else_=0))
    query = _since(select(key, func.count(), deferred).group_by(key), since)
    return {row[0]: (int(row[1]), int(row[2] or 0)) for row in conn.execute(query)}


def sql_stats(store: SQLDecisionStore, since: str | None, prices: PriceTable) -> StoreStats:
    """Aggregate ``store``'s tables in SQL."""

    def run(conn: Connection) -> StoreStats:
        d = decisions.c
        day = func.substr(d.created_at, 1, 10)
        by_kind, by_step = _group(conn, d.kind, since), _group(conn, d.step, since)
        by_model, by_day = _group(conn, d.small_model, since), _group(conn, day, since)
        by_reason = _group(conn, d.reason, since)
        legs_q = _since(
            select(
                decision_legs.c.leg,
                decision_legs.c.model,
                func.count(),
                func.sum(decision_legs.c.input_tokens),
                func.sum(decision_legs.c.output_tokens),
                func.avg(decision_legs.c.latency_ms),
            )
            .join(decisions, decisions.c.id == decision_legs.c.decision_id)
            .group_by(decision_legs.c.leg, decision_legs.c.model),
            since,
        )
        pairs_q = _since(
            select(d.id, d.predicted_grade, d.route, verdicts.c.grade, verdicts.c.subject, verdicts.c.created_at)
            .join(verdicts, verdicts.c.decision_id == d.id)
            .where(verdicts.c.grade.is_not(None), d.predicted_grade.is_not(None)),
            since,
        )
        pairs: list[_Pair] = [tuple(row) for row in conn.execute(pairs_q)]  # type: ignore[misc]
        return StoreStats(
            decisions=sum(n for n, _ in by_kind.values()),
            deferred=sum(k for _, k in by_kind.values()),
            by_kind=_rows(by_kind),
            by_step=_rows(by_step, numeric=True),
            by_model=_rows(by_model),
            by_day=_rows(by_day),
            by_reason=_rows(by_reason),
            legs=_leg_rows((tuple(r) for r in conn.execute(legs_q)), prices),  # type: ignore[misc]
            agreement=_agreement(pairs),
            currency=prices.currency,
        )

    return store._read("compute statistics", run)
