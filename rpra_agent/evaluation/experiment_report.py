"""The experiment's report: Rich tables, ``experiment.json``, a PNG plot and a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["accuracy_table", "deferral_table", "improvement_table", "write_experiment_report"]

logger = logging.getLogger(__name__)

_NAMES = {"zero_shot": "zero-shot", "report_card": "report card", "fine_tuned": "fine-tuned"}


def arm_name(arm: dict[str, Any]) -> str:
    """``PA report card`` etc."""
    return f"{arm['paradigm'].upper()} {_NAMES.get(arm['predictor'], arm['predictor'])}"


def _num(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.0%}" if pct else f"{value:.2f}"


def _rows(result: dict[str, Any]) -> list[str]:
    return [*result["datasets"], "overall"]


def accuracy_table(result: dict[str, Any]) -> Any:
    """Exact-match label accuracy and macro-F1 per dataset (rows) and arm (columns)."""
    from rich.table import Table

    table = Table(title=f"label accuracy / macro-F1 vs the judge, test items ({result['judge']})")
    table.add_column("dataset", style="bold")
    table.add_column("n", justify="right")
    for arm in result["arms"]:
        table.add_column(arm_name(arm), justify="right")
    for ds in _rows(result):
        n = next((a["scores"][ds]["n"] for a in result["arms"] if ds in a["scores"]), 0)
        cells = []
        for arm in result["arms"]:
            s = arm["scores"].get(ds)
            cells.append("-" if s is None else f"{s['accuracy']:.2f} / {s['macro_f1']:.2f}")
        table.add_row(ds, str(n), *cells, style="bold" if ds == "overall" else None)
    return table


def improvement_table(result: dict[str, Any]) -> Any:
    """Relative accuracy improvement over zero-shot per dataset, and its mean (the paper's headline)."""
    from rich.table import Table

    arms = [a for a in result["arms"] if a["predictor"] != "zero_shot"]
    table = Table(title="relative improvement in accuracy over zero-shot (same paradigm)")
    table.add_column("dataset", style="bold")
    for arm in arms:
        table.add_column(arm_name(arm), justify="right")
    for ds in [*result["datasets"], "mean"]:
        table.add_row(
            ds, *(_num(a["improvement"].get(ds), pct=True) for a in arms), style="bold" if ds == "mean" else None
        )
    return table


def deferral_table(result: dict[str, Any]) -> Any:
    """Deferring below a threshold calibrated to the target rate (two-fold cross-fitted on the test items)."""
    from rich.table import Table

    target = next((a["deferral"].get("target_rate") for a in result["arms"] if "target_rate" in a["deferral"]), None)
    table = Table(title=f"defer at a calibrated threshold (target rate {_num(target)}), judge scores")
    for col in (
        "arm",
        "deferred",
        "quality",
        "always small",
        "always large",
        "PGR",
        "large calls saved",
        "large tokens saved",
    ):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for arm in result["arms"]:
        d = arm["deferral"]
        if "deferral_rate" not in d:
            table.add_row(arm_name(arm), d.get("note", "-"))
            continue
        table.add_row(
            arm_name(arm),
            f"{d['deferral_rate']:.0%}",
            _num(d["quality"]),
            _num(d["quality_always_small"]),
            _num(d["quality_always_large"]),
            _num(d["pgr"]),
            f"{d['large_calls_saved']:.0%}",
            f"{d['large_tokens_saved']} of {d['large_tokens_always_large']}",
        )
    return table


def _plot(result: dict[str, Any]) -> bytes | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'rpra-agent[eval]'): no plot")
        return None
    rows = _rows(result)
    arms = result["arms"]
    width = 0.8 / max(1, len(arms))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(rows) * max(1, len(arms)) / 2), 4.0))
    for i, arm in enumerate(arms):
        values = [arm["scores"].get(ds, {}).get("accuracy", 0.0) for ds in rows]
        ax.bar([r + i * width for r in range(len(rows))], values, width, label=arm_name(arm))
    ax.axhline(1 / len(result["labels"]), color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks([r + width * (len(arms) - 1) / 2 for r in range(len(rows))], rows)
    ax.set_ylabel("label accuracy vs the judge")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"{result['small']} predicting {result['judge']}'s grade")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(result: dict[str, Any], png: bytes | None) -> str:
    arms = result["arms"]
    acc = [
        [
            ds,
            *(
                "-"
                if ds not in a["scores"]
                else f"{a['scores'][ds]['accuracy']:.2f} / {a['scores'][ds]['macro_f1']:.2f}"
                for a in arms
            ),
        ]
        for ds in _rows(result)
    ]
    others = [a for a in arms if a["predictor"] != "zero_shot"]
    imp = [[ds, *(_num(a["improvement"].get(ds), pct=True) for a in others)] for ds in [*result["datasets"], "mean"]]
    parts = [
        f"<h1>RPRA experiment {html.escape(result['experiment'])}</h1>",
        f"<p>small {html.escape(result['small'])}, large {html.escape(result['large'])}, judge "
        f"{html.escape(result['judge'])}; {result['split']['train']} train / {result['split']['test']} test items "
        f"(seed {result['split']['seed']}).</p>",
        "<h2>Label accuracy / macro-F1 (test items)</h2>",
        _html_table(["dataset", *(arm_name(a) for a in arms)], acc),
        "<h2>Relative improvement over zero-shot</h2>",
        _html_table(["dataset", *(arm_name(a) for a in others)], imp),
    ]
    if png:
        parts.append(f'<img alt="accuracy per dataset" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    parts.append("<h2>Confusion matrices (overall; rows: judge, columns: predicted)</h2>")
    for a in arms:
        conf = a["scores"].get("overall", {}).get("confusion", {})
        rows = [[t, *(str(conf.get(t, {}).get(p, 0)) for p in result["labels"])] for t in result["labels"]]
        parts += [f"<h3>{html.escape(arm_name(a))}</h3>", _html_table(["judge \\ predicted", *result["labels"]], rows)]
    if result.get("skipped"):
        parts.append("<h2>Skipped arms</h2><ul>")
        parts += [f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in result["skipped"].items()]
        parts.append("</ul>")
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>RPRA experiment</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def write_experiment_report(result: dict[str, Any], out: Path, *, figures: bool = True) -> dict[str, str]:
    """Write ``experiment.json`` (always), ``experiment.png`` and ``experiment.html``; return their paths."""
    paths = {"json": str(out / "experiment.json")}
    if figures:
        png = _plot(result)
        if png is not None:
            (out / "experiment.png").write_bytes(png)
            paths["plot"] = str(out / "experiment.png")
        (out / "experiment.html").write_text(_html(result, png), encoding="utf-8")
        paths["html"] = str(out / "experiment.html")
    (out / "experiment.json").write_text(json.dumps({**result, "paths": paths}, indent=2) + "\n", encoding="utf-8")
    return paths
