"""Measure two leads, not shipped routers: let the small-target head use the large model's scores.

Usage::

    .venv/bin/python benchmarks/large_score_probe.py arena mt-bench gsm8k --modes request,draft
    .venv/bin/python benchmarks/large_score_probe.py --pairs "openchat_3.5>claude-2,vicuna-33b-v1.3>claude-1"

At training time the large model's scores are known too. The head that predicts the
small model's score (``target="small"``) ignores them, and the ``gain`` head predicts
their difference. Two ways between the two, both cross-fitted on the folds of
``learned_apgr.py`` (``dataset_folds``, 5 folds by conversation, per seed):

- ``mix s`` (label denoising): the request head is fitted on ``(1 - s) * small + s *
  large``. The part of the small score that the request predicts is mostly the
  prompt's difficulty, which the large score shares.
- ``lam`` (shrunken gain): the small head's cross-fitted expected score minus ``lam``
  times a TF-IDF + ridge prediction of the large score from the request, centred on
  the training folds' mean. ``lam`` is the calibration slope of that ridge's inner
  out-of-fold predictions on the training folds (3 folds, clipped to 0..1): 0 where
  the request does not predict the large score, so the head stays ``small``; 1 where
  it does, so the keep-score becomes an estimate of the gain. ``one`` is ``lam = 1``.

Columns: ``auto`` (the shipped default), ``small``, ``gain`` (forced targets), then
each variant; the mean over the fold seeds.
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
from rpra_agent.predictors._training import dataset_examples  # noqa: E402
from rpra_agent.predictors.baselines import RidgeTextPredictor  # noqa: E402
from rpra_agent.predictors.crossfit import crossfit_predictions, dataset_folds  # noqa: E402
from rpra_agent.predictors.data import scale_of  # noqa: E402
from rpra_agent.predictors.folds import fold_ids  # noqa: E402
from rpra_agent.predictors.learned import LearnedPredictor  # noqa: E402


def mixed_keep(ds: Any, folds: np.ndarray, seed: int, share: float) -> np.ndarray:
    """Cross-fitted keep-scores of the request head fitted on ``(1 - share) * small + share * large``."""
    samples, small, groups = dataset_examples(ds, mode="request")
    large = np.asarray(ds.scores(ds.strong), dtype=float)
    scale = scale_of(ds)
    keep = np.zeros(len(ds))
    for f in np.unique(folds):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        label = np.clip(share * large[train] + (1.0 - share) * small[train], scale.values[0], scale.values[-1])
        head = LearnedPredictor(mode="request", target="small", scale=scale, seed=seed)
        head.fit([samples[i] for i in train], label, groups=[groups[i] for i in train])
        keep[test] = head.keep_scores([samples[i] for i in test])
    return keep


def large_prediction(ds: Any, folds: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted, centred ridge predictions of the large score, and each item's fold's ``lam``."""
    samples, _, groups = dataset_examples(ds, mode="request")
    large = np.asarray(ds.scores(ds.strong), dtype=float)
    scale = scale_of(ds)

    def ridge(rows: np.ndarray) -> RidgeTextPredictor:
        return RidgeTextPredictor(mode="request", scale=scale).fit([samples[i] for i in rows], large[rows])

    pred, lam = np.zeros(len(ds)), np.zeros(len(ds))
    for f in np.unique(folds):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        pred[test] = ridge(train).keep_scores([samples[i] for i in test]) - large[train].mean()
        inner = fold_ids(len(train), 3, seed, groups=[groups[i] for i in train])
        oof = np.zeros(len(train))
        for g in range(3):
            fit_rows, held = train[inner != g], np.flatnonzero(inner == g)
            oof[held] = ridge(fit_rows).keep_scores([samples[train[i]] for i in held])
        var = float(np.var(oof))
        slope = float(np.cov(large[train], oof)[0, 1] / var) if var > 0 else 0.0
        lam[test] = min(max(slope, 0.0), 1.0)
    return pred, lam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=[])
    parser.add_argument("--pairs", default="", help="weak>strong pairs of the arena-bench-v1 recordings (continuous)")
    parser.add_argument("--modes", default="request")
    parser.add_argument("--shares", default="0,0.5", help="large shares of the mixed label (request mode only)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    sets: list[Any] = [load_dataset(n).judged() for n in args.datasets]
    sets += [arena_pair(str(ARENA_DIR), *p.split(">"), continuous=True) for p in args.pairs.split(",") if p]
    shares = [float(s) for s in args.shares.split(",") if s]
    for ds in sets:
        weak, strong = ds.scores(ds.weak), ds.scores(ds.strong)
        for mode in args.modes.split(","):
            got: dict[str, list[float]] = {}
            lams: list[float] = []
            for seed in range(args.seeds):
                folds = dataset_folds(ds, 5, seed)
                keep: dict[str, np.ndarray] = {}
                for target in ("auto", "small", "gain"):
                    fit = crossfit_predictions(ds, mode=mode, target=target, folds=folds, seed=seed)  # type: ignore[arg-type]
                    keep[target] = fit.keep
                pred, lam = large_prediction(ds, folds, seed)
                lams.append(float(np.mean(lam)))
                keep["lam"] = keep["small"] - lam * pred
                keep["one"] = keep["small"] - pred
                if mode == "request":
                    for share in shares:
                        keep[f"mix {share:g}"] = mixed_keep(ds, folds, seed, share)
                for name, k in keep.items():
                    got.setdefault(name, []).append(apgr(weak, strong, k))
            cells = " ".join(f"{name} {np.mean(v):.3f}" for name, v in got.items())
            print(f"{ds.name[:26]:26} {mode:7} {len(ds):>5}  {cells}  (lam {np.mean(lams):.2f})", flush=True)


if __name__ == "__main__":
    main()
