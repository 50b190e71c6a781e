"""Rendering an :class:`~rpra_agent.evaluation.report.results.EvalResult`: Rich table, PNG plot, HTML.

The plot uses matplotlib's Agg backend, imported lazily. The HTML report is one
self-contained file: the plot is embedded as a base64 PNG, the tables and the report
card are inline, and nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from pathlib import Path
from string import Template
from typing import Any

from rpra_agent.core.errors import ConfigError
from rpra_agent.evaluation.report.results import EvalResult, PredictorRow

__all__ = [
    "comparison_note",
    "operating_choice",
    "operating_table",
    "plot_png",
    "render_html",
    "rich_table",
    "write_report",
]

logger = logging.getLogger(__name__)

_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("apgr", "APGR", "APGR"),
    ("cpt50", "CPT50", "CPT(50%)"),
    ("cpt80", "CPT80", "CPT(80%)"),
    ("accuracy", "acc", "grade accuracy"),
    ("macro_f1", "F1", "macro-F1"),
    ("auroc", "AUROC", "AUROC"),
    ("spearman", "rho", "Spearman"),
    ("ece", "ECE", "ECE"),
    ("mae", "MAE", "MAE"),
)
_LEGEND = (
    "\nacc = the paper's exact-match grade accuracy against the judge; F1 = macro-F1; rho = Spearman; "
    "AUROC and ECE of P(acceptable); MAE of the expected grade"
)
_DASHED = {"random", "always_small", "always_large", "oracle", "answer_length"}


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}f}"


def _cell(row: PredictorRow, key: str) -> str:
    value = getattr(row, key)
    if key.startswith("cpt") and value is None and row.kind == "predictor":
        return "never"
    return _fmt(value)


def rich_table(result: EvalResult) -> Any:
    """The predictors' and baselines' figures as a ``rich.table.Table``."""
    from rich.table import Table

    title = f"{result.dataset} (n={result.n_items}): {result.weak} -> {result.strong}"
    table = Table(title=title, caption=result.protocol + _LEGEND + _operating_note(result), caption_justify="left")
    table.add_column("predictor", style="bold", no_wrap=True)
    for _, label, _ in _COLUMNS:
        table.add_column(label, justify="right", no_wrap=True)
    table.add_column("note", style="dim", overflow="fold")
    chosen = result.operating.predictor if result.operating is not None else None
    for row in result.rows:
        style = "bold" if row.name == chosen else ("dim" if row.kind == "baseline" else None)
        name = f"{row.name} *" if row.name == chosen else row.name
        table.add_row(name, *(_cell(row, k) for k, _, _ in _COLUMNS), row.note, style=style)
    return table


def operating_choice(result: EvalResult) -> str:
    """Which router sets the operating point, and why (``""`` without an operating point)."""
    op = result.operating
    if op is None:
        return ""
    how = op.details.get("operating_router_choice") or "chosen"
    return f"{op.predictor} ({how})"


def _operating_note(result: EvalResult) -> str:
    choice = operating_choice(result)
    note = comparison_note(result)
    return (f"\n* sets the operating point: {choice}" if choice else "") + (f"\n{note}" if note else "")


def comparison_note(result: EvalResult) -> str:
    """The best router against the best of the other kind, and whether these items tell them apart (``""`` without)."""
    c = result.comparison
    if not c or not all(isinstance(c.get(k), float) and math.isfinite(c[k]) for k in ("low", "high")):
        return ""  # no comparison, or no resample with a gap between the models
    verdict = (
        "the interval excludes 0"
        if c["excludes_zero"]
        else "the interval includes 0: these items do not tell the two apart"
    )
    return (
        f"best by APGR against the {c['against_is']}: {c['leader']} - {c['against']} = {c['difference']:+.3f}, "
        f"{100 * c['level']:.0f}% interval {c['low']:+.3f} to {c['high']:+.3f} (paired bootstrap, "
        f"{c['resamples']:,} resamples of {c['units']:,} conversations); {verdict}"
    )


def operating_table(result: EvalResult) -> Any:
    """The calibrated operating point as a ``rich.table.Table`` (``None`` without one)."""
    from rich.table import Table

    op = result.operating
    if op is None:
        return None
    table = Table(title=f"operating point: {op.predictor}, {op.method} threshold", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    for label, value in _operating_rows(result):
        table.add_row(label, value)
    return table


def _operating_rows(result: EvalResult) -> list[tuple[str, str]]:
    op = result.operating
    if op is None:
        return []
    rows = [
        ("set by", operating_choice(result)),
        (
            "threshold",
            f"{op.threshold:.4f} on {op.metric}"
            + (f" of {op.details['threshold_scale']}" if op.details.get("threshold_scale") else "")
            + (f" (v{op.calibration_version})" if op.calibration_version else ""),
        ),
        ("deferral rate", _fmt(op.deferral_rate)),
        *([("paradigm", str(op.details["route_paradigm"]))] if op.details.get("route_paradigm") else []),
        ("quality (graph)", _fmt(op.quality)),
        ("quality always-small / always-large", f"{_fmt(op.quality_small)} / {_fmt(op.quality_large)}"),
        ("PGR", _fmt(op.pgr)),
        ("deferral precision / recall", f"{_fmt(op.deferral_precision)} / {_fmt(op.deferral_recall)}"),
    ]
    tokens = op.details.get("output_tokens")
    if isinstance(tokens, dict):
        rows.append(("output tokens (small / large legs)", f"{tokens.get('small', 0):,} / {tokens.get('large', 0):,}"))
    if op.cost is not None:
        rows.append(
            (
                "cost (graph / small / large)",
                f"{_fmt(op.cost, 4)} / {_fmt(op.cost_small, 4)} / {_fmt(op.cost_large, 4)}",
            )
        )
    for key in ("target_rate", "epsilon", "delta", "bound", "empirical_loss", "certified"):
        value = op.details.get(key)
        if value is not None:
            rows.append((key.replace("_", " "), f"{value:.4f}" if isinstance(value, float) else str(value)))
    return rows


def plot_png(result: EvalResult, *, width: float = 7.5, height: float = 5.0) -> bytes:
    """Quality against deferral share for every curve, as PNG bytes.

    Raises:
        ConfigError: when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a core dependency
        raise ConfigError("plotting needs matplotlib: pip install 'rpra-agent' (or pip install matplotlib)") from exc
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for curve in result.curves:
        dashed = curve.name in _DASHED
        ax.plot(
            list(curve.deferral),
            list(curve.quality),
            linestyle="--" if dashed else "-",
            linewidth=1.0 if dashed else 1.8,
            label=curve.name,
        )
    op = result.operating
    if op is not None:
        ax.scatter(
            [op.deferral_rate], [op.quality], marker="o", s=60, color="black", zorder=5, label="graph at threshold"
        )
    ax.set_xlabel("share of requests deferred to the large model")
    ax.set_ylabel("mean judge score of the answers given")
    ax.set_title(f"{result.dataset}: quality vs deferral (n={result.n_items})")
    ax.set_xlim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    if result.curves or op is not None:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no routing curves: the large answers were not judged", ha="center", va="center")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _html_table(result: EvalResult) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, _, label in _COLUMNS)
    rows = []
    chosen = result.operating.predictor if result.operating is not None else None
    for row in result.rows:
        cells = "".join(f"<td class='num'>{html.escape(_cell(row, k))}</td>" for k, _, _ in _COLUMNS)
        name = f"{row.name} *" if row.name == chosen else row.name
        rows.append(
            f"<tr class='{html.escape(row.kind)}'><th>{html.escape(name)}</th>{cells}"
            f"<td class='note'>{html.escape(row.note)}</td></tr>"
        )
    note = f"<p>* sets the operating point: {html.escape(operating_choice(result))}</p>" if chosen else ""
    compared = comparison_note(result)
    if compared:
        note += f"<p>{html.escape(compared)}</p>"
    return f"<table><tr><th>predictor</th>{head}<th>note</th></tr>{''.join(rows)}</table>{note}"


