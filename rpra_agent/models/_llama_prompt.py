"""Chat messages, tool descriptions and tool-call parsing for llama.cpp models.

Tools use the Hermes/Qwen convention, which any instruction model can follow from the
system prompt: tool signatures inside ``<tools>``, calls as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, results inside
``<tool_response>`` (see :mod:`rpra_agent.models._llama_grammar` for the grammar).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from rpra_agent.core.errors import ConfigError

__all__ = ["normalize_tool_choice", "parse_tool_calls", "to_chat_dicts", "tools_system_block"]

logger = logging.getLogger(__name__)

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "chat": "user"}
_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def _same(text: str) -> str:
    return text


def tools_system_block(tools: Sequence[dict[str, Any]], defang: Callable[[str], str] = _same) -> str:
    """The system-prompt section that describes ``tools`` (OpenAI tool dicts); ``defang`` cleans their JSON."""
    lines = "\n".join(defang(json.dumps(t, ensure_ascii=False)) for t in tools)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{lines}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
        "</tool_call>"
    )


def _text(message: BaseMessage) -> str:
    return message.text if isinstance(message.text, str) else str(message.content)


def _call_text(calls: Sequence[Any], defang: Callable[[str], str]) -> str:
    return "\n".join(
        "<tool_call>\n"
        + defang(json.dumps({"name": c["name"], "arguments": c["args"]}, ensure_ascii=False))
        + "\n</tool_call>"
        for c in calls
    )


def to_chat_dicts(
    messages: Sequence[BaseMessage],
    tools: Sequence[dict[str, Any]] | None = None,
    defang: Callable[[str], str] = _same,
) -> list[dict[str, str]]:
    """LangChain messages as ``{"role", "content"}`` dicts for a chat template.

    Tool calls become ``<tool_call>`` text; consecutive tool results merge into one
    user message of ``<tool_response>`` blocks; the tool block joins the first
    system message (or becomes one). ``defang`` is applied to every text that comes
    from a message or a tool schema, never to the markup added here.
    """
    out: list[dict[str, str]] = []
    for m in messages:
        if isinstance(m, ToolMessage):
            block = f"<tool_response>\n{defang(_text(m))}\n</tool_response>"
            if out and out[-1].get("_tool") == "1":
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_tool": "1"})
            continue
        role = _ROLES.get(m.type)
        if role is None:
            raise ConfigError(f"cannot send a {m.type!r} message to a llama.cpp model")
        content = defang(_text(m))
        if isinstance(m, AIMessage) and m.tool_calls:
            content = (content + "\n" if content else "") + _call_text(m.tool_calls, defang)
        out.append({"role": role, "content": content})
    for d in out:
        d.pop("_tool", None)
    if tools:
        block = tools_system_block(tools, defang)
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{block}" if out[0]["content"] else block
        else:
            out.insert(0, {"role": "system", "content": block})
    return out


def normalize_tool_choice(choice: Any, tools: Sequence[dict[str, Any]]) -> str:
    """``auto``, ``none``, ``required`` or a tool name, from any LangChain/OpenAI spelling.

    Raises:
        ConfigError: On an unknown value or a tool name that was not bound.
    """
    names = [t["function"]["name"] for t in tools]
    if choice is None or choice == "auto" or choice is False:
        return "auto" if choice is not False else "none"
    if choice in ("any", "required") or choice is True:
        return "required"
    if choice == "none":
        return "none"
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") or choice.get("name")
    if isinstance(choice, str) and choice in names:
        return choice
    raise ConfigError(f"tool_choice {choice!r} is not 'auto', 'none', 'any', 'required' or one of the tools {names}")


def parse_tool_calls(text: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Split generated text into (content, tool_calls, invalid_tool_calls).

    Text outside ``<tool_call>`` blocks stays content. A call whose JSON does not
    parse or lacks a name is returned as an invalid tool call, never raised.
    """
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for raw in _CALL_RE.findall(text):
        call_id = "call_" + uuid.uuid4().hex[:24]
        try:
            obj = json.loads(raw, strict=False)
            name, args = obj["name"], obj.get("arguments", {})
            if isinstance(args, str):
                args = json.loads(args, strict=False)
            if not isinstance(name, str) or not isinstance(args, dict):
                raise TypeError("name must be a string and arguments an object")
        except (ValueError, KeyError, TypeError) as exc:
            invalid.append({"name": None, "args": raw, "id": call_id, "error": str(exc), "type": "invalid_tool_call"})
            continue
        calls.append({"name": name, "args": args, "id": call_id, "type": "tool_call"})
    content = _CALL_RE.sub("", text).strip()
    return content, calls, invalid
