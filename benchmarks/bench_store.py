"""Decision-log benchmark: batched writer vs one commit per row, per-step logging overhead, durability modes.

Run from the repository root:  .venv/bin/python benchmarks/bench_store.py [--rows 5000] [--steps 400]
Only the durability modes:     .venv/bin/python benchmarks/bench_store.py --only durability

Starts its own throwaway PostgreSQL cluster (initdb as the postgres user, fsync on),
or uses RPRA_TEST_DATABASE_URL. Targets: batched >= 10x per-row; logging < 1 ms/step (median).
The durability table measures ``sync`` against ``async`` (batched) side by side in one
run, per backend: a one-step graph run at a time (interleaved), 16 concurrent runs
(group commit), and the decisions lost when a process running the graph is SIGKILLed
(counted among runs whose ``invoke()`` had returned).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.messages import HumanMessage  # noqa: E402

from rpra_agent import build_rpra_graph  # noqa: E402
from rpra_agent.core.decision import Decision, LegUsage  # noqa: E402
from rpra_agent.core.grades import GradeScale  # noqa: E402
from rpra_agent.core.prediction import Prediction  # noqa: E402
from rpra_agent.store import open_store  # noqa: E402
from rpra_agent.store._rows import decision_record  # noqa: E402
from rpra_agent.store._sqlio import insert_records  # noqa: E402
from rpra_agent.testing import FixedPredictor, ScriptedChatModel  # noqa: E402

PRED = Prediction.from_distribution({"great": 0.7, "ok": 0.2, "bad": 0.1}, scale=GradeScale.paper(), predictor="fixed")


def _decisions(n: int, tag: str) -> list[Decision]:
    return [
        Decision(
            run_id=f"{tag}-{i // 4}",
            step=i % 4,
            kind="answer",
            paradigm="pa",
            prediction=PRED,
            threshold=0.5,
            route="small",
            reason="predicted_ok",
            thread_id="bench",
            small_model="small-m",
            large_model="large-m",
            legs={"predict": LegUsage("small-m", 120, 1, 3.0), "small": LegUsage("small-m", 120, 80, 40.0)},
            request="What is the capital of France? " * 4,
            response="Paris is the capital of France. " * 6,
        )  # fmt: skip
        for i in range(n)
    ]


def batched_rate(url: str, n: int, spool: Path) -> float:
    """Decisions/s through add() + flush() (the background writer)."""
    store = open_store(url, spool_path=str(spool))
    store.upgrade()  # schema ready, writer idle
    ds = _decisions(n, "batched")
    start = time.perf_counter()
    for d in ds:
        store.add(d)
    store.flush()
    elapsed = time.perf_counter() - start
    store.close()
    return n / elapsed


def per_row_rate(url: str, n: int, spool: Path) -> float:
    """Decisions/s with the same SQL, one transaction (commit) per decision."""
    store = open_store(url, spool_path=str(spool))
    store.upgrade()
    engine, policy = store._write_engine, store.text_policy
    ds = _decisions(n, "per-row")
    start = time.perf_counter()
    for d in ds:
        with engine.begin() as conn:
            insert_records(conn, [decision_record(d, policy)])
    elapsed = time.perf_counter() - start
    store.close()
    return n / elapsed


def _graph(store: Any) -> Any:
    small = ScriptedChatModel(responses=["a small answer"], cycle=True, rpra_name="small-m")
    large = ScriptedChatModel(responses=["a large answer"], cycle=True, rpra_name="large-m")
    return build_rpra_graph(small=small, large=large, predictor=FixedPredictor({"great": 0.9, "ok": 0.1}), store=store)


def step_times(stores: dict[str, Any], steps: int) -> dict[str, list[float]]:
    """Per-step wall time (ms) of a one-step graph run per store; rounds interleave the stores
    (in rotating order) so that load on the machine hits all of them alike."""
    graphs = {name: _graph(store) for name, store in stores.items()}
    times: dict[str, list[float]] = {name: [] for name in graphs}
    message = {"messages": [HumanMessage("What is 2+2?")]}
    for graph in graphs.values():  # warm up
        for _ in range(20):
            graph.invoke(message)
    gc.collect()
    names = list(graphs)
    for n in range(steps):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            start = time.perf_counter()
            graphs[name].invoke(message)
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def step_cpu(stores: dict[str, Any], steps: int) -> dict[str, float]:
    """Process CPU time (ms) per step, the writer thread's work included (flushed before stopping the clock)."""
    graphs = {name: _graph(store) for name, store in stores.items()}
    message = {"messages": [HumanMessage("What is 2+2?")]}
    cpu: dict[str, float] = {}
    for name, graph in graphs.items():
        start = time.process_time()
        for _ in range(steps):
            graph.invoke(message)
        if stores[name] is not None:
            stores[name].flush()
        cpu[name] = (time.process_time() - start) / steps * 1000
    return cpu


