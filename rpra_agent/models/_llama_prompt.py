"""Chat prompts, tool descriptions, tool grammars and tool-call parsing for llama.cpp models.

Tools use the Hermes/Qwen convention, which any instruction model can follow from the
system prompt: tool signatures inside ``<tools>``, calls as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, results inside
``<tool_response>``. A GBNF grammar built from the tools' JSON schemas makes the model
emit either a well-formed call (forced, or on its own under ``auto``) or plain text.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from rpra_agent.core.errors import ConfigError

__all__ = [
    "CHATML_TEMPLATE",
    "fenced_tokens",
    "normalize_tool_choice",
    "parse_tool_calls",
    "to_chat_dicts",
    "tool_grammar",
    "tools_system_block",
]

logger = logging.getLogger(__name__)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "chat": "user"}
_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def tools_system_block(tools: Sequence[dict[str, Any]]) -> str:
    """The system-prompt section that describes ``tools`` (OpenAI tool dicts)."""
    lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{lines}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
        "</tool_call>"
    )


def _text(message: BaseMessage) -> str:
    return message.text if isinstance(message.text, str) else str(message.content)


def _call_text(calls: Sequence[Any]) -> str:
    return "\n".join(
        "<tool_call>\n" + json.dumps({"name": c["name"], "arguments": c["args"]}, ensure_ascii=False) + "\n</tool_call>"
        for c in calls
    )


def to_chat_dicts(
    messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]] | None = None
) -> list[dict[str, str]]:
    """LangChain messages as ``{"role", "content"}`` dicts for a chat template.

    Tool calls become ``<tool_call>`` text; consecutive tool results merge into one
    user message of ``<tool_response>`` blocks; the tool block joins the first
    system message (or becomes one).
    """
    out: list[dict[str, str]] = []
    for m in messages:
        if isinstance(m, ToolMessage):
            block = f"<tool_response>\n{_text(m)}\n</tool_response>"
            if out and out[-1].get("_tool") == "1":
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_tool": "1"})
            continue
        role = _ROLES.get(m.type)
        if role is None:
            raise ConfigError(f"cannot send a {m.type!r} message to a llama.cpp model")
        content = _text(m)
        if isinstance(m, AIMessage) and m.tool_calls:
            content = (content + "\n" if content else "") + _call_text(m.tool_calls)
        out.append({"role": role, "content": content})
    for d in out:
        d.pop("_tool", None)
    if tools:
        block = tools_system_block(tools)
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


def _call_schema(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool["function"]
    params = fn.get("parameters") or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": fn["name"]}, "arguments": params},
        "required": ["name", "arguments"],
    }


def tool_grammar(tools: Sequence[dict[str, Any]], choice: str) -> str | None:
    """A GBNF grammar for ``choice`` over ``tools`` (``None`` when unconstrained).

    ``auto`` allows one or more calls or plain text that does not start with ``<``;
    ``required`` allows only calls; a tool name allows exactly one call of it.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    if choice == "none" or not tools:
        return None
    chosen = [t for t in tools if t["function"]["name"] == choice] or list(tools)
    schemas = [_call_schema(t) for t in chosen]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    body = json_schema_to_gbnf(json.dumps(schema))
    body = re.sub(r"^root ::=", "rpra-call-json ::=", body, count=1, flags=re.MULTILINE)
    call = 'rpra-call ::= "<tool_call>" "\\n"? rpra-call-json "\\n"? "</tool_call>"\n'
    if choice not in ("auto", "required"):
        return f"root ::= rpra-call\n{call}{body}"
    calls = 'rpra-calls ::= rpra-call ("\\n" rpra-call)*\n'
    if choice == "required":
        return f"root ::= rpra-calls\n{calls}{call}{body}"
    return f"root ::= rpra-calls | rpra-text\nrpra-text ::= [^<] [^\\x00]*\n{calls}{call}{body}"


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
    content = _CALL_RE.sub("", text).strip() if (calls or invalid) else text
    return content, calls, invalid


def _mark(i: int) -> str:
    return f"\ue000rpra-content-{i}\ue001"


def fenced_tokens(llama: Any, formatter: Any, dicts: list[dict[str, str]]) -> list[int]:
    """Tokenize a chat prompt so that message content can never become special tokens.

    The template is rendered with a placeholder in place of each message's content;
    the template's own text is tokenized with special tokens enabled (``<|im_start|>``
    and friends), every message's content with them disabled. So user or tool text
    that contains ``<|im_end|><|im_start|>assistant`` stays plain text and cannot forge
    a chat turn. A template that does not insert content verbatim (placeholders not
    found exactly once, in order) falls back to tokenizing the rendered prompt with the
    special-token text removed from the content.
    """
    marks = [_mark(i) for i in range(len(dicts))]
    rendered = formatter(messages=[{**d, "content": marks[i]} for i, d in enumerate(dicts)])
    prompt, bos = rendered.prompt, not rendered.added_special
    segments: list[tuple[str, bool]] = []
    pos = 0
    for i, mark in enumerate(marks):
        j = prompt.find(mark, pos)
        if j < 0 or prompt.count(mark) != 1:
            return _defanged_tokens(llama, formatter, dicts)
        segments += [(prompt[pos:j], True), (dicts[i]["content"], False)]
        pos = j + len(mark)
    segments.append((prompt[pos:], True))
    tokens: list[int] = []
    for text, special in segments:
        if text:
            tokens += llama.tokenize(text.encode("utf-8"), add_bos=bos and not tokens, special=special)
    if bos and not tokens:
        tokens = llama.tokenize(b"", add_bos=True, special=False)
    return tokens


def _defanged_tokens(llama: Any, formatter: Any, dicts: list[dict[str, str]]) -> list[int]:
    logger.warning("the chat template rewrites message content; special-token text is removed from content instead")
    clean = []
    for d in dicts:
        content = d["content"]
        for piece in _special_pieces(llama):
            content = content.replace(piece, "")
        clean.append({**d, "content": content})
    rendered = formatter(messages=clean)
    return list(llama.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True))


def _special_pieces(llama: Any) -> list[str]:
    model = llama._model
    pieces = []
    for tok in range(llama.n_vocab()):
        text = model.token_get_text(tok)
        if (
            len(text) > 1
            and llama.tokenize(text.encode("utf-8"), add_bos=False, special=True) == [tok]
            and llama.tokenize(text.encode("utf-8"), add_bos=False, special=False) != [tok]
        ):
            pieces.append(text)
    return pieces
