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

Token counting never downloads a tokenizer: :meth:`ChatOpenAICompatible.get_num_tokens`
estimates from the UTF-8 length (about 4 bytes per token).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI

__all__ = ["ChatOpenAICompatible", "is_openai_url"]

logger = logging.getLogger(__name__)

_BYTES_PER_TOKEN = 4.0


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
        return payload

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
