"""Cross-fitted APGR of the learned predictor on every bundled dataset, beside random and oracle.

Usage::

    .venv/bin/python benchmarks/learned_apgr.py                 # every dataset, both modes, transfer table
    .venv/bin/python benchmarks/learned_apgr.py mt-bench --seeds 3 --no-transfer

Every figure is 5-fold cross-fitted (turns of one conversation share a fold; the
regularisation and block weights are tuned by an inner CV on the training folds only).
Protocol: every point of the routing curve, all items with both scores (RouteLLM's
APGR definition; MT-bench routed per turn).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rpra_agent.evaluation.baselines import oracle_keep_scores
from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.evaluation.metrics import apgr
from rpra_agent.predictors.crossfit import crossfit_keep_scores, transfer_keep_scores

DATASETS = ("mt-bench", "gsm8k", "mmlu", "arena")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=1, help="fold seeds to average over")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--modes", default="request,draft")
    parser.add_argument("--no-transfer", action="store_true", help="skip the cross-dataset table")
    args = parser.parse_args()
    modes = args.modes.split(",")
    print(f"{'dataset':10} {'n':>6} {'random':>7} {'oracle':>7} " + " ".join(f"{m:>16}" for m in modes) + "  seconds")
    for name in args.datasets:
        ds = load_dataset(name).judged()
        weak, strong = ds.scores(ds.weak), ds.scores(ds.strong)
        cells = []
        start = time.perf_counter()
        for mode in modes:
            if mode == "draft" and any(t is None for t in ds.texts(ds.weak)):
                cells.append(f"{'n/a (no answers)':>16}")
                continue
            vals = [
                apgr(weak, strong, crossfit_keep_scores(ds, k=args.folds, mode=mode, seed=s)) for s in range(args.seeds)
            ]
            sd = f"±{np.std(vals):.3f}" if len(vals) > 1 else ""
            cells.append(f"{np.mean(vals):>10.3f}{sd:>6}")
        oracle = apgr(weak, strong, oracle_keep_scores(weak, strong))
        print(
            f"{name:10} {len(ds):>6} {0.5:>7.3f} {oracle:>7.3f} "
            + " ".join(cells)
            + f"  {time.perf_counter() - start:.0f}"
        )
    if args.no_transfer:
        return
    print("\nCross-dataset generalisation (request mode; rows: trained on, columns: evaluated on; APGR)")
    sets = {n: load_dataset(n).judged() for n in args.datasets}
    print(f"{'train / test':14}" + "".join(f"{n:>10}" for n in sets))
    for train_name, train in sets.items():
        row = []
        for test_name, test in sets.items():
            if train_name == test_name:
                row.append(f"{'(cv)':>10}")
                continue
            keep = transfer_keep_scores(train, test, mode="request")
            row.append(f"{apgr(test.scores(test.weak), test.scores(test.strong), keep):>10.3f}")
        print(f"{train_name:14}" + "".join(row))


if __name__ == "__main__":
    main()
