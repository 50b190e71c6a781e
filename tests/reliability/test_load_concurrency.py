"""Load: 500 concurrent async runs, every decision recorded exactly once (SQLite, PostgreSQL)."""

import asyncio
from collections import Counter

import pytest

from rpra_agent import decisions_from_state
from rpra_agent.store import open_store
from tests.reliability._mix import EXPECTED, mix_graph, request_for

RUNS = 500


async def _drive(store) -> tuple[list, list]:
    graph = mix_graph(store)
    kinds, inputs = zip(*(request_for(i) for i in range(RUNS)), strict=True)
    states = await asyncio.gather(*(graph.ainvoke(x) for x in inputs))
    return list(kinds), list(states)


def _check_exactly_once(store, kinds, states) -> None:
    in_states = [d for s in states for d in decisions_from_state(s)]
    # every run took the steps its request asked for, with the expected route and reason
    for kind, state in zip(kinds, states, strict=True):
        assert [(d.route, d.reason) for d in decisions_from_state(state)] == EXPECTED[kind]
    stored = store.decisions()
    assert len(stored) == len(in_states) == sum(len(EXPECTED[k]) for k in kinds)
    assert Counter(d.id for d in stored) == Counter(d.id for d in in_states)  # no loss, no duplicate
    by_id = {d.id: d for d in stored}
    for d in in_states:
        s = by_id[d.id]
        assert (s.run_id, s.step, s.route, s.reason, s.degraded, s.error) == (
            d.run_id,
            d.step,
            d.route,
            d.reason,
            d.degraded,
            d.error,
        )
    runs = store.runs()
    assert len(runs) == RUNS and {r["status"] for r in runs.values()} == {"completed"}
    assert not store.spool.pending() and not store.spool.rejected_path.exists()


async def test_500_concurrent_runs_sqlite(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'load.db'}", spool_path=str(tmp_path / "spool.jsonl"))
    try:
        kinds, states = await _drive(store)
        await store.aflush()
        _check_exactly_once(store, kinds, states)
    finally:
        store.close()


@pytest.mark.postgres
async def test_500_concurrent_runs_postgres(postgres_url, tmp_path):
    store = open_store(postgres_url, spool_path=str(tmp_path / "spool.jsonl"))
    try:
        kinds, states = await _drive(store)
        await store.aflush()
        _check_exactly_once(store, kinds, states)
    finally:
        store.close()
