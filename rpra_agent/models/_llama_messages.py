"""Turning a llama.cpp generation into LangChain messages (plain Python values only)."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from rpra_agent.models._llama_prompt import parse_tool_calls
from rpra_agent.models._llama_run import Delta, Outcome
from rpra_agent.models._llama_run import holdback as _holdback

__all__ = ["build_message", "collect", "final_chunk", "outcome_stats", "stream_chunks"]

_CALL_OPEN = "<tool_call>"


def _usage(outcome: Outcome) -> Any:
    return {
        "input_tokens": outcome.prompt_tokens,
        "output_tokens": outcome.completion_tokens,
        "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
        "input_token_details": {"cache_read": outcome.cached_tokens},
    }


def outcome_stats(outcome: Outcome) -> dict[str, Any]:
    """Token counts (prompt, reused from the KV cache, evaluated, generated) and timings."""
    return {
        "prompt_tokens": outcome.prompt_tokens,
        "cached_tokens": outcome.cached_tokens,
        "evaluated_tokens": outcome.prompt_tokens - outcome.cached_tokens,
        "completion_tokens": outcome.completion_tokens,
        "finish_reason": outcome.finish_reason,
        "timings": outcome.timings,
    }


def build_message(
    text: str, entries: list[dict[str, Any]], outcome: Outcome, *, tools: bool, logprobs: bool, name: str
) -> AIMessage:
    """The reply: content, parsed tool calls, usage (with ``cache_read``), logprobs and timings."""
    content, calls, invalid = parse_tool_calls(text) if tools else (text, [], [])
    meta: dict[str, Any] = {
        "model_name": name,
        "model_provider": "llama.cpp",
        "finish_reason": "tool_calls" if calls else outcome.finish_reason,
        "timings": outcome.timings,
    }
    if logprobs:
        meta["logprobs"] = {"content": entries}
    return AIMessage(
        content=content,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        usage_metadata=_usage(outcome),
        response_metadata=meta,
    )


def final_chunk(final: AIMessage, *, buffered: bool) -> AIMessageChunk:
    """The last stream chunk: buffered content and tool calls, usage and metadata.

    When the text was already streamed (``buffered`` false) its logprobs went out
    with the text chunks, so they are not repeated here.
    """
    meta = dict(final.response_metadata)
    if not buffered:
        meta.pop("logprobs", None)
    return AIMessageChunk(
        content=final.content if buffered else "",
        tool_call_chunks=[
            {
                "name": c["name"],
                "args": json.dumps(c["args"], ensure_ascii=False),
                "id": c["id"],
                "index": i,
                "type": "tool_call_chunk",
            }
            for i, c in enumerate(final.tool_calls)
        ],
        usage_metadata=final.usage_metadata,
        response_metadata=meta,
        chunk_position="last",
    )


def collect(gen: Generator[Delta, None, Outcome]) -> tuple[str, list[dict[str, Any]], Outcome]:
    """Run a generation to the end: its text, logprob entries and outcome."""
    parts: list[str] = []
    entries: list[dict[str, Any]] = []
    while True:
        try:
            delta = next(gen)
        except StopIteration as done:
            return "".join(parts), entries, done.value
        parts.append(delta.text)
        entries.extend(delta.logprobs)


def _streamable(text: str) -> str:
    """The part of ``text`` that is content whatever comes next: before any tool call, whitespace held back."""
    cut = text.find(_CALL_OPEN)
    if cut < 0:
        cut = len(text) - _holdback(text, (_CALL_OPEN,))
    return text[:cut].strip()


def stream_chunks(
    gen: Generator[Delta, None, Outcome],
    *,
    mode: str,
    logprobs: bool,
    finish: Callable[[str, list[dict[str, Any]], Outcome], AIMessage],
) -> Iterator[ChatGenerationChunk]:
    """Chunks for a generation: text as it comes, then a last chunk with usage (and tool calls).

    ``mode`` is ``text`` (stream everything), ``buffer`` (hold everything: a forced
    tool call) or ``tools`` (stream the text before any ``<tool_call>``, then hold the
    rest). In every mode the concatenated content and the tool calls equal what
    ``invoke`` returns for the same tokens.
    """
    held: list[Delta] = []
    text, sent = "", ""
    while True:
        try:
            delta = next(gen)
        except StopIteration as done:
            outcome: Outcome = done.value
            break
        if mode == "text":
            meta = {"logprobs": {"content": delta.logprobs}} if logprobs else {}
            yield ChatGenerationChunk(message=AIMessageChunk(content=delta.text, response_metadata=meta))
            continue
        held.append(delta)
        text += delta.text
        if mode == "tools":
            ready = _streamable(text)
            if len(ready) > len(sent) and ready.startswith(sent):
                meta = {"logprobs": {"content": [e for d in held for e in d.logprobs]}} if logprobs else {}
                yield ChatGenerationChunk(message=AIMessageChunk(content=ready[len(sent) :], response_metadata=meta))
                sent, held = ready, []
    if mode == "text":
        final = finish("", [], outcome)
        yield ChatGenerationChunk(message=final_chunk(final, buffered=False))
        return
    final = finish(text, [e for d in held for e in d.logprobs], outcome)
    content = final.content if isinstance(final.content, str) else ""
    rest = content[len(sent) :] if content.startswith(sent) else ""
    yield ChatGenerationChunk(message=final_chunk(final.model_copy(update={"content": rest}), buffered=True))
