"""The service's pure parts: wire-format conversion, auth comparison, metrics, and the engine's tool modes."""

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from rpra_agent import ConfigError, Decision
from rpra_agent.service._metrics import Metrics
from rpra_agent.service._openai import APIError, parse_request, to_langchain
from rpra_agent.service.app import _authorized
from rpra_agent.service.engine import ChatEngine, Delta, Done, Routed
from rpra_agent.testing import FixedPredictor, ScriptedChatModel
from tools import calculator


def req(**body):
    return parse_request(json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}).encode())


def test_messages_convert_both_ways():
    r = req(
        messages=[
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ]
    )
    system, human, ai, tool = to_langchain(r.messages)
    assert isinstance(system, SystemMessage) and isinstance(human, HumanMessage) and human.content == "a\nb"
    assert isinstance(ai, AIMessage) and ai.tool_calls[0]["args"] == {"x": 1} and ai.tool_calls[0]["id"] == "c1"
    assert isinstance(tool, ToolMessage) and tool.tool_call_id == "c1"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}
                ]
            },
            "messages.0.tool_calls.0.function.arguments",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{nope"}}]}
                ]
            },
            "messages.0.tool_calls.0.function.arguments",
        ),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"stream": "maybe"}, "stream"),
    ],
)
def test_bad_fields_name_their_param(body, param):
    with pytest.raises(APIError) as info:
        to_langchain(req(**body).messages)
    assert info.value.status == 400 and info.value.param == param


@pytest.mark.parametrize(
    ("header", "key", "ok"),
    [
        (None, None, True),
        (None, "k", False),
        ("Bearer k", "k", True),
        ("bearer  k ", "k", True),
        ("Bearer x", "k", False),
        ("Basic k", "k", False),
        ("Bearer", "k", False),
    ],
)
def test_bearer_comparison(header, key, ok):
    assert _authorized(header, key) is ok


def test_metrics_percentiles_and_deferral_rate():
    m = Metrics(window=100)
    small = Decision(
        run_id="r",
        step=0,
        kind="answer",
        paradigm="pa",
        prediction=None,
        threshold=0.5,
        route="small",
        reason="predicted_ok",
    )
    for i in range(1, 101):
        m.started_request(streaming=i % 2 == 0)
        m.finished_request(
            200, i / 1000, [small.with_updates(route="large", reason="predicted_low") if i <= 25 else small]
        )
    m.rejected(401)
    s = m.snapshot()
    assert s["requests"]["stream"] == 50 and s["requests"]["in_flight"] == 0
    assert s["decisions"]["deferral_rate"] == 0.25 and s["responses"] == {"2xx": 100, "4xx": 1}
    assert s["latency_ms"]["p50"] == pytest.approx(50.5) and s["latency_ms"]["p99"] == pytest.approx(99.01)


def test_engine_runs_server_side_tools_itself():
    small = ScriptedChatModel(
        responses=[
            AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "c1"}]),
            "It is 42.",
        ]
    )
    engine = ChatEngine(small=small, large=small, predictor=FixedPredictor({"great": 1.0}), tools=[calculator])
    done = pytest.importorskip("asyncio").run(engine.complete([HumanMessage("6*7?")]))
    assert done.message.content == "It is 42." and not done.message.tool_calls
    assert [d.kind for d in done.decisions] == ["action", "answer"]


async def test_streaming_never_forwards_server_side_tool_calls():
    small = ScriptedChatModel(
        responses=[
            AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "c1"}]),
            "It is 42.",
        ]
    )
    engine = ChatEngine(small=small, large=small, predictor=FixedPredictor({"great": 1.0}), tools=[calculator])
    events = [e async for e in engine.stream([HumanMessage("6*7?")])]
    assert isinstance(events[0], Routed) and isinstance(events[-1], Done)
    deltas = [e for e in events if isinstance(e, Delta)]
    assert "".join(d.text for d in deltas) == "It is 42." and not any(d.tool_call_chunks for d in deltas)


def test_engine_caches_one_graph_per_tool_set_and_validates_its_name():
    small = ScriptedChatModel(responses=["x"])
    engine = ChatEngine(small=small, large=small, predictor=FixedPredictor(), cache_size=1)
    spec = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    assert engine.graph_for(None, None) is engine.base_graph and engine.graph_for(spec, "none") is engine.base_graph
    g = engine.graph_for(spec, "auto")
    assert engine.graph_for(spec, "auto") is g and engine.graph_for(spec, "required") is not g
    with pytest.raises(ConfigError):
        ChatEngine(small=small, large=small, predictor=FixedPredictor(), model_name=" ")
