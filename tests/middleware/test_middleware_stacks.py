"""RPRAMiddleware stacked with LangChain's own middleware (first in the list = outermost).

Every stack runs with tools and a structured response_format, since fallback
wrappers are known to lose ``bind_tools`` and structured output.
"""

from langchain.agents import create_agent
from langchain.agents.middleware import (
    HumanInTheLoopMiddleware,
    ModelCallLimitMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
)
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from pydantic import BaseModel

from rpra_agent import decisions_from_state
from rpra_agent.middleware import RPRAMiddleware
from rpra_agent.testing import FixedPredictor, InMemoryDecisionStore, ScriptedChatModel

HIGH, LOW = {"great": 0.9, "ok": 0.1}, {"bad": 0.9, "ok": 0.1}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Answer(BaseModel):
    value: int


def call(name="add", args=None, cid="c1"):
    return AIMessage("", tool_calls=[{"name": name, "args": args or {"a": 2, "b": 3}, "id": cid}])


def structured(value=5, cid="s1"):
    return call("Answer", {"value": value}, cid)


def retry(**kw):
    return ModelRetryMiddleware(max_retries=2, initial_delay=0.0, jitter=False, on_failure="error", **kw)


def agent_with(small, middleware, **kw):
    return create_agent(small, tools=[add], response_format=Answer, middleware=middleware, **kw)


def bound_names(model):
    return {t.name for t in model.bound_tools}


def test_retry_inside_retries_each_leg_and_keeps_the_route():
    small = ScriptedChatModel(responses=[TimeoutError("blip"), structured()], rpra_name="small")
    large = ScriptedChatModel(responses=["unused"], rpra_name="large")
    predictor = FixedPredictor(HIGH)
    agent = agent_with(small, [RPRAMiddleware(large, predictor=predictor), retry()])
    out = agent.invoke({"messages": [HumanMessage("2+3?")]})
    assert out["structured_response"] == Answer(value=5)
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason) == ("small", "predicted_ok")  # the retry hid the blip from the router
    assert len(small.calls) == 2 and len(predictor.requests) == 1 and large.calls == []


def test_retry_outside_reruns_the_whole_routed_call():
    small = ScriptedChatModel(responses=["unused"], rpra_name="small")
    large = ScriptedChatModel(responses=[ConnectionError("down"), structured()], rpra_name="large")
    predictor = FixedPredictor(LOW)
    store = InMemoryDecisionStore()
    agent = agent_with(small, [retry(), RPRAMiddleware(large, predictor=predictor, store=store)])
    out = agent.invoke({"messages": [HumanMessage("2+3?")]})
    assert out["structured_response"] == Answer(value=5)
    assert len(predictor.requests) == 2  # predicted again on the retry
    assert [d.route for d in store.decisions()] == ["large"]  # the failed attempt left no decision
    assert bound_names(large) == {"add", "Answer"}


def test_fallback_inside_covers_the_large_leg_with_tools_and_structured_output():
    small = ScriptedChatModel(responses=["unused"], rpra_name="small")
    large = ScriptedChatModel(responses=[ConnectionError("down")], rpra_name="large")
    backup = ScriptedChatModel(responses=[structured(7)], rpra_name="backup")
    agent = agent_with(small, [RPRAMiddleware(large, predictor=FixedPredictor(LOW)), ModelFallbackMiddleware(backup)])
    out = agent.invoke({"messages": [HumanMessage("2+3?")]})
    assert out["structured_response"] == Answer(value=7)
    assert bound_names(backup) == {"add", "Answer"}  # bind_tools reached the fallback model
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason) == ("large", "predicted_low")


def test_fallback_outside_replaces_the_small_model_when_the_routed_call_fails():
    small = ScriptedChatModel(responses=[ConnectionError("down")], rpra_name="small")
    large = ScriptedChatModel(responses=[ConnectionError("down")], rpra_name="large")
    backup = ScriptedChatModel(responses=[structured(9)], rpra_name="backup")
    agent = agent_with(small, [ModelFallbackMiddleware(backup), RPRAMiddleware(large, predictor=FixedPredictor(HIGH))])
    out = agent.invoke({"messages": [HumanMessage("2+3?")]})
    assert out["structured_response"] == Answer(value=9)
    (d,) = decisions_from_state(out)
    assert (d.small_model, d.route, d.reason) == ("backup", "small", "predicted_ok")
    assert bound_names(backup) == {"add", "Answer"}


def test_call_limit_counts_one_routed_call_as_one_model_call():
    small = ScriptedChatModel(responses=[call(), "unused"], rpra_name="small")
    large = ScriptedChatModel(responses=["unused"], rpra_name="large")
    for order in ("outer", "inner"):
        rpra = RPRAMiddleware(large, predictor=FixedPredictor(HIGH))
        limit = ModelCallLimitMiddleware(run_limit=1, exit_behavior="end")
        agent = agent_with(small.model_copy(), [limit, rpra] if order == "outer" else [rpra, limit])
        out = agent.invoke({"messages": [HumanMessage("2+3?")]})
        assert len(decisions_from_state(out)) == 1, order
        assert "limit" in out["messages"][-1].content.lower(), order


def test_human_in_the_loop_reviews_the_routed_action_once():
    small = ScriptedChatModel(responses=[call(), structured(5)], rpra_name="small")
    large = ScriptedChatModel(responses=["unused"], rpra_name="large")
    store = InMemoryDecisionStore()
    agent = agent_with(
        small,
        [
            RPRAMiddleware(large, predictor=FixedPredictor(HIGH), store=store),
            HumanInTheLoopMiddleware(interrupt_on={"add": True}),
        ],
        checkpointer=InMemorySaver(),
    )
    cfg = {"configurable": {"thread_id": "review"}}
    paused = agent.invoke({"messages": [HumanMessage("2+3?")]}, cfg)
    (pending,) = paused["__interrupt__"]
    assert pending.value["action_requests"][0]["name"] == "add"
    assert [d.kind for d in store.decisions()] == ["action"]  # recorded once, before the review
    out = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), cfg)
    assert out["structured_response"] == Answer(value=5)
    assert any(isinstance(m, ToolMessage) and m.content == "5" for m in out["messages"])
    assert [(d.step, d.kind) for d in store.decisions()] == [(0, "action"), (1, "answer")]
    assert len(small.calls) == 2


def test_retry_inside_with_on_failure_continue_hides_the_failure_from_the_router():
    """Documented pitfall: 'continue' turns a failed leg into an AIMessage that RPRA takes as an answer."""
    small = ScriptedChatModel(responses=[TimeoutError("blip")], rpra_name="small")
    large = ScriptedChatModel(responses=["large answer"], rpra_name="large")
    lenient = ModelRetryMiddleware(max_retries=0, initial_delay=0.0, jitter=False, on_failure="continue")
    out = create_agent(small, middleware=[RPRAMiddleware(large, predictor=FixedPredictor(HIGH)), lenient]).invoke(
        {"messages": [HumanMessage("hi")]}
    )
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason) == ("small", "predicted_ok") and large.calls == []
    strict = retry()
    small = ScriptedChatModel(responses=[TimeoutError("blip")], rpra_name="small")
    out = create_agent(small, middleware=[RPRAMiddleware(large, predictor=FixedPredictor(HIGH)), strict]).invoke(
        {"messages": [HumanMessage("hi")]}
    )
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason, d.error) == ("large", "small_error", "TimeoutError")
    assert out["messages"][-1].content == "large answer"
