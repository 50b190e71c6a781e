from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli import eval as eval_cli
from rpra_agent.cli.app import app
from rpra_agent.testing import ScriptedChatModel, grade_logprobs

runner = CliRunner()


def _judge_reply(messages: list[Any]) -> str:
    text = str(messages[-1].content)
    n = text.count('<response id="')
    return json.dumps({"verdicts": [{"response": i, "grade": "ok"} for i in range(1, n + 1)]})


def test_rpra_eval_live_wires_models_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = {
        "small": ScriptedChatModel(
            responses=["small says"], logprobs=grade_logprobs({"great": 0.7, "ok": 0.2, "bad": 0.1}), rpra_name="s"
        ),
        "large": ScriptedChatModel(responses=["large says"], rpra_name="l"),
        "judge": ScriptedChatModel(responses=[_judge_reply], rpra_name="j"),
    }
    monkeypatch.setattr(eval_cli, "_model", lambda spec, what: models[spec])
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "category": "a" if i % 2 else "b"}) + "\n" for i in range(6))
    )
    args = [
        "eval",
        "--dataset",
        str(prompts),
        "--small",
        "small",
        "--large",
        "large",
        "--judge",
        "judge",
        "--out",
        str(tmp_path / "o"),
        "--folds",
        "2",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "zero_shot" in result.output and "report_card" in result.output and "oracle" in result.output
    judged = len(models["judge"].calls)
    assert judged == 6  # one joint call (small + large answer) per prompt
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len(models["judge"].calls) == judged  # nothing judged twice
    assert (tmp_path / "o" / "live.html").exists()


def test_rpra_eval_live_rpra_paradigm_agreement_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = ScriptedChatModel(responses=["thinking or answering"], logprobs=grade_logprobs({"ok": 1.0}), rpra_name="s")
    models = {
        "small": small,
        "large": ScriptedChatModel(responses=["x"]),
        "judge": ScriptedChatModel(responses=[_judge_reply]),
    }
    monkeypatch.setattr(eval_cli, "_model", lambda spec, what: models[spec])
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(4)))
    result = runner.invoke(
        app,
        [
            "eval",
            "-d",
            str(prompts),
            "--small",
            "small",
            "--large",
            "large",
            "--judge",
            "judge",
            "--no-large",
            "--paradigm",
            "rpra",
            "--folds",
            "2",
            "--db",
            "memory://",
            "--out",
            str(tmp_path / "o"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    zero_shot = next(r for r in data["rows"] if r["name"] == "zero_shot")
    assert zero_shot["accuracy"] == 1.0 and zero_shot["apgr"] is None  # predicted ok, judged ok; no routing
    assert len(models["large"].calls) == 0
    # RPRA: the small model reasoned, reasoned again and answered for each prompt (plus predictions).
    assert sum("think step by step" in str(c[0].content) for c in small.calls) == 4
    bad = runner.invoke(
        app,
        [
            "eval",
            "-d",
            str(prompts),
            "--small",
            "small",
            "--large",
            "large",
            "--judge",
            "judge",
            "--paradigm",
            "verify",
            "--db",
            "memory://",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert bad.exit_code == 2 and "paradigm" in bad.output
