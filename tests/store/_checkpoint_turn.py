"""One conversation turn in a fresh process: LangGraph checkpointer + decision store on one database.

Usage: python _checkpoint_turn.py sqlite|postgres URL THREAD TEXT REPLY SPOOL
Prints JSON: the thread's messages after the turn and the thread's decisions in the store.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from langchain_core.messages import HumanMessage

from rpra_agent import build_rpra_graph
from rpra_agent.store import DecisionFilter, open_store
from rpra_agent.testing import FixedPredictor, ScriptedChatModel


def _graph(store: Any, saver: Any, reply: str) -> Any:
    small = ScriptedChatModel(responses=[reply], rpra_name="small-m")
    large = ScriptedChatModel(responses=["large reply"], rpra_name="large-m")
    return build_rpra_graph(
        small=small, large=large, predictor=FixedPredictor({"great": 1.0}), store=store, checkpointer=saver
    )


def _report(url: str, spool: str, thread: str, out: dict[str, Any]) -> dict[str, Any]:
    reader = open_store(url, spool_path=spool)
    try:
        decisions = reader.decisions(DecisionFilter(thread_id=thread))
        runs = reader.runs()
    finally:
        reader.close()
    return {
        "messages": [m.content for m in out["messages"]],
        "decisions": [{"run_id": d.run_id, "request": d.request, "response": d.response} for d in decisions],
        "run_status": {d.run_id: runs[d.run_id]["status"] for d in decisions},
    }


def sqlite_turn(url: str, thread: str, text: str, reply: str, spool: str) -> dict[str, Any]:
    """A sync turn with SqliteSaver on the store's own SQLite file."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    store = open_store(url, spool_path=spool)
    conn = sqlite3.connect(store.db.sqlite_path, check_same_thread=False)
    try:
        out = _graph(store, SqliteSaver(conn), reply).invoke(
            {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}
        )
    finally:
        store.close()
        conn.close()
    return _report(url, spool, thread, out)


async def postgres_turn(url: str, thread: str, text: str, reply: str, spool: str) -> dict[str, Any]:
    """An async turn with AsyncPostgresSaver on the store's own PostgreSQL database (plain libpq URL)."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    store = open_store(url, spool_path=spool)
    try:
        async with AsyncPostgresSaver.from_conn_string(store.db.libpq) as saver:
            await saver.setup()
            out = await _graph(store, saver, reply).ainvoke(
                {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}
            )
    finally:
        await store.aclose()
    return _report(url, spool, thread, out)


def main() -> None:
    backend, url, thread, text, reply, spool = sys.argv[1:7]
    if backend == "sqlite":
        result = sqlite_turn(url, thread, text, reply, spool)
    else:
        result = asyncio.run(postgres_turn(url, thread, text, reply, spool))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
