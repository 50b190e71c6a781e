"""Measure a lead, not a shipped router: similarity-weighted kNN on the request's TF-IDF, alone and blended.

Usage::

    .venv/bin/python benchmarks/knn_probe.py                 # bundled + the ten held-out pairs, 3 fold seeds

Issue 15 listed a rank blend of the learned head with similarity-weighted kNN on
*sentence embeddings* (request mode) as a lead. No embedding model is on this machine
and nothing may be downloaded, so this probe measures the model-free version: cosine
similarity on word 1-2-gram sublinear TF-IDF of the request (with its earlier turns),
the ``k`` most similar training items, their small-model scores averaged with the
similarities as weights. Every figure is cross-fitted on the same folds as
``learned_apgr.py`` (``dataset_folds``, 5 folds by conversation per seed): the learned
head (request mode, its default), kNN alone, and ``rank(learned) + w * rank(kNN)`` for
each ``--weights`` value (ranks standardised over the dataset). Mean over the seeds;
the last line is the mean over the held-out pairs (``benchmarks/data/arena_bench_v1``,
scores divided by 10 as in ``learned_apgr.py --continuous``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.feature_extraction.text import TfidfVectorizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learned_apgr import arena_pair  # noqa: E402

from rpra_agent.evaluation.datasets import load_dataset  # noqa: E402
from rpra_agent.evaluation.metrics import apgr  # noqa: E402
from rpra_agent.predictors.crossfit import crossfit_predictions, dataset_folds  # noqa: E402
from rpra_agent.predictors.learned import LearnedPredictor  # noqa: E402

HELD_OUT = (
    "llama-13b>gpt-4-0314,mistralai/Mistral-7B-Instruct-v0.1>gpt-3.5-turbo-1106,Starling-LM-7B-alpha>claude-2,"
    "gpt-3.5-turbo>gpt-4-1106-preview,vicuna-33b-v1.3>gpt-4-0314,Llama-2-70b-chat>claude-2.1,"
    "openchat_3.5>gpt-4-1106-preview,claude-instant-1>gpt-4-0314,palm-2-chat-bison-001>gpt-3.5-turbo,"
    "mistralai/Mixtral-8x7B-Instruct-v0.1>gpt-4-0314"
)
ARENA_DIR = Path(__file__).resolve().parent / "data" / "arena_bench_v1"


def _ranks(values: np.ndarray) -> np.ndarray:
    r = rankdata(values)
    return (r - r.mean()) / r.std()


def knn_keep(requests: list[str], weak: np.ndarray, folds: np.ndarray, k: int) -> np.ndarray:
    """Cross-fitted similarity-weighted mean small score of the ``k`` most similar training requests."""
    out = np.zeros(len(requests))
    for f in np.unique(folds):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
        seen = vec.fit_transform([requests[i] for i in train])
        sims = (vec.transform([requests[i] for i in test]) @ seen.T).toarray()
        top = np.argsort(-sims, axis=1)[:, : min(k, len(train))]
        w = np.take_along_axis(sims, top, axis=1) + 1e-6
        out[test] = (w * weak[train][top]).sum(axis=1) / w.sum(axis=1)
    return out


def probe(ds: Any, seeds: int, k: int, weights: list[float]) -> dict[str, float]:
    """Mean APGR over ``seeds`` fold seeds of the head, kNN and each blend."""
    weak, strong = ds.scores(ds.weak), ds.scores(ds.strong)
    requests = [" ".join(m["content"] for m in item.messages) for item in ds.items]
    got: dict[str, list[float]] = {}
    for seed in range(seeds):
        folds = dataset_folds(ds, 5, seed)

        def make(mode: Any, target: Any, seed: int = seed) -> LearnedPredictor:
            return LearnedPredictor(mode=mode, target=target, seed=seed)

        head = crossfit_predictions(ds, make, mode="request", target="auto", folds=folds).keep
        knn = knn_keep(requests, weak, folds, k)
        got.setdefault("learned", []).append(apgr(weak, strong, head))
        got.setdefault("knn", []).append(apgr(weak, strong, knn))
        for w in weights:
            got.setdefault(f"+{w:g} knn", []).append(apgr(weak, strong, _ranks(head) + w * _ranks(knn)))
    return {name: float(np.mean(v)) for name, v in got.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--weights", default="0.25,0.5")
    parser.add_argument("--datasets", default="mt-bench,arena,gsm8k", help="bundled datasets (comma-separated)")
    parser.add_argument(
        "--pairs", default=HELD_OUT, help="held-out weak>strong pairs of benchmarks/data/arena_bench_v1"
    )
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    rows: list[tuple[str, bool, dict[str, float]]] = []
    for name in filter(None, args.datasets.split(",")):
        rows.append((name, False, probe(load_dataset(name).judged(), args.seeds, args.k, weights)))
    for pair in filter(None, args.pairs.split(",")):
        ds = arena_pair(str(ARENA_DIR), *pair.split(">"), continuous=True)
        rows.append((ds.name, True, probe(ds, args.seeds, args.k, weights)))
    cols = list(rows[0][2])
    print(f"{'data (request mode)':26} " + " ".join(f"{c:>10}" for c in cols))
    for name, _, row in rows:
        print(f"{name[:26]:26} " + " ".join(f"{row[c]:>10.3f}" for c in cols), flush=True)
    held = [row for _, is_held, row in rows if is_held]
    if held:
        print(f"{'held-out mean':26} " + " ".join(f"{np.mean([r[c] for r in held]):>10.3f}" for c in cols))


if __name__ == "__main__":
    main()
