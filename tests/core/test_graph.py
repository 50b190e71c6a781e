from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from rpra_agent import (
    AlwaysLarge,
    ConfigError,
    FaultPolicy,
    ThresholdPolicy,
    build_rpra_graph,
    decisions_from_state,
)
from rpra_agent.testing import FixedPredictor, InMemoryDecisionStore, ScriptedChatModel

SNAPSHOTS = Path(__file__).parent.parent / "snapshots"
HIGH, LOW = {"great": 0.9, "ok": 0.1}, {"bad": 0.9, "ok": 0.1}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def explode(x: str) -> str:
    """A tool that always fails."""
    raise ValueError("tool broke")


def call(name="add", args=None, cid="c1"):
    return AIMessage("", tool_calls=[{"name": name, "args": args or {"a": 2, "b": 3}, "id": cid}])


def models(small=("small answer",), large=("large answer",)):
    return ScriptedChatModel(responses=list(small), rpra_name="small-m"), ScriptedChatModel(
        responses=list(large), rpra_name="large-m"
    )


@pytest.mark.parametrize("paradigm", ["pa", "rpra", "verify"])
@pytest.mark.parametrize("with_tools", [False, True])
def test_topology_snapshot(paradigm, with_tools):
    small, large = models()
    g = build_rpra_graph(
        small=small, large=large, predictor=FixedPredictor(HIGH), paradigm=paradigm, tools=[add] if with_tools else []
    )
    drawn = g.get_graph().draw_mermaid()
    path = SNAPSHOTS / f"graph_{paradigm}{'_tools' if with_tools else ''}.mmd"
    if not path.exists():  # first run writes the snapshot; review it in the diff
        path.write_text(drawn)
    assert drawn == path.read_text()


@pytest.mark.parametrize("paradigm", ["pa", "rpra", "verify"])
def test_small_answers_when_predicted_high(paradigm):
    small, large = models()
    store = InMemoryDecisionStore()
    out = build_rpra_graph(
        small=small, large=large, predictor=FixedPredictor(HIGH), paradigm=paradigm, store=store
    ).invoke({"messages": [HumanMessage("What is 2+2?")]})
    assert out["messages"][-1].content == "small answer"
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason, d.kind, d.paradigm) == ("small", "predicted_ok", "answer", paradigm)
    assert d.small_model == "small-m" and d.large_model == "large-m"
    assert d.request == "What is 2+2?" and d.response == "small answer"
    assert "small" in d.legs and "large" not in d.legs
    assert store.decisions() == [d]
    assert large.calls == []


@pytest.mark.parametrize("paradigm", ["pa", "rpra", "verify"])
def test_defers_when_predicted_low(paradigm):
    small, large = models()
    out = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(LOW), paradigm=paradigm).invoke(
        {"messages": [HumanMessage("Prove the Riemann hypothesis")]}
    )
    assert out["messages"][-1].content == "large answer"
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason) == ("large", "predicted_low")
    assert d.prediction is not None and d.prediction.grade == "bad"
    assert len(large.calls) == 1


def test_rpra_reasoning_is_private_and_conditions_prediction():
    small = ScriptedChatModel(responses=["REASONING-1", "REASONING-2", "final"])
    large = ScriptedChatModel(responses=["large"])
    pred = FixedPredictor(HIGH)
    out = build_rpra_graph(small=small, large=large, predictor=pred, paradigm="rpra").invoke(
        {"messages": [HumanMessage("q")]}
    )
    assert [m.content for m in out["messages"]] == ["q", "final"]
    assert pred.requests[0].reasoning == "REASONING-1"
    # the answering call saw the second reasoning, hidden in a system message
    assert "REASONING-2" in small.calls[2][0].content


def test_large_gets_reasoning_only_when_configured():
    for share in (False, True):
        small = ScriptedChatModel(responses=["SECRET-REASONING"], cycle=True)
        large = ScriptedChatModel(responses=["large"])
        build_rpra_graph(
            small=small, large=large, predictor=FixedPredictor(LOW), paradigm="rpra", share_reasoning=share
        ).invoke({"messages": [HumanMessage("q")]})
        seen = " ".join(str(m.content) for m in large.calls[0])
        assert ("SECRET-REASONING" in seen) is share


def test_tool_action_predicted_and_executed():
    small, large = models(small=[call(), "the sum is 5"])
    pred = FixedPredictor(HIGH)
    out = build_rpra_graph(small=small, large=large, predictor=pred, tools=[add]).invoke(
        {"messages": [HumanMessage("2+3?")]}
    )
    types = [m.type for m in out["messages"]]
    assert types == ["human", "ai", "tool", "ai"]
    assert out["messages"][2].content == "5"
    d0, d1 = decisions_from_state(out)
    assert (d0.kind, d0.route, d0.tool_calls, d0.step) == ("action", "small", ("add",), 0)
    assert (d1.kind, d1.route, d1.step) == ("answer", "small", 1)
    assert d0.run_id == d1.run_id
    assert len(pred.requests) == 2 and pred.requests[0].tool_names == ("add",)


