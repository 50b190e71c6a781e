"""``rpra judge``, ``rpra report-card build|show``, ``rpra export-sft`` and ``rpra finetune``."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from rpra_agent.cli.app import app
from rpra_agent.core.errors import RPRAError
from rpra_agent.core.grades import GradeScale

__all__ = ["report_card_app"]

console = Console()
err = Console(stderr=True)

report_card_app = typer.Typer(name="report-card", help="Build and show models' report cards.", no_args_is_help=True)
app.add_typer(report_card_app, name="report-card")

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Store URL (sqlite:///rpra.db, postgresql://...); default $RPRA_DATABASE_URL or ./rpra.db."
    ),
]
ScaleOpt = Annotated[str, typer.Option("--scale", help="Grade scale: paper3 (great/ok/bad) or ten (1-10).")]
JudgeNameOpt = Annotated[str | None, typer.Option("--judge-name", help="Only use verdicts of this judge.")]


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _load_model(spec: str, base_url: str | None = None) -> Any:
    """A chat model from a model string (``gguf:/m.gguf``, ``openai:gpt-4o``)."""
    from rpra_agent.models import load_chat_model

    opts = {"base_url": base_url} if base_url and spec.startswith("openai:") and "base_url=" not in spec else {}
    return load_chat_model(spec, **opts)


def _open_store(url: str | None) -> Any:
    from rpra_agent.store import open_store

    return open_store(url, must_exist=True)  # every command here reads the log: a missing file is a typo


@contextmanager
def _store(url: str | None) -> Iterator[Any]:
    """Open the store, turn library errors into clear CLI errors, close it afterwards."""
    try:
        store = _open_store(url)
    except RPRAError as exc:
        _fail(f"cannot open the store: {exc}")
    try:
        yield store
    except RPRAError as exc:
        _fail(str(exc))
    finally:
        store.close()


def _require_log(store: Any, url: str | None) -> None:
    from rpra_agent.store.base import DecisionFilter

    if not store.decisions(DecisionFilter(limit=1)):
        from rpra_agent.core.redact import scrub_secrets as mask_url

        where = mask_url(url or os.environ.get("RPRA_DATABASE_URL") or "./rpra.db")
        _fail(f"the decision log at {where} is empty: run an agent with this store first (pass the right --db?)")


def _model_or_fail(spec: str, what: str, base_url: str | None = None) -> Any:
    try:
        return _load_model(spec, base_url)
    except (RPRAError, ImportError) as exc:
        _fail(f"cannot load the {what} model {spec!r}: {exc}")


@app.command("judge")
def judge_cmd(
    db: DbOpt = None,
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge", envvar="RPRA_JUDGE_MODEL", help="Judge model string, e.g. openai:gpt-4o or gguf:/m.gguf."
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint for openai: models.")
    ] = None,
    method: Annotated[
        str, typer.Option("--judge-method", help="auto (structured output, else JSON text), structured or json.")
    ] = "auto",
    sample: Annotated[int | None, typer.Option("--sample", min=1, help="Judge a random sample of N decisions.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample.")] = 0,
    regenerate_small: Annotated[
        str | None,
        typer.Option("--regenerate-small", help="Small model string: regenerate its answer for deferred decisions."),
    ] = None,
    regenerate_large: Annotated[
        str | None,
        typer.Option(
            "--regenerate-large",
            help="Large model string: regenerate its answer for decisions the small model took "
            "(needed by rpra calibrate --epsilon).",
        ),
    ] = None,
    extra_model: Annotated[
        list[str] | None,
        typer.Option("--extra-model", help="Another model string whose answer joins each joint call (repeatable)."),
    ] = None,
    isolated: Annotated[
        bool, typer.Option("--isolated", help="Ablation: judge each response alone, not all of a request together.")
    ] = False,
    judge_seed: Annotated[int, typer.Option("--order-seed", help="Seed of the order responses are shown in.")] = 0,
    scale: ScaleOpt = "paper3",
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Concurrent judge calls.")] = 4,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries of a failed or malformed judge call.")] = 2,
    judge_name: Annotated[str | None, typer.Option("--judge-name", help="Name recorded on verdicts.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Grade the unjudged decisions in the log with an LLM judge (verdicts go to the store).

    Steps that answered the same conversation are judged together in one call (joint
    judging, as in the paper), with any regenerated or extra answers, in a seeded random
    order recorded on each verdict; --isolated judges each response alone.
    """
    from rpra_agent.feedback import LLMJudge, judge_log

    if not judge:
        _fail(
            "no judge configured: pass --judge MODEL (e.g. openai:gpt-4o or gguf:/path/judge.gguf) "
            "or set RPRA_JUDGE_MODEL"
        )
    if method not in ("auto", "structured", "json"):
        _fail(f"--judge-method must be auto, structured or json, not {method!r}")
    try:
        grade_scale = GradeScale.named(scale)
    except RPRAError as exc:
        _fail(str(exc))
    with _store(db) as store:
        _require_log(store, db)
        model = _model_or_fail(judge, "judge", base_url)
        small = _model_or_fail(regenerate_small, "small", base_url) if regenerate_small else None
        large = _model_or_fail(regenerate_large, "large", base_url) if regenerate_large else None
        extras = [(spec, _model_or_fail(spec, "extra", base_url)) for spec in extra_model or []]
        llm_judge = LLMJudge(
            model,
            scale=grade_scale,
            name=judge_name,
            method=method,
            max_retries=retries,
            max_concurrency=concurrency,
            isolated=isolated,
            seed=judge_seed,
        )
        result = judge_log(
            store,
            llm_judge,
            sample=sample,
            seed=seed,
            small=small,
            large=large,
            extra=extras,
            max_concurrency=concurrency,
            progress=progress,
        )
        table = Table(title=f"judged by {llm_judge.name} (rubric {llm_judge.rubric.version})")
        table.add_column("")
        table.add_column("count", justify="right")
        for label, value in (
            ("decisions needing a verdict", result.considered),
            ("verdicts with a grade", result.judged),
            ("unjudged (judge output unusable)", result.unjudged),
            ("answers regenerated (small, large or extra)", result.regenerated),
            ("judge calls", result.calls),
            ("of which joint (several responses)" if not isolated else "of which split (--isolated)", result.joint),
            *((f"skipped: {k}", v) for k, v in sorted(result.skipped.items())),
            *((f"unjudged: {k}", v) for k, v in sorted(result.failures.items())),
        ):
            table.add_row(label, str(value))
        console.print(table)
        console.print(
            f"judged {result.considered} decisions: {result.judged} verdicts with a grade, {result.unjudged} "
            f"unjudged, {result.regenerated} {'/'.join(n for n, m in (('small', small), ('large', large)) if m) or 'small'} "
            f"answers regenerated; {result.calls} judge calls, {result.joint} "
            + ("with several responses each judged alone" if isolated else "joint"),
            highlight=False,
        )
        if result.considered == 0:
            console.print("nothing to judge: every decision already has a verdict")
        elif result.judged == 0 and result.unjudged > 0:
            _fail("the judge produced no usable verdict; check the judge model (see the log for the failures)", 1)