def _html_operating(result: EvalResult) -> str:
    rows = _operating_rows(result)
    if not rows:
        return "<p>No threshold was calibrated.</p>"
    body = "".join(f"<tr><th>{html.escape(k)}</th><td class='num'>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _html_card(result: EvalResult) -> str:
    card = result.report_card or {}
    text = str(card.get("text") or "")
    parts = [f"<pre class='card'>{html.escape(text)}</pre>"] if text else []
    dists = card.get("distributions") or {}
    if dists:
        labels = list(card.get("labels") or next(iter(dists.values())).keys())
        head = "".join(f"<th>{html.escape(str(lab))}</th>" for lab in labels)
        body = []
        for task, dist in dists.items():
            cells = "".join(f"<td class='num'>{_fmt(dist.get(lab), 2)}</td>" for lab in labels)
            n = (card.get("counts") or {}).get(task)
            body.append(
                f"<tr><th>{html.escape(str(task))}</th><td class='num'>{n if n is not None else ''}</td>{cells}</tr>"
            )
        parts.append(f"<table><tr><th>category</th><th>n</th>{head}</tr>{''.join(body)}</table>")
    return "".join(parts) or "<p>No report card.</p>"


def render_html(result: EvalResult, png: bytes | None = None) -> str:
    """The self-contained HTML report (plot embedded as base64 PNG, tables, report card)."""
    template = Template((Path(__file__).parent / "templates" / "report.html").read_text("utf-8"))
    img = ""
    if png is not None:
        img = f"<img alt='quality vs deferral' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    files = ", ".join(f"{k}: {html.escape(v)}" for k, v in result.paths.items() if k != "html")
    return template.substitute(
        title=html.escape(f"rpra eval: {result.dataset}"),
        dataset=html.escape(result.dataset),
        mode=html.escape(result.mode),
        n=result.n_items,
        dropped=result.n_dropped,
        weak=html.escape(result.weak),
        strong=html.escape(result.strong),
        scale=html.escape(result.scale),
        protocol=html.escape(result.protocol),
        warnings="".join(f"<p class='warning'><b>Warning:</b> {html.escape(w)}</p>\n" for w in result.warnings),
        plot=img,
        table=_html_table(result),
        operating=_html_operating(result),
        card=_html_card(result),
        timings=html.escape(timings),
        files=files,
        eval_id=html.escape(result.eval_id),
    )


def write_report(result: EvalResult, out_dir: str | Path, *, stem: str = "eval") -> dict[str, str]:
    """Write ``<stem>.png``, ``<stem>.html`` and ``<stem>.json`` into ``out_dir``.

    Returns:
        The paths written, also recorded in ``result.paths``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_png(result)
    png_path = out / f"{stem}.png"
    png_path.write_bytes(png)
    result.paths["png"] = str(png_path)
    html_path = out / f"{stem}.html"
    result.paths["html"] = str(html_path)
    json_path = out / f"{stem}.json"
    result.paths["json"] = str(json_path)
    html_path.write_text(render_html(result, png), encoding="utf-8")
    result.write_json(json_path)
    logger.info("wrote %s, %s and %s", png_path, html_path, json_path)
    return {"png": str(png_path), "html": str(html_path), "json": str(json_path)}
