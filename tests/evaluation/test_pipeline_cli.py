from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.evaluation.datasets import load_dataset, save_dataset

runner = CliRunner()


def test_rpra_eval_replays_a_dataset_file(tmp_path: Path) -> None:
    path = save_dataset(load_dataset("gsm8k").subset(range(60)), tmp_path / "slice.jsonl")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "eval",
            "--dataset",
            str(path),
            "--out",
            str(out),
            "--folds",
            "3",
            "--target-rate",
            "0.3",
            "--no-learned",
            "--price-table",
            "mistralai/Mixtral-8x7B-Instruct-v0.1=0.0006/1k,gpt-4-1106-preview=0.03/1k",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "oracle" in result.output and "answer_length" in result.output and "operating point" in result.output
    assert "cost (graph / small / large)" in result.output
    for name in ("eval.db", "eval.png", "eval.html", "eval.json"):
        assert (out / name).exists()
    data = json.loads((out / "eval.json").read_text())
    assert data["n_items"] == 60 and data["operating"]["cost"] is not None


def test_rpra_eval_json_output(tmp_path: Path) -> None:
    path = save_dataset(load_dataset("mt-bench").subset(range(30)), tmp_path / "mt.jsonl")
    result = runner.invoke(
        app,
        [
            "eval",
            "-d",
            str(path),
            "-o",
            str(tmp_path / "o"),
            "--folds",
            "3",
            "--no-learned",
            "--json",
            "--db",
            "memory://",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {r["name"] for r in data["rows"]} >= {"report_card", "random", "oracle"}


def test_rpra_eval_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"rpra_dataset": {"weak": "a", "strong": "b", "score_range": [1, 10]}}\n{"id": 1}\n')
    result = runner.invoke(app, ["eval", "--dataset", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "line 2" in result.output and "prompt" in result.output
    result = runner.invoke(app, ["eval", "--small", "gguf:/x.gguf", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--small, --large and --judge together" in result.output
    result = runner.invoke(app, ["eval", "--dataset", "nope", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "bundled" in result.output
    result = runner.invoke(app, ["eval", "--threshold", "5", "--target-rate", "0.5", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "choose one" in result.output
    # Ten items that repeat one prompt are one conversation: nothing to cross-fit, and exit 2 says why.
    same = tmp_path / "same.jsonl"
    rows = [{"rpra_dataset": {"weak": "a", "strong": "b", "score_range": [0, 1]}}]
    rows += [{"id": i, "prompt": "hi", "responses": {"a": {"score": i % 2}, "b": {"score": 1}}} for i in range(10)]
    same.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["eval", "--dataset", str(same), "--out", str(tmp_path / "o2")])
    assert result.exit_code == 2 and "only 1 group(s)" in result.output and "first user message" in result.output
    # Recordings of the small model alone: nothing to route between, said with the counts, for every command.
    small_only = tmp_path / "small-only.jsonl"
    rows = [{"rpra_dataset": {"weak": "a", "strong": "b", "score_range": [0, 1]}}]
    rows += [{"id": i, "prompt": f"q{i}", "responses": {"a": {"text": "x" * i, "score": i % 2}}} for i in range(10)]
    small_only.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for args in (
        ["eval", "--dataset", str(small_only), "--out", str(tmp_path / "o3")],
        ["calibrate", "--dataset", str(small_only), "--predictor", "length", "--target-rate", "0.3"],
        ["train-predictor", "--dataset", str(small_only), "--crossfit", "--out", str(tmp_path / "a")],
    ):
        result = runner.invoke(app, args)
        text = " ".join(result.output.split())
        assert result.exit_code == 2, (args, text)
        assert "'small-only' has no item scored for both models" in text and "strong 'b' on 0" in text, text
