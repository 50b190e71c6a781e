"""Benchmark the offline evaluation (``rpra eval``) end to end: wall time per stage and peak memory.

Run by hand (not a test)::

    .venv/bin/python benchmarks/bench_eval.py                 # MMLU, all 14,042 items
    .venv/bin/python benchmarks/bench_eval.py --dataset mt-bench
    .venv/bin/python benchmarks/bench_eval.py --tracemalloc   # Python-heap peak too (slower)

Prints the wall and CPU time (user + system, this process and its children, imports
included), each stage's time, graph runs per second, the peak resident set size
(ru_maxrss) and, with --tracemalloc, the peak traced Python allocation.

The README's figure for the main job (``rpra eval --dataset mt-bench``, every router)::

    .venv/bin/python benchmarks/bench_eval.py --dataset mt-bench
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mmlu")
    parser.add_argument("--db", default=None, help="store URL (default: a fresh SQLite file in a temp dir)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="worker processes for the graph passes")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slows the run)")
    parser.add_argument("--no-learned", action="store_true")
    args = parser.parse_args()

    out = Path(tempfile.mkdtemp(prefix="rpra-bench-"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.tracemalloc:
        tracemalloc.start()
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    from rpra_agent.evaluation.runs.pipeline import ReplayOptions, run_replay_eval

    imported = time.perf_counter() - start
    result = run_replay_eval(
        args.dataset,
        out_dir=out,
        store=args.db,
        options=ReplayOptions(
            batch_size=args.batch_size,
            max_concurrency=args.concurrency,
            learned=not args.no_learned,
            workers=args.workers,
        ),
    )
    wall = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start
    traced = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    graph_runs = 2 * result.n_items
    graph_s = result.timings.get("collect", 0.0) + result.timings.get("route", 0.0)

    print(
        f"dataset            {result.dataset} (n={result.n_items}, dropped {result.n_dropped}), workers {args.workers}"
    )
    print(f"wall time          {wall:8.1f} s   (imports {imported:.1f} s)")
    print(f"CPU time           {cpu:8.1f} s   (user + system, with child processes; {os.cpu_count()} cores)")
    print(f"  {'stage':16s} {'wall':>8s}   {'CPU':>8s}")
    for stage, seconds in result.timings.items():
        print(f"  {stage:16s} {seconds:8.2f} s {result.cpu_timings.get(stage, float('nan')):8.2f} s")
    print(f"graph runs         {graph_runs} in {graph_s:.1f} s = {graph_runs / graph_s if graph_s else 0:.0f} runs/s")
    print(f"peak RSS           {rss / 1024:8.0f} MiB (before the run: {rss_before / 1024:.0f} MiB)")
    if args.workers > 1:
        print(f"peak RSS (worker)  {rss_children / 1024:8.0f} MiB (largest worker process)")
    if traced is not None:
        print(f"peak traced heap   {traced / 2**20:8.0f} MiB (tracemalloc)")
    for row in result.rows:
        apgr = "-" if row.apgr is None else f"{row.apgr:.3f}"
        print(f"  {row.name:22s} APGR {apgr}")
    if result.operating is not None:
        op = result.operating
        print(f"operating point    defer {op.deferral_rate:.3f}, quality {op.quality:.4f}, PGR {op.pgr:.3f}")
    shutil.rmtree(out, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
