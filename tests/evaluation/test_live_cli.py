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


def _graded_by_prompt(good: str, bad: str) -> Any:
    """A judge model: the small answer to a "hard" prompt gets ``bad``, every other answer ``good``."""

    def reply(messages: list[Any]) -> str:
        text = str(messages[-1].content)
        hard = "hard" in text.split("<response")[0]
        verdicts = []
        for i in range(1, text.count('<response id="') + 1):
            body = text.split(f'<response id="{i}">')[1].split("</response>")[0]
            verdicts.append({"response": i, "grade": bad if hard and "small says" in body else good})
        return json.dumps({"verdicts": verdicts})

    return reply


def _router_models(good: str, bad: str, predicted: dict[str, float]) -> dict[str, ScriptedChatModel]:
    return {
        "small": ScriptedChatModel(responses=["small says"], logprobs=grade_logprobs(predicted), rpra_name="s"),
        "large": ScriptedChatModel(responses=["large says"], rpra_name="l"),
        "judge": ScriptedChatModel(responses=[_graded_by_prompt(good, bad)], rpra_name="j"),
    }


def _live_args(tmp_path: Path, *extra: str, n: int = 12) -> list[str]:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"{'hard' if i % 2 else 'easy'} q{i}"}) + "\n" for i in range(n)))
    return [
        "eval", "-d", str(prompts), "--small", "small", "--large", "large", "--judge", "judge",
        "--out", str(tmp_path / "o"), "--folds", "3", *extra,
    ]  # fmt: skip


def test_rpra_eval_live_predictor_and_operating_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rpra_agent.predictors.crossfit")
    models = _router_models("great", "bad", {"great": 0.7, "ok": 0.2, "bad": 0.1})
    monkeypatch.setattr(eval_cli, "_model", lambda spec, what: models[spec])
    args = _live_args(tmp_path, "--predictor", "tfidf_request,length", "--operating-router", "length")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "operating point: answer_length" in flat and "answer_length (--operating-router length)" in flat
    data = json.loads((tmp_path / "o" / "live.json").read_text())
    rows = {r["name"]: r for r in data["rows"]}
    assert rows["tfidf"]["apgr"] == pytest.approx(rows["oracle"]["apgr"])  # it learned that hard prompts fail
    assert "tfidf_draft" not in rows and "learned" not in rows  # only what --predictor asked for
    op = data["operating"]
    assert op["predictor"] == "answer_length" and op["metric"] == "keep_score" and op["details"]["computed"] is True


def test_rpra_eval_live_evaluates_a_trained_artifact_on_a_ten_point_judge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    learned = pytest.importorskip("rpra_agent.predictors.learned")
    from tests.evaluation.toy_data import toy_dataset

    art = learned.LearnedPredictor(mode="request", C=1.0).fit_dataset(toy_dataset(30)).save(tmp_path / "art10")
    models = _router_models("9", "2", {"8": 1.0})
    monkeypatch.setattr(eval_cli, "_model", lambda spec, what: models[spec])
    args = _live_args(tmp_path, "--scale", "ten", "--predictor", f"tfidf,{art}", "--operating-router", "tfidf")
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {r["name"]: r for r in data["rows"]}
    assert data["scale"] == "ten"
    assert rows["artifact:art10"]["apgr"] is not None and "not cross-fitted" in rows["artifact:art10"]["note"]
    assert rows["tfidf"]["apgr"] == pytest.approx(rows["oracle"]["apgr"]) and rows["tfidf"]["accuracy"] is not None
    assert data["operating"]["predictor"] == "tfidf" and data["operating"]["metric"] == "expected_score"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--predictor", "vibes"), "unknown --predictor 'vibes'"),
        (("--operating-router", "oracle"), "unknown --operating-router 'oracle' (it reads the recorded scores)"),
        (("--predictor", "card", "--operating-router", "tfidf"), "unknown --operating-router 'tfidf'"),
        (("--no-large", "--operating-router", "report_card"), "drop --no-large"),
        (("--predictor", "ARTIFACT"), "was trained on score scale 'ten'"),
    ],
)
def test_rpra_eval_live_bad_router_options_exit_2_before_any_model_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...], message: str
) -> None:
    if "ARTIFACT" in extra:
        learned = pytest.importorskip("rpra_agent.predictors.learned")
        from tests.evaluation.toy_data import toy_dataset

        art = learned.LearnedPredictor(mode="request", C=1.0).fit_dataset(toy_dataset(30)).save(tmp_path / "art10")
        extra = ("--predictor", str(art))  # trained on 1-10 scores; the judge grades on paper3
    models = _router_models("great", "bad", {"great": 1.0})
    monkeypatch.setattr(eval_cli, "_model", lambda spec, what: models[spec])
    result = runner.invoke(app, _live_args(tmp_path, *extra))
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert all(m.calls == [] for m in models.values())
