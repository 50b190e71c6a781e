"""A step's context, rebuilt from the log: the conversation so far, tool results, kind, reasoning.

Hindsight labels are per *step*: in a tool run the first step (call a tool) and the last
(answer with its result) share the user's request but not their context, and the judge
grades them differently. Judging, SFT examples and the fine-tuned predictor's prompt
therefore all use the step's context, not the bare request.

Where it comes from, best first:

1. ``decision.metadata["context"]``: the conversation the step saw, as a list of
   ``{"role": "system"|"user"|"assistant"|"tool", "content": str}`` dicts (assistant
   entries may carry ``"tool_calls": [{"name", "args", "id"}]``, tool entries
   ``"tool_call_id"`` and ``"name"``); :func:`context_record` writes that form.
2. Otherwise the bare request, then the earlier steps of the same run replayed as
   assistant turns (their tool calls; tool results are not in the log).

The reasoning of an RPRA step is ``decision.metadata["reasoning"]``; the kind the
predictor was told is ``decision.metadata["predicted_kind"]`` (before a step is taken its
kind is unknown, so predictors see ``answer`` unless there is a draft).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from rpra_agent.core.decision import Decision
from rpra_agent.core.messages import context_record, message_text
from rpra_agent.core.prediction import Kind, PredictionRequest

__all__ = [
    "CONTEXT_KEY",
    "PREDICTED_KIND_KEY",
    "REASONING_KEY",
    "context_key",
    "context_messages",
    "context_record",
    "conversation_for",
    "predicted_kind",
    "step_reasoning",
    "step_request",
]

CONTEXT_KEY = "context"
"""``Decision.metadata`` key of the step's conversation (see :func:`context_record`)."""

REASONING_KEY = "reasoning"
"""``Decision.metadata`` key of an RPRA step's reasoning (text)."""

PREDICTED_KIND_KEY = "predicted_kind"
"""``Decision.metadata`` key of the kind the predictor was told (``PredictionRequest.kind``)."""


def context_messages(record: Any) -> tuple[BaseMessage, ...] | None:
    """Messages from :func:`context_record` output; ``None`` when ``record`` is not that form."""
    if not isinstance(record, list) or not record:
        return None
    out: list[BaseMessage] = []
    for entry in record:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("content", ""), str):
            return None
        role, content = entry.get("role"), str(entry.get("content", ""))
        if role in ("user", "human"):
            out.append(HumanMessage(content))
        elif role == "system":
            out.append(SystemMessage(content))
        elif role in ("assistant", "ai"):
            calls = [
                {"name": str(c.get("name", "")), "args": dict(c.get("args") or {}), "id": str(c.get("id") or f"c{i}")}
                for i, c in enumerate(entry.get("tool_calls") or [])
                if isinstance(c, Mapping)
            ]
            out.append(AIMessage(content, tool_calls=calls))
        elif role == "tool":
            out.append(ToolMessage(content, tool_call_id=str(entry.get("tool_call_id") or "t"), name=entry.get("name")))
        else:
            return None
    return tuple(out)


def conversation_for(decision: Decision, earlier: Sequence[Decision] = ()) -> tuple[BaseMessage, ...]:
    """The conversation a decision's step saw, as far as the log records it (see the module docstring)."""
    recorded = context_messages(decision.metadata.get(CONTEXT_KEY))
    if recorded is not None:
        return recorded
    convo: list[BaseMessage] = [HumanMessage(decision.request)]
    for prev in sorted(earlier, key=lambda d: d.step):
        if prev.run_id == decision.run_id and prev.step < decision.step and prev.response:
            convo.append(AIMessage(prev.response))
    return tuple(convo)


def step_reasoning(decision: Decision) -> str | None:
    """The RPRA reasoning recorded for a step (``None`` outside RPRA or when not recorded)."""
    value = getattr(decision, "reasoning", None) or decision.metadata.get(REASONING_KEY)
    return str(value) if value else None


def predicted_kind(decision: Decision) -> Kind:
    """The step kind the predictor was told: recorded, else what the step knew before acting.

    Before a step is taken its kind is unknown and the graph tells the predictor
    ``answer``; only a drafted step (the ``verify`` paradigm) knows it is an action.
    """
    recorded = decision.metadata.get(PREDICTED_KIND_KEY)
    if recorded in ("answer", "action"):
        return recorded  # type: ignore[no-any-return]
    return decision.kind if decision.paradigm == "verify" else "answer"


def step_request(decision: Decision, earlier: Sequence[Decision] = ()) -> PredictionRequest:
    """What the predictor saw at this step, rebuilt from the log (the fine-tuned prompt's input)."""
    return PredictionRequest(
        messages=conversation_for(decision, earlier),
        kind=predicted_kind(decision),
        reasoning=step_reasoning(decision),
        task=decision.task,
    )


def context_key(messages: Sequence[BaseMessage]) -> str:
    """A key equal for equal conversations (grouping steps that answered the same thing)."""
    return json.dumps([[m.type, message_text(m)] for m in messages], ensure_ascii=True)