def test_tool_action_deferred_to_large():
    small, large = models(small=["unused"], large=[call(args={"a": 40, "b": 2}), "it is 42"])
    out = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(LOW), tools=[add]).invoke(
        {"messages": [HumanMessage("40+2?")]}
    )
    assert out["messages"][2].content == "42" and out["messages"][-1].content == "it is 42"
    d0, d1 = decisions_from_state(out)
    assert (d0.kind, d0.route, d0.reason) == ("action", "large", "predicted_low")
    assert small.calls == []


def test_verify_uses_the_drafts_kind_for_the_action_threshold():
    small, large = models(small=[call()], large=["large"])
    policy = ThresholdPolicy(0.5, action_threshold=0.95)
    out = build_rpra_graph(
        small=small,
        large=large,
        predictor=FixedPredictor({"great": 0.9, "bad": 0.1}),
        policy=policy,
        paradigm="verify",
        tools=[add],
    ).invoke({"messages": [HumanMessage("2+3?")]})
    d0 = decisions_from_state(out)[0]
    assert (d0.route, d0.reason, d0.threshold) == ("large", "predicted_low", 0.95)


def test_tool_error_becomes_tool_message():
    small, large = models(small=[call("explode", {"x": "y"}), "sorry"])
    out = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(HIGH), tools=[explode]).invoke(
        {"messages": [HumanMessage("go")]}
    )
    tool_msg = out["messages"][2]
    assert isinstance(tool_msg, ToolMessage) and tool_msg.status == "error"
    assert len(decisions_from_state(out)) == 2


def test_max_steps_stops_the_loop():
    small, large = models(small=[call(cid=f"c{i}") for i in range(10)])
    out = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(HIGH), tools=[add], max_steps=3).invoke(
        {"messages": [HumanMessage("loop")]}
    )
    assert len(decisions_from_state(out)) == 3
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and not last.tool_calls and "max_steps=3" in last.content


def test_budget_exhaustion():
    small, large = models(small=[call(cid="a"), call(cid="b"), "done small"], large=[call(cid="x"), "large"])
    out = build_rpra_graph(
        small=small,
        large=large,
        predictor=FixedPredictor(LOW),
        policy=ThresholdPolicy(0.5, max_deferrals=1),
        tools=[add],
    ).invoke({"messages": [HumanMessage("go")]})
    reasons = [(d.route, d.reason) for d in decisions_from_state(out)]
    assert reasons[0] == ("large", "predicted_low")
    assert all(r == ("small", "budget_exhausted") for r in reasons[1:]) and len(reasons) >= 2


def test_predictor_failure_defers():
    small, large = models()
    out = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(error="garbage output")).invoke(
        {"messages": [HumanMessage("q")]}
    )
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason, d.prediction) == ("large", "predictor_error", None)
    assert d.metadata["predictor_error"] == "garbage output"
    assert out["messages"][-1].content == "large answer"


def test_shadow_mode_answers_small_and_records():
    small, large = models()
    out = build_rpra_graph(
        small=small, large=large, predictor=FixedPredictor(LOW), policy=ThresholdPolicy(0.5, shadow=True)
    ).invoke({"messages": [HumanMessage("q")]})
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason) == ("small", "shadow")
    assert out["messages"][-1].content == "small answer" and large.calls == []


def test_baseline_needs_no_predictor_and_missing_predictor_is_config_error():
    small, large = models()
    out = build_rpra_graph(small=small, large=large, policy=AlwaysLarge()).invoke({"messages": [HumanMessage("q")]})
    assert decisions_from_state(out)[0].reason == "forced"
    with pytest.raises(ConfigError, match="needs a predictor"):
        build_rpra_graph(small=small, large=large)
    with pytest.raises(ConfigError, match="paradigm"):
        build_rpra_graph(small=small, large=large, policy=AlwaysLarge(), paradigm="nope")  # type: ignore[arg-type]


