"""Measure a lead, not a shipped router: distil the small model's answer into the request-mode head.

Usage::

    .venv/bin/python benchmarks/distill_probe.py                # bundled (MT-bench, arena, GSM8K) + ten held-out pairs
    .venv/bin/python benchmarks/distill_probe.py --shares 0.5 --bundled-only

A request-mode router cannot read the small model's answer, but at training time the
answers are known. Learning with privileged information by generalized distillation
(Vapnik and Vashist 2009; Lopez-Paz et al., ICLR 2016; reconstructed here, not their
code): a draft-mode teacher (``LearnedPredictor(mode="draft", target="small")``) is
fitted on the training folds, its inner out-of-fold expected grade of every training
item is mixed with the judge's grade, ``share * teacher + (1 - share) * label``, and the
request-mode head (``target="small"``) is fitted on that mix. The outer folds are those
of ``learned_apgr.py`` (``dataset_folds``, 5 folds by conversation, per seed), and the
teacher never sees an outer test item, so every figure is cross-fitted. Columns: the
learned head as shipped (``auto``), the same with ``target="small"`` (what the mixes
change), and one column per ``--shares`` value; mean ± sd over the fold seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knn_probe import ARENA_DIR, HELD_OUT  # noqa: E402
from learned_apgr import arena_pair  # noqa: E402

from rpra_agent.evaluation.datasets import load_dataset  # noqa: E402
from rpra_agent.evaluation.metrics import apgr  # noqa: E402
from rpra_agent.predictors._ordinal import OrdinalLogit  # noqa: E402
from rpra_agent.predictors._training import dataset_examples  # noqa: E402
from rpra_agent.predictors.crossfit import crossfit_predictions, dataset_folds  # noqa: E402
from rpra_agent.predictors.data import scale_of  # noqa: E402
from rpra_agent.predictors.learned import LearnedPredictor  # noqa: E402


def distilled_keep(ds: Any, folds: np.ndarray, seed: int, share: float) -> np.ndarray:
    """Cross-fitted keep-scores of the request head fitted on teacher-mixed labels."""
    samples, small, groups = dataset_examples(ds, mode="request")
    scale = scale_of(ds)
    keep = np.zeros(len(ds))
    for f in np.unique(folds):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        teacher = LearnedPredictor(mode="draft", target="small", seed=seed).fit_dataset(ds.subset(train))
        position = OrdinalLogit.expected_position(teacher.model.oof_cumulative)
        taught = np.interp(position, np.arange(len(scale.values)), scale.values)
        mixed = share * taught + (1.0 - share) * small[train]
        student = LearnedPredictor(mode="request", target="small", scale=scale, seed=seed)
        student.fit([samples[i] for i in train], mixed, groups=[groups[i] for i in train])
        keep[test] = student.keep_scores([samples[i] for i in test])
    return keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shares", default="0.5,1", help="teacher shares of the mixed label, comma-separated")
    parser.add_argument("--bundled-only", action="store_true")
    args = parser.parse_args()
    shares = [float(s) for s in args.shares.split(",")]
    sets: list[Any] = [load_dataset(n).judged() for n in ("mt-bench", "arena", "gsm8k")]
    if not args.bundled_only:
        sets += [arena_pair(str(ARENA_DIR), *p.split(">"), continuous=True) for p in HELD_OUT.split(",")]
    cols = ["auto", "small"] + [f"share {s:g}" for s in shares]
    print(f"{'data':24} {'n':>5} " + " ".join(f"{c:>12}" for c in cols))
    held: dict[str, list[float]] = {c: [] for c in cols}
    for i, ds in enumerate(sets):
        weak, strong = ds.scores(ds.weak), ds.scores(ds.strong)
        got: dict[str, list[float]] = {c: [] for c in cols}
        for seed in range(args.seeds):
            folds = dataset_folds(ds, 5, seed)
            for target in ("auto", "small"):
                fit = crossfit_predictions(ds, mode="request", target=target, folds=folds, seed=seed)  # type: ignore[arg-type]
                got[target].append(apgr(weak, strong, fit.keep))
            for share in shares:
                got[f"share {share:g}"].append(apgr(weak, strong, distilled_keep(ds, folds, seed, share)))
        cells = [f"{np.mean(v):.3f}±{np.std(v):.3f}" for v in got.values()]
        print(f"{ds.name:24} {len(ds):>5} " + " ".join(f"{c:>12}" for c in cells), flush=True)
        if i >= 3:
            for c in cols:
                held[c].append(float(np.mean(got[c])))
    if held["auto"]:
        print(f"{'held-out mean':24} {'':>5} " + " ".join(f"{np.mean(v):>12.3f}" for v in held.values()))


if __name__ == "__main__":
    main()
