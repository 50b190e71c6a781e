"""``rpra eval``: replay a recorded dataset through the graph (default), or evaluate live models."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from rpra_agent.cli.app import app
from rpra_agent.core.errors import RPRAError

__all__ = ["RichProgress", "eval_command"]

console = Console()
if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
    console = Console(width=160)
err = Console(stderr=True)


def progress_bar(console: Console, *, disable: bool) -> Progress:
    """The Rich progress display the long-running commands share (stages, counts, elapsed time)."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console, transient=False, disable=disable)


class RichProgress:
    """An :class:`~rpra_agent.evaluation.runs.graphrun.EvalProgress` drawn as one Rich bar per stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def stage(self, name: str, total: int | None = None) -> None:
        """Finish the previous stage's bar and start one for ``name``."""
        if self.task is not None:
            t = self.progress.tasks[self.task]
            self.progress.update(self.task, completed=t.total if t.total is not None else 1, total=t.total or 1)
        self.task = self.progress.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        """Advance the current stage."""
        if self.task is not None:
            self.progress.advance(self.task, n)

    def close(self) -> None:
        """Mark the last stage complete."""
        self.stage("done", 1)
        self.progress.advance(self.task, 1)


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _prices(spec: str | None) -> Any:
    """A price table from a JSON file (see ``PriceTable.from_dict``) or ``MODEL=X/1k,MODEL=Y/call``."""
    if not spec:
        return None
    from rpra_agent.store.prices import PriceTable

    if Path(spec).exists():
        return PriceTable.from_file(spec)
    return PriceTable.parse(s.strip() for s in spec.split(",") if s.strip())


def _model(spec: str, what: str) -> Any:
    from rpra_agent.models import load_chat_model

    try:
        return load_chat_model(spec)
    except RPRAError as exc:
        _fail(f"--{what} {spec!r}: {exc}")


def _print_result(result: Any, elapsed: float) -> None:
    from rpra_agent.evaluation.report import operating_table, rich_table

    console.print(rich_table(result))
    table = operating_table(result)
    if table is not None:
        console.print(table)
    files = ", ".join(f"{k}: {v}" for k, v in result.paths.items())
    console.print(f"[dim]{files}[/]", highlight=False, soft_wrap=True)
    for warning in result.warnings:
        err.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    console.print(f"[bold]done in {elapsed:.1f}s[/] (eval id {result.eval_id})", highlight=False)


