"""Nothing is lost: concurrent processes, a database outage, a full queue, an unreachable URL."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from rpra_agent.core.errors import StoreError
from rpra_agent.store import DecisionFilter
from tests.store._store_worker import write_decisions
from tests.store.conftest import make_decision

WORKER = Path(__file__).with_name("_store_worker.py")
ROOT = Path(__file__).parents[2]


def _spawn(url: str, n: int, tag: str, spool: Path, how: str = "close") -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, str(n), tag, str(spool), how], env=env, stderr=subprocess.PIPE
    )


def _counts(url: str) -> tuple[int, int, int]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            total, distinct = conn.execute(text("SELECT count(*), count(DISTINCT id) FROM rpra_decisions")).one()
            legs = conn.execute(text("SELECT count(*) FROM rpra_decision_legs")).scalar()
        return int(total), int(distinct), int(legs or 0)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_four_processes_two_thousand_each(backend, tmp_path, request):
    # Forked (not spawned) so the children skip the package import; each opens its own store.
    url = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=write_decisions, args=(url, 2000, f"p{k}", str(tmp_path / "spool.jsonl"))) for k in range(4)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    assert _counts(url) == (8000, 8000, 8000)  # exact: no loss, no duplicates (every 10th was added twice)
    assert not (tmp_path / "spool.jsonl").exists() or (tmp_path / "spool.jsonl").stat().st_size == 0


def test_interpreter_exit_flushes_the_queue(tmp_path):
    url = f"sqlite:///{tmp_path / 'exit.db'}"
    proc = _spawn(url, 3000, "exit", tmp_path / "spool.jsonl", how="atexit")  # never calls close()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert _counts(url) == (3000, 3000, 3000)


@pytest.mark.postgres
def test_postgres_stopped_mid_run_loses_nothing(postgres_server, postgres_url, open_test_store, tmp_path):
    cluster = postgres_server.cluster
    if cluster is None:
        pytest.skip("needs our own throwaway cluster (RPRA_TEST_DATABASE_URL cannot be stopped)")
    store = open_test_store(postgres_url, retry_interval=0.2, batch_wait=0.01)
    ids: list[str] = []
    stop = threading.Event()

    def agent() -> None:  # keeps logging decisions through the whole outage
        while not stop.is_set():
            d = make_decision(run_id="outage")
            ids.append(d.id)
            store.add(d)
            time.sleep(0.001)

    thread = threading.Thread(target=agent)
    thread.start()
    try:
        time.sleep(0.3)
        cluster.stop("fast")  # the database goes away mid-run, with writes in flight
        deadline = time.monotonic() + 10
        while not store.offline and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.offline
        time.sleep(0.3)
        with pytest.raises(StoreError, match="unreachable"):
            store.decisions()
        assert store.spool.count() > 0
        cluster.start()
        time.sleep(0.3)  # the retry timer notices the database is back and replays the spool
    finally:
        stop.set()
        thread.join()
    deadline = time.monotonic() + 30
    while (store.offline or store.spool.pending()) and time.monotonic() < deadline:
        time.sleep(0.1)
    got = [d.id for d in store.decisions(DecisionFilter(run_id="outage"))]
    assert len(ids) > 100
    assert sorted(got) == sorted(ids)  # every record, exactly once
    assert not store.offline and store.spool.count() == 0


@pytest.mark.postgres
def test_spool_left_by_a_crash_is_replayed_by_rpra_log_replay(postgres_server, postgres_url, open_test_store, tmp_path):
    from typer.testing import CliRunner

    from rpra_agent.cli import commands  # noqa: F401
    from rpra_agent.cli.app import app

    cluster = postgres_server.cluster
    if cluster is None:
        pytest.skip("needs our own throwaway cluster")
    spool = tmp_path / "crash-spool.jsonl"
    first = open_test_store(postgres_url, spool_path=str(spool))
    first.flush()  # schema exists
    cluster.stop("fast")
    ds = [make_decision(run_id="crash") for _ in range(200)]
    for d in ds:
        first.add(d)
    first.close()  # the database is still down: everything stays in the spool
    assert first.spool.count() == 200
    cluster.start()
    result = CliRunner().invoke(app, ["log", "replay", "--db", postgres_url, "--spool", str(spool)])
    assert result.exit_code == 0, result.output
    assert "replayed 200 records" in result.output
    again = CliRunner().invoke(app, ["log", "replay", "--db", postgres_url, "--spool", str(spool)])
    assert "nothing to replay" in again.output
    check = open_test_store(postgres_url)
    assert sorted(d.id for d in check.decisions(DecisionFilter(run_id="crash"))) == sorted(d.id for d in ds)


def _lock_sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN EXCLUSIVE")  # the writer now waits on its busy timeout
    return conn


def test_full_queue_blocks_the_caller_and_loses_nothing(sqlite_url, open_test_store, tmp_path):
    store = open_test_store(sqlite_url, max_queue=2, on_full="block")
    store.flush()  # schema created
    lock = _lock_sqlite(tmp_path / "log.db")
    ds = [make_decision(run_id="block") for _ in range(10)]
    adder = threading.Thread(target=lambda: [store.add(d) for d in ds])
    adder.start()
    adder.join(timeout=1.0)
    assert adder.is_alive(), "add() should block while the queue is full"
    assert store._writer.queued == 2
    lock.rollback() if lock.in_transaction else None
    lock.close()
    adder.join(timeout=30)
    assert not adder.is_alive()
    assert sorted(d.id for d in store.decisions(DecisionFilter(run_id="block"))) == sorted(d.id for d in ds)
    assert store.spool.count() == 0


def test_full_queue_spills_to_disk_and_loses_nothing(sqlite_url, open_test_store, tmp_path):
    store = open_test_store(sqlite_url, max_queue=2, on_full="spill")
    store.flush()
    lock = _lock_sqlite(tmp_path / "log.db")
    ds = [make_decision(run_id="spill") for _ in range(10)]
    for d in ds:
        store.add(d)  # never blocks
    assert store.spool.count() >= 1  # the queue was full, so records went to disk instead of blocking
    lock.execute("ROLLBACK")
    lock.close()
    store.flush()  # the writer replays the spill file on flush
    assert sorted(d.id for d in store.decisions(DecisionFilter(run_id="spill"))) == sorted(d.id for d in ds)
    assert store.spool.count() == 0


async def test_aadd_never_blocks_the_event_loop_on_a_full_queue(sqlite_url, open_test_store, tmp_path):
    import asyncio

    store = open_test_store(sqlite_url, max_queue=1, on_full="block")
    store.flush()
    lock = _lock_sqlite(tmp_path / "log.db")
    ds = [make_decision(run_id="async-block") for _ in range(5)]
    pending = asyncio.gather(*(store.aadd(d) for d in ds))
    ticks = 0
    for _ in range(5):  # the loop keeps running while aadd waits off-loop
        await asyncio.sleep(0.02)
        ticks += 1
    assert ticks == 5 and not pending.done()
    lock.execute("ROLLBACK")
    lock.close()
    await pending
    assert len(await store.adecisions(DecisionFilter(run_id="async-block"))) == 5


def test_unreachable_url_spools_then_replays_when_it_comes_back(tmp_path, caplog, request):
    from rpra_agent.store import open_store

    spool = tmp_path / "spool.jsonl"
    bad = open_store("postgresql://rpra:hunter2secret@127.0.0.1:9/rpra", spool_path=str(spool), retry_interval=0.2)
    ds = [make_decision(run_id="unreachable", request="key sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4") for _ in range(25)]
    with caplog.at_level("DEBUG"):
        for d in ds:
            bad.add(d)
        bad.flush()
        with pytest.raises(StoreError) as err:
            bad.decisions()
        bad.close()
    assert "unreachable" in str(err.value) and "127.0.0.1:9" in str(err.value)
    assert "hunter2secret" not in str(err.value) and "hunter2secret" not in caplog.text
    assert "***" in str(err.value)
    assert bad.spool.count() == 25
    assert "hunter2secret" not in spool.read_text() and "Zz9Yy8Xx7Ww6Vv5Uu4" not in spool.read_text()
    # The same spool, once a database is reachable again, is re-inserted automatically.
    good = open_store(f"sqlite:///{tmp_path / 'back.db'}", spool_path=str(spool), retry_interval=0.2)
    try:
        good.flush()
        assert sorted(d.id for d in good.decisions()) == sorted(d.id for d in ds)
    finally:
        good.close()
    assert spool.stat().st_size == 0


def test_bad_urls_are_clear_config_errors():
    from rpra_agent.core.errors import ConfigError
    from rpra_agent.store import open_store

    for url, fragment in [
        ("mysql://u:pw@h/db", "unsupported database"),
        ("postgresql://u:topsecret@h", "names no database"),
        ("postgresql+asyncpg://h/db", "psycopg 3 only"),
        ("not a url ://", "cannot parse"),
        ("postgresql://u:topsecret@h:badport/db", r"cannot parse .*\(the port must be a number\)"),
        ("memory://shared", "memory:// takes no name or path"),
    ]:
        with pytest.raises(ConfigError, match=fragment) as err:
            open_store(url)
        assert "topsecret" not in str(err.value)
