"""Offline study of the learned head's second stage: how to combine the head with a ridge and the draft length.

Usage::

    .venv/bin/python benchmarks/blend_study.py mt-bench arena gsm8k          # bundled, both modes, 3 seeds
    .venv/bin/python benchmarks/blend_study.py --arena-dir benchmarks/data/arena_bench_v1 --continuous \\
        --pairs "llama-13b>gpt-4-0314,Starling-LM-7B-alpha>claude-2"
    .venv/bin/python benchmarks/blend_study.py mt-bench --cues                # also a head without cues
    .venv/bin/python benchmarks/blend_study.py mt-bench arena gsm8k --ridge-block chars --ridge-alpha loo

For every outer fold of ``benchmarks/learned_apgr.py``'s folds and seeds it fits the
head alone (``ridge_weight=0, length_weight=0``: the previous default) once and stores
its inner out-of-fold (OOF) expected positions and its held-out ones, a TF-IDF + ridge
of the same target on the word blocks (``--ridge-block``: the study was run on the
words; the shipped member now reads the character n-grams) (OOF on the same inner folds, and held-out), and
the draft's log length; then every rule below recombines them without refitting, and
the cross-fitted APGR of each rule is printed (mean over the seeds). ``head`` reprints
the previous default's figures exactly. Weights are in sd of the head's OOF score per
sd of the member's OOF values, added to the head's held-out expected position (the
shipped predictor adds them to its linear score instead; the same order up to the
head's link). docs/LEARNED.md ("The second stage: how it was chosen") quotes it.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata, spearmanr
from sklearn.linear_model import LinearRegression

from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.predictors._blend import ridge_columns, ridge_oof
from rpra_agent.predictors._ordinal import OrdinalLogit
from rpra_agent.predictors._select import target_positions
from rpra_agent.predictors._training import dataset_examples, pooled_examples
from rpra_agent.predictors.crossfit import dataset_folds
from rpra_agent.predictors.features import TextFeaturizer
from rpra_agent.predictors.folds import fold_ids
from rpra_agent.predictors.learned import LearnedPredictor
from rpra_agent.predictors.ranking import routing_area as apgr

sys.path.insert(0, str(Path(__file__).parent))
from learned_apgr import arena_pair  # noqa: E402

HEAD_ONLY = {"ridge_weight": 0.0, "length_weight": 0.0}


ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def loo_alpha(X: Any, y: np.ndarray, alphas: tuple[float, ...] = ALPHAS) -> float:
    """The ridge penalty of ``alphas`` with the least leave-one-out squared error (exact, from one eigh).

    With an unpenalised intercept the hat matrix is ``J/n + U diag(l / (l + a)) U^T`` over
    the eigenpairs of the doubly centred Gram matrix, so every LOO residual is
    ``r_i / (1 - H_ii)`` without refitting.
    """
    K = np.asarray((X @ X.T).toarray(), dtype=np.float64)
    row_mean = K.mean(axis=0)
    lam, U = np.linalg.eigh(K - row_mean[None, :] - row_mean[:, None] + K.mean())
    lam = np.clip(lam, 0.0, None)
    yc = y - y.mean()
    Uy = U.T @ yc

    def loo(a: float) -> float:
        shrink = lam / (lam + a)
        hat = 1.0 / len(y) + (U**2) @ shrink
        return float(np.mean(((yc - U @ (shrink * Uy)) / (1.0 - hat)) ** 2))

    return min(alphas, key=loo)


def _ridge(X: Any, y: np.ndarray, X_test: Any, alpha: float) -> np.ndarray:
    from rpra_agent.predictors._blend import fit_ridge

    coef, intercept = fit_ridge(X, y, alpha)
    return np.asarray(X_test @ coef).ravel() + intercept


def collect(
    ds: Any, mode: str, seed: int, cues: bool, ridge_block: str = "words", ridge_alpha: str = "1"
) -> dict[str, Any]:
    """Every outer fold's stored scores (see the module docstring)."""
    samples_all = dataset_examples(ds, mode=mode)[0]  # type: ignore[arg-type]
    folds = dataset_folds(ds, 5, seed)
    recs = []
    for f in np.unique(folds):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        sub = ds.subset(train)
        p = LearnedPredictor(mode=mode, seed=seed, **HEAD_ONLY).fit_dataset(sub)  # type: ignore[arg-type]
        samples, small, large, groups, _ = pooled_examples([sub], mode=mode)  # type: ignore[arg-type]
        cands = target_positions("auto", p.data_scale, small, large)
        y = cands[p.target][1]
        X = p.featurizer.transform(samples)
        X_test = p.featurizer.transform([samples_all[i] for i in test])
        cols = ridge_columns(p.featurizer, X.shape[1], ridge_block)
        inner = fold_ids(len(samples), 3, seed, groups=groups)
        assert p.model.oof_cumulative is not None  # noqa: S101
        rec: dict[str, Any] = {
            "test": test,
            "target": p.target,
            "y": y,
            "n_labels": len(cands[p.target][0].labels),
            "weak": small,
            "strong": large,
            "h_oof": OrdinalLogit.expected_position(p.model.oof_cumulative),
            "h_test": OrdinalLogit.expected_position(p.model.cumulative(X_test)),
        }
        alpha = loo_alpha(X[:, cols], y) if ridge_alpha == "loo" else float(ridge_alpha)
        rec.update(
            alpha=alpha,
            r_oof=ridge_oof(X[:, cols], y, inner, alpha),
            r_test=_ridge(X[:, cols], y, X_test[:, cols], alpha),
        )
        if mode == "draft":
            rec["l_oof"] = np.log1p([len(s.draft or "") for s in samples])
            rec["l_test"] = np.log1p([len(samples_all[i].draft or "") for i in test])
        if cues:
            text = TextFeaturizer(weights={"cues": 0.0})
            p0 = LearnedPredictor(text, mode=mode, seed=seed, **HEAD_ONLY).fit_dataset(sub)  # type: ignore[arg-type]
            assert p0.model.oof_cumulative is not None  # noqa: S101
            rec["t0"] = p0.target
            rec["h0_oof"] = OrdinalLogit.expected_position(p0.model.oof_cumulative)
            rec["h0_test"] = OrdinalLogit.expected_position(
                p0.model.cumulative(p0.featurizer.transform([samples_all[i] for i in test]))
            )
        recs.append(rec)
    return {"weak": ds.scores(ds.weak), "strong": ds.scores(ds.strong), "recs": recs}


