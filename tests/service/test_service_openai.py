"""The service over real HTTP on 127.0.0.1, exercised with the official openai client."""

import asyncio
import json
import time

import httpx
import openai
import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from rpra_agent.service.app import create_app
from rpra_agent.service.engine import ChatEngine
from rpra_agent.testing import FixedPredictor, ScriptedChatModel
from tests.fixtures_service import serve_app
from tests.service.conftest import API_KEY

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_plain_completion_says_who_answered_and_why(client, engine):
    raw = client.chat.completions.with_raw_response.create(
        model="rpra-test", messages=[{"role": "user", "content": "What is 2+2?"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "small answer to: What is 2+2?"
    assert completion.choices[0].finish_reason == "stop"
    assert raw.headers["x-rpra-route"] == "small" and raw.headers["x-rpra-reason"] == "predicted_ok"
    assert raw.headers["x-rpra-predicted-grade"] == "great" and raw.headers["x-rpra-model"] == "small"
    assert float(raw.headers["x-rpra-p-acceptable"]) == 1.0 and raw.headers["x-rpra-steps"] == "1"
    meta = completion.model_extra["rpra"]
    assert (meta["route"], meta["reason"], meta["model"], meta["steps"]) == ("small", "predicted_ok", "small", 1)
    assert meta["decisions"][0]["id"] == raw.headers["x-rpra-decision-id"]
    assert completion.usage.total_tokens > 0
    assert [d.id for d in engine.store.decisions()] == [raw.headers["x-rpra-decision-id"]]


def test_low_prediction_defers_and_the_headers_say_so(client):
    raw = client.chat.completions.with_raw_response.create(
        model="rpra-test",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "A hard one"}],
    )
    assert raw.parse().choices[0].message.content == "large answer to: A hard one"
    assert (raw.headers["x-rpra-route"], raw.headers["x-rpra-reason"], raw.headers["x-rpra-model"]) == (
        "large",
        "predicted_low",
        "large",
    )
    assert raw.headers["x-rpra-predicted-grade"] == "bad" and raw.headers["x-rpra-deferrals"] == "1"


def test_streaming_sends_openai_chunks_routing_headers_metadata_and_done(client, server):
    with client.chat.completions.with_streaming_response.create(
        model="rpra-test",
        messages=[{"role": "user", "content": "A hard one"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-rpra-route"] == "large" and response.headers["x-rpra-predicted-grade"] == "bad"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "large answer to: A hard one"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    assert finals[0].model_extra["rpra"]["route"] == "large"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    body = httpx.post(
        f"{server}/v1/chat/completions",
        headers={"authorization": f"Bearer {API_KEY}"},
        json={"model": "rpra-test", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    ).text
    assert body.rstrip().endswith("data: [DONE]") and body.count("data: ") > 3


def test_client_tools_come_back_as_tool_calls_and_the_result_round_trips(client):
    first = client.chat.completions.create(
        model="rpra-test", messages=[{"role": "user", "content": "What's the weather in Paris?"}], tools=[WEATHER_TOOL]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert first.model_extra["rpra"]["decisions"][0]["kind"] == "action"
    second = client.chat.completions.create(
        model="rpra-test",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "What's the weather in Paris?"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert second.choices[0].message.content == "small used the tool result sunny"
    assert second.choices[0].finish_reason == "stop"


def test_streamed_tool_calls_assemble(client):
    stream = client.chat.completions.create(
        model="rpra-test", messages=[{"role": "user", "content": "weather please"}], tools=[WEATHER_TOOL], stream=True
    )
    calls, finish = {}, None
    for c in stream:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            entry = calls.setdefault(tc.index, {"name": "", "arguments": ""})
            entry["name"] += tc.function.name or ""
            entry["arguments"] += tc.function.arguments or ""
        if c.choices and c.choices[0].finish_reason:
            finish = c.choices[0].finish_reason
    assert (
        finish == "tool_calls"
        and calls[0]["name"] == "get_weather"
        and json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    )


@pytest.mark.parametrize("key", ["wrong-key", None])
def test_authentication_failures(server, key):
    bad = openai.OpenAI(base_url=f"{server}/v1", api_key=key or "x", max_retries=0)
    if key is None:
        response = httpx.post(f"{server}/v1/chat/completions", json={"model": "rpra-test", "messages": []})
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
        return
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="rpra-test", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401
    assert info.value.body["code"] == "invalid_api_key" and info.value.body["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    assert httpx.get(f"{server}/metrics").status_code == 401
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"model": "rpra-test"}, 400, "messages", None),
        ({"model": "rpra-test", "messages": []}, 400, "messages", None),
        ({"model": "rpra-test", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role", None),
        ({"model": "rpra-test", "messages": [{"role": "tool", "content": "x"}]}, 400, "messages.0.tool_call_id", None),
        (
            {
                "model": "rpra-test",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            },
            400,
            "messages.0.content.0.type",
            None,
        ),
        ({"model": "rpra-test", "messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n", None),
        (
            {
                "model": "rpra-test",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "bad name!"}}],
            },
            400,
            "tools.0.function.name",
            None,
        ),
        ({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}, 404, "model", "model_not_found"),
    ],
)
def test_malformed_requests_get_openai_error_bodies(client, body, status, param, code):
    with pytest.raises(openai.APIStatusError) as info:
        client.post("/chat/completions", body=body, cast_to=httpx.Response)
    assert info.value.status_code == status
    error = info.value.body
    assert set(error) >= {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["param"] == param and error["code"] == code


def test_broken_json_and_oversized_bodies(server):
    auth = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
    broken = httpx.post(f"{server}/v1/chat/completions", headers=auth, content=b'{"model": "rpra-test", "messages": [')
    assert broken.status_code == 400 and "parse the JSON" in broken.json()["error"]["message"]
    huge = httpx.post(
        f"{server}/v1/chat/completions",
        headers=auth,
        json={"model": "rpra-test", "messages": [{"role": "user", "content": "x" * 10_000}]},
    )
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "request_too_large"
    unknown = httpx.get(f"{server}/v2/nothing", headers=auth)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_a_failing_model_is_a_502_without_leaking_the_exception(client):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="rpra-test", messages=[{"role": "user", "content": "hard crash"}])
    assert info.value.status_code == 502 and info.value.body["type"] == "server_error"
    assert "down" not in info.value.body["message"]


def test_models_health_and_metrics(client, server):
    assert [m.id for m in client.models.list()] == ["rpra-test"]
    client.chat.completions.create(model="rpra-test", messages=[{"role": "user", "content": "easy"}])
    client.chat.completions.create(model="rpra-test", messages=[{"role": "user", "content": "hard"}])
    auth = {"authorization": f"Bearer {API_KEY}"}
    metrics = httpx.get(f"{server}/metrics", headers=auth).json()
    assert metrics["requests"]["plain"] == 2 and metrics["decisions"]["total"] == 2
    assert metrics["decisions"]["deferral_rate"] == 0.5 and metrics["decisions"]["by_reason"] == {
        "predicted_ok": 1,
        "predicted_low": 1,
    }
    assert metrics["latency_ms"]["count"] == 2 and 0 < metrics["latency_ms"]["p50"] <= metrics["latency_ms"]["p99"]
    prom = httpx.get(f"{server}/metrics?format=prometheus", headers=auth).text
    assert "rpra_deferral_rate 0.5" in prom and 'rpra_latency_ms{quantile="0.99"}' in prom


def test_failures_are_counted_once(client, server):
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="rpra-test", messages=[{"role": "user", "content": "hard crash"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="rpra-test", messages=[{"role": "wizard", "content": "x"}])
    metrics = httpx.get(f"{server}/metrics", headers={"authorization": f"Bearer {API_KEY}"}).json()
    assert metrics["responses"] == {"5xx": 1, "4xx": 1} and metrics["requests"]["in_flight"] == 0


class SlowStreamer(ScriptedChatModel):
    """Streams 100 words, 50 ms apart, counting how many it produced."""

    produced: int = 0

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        for i in range(100):
            await asyncio.sleep(0.05)
            self.produced += 1
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=f"w{i} "))
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def test_a_client_hanging_up_cancels_the_run_and_frees_the_request():
    slow = SlowStreamer(responses=["unused"], rpra_name="small")
    engine = ChatEngine(small=slow, large=slow, predictor=FixedPredictor({"great": 1.0}), model_name="m")
    with serve_app(create_app(engine)) as url:
        body = {"model": "m", "messages": [{"role": "user", "content": "talk"}], "stream": True}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            lines = response.iter_lines()
            assert '"role":"assistant"' in next(lines)
            next(line for line in lines if "w0" in line)  # the first word arrived; now hang up
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/metrics").json()["requests"]["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        metrics = httpx.get(f"{url}/metrics").json()
        produced = slow.produced
        time.sleep(0.3)
    assert metrics["requests"]["in_flight"] == 0 and metrics["responses"] == {"4xx": 1}
    assert produced < 100 and slow.produced == produced  # the graph run stopped with the client


def test_a_truncated_answer_reports_finish_reason_length_plain_and_streamed():
    from langchain_core.messages import AIMessage

    cut = AIMessage("the answer was cut", response_metadata={"finish_reason": "length"})
    engine = ChatEngine(
        small=ScriptedChatModel(responses=[cut], cycle=True, rpra_name="small"),
        large=ScriptedChatModel(responses=["x"], rpra_name="large"),
        predictor=FixedPredictor(),
        model_name="rpra-test",
    )
    with serve_app(create_app(engine, api_key=API_KEY)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0, timeout=20)
        plain = client.chat.completions.create(model="rpra-test", messages=[{"role": "user", "content": "q"}])
        assert plain.choices[0].finish_reason == "length"
        stream = client.chat.completions.create(
            model="rpra-test", messages=[{"role": "user", "content": "q"}], stream=True
        )
        reasons = [c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason]
        assert reasons == ["length"]
