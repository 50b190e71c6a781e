"""Stream and invoke give the same content and tool calls, also when the model writes text before a call."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool

from rpra_agent.models.llamacpp import ChatLlamaCpp

PREAMBLE_CALL = 'Let me add those.\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'
CALL_ONLY = '<tool_call>\n{"name": "add", "arguments": {"a": 4, "b": 1}}\n</tool_call>'
PLAIN = "  No tool needed: it is 5.  "


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _calls(message) -> list[tuple[str, dict]]:
    return [(c["name"], c["args"]) for c in message.tool_calls]


def _streamed(model: ChatLlamaCpp) -> tuple[AIMessageChunk, list[str]]:
    chunks = list(model.bind_tools([add]).stream("What is 2+3?"))
    total = chunks[0]
    for c in chunks[1:]:
        total += c
    return total, [c.content for c in chunks if c.content]


@pytest.mark.parametrize(
    ("reply", "content", "calls"),
    [
        (PREAMBLE_CALL, "Let me add those.", [("add", {"a": 2, "b": 3})]),
        (CALL_ONLY, "", [("add", {"a": 4, "b": 1})]),
        (PLAIN, PLAIN.strip(), []),
    ],
    ids=["text-then-call", "call", "plain"],
)
def test_stream_and_invoke_agree(scripted_gguf, reply, content, calls):
    model = ChatLlamaCpp(model_path=str(scripted_gguf(reply=reply)), n_ctx=1024, seed=0)
    invoked = model.bind_tools([add]).invoke("What is 2+3?")
    streamed, texts = _streamed(model)
    assert (invoked.content, _calls(invoked)) == (content, calls)
    assert (streamed.content, _calls(streamed)) == (content, calls)
    assert all("<tool_call" not in t for t in texts)  # markup never reaches the user as text
    if reply is PREAMBLE_CALL:
        assert len(texts) > 1 and "".join(texts) == "Let me add those."  # streamed token by token


def test_langgraph_messages_stream_runs_the_tool_after_a_preamble(scripted_gguf):
    from langchain.agents import create_agent

    model = ChatLlamaCpp(model_path=str(scripted_gguf(reply=PREAMBLE_CALL)), n_ctx=1024, seed=0, max_tokens=64)
    agent = create_agent(model, tools=[add])
    ran = []
    for msg, _meta in agent.stream(
        {"messages": [HumanMessage("What is 2+3?")]}, stream_mode="messages", config={"recursion_limit": 4}
    ):
        if getattr(msg, "type", "") == "tool":
            ran.append(msg.content)
        if len(ran) >= 1:
            break
    assert ran == ["5"]
