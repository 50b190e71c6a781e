"""``rpra train-predictor``: train the learned predictor from a dataset or the decision log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from rpra_agent.cli.app import app
from rpra_agent.core.errors import RPRAError

__all__ = ["train_predictor"]

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _featurizer(kind: str, llama_model: str | None) -> Any:
    from rpra_agent.predictors.embeddings import LlamaEmbeddingFeaturizer, SentenceTransformerFeaturizer
    from rpra_agent.predictors.features import FeatureUnion, TextFeaturizer

    if kind == "text":
        return TextFeaturizer()
    if kind == "hashing":
        return TextFeaturizer(vectorizer="hashing")
    if kind in ("llama", "text+llama"):
        if not llama_model:
            _fail(f"--featurizer {kind} needs --llama-model /path/small.gguf (the small model's GGUF file)")
        llama = LlamaEmbeddingFeaturizer(llama_model)
        return llama if kind == "llama" else FeatureUnion([TextFeaturizer(), llama])
    if kind == "sentence":
        return SentenceTransformerFeaturizer()
    _fail(f"unknown --featurizer {kind!r}: use text, hashing, llama, text+llama or sentence")


@app.command("train-predictor")
def train_predictor(
    out: Annotated[Path | None, typer.Option("--out", help="Directory to save the artifact in.")] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            help="A bundled dataset name (mt-bench, gsm8k, mmlu, arena) or a .jsonl path; repeat to pool datasets "
            "(each score normalised to 0-1 by its own range, see docs/LEARNED.md).",
        ),
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Store URL: train on its judged decisions (without --dataset).")
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="request (the request alone) or draft (also the small answer).")
    ] = "request",
    featurizer: Annotated[
        str, typer.Option("--featurizer", help="text (TF-IDF + cues, default), hashing, llama, text+llama, sentence.")
    ] = "text",
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="auto (chosen by inner validation), small (the small answer's grade), gain (the large model's "
            "gain over it) or no_worse (P(small no worse than large)).",
        ),
    ] = "auto",
    llama_model: Annotated[str | None, typer.Option("--llama-model", help="GGUF file for llama embeddings.")] = None,
    neighbours: Annotated[
        str | None,
        typer.Option(
            "--neighbours",
            help="A sentence-transformers model (name or local directory): the kNN member over its embeddings "
            "of the training requests (see docs/LEARNED.md; pip install 'rpra-agent\\[embeddings]').",
        ),
    ] = None,
    C: Annotated[float | None, typer.Option("--C", help="Fixed regularisation (default: tuned by inner CV).")] = None,
    store_name: Annotated[
        str | None,
        typer.Option("--store-as", help="Also save it into the --db store as artifact learned_predictor/NAME."),
    ] = None,
    crossfit: Annotated[
        bool, typer.Option("--crossfit/--no-crossfit", help="With --dataset: print the 5-fold cross-fitted APGR too.")
    ] = False,
) -> None:
    """Train the learned predictor (a calibrated head on hindsight labels) and save it."""
    from rpra_agent.predictors.learned import LearnedPredictor

    if crossfit and dataset and len(dataset) > 1:
        _fail("--crossfit scores one dataset; pass a single --dataset")
    if not dataset and db is None:
        _fail("give a training source: --dataset NAME|PATH, or --db URL for the judged decision log")
    if store_name is not None and db is None:
        _fail("--store-as NAME saves into a store: give its --db URL too")
    if mode not in ("request", "draft"):
        _fail(f"--mode must be request or draft, not {mode!r}")
    if target not in ("auto", "small", "gain", "no_worse"):
        _fail(f"--target must be auto, small, gain or no_worse, not {target!r}")

    if out is None and store_name is None:
        _fail("say where to save it: --out DIR (and/or --store-as NAME with --db)")
    try:
        embedder = _neighbours(neighbours)
        predictor = LearnedPredictor(
            _featurizer(featurizer, llama_model),
            mode=mode,  # type: ignore[arg-type]
            C=C,
            target=target,  # type: ignore[arg-type]
            neighbours=embedder,
        )
        if dataset:
            from rpra_agent.evaluation.datasets import load_dataset

            datas = [load_dataset(d) for d in dataset]
            names = ", ".join(f"{d.name} ({len(d)} items)" for d in datas)
            with console.status(f"training on {names}"):
                predictor.fit_dataset(datas if len(datas) > 1 else datas[0])
            if len(datas) > 1:
                console.print(
                    f"pooled {len(datas)} datasets on a normalised 0-1 scale: "
                    + ", ".join(f"{d.name} [{d.score_range[0]:g}, {d.score_range[1]:g}]" for d in datas),
                    highlight=False,
                )
        store = None
        if db is not None:
            from rpra_agent.store import open_store

            store = open_store(db, must_exist=not dataset)  # reading the log: a missing file is a typo
        try:
            if not dataset and store is not None:
                with console.status("training on the judged decisions"):
                    predictor.fit_store(store)
            if out is not None:
                path = predictor.save(out)
                console.print(f"saved [bold]{predictor.version}[/] to {path}")
            if store_name is not None and store is not None:
                saved = predictor.save_to_store(store, store_name)
                console.print(f"stored artifact learned_predictor/{store_name} v{saved.version}")
        finally:
            if store is not None:
                store.close()
        _print_metrics(predictor)
        if crossfit and dataset:
            _print_crossfit(dataset[0], mode, target, featurizer, llama_model, C, embedder)
    except RPRAError as exc:
        _fail(str(exc))


def _print_metrics(predictor: Any) -> None:
    table = Table(
        title=f"{predictor.name} ({predictor.mode} mode, {predictor.target}): inner-CV agreement with the judge"
    )
    for col in ("n", "C", "ECE", "AUROC", "Spearman", "accuracy"):
        table.add_column(col, justify="right")
    m = {**predictor.metrics, "n": predictor.training.get("n")}
    table.add_row(*[str(m.get(k, "-")) for k in ("n", "C", "ece", "auroc", "spearman", "accuracy")])
    console.print(table)
    if "block_weights" in m:
        console.print(f"block weights chosen by inner CV: {m['block_weights']['chosen']}")


def _neighbours(model: str | None) -> Any:
    """The embedding featurizer of ``--neighbours``, loaded now so a bad name fails before training."""
    if model is None:
        return None
    from rpra_agent.predictors.embeddings import SentenceTransformerFeaturizer

    embedder = SentenceTransformerFeaturizer(model)
    embedder.check()
    return embedder


def _print_crossfit(
    dataset: str,
    mode: str,
    target: str,
    featurizer: str,
    llama_model: str | None,
    C: float | None,
    embedder: Any = None,
) -> None:
    from rpra_agent.evaluation.datasets import load_dataset
    from rpra_agent.evaluation.metrics import apgr
    from rpra_agent.predictors.crossfit import crossfit_keep_scores
    from rpra_agent.predictors.learned import LearnedPredictor

    data = load_dataset(dataset).require_judged()

    def factory(mode: Any, target: Any) -> LearnedPredictor:
        return LearnedPredictor(
            _featurizer(featurizer, llama_model), mode=mode, C=C, target=target, neighbours=embedder
        )

    with console.status("cross-fitting (5 folds)"):
        keep = crossfit_keep_scores(data, factory, mode=mode, target=target)  # type: ignore[arg-type]
    value = apgr(data.scores(data.weak), data.scores(data.strong), keep)
    console.print(
        f"cross-fitted APGR on {data.name} ({mode} mode, target {target}, 5 folds): [bold]{value:.3f}[/] (random 0.5)"
    )
