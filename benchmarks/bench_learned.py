"""Fit time of the learned predictor on MT-bench, and predict latency against a zero-shot self-prediction.

Usage::

    .venv/bin/python benchmarks/bench_learned.py [--calls 200] [--threads 2]
    .venv/bin/python benchmarks/bench_learned.py --fit-only      # the fit times alone
    .venv/bin/python benchmarks/bench_learned.py --solver        # row space vs features, per dataset
    .venv/bin/python benchmarks/bench_learned.py --featurize     # one-pass fit_transform vs fit + transform

Fit time: ``LearnedPredictor(mode=...).fit_dataset(mt-bench)`` with the defaults (the
target and ``C`` chosen by inner validation), CPU seconds of this process (and wall
seconds, which depend on what else runs on the machine), best of ``--repeats``.

Requests are real MT-bench prompts (drafts: the recorded Mixtral answers). The
zero-shot predictor runs the synthesized tiny llama GGUF through the llama.cpp chat
model (one forward pass over the self-prediction prompt, grade distribution read from
the logits); a real small model (0.5-8 B parameters) is 100-1000x slower per token,
so the zero-shot figures here are a lower bound. The learned predictors are trained on
the bundled MT-bench recordings. Every figure is the wall time of ``predict()`` in
this process, after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage

from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.models import load_chat_model
from rpra_agent.predictors import ZeroShotPredictor
from rpra_agent.predictors.embeddings import LlamaEmbeddingFeaturizer
from rpra_agent.predictors.learned import LearnedPredictor
from rpra_agent.testing.gguf import write_random_gguf


def _requests(n: int, draft: bool) -> list[PredictionRequest]:
    ds = load_dataset("mt-bench")
    out = []
    for item in ds.items[:n]:
        text = item.responses[ds.weak].text or ""
        out.append(
            PredictionRequest(
                messages=(HumanMessage(item.messages[-1]["content"]),),
                task=item.category,
                draft=AIMessage(text) if draft else None,
            )
        )
    return out


def _time(fn: Callable[[PredictionRequest], object], requests: list[PredictionRequest], calls: int) -> list[float]:
    for r in requests[:5]:
        fn(r)  # warm-up
    times = []
    for i in range(calls):
        r = requests[i % len(requests)]
        start = time.perf_counter()
        fn(r)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def fit_times(repeats: int) -> None:
    """Print the CPU and wall seconds of fitting the learned predictor on MT-bench.

    The default beside the previous one (the ridge member on the word blocks), the two
    fits alternating within each repeat so the machine's load falls on both alike.
    """
    ds = load_dataset("mt-bench").judged()
    variants = {"default": {}, "words": {"ridge_block": "words"}}
    print(f"fit on MT-bench ({len(ds)} turns), best of {repeats}; words: ridge_block='words' (the previous default)")
    print(f"{'mode':8} {'variant':8} {'cpu s':>7} {'wall s':>7}  target  C")
    for mode in ("request", "draft"):
        runs: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
        fitted: dict[str, LearnedPredictor] = {}
        for _ in range(max(repeats, 1)):
            for variant, options in variants.items():
                cpu, wall = time.process_time(), time.perf_counter()
                fitted[variant] = LearnedPredictor(mode=mode, **options).fit_dataset(ds)  # type: ignore[arg-type]
                runs[variant].append((time.process_time() - cpu, time.perf_counter() - wall))
        for variant, predictor in fitted.items():
            best = min(runs[variant])
            print(
                f"{mode:8} {variant:8} {best[0]:>7.2f} {best[1]:>7.2f}  {predictor.target:6}  {predictor.model.C}",
                flush=True,
            )


def featurize_times(datasets: list[str], repeats: int) -> None:
    """CPU seconds of fitting the default featurizer on a training fold and transforming it, two ways.

    ``one pass``: ``TextFeaturizer.fit_transform`` (the fitting counts are weighted
    directly, what ``LearnedPredictor.fit`` does); ``two passes``: ``fit`` then
    ``transform`` of the same samples (the n-gram analysis run twice, as before). The
    two alternate within each repeat; best of ``repeats``; the matrices must agree.
    """
    import numpy as np

    from rpra_agent.predictors._training import dataset_examples
    from rpra_agent.predictors.crossfit import dataset_folds
    from rpra_agent.predictors.features import TextFeaturizer

    print(f"featurizer fit + transform of a training fold (4 of 5 folds), CPU s, best of {repeats}")
    print(f"{'dataset':10} {'mode':8} {'n':>6} {'one pass':>9} {'two passes':>11}")
    for name in datasets:
        ds = load_dataset(name).judged()
        train = np.flatnonzero(dataset_folds(ds, 5, 0) != 0)
        for mode in ("request", "draft"):
            if mode == "draft" and any(t is None for t in ds.texts(ds.weak)):
                continue
            every = dataset_examples(ds, mode=mode)[0]  # type: ignore[arg-type]
            samples = [every[i] for i in train]
            one, two = [], []
            for _ in range(max(repeats, 1)):
                cpu = time.process_time()
                X1 = TextFeaturizer().fit_transform(samples, draft=mode == "draft")
                one.append(time.process_time() - cpu)
                cpu = time.process_time()
                f = TextFeaturizer()
                f.fit(samples, draft=mode == "draft")
                X2 = f.transform(samples)
                two.append(time.process_time() - cpu)
                if X1.shape != X2.shape or abs(X1 - X2).max() > 1e-12:
                    raise SystemExit(f"{name} {mode}: the one-pass matrix differs from fit + transform")
            print(f"{name:10} {mode:8} {len(samples):>6} {min(one):>9.2f} {min(two):>11.2f}", flush=True)


def solver_times(datasets: list[str]) -> None:
    """Fit the default learned predictor with each solver of the ordinal head, side by side in one run.

    ``features``: L-BFGS over the TF-IDF columns; ``row space``: over an orthonormal
    basis of the training rows (:class:`~rpra_agent.predictors._ordinal.RowBasis`, the
    same optimum); ``auto``: the library's choice per fit (``RowBasis.suits``). The
    inner-validation score of the chosen head is printed so equal results show.
    """
    from rpra_agent.predictors import _ordinal

    default = _ordinal._ROWSPACE_MAX_ROWS
    print(f"{'dataset':10} {'mode':8} {'solver':10} {'cpu s':>7}  target  C      inner APGR")
    for name in datasets:
        ds = load_dataset(name).judged()
        for mode in ("request", "draft"):
            for solver, limit in (("features", 0), ("row space", 10**9), ("auto", default)):
                _ordinal._ROWSPACE_MAX_ROWS = limit
                original = _ordinal.RowBasis.suits
                if solver == "row space":
                    _ordinal.RowBasis.suits = staticmethod(lambda X: X.shape[0] > 0)  # type: ignore[method-assign]
                try:
                    cpu = time.process_time()
                    p = LearnedPredictor(mode=mode).fit_dataset(ds)  # type: ignore[arg-type]
                    spent = time.process_time() - cpu
                finally:
                    _ordinal.RowBasis.suits = original  # type: ignore[method-assign]
                    _ordinal._ROWSPACE_MAX_ROWS = default
                inner = max(p.training["selection"].values())
                print(
                    f"{name:10} {mode:8} {solver:10} {spent:>7.2f}  {p.target:6}  {p.model.C:<6g} {inner:.5f}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fit-only", action="store_true")
    parser.add_argument("--solver", action="store_true", help="time the ordinal head's two solvers instead")
    parser.add_argument("--featurize", action="store_true", help="time the featurizer's one-pass fit instead")
    parser.add_argument(
        "--datasets", help="for --solver (default mt-bench,arena,gsm8k) and --featurize (default mt-bench,gsm8k,mmlu)"
    )
    parser.add_argument(
        "--neighbours", help="a sentence-transformers model (name or directory): adds the kNN member's latency row"
    )
    args = parser.parse_args()
    if args.featurize:
        featurize_times((args.datasets or "mt-bench,gsm8k,mmlu").split(","), args.repeats)
        return
    if args.solver:
        solver_times((args.datasets or "mt-bench,arena,gsm8k").split(","))
        return
    fit_times(args.repeats)
    if args.fit_only:
        return
    ds = load_dataset("mt-bench")
    plain, drafted = _requests(80, False), _requests(80, True)
    with tempfile.TemporaryDirectory() as tmp:
        gguf = write_random_gguf(Path(tmp) / "tiny.gguf", seed=0)
        chat = load_chat_model(f"gguf:{gguf}?n_ctx=16384&n_threads={args.threads}")  # char-level vocab: long prompts
        zero = ZeroShotPredictor(chat, scale=GradeScale.paper())
        learned = LearnedPredictor(mode="request").fit_dataset(ds)
        learned_draft = LearnedPredictor(mode="draft").fit_dataset(ds)
        probe = LlamaEmbeddingFeaturizer(gguf, n_ctx=512, n_threads=args.threads)
        learned_llama = LearnedPredictor(probe, C=1.0, target="small").fit_dataset(ds)
        rows = [
            ("zero-shot self-prediction (tiny GGUF), request", zero.predict, plain),
            ("zero-shot self-prediction (tiny GGUF), with draft", zero.predict, drafted),
            ("learned, TF-IDF words+chars+cues (default), request", learned.predict, plain),
            ("learned, TF-IDF words+chars+cues (default), draft", learned_draft.predict, drafted),
            ("learned, llama.cpp embedding probe (tiny GGUF)", learned_llama.predict, plain),
        ]
        if args.neighbours:
            from rpra_agent.predictors.embeddings import SentenceTransformerFeaturizer

            embedder = SentenceTransformerFeaturizer(args.neighbours)
            knn = LearnedPredictor(mode="request", neighbours=embedder).fit_dataset(ds)
            embedder.MEMO_SIZE = 0  # every call embeds its request, as a deployment meets new ones
            embedder._memo.clear()
            rows.append(("learned + kNN member (sentence embeddings), request", knn.predict, plain))
        print(f"predict latency over {args.calls} calls (ms), MT-bench prompts, {args.threads} llama.cpp threads")
        print(f"{'predictor':52} {'median':>8} {'p90':>8} {'mean':>8}")
        for label, fn, reqs in rows:
            t = sorted(_time(fn, reqs, args.calls))
            p90 = t[int(0.9 * (len(t) - 1))]
            print(f"{label:52} {statistics.median(t):>8.2f} {p90:>8.2f} {statistics.fmean(t):>8.2f}")


if __name__ == "__main__":
    main()
