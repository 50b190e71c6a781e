"""`rpra experiment` on scripted chat models: the split, the arms, joint judging, resume, figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli import experiment as experiment_cli
from rpra_agent.cli.app import app
from rpra_agent.evaluation.datasets.prompts import load_prompts
from rpra_agent.evaluation.experiment import split_items
from rpra_agent.testing import ScriptedChatModel, grade_logprobs

runner = CliRunner()


def judge_by_position(messages) -> str:
    """Grades by the position a response is shown at (great, ok, bad, ...): with the seeded order the labels vary."""
    n = str(messages[-1].content).count('<response id="')
    grades = ["great", "ok", "bad"]
    return json.dumps(
        {
            "verdicts": [
                {"response": i, "rationale": "r", "weakest": "none", "grade": grades[(i - 1) % 3]}
                for i in range(1, n + 1)
            ]
        }
    )


def prompts_file(tmp_path: Path, n: int = 8) -> Path:
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": f"{c}{i}", "prompt": f"{c} question {i}", "category": c} for c in ("math", "chat") for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_split_is_per_dataset_seeded_and_disjoint(tmp_path: Path) -> None:
    ds = load_prompts(prompts_file(tmp_path, 5))
    split = split_items(ds, 0.4, seed=1)
    assert split == split_items(ds, 0.4, seed=1) and split != split_items(ds, 0.4, seed=2)
    for cat in ("math", "chat"):
        assert sorted(v for k, v in split.items() if k.startswith(cat)) == ["test"] * 2 + ["train"] * 3


def test_experiment_runs_every_arm_judges_jointly_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = ScriptedChatModel(
        responses=["small says"],
        logprobs=grade_logprobs({"great": 0.6, "ok": 0.3, "bad": 0.1}),
        rpra_name="gguf:small.gguf",
    )
    tuned = ScriptedChatModel(responses=["ok"], logprobs=grade_logprobs({"ok": 0.8, "bad": 0.2}), rpra_name="tuned")
    judge = ScriptedChatModel(responses=[judge_by_position], rpra_name="judge-m")
    models = {"s": small, "l": ScriptedChatModel(responses=["large says"], rpra_name="large-m"), "j": judge, "t": tuned}
    monkeypatch.setattr(experiment_cli, "_model", lambda spec, what, base_url: models[spec])
    out = tmp_path / "out"
    args = ["experiment", "-d", str(prompts_file(tmp_path)), "--small", "s", "--large", "l", "--judge", "j",
            "--fine-tuned", "t", "--judge-method", "json", "--out", str(out)]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    for title in (
        "label accuracy / macro-F1",
        "relative improvement in accuracy over zero-shot",
        "defer at a calibrated threshold",
    ):
        assert title in res.output
    for arm in (
        "PA zero-shot",
        "PA report card",
        "PA fine-tuned",
        "RPRA zero-shot",
        "RPRA report card",
        "RPRA fine-tuned",
    ):
        assert arm in res.output
    assert len(judge.calls) == 16  # one joint call per prompt: PA small, RPRA small and large answers together
    assert all(str(c[-1].content).count('<response id="') == 3 for c in judge.calls)
    data = json.loads((out / "experiment.json").read_text())
    split = json.loads((out / "split.json").read_text())
    assert len(split["train"]) == len(split["test"]) == 8 and not set(split["train"]) & set(split["test"])
    assert {a["n_test"] for a in data["arms"]} == {8}
    assert data["datasets"] == ["chat", "math"] and {"mean", "chat", "math"} <= set(data["arms"][1]["improvement"])
    # every prediction prompt of an RPRA arm saw the small model's reasoning
    rpra_predictions = [
        c for c in small.calls if "Predicted grade:" in str(c[-1].content) and "<your_reasoning>" in str(c[-1].content)
    ]
    assert len(rpra_predictions) == 16 + 8  # zero-shot on every item, report card on the test items
    assert sum("<your_reasoning>" in str(c[-1].content) for c in tuned.calls) == 8  # the fine-tuned arm in RPRA
    sft = [json.loads(line) for line in (out / "sft" / "trl" / "train.jsonl").read_text().splitlines()]
    assert len(sft) == 16  # one example per paradigm and train item
    test_prompts = {f"{k[:-1]} question {k[-1]}" for k in split["test"]}
    assert not any(p in json.dumps(r) for r in sft for p in test_prompts)  # fine-tuning data: train items only
    assert (out / "experiment.html").exists() and (out / "experiment.png").exists()
    calls = (len(judge.calls), len(small.calls))
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert (len(judge.calls), len(small.calls)) == calls  # resumed: nothing answered, judged or predicted twice
    assert json.loads((out / "experiment.json").read_text())["arms"] == data["arms"]
    other = runner.invoke(app, [*args, "--test-fraction", "0.25"])
    assert other.exit_code == 2 and "different split" in other.output


def test_fine_tuned_arm_is_skipped_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = ScriptedChatModel(responses=["small says"], logprobs=grade_logprobs({"ok": 1.0}), rpra_name="s")
    models = {
        "s": small,
        "l": ScriptedChatModel(responses=["large"]),
        "j": ScriptedChatModel(responses=[judge_by_position]),
    }
    monkeypatch.setattr(experiment_cli, "_model", lambda spec, what, base_url: models[spec])
    res = runner.invoke(app, ["experiment", "-d", str(prompts_file(tmp_path, 3)), "--small", "s", "--large", "l", "--judge", "j",
                              "--paradigm", "pa", "--judge-method", "json", "--out", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert re.search(r"skipped pa/fine_tuned: no --fine-tuned model: train one on the train items", res.output)
    assert "RPRA" not in res.output


def test_a_fine_tune_trained_on_test_items_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = ScriptedChatModel(responses=["small says"], logprobs=grade_logprobs({"ok": 1.0}), rpra_name="s")
    tuned = ScriptedChatModel(responses=["ok"], logprobs=grade_logprobs({"ok": 1.0}), rpra_name="t")
    models = {
        "s": small,
        "l": ScriptedChatModel(responses=["large"]),
        "j": ScriptedChatModel(responses=[judge_by_position]),
        "t": tuned,
    }
    monkeypatch.setattr(experiment_cli, "_model", lambda spec, what, base_url: models[spec])
    prompts = prompts_file(tmp_path, 3)
    base = ["experiment", "-d", str(prompts), "--small", "s", "--large", "l", "--judge", "j", "--paradigm", "pa",
            "--judge-method", "json", "--predictor", "zero_shot"]  # fmt: skip
    first = runner.invoke(app, [*base, "--out", str(tmp_path / "a"), "--seed", "1"])
    assert first.exit_code == 0, first.output
    sft = tmp_path / "a" / "sft"
    same = runner.invoke(
        app, [*base, "--out", str(tmp_path / "b"), "--seed", "1", "--fine-tuned", "t", "--fine-tuned-data", str(sft)]
    )
    assert same.exit_code == 0, same.output  # trained on this split's train items: accepted
    other = runner.invoke(
        app, [*base, "--out", str(tmp_path / "c"), "--seed", "7", "--fine-tuned", "t", "--fine-tuned-data", str(sft)]
    )
    assert other.exit_code == 2 and "holds" in other.output and "test item" in other.output
