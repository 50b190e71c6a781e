"""The OpenAI chat-completions wire format: request validation and conversions.

Pure pydantic and LangChain; no web framework here.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "APIError",
    "ChatRequest",
    "chunk",
    "completion",
    "error_body",
    "parse_request",
    "to_langchain",
    "tool_calls_out",
]

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class APIError(Exception):
    """An error to return as an OpenAI-style body.

    Attributes:
        status: HTTP status code.
        message: Human-readable message.
        type: ``invalid_request_error``, ``authentication_error``, ``server_error`` ...
        param: The offending request field, if any.
        code: A machine-readable code, if any.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code


def error_body(
    message: str, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class _Function(BaseModel):
    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _TOOL_NAME.match(value):
            raise ValueError("tool names must be 1-64 characters of a-z, A-Z, 0-9, _ or -")
        return value


class ToolSpec(BaseModel):
    """A client-side tool (executed by the client, never by the server)."""

    type: Literal["function"]
    function: _Function


class _CallFunction(BaseModel):
    name: str
    arguments: str = "{}"


class _ToolCallIn(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: _CallFunction


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[_ToolCallIn] | None = None
    tool_call_id: str | None = None


class _StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    """A ``POST /v1/chat/completions`` body (unknown OpenAI parameters are accepted and ignored)."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    n: int = Field(default=1, ge=1)
    metadata: dict[str, str] | None = None
    user: str | None = None


_UNION_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _loc(error: Any) -> str | None:
    """The error's location as ``a.0.b``, without pydantic's union-branch tags."""
    parts = [
        str(p)
        for p in error.get("loc", ())
        if isinstance(p, int) or (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(p)) and str(p) not in _UNION_TAGS)
    ]
    return ".".join(parts) or None


MAX_DEPTH = 64
"""Deepest nesting of JSON arrays/objects a request may have."""
MAX_INT_DIGITS = 64
"""Longest integer literal a request may hold."""


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer literal has {len(text)} digits, more than the limit of {MAX_INT_DIGITS}")
    return int(text)


def _too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``data`` nests deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_request(raw: bytes) -> ChatRequest:
    """Parse and validate a request body (nesting and integer size are bounded).

    Raises:
        APIError: 400 with the offending ``param`` on any problem; code
            ``invalid_json`` for a body that is not JSON, nests deeper than
            :data:`MAX_DEPTH` or holds an integer longer than :data:`MAX_INT_DIGITS` digits.
    """
    try:
        data = json.loads(raw, parse_int=_bounded_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"We could not parse the JSON body of your request ({exc}).", code="invalid_json") from None
    except RecursionError:
        raise APIError(
            400, f"The JSON body nests deeper than the limit of {MAX_DEPTH} levels.", code="invalid_json"
        ) from None
    except ValueError as exc:  # an integer literal over the limit
        raise APIError(400, f"We could not parse the JSON body of your request ({exc}).", code="invalid_json") from None
    if _too_deep(data):
        raise APIError(400, f"The JSON body nests deeper than the limit of {MAX_DEPTH} levels.", code="invalid_json")
    if not isinstance(data, dict):
        raise APIError(400, "The request body must be a JSON object.")
    try:
        request = ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _loc(first)
        raise APIError(
            400, f"Invalid value for '{param or 'body'}': {first.get('msg', 'invalid')}.", param=param
        ) from None
    if request.n != 1:
        raise APIError(400, "Only n=1 is supported.", param="n")
    return request


def _text(content: str | list[dict[str, Any]] | None, param: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for i, part in enumerate(content):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise APIError(
                400, f"Only text content parts are supported, not {part.get('type')!r}.", param=f"{param}.{i}.type"
            )
        texts.append(part["text"])
    return "\n".join(texts)


def to_langchain(messages: list[ChatMessage]) -> list[BaseMessage]:
    """Convert OpenAI messages to LangChain messages.

    Raises:
        APIError: on a tool message without ``tool_call_id``, tool-call arguments that
            are not a JSON object, or non-text content.
    """
    out: list[BaseMessage] = []
    for i, m in enumerate(messages):
        param = f"messages.{i}"
        text = _text(m.content, f"{param}.content")
        if m.role in ("system", "developer"):
            out.append(SystemMessage(text))
        elif m.role == "user":
            out.append(HumanMessage(text, name=m.name) if m.name else HumanMessage(text))
        elif m.role == "tool":
            if not m.tool_call_id:
                raise APIError(400, "A message with role 'tool' needs a 'tool_call_id'.", param=f"{param}.tool_call_id")
            out.append(ToolMessage(text, tool_call_id=m.tool_call_id))
        else:
            calls = []
            for j, call in enumerate(m.tool_calls or []):
                try:
                    args = json.loads(call.function.arguments or "{}")
                except json.JSONDecodeError:
                    args = None
                if not isinstance(args, dict):
                    raise APIError(
                        400,
                        "Tool call arguments must be a JSON object encoded as a string.",
                        param=f"{param}.tool_calls.{j}.function.arguments",
                    )
                calls.append({"name": call.function.name, "args": args, "id": call.id, "type": "tool_call"})
            out.append(AIMessage(text, tool_calls=calls))
    return out


def tool_calls_out(message: AIMessage) -> list[dict[str, Any]]:
    """A message's tool calls in OpenAI format."""
    return [
        {
            "id": c.get("id") or f"call_{i}",
            "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c["args"])},
        }
        for i, c in enumerate(message.tool_calls)
    ]


def completion(
    completion_id: str,
    model: str,
    message: AIMessage,
    *,
    client_tools: bool,
    usage: dict[str, int],
    rpra: dict[str, Any],
) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    calls = tool_calls_out(message) if client_tools else []
    text = message.text if isinstance(message.text, str) else str(message.content)
    body: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        body["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": body, "finish_reason": finish_reason(message, client_tools), "logprobs": None}
        ],
        "usage": usage,
        "rpra": rpra,
    }


def finish_reason(message: AIMessage, client_tools: bool) -> str:
    """``tool_calls`` for client tool calls, ``length`` when the answering model was cut off, else ``stop``."""
    if client_tools and message.tool_calls:
        return "tool_calls"
    meta = message.response_metadata or {}
    said = meta.get("finish_reason") or meta.get("stop_reason")
    return "length" if said in ("length", "max_tokens") else "stop"


def chunk(
    completion_id: str,
    model: str,
    created: int,
    delta: dict[str, Any] | None,
    *,
    finish_reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object (``delta=None``: a usage-only chunk with no choices)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
        **extra,
    }
