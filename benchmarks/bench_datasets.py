"""Load time, memory and baseline-metric time of every bundled dataset (run by hand).

.venv/bin/python benchmarks/bench_datasets.py
"""

from __future__ import annotations

import resource
import time

from rpra_agent.evaluation.datasets import BUNDLED, bundled_path
from rpra_agent.evaluation.datasets.records import _load_file
from rpra_agent.evaluation.metrics.baselines import dataset_baselines


def main() -> None:
    print(f"{'dataset':20s} {'items':>6s} {'load s':>8s} {'baselines s':>12s} {'oracle APGR':>12s}")
    for name in BUNDLED:
        t0 = time.perf_counter()
        ds = _load_file(bundled_path(name))  # uncached
        t1 = time.perf_counter()
        rows = {r.name: r for r in dataset_baselines(ds)}
        t2 = time.perf_counter()
        print(f"{name:20s} {len(ds):6d} {t1 - t0:8.3f} {t2 - t1:12.3f} {rows['oracle'].apgr:12.4f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
