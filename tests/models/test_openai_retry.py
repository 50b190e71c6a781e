"""is_transient / retry_delays (the retry contract) and what ChatOpenAICompatible sends to each kind of server."""

from __future__ import annotations

import copy as copy_module
import pickle
import socket
import threading

import httpx
import openai
import pytest
from langchain_core.exceptions import ModelRateLimitError
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import ValidationError

from rpra_agent.core.errors import ConfigError, ModelCallError
from rpra_agent.models import load_chat_model
from rpra_agent.models.retry import (
    ModelContextOverflowError,
    ModelHTTPError,
    ModelUnreachableError,
    is_transient,
    retry_delays,
)

_REQUEST = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")


def _status(code: int) -> openai.APIStatusError:
    response = httpx.Response(code, request=_REQUEST, json={"error": {"message": f"status {code}"}})
    return openai.OpenAI(api_key="x", base_url="http://127.0.0.1:1/v1")._make_status_error_from_response(response)


def _validation_error() -> ValidationError:
    from pydantic import BaseModel

    class M(BaseModel):
        x: int

    try:
        M(x="no")
    except ValidationError as exc:
        return exc
    raise AssertionError


TRANSIENT = [
    ("connection refused", ConnectionRefusedError()),
    ("connection reset", ConnectionResetError()),
    ("timeout", TimeoutError("leg timed out")),
    ("httpx connect", httpx.ConnectError("refused", request=_REQUEST)),
    ("httpx read timeout", httpx.ReadTimeout("slow", request=_REQUEST)),
    ("openai connection", openai.APIConnectionError(request=_REQUEST)),
    ("openai timeout", openai.APITimeoutError(request=_REQUEST)),
    ("HTTP 408", _status(408)),
    ("HTTP 429", _status(429)),
    ("HTTP 500", _status(500)),
    ("HTTP 502", _status(502)),
    ("HTTP 503", _status(503)),
    ("httpx 503", httpx.HTTPStatusError("x", request=_REQUEST, response=httpx.Response(503, request=_REQUEST))),
    ("langchain rate limit", ModelRateLimitError("slow down")),
    ("ours 503", ModelHTTPError("busy", status_code=503)),
    ("ours unreachable", ModelUnreachableError("cannot connect")),
    ("all transient", ModelCallError("x", leg="large", errors=[TimeoutError(), _status(503)])),
    ("group", ExceptionGroup("x", [TimeoutError(), ConnectionResetError()])),
]
DETERMINISTIC = [
    ("HTTP 400", _status(400)),
    ("HTTP 401", _status(401)),
    ("HTTP 403", _status(403)),
    ("HTTP 404", _status(404)),
    ("HTTP 409", _status(409)),
    ("HTTP 422", _status(422)),
    ("httpx 400", httpx.HTTPStatusError("x", request=_REQUEST, response=httpx.Response(400, request=_REQUEST))),
    ("ours 400", ModelHTTPError("bad", status_code=400)),
    ("ours 500 marked deterministic", ModelHTTPError("1 validation error: ...", status_code=500, transient=False)),
    ("overflow", ModelContextOverflowError("too long", status_code=400)),
    ("pydantic validation", _validation_error()),
    ("value", ValueError("bad value")),
    ("type", TypeError("not callable")),
    ("key", KeyError("k")),
    ("config", ConfigError("fix it")),
    ("runtime", RuntimeError("?")),
    ("keyboard interrupt", KeyboardInterrupt()),
    ("mixed", ModelCallError("x", leg="large", errors=[TimeoutError(), _status(400)])),
    ("empty", ModelCallError("x", leg="large", errors=[])),
    ("mixed group", ExceptionGroup("x", [TimeoutError(), ValueError()])),
    ("status-like but not HTTP", type("Odd", (Exception,), {"status_code": 7})()),
]


@pytest.mark.parametrize(("name", "exc"), TRANSIENT, ids=[n for n, _ in TRANSIENT])
def test_transient(name, exc):
    assert is_transient(exc) is True


@pytest.mark.parametrize(("name", "exc"), DETERMINISTIC, ids=[n for n, _ in DETERMINISTIC])
def test_deterministic(name, exc):
    assert is_transient(exc) is False