@app.command("eval")
def eval_command(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset", "-d", help="Bundled name (mt-bench, mt-bench-question, gsm8k, mmlu, arena) or a file."
        ),
    ] = "mt-bench",
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for the SQLite log, plot and HTML report.")
    ] = Path("rpra_out"),
    db: Annotated[str | None, typer.Option("--db", help="Store URL; default sqlite:///OUT/eval.db.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Fixed threshold on the predicted expected grade.")] = None,
    target_rate: Annotated[float | None, typer.Option(help="Calibrate to defer this share (default 0.5).")] = None,
    epsilon: Annotated[float | None, typer.Option(help="Calibrate: quality loss vs always-large at most this.")] = None,
    delta: Annotated[float, typer.Option(help="Confidence 1-delta of the --epsilon bound.")] = 0.1,
    price_table: Annotated[
        str | None,
        typer.Option(help="JSON file {model: {per_call, per_1k_tokens}} or 'MODEL=0.01/1k,MODEL=0.002/call'."),
    ] = None,
    folds: Annotated[int, typer.Option(help="Cross-fitting folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 0,
    no_learned: Annotated[bool, typer.Option("--no-learned", help="Skip the learned predictor.")] = False,
    predictor: Annotated[
        list[str] | None,
        typer.Option(
            "--predictor",
            "-p",
            help="Routers to compute (repeat or comma-separate): report_card|card, learned, learned_draft, tfidf, "
            "tfidf_draft, answer_length|length, all, or the DIR of a trained artifact. Default: all built-in ones.",
        ),
    ] = None,
    operating_router: Annotated[
        str,
        typer.Option(
            "--operating-router",
            help="The router whose calibrated threshold the graph routes with; auto: the best cross-fitted APGR.",
        ),
    ] = "auto",
    neighbours: Annotated[
        str | None,
        typer.Option(
            "--neighbours",
            help="A sentence-transformers model (name or local directory) for the learned predictor's kNN member "
            "(docs/LEARNED.md; pip install 'rpra-agent\\[embeddings]').",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Graph runs per batch.")] = 256,
    concurrency: Annotated[int, typer.Option(help="Concurrent graph runs within a batch.")] = 4,
    workers: Annotated[int, typer.Option(help="Replay: worker processes for the graph passes (SQL store).")] = 1,
    small: Annotated[str | None, typer.Option(help="Live: the small model (gguf:/m.gguf, openai:NAME).")] = None,
    large: Annotated[str | None, typer.Option(help="Live: the large model.")] = None,
    judge: Annotated[str | None, typer.Option(help="Live: the judge model.")] = None,
    fine_tuned: Annotated[str | None, typer.Option(help="Live: a hindsight fine-tuned model.")] = None,
    scale: Annotated[str, typer.Option(help="Live: the judge's grade scale (paper3 or ten).")] = "paper3",
    no_large: Annotated[
        bool, typer.Option("--no-large", help="Live: skip the large answers (agreement only).")
    ] = False,
    paradigm: Annotated[
        str, typer.Option(help="Live: pa (predict, answer) or rpra (reason, predict, reason, answer).")
    ] = "pa",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of tables.")] = False,
) -> None:
    """Measure what deferral saves and costs: replay a recording (default) or run live models.

    With no model options it replays the recorded DATASET through the actual RPRA graph
    (no network, no model). With --small, --large and --judge it runs the paper's
    experiment live on a prompts file, resumably.
    """
    live = [s for s in (small, large, judge) if s]
    if live and len(live) != 3:
        _fail("a live evaluation needs --small, --large and --judge together")
    start = time.perf_counter()
    try:
        with progress_bar(err, disable=as_json) as bar:
            sink = RichProgress(bar)
            result = _run_live(locals(), sink) if live else _run_replay(locals(), sink)
            sink.close()
    except RPRAError as exc:
        _fail(str(exc))
    elapsed = time.perf_counter() - start
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
    else:
        _print_result(result, elapsed)


def _run_replay(a: dict[str, Any], sink: RichProgress) -> Any:
    from rpra_agent.evaluation.runs.pipeline import ReplayOptions, run_replay_eval
    from rpra_agent.evaluation.runs.routers import select_routers

    opts = ReplayOptions(
        folds=a["folds"],
        seed=a["seed"],
        threshold=a["threshold"],
        target_rate=a["target_rate"],
        epsilon=a["epsilon"],
        delta=a["delta"],
        prices=_prices(a["price_table"]),
        batch_size=a["batch_size"],
        max_concurrency=a["concurrency"],
        learned=not a["no_learned"],
        workers=a["workers"],
        routers=select_routers(a["predictor"]),
        operating_router=a["operating_router"],
        neighbours=a["neighbours"],
    )
    return run_replay_eval(a["dataset"], out_dir=a["out"], store=a["db"], options=opts, progress=sink)


def _run_live(a: dict[str, Any], sink: RichProgress) -> Any:
    from rpra_agent.core.grades import GradeScale
    from rpra_agent.evaluation.runs.live import LiveOptions, run_live_eval
    from rpra_agent.evaluation.runs.routers import select_routers

    opts = LiveOptions(
        folds=a["folds"],
        seed=a["seed"],
        judge_large=not a["no_large"],
        threshold=a["threshold"],
        target_rate=a["target_rate"],
        epsilon=a["epsilon"],
        delta=a["delta"],
        scale=GradeScale.named(a["scale"]),
        paradigm=a["paradigm"],
        learned=not a["no_learned"],
        routers=select_routers(a["predictor"]),
        operating_router=a["operating_router"],
        neighbours=a["neighbours"],
    )
    return run_live_eval(
        a["dataset"],
        small=_model(a["small"], "small"),
        large=_model(a["large"], "large"),
        judge=_model(a["judge"], "judge"),
        fine_tuned=_model(a["fine_tuned"], "fine-tuned") if a["fine_tuned"] else None,
        out_dir=a["out"],
        store=a["db"],
        options=opts,
        progress=sink,
    )