def _z(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    sd = float(ref.std())
    return (a - ref.mean()) / (sd if sd > 1e-12 else 1.0)


Rule = Callable[[dict[str, Any]], np.ndarray]


def _parts(rec: dict[str, Any]) -> tuple[Any, ...]:
    h, r = rec["h_oof"], rec["r_oof"]
    has_l = "l_oof" in rec
    lz = _z(rec["l_oof"], rec["l_oof"]) if has_l else np.zeros_like(h)
    lt = _z(rec["l_test"], rec["l_oof"]) if has_l else np.zeros_like(rec["h_test"])

    def area(keep: np.ndarray) -> float:
        return apgr(rec["weak"], rec["strong"], keep)

    return h, _z(r, r), _z(rec["r_test"], r), lz, lt, has_l, area, 1.0 / math.sqrt(len(h))


def fixed(a: float, b: float) -> Rule:
    """Ridge share ``a`` and length share ``b``, always."""

    def rule(rec: dict[str, Any]) -> np.ndarray:
        h, _, rt, _, lt, _, _, _ = _parts(rec)
        return rec["h_test"] + h.std() * (a * rt + b * lt)

    return rule


def gated(a: float, b: float, *, ridge_tol: float = 1.0, length_tol: float = 1.0, a_hi: float | None = None) -> Rule:
    """Ridge share ``a`` unless its inner APGR < head's - ridge_tol/sqrt(n) (``a_hi`` where >= head's);
    length share ``b`` unless its inner APGR < head's - length_tol/sqrt(n)."""

    def rule(rec: dict[str, Any]) -> np.ndarray:
        h, rz, rt, lz, lt, has_l, area, unit = _parts(rec)
        base, d = area(h), area(rec["r_oof"]) - area(h)
        share = 0.0 if d < -ridge_tol * unit else (a_hi if a_hi is not None and d >= 0 else a)
        bl = b if has_l and area(rec["l_oof"]) >= base - length_tol * unit else 0.0
        return rec["h_test"] + h.std() * (share * rt + bl * lt)

    return rule


def searched(margin: float, crit: str = "apgr", lengths: bool = True) -> Rule:
    """Shares on a grid chosen by the inner APGR (or Spearman); the head unless better by margin/sqrt(n)."""

    def rule(rec: dict[str, Any]) -> np.ndarray:
        h, rz, rt, lz, lt, has_l, area, unit = _parts(rec)
        score = area if crit == "apgr" else (lambda k: float(spearmanr(k, rec["y"]).statistic))
        grid_l = (0.0, 0.25, 0.5, 1.0, 2.0) if has_l and lengths else (0.0,)
        grid_r = (0.0, 0.25, 0.5, 1.0, 2.0) if crit == "apgr" else (0.0, 0.25, 0.5, 1.0)
        base = score(h)
        best, best_v = (0.0, 0.0), base
        for a in grid_r:
            for b in grid_l:
                v = score(h + h.std() * (a * rz + b * lz)) if (a or b) else base
                if v > best_v + 1e-12:
                    best, best_v = (a, b), v
        if best_v < base + margin * unit:
            best = (0.0, 0.0)
        return rec["h_test"] + h.std() * (best[0] * rt + best[1] * lt)

    return rule


def ridge_led(margin: float, share: float = 0.25) -> Rule:
    """The shipped gate, but led by the ridge (its z-score plus ``share`` x the head's) where the
    ridge's inner APGR is above the head's by more than margin/sqrt(n)."""
    shipped = gated(0.25, 0.0)

    def rule(rec: dict[str, Any]) -> np.ndarray:
        h, _, rt, _, _, _, area, unit = _parts(rec)
        if area(rec["r_oof"]) > area(h) + margin * unit:
            return rt + share * _z(rec["h_test"], h)
        return shipped(rec)

    return rule


def stacked(rec: dict[str, Any]) -> np.ndarray:
    """Non-negative least squares of the target on the OOF z-scores (head, ridge), head weight 1, ridge at most 1."""
    h, rz, rt, _, _, _, _, _ = _parts(rec)
    coef = LinearRegression(positive=True).fit(np.column_stack([_z(h, h), rz]), rec["y"]).coef_
    share = min(coef[1] / coef[0], 1.0) if coef[0] > 1e-9 else 0.0
    return rec["h_test"] + h.std() * share * rt


def recalibrated(rec: dict[str, Any]) -> np.ndarray:
    """The head alone, re-calibrated per fold by a 1-D ordinal fit on its OOF score."""
    h = rec["h_oof"]
    model = OrdinalLogit(rec["n_labels"], C=10.0)
    model.fit_fixed(_z(h, h)[:, None], rec["y"], 10.0)
    return OrdinalLogit.expected_position(model.cumulative(_z(rec["h_test"], h)[:, None]))


def cue_choice(margin: float) -> Rule:
    """A head without cues where its inner APGR beats the default head's by margin/sqrt(n) (needs --cues)."""

    def rule(rec: dict[str, Any]) -> np.ndarray:
        _, _, _, _, _, _, area, unit = _parts(rec)
        return rec["h0_test"] if area(rec["h0_oof"]) > area(rec["h_oof"]) + margin * unit else rec["h_test"]

    return rule


RULES: dict[str, Rule] = {
    "head": lambda rec: rec["h_test"],
    "ridge.25": fixed(0.25, 0.0),
    "ridge.5": fixed(0.5, 0.0),
    "ridge.25 gated": gated(0.25, 0.0),
    "shipped": gated(0.25, 1.0, length_tol=0.0),
    "len.25 tol1": gated(0.25, 0.25),
    "len.5 tol1": gated(0.25, 0.5),
    "len.25 always": fixed(0.0, 0.25),
    "len.5 always": fixed(0.0, 0.5),
    "ridge.25/1": gated(0.25, 0.0, a_hi=1.0),
    "ridge-led m0": ridge_led(0.0),
    "ridge-led m1": ridge_led(1.0),
    "search m0": searched(0.0),
    "search m.25": searched(0.25),
    "search m.5": searched(0.5),
    "spearman": searched(0.0, "spearman", lengths=False),
    "stacked": stacked,
    "recalibrated": recalibrated,
}
CUE_RULES: dict[str, Rule] = {f"cues m{m:g}": cue_choice(m) for m in (0.0, 0.5, 1.0)}


def evaluate(run: dict[str, Any], rule: Rule) -> float:
    keep = np.zeros(len(run["weak"]))
    mixed = len({r["target"] for r in run["recs"]}) > 1
    for rec in run["recs"]:
        v = rule(rec)
        keep[rec["test"]] = rankdata(v) / len(v) if mixed else v
    return apgr(run["weak"], run["strong"], keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=["mt-bench", "arena", "gsm8k"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--modes", default="request,draft")
    parser.add_argument("--cues", action="store_true", help="also fit a head without cues (the cue-choice rules)")
    parser.add_argument("--arena-dir")
    parser.add_argument("--pairs", default="")
    parser.add_argument("--continuous", action="store_true")
    parser.add_argument(
        "--ridge-block",
        default="words",
        help="the ridge member's TF-IDF blocks: words (as the study was run), chars (the shipped default), text",
    )
    parser.add_argument(
        "--ridge-alpha",
        default="1",
        help="the ridge's penalty: a number (1, the member's) or loo (chosen per fold from 0.1-30 by exact leave-one-out)",
    )
    args = parser.parse_args()
    if args.arena_dir:
        pairs = [p.split(">") for p in args.pairs.split(",") if p]
        sets = [arena_pair(args.arena_dir, w, s, continuous=args.continuous) for w, s in pairs]
    else:
        sets = [load_dataset(n).judged() for n in args.datasets]
    rules = {**RULES, **(CUE_RULES if args.cues else {})}
    print(f"{'dataset':24} {'mode':8} " + " ".join(f"{n:>14}" for n in rules), flush=True)
    means: dict[str, list[float]] = {n: [] for n in rules}
    for ds in sets:
        for mode in args.modes.split(","):
            if mode == "draft" and any(t is None for t in ds.texts(ds.weak)):
                continue
            runs = [
                collect(ds, mode, seed, args.cues, args.ridge_block, args.ridge_alpha) for seed in range(args.seeds)
            ]
            row = {n: float(np.mean([evaluate(run, r) for run in runs])) for n, r in rules.items()}
            for n, v in row.items():
                means[n].append(v)
            alphas = sorted(r["alpha"] for run in runs for r in run["recs"])
            chosen = (
                f"  alpha {alphas[0]:g}-{alphas[-1]:g}, median {np.median(alphas):g}"
                if args.ridge_alpha == "loo"
                else ""
            )
            print(f"{ds.name[:24]:24} {mode:8} " + " ".join(f"{row[n]:14.3f}" for n in rules) + chosen, flush=True)
    print(f"{'mean':33} " + " ".join(f"{np.mean(means[n]):14.3f}" for n in rules))


if __name__ == "__main__":
    main()
