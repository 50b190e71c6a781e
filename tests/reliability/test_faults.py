"""Fault policies of the graph: each fault has a recorded reason and a test (issue 9)."""

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt

from rpra_agent import FaultPolicy, build_rpra_graph, decisions_from_state
from rpra_agent.testing import FixedPredictor, ScriptedChatModel

HIGH, LOW = {"great": 1.0}, {"bad": 1.0}


def test_small_timeout_defers_sync():
    small = ScriptedChatModel(responses=["too slow"], delay_s=2.0)
    large = ScriptedChatModel(responses=["large"])
    g = build_rpra_graph(
        small=small, large=large, predictor=FixedPredictor(HIGH), faults=FaultPolicy(small_timeout_s=0.05)
    )
    out = g.invoke({"messages": [HumanMessage("q")]})
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason, d.error) == ("large", "small_error", "TimeoutError")
    assert out["messages"][-1].content == "large"


async def test_small_timeout_defers_async_in_verify():
    small = ScriptedChatModel(responses=["too slow"], delay_s=2.0)
    large = ScriptedChatModel(responses=["large"])
    pred = FixedPredictor(HIGH)
    g = build_rpra_graph(
        small=small, large=large, predictor=pred, paradigm="verify", faults=FaultPolicy(small_timeout_s=0.05)
    )
    out = await g.ainvoke({"messages": [HumanMessage("q")]})
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason) == ("large", "small_error")
    assert pred.requests == []  # no prediction of a draft that does not exist


async def test_large_timeout_retries_then_degrades_async():
    small = ScriptedChatModel(responses=["small draft"])
    large = ScriptedChatModel(responses=["late"], delay_s=2.0)
    faults = FaultPolicy(large_timeout_s=0.05, large_attempts=2, backoff_s=0.01, on_large_failure="small")
    out = await build_rpra_graph(small=small, large=large, predictor=FixedPredictor(LOW), faults=faults).ainvoke(
        {"messages": [HumanMessage("q")]}
    )
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason, d.degraded, d.error) == ("small", "large_error_degraded", True, "TimeoutError")
    assert out["messages"][-1].content == "small draft"


def test_large_failure_in_verify_reuses_the_draft():
    small = ScriptedChatModel(responses=["the draft"])
    large = ScriptedChatModel(responses=[ConnectionError("x")])
    faults = FaultPolicy(large_attempts=3, backoff_s=0, on_large_failure="small")
    out = build_rpra_graph(
        small=small, large=large, predictor=FixedPredictor(LOW), paradigm="verify", faults=faults
    ).invoke({"messages": [HumanMessage("q")]})
    assert out["messages"][-1].content == "the draft"
    assert len(large.calls) == 3 and len(small.calls) == 1


def test_a_run_that_raises_is_marked_failed_in_the_store():
    from rpra_agent.testing import InMemoryDecisionStore

    store = InMemoryDecisionStore()
    small = ScriptedChatModel(responses=["small"])
    large = ScriptedChatModel(responses=[ConnectionError("down")])
    g = build_rpra_graph(
        small=small, large=large, predictor=FixedPredictor(LOW), store=store, faults=FaultPolicy(large_attempts=1)
    )
    with pytest.raises(ExceptionGroup):
        g.invoke({"messages": [HumanMessage("q")]})
    (run,) = store.runs().values()
    assert run["status"] == "failed" and run["paradigm"] == "pa"
    assert run["config"]["max_steps"] == 8  # the snapshot from the start of the run is kept


def test_both_fail_raises_group_with_every_error():
    small = ScriptedChatModel(responses=[RuntimeError("small")])
    large = ScriptedChatModel(responses=[ConnectionError("l1"), ConnectionError("l2")])
    g = build_rpra_graph(
        small=small,
        large=large,
        predictor=FixedPredictor(HIGH),
        faults=FaultPolicy(large_attempts=2, backoff_s=0, on_large_failure="small"),
    )
    with pytest.raises(ExceptionGroup) as info:
        g.invoke({"messages": [HumanMessage("q")]})
    assert [str(e) for e in info.value.exceptions] == ["l1", "l2"]


def test_interrupt_in_a_tool_passes_through_and_resumes():
    @tool
    def approve(action: str) -> str:
        """Ask a human to approve an action."""
        answer = interrupt({"approve": action})
        return f"human said {answer}"

    small = ScriptedChatModel(
        responses=[AIMessage("", tool_calls=[{"name": "approve", "args": {"action": "pay"}, "id": "t1"}]), "done"]
    )
    large = ScriptedChatModel(responses=["large"])
    g = build_rpra_graph(
        small=small, large=large, predictor=FixedPredictor(HIGH), tools=[approve], checkpointer=InMemorySaver()
    )
    cfg = {"configurable": {"thread_id": "hitl"}}
    out = g.invoke({"messages": [HumanMessage("pay the bill")]}, cfg)
    assert out["__interrupt__"][0].value == {"approve": "pay"}
    out = g.invoke(Command(resume="yes"), cfg)
    assert out["messages"][-2].content == "human said yes" and out["messages"][-1].content == "done"
    assert [d.kind for d in decisions_from_state(out)] == ["action", "answer"]


def test_interrupt_raised_inside_the_small_model_is_not_swallowed():
    def ask_human(messages):
        return AIMessage(f"approved: {interrupt('ok to answer?')}")

    small = ScriptedChatModel(responses=[ask_human])
    large = ScriptedChatModel(responses=["large"])
    g = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(HIGH), checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "hitl2"}}
    out = g.invoke({"messages": [HumanMessage("q")]}, cfg)
    assert out["__interrupt__"][0].value == "ok to answer?"
    assert large.calls == []  # an interrupt is not a small-model failure: no deferral
    out = g.invoke(Command(resume="sure"), cfg)
    assert out["messages"][-1].content == "approved: sure"