@report_card_app.command("build")
def report_card_build(
    db: DbOpt = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Graded model, as logged (gguf:small.gguf) or typed (small.gguf); default: all."),
    ] = None,
    scale: ScaleOpt = "paper3",
    judge_name: JudgeNameOpt = None,
    summarize_with: Annotated[
        str | None, typer.Option("--summarize-with", help="Model string writing the typical-failure lines.")
    ] = None,
) -> None:
    """Build report cards from the judged log and store them as new versions."""
    from rpra_agent.feedback import build_report_cards

    with _store(db) as store:
        _require_log(store, db)
        summarizer = _model_or_fail(summarize_with, "summary") if summarize_with else None
        cards = build_report_cards(
            store,
            [model] if model else None,
            scale=GradeScale.named(scale),
            judge=judge_name,
            summarizer=summarizer,
            save=True,
        )
        for name, card in cards.items():
            console.rule(f"{name} · version {card.version}")
            console.print(card.text, highlight=False, markup=False)


@report_card_app.command("show")
def report_card_show(
    db: DbOpt = None,
    model: Annotated[
        str, typer.Option("--model", help="Graded model, as logged (gguf:small.gguf) or typed (small.gguf).")
    ] = "",
    task: Annotated[str | None, typer.Option("--task", help="Show the card as seen for this task tag.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored payload as JSON.")] = False,
) -> None:
    """Show the latest stored report card of a model."""
    from rpra_agent.feedback import load_report_card

    if not model:
        _fail("pass --model NAME (the graded model, e.g. small.gguf or gguf:small.gguf)")
    with _store(db) as store:
        card = load_report_card(store, model)
        if card is None:
            _fail(f"no report card stored for model {model!r}: run `rpra report-card build --model {model}` first")
        if as_json:
            console.print_json(json.dumps({"version": card.version, **card.to_payload()}))
        else:
            console.rule(f"{model} · version {card.version} · {card.created_at}")
            console.print(card.text_for(task) if task else card.text, highlight=False, markup=False)


