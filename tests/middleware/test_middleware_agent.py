"""create_agent with RPRAMiddleware alone, on test doubles."""

from langchain.agents import create_agent
from langchain.agents.middleware import wrap_model_call
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt
from pydantic import BaseModel

from rpra_agent import ThresholdPolicy, decisions_from_state
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


def test_tool_loop_records_one_decision_per_model_call():
    small = ScriptedChatModel(responses=[call(), "It is 5."], rpra_name="small")
    large = ScriptedChatModel(responses=["unused"], rpra_name="large")
    store = InMemoryDecisionStore()
    agent = create_agent(
        small, tools=[add], middleware=[RPRAMiddleware(large, predictor=FixedPredictor(HIGH), store=store)]
    )
    out = agent.invoke({"messages": [HumanMessage("2+3?")], "rpra_task": "math"}, {"configurable": {"thread_id": "t1"}})
    assert out["messages"][-1].content == "It is 5."
    assert any(isinstance(m, ToolMessage) and m.content == "5" for m in out["messages"])
    first, second = decisions_from_state(out)
    assert (first.step, first.kind, first.tool_calls) == (0, "action", ("add",))
    assert (second.step, second.kind) == (1, "answer")
    assert first.run_id == second.run_id and first.thread_id == "t1" and first.task == "math"
    assert store.decisions() == [first, second]
    assert store.runs()[first.run_id]["status"] == "completed"
    assert large.calls == []


async def test_async_agent_defers_and_keeps_tools_on_the_large_leg():
    small = ScriptedChatModel(responses=["unused"], rpra_name="small")
    large = ScriptedChatModel(responses=[call(), "Five."], rpra_name="large")
    agent = create_agent(
        small, tools=[add], system_prompt="Be exact.", middleware=[RPRAMiddleware(large, predictor=FixedPredictor(LOW))]
    )
    out = await agent.ainvoke({"messages": [HumanMessage("2+3?")]})
    assert out["messages"][-1].content == "Five."
    assert [d.route for d in decisions_from_state(out)] == ["large", "large"]
    assert [t.name for t in large.bound_tools] == ["add"]
    assert large.calls[0][0].content == "Be exact."  # the system prompt reached the large model
    assert small.calls == []


def test_structured_output_survives_deferral():
    small = ScriptedChatModel(responses=["unused"], rpra_name="small")
    large = ScriptedChatModel(responses=[call("Answer", {"value": 5}, "s1")], rpra_name="large")
    agent = create_agent(
        small, tools=[add], response_format=Answer, middleware=[RPRAMiddleware(large, predictor=FixedPredictor(LOW))]
    )
    out = agent.invoke({"messages": [HumanMessage("2+3?")]})
    assert out["structured_response"] == Answer(value=5)
    assert {t.name for t in large.bound_tools} == {"add", "Answer"}
    (d,) = decisions_from_state(out)
    assert (d.route, d.kind) == ("large", "answer")


def test_counters_reset_per_run_and_decisions_accumulate_per_thread():
    small = ScriptedChatModel(responses=["one", "two"], rpra_name="small")
    large = ScriptedChatModel(responses=["unused"], rpra_name="large")
    mw = RPRAMiddleware(large, predictor=FixedPredictor(LOW), policy=ThresholdPolicy(0.5, max_deferrals=0))
    agent = create_agent(small, middleware=[mw], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t"}}
    agent.invoke({"messages": [HumanMessage("a")]}, cfg)
    out = agent.invoke({"messages": [HumanMessage("b")]}, cfg)
    first, second = decisions_from_state(out)
    assert (first.step, second.step) == (0, 0) and first.run_id != second.run_id
    assert {first.reason, second.reason} == {"budget_exhausted"}


def test_rpra_reasoning_never_streams_to_the_user():
    small = ScriptedChatModel(responses=["SECRET reasoning here", "SECRET again", "visible answer"], rpra_name="small")
    large = ScriptedChatModel(responses=["unused"], rpra_name="large")
    agent = create_agent(small, middleware=[RPRAMiddleware(large, predictor=FixedPredictor(HIGH), paradigm="rpra")])
    streamed = "".join(
        chunk.content
        for chunk, _meta in agent.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages")
        if isinstance(chunk.content, str)
    )
    assert "visible answer" in streamed and "SECRET" not in streamed


def test_an_inner_interrupt_passes_through_and_resumes_without_duplicate_decisions():
    @wrap_model_call
    def approve_large(request, handler):
        if request.model.rpra_name == "large":
            assert interrupt({"ask": "use the large model?"}) == "yes"
        return handler(request)

    small = ScriptedChatModel(responses=["unused"], rpra_name="small")
    large = ScriptedChatModel(responses=["large answer"], rpra_name="large")
    store = InMemoryDecisionStore()
    agent = create_agent(
        small,
        middleware=[RPRAMiddleware(large, predictor=FixedPredictor(LOW), store=store), approve_large],
        checkpointer=InMemorySaver(),
    )
    cfg = {"configurable": {"thread_id": "hitl"}}
    paused = agent.invoke({"messages": [HumanMessage("hard question")]}, cfg)
    assert paused["__interrupt__"][0].value == {"ask": "use the large model?"}
    assert store.decisions() == []
    out = agent.invoke(Command(resume="yes"), cfg)
    assert out["messages"][-1].content == "large answer"
    assert [d.route for d in store.decisions()] == ["large"]
