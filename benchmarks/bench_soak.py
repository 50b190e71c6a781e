"""Soak: 100,000 decisions through the RPRA graph into the SQL store; memory must stay flat.

Run from the repository root:

    .venv/bin/python benchmarks/bench_soak.py                      # 100,000 decisions, SQLite
    .venv/bin/python benchmarks/bench_soak.py --store postgres     # a throwaway PostgreSQL cluster
    .venv/bin/python benchmarks/bench_soak.py --decisions 20000 --every 5000

Requests cycle through every route of ``tests/reliability/_mix.py`` (small, large,
predictor error, small failure, large failure degraded, a tool step). RSS is read
from /proc after a warm-up and at every checkpoint; the last line compares the end
with the start. The store's row count must equal the decisions made.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import logging
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rpra_agent.store import open_store  # noqa: E402
from tests.reliability._mix import mix_graph, mix_models, request_for  # noqa: E402


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mib() -> float:
    """Peak resident set size so far in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=100_000)
    ap.add_argument("--warmup", type=int, default=2_000, help="decisions before the start reading")
    ap.add_argument("--every", type=int, default=10_000, help="decisions between readings")
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the mix's failures warn by design
    tmp = Path(tempfile.mkdtemp(prefix="rpra-soak-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # scratch removed at exit
    cluster = None
    if args.store == "postgres":
        from tests.fixtures_postgres import PostgresCluster, find_pg_bin

        bin_dir = find_pg_bin()
        if bin_dir is None:
            sys.exit("PostgreSQL binaries not found")
        cluster = PostgresCluster(bin_dir).init()
        cluster.start()
        url = cluster.url()
    else:
        url = f"sqlite:///{tmp / 'soak.db'}"
    store = open_store(url, spool_path=str(tmp / "spool.jsonl"))
    models = mix_models()
    graph = mix_graph(store, models)
    made, i = 0, 0

    def run_until(target: int) -> None:
        nonlocal made, i
        while made < target:
            made += len(graph.invoke(request_for(i)[1])["rpra_decisions"])
            i += 1
            if i % 100 == 0:
                for model in models:
                    model.calls.clear()  # the test double's call logs
                    model.plan_prompts.clear()

    try:
        run_until(args.warmup)
        store.flush()
        gc.collect()
        start_rss, t0, start_made = rss_mib(), time.perf_counter(), made
        print(f"store={args.store} target={args.decisions} decisions (warm-up {made})")
        print(f"{'decisions':>10} {'runs':>8} {'RSS MiB':>8} {'peak MiB':>9} {'dec/s':>7}")
        print(f"{made:>10} {i:>8} {start_rss:>8.1f} {peak_mib():>9.1f} {'-':>7}")
        while made < args.decisions:
            run_until(min(args.decisions, made + args.every))
            store.flush()
            gc.collect()
            rate = (made - start_made) / (time.perf_counter() - t0)
            print(f"{made:>10} {i:>8} {rss_mib():>8.1f} {peak_mib():>9.1f} {rate:>7.0f}", flush=True)
        end_rss = rss_mib()
        stored = store.count()
        print(
            f"RSS start {start_rss:.1f} MiB, end {end_rss:.1f} MiB ({end_rss - start_rss:+.1f} MiB over "
            f"{made - start_made} decisions, {(end_rss - start_rss) * 1024 * 1024 / max(1, made - start_made):+.1f} "
            f"B/decision); stored {stored} of {made} decisions; {time.perf_counter() - t0:.0f} s"
        )
        if stored != made:
            sys.exit("decisions were lost")
    finally:
        store.close()
        if cluster is not None:
            cluster.cleanup()


if __name__ == "__main__":
    main()
