"""``rpra calibrate``: set the deferral threshold from judged data (a dataset or the decision log)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from rpra_agent.cli.app import app
from rpra_agent.core.errors import RPRAError

__all__ = ["calibrate"]

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


@app.command("calibrate")
def calibrate(
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Bundled name or path: calibrate a built-in keep-score on it.")
    ] = None,
    predictor: Annotated[
        str,
        typer.Option(
            "--predictor",
            help="With --dataset: a built-in keep-score (category, length, random) or the DIR of a trained "
            "artifact (`rpra train-predictor --out DIR`; calibrated on its expected grade).",
        ),
    ] = "category",
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Store URL: read decisions+verdicts (without --dataset) and store the calibration there."
        ),
    ] = None,
    target_rate: Annotated[
        float | None, typer.Option("--target-rate", help="Defer this share of requests (a quantile).")
    ] = None,
    epsilon: Annotated[
        float | None, typer.Option("--epsilon", help="Tolerated quality loss vs always-large (score units).")
    ] = None,
    delta: Annotated[
        float, typer.Option("--delta", help="Allowed failure probability of the quality guarantee.")
    ] = 0.1,
    metric: Annotated[
        str, typer.Option("--metric", help="With --db: p_acceptable or expected_score.")
    ] = "p_acceptable",
    bound: Annotated[
        str, typer.Option("--bound", help="auto, binomial, hoeffding, bentkus or hoeffding-bentkus.")
    ] = "auto",
    task: Annotated[str | None, typer.Option("--task", help="With --db: only decisions of this task.")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="With --db: only decisions of this run.")] = None,
    name: Annotated[str, typer.Option("--name", help="Name of the stored calibration.")] = "default",
    out: Annotated[Path | None, typer.Option("--out", help="Also write the calibration as JSON here.")] = None,
) -> None:
    """Set the deferral threshold from judged data, by target deferral rate or target quality."""
    if (target_rate is None) == (epsilon is None):
        _fail("give exactly one of --target-rate R or --epsilon E (with --delta D)")
    store = None
    try:
        if db is not None or dataset is None:
            from rpra_agent.store import open_store

            store = open_store(db, must_exist=dataset is None)  # it reads the log unless --dataset is given
        cal = _calibrate(store, dataset, predictor, db, target_rate, epsilon, delta, metric, bound, task, run_id)
        if store is not None:
            from rpra_agent.feedback.calibration import save_calibration

            cal = save_calibration(store, cal, name)
    except RPRAError as exc:
        _fail(str(exc))
    finally:
        if store is not None:
            store.close()
    _print_calibration(cal, name)
    if out is not None:
        out.write_text(
            json.dumps({**cal.to_dict(), "version": cal.version, "name": name}, indent=2) + "\n", encoding="utf-8"
        )


def _calibrate(
    store: Any,
    dataset: str | None,
    predictor: str,
    db: str | None,
    target_rate: float | None,
    epsilon: float | None,
    delta: float,
    metric: str,
    bound: str,
    task: str | None,
    run_id: str | None,
) -> Any:
    """The calibration from a dataset (built-in keep-score) or from the store's decisions."""
    from rpra_agent.evaluation.runs.judged import judged_from_dataset, judged_from_store, keep_from_store
    from rpra_agent.feedback.calibration import calibrate_deferral_rate, calibrate_quality

    if dataset is not None:
        from rpra_agent.evaluation.datasets import load_dataset

        judged = judged_from_dataset(load_dataset(dataset), predictor)
    else:
        from rpra_agent.store.base import DecisionFilter

        where = DecisionFilter(run_id=run_id, task=task)
        source = db or "default store"
        if target_rate is not None:
            keep = keep_from_store(store, metric=metric, where=where)
            upper_rate = None if metric == "p_acceptable" else _scale_high(store, where)
            return calibrate_deferral_rate(
                keep, target_rate, metric=metric, upper=upper_rate, predictor="store", source=source
            )
        judged = judged_from_store(store, metric=metric, where=where, source=source)
    upper = judged.score_range[1] if judged.metric == "expected_score" else None
    if target_rate is not None:
        return calibrate_deferral_rate(
            judged.keep,
            target_rate,
            metric=judged.metric,
            upper=upper,
            predictor=judged.predictor,
            source=judged.source,
        )
    assert epsilon is not None  # noqa: S101 - checked by the caller
    return calibrate_quality(
        judged.keep,
        judged.small,
        judged.large,
        epsilon=epsilon,
        delta=delta,
        score_range=judged.score_range,
        metric=judged.metric,
        upper=upper,
        bound=bound,  # type: ignore[arg-type]
        predictor=judged.predictor,
        source=judged.source,
    )


def _scale_high(store: Any, where: Any) -> float | None:
    """The best grade's value of the stored predictions' scale (caps expected_score thresholds)."""
    for decision in store.decisions(where):
        if decision.prediction is not None:
            return float(decision.prediction.scale.high)
    return None


def _print_calibration(cal: Any, name: str) -> None:
    table = Table(title=f"Calibration {name!r}" + (f" v{cal.version}" if cal.version is not None else " (not stored)"))
    table.add_column("field")
    table.add_column("value", justify="right")
    rows = [
        ("threshold", f"{cal.threshold:.6g} on {cal.metric} (defer below)"),
        ("mode", cal.mode),
        ("target", _fmt(cal.target)),
        ("judged items", str(cal.n)),
        ("deferral rate", f"{cal.deferral_rate:.1%}"),
    ]
    if cal.mode == "quality":
        rows += [
            ("epsilon / delta", f"{cal.epsilon:g} / {cal.delta:g}"),
            ("empirical loss", _fmt(cal.empirical_loss, 4)),
            (f"upper bound ({cal.method})", _fmt(cal.bound, 4)),
            ("certified", "yes" if cal.certified else "NO: too few judged items; deferring everything observed"),
        ]
    rows += [("predictor", cal.predictor), ("source", cal.source)]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
