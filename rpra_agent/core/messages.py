"""Message helpers shared by every layer: plain text of a message, escaped transcripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

__all__ = [
    "context_record",
    "encode_messages",
    "escape_tags",
    "extend_system",
    "last_request_text",
    "message_text",
    "step_kind",
]


def escape_tags(text: str) -> str:
    """Escape angle brackets so that user text cannot close the tags of a prompt."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def message_text(message: BaseMessage) -> str:
    """Plain text of a message, including its tool calls."""
    text: str = str(message.text)
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = [{"name": c["name"], "args": c["args"]} for c in message.tool_calls]
        text = (text + "\n" if text else "") + "TOOL CALLS: " + json.dumps(calls, sort_keys=True, default=str)
    return text


def encode_messages(messages: Sequence[BaseMessage]) -> str:
    """Encode a conversation as escaped JSON lines, one message each."""
    lines = [
        json.dumps({"role": m.type, "content": message_text(m)}, ensure_ascii=True)
        for m in messages
        if m.type != "system"
    ]
    return escape_tags("\n".join(lines))


def extend_system(system: SystemMessage | None, extra: str) -> SystemMessage:
    """A system message with ``extra`` appended (or ``extra`` alone)."""
    if system is None or not system.text:
        return SystemMessage(extra)
    return SystemMessage(f"{system.text}\n\n{extra}")


def step_kind(message: AIMessage) -> Literal["answer", "action"]:
    """``action`` when the message calls a tool, else ``answer``."""
    return "action" if message.tool_calls else "answer"


def last_request_text(messages: Sequence[BaseMessage]) -> str:
    """Text of the last human message (the bare request), or ``""``."""
    request = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    return message_text(request) if request is not None else ""


_ROLE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def context_record(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """The JSON form of a step's conversation (``Decision.metadata["context"]``), for hindsight data.

    Each message is ``{"role", "content"}``; assistant messages add their
    ``tool_calls`` (name, args, id) and tool messages their ``tool_call_id`` and ``name``.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.type not in _ROLE:
            continue
        entry: dict[str, Any] = {"role": _ROLE[m.type], "content": str(m.text)}
        if isinstance(m, AIMessage) and m.tool_calls:
            entry["tool_calls"] = [
                {"name": c["name"], "args": c["args"], "id": c.get("id") or ""} for c in m.tool_calls
            ]
        if isinstance(m, ToolMessage):
            entry["tool_call_id"] = m.tool_call_id
            if m.name:
                entry["name"] = m.name
        out.append(entry)
    return out
