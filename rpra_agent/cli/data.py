"""``rpra data list|convert``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from rpra_agent.cli.app import app
from rpra_agent.core.errors import RPRAError

__all__ = ["data_app"]

console = Console()
err = Console(stderr=True)

data_app = typer.Typer(
    name="data", help="Recorded evaluation datasets: list the bundled ones, convert your own.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


@data_app.command("list")
def list_datasets(
    baselines: Annotated[
        bool, typer.Option("--baselines", help="Also compute each dataset's baseline APGR/CPT.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print each dataset's description.")] = False,
) -> None:
    """List the bundled datasets with their size, models and attribution."""
    from rpra_agent.evaluation.datasets import BUNDLED, bundled_path, load_dataset

    table = Table(title="Bundled datasets (rpra_agent/data)")
    for col in ("name", "items", "score", "size", "weak -> strong"):
        table.add_column(col, overflow="fold", justify="right" if col in ("items", "size") else "left")
    loaded = []
    for name in BUNDLED:
        ds = load_dataset(name)
        loaded.append(ds)
        lo, hi = ds.score_range
        table.add_row(
            name,
            str(len(ds)),
            f"{lo:g}-{hi:g}",
            f"{bundled_path(name).stat().st_size / 1024:.0f} KiB",
            f"{ds.weak} -> {ds.strong}",
        )
    console.print(table)
    if verbose:
        for ds in loaded:
            console.print(f"[bold]{ds.name}[/]: {ds.metadata.get('description', '')}", highlight=False, soft_wrap=True)
    console.print("[bold]Attribution[/]")
    by_source: dict[str, list[str]] = {}
    for ds in loaded:
        by_source.setdefault(ds.attribution, []).append(ds.name)
    for attribution, names in by_source.items():
        console.print(f"- {', '.join(names)}: {attribution}", highlight=False, soft_wrap=True)
    data_dir = bundled_path("mt-bench").parent
    console.print(
        f"Licence and sources: {data_dir / 'NOTICE.md'}, {data_dir / 'LICENSE-Apache-2.0.txt'}",
        highlight=False,
        soft_wrap=True,
    )
    if baselines:
        _print_baselines(loaded)


def _print_baselines(datasets: list[Any]) -> None:
    from rpra_agent.evaluation.metrics.baselines import dataset_baselines

    table = Table(title="Baselines (APGR over every point of the curve; ties averaged exactly)")
    for col in ("dataset", "router", "APGR", "CPT(50%)", "CPT(80%)", "quality"):
        table.add_column(col, justify="right" if col not in ("dataset", "router") else "left")
    for ds in datasets:
        for row in dataset_baselines(ds):
            table.add_row(ds.name, row.name, _fmt(row.apgr), _fmt(row.cpt50), _fmt(row.cpt80), _fmt(row.quality))
    console.print(table)


@data_app.command("convert")
def convert(
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT", help="A .csv/.tsv or .jsonl table (or gzipped: .csv.gz).", exists=True, dir_okay=False
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The dataset to write (.jsonl or .jsonl.gz).")],
    prompt_col: Annotated[str, typer.Option("--prompt-col", help="Column of the prompt text.")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Wide table: NAME=RESPONSE_COL:SCORE_COL[:TOKENS_COL[:COST_COL]] (repeat; parts may be empty). "
            "With --long: a model NAME to keep (repeat; default all, in order of appearance).",
        ),
    ] = None,
    long: Annotated[
        bool, typer.Option("--long", help="One row per model per item, with a --model-col (see docs/DATASETS.md).")
    ] = False,
    model_col: Annotated[str | None, typer.Option("--model-col", help="--long: column of the model name.")] = None,
    response_col: Annotated[str | None, typer.Option("--response-col", help="--long: column of the answer.")] = None,
    score_col: Annotated[str | None, typer.Option("--score-col", help="--long: column of the score.")] = None,
    tokens_col: Annotated[str | None, typer.Option("--tokens-col", help="--long: column of the tokens.")] = None,
    cost_col: Annotated[str | None, typer.Option("--cost-col", help="--long: column of the cost.")] = None,
    id_col: Annotated[
        str | None,
        typer.Option(
            "--id-col",
            help="Column of the item id, or columns joined by commas, e.g. question_id,turn "
            "(default: the row number; --long: the prompt).",
        ),
    ] = None,
    category_col: Annotated[str | None, typer.Option("--category-col", help="Column of the category.")] = None,
    join: Annotated[
        list[Path] | None,
        typer.Option(
            "--join",
            help="A side table (CSV/JSONL) whose columns are added to each row with the same --id-col, "
            "and the same --model-col where it has one, e.g. the prompts of a judgments table (repeat).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    weak: Annotated[str | None, typer.Option("--weak", help="The small model (default: first model).")] = None,
    strong: Annotated[str | None, typer.Option("--strong", help="The large model (default: second model).")] = None,
    score_range: Annotated[
        str | None,
        typer.Option("--score-range", help="LO,HI of the judge's scale (needed unless every score is in [0, 1])."),
    ] = None,
    acceptable: Annotated[float | None, typer.Option("--acceptable", help="Lowest acceptable score.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Dataset name (default: file stem).")] = None,
    attribution: Annotated[str, typer.Option("--attribution", help="Source and licence of the data.")] = "",
) -> None:
    """Convert a CSV or JSONL table into an rpra dataset (see docs/DATASETS.md).

    Scores are kept as they are (continuous scores stay continuous); an empty score cell,
    or NA, N/A, NaN, null or None, means not judged; an empty answer stays an empty answer.
    """
    rng = _score_range(score_range)
    try:
        if long:
            dataset = _convert_long(input_path, locals(), rng)
        else:
            dataset = _convert_wide(input_path, locals(), rng)
        from rpra_agent.evaluation.datasets import load_dataset, save_dataset

        written = save_dataset(dataset, out)
        check = load_dataset(written)  # the strict loader must accept what we wrote
    except RPRAError as exc:
        _fail(str(exc))
    lo, hi = check.score_range
    inferred = "" if rng else " (inferred: every score lies in [0, 1]; set another with --score-range)"
    console.print(
        f"wrote {written}: {len(check)} items, weak {check.weak!r}, strong {check.strong!r}, "
        f"score range [{lo:g}, {hi:g}]{inferred}",
        highlight=False,
        soft_wrap=True,
    )
    if (warning := check.strength_warning()) is not None:
        err.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def _score_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        _fail(f"--score-range must be LO,HI (e.g. 1,10), got {text!r}")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        _fail(f"--score-range needs finite LO < HI, got {text!r}")
    return lo, hi


def _convert_wide(path: Path, a: dict[str, Any], rng: tuple[float, float] | None) -> Any:
    from rpra_agent.evaluation.datasets.convert import ColumnMapping, ModelColumns, convert_table

    if not a["model"]:
        _fail("map each model with --model NAME=RESPONSE_COL:SCORE_COL (twice), or pass --long for a long table")
    longs = [f for f in ("model_col", "response_col", "score_col", "tokens_col", "cost_col") if a[f]]
    if longs:
        _fail(f"--{longs[0].replace('_', '-')} belongs to a long table: add --long")
    mapping = ColumnMapping(
        prompt=a["prompt_col"],
        models=tuple(ModelColumns.parse(spec) for spec in a["model"]),
        id=a["id_col"],
        category=a["category_col"],
        weak=a["weak"],
        strong=a["strong"],
    )
    return convert_table(path, mapping, **_common(path, a, rng, model_col=None))


def _common(path: Path, a: dict[str, Any], rng: tuple[float, float] | None, *, model_col: str | None) -> Any:
    """The converters' shared keywords; ``rows``: the table with the ``--join`` side tables' columns added."""
    common = {"name": a["name"], "score_range": rng, "acceptable": a["acceptable"], "attribution": a["attribution"]}
    if not a["join"]:
        return common
    from rpra_agent.evaluation.datasets.convert import read_table
    from rpra_agent.evaluation.datasets.convert_join import join_tables

    if not a["id_col"]:
        _fail("--join needs --id-col: the column(s) the tables share, e.g. --id-col question_id")
    rows = join_tables(read_table(path), a["join"], id_col=a["id_col"], model_col=model_col, source=str(path))
    return {**common, "rows": rows}


def _convert_long(path: Path, a: dict[str, Any], rng: tuple[float, float] | None) -> Any:
    from rpra_agent.evaluation.datasets.convert_long import LongMapping, convert_long_table

    if not a["model_col"] or not a["score_col"]:
        _fail("--long needs --model-col COL (the model's name) and --score-col COL (its score)")
    specs = a["model"] or []
    if any("=" in m for m in specs):
        _fail("with --long, --model takes a plain model NAME to keep (the columns come from --*-col)")
    mapping = LongMapping(
        prompt=a["prompt_col"],
        model=a["model_col"],
        score=a["score_col"],
        response=a["response_col"],
        tokens=a["tokens_col"],
        cost=a["cost_col"],
        id=a["id_col"],
        category=a["category_col"],
        weak=a["weak"],
        strong=a["strong"],
        models=tuple(specs),
    )
    return convert_long_table(path, mapping, **_common(path, a, rng, model_col=a["model_col"]))
