"""Never swallow LangGraph's control-flow signals (interrupts, parent commands)."""

from __future__ import annotations

from langgraph.errors import GraphBubbleUp

__all__ = ["reraise_control_flow"]


def reraise_control_flow(exc: BaseException) -> None:
    """Re-raise ``exc`` if it is a LangGraph control-flow signal; otherwise return."""
    if isinstance(exc, GraphBubbleUp):
        raise exc
