"""llama.cpp's OpenAI-compatible server as the large model, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from rpra_agent.core.policy import ThresholdPolicy
from rpra_agent.graph import build_rpra_graph, decisions_from_state
from rpra_agent.models import load_chat_model
from rpra_agent.predictors import ZeroShotPredictor
from rpra_agent.store import InMemoryDecisionStore
from tests.fixtures_llama import SERVER_REPLY


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Verdict(BaseModel):
    """A grade."""

    grade: Literal["bad", "ok", "great"]


def _large(base_url, **kw):
    return load_chat_model("openai:large", base_url=base_url, **kw)


def test_invoke_stream_usage_over_http(llama_server):
    model = _large(llama_server)
    reply = model.invoke("What is the capital of France?")
    assert reply.content == SERVER_REPLY
    assert reply.usage_metadata["output_tokens"] > 0 and reply.usage_metadata["input_tokens"] > 0
    assert "".join(c.content for c in model.stream("hi")) == SERVER_REPLY
    assert [m.content for m in model.batch(["a", "b"])] == [SERVER_REPLY] * 2


async def test_async_over_http(llama_server):
    assert (await _large(llama_server).ainvoke("hi")).content == SERVER_REPLY


def test_max_tokens_is_honoured_via_extra_body(llama_server):
    short = _large(llama_server, max_tokens=3).invoke("hi")
    assert short.content == "The"
    assert short.response_metadata["finish_reason"] == "length"


def test_logprobs_are_plain_floats(llama_server):
    reply = _large(llama_server).bind(logprobs=True, top_logprobs=2).invoke("hi")
    content = reply.response_metadata["logprobs"]["content"]
    assert "".join(e["token"] for e in content) == SERVER_REPLY
    assert all(type(e["logprob"]) is float for e in content)


def test_forced_tool_and_structured_output_work_despite_the_servers_gaps(llama_server):
    call = _large(llama_server, max_tokens=64).bind_tools([add], tool_choice="any").invoke("2+3?")
    assert [c["name"] for c in call.tool_calls] == ["add"]
    assert set(call.tool_calls[0]["args"]) == {"a", "b"}
    verdict = _large(llama_server, max_tokens=64).with_structured_output(Verdict).invoke("grade it")
    assert isinstance(verdict, Verdict)


def test_graph_defers_to_the_server(llama_server, scripted_gguf):
    small = load_chat_model(f"gguf:{scripted_gguf(reply='Small: no idea.', grade='bad')}?n_ctx=2048")
    store = InMemoryDecisionStore()
    graph = build_rpra_graph(
        small=small, large=_large(llama_server), predictor=ZeroShotPredictor(small),
        policy=ThresholdPolicy(threshold=0.5), store=store,
    )  # fmt: skip
    state = graph.invoke({"messages": [HumanMessage("What is the capital of France?")]})
    assert state["messages"][-1].content == SERVER_REPLY
    [decision] = decisions_from_state(state)
    assert (decision.route, decision.reason, decision.large_model) == ("large", "predicted_low", "openai:large")
    assert decision.legs["large"].output_tokens > 0
    assert store.decisions()[0].response == SERVER_REPLY