def test_our_errors_agree_with_langchains_retry_flag():
    for exc in (ModelHTTPError("x", status_code=429), ModelHTTPError("x", status_code=400), ModelUnreachableError("x")):
        assert exc.is_retryable is is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ModelHTTPError("busy", status_code=503, model="m", base_url="http://h/v1", body={"message": "busy"}),
        ModelHTTPError("1 validation error", status_code=500, transient=False),
        ModelContextOverflowError("too long", status_code=400, model="m"),
        ModelUnreachableError("cannot connect", model="m", base_url="http://h/v1"),
    ],
)
def test_our_errors_survive_pickle_and_deepcopy(exc):
    for copy in (pickle.loads(pickle.dumps(exc)), copy_module.deepcopy(exc)):
        assert type(copy) is type(exc) and str(copy) == str(exc)
        assert (copy.status_code, copy.message, copy.body, copy.transient) == (
            exc.status_code,
            exc.message,
            exc.body,
            exc.transient,
        )


@pytest.mark.parametrize(
    ("attempts", "backoff", "cap", "expected"),
    [
        (1, 0.5, 30.0, []),
        (2, 0.5, 30.0, [0.5]),
        (4, 0.5, 30.0, [0.5, 1.0, 2.0]),
        (5, 1.0, 3.0, [1.0, 2.0, 3.0, 3.0]),
        (3, 0.0, 30.0, [0.0, 0.0]),
    ],
)
def test_retry_delays(attempts, backoff, cap, expected):
    assert retry_delays(attempts, backoff, max_delay_s=cap) == expected


@pytest.mark.parametrize(("attempts", "backoff"), [(0, 1.0), (2, -1.0)])
def test_retry_delays_rejects_nonsense(attempts, backoff):
    with pytest.raises(ValueError, match="must be >= "):
        retry_delays(attempts, backoff)


# --- What goes on the wire, per kind of server (no network: payloads only) -------------------

TOOL_TURN = [
    HumanMessage("2+3?"),
    AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]),
    ToolMessage("5", tool_call_id="c1"),
]


def test_openai_itself_gets_its_own_wire_format():
    model = load_chat_model("openai:gpt-4o-mini", api_key="sk-test", max_tokens=7)
    assert not model.compat_mode and model.max_retries == 0
    payload = model._get_request_payload(TOOL_TURN)
    assert payload["messages"][1]["content"] is None  # OpenAI's own shape after a tool call
    assert payload["max_completion_tokens"] == 7 and "extra_body" not in payload
    assert model._should_stream_usage() is True
    custom = load_chat_model("openai:gpt-4o-mini", api_key="sk-test", base_url="https://api.openai.com/v1")
    assert custom._should_stream_usage() is True  # upstream asks only when no base URL is given
    assert model._should_stream_usage(stream_usage=False) is False


def test_a_local_server_gets_empty_content_top_level_max_tokens_and_streamed_usage():
    model = load_chat_model("openai:m?base_url=http://127.0.0.1:8080/v1&max_tokens=7")
    assert model.compat_mode
    payload = model._get_request_payload(TOOL_TURN, max_tokens=3, temperature=0.25)
    assert payload["messages"][1]["content"] == ""
    assert payload["extra_body"] == {"max_tokens": 3} and "max_completion_tokens" not in payload
    assert payload["temperature"] == 0.25
    merged = model._get_request_payload(TOOL_TURN, max_tokens=3, extra_body={"top_k": 5})
    assert merged["extra_body"] == {"top_k": 5, "max_tokens": 3}
    assert model._should_stream_usage() is True
    assert model._should_stream_usage(stream_usage=False) is False
    assert (
        load_chat_model("openai:m?base_url=http://127.0.0.1:8080/v1&stream_usage=false")._should_stream_usage() is False
    )


def test_sdk_retries_can_still_be_chosen_explicitly():
    model = load_chat_model("openai:m?base_url=http://127.0.0.1:8080/v1&max_retries=2")
    assert model.max_retries == 2 and model.root_client.max_retries == 2


def test_a_connection_cut_mid_stream_is_a_clean_transient_error():
    """A server that starts an SSE stream and drops the connection (a tiny raw server on 127.0.0.1)."""
    chunk = (
        b'data: {"id":"x","object":"chat.completion.chunk","created":0,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"Par"},"finish_reason":null}]}\n\n'
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve_once() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            conn.sendall(head + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")  # then hang up mid-body

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    model = load_chat_model(f"openai:m?base_url=http://127.0.0.1:{port}/v1")
    try:
        # FIN (RemoteProtocolError) or RST (ReadError, when request bytes were still unread): both are a cut
        with pytest.raises(
            ModelUnreachableError, match=r"the connection failed .(RemoteProtocolError|ReadError)"
        ) as info:
            list(model.stream("hi"))
    finally:
        thread.join(timeout=10)
        listener.close()
    assert is_transient(info.value) and isinstance(info.value.sdk_error, openai.APIConnectionError)
