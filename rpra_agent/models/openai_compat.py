"""``ChatOpenAI`` for OpenAI itself and for OpenAI-compatible servers (llama.cpp's server, vLLM).

Measured gotchas of local servers (see ``STACK.md``), handled when ``compat`` is on
(the default for any base URL other than api.openai.com):

- ``max_tokens`` / ``max_completion_tokens`` are ignored: the limit is sent as
  ``extra_body={"max_tokens": N}``.
- ``with_structured_output``'s default ``json_schema`` method fails (HTTP 500): the
  ``function_calling`` method is used instead.
- ``tool_choice="any"``/``"required"`` fails (HTTP 500): with one tool it becomes that
  tool's name (a forced call), with several ``auto``.
- ``logprobs=True`` alone returns nothing: ``top_logprobs`` defaults to 1.
- An assistant message that carries tool calls is sent with ``content: ""``, not
  ``null``, which llama.cpp's server rejects (HTTP 500).
- A stream the server ends without a ``finish_reason`` raises a deterministic
  :class:`~rpra_agent.models.retry.ModelHTTPError` instead of passing as an empty
  answer (llama.cpp's server answers 200 and then aborts when the prompt overflows).
- A streamed tool call repeats its name in every delta, which LangChain concatenates
  (``"addaddadd"``): the repeats are dropped.
- A stream that carries no usage (llama-cpp-python's server ignores
  ``stream_options.include_usage``) gets an estimated usage chunk at the end: output
  tokens = the streamed deltas (one per token on that server), input tokens = the
  offline estimate below; ``response_metadata["usage_estimated"]`` is true.

Always, on any server:

- Streams ask for usage (``stream_options.include_usage``) unless ``stream_usage=False``
  (upstream asks only when no base URL is set).
- The OpenAI SDK's own retries are off (``max_retries=0``): the caller retries, and only
  transient failures (see :mod:`rpra_agent.models.retry`).
- SDK errors are raised as :class:`~rpra_agent.models.retry.ModelHTTPError` whose
  message is the server's own, without the SDK's chained traceback (the SDK error stays
  on ``sdk_error``).

Token counting never downloads a tokenizer: :meth:`ChatOpenAICompatible.get_num_tokens`
estimates from the UTF-8 length (about 4 bytes per token).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, NoReturn
from urllib.parse import urlparse

import httpx
import openai
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI

from rpra_agent.models._openai_stream import StreamState
from rpra_agent.models.retry import ModelContextOverflowError, ModelHTTPError, ModelUnreachableError

__all__ = ["ChatOpenAICompatible", "is_openai_url"]

logger = logging.getLogger(__name__)

_BYTES_PER_TOKEN = 4.0
_MAX_MESSAGE_CHARS = 2000
# llama-cpp-python's server answers a request its pydantic models reject with HTTP 500.
_VALIDATION_500 = re.compile(r"^\d+ validation errors?:")


def is_openai_url(base_url: str | None) -> bool:
    """Whether ``base_url`` is OpenAI's own API (``None`` means OpenAI's default)."""
    if not base_url:
        return True
    host = (urlparse(base_url).hostname or "").lower()
    return host == "api.openai.com" or host.endswith(".openai.com")


class ChatOpenAICompatible(ChatOpenAI):
    """``ChatOpenAI`` that works around OpenAI-compatible servers' gaps and counts tokens offline.

    Args:
        compat: Apply the local-server workarounds (``None``: on unless the base URL
            is api.openai.com).
        rpra_name: Identifier recorded in decisions (default ``openai:<model>``).
        **kwargs: As for ``ChatOpenAI``.
    """

    compat: bool | None = None
    rpra_name: str = ""
    max_retries: int | None = 0
    """The SDK's own retries; 0 so that only the caller retries (transient errors only)."""

    @property
    def compat_mode(self) -> bool:
        """Whether the local-server workarounds are on."""
        return self.compat if self.compat is not None else not is_openai_url(self.openai_api_base)

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        if not self.compat_mode:
            return payload
        limit = payload.pop("max_completion_tokens", None)
        limit = payload.pop("max_tokens", limit)
        if limit is not None:
            payload["extra_body"] = {**(payload.get("extra_body") or {}), "max_tokens": limit}
        if payload.get("logprobs") and payload.get("top_logprobs") is None:
            payload["top_logprobs"] = 1
        for message in payload.get("messages") or ():
            if isinstance(message, dict) and message.get("role") == "assistant" and message.get("content") is None:
                message["content"] = ""
        return payload

    def _should_stream_usage(self, stream_usage: bool | None = None, **kwargs: Any) -> bool:
        explicit = (
            stream_usage,
            (kwargs.get("stream_options") or {}).get("include_usage"),
            (self.model_kwargs.get("stream_options") or {}).get("include_usage"),
            self.stream_usage,
        )
        if not any(isinstance(x, bool) for x in explicit):  # OpenAI and the servers that copy it accept it
            return True
        return bool(super()._should_stream_usage(stream_usage, **kwargs))

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return super()._generate(messages, *args, **kwargs)
        except (openai.OpenAIError, httpx.TransportError) as exc:
            self._raise_clean(exc)

    async def _agenerate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return await super()._agenerate(messages, *args, **kwargs)
        except (openai.OpenAIError, httpx.TransportError) as exc:
            self._raise_clean(exc)

    def _stream(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        counter = StreamState(dedupe=self.compat_mode)
        try:
            for chunk in super()._stream(messages, *args, **kwargs):
                yield counter.see(chunk)
        except (openai.OpenAIError, httpx.TransportError) as exc:
            self._raise_clean(exc)
        if self.compat_mode and (last := self._end_of_stream(counter, messages, kwargs.get("tools"))) is not None:
            yield last

    async def _astream(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        counter = StreamState(dedupe=self.compat_mode)
        try:
            async for chunk in super()._astream(messages, *args, **kwargs):
                yield counter.see(chunk)
        except (openai.OpenAIError, httpx.TransportError) as exc:
            self._raise_clean(exc)
        if self.compat_mode and (last := self._end_of_stream(counter, messages, kwargs.get("tools"))) is not None:
            yield last

    def _end_of_stream(
        self, counter: StreamState, messages: list[BaseMessage], tools: Any = None
    ) -> ChatGenerationChunk | None:
        """The usage chunk a server did not send (if any); an error if the stream never finished."""
        if not counter.finished:
            raise ModelHTTPError(
                "the server ended the stream without a finish_reason (it failed after answering 200: "
                "llama.cpp's server does so when the prompt exceeds its context; its log says why)",
                status_code=200,
                model=self.model_name,
                base_url=_public_url(self.openai_api_base),
                transient=False,
            )
        return counter.estimate(self.get_num_tokens_from_messages(messages, tools)) if counter.missing else None

    def _raise_clean(self, exc: openai.OpenAIError | httpx.TransportError) -> NoReturn:
        """Re-raise an SDK error as a :class:`ModelHTTPError` carrying the server's message."""
        clean = _clean_error(exc, model=self.model_name, base_url=_public_url(self.openai_api_base))
        if clean is None:
            raise exc
        clean.sdk_error = exc
        raise clean from None

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Any],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """``ChatOpenAI.bind_tools``, mapping ``any``/``required`` to what local servers accept."""
        if self.compat_mode and (tool_choice in ("any", "required") or tool_choice is True):
            names = [convert_to_openai_tool(t)["function"]["name"] for t in tools]
            if len(names) == 1:
                tool_choice = names[0]
            else:
                logger.warning("tool_choice=%r is not supported by this server; using 'auto'", tool_choice)
                tool_choice = "auto"
        return super().bind_tools(tools, tool_choice=tool_choice, **kwargs)

    def with_structured_output(self, schema: Any = None, *, method: str | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """``ChatOpenAI.with_structured_output``; local servers get ``method="function_calling"``."""
        if self.compat_mode and method in (None, "json_schema"):
            method = "function_calling"
        if method is not None:
            kwargs["method"] = method
        return super().with_structured_output(schema, **kwargs)

    def get_num_tokens(self, text: str) -> int:
        """Estimated token count (about 4 UTF-8 bytes per token); never downloads a tokenizer."""
        return math.ceil(len(text.encode("utf-8")) / _BYTES_PER_TOKEN) if text else 0

    def get_num_tokens_from_messages(self, messages: Sequence[BaseMessage], tools: Any = None, **kwargs: Any) -> int:  # type: ignore[override]
        """Estimated prompt size: content, tool calls and about 4 tokens of framing per message."""
        total = 3
        for m in messages:
            text = str(m.text) if isinstance(m.text, str) else str(m.content)
            if isinstance(m, AIMessage) and m.tool_calls:
                text += str([(c["name"], c["args"]) for c in m.tool_calls])
            total += 4 + self.get_num_tokens(text)
        if tools:
            total += self.get_num_tokens(str([convert_to_openai_tool(t) for t in tools]))
        return total


def _public_url(base_url: str | None) -> str:
    """``base_url`` without credentials or query (it goes into error messages)."""
    if not base_url:
        return "https://api.openai.com/v1"
    parts = urlparse(base_url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _server_message(exc: openai.APIStatusError) -> str:
    """The server's own error message, out of OpenAI's, FastAPI's or a plain-text body."""
    body: Any = exc.body
    if isinstance(body, dict):
        found: Any = body.get("message") or body.get("detail") or body.get("error")
        if isinstance(found, dict):
            found = found.get("message") or found
        if isinstance(found, list):  # FastAPI's validation details
            found = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in found)
        body = found
    text = str(body).strip() if body else ""
    if not text:
        try:
            text = exc.response.text.strip()
        except Exception:  # noqa: BLE001 - a streamed body may be unreadable
            text = ""
    text = text or exc.message
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + " [...]"


def _clean_error(exc: openai.OpenAIError | httpx.TransportError, *, model: str, base_url: str) -> ModelHTTPError | None:
    if isinstance(exc, httpx.TransportError):  # raised while reading a stream: the SDK does not wrap those
        return ModelUnreachableError(
            f"the connection broke ({type(exc).__name__}: {exc})", model=model, base_url=base_url
        )
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnreachableError("the request timed out", model=model, base_url=base_url)
    if isinstance(exc, openai.APIConnectionError):
        cause: BaseException | None = exc
        while isinstance(cause, openai.OpenAIError):  # langchain-openai and the SDK each wrap the transport error
            cause = cause.__cause__ or cause.__context__
        reason = f"{type(cause).__name__}: {cause}" if cause else exc.message
        return ModelUnreachableError(f"the connection failed ({reason})", model=model, base_url=base_url)
    if not isinstance(exc, openai.APIStatusError):
        return None
    message = _server_message(exc)
    transient = False if exc.status_code == 500 and _VALIDATION_500.match(message) else None
    overflow = exc.code == "context_length_exceeded" or "context length" in message or "context window" in message
    kind = ModelContextOverflowError if overflow and exc.status_code == 400 else ModelHTTPError
    return kind(
        message, status_code=exc.status_code, model=model, base_url=base_url, body=exc.body, transient=transient
    )
