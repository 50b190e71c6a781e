"""``benchmarks/learned_apgr.py``'s two protocols: pooled out-of-fold scores, or the folds' own APGRs averaged."""

from __future__ import annotations

import numpy as np

from benchmarks.learned_apgr import fold_apgr
from rpra_agent.evaluation.metrics import apgr


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 200
    weak = rng.integers(1, 11, n).astype(float)
    strong = np.minimum(10.0, weak + rng.integers(0, 4, n))
    folds = np.arange(n) % 5
    return weak, strong, folds


def test_pooled_is_the_plain_apgr_of_the_out_of_fold_scores() -> None:
    weak, strong, folds = _data()
    keep = weak + np.random.default_rng(1).normal(0, 3, len(weak))
    assert fold_apgr(weak, strong, keep, folds, per_fold=False) == apgr(weak, strong, keep)


def test_per_fold_averages_each_folds_own_apgr() -> None:
    weak, strong, folds = _data()
    keep = weak + np.random.default_rng(2).normal(0, 3, len(weak))
    expected = np.mean([apgr(weak[folds == f], strong[folds == f], keep[folds == f]) for f in range(5)])
    assert abs(fold_apgr(weak, strong, keep, folds, per_fold=True) - expected) < 1e-12


def test_a_constant_per_fold_set_against_the_fold_mean_is_random_per_fold_and_worse_pooled() -> None:
    """The card's case: each fold's constant is the *other* folds' mean, so pooling ranks against the labels."""
    weak, strong, folds = _data()
    means = {f: weak[folds != f].mean() for f in range(5)}
    keep = np.array([means[f] for f in folds])
    assert fold_apgr(weak, strong, keep, folds, per_fold=True) == 0.5
    assert fold_apgr(weak, strong, keep, folds, per_fold=False) < 0.5
