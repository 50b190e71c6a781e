"""The store is down: the graph keeps answering, decisions wait in the spool, nothing is lost.

The store's own tests prove the mechanism (``tests/store/test_store_durability.py``:
a PostgreSQL server stopped and restarted mid-run, an unreachable URL, full queues);
this one proves it end to end through concurrent graph runs.
"""

import asyncio

from rpra_agent import decisions_from_state
from rpra_agent.store import open_store
from tests.reliability._mix import mix_graph, request_for


async def test_graph_runs_through_a_database_outage_and_the_spool_replays(tmp_path):
    spool = tmp_path / "spool.jsonl"
    down = open_store(
        "postgresql://rpra:hunter2secret@127.0.0.1:9/rpra", spool_path=str(spool), retry_interval=0.2
    )  # nothing listens on port 9
    try:
        graph = mix_graph(down)
        states = await asyncio.gather(*(graph.ainvoke(request_for(i)[1]) for i in range(60)))
        await down.aflush()
        assert down.offline
    finally:
        down.close()
    made = sorted(d.id for s in states for d in decisions_from_state(s))
    assert all(s["messages"][-1].content for s in states)  # every run answered despite the outage
    assert len(made) == 70 and spool.exists() and "hunter2secret" not in spool.read_text()
    back = open_store(f"sqlite:///{tmp_path / 'back.db'}", spool_path=str(spool), retry_interval=0.2)
    try:
        back.flush()
        assert sorted(d.id for d in back.decisions()) == made  # every decision, exactly once
        assert len(back.runs()) == 60
    finally:
        back.close()
    assert spool.stat().st_size == 0
