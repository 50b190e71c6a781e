"""What the step records and what each stage sees (issue: the RPRA step, written once)."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from rpra_agent import ThresholdPolicy, ZeroShotPredictor, build_rpra_graph, decisions_from_state
from rpra_agent.core.step_prompts import REASON_PROMPT
from rpra_agent.testing import FixedPredictor, InMemoryDecisionStore, ScriptedChatModel, grade_logprobs

HIGH = {"great": 0.9, "ok": 0.1}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def call() -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}])


def test_rpra_second_reasoning_sees_the_prediction_and_the_verdict():
    small = ScriptedChatModel(responses=["first thoughts", "second thoughts", "five"], rpra_name="small")
    predictor = FixedPredictor({"great": 0.7, "ok": 0.2, "bad": 0.1})
    g = build_rpra_graph(small=small, large=ScriptedChatModel(responses=["x"]), predictor=predictor, paradigm="rpra")
    out = g.invoke({"messages": [HumanMessage("2+3?")]})
    first, second, answer = small.calls
    assert REASON_PROMPT in first[0].content
    system = second[0].content
    assert "first thoughts" in system and "'great'" in system and "acceptable grade 0.90" in system  # 0.7 + 0.2
    assert "policy lets you take this step yourself" in system
    assert "second thoughts" in answer[0].content  # the answer sees the second reasoning
    (d,) = decisions_from_state(out)
    assert set(d.legs) == {"reason", "predict", "reason_again", "small"}
    assert predictor.requests[0].reasoning == "first thoughts"


def test_rpra_plans_after_reasoning_and_a_tool_step_records_the_action_threshold():
    small = ScriptedChatModel(
        responses=["I should add", "add it", call(), "sum", "done", "five"], rpra_name="small", plans=["add", "answer"]
    )
    predictor = FixedPredictor(HIGH)
    g = build_rpra_graph(
        small=small,
        large=ScriptedChatModel(responses=["x"]),
        predictor=predictor,
        paradigm="rpra",
        tools=[add],
        policy=ThresholdPolicy(0.5, action_threshold=0.8),
    )
    out = g.invoke({"messages": [HumanMessage("2+3?")]})
    d0, d1 = decisions_from_state(out)
    assert (d0.kind, d0.threshold, d0.metadata["plan"], d0.metadata["planned_kind"]) == ("action", 0.8, "add", "action")
    assert (d1.kind, d1.threshold, d1.metadata["plan"]) == ("answer", 0.5, "answer")
    assert predictor.requests[0].kind == "action" and predictor.requests[1].kind == "answer"
    assert "I should add" in small.plan_prompts[0][0].content  # the plan is made in the light of the first reasoning
    assert d0.metadata["policy"]["action_threshold"] == 0.8


def test_a_multi_step_tool_run_has_a_leg_per_model_call_with_real_prediction_tokens():
    small = ScriptedChatModel(responses=[call(), "the sum is 5"], rpra_name="small")
    judge_like = ScriptedChatModel(responses=["great"], logprobs=grade_logprobs(HIGH), rpra_name="predictor-model")
    store = InMemoryDecisionStore()
    g = build_rpra_graph(
        small=small,
        large=ScriptedChatModel(responses=["x"]),
        predictor=ZeroShotPredictor(judge_like),
        tools=[add],
        store=store,
    )
    out = g.invoke({"messages": [HumanMessage("2+3?")]})
    d0, d1 = decisions_from_state(out)
    for d in (d0, d1):
        assert set(d.legs) == {"plan", "predict", "small"}
        assert d.legs["predict"].model == "predictor-model"
        assert d.legs["predict"].input_tokens > 0 and d.legs["predict"].output_tokens > 0
        assert d.legs["small"].model == "small" and d.legs["small"].input_tokens > 0
        assert d.prediction is not None and d.prediction.version == "predictor-model"
    assert d0.created_at < d0.completed_at <= d1.created_at  # created when the step starts
    assert [d.id for d in store.decisions()] == [d0.id, d1.id]


def test_report_card_version_names_the_card_in_the_prompt():
    from rpra_agent import ReportCardPredictor
    from rpra_agent.core.prediction import PredictionRequest

    model = ScriptedChatModel(responses=["great"], logprobs=grade_logprobs(HIGH), rpra_name="m", cycle=True)
    cards = {"math": "You are usually graded ok on math.", "code": "You are usually graded bad on code."}
    pred = ReportCardPredictor(model, card=cards.get)
    a = pred.predict(PredictionRequest(messages=(HumanMessage("q"),), task="math"))
    b = pred.predict(PredictionRequest(messages=(HumanMessage("q"),), task="code"))
    c = pred.predict(PredictionRequest(messages=(HumanMessage("q"),), task="other"))
    assert a.version.startswith("m+card:") and a.version != b.version and c.version == "m+card:none"


def test_verify_records_the_deferred_draft():
    small = ScriptedChatModel(responses=["a shaky draft"], rpra_name="small")
    g = build_rpra_graph(
        small=small,
        large=ScriptedChatModel(responses=["solid"]),
        predictor=FixedPredictor({"bad": 1.0}),
        paradigm="verify",
    )
    (d,) = decisions_from_state(g.invoke({"messages": [HumanMessage("q")]}))
    assert (d.route, d.draft, d.response) == ("large", "a shaky draft", "solid")


def test_the_deferred_draft_is_stored_under_the_text_mode(tmp_path):
    from rpra_agent import open_store

    for mode, expect in (("full", "a shaky draft"), ("hash", "sha256:")):
        store = open_store(f"sqlite:///{tmp_path}/{mode}.db", store_text=mode)
        g = build_rpra_graph(
            small=ScriptedChatModel(responses=["a shaky draft"]),
            large=ScriptedChatModel(responses=["solid"]),
            predictor=FixedPredictor({"bad": 1.0}),
            paradigm="verify",
            store=store,
        )
        g.invoke({"messages": [HumanMessage("q")]})
        store.flush()
        (d,) = store.decisions()
        assert d.draft.startswith(expect) and "draft" not in d.metadata
        (user,) = d.metadata["context"]
        assert user["role"] == "user" and user["content"] == ("q" if mode == "full" else user["content"])
        assert mode == "full" or user["content"].startswith("sha256:")
        store.close()


def test_each_decision_records_its_context_reasoning_and_predicted_kind_for_hindsight_data():
    small = ScriptedChatModel(
        responses=["I should add", "ok", call(), "sum known", "fine", "five"],
        rpra_name="small",
        plans=["add", "answer"],
    )
    g = build_rpra_graph(
        small=small,
        large=ScriptedChatModel(responses=["x"]),
        predictor=FixedPredictor(HIGH),
        paradigm="rpra",
        tools=[add],
    )
    d0, d1 = decisions_from_state(g.invoke({"messages": [HumanMessage("2+3?")]}))
    assert [e["role"] for e in d0.metadata["context"]] == ["user"]
    assert [e["role"] for e in d1.metadata["context"]] == ["user", "assistant", "tool"]
    assert d1.metadata["context"][1]["tool_calls"][0]["name"] == "add" and d1.metadata["context"][2]["content"] == "5"
    assert (d0.metadata["predicted_kind"], d1.metadata["predicted_kind"]) == ("action", "answer")
    assert (d0.metadata["reasoning"], d1.metadata["reasoning"]) == ("I should add", "sum known")


def test_integer_ids_and_tags_are_stored_as_strings_and_other_types_are_refused(tmp_path):
    """``thread_id=1`` is what LangGraph users write; a list as the task tag is a mistake to name, not a lost decision."""
    import pytest

    from rpra_agent import ConfigError, open_store

    store = open_store(f"sqlite:///{tmp_path}/log.db")
    small = ScriptedChatModel(responses=["five"], rpra_name="small")
    g = build_rpra_graph(
        small=small, large=ScriptedChatModel(responses=["x"]), predictor=FixedPredictor(HIGH), store=store
    )
    g.invoke({"messages": [HumanMessage("2+3?")], "rpra_task": 42}, {"configurable": {"thread_id": 1}})
    g.invoke({"messages": [HumanMessage("2+4?")]}, {"configurable": {"rpra_task": 7, "rpra_run_id": 99}})
    calls = len(small.calls)
    with pytest.raises(ConfigError, match=r"rpra_task must be a string \(or an integer\), got list \['math'\]"):
        g.invoke({"messages": [HumanMessage("2+5?")], "rpra_task": ["math"]})
    with pytest.raises(ConfigError, match="thread_id must be a string"):
        g.invoke({"messages": [HumanMessage("2+5?")]}, {"configurable": {"thread_id": 1.5}})
    assert len(small.calls) == calls  # refused before any model call
    store.flush()
    first, second = sorted(store.decisions(), key=lambda d: d.request)
    assert (first.task, first.thread_id) == ("42", "1")
    assert (second.task, second.thread_id, second.run_id) == ("7", None, "99")
    assert {run["thread_id"] for run in store.runs().values()} == {"1", None}
    store.close()
