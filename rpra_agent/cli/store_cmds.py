"""``rpra stats``, ``rpra log export|replay`` and ``rpra db upgrade|current``: the decision log from the shell."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rpra_agent.cli.app import app
from rpra_agent.core.errors import RPRAError
from rpra_agent.core.redact import scrub_secrets

__all__ = ["db_app", "log_app"]

out = Console()
err = Console(stderr=True)

db_app = typer.Typer(name="db", help="Manage the decision log's database schema.", no_args_is_help=True)
log_app = typer.Typer(
    name="log", help="Export the decision log, or replay records spooled during an outage.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(log_app, name="log")

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (sqlite:///rpra.db, postgresql://user@host/db); default $RPRA_DATABASE_URL or ./rpra.db.",
    ),
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only decisions at or after this ISO date/time (e.g. 2026-11-01).")
]

_CSV_COLUMNS = [
    "id", "run_id", "thread_id", "step", "kind", "paradigm", "route", "reason", "threshold", "task",
    "small_model", "large_model", "predictor", "predicted_grade", "p_acceptable", "expected_score",
    "input_tokens", "output_tokens", "latency_ms", "tool_calls", "error", "degraded", "created_at",
    "completed_at", "request", "response", "legs", "metadata",
]  # fmt: skip


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(scrub_secrets(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _sql_store(url: str | None, *, must_exist: bool = False, **opts: Any) -> Iterator[Any]:
    """Open the SQL store at ``url``; library errors become one clear line and exit code 2.

    ``must_exist``: a command that only reads refuses a missing SQLite file instead of creating an empty log.
    """
    from rpra_agent.store import open_store
    from rpra_agent.store.sql import SQLDecisionStore

    try:
        store = open_store(url, must_exist=must_exist, **opts)
    except RPRAError as exc:
        _fail(f"cannot open the decision log: {exc}")
    if not isinstance(store, SQLDecisionStore):
        store.close()
        _fail("this command needs an SQL database (sqlite:///... or postgresql://...), not memory://")
    try:
        yield store
    except RPRAError as exc:
        _fail(str(exc))
    finally:
        store.close()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    )  # fmt: skip


# -- rpra db ---------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(
    db: DbOpt = None,
    revision: Annotated[str, typer.Option("--revision", help="Target Alembic revision.")] = "head",
) -> None:
    """Create or upgrade the decision-log tables (first use does this automatically)."""
    with _sql_store(db, auto_upgrade=False) as store:
        before, after = store.upgrade(revision)
        if before == after:
            out.print(f"{store.url}: already at revision [bold]{after}[/]")
        else:
            out.print(f"{store.url}: upgraded from {before or '(empty)'} to [bold]{after}[/]")


@db_app.command("current")
def db_current(db: DbOpt = None) -> None:
    """Show the schema revision of the database and the newest one this version ships."""
    from rpra_agent.store import _migrate

    with _sql_store(db, auto_upgrade=False) as store:
        current = store._guard("read the schema revision", lambda: _revision(store), ensure=False)
        out.print(f"{store.url}: revision {current or '(no decision log yet)'}; newest {_migrate.head_revision()}")


def _revision(store: Any) -> str | None:
    from rpra_agent.store import _migrate

    with store.engine.connect() as conn:
        return _migrate.current_revision(conn)


# -- rpra log --------------------------------------------------------------------------
def _csv_row(d: Any) -> dict[str, Any]:
    pred = d.prediction
    return {
        **{k: v for k, v in d.to_dict().items() if k in _CSV_COLUMNS},
        "predictor": pred.predictor if pred else "",
        "predicted_grade": pred.grade if pred else "",
        "p_acceptable": pred.p_acceptable if pred else "",
        "expected_score": pred.expected_score if pred else "",
        "input_tokens": sum(u.input_tokens for u in d.legs.values()),
        "output_tokens": sum(u.output_tokens for u in d.legs.values()),
        "latency_ms": round(sum(u.latency_ms for u in d.legs.values()), 3),
        "tool_calls": ";".join(d.tool_calls),
        "legs": json.dumps({k: v.to_dict() for k, v in d.legs.items()}),
        "metadata": json.dumps(dict(d.metadata)),
    }


@log_app.command("export")
def log_export(
    db: DbOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl (full records) or csv (flat columns).")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")] = None,
    since: SinceOpt = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Only this run.")] = None,
    thread_id: Annotated[str | None, typer.Option("--thread-id", help="Only this thread.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task tag.")] = None,
    verdicts: Annotated[
        bool, typer.Option("--verdicts/--no-verdicts", help="Add each decision's verdicts (JSONL).")
    ] = False,
) -> None:
    """Export decisions as JSONL or CSV, oldest first, streaming (any size)."""
    from rpra_agent.store.base import DecisionFilter

    if fmt not in ("jsonl", "csv"):
        _fail(f"--format must be jsonl or csv, not {fmt!r}")
    where = DecisionFilter(run_id=run_id, thread_id=thread_id, task=task, since=since)
    with _sql_store(db, must_exist=True) as store:
        total = store.count(where)
        fh: IO[str] = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            writer = csv.DictWriter(fh, fieldnames=_CSV_COLUMNS) if fmt == "csv" else None
            if writer is not None:
                writer.writeheader()
            with _progress() as bar:
                task_id = bar.add_task("exporting", total=total)
                for batch in store.iter_decisions(where):
                    by_decision: dict[str, list[dict[str, Any]]] = {}
                    if verdicts and writer is None:
                        for v in store.verdicts([d.id for d in batch]):
                            by_decision.setdefault(v.decision_id, []).append(v.to_dict())
                    for d in batch:
                        if writer is not None:
                            writer.writerow(_csv_row(d))
                        else:
                            record = d.to_dict()
                            if verdicts:
                                record["verdicts"] = by_decision.get(d.id, [])
                            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                    bar.advance(task_id, len(batch))
        finally:
            if output:
                fh.close()
    if output:
        err.print(f"exported {total} decisions to {output}")


@log_app.command("replay")
def log_replay(
    db: DbOpt = None,
    spool: Annotated[
        Path | None, typer.Option("--spool", help="Spool file; default the one this database URL uses.")
    ] = None,
) -> None:
    """Re-insert records spooled while the database was unreachable (duplicates are ignored)."""
    opts: dict[str, Any] = {"spool_path": str(spool)} if spool else {}
    with _sql_store(db, **opts) as store:
        waiting = store.spool.count()
        if waiting == 0:
            out.print(f"nothing to replay: {store.spool.path} is empty")
            return
        with _progress() as bar:
            task_id = bar.add_task("replaying", total=waiting)
            done = store.replay(progress=lambda n, _total: bar.update(task_id, completed=n))
        out.print(f"replayed {done} records from {store.spool.path} into {store.url}")
        if store.spool.rejected_path.exists():
            err.print(f"[yellow]some records were refused; see {store.spool.rejected_path}[/]")


# -- rpra stats ------------------------------------------------------------------------
@app.command("stats")
def stats(
    db: DbOpt = None,
    since: SinceOpt = None,
    price: Annotated[
        list[str] | None,
        typer.Option("--price", help="MODEL=IN,OUT per million tokens (repeatable; patterns like 'gpt-4o*')."),
    ] = None,
    prices: Annotated[
        Path | None, typer.Option("--prices", help='JSON price table {"model": {"input": X, "output": Y}}.')
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Deferral rates, tokens and cost per leg, and predicted-vs-judged agreement."""
    from rpra_agent.store.prices import PriceTable
    from rpra_agent.store.stats import compute_stats

    try:
        table = PriceTable.from_file(prices) if prices else PriceTable()
        table = table.with_prices(dict(PriceTable.parse_option(p) for p in price or ()))
    except RPRAError as exc:
        _fail(str(exc))
    with _sql_store(db, must_exist=True) as store:
        with err.status("computing statistics"):
            result = compute_stats(store, prices=table, since=since)
        if as_json:
            out.print_json(json.dumps(result.to_dict()))
        else:
            render_stats(out, result, title=store.url)


