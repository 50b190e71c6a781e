"""Small helpers shared by the places that take RPRA steps (the graph, the middleware).

Kept private: they only assemble values the public types already define.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from rpra_agent.decision import Decision
from rpra_agent.predictors._prompt import message_text

__all__ = ["extend_system", "last_request_text", "log_decision", "policy_snapshot", "step_kind"]


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


def policy_snapshot(obj: Any) -> Any:
    """A JSON-safe snapshot of a (dataclass) policy, for the run's configuration."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: v for k, v in asdict(obj).items() if isinstance(v, str | int | float | bool | type(None))}
    return type(obj).__name__


def log_decision(log: logging.Logger, decision: Decision) -> None:
    """The one INFO line per decision: route, reason, predicted grade, threshold, run."""
    pred = decision.prediction
    log.info(
        "rpra decision route=%s reason=%s kind=%s grade=%s p_ok=%s threshold=%.3f run=%s step=%d",
        decision.route,
        decision.reason,
        decision.kind,
        pred.grade if pred else "-",
        f"{pred.p_acceptable:.3f}" if pred else "-",
        decision.threshold,
        decision.run_id,
        decision.step,
    )
