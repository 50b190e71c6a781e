import json
from collections import Counter

import pytest
from langchain_core.messages import HumanMessage

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.core.verdict import Verdict
from rpra_agent.feedback import collect_examples, export_sft, sft_messages
from rpra_agent.predictors import FineTunedPredictor
from rpra_agent.predictors.prompts import FINETUNE_SYSTEM_PROMPT
from rpra_agent.store import InMemoryDecisionStore
from rpra_agent.testing import ScriptedChatModel
from tests.feedback.builders import decision

SYSTEM = {"role": "system", "content": FINETUNE_SYSTEM_PROMPT}


def user(request, kind="answer"):
    """The fine-tuned prompt of a single-turn step: the request as the conversation, and the step's kind."""
    line = json.dumps({"role": "human", "content": request})
    return {"role": "user", "content": f'<conversation>\n{line}\n</conversation>\n<step kind="{kind}" />'}


def v(d, grade, subject="given", at="2026-11-21T00:00:00+00:00", judge="judge-m"):
    return Verdict(d.id, grade, None, "paper3", judge, "rpra-paper-1", "r", subject, created_at=at)


def small_log():
    store = InMemoryDecisionStore()
    kept = decision(request="What is 2+2?", response="4")
    deferred = decision(request="Prove Fermat's last theorem.", route="large", reason="predicted_low")
    unlabelled = decision(request="Deferred, never regenerated", route="large", reason="predicted_low")
    regraded = decision(request="Name a prime.")
    other_model = decision(request="from another small model", small_model="other-m")
    for d in (kept, deferred, unlabelled, regraded, other_model):
        store.add(d)
    store.add_verdicts(
        [
            v(kept, "great"),
            v(deferred, "great"),  # the large model's answer: not the small model's label
            v(deferred, "bad", subject="small"),
            v(unlabelled, "great"),
            v(regraded, "great", at="2026-11-01T00:00:00+00:00"),
            v(regraded, "ok"),  # newest wins
            v(other_model, "ok"),
            Verdict(kept.id, None, None, "paper3", "judge-m", "rpra-paper-1", "unjudged: x", "given"),
        ]
    )
    return store


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_writes_the_exact_records_in_both_formats(tmp_path):
    result = export_sft(small_log(), tmp_path, val_fraction=0.0, model="small-m")
    expected = [
        {"messages": [SYSTEM, user("What is 2+2?"), {"role": "assistant", "content": "great"}]},
        {"messages": [SYSTEM, user("Prove Fermat's last theorem."), {"role": "assistant", "content": "bad"}]},
        {"messages": [SYSTEM, user("Name a prime."), {"role": "assistant", "content": "ok"}]},
    ]
    assert read(tmp_path / "openai" / "train.jsonl") == expected
    assert read(tmp_path / "trl" / "train.jsonl") == expected
    assert (tmp_path / "openai" / "validation.jsonl").read_text() == ""
    assert (result.train, result.validation) == (3, 0)
    assert result.balance["all"] == {"great": 1, "bad": 1, "ok": 1}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["labels"] == ["bad", "ok", "great"] and len(manifest["splits"]["train"]) == 3
    assert (manifest["format"], manifest["prompt"]) == ("rpra-sft-2", "step-context-1")


def test_prompt_matches_what_the_fine_tuned_predictor_sends():
    model = ScriptedChatModel(responses=["ok"])
    FineTunedPredictor(model, method="text").predict(PredictionRequest(messages=(HumanMessage("Name a prime."),)))
    sent = [{"role": {"system": "system", "human": "user"}[m.type], "content": m.content} for m in model.calls[0]]
    assert sft_messages("Name a prime.", "ok")[:-1] == sent


def test_split_is_stratified_by_grade_and_reproducible(tmp_path):
    store = InMemoryDecisionStore()
    grades = ["great"] * 20 + ["ok"] * 10 + ["bad"] * 10
    for i, g in enumerate(grades):
        d = decision(request=f"request {i}")
        store.add(d)
        store.add_verdicts([v(d, g)])
    result = export_sft(store, tmp_path / "a", val_fraction=0.25, seed=3)
    assert result.stratified and (result.train, result.validation) == (30, 10)
    assert result.balance["validation"] == {"great": 5, "ok": 2, "bad": 3} or result.balance["validation"] == {
        "great": 5,
        "ok": 3,
        "bad": 2,
    }
    val = [r["messages"][-1]["content"] for r in read(tmp_path / "a" / "trl" / "validation.jsonl")]
    assert Counter(val) == Counter(result.balance["validation"])
    train_requests = {r["messages"][1]["content"] for r in read(tmp_path / "a" / "openai" / "train.jsonl")}
    val_requests = {r["messages"][1]["content"] for r in read(tmp_path / "a" / "openai" / "validation.jsonl")}
    assert not train_requests & val_requests and len(train_requests | val_requests) == 40
    export_sft(store, tmp_path / "b", val_fraction=0.25, seed=3)
    assert (tmp_path / "a" / "trl" / "train.jsonl").read_text() == (tmp_path / "b" / "trl" / "train.jsonl").read_text()


def test_too_few_examples_per_grade_fall_back_to_a_plain_split(tmp_path):
    store = InMemoryDecisionStore()
    for g in ["great", "great", "great", "bad"]:
        d = decision()
        store.add(d)
        store.add_verdicts([v(d, g)])
    result = export_sft(store, tmp_path, val_fraction=0.25)
    assert not result.stratified and (result.train, result.validation) == (3, 1)


def test_judge_filter_and_clear_errors(tmp_path):
    store = small_log()
    assert collect_examples(store, judge="nobody") == []
    assert len(collect_examples(store)) == 4  # every small model
    with pytest.raises(ConfigError, match="empty"):
        export_sft(InMemoryDecisionStore(), tmp_path)
    unjudged = InMemoryDecisionStore()
    unjudged.add(decision())
    with pytest.raises(ConfigError, match="rpra judge"):
        export_sft(unjudged, tmp_path)
    with pytest.raises(ConfigError, match="val_fraction"):
        export_sft(store, tmp_path, val_fraction=1.0)


def test_a_runs_steps_stay_on_one_side_of_the_split(tmp_path):
    """Steps of one agent run share a conversation: holding out some of them would leak it into validation."""
    store = InMemoryDecisionStore()
    grades = ["great", "ok", "bad"]
    for run in range(20):
        for step in range(3):
            d = decision(run_id=f"run-{run}", step=step, request=f"run {run} step {step}")
            store.add(d)
            store.add_verdicts([v(d, grades[(run + step) % 3])])
    result = export_sft(store, tmp_path / "a", val_fraction=0.25, seed=1)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["runs_kept_whole"] is True and result.stratified
    run_of = {d.id: d.run_id for d in store.decisions()}
    train_runs = {run_of[i] for i in manifest["splits"]["train"]}
    val_runs = {run_of[i] for i in manifest["splits"]["validation"]}
    assert not train_runs & val_runs and len(train_runs | val_runs) == 20
    assert result.train + result.validation == 60 and 9 <= result.validation <= 21  # whole runs, about a quarter
    assert set(result.balance["validation"]) == {"great", "ok", "bad"}
    export_sft(store, tmp_path / "b", val_fraction=0.25, seed=1)
    assert (tmp_path / "a" / "manifest.json").read_text() == (tmp_path / "b" / "manifest.json").read_text()
    one_run = InMemoryDecisionStore()
    for step in range(4):
        d = decision(run_id="only", step=step)
        one_run.add(d)
        one_run.add_verdicts([v(d, "great")])
    assert (export_sft(one_run, tmp_path / "c", val_fraction=0.25).validation) == 0
