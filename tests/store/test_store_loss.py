"""Loss is never silent: SIGKILL mid-run, a full disk, a deleted SQLite file (issue 14, item 3).

- ``durability="sync"``: every decision of a run whose ``invoke()`` returned survives a
  SIGKILL, on SQLite and on real PostgreSQL (the worker is a subprocess running the graph).
- Database and spool on a full 2 MB tmpfs (or, where mounting is not allowed, under
  ``RLIMIT_FSIZE`` in a subprocess): ``add`` raises ``DecisionNotDurableError`` with
  structured attributes, ``flush`` never returns normally while records are held only in
  memory, and once space is back every decision is stored exactly once.
- The SQLite file deleted mid-run: reads raise ``DatabaseReplacedError`` instead of
  counting ghosts; writes go to the spool; ``on_replaced="recreate"`` starts a new file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rpra_agent.store import DatabaseReplacedError, DecisionNotDurableError, open_store
from tests.store.conftest import make_decision

ROOT = Path(__file__).parents[2]
KILL_WORKER = Path(__file__).with_name("_kill_worker.py")


def _kill_mid_run(url: str, spool: Path, durability: str, runs: int) -> list[str]:
    """Start the worker, SIGKILL it once ``runs`` invokes returned; the ids they promised."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(KILL_WORKER), url, str(spool), durability],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    promised: list[str] = []
    try:
        assert proc.stdout is not None
        while len(promised) < runs:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"the worker died: {proc.stderr.read() if proc.stderr else ''}"[-2000:])
            promised += line.split()
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-run: the next invoke is already going
        proc.wait(timeout=30)
    for line in proc.stdout.read().split("\n") if proc.stdout else []:
        promised += line.split()  # lines printed before the kill landed
    return promised


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_in_sync_mode_loses_no_decision_whose_invoke_returned(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'kill.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    spool = tmp_path / "spool.jsonl"
    promised = _kill_mid_run(url, spool, "sync", runs=150)
    store = open_store(url, spool_path=str(spool), retry_interval=0.2)
    try:
        store.replay()  # the worker may have spooled some during a busy moment
        stored = {d.id for d in store.decisions()}
    finally:
        store.close()
    missing = [i for i in promised if i not in stored]
    assert len(promised) >= 150 and missing == []


def _fill(directory: Path, leave: int) -> Path:
    """Fill the filesystem of ``directory`` until ``leave`` bytes are free; the filler file."""
    filler = directory / "filler"
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.parametrize(("durability", "on_loss"), [("sync", "raise"), ("sync", "log"), ("async", "raise")])
def test_full_disk_is_never_a_silent_loss_and_nothing_is_lost_once_space_is_back(tiny_disk, durability, on_loss):
    store = open_store(
        f"sqlite:///{tiny_disk / 'full.db'}", spool_path=str(tiny_disk / "spool.jsonl"),
        durability=durability, on_loss=on_loss, retry_interval=0.1,
    )  # fmt: skip
    try:
        store.add(make_decision(run_id="fill"))  # create the schema while there is room
        store.flush()
        filler = _fill(tiny_disk, leave=64 * 1024)
        added: list[str] = []
        error: DecisionNotDurableError | None = None
        for _ in range(60):  # 60 x 6.4 kB: far more than the 64 kB left, less than the 2 MB disk
            d = make_decision(run_id="fill", response=uuid.uuid4().hex * 200)
            try:
                store.add(d)
            except DecisionNotDurableError as exc:
                error = exc
            added.append(d.id)  # queued even when add() raised: it must not be lost either
            if error or store.pending:
                break
        if durability == "sync":
            assert store.pending >= 1  # the disk did fill: a record is held only in memory
        if on_loss == "raise" and durability == "sync":
            assert error is not None and error.pending >= 1 and error.spool_path == tiny_disk / "spool.jsonl"
            assert "full" in (error.database_error or "") and error.spool_error
        if on_loss == "log":
            assert error is None  # "log": the step goes on, the loss is logged ...
        with pytest.raises(DecisionNotDurableError):
            store.flush()  # ... and flush() never returns normally over records it could not save
        filler.unlink()  # space is back
        time.sleep(0.2)
        store.flush()
        store.replay()
        assert store.pending == 0
        stored = [d.id for d in store.decisions() if d.run_id == "fill"]
        assert set(added) <= set(stored) and len(stored) == len(set(stored))  # all of them, exactly once
    finally:
        store.close()


_RLIMIT_SCRIPT = r"""
import json, resource, sys, uuid
from rpra_agent.store import DecisionNotDurableError, open_store
from tests.store.conftest import make_decision
url, spool = sys.argv[1], sys.argv[2]
store = open_store(url, spool_path=spool, durability="sync", retry_interval=0.1)
store.add(make_decision(run_id="fill"))
hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, hard))  # no file may grow past 512 kB
added, raised = [], False
for _ in range(400):
    d = make_decision(run_id="fill", response=uuid.uuid4().hex * 200)
    try:
        store.add(d)
    except DecisionNotDurableError:
        raised = True
    added.append(d.id)
    if raised:
        break
try:
    store.flush()
    flushed = "returned"
except DecisionNotDurableError:
    flushed = "raised"
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space is back
store.flush()
store.replay()  # what was spooled while the database file could not grow
stored = [d.id for d in store.decisions() if d.run_id == "fill"]
store.close()
print(json.dumps({"raised": raised, "flush": flushed, "missing": len(set(added) - set(stored)),
                  "dupes": len(stored) - len(set(stored))}))
"""


def test_file_size_limit_is_never_a_silent_loss(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _RLIMIT_SCRIPT, f"sqlite:///{tmp_path / 'f.db'}", str(tmp_path / "spool.jsonl")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"raised": True, "flush": "raised", "missing": 0, "dupes": 0}


def test_deleted_sqlite_file_is_detected_not_counted_as_ghosts(tmp_path):
    path = tmp_path / "gone.db"
    store = open_store(f"sqlite:///{path}", spool_path=str(tmp_path / "spool.jsonl"), durability="sync")
    try:
        for _ in range(50):
            store.add(make_decision(run_id="ghost"))
        assert store.count() == 50
        path.unlink()
        later = make_decision(run_id="ghost")
        store.add(later)  # durable: in the spool
        with pytest.raises(DatabaseReplacedError) as info:
            store.count()
        assert info.value.path == path and info.value.found is None
        assert store.spool.count() == 1
    finally:
        store.close()
    fresh = open_store(f"sqlite:///{path}", spool_path=str(tmp_path / "spool.jsonl"))
    try:
        fresh.flush()
        assert [d.id for d in fresh.decisions()] == [later.id]  # the spool replays into the new file
    finally:
        fresh.close()


def test_replaced_sqlite_file_can_be_recreated(tmp_path):
    path = tmp_path / "swap.db"
    store = open_store(f"sqlite:///{path}", spool_path=str(tmp_path / "s.jsonl"), on_replaced="recreate")
    try:
        store.add(make_decision(run_id="a"))
        assert store.count() == 1
        path.unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        store.add(make_decision(run_id="b"))
        assert [d.run_id for d in store.decisions()] == ["b"]  # a new file, not the ghost's 2
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sync_mode_under_concurrent_threads_and_tasks_commits_each_decision_once(backend, tmp_path, request):
    import asyncio
    import threading

    url = f"sqlite:///{tmp_path / 'many.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    store = open_store(url, spool_path=str(tmp_path / "s.jsonl"), durability="sync")
    try:
        ids: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(100):
                d = make_decision(run_id="many")
                store.add(d)
                with lock:
                    ids.append(d.id)

        async def tasks() -> None:
            async def one() -> None:
                d = make_decision(run_id="many")
                await store.aadd(d)
                ids.append(d.id)

            await asyncio.gather(*(one() for _ in range(200)))

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        asyncio.run(tasks())
        for t in threads:
            t.join()
        stored = [d.id for d in store.decisions() if d.run_id == "many"]
        assert len(ids) == 800 and sorted(stored) == sorted(ids)
    finally:
        store.close()