def _grade_order(labels: set[str]) -> list[str]:
    """Grades worst to best: the paper's scale, numbers numerically, anything else alphabetically."""
    paper = ["bad", "ok", "great"]
    if labels <= set(paper):
        return [g for g in paper if g in labels]
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def render_stats(console: Console, s: Any, *, title: str) -> None:
    """Render :class:`~rpra_agent.store.stats.StoreStats` as Rich tables."""
    cost = "-" if s.total_cost is None else f"{s.total_cost:.4f} {s.currency}"
    console.print(
        f"[bold]{title}[/]: {s.decisions} decisions, {s.deferred} deferred "
        f"([bold]{_pct(s.deferral_rate)}[/]); estimated cost {cost}"
    )
    if not s.decisions:
        return
    rates = Table(title="Deferral rate", title_justify="left")
    for col in ("by", "group"):
        rates.add_column(col)
    for col in ("decisions", "deferred", "rate"):
        rates.add_column(col, justify="right")
    groups = (
        ("kind", s.by_kind),
        ("step", s.by_step),
        ("small model", s.by_model),
        ("day", s.by_day),
        ("reason", s.by_reason),
    )
    for label, rows in groups:
        for n, r in enumerate(rows):
            rates.add_row(label if n == 0 else "", r.key, str(r.decisions), str(r.deferred), _pct(r.rate))
        rates.add_section()
    console.print(rates)
    legs = Table(title="Tokens and estimated cost per leg", title_justify="left")
    legs.add_column("leg")
    legs.add_column("model", overflow="fold")
    for col in ("calls", "input tokens", "output tokens", "mean latency ms", f"cost {s.currency}"):
        legs.add_column(col, justify="right")
    for r in s.legs:
        legs.add_row(
            r.leg, r.model, str(r.calls), f"{r.input_tokens:,}", f"{r.output_tokens:,}", f"{r.latency_ms_mean:.1f}",
            "-" if r.cost is None else f"{r.cost:.4f}",
        )  # fmt: skip
    console.print(legs)
    share = s.prediction_share
    parts = [f"{_pct(v)} of {k}" for k, v in share.items() if v is not None]
    if parts:
        console.print("Prediction's share of the steps' cost: " + ", ".join(parts))
    if any(r.cost is None for r in s.legs):
        console.print("[dim]cost '-': no price for that model; pass --price MODEL=IN,OUT or --prices FILE[/]")
    a = s.agreement
    if not a.judged:
        console.print("Predicted vs judged grade: no verdicts on the small model's answers yet (run `rpra judge`).")
        return
    labels = _grade_order({g for row in a.confusion.values() for g in row} | set(a.confusion))
    console.print(
        f"Predicted vs judged grade (small model's answers): {a.matches}/{a.judged} agree ({_pct(a.accuracy)})"
    )
    conf = Table()
    conf.add_column("predicted \\ judged")
    for label in labels:
        conf.add_column(label, justify="right")
    for p in labels:
        conf.add_row(p, *(str(a.confusion.get(p, {}).get(j, 0)) for j in labels))
    console.print(conf)
