"""Measure why ``auto`` can score below both forced targets where the folds disagree.

Usage::

    .venv/bin/python benchmarks/target_flip_probe.py mt-bench arena --pairs "openchat_3.5>claude-2,Llama-2-70b-chat>claude-2.1"

``target="auto"`` chooses ``small`` or ``gain`` per outer fold, on the training folds
alone. The training folds are the complement of the test fold, so if a target looks
better on the training folds by chance, the test fold tends to favour the other one.
This scores every test fold twice, on the folds of ``learned_apgr.py``
(``dataset_folds``, 5 folds by conversation, per seed): with the target the fold chose
(``chosen``) and with the one it did not (``other``), both as within-fold percentiles,
as ``crossfit_predictions`` ranks folds that chose different targets. ``small`` and
``gain`` force one target in every fold; ``gain folds`` is the mean number of the 5
folds that chose ``gain``. Where the folds all agree, ``other`` is the losing target.
Where they disagree and ``other`` beats ``chosen`` (and the forced targets), the
choice is anti-correlated with the test folds: the cross-fitted ``auto`` figure then
understates a predictor trained once on all the data. Mean over the fold seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knn_probe import ARENA_DIR  # noqa: E402
from learned_apgr import arena_pair  # noqa: E402

from rpra_agent.evaluation.datasets import load_dataset  # noqa: E402
from rpra_agent.evaluation.metrics import apgr  # noqa: E402
from rpra_agent.predictors.crossfit import _percentiles, crossfit_predictions, dataset_folds  # noqa: E402


def within_fold_percentiles(keep: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold's keep-scores as percentiles within that fold (``crossfit_predictions``'s own ranking)."""
    out = np.zeros(len(keep))
    for f in np.unique(folds):
        rows = folds == f
        out[rows] = _percentiles(keep[rows])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=[])
    parser.add_argument("--pairs", default="", help="weak>strong pairs of the arena-bench-v1 recordings (continuous)")
    parser.add_argument("--modes", default="request")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    sets: list[Any] = [load_dataset(n).judged() for n in args.datasets]
    sets += [arena_pair(str(ARENA_DIR), *p.split(">"), continuous=True) for p in args.pairs.split(",") if p]
    for ds in sets:
        weak, strong = ds.scores(ds.weak), ds.scores(ds.strong)
        for mode in args.modes.split(","):
            got: dict[str, list[float]] = {}
            for seed in range(args.seeds):
                folds = dataset_folds(ds, 5, seed)
                fits = {
                    t: crossfit_predictions(ds, mode=mode, target=t, folds=folds, seed=seed)  # type: ignore[arg-type]
                    for t in ("auto", "small", "gain")
                }
                ranked = {t: within_fold_percentiles(fits[t].keep, folds) for t in ("small", "gain")}
                chosen, other = np.zeros(len(ds)), np.zeros(len(ds))
                for f, target in zip(np.unique(folds), fits["auto"].targets, strict=True):
                    rows = folds == f
                    chosen[rows] = ranked[target][rows]
                    other[rows] = ranked["gain" if target == "small" else "small"][rows]
                keeps = {t: fits[t].keep for t in fits} | {"chosen": chosen, "other": other}
                for name, keep in keeps.items():
                    got.setdefault(name, []).append(apgr(weak, strong, keep))
                got.setdefault("gain folds", []).append(sum(t == "gain" for t in fits["auto"].targets))
            cells = " ".join(f"{name} {np.mean(v):.3f}" for name, v in got.items())
            print(f"{ds.name[:26]:26} {mode:7} {len(ds):>5}  {cells}", flush=True)


if __name__ == "__main__":
    main()
