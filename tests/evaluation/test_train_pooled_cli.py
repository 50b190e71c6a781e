"""``rpra train-predictor --dataset A --dataset B``: datasets on different score scales pooled after normalisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.evaluation.datasets import save_dataset
from tests.evaluation.toy_data import toy_dataset

runner = CliRunner()

pytest.importorskip("rpra_agent.predictors.learned")


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_pooled_training_across_scales_and_its_artifact_in_rpra_eval(tmp_path: Path) -> None:
    ten = save_dataset(toy_dataset(36, seed=1, name="ten"), tmp_path / "ten.jsonl")  # scores 1-10
    binary = save_dataset(toy_dataset(36, seed=2, binary=True, name="bin"), tmp_path / "bin.jsonl")  # 0/1
    art = tmp_path / "pooled"
    code, text = _run(
        "train-predictor", "--dataset", str(ten), "--dataset", str(binary), "--out", str(art), "--C", "1.0",
        "--target", "small",
    )  # fmt: skip
    assert code == 0, text
    assert "pooled 2 datasets on a normalised 0-1 scale: ten [1, 10], bin [0, 1]" in text
    manifest = json.loads(next(art.glob("*.json")).read_text())
    assert "ten+bin" in json.dumps(manifest)
    # A pooled artifact ranks any dataset's items (in normalised units): a row, without grade distributions.
    code, text = _run(
        "eval", "-d", str(ten), "-o", str(tmp_path / "e"), "--folds", "3", "--db", "memory://",
        "--predictor", f"card,{art}",
    )  # fmt: skip
    assert code == 0, text
    data = json.loads((tmp_path / "e" / "eval.json").read_text())
    row = next(r for r in data["rows"] if r["name"] == "artifact:pooled")
    assert row["apgr"] is not None and row["accuracy"] is None and "normalised 0-1" in row["note"]


def test_train_predictor_bad_target_and_crossfit_of_many(tmp_path: Path) -> None:
    ten = save_dataset(toy_dataset(30, name="ten"), tmp_path / "ten.jsonl")
    code, text = _run("train-predictor", "--dataset", str(ten), "--out", str(tmp_path / "a"), "--target", "best")
    assert code == 2 and "--target must be auto, small, gain or no_worse" in text
    code, text = _run(
        "train-predictor", "--dataset", str(ten), "--dataset", str(ten), "--out", str(tmp_path / "b"),
        "--crossfit", "--C", "1.0",
    )  # fmt: skip
    assert code == 2 and "--crossfit scores one dataset" in text