def concurrent_rate(store: Any, runs: int, width: int = 16) -> float:
    """One-step runs per second with ``width`` runs in flight (``ainvoke``; sync mode shares commits)."""
    import asyncio

    graph = _graph(store)
    message = {"messages": [HumanMessage("What is 2+2?")]}

    async def go() -> float:
        gate = asyncio.Semaphore(width)

        async def one() -> None:
            async with gate:
                await graph.ainvoke(message)

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(runs)))
        store.flush()
        return runs / (time.perf_counter() - start)

    return asyncio.run(go())


def kill_loss(url: str, durability: str, spool: Path, runs: int = 150) -> tuple[int, int]:
    """SIGKILL a process running the graph after ``runs`` invokes returned; (lost, promised) decisions."""
    import os
    import signal
    import subprocess

    worker = ROOT / "tests" / "store" / "_kill_worker.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(worker), url, str(spool), durability], env=env, stdout=subprocess.PIPE, text=True
    )
    promised: list[str] = []
    assert proc.stdout is not None
    while len(promised) < runs:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the kill worker died")
        promised += line.split()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    promised += proc.stdout.read().split()
    store = open_store(url, spool_path=str(spool))
    store.replay()
    stored = {d.id for d in store.decisions()}
    store.close()
    return sum(i not in stored for i in promised), len(promised)


def durability_modes(cases: list[tuple[str, str, bool | None]], steps: int, tmp: Path) -> None:
    """Print the cost of ``sync`` relative to ``async`` (batched) on each backend, measured side by side."""
    print(f"\nDurability modes ({steps} one-step graph runs per mode, interleaved; 16 in flight: {steps} runs)")
    print(
        f"{'backend':<32}{'async ms':>9}{'sync ms':>9}{'ratio':>7}{'async/s 16w':>13}{'sync/s 16w':>12}"
        f"{'ratio':>7}  lost on SIGKILL: async | sync"
    )
    for label, url, fsync in cases:
        if fsync is not None:
            _set_fsync(url, on=fsync)
        stores = {
            mode: open_store(url, spool_path=str(tmp / f"d-{mode}.jsonl"), durability=mode)
            for mode in ("async", "sync")
        }
        times = step_times(stores, steps)
        rates = {mode: concurrent_rate(store, steps) for mode, store in stores.items()}
        for store in stores.values():
            store.close()
        lost = {mode: kill_loss(url, mode, tmp / f"k-{mode}.jsonl") for mode in ("async", "sync")}
        med = {mode: statistics.median(values) for mode, values in times.items()}
        (la, pa), (ls, ps) = lost["async"], lost["sync"]
        print(
            f"{label:<32}{med['async']:>9.3f}{med['sync']:>9.3f}{med['sync'] / med['async']:>6.2f}x"
            f"{rates['async']:>13,.0f}{rates['sync']:>12,.0f}{rates['async'] / rates['sync']:>6.2f}x"
            f"  {la} of {pa} | {ls} of {ps}"
        )
    if any(fsync is not None for _, _, fsync in cases):
        _set_fsync(cases[-1][1], on=True)


