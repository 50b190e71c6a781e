"""A weak model that does not score below the strong one is said beside the figures (they turn over)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.evaluation.datasets import save_dataset
from tests.evaluation.toy_data import STRONG, WEAK, toy_dataset

runner = CliRunner()


def test_strength_warning_only_when_the_weak_model_leads() -> None:
    ds = toy_dataset(30)
    assert ds.strength_warning() is None
    swapped = replace(ds, weak=ds.strong, strong=ds.weak)
    warning = swapped.strength_warning()
    assert warning is not None and f"{STRONG!r} scores" in warning and "--weak/--strong" in warning


def test_rpra_eval_and_convert_warn_about_swapped_models(tmp_path: Path) -> None:
    ds = toy_dataset(30)
    swapped = save_dataset(replace(ds, weak=ds.strong, strong=ds.weak), tmp_path / "swapped.jsonl")
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", "--dataset", str(swapped), "--out", str(out), "--predictor", "length"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning:" in text and "PGR and APGR assume the strong model leads" in text
    report = json.loads((out / "eval.json").read_text())
    assert len(report["warnings"]) == 1 and "meaningless" in report["warnings"][0]
    assert "Warning:" in (out / "eval.html").read_text()
    fine = save_dataset(ds, tmp_path / "fine.jsonl")
    result = runner.invoke(
        app, ["eval", "--dataset", str(fine), "--out", str(tmp_path / "o2"), "--predictor", "length"]
    )
    assert result.exit_code == 0 and "warning:" not in result.output
    assert json.loads((tmp_path / "o2" / "eval.json").read_text())["warnings"] == []
    # the converter says so as soon as the file is written
    table = tmp_path / "wide.csv"
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt", "a", "a_score", "b", "b_score"])
        for i, item in enumerate(ds.items):
            writer.writerow([f"{item.prompt} {i}", "x", item.responses[WEAK].score, "y", item.responses[STRONG].score])
    args = ["data", "convert", str(table), "--out", str(tmp_path / "c.jsonl"), "--prompt-col", "prompt"]
    args += ["--model", "a=a:a_score", "--model", "b=b:b_score", "--score-range", "1,10"]
    result = runner.invoke(app, [*args, "--weak", "b", "--strong", "a"])
    assert result.exit_code == 0 and "warning:" in result.output and "'b' scores" in " ".join(result.output.split())
    result = runner.invoke(app, [*args, "--weak", "a", "--strong", "b"])
    assert result.exit_code == 0 and "warning:" not in result.output
