"""The decision record: which model took a step, and why."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from rpra_agent.core.prediction import Kind, Prediction
from rpra_agent.core.usage import LegUsage

__all__ = ["Decision", "LegUsage", "Paradigm", "Reason", "RouteName"]

RouteName = Literal["small", "large"]
Paradigm = Literal["pa", "rpra", "verify"]
Reason = Literal[
    "predicted_ok",
    "predicted_low",
    "predictor_error",
    "budget_exhausted",
    "forced",
    "shadow",
    "small_error",
    "large_error_degraded",
    "act_to_learn",
]
REASONS: tuple[str, ...] = get_args(Reason)


def utcnow() -> str:
    """The current UTC time as an ISO-8601 string."""
    return datetime.now(UTC).isoformat()


def new_id() -> str:
    """A fresh client-side UUID (hex), so that writes are idempotent."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Decision:
    """One deferral decision: a step of an agent, who took it, and why.

    Attributes:
        run_id: The graph run (one invocation) the step belongs to.
        step: 0-based index of the model step within the run.
        kind: ``"answer"`` (final text) or ``"action"`` (a tool call).
        paradigm: ``"pa"``, ``"rpra"`` or ``"verify"``.
        prediction: The predictor's output, or ``None`` when it failed or was skipped.
        threshold: The threshold the policy compared against.
        route: ``"small"`` or ``"large"``: the model that took the step.
        reason: Why: ``predicted_ok``, ``predicted_low``, ``predictor_error``,
            ``budget_exhausted``, ``forced``, ``shadow`` (answered small, would have
            deferred), ``small_error``, ``large_error_degraded`` or ``act_to_learn``
            (the prediction was low, and the small model called a tool to learn what
            it lacked instead of deferring).
        id: Client-generated UUID; writing the same decision twice is a no-op.
        thread_id: The conversation thread, when the graph ran with a checkpointer.
        task: The user-supplied task tag (category) of the request.
        small_model: Identifier of the small model.
        large_model: Identifier of the large model.
        legs: Usage per model call of the step: ``reason``, ``plan``, ``predict``,
            ``reason_again``, ``small`` (the small answer/action or verify's draft),
            ``act_to_learn`` (an act-to-learn tool call) and ``large``.
        request: The bare request text (the store may hash or redact it).
        response: The text (or tool call JSON) that was given.
        tool_calls: Names of the tools the step called.
        error: A short error class name when a leg failed (never exception text).
        degraded: True when the large model failed and the small answer was used.
        created_at: When the step started (ISO-8601, UTC).
        completed_at: When the decision was recorded (ISO-8601, UTC).
        draft: In ``verify``, the small model's draft when it was not kept (the store
            applies its text mode to it, as to ``request`` and ``response``).
        metadata: JSON: ``score`` (the policy metric's value), ``policy`` (the
            policy's options), ``plan`` and ``planned_kind`` (what the small model
            chose to do before the prediction), ``predicted_kind`` (the kind the
            predictor was asked about), ``context`` (the conversation the step saw,
            for hindsight data), ``reasoning`` and ``second_reasoning`` (RPRA),
            ``predictor_error``, ``plan_error``. The store applies its text mode
            to the context and the reasonings.
    """

    run_id: str
    step: int
    kind: Kind
    paradigm: Paradigm
    prediction: Prediction | None
    threshold: float
    route: RouteName
    reason: Reason
    id: str = field(default_factory=new_id)
    thread_id: str | None = None
    task: str | None = None
    small_model: str = ""
    large_model: str = ""
    legs: Mapping[str, LegUsage] = field(default_factory=dict)
    request: str = ""
    response: str = ""
    tool_calls: tuple[str, ...] = ()
    error: str | None = None
    degraded: bool = False
    created_at: str = field(default_factory=utcnow)
    completed_at: str = field(default_factory=utcnow)
    draft: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def deferred(self) -> bool:
        """Whether the large model took the step."""
        return self.route == "large"

    @property
    def conversation(self) -> str:
        """The conversation the step belongs to: its thread, else its run (what cross-fitting keeps together)."""
        return self.thread_id or self.run_id

    def with_updates(self, **changes: Any) -> Decision:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (what LangGraph state and the spool file hold)."""
        return {
            "id": self.id,
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "step": int(self.step),
            "kind": self.kind,
            "paradigm": self.paradigm,
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "threshold": float(self.threshold),
            "route": self.route,
            "reason": self.reason,
            "task": self.task,
            "small_model": self.small_model,
            "large_model": self.large_model,
            "legs": {k: v.to_dict() for k, v in self.legs.items()},
            "request": self.request,
            "response": self.response,
            "tool_calls": list(self.tool_calls),
            "error": self.error,
            "degraded": bool(self.degraded),
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "draft": self.draft,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """Rebuild a decision from :meth:`to_dict` output."""
        pred = data.get("prediction")
        return cls(
            id=str(data["id"]),
            run_id=str(data["run_id"]),
            thread_id=data.get("thread_id"),
            step=int(data["step"]),
            kind=data["kind"],
            paradigm=data["paradigm"],
            prediction=Prediction.from_dict(pred) if pred else None,
            threshold=float(data["threshold"]),
            route=data["route"],
            reason=data["reason"],
            task=data.get("task"),
            small_model=str(data.get("small_model") or ""),
            large_model=str(data.get("large_model") or ""),
            legs={k: LegUsage.from_dict(v) for k, v in (data.get("legs") or {}).items()},
            request=str(data.get("request") or ""),
            response=str(data.get("response") or ""),
            tool_calls=tuple(data.get("tool_calls") or ()),
            error=data.get("error"),
            degraded=bool(data.get("degraded", False)),
            created_at=str(data.get("created_at") or utcnow()),
            completed_at=str(data.get("completed_at") or utcnow()),
            draft=str(data.get("draft") or ""),
            metadata=dict(data.get("metadata") or {}),
        )
