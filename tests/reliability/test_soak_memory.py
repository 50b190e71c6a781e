"""Soak: in a steady state, recording more decisions does not grow memory.

Python heap growth is measured with ``tracemalloc`` (not wall time, not RSS, which
the allocator keeps), after a warm-up that fills every bounded cache. The bound is
calibrated in the test itself: a fifth of what keeping each decision would cost, so
a leak of one decision per decision (or of any run state) fails it.
``benchmarks/bench_soak.py`` runs 100,000 decisions and reports RSS.
"""

import copy
import gc
import logging
import tracemalloc

from rpra_agent.store import open_store
from tests.reliability._mix import mix_graph, mix_models, request_for

WARMUP, PHASE = 150, 150


def _run(graph, models, start: int, stop: int) -> tuple[int, dict]:
    decisions, state = 0, {}
    for i in range(start, stop):
        state = graph.invoke(request_for(i)[1])
        decisions += len(state["rpra_decisions"])
        for model in models:
            model.calls.clear()  # the test double's own call logs, not the product's
            model.plan_prompts.clear()
    return decisions, state


def _heap() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_steady_state_heap_does_not_grow_with_decisions(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'soak.db'}", spool_path=str(tmp_path / "spool.jsonl"))
    models = mix_models()
    graph = mix_graph(store, models)
    logging.disable(logging.WARNING)  # the mix's failure warnings are expected; keep caplog small
    try:
        total, _ = _run(graph, models, 0, WARMUP)
        store.flush()
        tracemalloc.start(1)
        try:
            # phase A absorbs one-time allocations made under tracing; phase B is measured
            total += _run(graph, models, WARMUP, WARMUP + PHASE)[0]
            store.flush()
            before = _heap()
            n, state = _run(graph, models, WARMUP + PHASE, WARMUP + 2 * PHASE)
            store.flush()
            growth = _heap() - before
            # what retaining the decisions would cost (the leak we guard against)
            kept_before = _heap()
            kept = copy.deepcopy(state["rpra_decisions"])
            per_decision = (_heap() - kept_before) / len(kept)
        finally:
            tracemalloc.stop()
        assert store.count() == total + n  # nothing dropped to keep memory flat
    finally:
        logging.disable(logging.NOTSET)
        store.close()
    assert per_decision > 500  # a recorded decision is not free: the bound below means something
    assert growth < 0.2 * per_decision * n, (growth, per_decision, n)
