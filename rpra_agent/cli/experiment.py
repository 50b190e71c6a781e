"""``rpra experiment``: the paper's experiment, each paradigm x each predictor, in one command."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from rpra_agent.cli.app import app
from rpra_agent.core.errors import RPRAError

__all__ = ["experiment_command"]

console = Console()
if not console.is_terminal:  # piped or captured: do not squeeze the tables into 80 columns
    console = Console(width=160)
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _model(spec: str, what: str, base_url: str | None) -> Any:
    from rpra_agent.models import load_chat_model

    opts = {"base_url": base_url} if base_url and spec.startswith("openai:") and "base_url=" not in spec else {}
    try:
        return load_chat_model(spec, **opts)
    except (RPRAError, ImportError) as exc:
        _fail(f"--{what} {spec!r}: {exc}")


def print_result(result: dict[str, Any], elapsed: float | None = None) -> None:
    """The experiment's tables, the skipped arms and the files written."""
    from rpra_agent.evaluation.experiment_report import accuracy_table, deferral_table, improvement_table

    split = result["split"]
    console.print(
        f"experiment {result['experiment']}: small {result['small']}, large {result['large']}, judge "
        f"{result['judge']}; {split['train']} train / {split['test']} test items (seed {split['seed']})",
        highlight=False,
    )
    console.print(accuracy_table(result))
    if any(a["predictor"] != "zero_shot" for a in result["arms"]):
        console.print(improvement_table(result))
    console.print(deferral_table(result))
    for arm, why in result.get("skipped", {}).items():
        console.print(f"skipped {arm}: {why}", highlight=False, soft_wrap=True)
    files = ", ".join(f"{k}: {v}" for k, v in result["paths"].items())
    console.print(
        f"[dim]{files}; split: {split['file']}; train-only SFT set: {result['sft']['dir']}[/]",
        highlight=False,
        soft_wrap=True,
    )
    if elapsed is not None:
        console.print(f"[bold]done in {elapsed:.1f}s[/]", highlight=False)


@app.command("experiment")
def experiment_command(
    prompts: Annotated[
        Path, typer.Option("--prompts", "-d", help='Prompts JSONL: {"prompt": ..., "category": DATASET} per line.')
    ],
    small: Annotated[str, typer.Option(help="The small model (gguf:/m.gguf, openai:NAME).")],
    large: Annotated[str, typer.Option(help="The large model.")],
    judge: Annotated[str, typer.Option(help="The judge model.")],
    fine_tuned: Annotated[
        str | None, typer.Option(help="A model fine-tuned on OUT/sft (train items only); else that arm is skipped.")
    ] = None,
    fine_tuned_data: Annotated[
        str | None,
        typer.Option(help="The sft/ directory the --fine-tuned model was trained on: refused if it holds a test item."),
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint for openai: models.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the log, split, SFT set and report.")] = Path(
        "rpra_experiment"
    ),
    db: Annotated[str | None, typer.Option(help="Store URL; default sqlite:///OUT/experiment.db.")] = None,
    paradigm: Annotated[list[str] | None, typer.Option(help="pa and/or rpra (repeatable; default both).")] = None,
    predictor: Annotated[
        list[str] | None,
        typer.Option(help="zero_shot, report_card, fine_tuned (repeatable; default all; zero_shot always runs)."),
    ] = None,
    test_fraction: Annotated[float, typer.Option(help="Share of each dataset held out for testing.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the split and of the judge's answer order.")] = 0,
    target_rate: Annotated[float, typer.Option(help="Deferral rate the threshold is calibrated to.")] = 0.3,
    judge_method: Annotated[
        str, typer.Option(help="auto (structured output, else JSON text), structured or json.")
    ] = "auto",
    isolated: Annotated[
        bool, typer.Option("--isolated", help="Ablation: judge each answer alone, not jointly.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="Experiment id to resume (default: derived).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of tables.")] = False,
) -> None:
    """Run the paper's experiment: PA and RPRA x zero-shot, report card and fine-tuned, on a train/test split.

    The small model answers every prompt under each paradigm, the large model answers
    too, the judge grades all answers to a prompt in one call, and each arm predicts the
    grade of the small answer on the test items. Prints accuracy and macro-F1 per dataset,
    the improvement over zero-shot and what deferring at a calibrated threshold saves.
    Run it again to resume.
    """
    from rpra_agent.cli.eval import RichProgress, progress_bar
    from rpra_agent.evaluation.experiment import ExperimentOptions, run_experiment
    from rpra_agent.feedback import LLMJudge

    if judge_method not in ("auto", "structured", "json"):
        _fail(f"--judge-method must be auto, structured or json, not {judge_method!r}")
    wanted = tuple(predictor or ("zero_shot", "report_card", "fine_tuned"))
    try:
        opts = ExperimentOptions(
            paradigms=tuple(paradigm or ("pa", "rpra")),
            predictors=tuple(dict.fromkeys(("zero_shot", *wanted))),
            test_fraction=test_fraction,
            seed=seed,
            target_rate=target_rate,
            name=name,
            fine_tuned_data=fine_tuned_data,
        )
    except RPRAError as exc:
        _fail(str(exc))
    models = {w: _model(s, w, base_url) for w, s in (("small", small), ("large", large), ("judge", judge))}
    tuned = _model(fine_tuned, "fine-tuned", base_url) if fine_tuned else None
    the_judge = LLMJudge(models["judge"], method=judge_method, isolated=isolated, seed=seed, backoff_s=0.5)
    start = time.perf_counter()
    try:
        with progress_bar(err, disable=as_json) as bar:
            sink = RichProgress(bar)
            result = run_experiment(
                prompts, small=models["small"], large=models["large"], judge=the_judge, fine_tuned=tuned,
                out_dir=out, store=db, options=opts, progress=sink,
            )  # fmt: skip
            sink.close()
    except RPRAError as exc:
        _fail(str(exc))
    if as_json:
        console.print_json(json.dumps(result))
    else:
        print_result(result, time.perf_counter() - start)
