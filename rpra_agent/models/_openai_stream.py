"""Bookkeeping of one streamed reply from an OpenAI-compatible server (see ``openai_compat``)."""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

__all__ = ["StreamState"]

logger = logging.getLogger("rpra_agent.models.openai_compat")


class StreamState:
    """One stream's bookkeeping: deltas, usage and finish seen; repeated tool-call headers dropped.

    llama-cpp-python's server repeats a tool call's ``name``, ``id`` and ``type`` in every
    delta; LangChain concatenates repeated strings when it merges chunks (``"addaddadd"``),
    so with ``dedupe`` on, a repeated header is removed from all but the first delta (and
    the legacy ``function_call`` duplicate from every delta that carries tool calls).
    """

    def __init__(self, *, dedupe: bool) -> None:
        self.deltas = 0
        self.missing = True
        self.finished = False
        self._dedupe = dedupe
        self._names: dict[Any, str] = {}

    def see(self, chunk: ChatGenerationChunk) -> ChatGenerationChunk:
        message = chunk.message
        if (chunk.generation_info or {}).get("finish_reason") or message.response_metadata.get("finish_reason"):
            self.finished = True
        if not isinstance(message, AIMessageChunk):
            return chunk
        if message.usage_metadata:
            self.missing = False
        if message.content or message.tool_call_chunks:
            self.deltas += 1
        if self._dedupe and message.tool_call_chunks:
            return self._without_repeated_headers(chunk, message)
        return chunk

    def _without_repeated_headers(self, chunk: ChatGenerationChunk, message: AIMessageChunk) -> ChatGenerationChunk:
        calls, repeated = [], set()
        for call in message.tool_call_chunks:
            index, name = call.get("index"), call.get("name")
            if name and self._names.get(index) == name:
                call = {**call, "name": None, "id": None}  # type: ignore[typeddict-item]
                repeated.add(index)
            elif name:
                self._names[index] = name
            calls.append(call)
        if not repeated and "function_call" not in message.additional_kwargs:
            return chunk
        # function_call is the legacy duplicate of the tool call, cut into pieces the same way
        extra = {k: v for k, v in message.additional_kwargs.items() if k != "function_call"}
        if isinstance(extra.get("tool_calls"), list):
            extra["tool_calls"] = [
                {"index": c.get("index"), "function": {"arguments": (c.get("function") or {}).get("arguments", "")}}
                if isinstance(c, dict) and c.get("index") in repeated
                else c
                for c in extra["tool_calls"]
            ]
        fixed = AIMessageChunk(
            content=message.content,
            additional_kwargs=extra,
            response_metadata=message.response_metadata,
            tool_call_chunks=calls,
            usage_metadata=message.usage_metadata,
            id=message.id,
        )
        return ChatGenerationChunk(message=fixed, generation_info=chunk.generation_info)

    def estimate(self, input_tokens: int) -> ChatGenerationChunk:
        usage = {"input_tokens": input_tokens, "output_tokens": self.deltas, "total_tokens": input_tokens + self.deltas}
        logger.debug("the server sent no streamed usage; estimated %s", usage)
        message = AIMessageChunk(content="", usage_metadata=usage, response_metadata={"usage_estimated": True})  # type: ignore[arg-type]
        return ChatGenerationChunk(message=message)
