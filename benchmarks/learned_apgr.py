"""Cross-fitted APGR of the learned predictor on every bundled dataset, beside random and oracle.

Usage::

    .venv/bin/python benchmarks/learned_apgr.py                  # every dataset, modes, targets, transfer table
    .venv/bin/python benchmarks/learned_apgr.py mt-bench --seeds 3 --no-transfer

Every figure is 5-fold cross-fitted: turns of one conversation share a fold, and the
regularisation and feature-block weights are tuned by an inner CV on the training
folds only. Columns: mode (request: the prompt alone; draft: also the weak model's
answer) x target (small: the weak answer's grade; no_worse: P(weak graded no worse
than strong)). Protocol: every point of the routing curve, every item with both
scores (RouteLLM's APGR definition; MT-bench routed per turn; all 1,319 GSM8K items).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.evaluation.metrics import apgr
from rpra_agent.evaluation.metrics.baselines import oracle_keep_scores
from rpra_agent.predictors.crossfit import crossfit_keep_scores, transfer_keep_scores

DATASETS = ("mt-bench", "mt-bench-question", "gsm8k", "mmlu", "arena")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=1, help="fold seeds to average over (mean ± sd)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--modes", default="request,draft")
    parser.add_argument("--targets", default="small,no_worse")
    parser.add_argument("--no-transfer", action="store_true", help="skip the cross-dataset table")
    args = parser.parse_args()
    cols = [(m, t) for m in args.modes.split(",") for t in args.targets.split(",")]
    head = " ".join(f"{m + '/' + t:>17}" for m, t in cols)
    print(f"{'dataset':10} {'n':>6} {'random':>7} {'oracle':>7} {head}  seconds", flush=True)
    for name in args.datasets:
        ds = load_dataset(name).judged()
        weak, strong = ds.scores(ds.weak), ds.scores(ds.strong)
        cells = []
        start = time.perf_counter()
        for mode, target in cols:
            if mode == "draft" and any(t is None for t in ds.texts(ds.weak)):
                cells.append(f"{'n/a (no answers)':>17}")
                continue
            vals = [
                apgr(weak, strong, crossfit_keep_scores(ds, k=args.folds, mode=mode, seed=s, target=target))  # type: ignore[arg-type]
                for s in range(args.seeds)
            ]
            sd = f"±{np.std(vals):.3f}" if len(vals) > 1 else ""
            cells.append(f"{np.mean(vals):>11.3f}{sd:>6}")
        oracle = apgr(weak, strong, oracle_keep_scores(weak, strong))
        print(
            f"{name:10} {len(ds):>6} {0.5:>7.3f} {oracle:>7.3f} "
            + " ".join(cells)
            + f"  {time.perf_counter() - start:.0f}",
            flush=True,
        )
    if args.no_transfer:
        return
    sets = {n: load_dataset(n).judged() for n in args.datasets}
    for target in args.targets.split(","):
        print(
            f"\nCross-dataset generalisation (request mode, target {target}; rows: trained on, columns: evaluated on)"
        )
        print(f"{'train / test':14}" + "".join(f"{n:>10}" for n in sets))
        for train_name, train in sets.items():
            row = []
            for test_name, test in sets.items():
                if train_name == test_name:
                    row.append(f"{'(cv)':>10}")
                    continue
                keep = transfer_keep_scores(train, test, mode="request", target=target)  # type: ignore[arg-type]
                row.append(f"{apgr(test.scores(test.weak), test.scores(test.strong), keep):>10.3f}")
            print(f"{train_name:14}" + "".join(row), flush=True)


if __name__ == "__main__":
    main()
