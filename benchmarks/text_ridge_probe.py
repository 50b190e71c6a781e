"""How much the request alone says: TF-IDF + ridge on word or character n-grams, per penalty.

Usage::

    .venv/bin/python benchmarks/text_ridge_probe.py                    # arena and MT-bench, request mode
    .venv/bin/python benchmarks/text_ridge_probe.py arena gsm8k --alphas 1,3
    .venv/bin/python benchmarks/text_ridge_probe.py arena mt-bench gsm8k --target length

A probe, not a router: each row is a plain scikit-learn ``Ridge`` on one sublinear
TF-IDF block of the request text (no context, cues or task tag), regressed on the small
model's score and cross-fitted on ``learned_apgr.py``'s folds (``dataset_folds``, 5 folds
by conversation, 3 seeds, mean APGR). ``chars 2-4`` is the learned predictor's own
character block (``char_wb`` 2-4-grams of the first 2,000 characters, at most 20,000
terms); ``words 1-2`` its word block. ``docs/LEARNED.md`` quotes it for the arena
request row: which block carries the signal differs between datasets.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge

from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.evaluation.metrics import apgr
from rpra_agent.predictors.crossfit import dataset_folds

BLOCKS: dict[str, Callable[[], TfidfVectorizer]] = {
    "words 1-2": lambda: TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=20000),
    "chars 2-4": lambda: TfidfVectorizer(
        sublinear_tf=True, analyzer="char_wb", ngram_range=(2, 4), min_df=2, max_features=20000
    ),
}


def crossfit_apgr(ds: Any, block: str, alpha: float, seeds: int, target: str = "score") -> float:
    """Mean APGR over the fold seeds of a ridge on one TF-IDF block of the request.

    ``target`` is ``"score"`` (the small model's score) or ``"length"`` (the log length of its answer).
    """
    texts = [item.prompt[:2000] if block.startswith("chars") else item.prompt for item in ds.items]
    weak, strong = ds.scores(ds.weak), ds.scores(ds.strong)
    y = weak if target == "score" else np.log1p([len(t or "") for t in ds.texts(ds.weak)])
    out = []
    for seed in range(seeds):
        folds = dataset_folds(ds, 5, seed)
        keep = np.zeros(len(ds))
        for f in np.unique(folds):
            train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
            vec = BLOCKS[block]()
            X = vec.fit_transform([texts[i] for i in train])
            model = Ridge(alpha=alpha).fit(X, y[train])
            keep[test] = model.predict(vec.transform([texts[i] for i in test]))
        out.append(apgr(weak, strong, keep))
    return float(np.mean(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=["arena", "mt-bench"])
    parser.add_argument("--alphas", default="0.3,1,3,10")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--target", choices=("score", "length"), default="score")
    args = parser.parse_args()
    alphas = [float(a) for a in args.alphas.split(",")]
    print(f"{'data':10} {'block':10} " + " ".join(f"{'alpha ' + format(a, 'g'):>10}" for a in alphas))
    for name in args.datasets:
        ds = load_dataset(name).judged()
        for block in BLOCKS:
            cells = [f"{crossfit_apgr(ds, block, a, args.seeds, args.target):>10.3f}" for a in alphas]
            print(f"{name:10} {block:10} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