def test_small_failure_defers_and_large_failure_raises_group_or_degrades():
    small = ScriptedChatModel(responses=[RuntimeError("small down")])
    large = ScriptedChatModel(responses=["large"])
    out = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(HIGH)).invoke(
        {"messages": [HumanMessage("q")]}
    )
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason, d.error) == ("large", "small_error", "RuntimeError")

    # transient failures (connection errors, timeouts) are retried; every error is in the group
    small, large = models(large=[ConnectionError("a"), TimeoutError("b")])
    faults = FaultPolicy(large_attempts=2, backoff_s=0)
    g = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(LOW), faults=faults)
    with pytest.raises(ExceptionGroup) as info:
        g.invoke({"messages": [HumanMessage("q")]})
    assert [type(e) for e in info.value.exceptions] == [ConnectionError, TimeoutError]

    # a deterministic error fails at once: one attempt, not large_attempts
    small, large = models(large=[ValueError("bad request"), "never reached"])
    g = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(LOW), faults=faults)
    with pytest.raises(ExceptionGroup) as info:
        g.invoke({"messages": [HumanMessage("q")]})
    assert [type(e) for e in info.value.exceptions] == [ValueError] and len(large.calls) == 1

    small, large = models(large=[RuntimeError("down")])
    g = build_rpra_graph(
        small=small,
        large=large,
        predictor=FixedPredictor(LOW),
        faults=FaultPolicy(large_attempts=2, backoff_s=0, on_large_failure="small"),
    )
    out = g.invoke({"messages": [HumanMessage("q")]})
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason, d.degraded, d.error) == ("small", "large_error_degraded", True, "RuntimeError")
    assert out["messages"][-1].content == "small answer"
    assert "down" not in out["messages"][-1].content  # never exception text in the conversation


async def test_async_invoke_and_tools():
    small, large = models(small=[call(), "five"])
    out = await build_rpra_graph(small=small, large=large, predictor=FixedPredictor(HIGH), tools=[add]).ainvoke(
        {"messages": [HumanMessage("2+3")]}
    )
    assert out["messages"][-1].content == "five"
    assert [d.kind for d in decisions_from_state(out)] == ["action", "answer"]


@pytest.mark.parametrize("paradigm", ["pa", "rpra"])
async def test_streaming_yields_only_the_answering_models_tokens(paradigm):
    small = ScriptedChatModel(
        responses=["hidden reasoning here", "again hidden", "the small answer"]
        if paradigm == "rpra"
        else ["the small answer"]
    )
    large = ScriptedChatModel(responses=["the large answer"])
    g = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(HIGH), paradigm=paradigm)
    chunks = [
        (c.content, m["langgraph_node"])
        async for c, m in g.astream({"messages": [HumanMessage("q")]}, stream_mode="messages")
    ]
    text = "".join(c for c, _ in chunks)
    assert text == "the small answer"
    assert len([c for c, _ in chunks if c]) == 3  # token by token
    assert {n for _, n in chunks} == {"small"}


def test_sync_streaming_of_a_deferred_step():
    small, large = models(large=["the large answer"])
    g = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(LOW))
    text = "".join(c.content for c, m in g.stream({"messages": [HumanMessage("q")]}, stream_mode="messages"))
    assert text == "the large answer"


async def test_verify_streams_the_kept_draft_after_the_decision():
    small, large = models(small=["kept draft"])
    g = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(HIGH), paradigm="verify")
    chunks = [
        (c.content, m["langgraph_node"])
        async for c, m in g.astream({"messages": [HumanMessage("q")]}, stream_mode="messages")
    ]
    assert chunks == [("kept draft", "small")]


def test_as_subgraph_in_a_parent_graph():
    small, large = models()
    rpra = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(LOW))

    def greet(state: MessagesState):
        return {"messages": [HumanMessage("and then?")]}

    parent = StateGraph(MessagesState)
    parent.add_node("greet", greet)
    parent.add_node("rpra", rpra)
    parent.add_edge(START, "greet")
    parent.add_edge("greet", "rpra")
    out = parent.compile().invoke({"messages": [HumanMessage("hello")]})
    assert [m.content for m in out["messages"]] == ["hello", "and then?", "large answer"]


def test_multi_turn_thread_with_checkpointer_keeps_decisions():
    small, large = models(small=["one", "two"])
    g = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(HIGH), checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t1"}}
    g.invoke({"messages": [HumanMessage("first")]}, cfg)
    out = g.invoke({"messages": [HumanMessage("second")]}, cfg)
    ds = decisions_from_state(out)
    assert [d.response for d in ds] == ["one", "two"]
    assert ds[0].run_id != ds[1].run_id and all(d.thread_id == "t1" for d in ds)
    assert ds[1].request == "second"


def test_task_tag_reaches_predictor_and_decision():
    small, large = models()
    pred = FixedPredictor(HIGH)
    g = build_rpra_graph(small=small, large=large, predictor=pred)
    out = g.invoke({"messages": [HumanMessage("q")], "rpra_task": "math"})
    assert pred.requests[0].task == "math" and decisions_from_state(out)[0].task == "math"
    out = g.invoke({"messages": [HumanMessage("q")]}, {"configurable": {"rpra_task": "code"}})
    assert decisions_from_state(out)[0].task == "code"
