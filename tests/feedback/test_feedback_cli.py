"""`rpra judge`, `rpra report-card build|show` and `rpra export-sft` on real SQLite (and PostgreSQL) logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from langchain_core.messages import HumanMessage
from rich.console import Console
from typer.testing import CliRunner

from rpra_agent import build_rpra_graph
from rpra_agent.cli import feedback as cli
from rpra_agent.cli.app import app
from rpra_agent.store import open_store
from rpra_agent.testing import FixedPredictor, ScriptedChatModel
from tests.feedback.builders import decision, reply

runner = CliRunner()
HIGH, LOW = {"great": 0.9, "ok": 0.1}, {"bad": 0.9, "ok": 0.1}


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(cli, "console", Console(width=200))
    monkeypatch.setattr(cli, "err", Console(width=200, stderr=True))
    monkeypatch.delenv("RPRA_JUDGE_MODEL", raising=False)


def run_agent(url, tmp_path):
    """Five real graph runs into the store: three answered small, two deferred."""
    store = open_store(url, spool_path=str(tmp_path / "spool.jsonl"))
    small = ScriptedChatModel(responses=["the small answer"], rpra_name="small-m")
    large = ScriptedChatModel(responses=["the large answer"], rpra_name="large-m")
    for i, dist in enumerate([HIGH, HIGH, HIGH, LOW, LOW]):
        graph = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(dist), store=store)
        graph.invoke(
            {"messages": [HumanMessage(f"question number {i}")]},
            config={"configurable": {"rpra_task": "math" if i % 2 else "chat"}},
        )
    store.close()


def counting_judge(grade="great"):
    def grade_all(messages):
        return reply(*([grade] * messages[1].content.count('<response id="')), weakest="accuracy")

    return ScriptedChatModel(responses=[grade_all], rpra_name="judge-m")


def fake_models(monkeypatch, judge_model, small_model=None):
    def load(spec, base_url=None):
        return {"judge:spec": judge_model, "small:spec": small_model}[spec]

    monkeypatch.setattr(cli, "_load_model", load)


def test_judge_report_card_and_export_on_a_real_sqlite_log(sqlite_url, tmp_path, monkeypatch):
    run_agent(sqlite_url, tmp_path)
    fake_models(monkeypatch, counting_judge("ok"), ScriptedChatModel(responses=["regenerated"], rpra_name="small-m"))
    res = runner.invoke(
        app, ["judge", "--db", sqlite_url, "--judge", "judge:spec", "--regenerate-small", "small:spec", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert "judged 5 decisions: 7 verdicts with a grade, 0 unjudged, 2 small answers regenerated" in res.output
    store = open_store(sqlite_url, spool_path=str(tmp_path / "spool2.jsonl"))
    try:
        verdicts = store.verdicts()
        decisions = {d.id: d for d in store.decisions()}
        assert len(decisions) == 5 and len(verdicts) == 7
        assert {(v.judge, v.rubric_version, v.grade) for v in verdicts} == {("judge-m", "rpra-reconstructed-1", "ok")}
        small = [v for v in verdicts if v.subject == "small"]
        assert len(small) == 2 and all(decisions[v.decision_id].deferred for v in small)
    finally:
        store.close()
    again = runner.invoke(app, ["judge", "--db", sqlite_url, "--judge", "judge:spec", "--no-progress"])
    assert again.exit_code == 0 and "nothing to judge" in again.output

    built = runner.invoke(app, ["report-card", "build", "--db", sqlite_url, "--model", "small-m"])
    assert built.exit_code == 0, built.output
    assert "small-m · version 1" in built.output
    assert "Report card of model small-m: 5 past steps graded by judge judge-m" in built.output
    assert "question number" not in built.output and "small answer" not in built.output
    shown = runner.invoke(app, ["report-card", "show", "--db", sqlite_url, "--model", "small-m", "--task", "math"])
    assert shown.exit_code == 0 and 'task "math", answers (n=2): great 0%, ok 100%, bad 0%' in shown.output
    payload = json.loads(
        runner.invoke(app, ["report-card", "show", "--db", sqlite_url, "--model", "small-m", "--json"]).stdout
    )
    assert payload["version"] == 1 and {s["task"] for s in payload["sections"]} == {"*", "math", "chat"}

    out = tmp_path / "sft"
    exported = runner.invoke(app, ["export-sft", "--db", sqlite_url, "--out", str(out), "--val-fraction", "0"])
    assert exported.exit_code == 0, exported.output
    assert "train" in exported.output and "not stratified" in exported.output
    rows = [json.loads(line) for line in (out / "openai" / "train.jsonl").read_text().splitlines()]
    prompts = sorted(r["messages"][1]["content"] for r in rows)
    assert [json.loads(p.splitlines()[1])["content"] for p in prompts] == [f"question number {i}" for i in range(5)]
    assert {r["messages"][2]["content"] for r in rows} == {"ok"}


def test_judge_with_a_real_llama_cpp_judge(sqlite_url, tmp_path):
    pytest.importorskip("llama_cpp")
    from rpra_agent.testing.gguf import write_scripted_gguf

    run_agent(sqlite_url, tmp_path)
    answer = json.dumps({"verdicts": [{"response": 1, "rationale": "Clear.", "weakest": "none", "grade": "great"}]})
    judge = write_scripted_gguf(tmp_path / "judge.gguf", reply=answer)
    res = runner.invoke(
        app,
        [
            "judge",
            "--db",
            sqlite_url,
            "--judge",
            f"gguf:{judge}",
            "--judge-method",
            "json",
            "--sample",
            "2",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    store = open_store(sqlite_url, spool_path=str(tmp_path / "spool2.jsonl"))
    try:
        verdicts = store.verdicts()
        assert len(verdicts) == 2 and {(v.grade, v.judge, v.rationale) for v in verdicts} == {
            ("great", "gguf:judge.gguf", "Clear.")
        }
    finally:
        store.close()


def test_a_judge_that_never_answers_properly_fails_the_command(sqlite_url, tmp_path, monkeypatch):
    run_agent(sqlite_url, tmp_path)
    fake_models(monkeypatch, ScriptedChatModel(responses=["I refuse"], rpra_name="judge-m"))
    res = runner.invoke(app, ["judge", "--db", sqlite_url, "--judge", "judge:spec", "--retries", "0", "--no-progress"])
    assert res.exit_code == 1
    assert "judged 5 decisions: 0 verdicts with a grade, 5 unjudged" in res.output
    assert "the judge produced no usable verdict" in res.output


def test_clear_errors_on_an_empty_log_or_a_missing_judge(sqlite_url, tmp_path):
    res = runner.invoke(app, ["judge", "--db", sqlite_url])
    assert res.exit_code == 2 and "no judge configured" in res.output and "RPRA_JUDGE_MODEL" in res.output
    # a mistyped path is an error, and the read commands do not create the file
    for args in (["judge", "--judge", "openai:x"], ["report-card", "build"], ["export-sft", "--out", str(tmp_path)]):
        res = runner.invoke(app, [*args, "--db", sqlite_url])
        assert res.exit_code == 2 and "does not exist" in res.output, res.output
    assert not (tmp_path / "log.db").exists()
    assert runner.invoke(app, ["db", "upgrade", "--db", sqlite_url]).exit_code == 0  # an empty log
    res = runner.invoke(app, ["judge", "--db", sqlite_url, "--judge", "openai:x"])
    assert res.exit_code == 2 and "is empty" in res.output
    for args in (
        ["report-card", "build", "--db", sqlite_url],
        ["export-sft", "--db", sqlite_url, "--out", str(tmp_path / "o")],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and "empty" in res.output, res.output
    res = runner.invoke(app, ["report-card", "show", "--db", sqlite_url, "--model", "small-m"])
    assert res.exit_code == 2 and "no report card stored for model 'small-m'" in res.output
    res = runner.invoke(app, ["report-card", "show", "--db", sqlite_url])
    assert res.exit_code == 2 and "--model" in res.output
    res = runner.invoke(
        app, ["finetune", "--data", str(tmp_path / "none"), "--base-model", "x", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "rpra export-sft" in res.output
    res = runner.invoke(app, ["judge", "--db", sqlite_url, "--judge", "openai:x", "--scale", "five"])
    assert res.exit_code == 2 and "unknown grade scale" in res.output


def test_unjudged_log_and_unknown_model_errors(sqlite_url, tmp_path, monkeypatch):
    run_agent(sqlite_url, tmp_path)
    res = runner.invoke(app, ["report-card", "build", "--db", sqlite_url])
    assert res.exit_code == 2 and "rpra judge" in res.output
    res = runner.invoke(app, ["export-sft", "--db", sqlite_url, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "rpra judge" in res.output
    res = runner.invoke(app, ["judge", "--db", sqlite_url, "--judge", "gguf:/no/such/judge.gguf"])
    assert res.exit_code == 2 and "cannot load the judge model" in res.output


def test_missing_judge_through_the_installed_console_script(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RPRA_JUDGE_MODEL"}
    db = f"sqlite:///{tmp_path / 'x.db'}"
    proc = subprocess.run(
        [sys.executable, "-c", "from rpra_agent.cli import main; main()", "judge", "--db", db],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2 and "no judge configured" in proc.stderr


@pytest.mark.postgres
def test_judge_and_cards_on_postgresql(postgres_url, tmp_path, monkeypatch):
    store = open_store(postgres_url, spool_path=str(tmp_path / "spool.jsonl"))
    ds = [decision(), decision(route="large", reason="predicted_low"), decision(task="code")]
    for d in ds:
        store.add(d)
    store.close()
    fake_models(monkeypatch, counting_judge("great"), ScriptedChatModel(responses=["again"], rpra_name="small-m"))
    res = runner.invoke(
        app,
        ["judge", "--db", postgres_url, "--judge", "judge:spec", "--regenerate-small", "small:spec", "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    built = runner.invoke(app, ["report-card", "build", "--db", postgres_url, "--model", "small-m"])
    assert built.exit_code == 0 and "3 past steps" in built.output, built.output
    exported = runner.invoke(
        app, ["export-sft", "--db", postgres_url, "--out", str(tmp_path / "sft"), "--val-fraction", "0"]
    )
    assert exported.exit_code == 0, exported.output
    assert len((tmp_path / "sft" / "trl" / "train.jsonl").read_text().splitlines()) == 3
