"""llama.cpp's OpenAI-compatible server as the large model, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import socket
import time
import traceback
from typing import Literal

import openai
import pytest
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from rpra_agent.core.policy import ThresholdPolicy
from rpra_agent.graph import build_rpra_graph, decisions_from_state
from rpra_agent.models import load_chat_model
from rpra_agent.models.retry import (
    ModelContextOverflowError,
    ModelHTTPError,
    ModelUnreachableError,
    is_transient,
    retry_delays,
)
from rpra_agent.predictors import ZeroShotPredictor
from rpra_agent.store import InMemoryDecisionStore
from rpra_agent.testing import FixedPredictor, ScriptedChatModel
from rpra_agent.testing.gguf import write_random_gguf
from tests.fixtures_llama import SERVER_REPLY
from tests.fixtures_service import RequestLog, llama_server_process


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


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_graph_defers_to_the_server(llama_server, scripted_gguf, how):
    small = load_chat_model(f"gguf:{scripted_gguf(reply='Small: no idea.', grade='bad')}?n_ctx=2048")
    store = InMemoryDecisionStore()
    graph = build_rpra_graph(
        small=small, large=_large(llama_server), predictor=ZeroShotPredictor(small),
        policy=ThresholdPolicy(threshold=0.5), store=store,
    )  # fmt: skip
    question = {"messages": [HumanMessage("What is the capital of France?")]}
    if how == "invoke":
        state = graph.invoke(question)
    else:  # token streaming makes the large leg stream too: its usage must still be recorded
        streamed = list(graph.stream(question, stream_mode=["messages", "values"]))
        assert any(mode == "messages" for mode, _ in streamed)
        state = [chunk for mode, chunk in streamed if mode == "values"][-1]
    assert state["messages"][-1].content == SERVER_REPLY
    [decision] = decisions_from_state(state)
    assert (decision.route, decision.reason, decision.large_model) == ("large", "predicted_low", "openai:large")
    assert decision.legs["large"].output_tokens > 0
    assert store.decisions()[0].response == SERVER_REPLY


# --- Server quirks (issue 13), each against the real llama.cpp server -------------------------

TOOL_TURN = [
    HumanMessage("What is 2+3?"),
    AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "call_1"}]),
    ToolMessage("5", tool_call_id="call_1"),
]


def _logged(base_url, log, **kw):
    return _large(base_url, http_client=log.client(), http_async_client=log.async_client(), **kw)


def test_a_tool_turn_is_sent_with_empty_content_not_null(llama_server):
    log = RequestLog()
    reply = _logged(llama_server, log).invoke(TOOL_TURN)
    assert reply.content == SERVER_REPLY
    assert log.count == 1
    assert log.bodies[0]["messages"][1]["content"] == "" and log.bodies[0]["messages"][1]["tool_calls"]


def test_null_content_is_what_the_server_rejects_and_that_fails_at_once(llama_server):
    """Without the workaround the server answers 500 to the null: deterministic, so one request, no retry."""
    log = RequestLog()
    with pytest.raises(ModelHTTPError) as info:
        _logged(llama_server, log, compat=False).invoke(TOOL_TURN)
    assert log.bodies[0]["messages"][1]["content"] is None
    assert log.count == 1
    assert info.value.status_code == 500 and "validation error" in info.value.message
    assert not is_transient(info.value)


def test_streams_ask_for_usage_and_get_it_even_when_the_server_sends_none(llama_server):
    log = RequestLog()
    model = _logged(llama_server, log)
    expected = model.invoke("hi").usage_metadata["output_tokens"]
    chunks = list(model.stream("hi"))
    assert log.bodies[-1]["stream_options"] == {"include_usage": True}
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.content == SERVER_REPLY
    # llama-cpp-python's server ignores include_usage: one delta per generated token is counted
    assert total.usage_metadata["output_tokens"] == expected
    assert total.usage_metadata["input_tokens"] > 0
    assert total.response_metadata["usage_estimated"] is True


async def test_async_streams_get_usage_too(llama_server):
    model = _logged(llama_server, RequestLog())  # its own async client: langchain-openai's is shared across loops
    expected = (await model.ainvoke("hi")).usage_metadata["output_tokens"]
    total = None
    async for chunk in model.astream("hi"):
        total = chunk if total is None else total + chunk
    assert total.content == SERVER_REPLY and total.usage_metadata["output_tokens"] == expected


@pytest.mark.parametrize("how", ["invoke", "bind", "stream"])
def test_per_request_max_tokens_truncates_and_reports_length(llama_server, how):
    log = RequestLog()
    model = _logged(llama_server, log, max_tokens=64)
    if how == "invoke":
        reply = model.invoke("hi", max_tokens=3)
    elif how == "bind":
        reply = model.bind(max_tokens=3).invoke("hi")
    else:
        reply = None
        for chunk in model.stream("hi", max_tokens=3):
            reply = chunk if reply is None else reply + chunk
    assert reply.content == "The"  # the first 3 tokens of SERVER_REPLY
    assert reply.response_metadata["finish_reason"] == "length"
    assert log.bodies[-1]["max_tokens"] == 3 and "max_completion_tokens" not in log.bodies[-1]
    full = model.invoke("hi")
    assert full.content == SERVER_REPLY and full.response_metadata["finish_reason"] == "stop"


@pytest.fixture(scope="module")
def random_server(tmp_path_factory):
    """The server on a random-weight model, whose sampling shows whether a temperature is applied."""
    model = write_random_gguf(tmp_path_factory.mktemp("random_server") / "random.gguf", seed=0)
    with llama_server_process(model) as url:
        yield url


def test_per_request_temperature_is_honoured(random_server):
    model = _large(random_server, temperature=1.5, max_tokens=12)

    def sample(seed, **kw):
        return model.invoke("hi", seed=seed, **kw).content

    hot = {sample(s) for s in (1, 2, 3)}
    greedy = {sample(s, temperature=0.0) for s in (1, 2, 3)}
    bound = {model.bind(temperature=0.0).invoke("hi", seed=s).content for s in (1, 2, 3)}
    assert len(hot) > 1, "temperature 1.5 with three seeds gave one answer"
    assert len(greedy) == 1 and greedy == bound, "a per-request temperature 0 was not greedy"


# --- Retries: deterministic errors fail at once, transient ones are retried ------------------


def _driver(model, messages, *, attempts=3, backoff_s=0.01):
    """What the step driver does with the large model: retry only what is_transient() allows."""
    delays = retry_delays(attempts, backoff_s)
    for attempt in range(attempts):
        try:
            return model.invoke(messages)
        except Exception as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            time.sleep(delays[attempt])
    raise AssertionError("unreachable")


def test_a_deterministic_4xx_takes_one_request_and_says_what_the_server_said(llama_server):
    log = RequestLog()
    model = _logged(llama_server, log)
    with pytest.raises(ModelContextOverflowError) as info:
        _driver(model, [HumanMessage("word " * 3000)])
    assert log.count == 1
    err = info.value
    assert err.status_code == 400 and not is_transient(err) and not err.is_retryable
    assert "maximum context length is 2048 tokens" in str(err)
    assert str(err).startswith(f"large at {llama_server}: HTTP 400: This model's maximum context length")
    assert isinstance(err, ContextOverflowError) and isinstance(err.sdk_error, openai.BadRequestError)
    shown = "".join(traceback.format_exception(err))
    assert "openai/_base_client.py" not in shown and "During handling" not in shown
    assert len(shown.splitlines()) < 40, shown


async def test_async_errors_are_clean_too(llama_server):
    log = RequestLog()
    with pytest.raises(ModelContextOverflowError, match="maximum context length is 2048"):
        await _logged(llama_server, log).ainvoke([HumanMessage("word " * 3000)])
    assert log.count == 1


def test_a_stream_the_server_aborts_is_an_error_not_an_empty_answer(llama_server):
    """The server answers 200 with an empty stream when the prompt overflows: that must not pass as ''."""
    log = RequestLog()
    with pytest.raises(ModelHTTPError, match="without a finish_reason") as info:
        list(_logged(llama_server, log).stream([HumanMessage("word " * 3000)]))
    assert log.count == 1 and not is_transient(info.value)


def test_an_unreachable_server_is_transient_and_retried_without_sdk_retries():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = RequestLog()
    model = _logged(f"http://127.0.0.1:{port}/v1", log)
    with pytest.raises(ModelUnreachableError, match="the connection failed .ConnectError") as info:
        _driver(model, [HumanMessage("hi")], attempts=3)
    assert log.count == 3  # one per attempt: the SDK's own retries are off
    assert is_transient(info.value) and isinstance(info.value, ConnectionError)
    assert str(info.value).startswith(
        f"large at http://127.0.0.1:{port}/v1: no answer: the connection failed (ConnectError"
    )


def test_the_sdk_retries_are_off_and_credentials_stay_out_of_messages():
    model = load_chat_model("openai:large?base_url=http://user:s3cret@127.0.0.1:9/v1")
    assert model.max_retries == 0 and model.root_client.max_retries == 0
    with pytest.raises(ModelUnreachableError) as info:
        model.invoke("hi")
    assert "s3cret" not in str(info.value) and "user" not in str(info.value)


def test_a_streamed_tool_call_matches_invoke_and_has_usage(llama_server):
    model = _logged(llama_server, RequestLog(), max_tokens=64, temperature=0).bind_tools([add], tool_choice="any")
    called = model.invoke("2+3?")
    total = None
    for chunk in model.stream("2+3?"):
        total = chunk if total is None else total + chunk
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [(c["name"], c["args"]) for c in called.tool_calls]
    assert [c["name"] for c in total.tool_calls] == ["add"]  # the server repeats the name in every delta
    assert total.tool_calls[0]["id"] and "function_call" not in total.additional_kwargs
    assert total.usage_metadata["output_tokens"] > 0 and total.usage_metadata["input_tokens"] > 0


class _ActThenDefer(FixedPredictor):
    """Predicts "great" for the first step (the small model's tool call) and "bad" after it."""

    def predict(self, request):
        self.distribution = {"great": 1.0} if not self.requests else {"bad": 1.0}
        return super().predict(request)


def test_a_deferral_after_a_tool_call_reaches_the_server(llama_server):
    """The deferred step carries the small model's tool call (content null in OpenAI's shape): no 500."""
    small = ScriptedChatModel(
        responses=[AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]), "small: 5"],
        rpra_name="small",
    )
    log = RequestLog()
    graph = build_rpra_graph(
        small=small, large=_logged(llama_server, log), predictor=_ActThenDefer(), tools=[add],
        policy=ThresholdPolicy(threshold=0.5), store=InMemoryDecisionStore(),
    )  # fmt: skip
    state = graph.invoke({"messages": [HumanMessage("What is 2+3?")]})
    assert state["messages"][-1].content == SERVER_REPLY
    assert [(d.kind, d.route) for d in decisions_from_state(state)] == [("action", "small"), ("answer", "large")]
    assert log.count == 1
    sent = log.bodies[0]["messages"]
    assert [m["role"] for m in sent][-2:] == ["assistant", "tool"] and sent[-2]["content"] == ""