@app.command("export-sft")
def export_sft_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    db: DbOpt = None,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Share held out for validation.")] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = 0,
    model: Annotated[
        str | None, typer.Option("--model", help="Only this small model's steps (small.gguf or gguf:small.gguf).")
    ] = None,
    judge_name: JudgeNameOpt = None,
    scale: ScaleOpt = "paper3",
) -> None:
    """Write the hindsight fine-tuning set (OpenAI and TRL chat JSONL, stratified split)."""
    from rpra_agent.feedback import export_sft

    with _store(db) as store:
        result = export_sft(
            store,
            out,
            val_fraction=val_fraction,
            seed=seed,
            model=model,
            judge=judge_name,
            scale=GradeScale.named(scale),
        )
    labels = GradeScale.named(scale).labels
    table = Table(title=f"class balance ({'stratified' if result.stratified else 'not stratified'} split)")
    table.add_column("split")
    for label in labels:
        table.add_column(label, justify="right")
    table.add_column("total", justify="right")
    for split in ("train", "validation", "all"):
        counts = Counter(result.balance[split])
        table.add_row(split, *(str(counts[lab]) for lab in labels), str(sum(counts.values())))
    console.print(table)
    console.print(f"wrote {result.out}/openai/*.jsonl, {result.out}/trl/*.jsonl and manifest.json", highlight=False)


@app.command("finetune")
def finetune_cmd(
    data: Annotated[Path, typer.Option("--data", help="Directory written by `rpra export-sft`.")],
    base_model: Annotated[str, typer.Option("--base-model", help="Local Hugging Face model directory.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (adapter in out/adapter).")],
    epochs: Annotated[float, typer.Option("--epochs")] = 3.0,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1)] = None,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 2e-4,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1)] = 16,
    lora_alpha: Annotated[int, typer.Option("--lora-alpha", min=1)] = 32,
    merge: Annotated[bool, typer.Option("--merge", help="Also save the merged model (for GGUF conversion).")] = False,
    cpu: Annotated[bool, typer.Option("--cpu", help="Train on the CPU even with a GPU.")] = False,
    checkpointing: Annotated[
        bool,
        typer.Option("--checkpointing/--no-checkpointing", help="Recompute activations to save memory."),
    ] = True,
) -> None:
    """Train a LoRA adapter that predicts the judge's grade (needs the `finetune` extra)."""
    from rpra_agent.feedback import finetune

    if not (data / "trl" / "train.jsonl").exists():
        _fail(f"{data / 'trl' / 'train.jsonl'} does not exist: run `rpra export-sft --out {data}` first")
    try:
        result = finetune(
            data,
            base_model,
            out,
            epochs=epochs,
            max_steps=max_steps,
            learning_rate=lr,
            batch_size=batch_size,
            lora_r=lora_r,
            lora_alpha=lora_alpha,
            merge=merge,
            cpu=cpu,
            checkpointing=checkpointing,
            progress=True,
        )
    except RPRAError as exc:
        _fail(str(exc))
    first, last = (result.losses[0], result.losses[-1]) if result.losses else (float("nan"), float("nan"))
    console.print(f"{result.steps} steps, loss {first:.3f} -> {last:.3f}; adapter saved to {result.adapter_dir}")
    if result.eval_loss is not None:
        acc = "n/a" if result.val_accuracy is None else f"{result.val_accuracy:.1%}"
        console.print(f"validation loss {result.eval_loss:.3f}, grade accuracy {acc}")
    if result.merged_dir:
        console.print(f"merged model saved to {result.merged_dir}")
