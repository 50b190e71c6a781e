"""Load: N concurrent async runs of the RPRA graph; every decision recorded exactly once.

Run from the repository root:

    .venv/bin/python benchmarks/bench_load.py                 # 500 concurrent runs, SQLite then PostgreSQL
    .venv/bin/python benchmarks/bench_load.py --runs 2000 --backends sqlite

The models and predictor are instant test doubles (``tests/reliability/_mix.py``)
taking every route: small, large, predictor error, small failure, large failure
degraded, tool steps. PostgreSQL is a throwaway cluster (fsync off) unless
``RPRA_TEST_DATABASE_URL`` is set. Per backend: wall time, runs and decisions per
second, and the exactly-once check (stored rows vs the decisions in the runs' states).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rpra_agent import decisions_from_state  # noqa: E402
from rpra_agent.store import open_store  # noqa: E402
from tests.reliability._mix import mix_graph, request_for  # noqa: E402


async def one(url: str, runs: int, spool: Path) -> dict[str, float]:
    store = open_store(url, spool_path=str(spool))
    try:
        graph = mix_graph(store)
        inputs = [request_for(i)[1] for i in range(runs)]
        t0 = time.perf_counter()
        states = await asyncio.gather(*(graph.ainvoke(x) for x in inputs))
        t_runs = time.perf_counter() - t0
        await store.aflush()
        t_all = time.perf_counter() - t0
        made = Counter(d.id for s in states for d in decisions_from_state(s))
        stored = Counter(d.id for d in store.decisions())
        return {
            "runs": runs,
            "decisions": sum(made.values()),
            "stored": sum(stored.values()),
            "lost": len(set(made) - set(stored)),
            "duplicated": sum(1 for c in stored.values() if c > 1),
            "completed_runs": sum(1 for r in store.runs().values() if r["status"] == "completed"),
            "t_runs": t_runs,
            "t_all": t_all,
        }
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the mix's failures warn by design
    tmp = Path(tempfile.mkdtemp(prefix="rpra-load-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # scratch removed at exit
    print(f"{args.runs} concurrent runs (asyncio.gather of graph.ainvoke), os.cpu_count()={os.cpu_count()}")
    header = f"{'backend':<9} {'wall s':>7} {'runs/s':>7} {'dec/s':>7} {'decisions':>9} {'stored':>7} {'lost':>5} {'dup':>4} {'runs ok':>8}"
    print(header)
    bad = False
    for backend in args.backends.split(","):
        cluster = None
        if backend == "sqlite":
            url = f"sqlite:///{tmp / 'load.db'}"
        elif backend == "postgres":
            url = os.environ.get("RPRA_TEST_DATABASE_URL", "")
            if not url:
                from tests.fixtures_postgres import PostgresCluster, find_pg_bin

                bin_dir = find_pg_bin()
                if bin_dir is None:
                    print("postgres  skipped: no PostgreSQL binaries")
                    continue
                cluster = PostgresCluster(bin_dir).init()
                cluster.start()
                url = cluster.url()
        else:
            sys.exit(f"unknown backend {backend!r}")
        try:
            r = asyncio.run(one(url, args.runs, tmp / f"spool-{backend}.jsonl"))
        finally:
            if cluster is not None:
                cluster.cleanup()
        print(
            f"{backend:<9} {r['t_all']:>7.2f} {r['runs'] / r['t_all']:>7.0f} {r['decisions'] / r['t_all']:>7.0f} "
            f"{r['decisions']:>9} {r['stored']:>7} {r['lost']:>5} {r['duplicated']:>4} {r['completed_runs']:>8}"
        )
        bad |= bool(r["lost"] or r["duplicated"] or r["stored"] != r["decisions"] or r["completed_runs"] != args.runs)
    if bad:
        sys.exit("FAILED: decisions lost or duplicated")


if __name__ == "__main__":
    main()
