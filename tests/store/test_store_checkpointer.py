"""A multi-turn thread survives a process restart: LangGraph's checkpointer and the decision
log share one database (SqliteSaver on the SQLite file, AsyncPostgresSaver on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.store._checkpoint_turn import postgres_turn, sqlite_turn

SCRIPT = Path(__file__).with_name("_checkpoint_turn.py")
ROOT = Path(__file__).parents[2]


def _turn_in_new_process(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_thread_survives_a_process_restart_with_its_decisions(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'app.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    spool = str(tmp_path / "spool.jsonl")
    # Turn 1 in this process (its own saver, store and graph objects, all closed afterwards)...
    if backend == "sqlite":
        first = sqlite_turn(url, "thread-7", "Hello, I am Ada.", "Hi Ada!", spool)
    else:
        first = asyncio.run(postgres_turn(url, "thread-7", "Hello, I am Ada.", "Hi Ada!", spool))
    assert first["messages"] == ["Hello, I am Ada.", "Hi Ada!"]
    # ...turn 2 in a brand-new interpreter: the conversation and its decision log continue.
    second = _turn_in_new_process(backend, url, "thread-7", "What is my name?", "You are Ada.", spool)
    assert second["messages"] == ["Hello, I am Ada.", "Hi Ada!", "What is my name?", "You are Ada."]
    decisions = second["decisions"]
    assert [(d["request"], d["response"]) for d in decisions] == [
        ("Hello, I am Ada.", "Hi Ada!"),
        ("What is my name?", "You are Ada."),
    ]
    assert len({d["run_id"] for d in decisions}) == 2  # one run per turn, both on the thread
    assert set(second["run_status"].values()) == {"completed"}
    if backend == "sqlite":  # one file holds both the checkpoints and the decision log
        import sqlite3

        with sqlite3.connect(tmp_path / "app.db") as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"checkpoints", "writes", "rpra_decisions", "rpra_runs"} <= tables