def _postgres() -> tuple[str, Any]:
    import os

    from tests.fixtures_postgres import PostgresCluster, find_pg_bin

    if os.environ.get("RPRA_TEST_DATABASE_URL"):
        return os.environ["RPRA_TEST_DATABASE_URL"], None
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql) and RPRA_TEST_DATABASE_URL unset")
    cluster = PostgresCluster(bin_dir).init()
    cluster.start(durable=True)  # fsync and synchronous commit on, as in production
    import psycopg

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    return cluster.url("bench"), cluster


def _set_fsync(url: str, *, on: bool) -> None:
    import psycopg

    value = "on" if on else "off"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET fsync = {value}")
        conn.execute(f"ALTER SYSTEM SET synchronous_commit = {value}")
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="decisions per write measurement")
    parser.add_argument("--per-row-rows", type=int, default=1000, help="decisions for the (slow) per-row measurement")
    parser.add_argument("--steps", type=int, default=400, help="graph steps per logging configuration")
    parser.add_argument("--only", choices=["durability"], help="run only this section")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rpra-bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # scratch removed at exit
    pg_url, cluster = _postgres()
    try:
        urls = {"SQLite": f"sqlite:///{tmp / 'bench.db'}", "PostgreSQL": pg_url}
        modes: list[tuple[str, str, bool | None]] = [("SQLite (WAL, synchronous=FULL)", urls["SQLite"], None)]
        modes.append(("PostgreSQL (fsync on)", pg_url, True if cluster is not None else None))
        if cluster is not None:
            modes.append(("PostgreSQL (fsync off)", pg_url, False))
        if args.only == "durability":
            durability_modes(modes, args.steps, tmp)
            return
        print(f"Write throughput (decisions/s; {args.rows} batched, {args.per_row_rows} per-row)")
        print(f"{'backend':<32}{'batched writer':>16}{'commit per row':>16}{'speed-up':>10}")
        cases = [("SQLite (WAL, synchronous=FULL)", urls["SQLite"]), ("PostgreSQL (fsync on)", pg_url)]
        if cluster is not None:
            cases.append(("PostgreSQL (fsync off)", pg_url))
        for label, url in cases:
            if label == "PostgreSQL (fsync off)":
                _set_fsync(pg_url, on=False)
            batched = batched_rate(url, args.rows, tmp / "spool.jsonl")
            per_row = per_row_rate(url, args.per_row_rows, tmp / "spool.jsonl")
            print(f"{label:<32}{batched:>16,.0f}{per_row:>16,.0f}{batched / per_row:>9.1f}x")
        if cluster is not None:
            _set_fsync(pg_url, on=True)

        stores: dict[str, Any] = {
            "off": None,
            "SQLite": open_store(urls["SQLite"], spool_path=str(tmp / "g1.jsonl")),
            "PostgreSQL": open_store(pg_url, spool_path=str(tmp / "g2.jsonl")),
        }
        times = step_times(stores, args.steps)
        cpu = step_cpu(stores, args.steps)
        for store in stores.values():
            if store is not None:
                store.close()
        print(f"\nGraph step with instant test models ({args.steps} one-step runs each, interleaved)")
        print(
            f"{'logging':<12}{'median ms':>11}{'p90 ms':>9}{'delta of medians':>18}{'median of paired deltas':>25}{'CPU ms/step':>13}"
        )
        for name, values in times.items():
            med = statistics.median(values)
            p90 = statistics.quantiles(values, n=10)[-1]
            paired = [on - off for on, off in zip(values, times["off"], strict=True)]
            over = "-" if name == "off" else f"{statistics.median(paired):+.3f}"
            delta = "-" if name == "off" else f"{med - statistics.median(times['off']):+.3f}"
            print(f"{name:<12}{med:>11.3f}{p90:>9.3f}{delta:>18}{over:>25}{cpu[name]:>13.3f}")
        durability_modes(modes, args.steps, tmp)
    finally:
        if cluster is not None:
            cluster.cleanup()


if __name__ == "__main__":
    main()
