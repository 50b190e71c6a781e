"""The RPRA step, written once: Reason → Predict → Reason → Answer/Act, free of I/O.

A step is a short state machine. Each stage is a generator that *yields* effects
(call a model, let the small model choose its plan, predict, record) and returns an
update of the step's :class:`PendingStep`, a dict of JSON values; :func:`next_stage`
is the one router between stages. The two adapters drive the same stages: the
LangGraph graph runs one node per stage with :func:`next_stage` as its conditional
edges (so the drawing shows every stage and fallback), and the ``create_agent``
middleware runs them in a loop inside one model call. Sync and async drivers
(``rpra_agent._drive``) execute the effects; nothing here touches the network,
a clock-free store, or a model.

Paradigms (the paper's, plus a draft-checking variant)::

    pa      [plan] → predict → small | large | act_to_learn
    rpra    reason(+plan) → predict → reason_again → small | act_to_learn      (or → large)
    verify  draft → predict → keep | large | act_to_learn

Fallbacks: a small-model error at any stage goes to ``large``; a large-model error
goes back to ``small`` (degraded, or the kept draft) when the :class:`FaultPolicy`
says so, else raises an ``ExceptionGroup`` with every error.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, message_to_dict, messages_from_dict

from rpra_agent.core.control import reraise_control_flow
from rpra_agent.core.decision import Decision, Paradigm, new_id, utcnow
from rpra_agent.core.errors import ConfigError, ModelCallError
from rpra_agent.core.faults import FaultPolicy
from rpra_agent.core.messages import context_record, last_request_text, message_text, step_kind
from rpra_agent.core.policy import DeferralPolicy, PolicyContext
from rpra_agent.core.prediction import Kind, Prediction, PredictionRequest, Predictor, needs_draft
from rpra_agent.core.step_checks import checked_prediction, policy_options, predictor_failure
from rpra_agent.core.step_prompts import (
    ANSWER_PROMPT,
    LEARN_PROMPT,
    REASON_PROMPT,
    SHARE_PROMPT,
    plan_prompt,
    reason_again_prompt,
)
from rpra_agent.core.usage import LegUsage

__all__ = [
    "CallModel",
    "Choose",
    "Effect",
    "ModelOutput",
    "PendingStep",
    "Predict",
    "Record",
    "Stage",
    "StepSpec",
    "StepView",
    "next_stage",
    "record_stage",
    "run_stage",
    "run_tags",
]

Stage = Literal[
    "reason", "plan", "draft", "predict", "reason_again", "small", "act_to_learn", "large", "record", "done"
]
ModelRole = Literal["small", "large"]


# -- effects ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CallModel:
    """Call a model for one leg of the step; the driver returns a :class:`ModelOutput`.

    Attributes:
        leg: The leg's key in ``Decision.legs``.
        model: ``small`` or ``large``.
        system: Text appended to the system prompt for this call.
        tools: Bind the step's tools (answer/action legs; never the private reasoning).
        tool_choice: Force a tool by name, or ``"any"``; ``None`` lets the model choose.
        hidden: A private call whose tokens are not streamed to the user.
    """

    leg: str
    model: ModelRole
    system: str | None = None
    tools: bool = False
    tool_choice: str | None = None
    hidden: bool = False


@dataclass(frozen=True)
class ModelOutput:
    """What a model call returned: its message, usage, and whether it carried a structured response."""

    message: AIMessage
    usage: LegUsage
    structured: bool = False


@dataclass(frozen=True)
class Choose:
    """Let the small model choose among ``options``; the driver returns ``(distribution, usage)``."""

    options: tuple[str, ...]
    system: str


@dataclass(frozen=True)
class Predict:
    """Ask ``predictor`` about ``request``; the driver returns the :class:`Prediction`."""

    predictor: Predictor
    request: PredictionRequest


@dataclass(frozen=True)
class Record:
    """Write ``decision`` to the store (and log its one INFO line)."""

    decision: Decision


Effect = CallModel | Choose | Predict | Record


# -- what the kernel knows -------------------------------------------------------------
@dataclass(frozen=True)
class StepSpec:
    """The step's collaborators and settings, bound when the graph or middleware is built."""

    paradigm: Paradigm
    policy: DeferralPolicy
    predictor: Predictor | None
    faults: FaultPolicy
    share_reasoning: bool
    small_model: str
    large_model: str

    def __post_init__(self) -> None:
        if self.predictor is not None and self.paradigm != "verify" and needs_draft(self.predictor):
            raise ConfigError(
                f"predictor {self.predictor.name!r} predicts from the small model's drafted answer, which the "
                f"{self.paradigm!r} paradigm does not produce before predicting, so every step would defer: use "
                "paradigm='verify' (RPRA_PARADIGM=verify, rpra serve --paradigm verify), or a request-mode predictor"
            )


@dataclass(frozen=True)
class StepView:
    """What the adapter shows the step: the conversation and the run's counters."""

    messages: tuple[BaseMessage, ...]
    tool_names: tuple[str, ...]
    run_id: str
    thread_id: str | None = None
    task: str | None = None
    step: int = 0
    deferrals: int = 0
    learning_actions: int = 0

    @classmethod
    def of(
        cls,
        messages: tuple[BaseMessage, ...],
        tool_names: tuple[str, ...],
        state: Mapping[str, Any],
        configurable: Mapping[str, Any],
    ) -> StepView:
        """The view of a graph or agent state and a run's ``configurable``, as both adapters read them.

        The run id, thread id and task tag come from the state, else the configurable. An
        integer id or tag reads as its decimal string (LangGraph users often pass
        ``thread_id=1``), so the decision log stores what was meant.

        Raises:
            ConfigError: when the task tag, thread id or run id is neither a string nor an
                integer (said before any model is called, rather than losing the decision).
        """
        run_id, thread_id, task = run_tags(state, configurable)
        return cls(
            messages=messages,
            tool_names=tool_names,
            run_id=run_id or new_id(),
            thread_id=thread_id,
            task=task,
            step=int(state.get("rpra_step", 0) or 0),
            deferrals=int(state.get("rpra_deferrals", 0) or 0),
            learning_actions=int(state.get("rpra_learning", 0) or 0),
        )


def run_tags(state: Mapping[str, Any], configurable: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """The run id, thread id and task tag of a state and a run's ``configurable``, checked.

    The run id and task come from the state, else the configurable; an integer reads as
    its decimal string. The adapters call this when a run starts, so a bad tag is refused
    before the run is recorded as ``running``.

    Raises:
        ConfigError: when one of them is neither a string nor an integer.
    """
    return (
        _tag(state.get("rpra_run_id") or configurable.get("rpra_run_id"), "rpra_run_id"),
        _tag(configurable.get("thread_id"), "thread_id"),
        _tag(state.get("rpra_task") or configurable.get("rpra_task"), "rpra_task"),
    )


def _tag(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{name} must be a string (or an integer), got {type(value).__name__} {value!r:.80}")


class PendingStep(TypedDict, total=False):
    """The step in progress: JSON values only, so a checkpoint can hold it."""

    created_at: str
    reasoning: str
    plan: str
    planned_kind: Kind
    plan_error: str
    draft: dict[str, Any]
    structured: bool
    prediction: dict[str, Any] | None
    predictor_error: str
    route: Literal["small", "large", "tools"]
    reason: str
    threshold: float
    score: float | None
    second_reasoning: str
    small_error: str
    large_error: str
    large_errors: list[str]
    degraded: bool
    taken: Literal["small", "act_to_learn", "large"]
    legs: dict[str, dict[str, Any]]
    decision: dict[str, Any]


Flow = Generator[Effect, Any, tuple[PendingStep, AIMessage | None]]


def next_stage(spec: StepSpec, pending: Mapping[str, Any], has_tools: bool) -> Stage:
    """The one router: which stage comes next for ``pending``."""
    if "decision" in pending:
        return "done"
    if "taken" in pending:
        return "record"
    if "large_error" in pending:
        return "small"  # the degraded fallback (the large stage raised otherwise)
    if "small_error" in pending:
        return "large"
    if "route" not in pending:
        if spec.paradigm == "rpra" and "reasoning" not in pending:
            return "reason"
        if spec.paradigm == "verify" and "draft" not in pending:
            return "draft"
        if spec.paradigm == "pa" and has_tools and "plan" not in pending and "plan_error" not in pending:
            return "plan"
        return "predict"
    if pending["route"] == "large":
        return "large"
    if spec.paradigm == "rpra" and "second_reasoning" not in pending and pending.get("reasoning"):
        return "reason_again"
    return "act_to_learn" if pending["route"] == "tools" else "small"


def run_stage(stage: Stage, spec: StepSpec, view: StepView, pending: Mapping[str, Any]) -> Flow:
    """Run one stage; returns the updated pending step and the message it produced, if any."""
    state: PendingStep = dict(pending)  # type: ignore[assignment]
    state.setdefault("created_at", utcnow())
    state.setdefault("legs", {})
    body = _STAGES[stage]
    output = yield from body(spec, view, state)
    return state, output


# -- stages ----------------------------------------------------------------------------
def _call(state: PendingStep, effect: CallModel) -> Generator[Effect, Any, AIMessage | None]:
    """Call a small-model leg; a failure is recorded as ``small_error`` (the step defers)."""
    try:
        out: ModelOutput = yield effect
    except Exception as exc:  # noqa: BLE001 - any small failure defers; interrupts are re-raised
        reraise_control_flow(exc)
        state["small_error"] = _error_name(exc)
        return None
    state["legs"][effect.leg] = out.usage.to_dict()
    if out.structured:
        state["structured"] = True
    return out.message


def _plan(
    spec: StepSpec, view: StepView, state: PendingStep, reasoning: str | None = None
) -> Generator[Effect, Any, None]:
    options = ("answer", *view.tool_names)
    try:
        dist, usage = yield Choose(options, plan_prompt(view.tool_names, reasoning))
        choice = max(options, key=lambda o: float(dist.get(o, 0.0)))
    except Exception as exc:  # noqa: BLE001 - an unknown plan only makes the threshold stricter
        reraise_control_flow(exc)
        state["plan_error"] = _error_name(exc)
        return
    state["plan"] = choice
    state["planned_kind"] = "answer" if choice == "answer" else "action"
    state["legs"]["plan"] = usage.to_dict()


def _reason(spec: StepSpec, view: StepView, state: PendingStep) -> Generator[Effect, Any, None]:
    message = yield from _call(state, CallModel("reason", "small", system=REASON_PROMPT, hidden=True))
    if message is None:
        return None
    state["reasoning"] = message.text
    if view.tool_names:
        yield from _plan(spec, view, state, state["reasoning"])
    return None


def _plan_stage(spec: StepSpec, view: StepView, state: PendingStep) -> Generator[Effect, Any, None]:
    yield from _plan(spec, view, state)


def _draft(spec: StepSpec, view: StepView, state: PendingStep) -> Generator[Effect, Any, None]:
    message = yield from _call(state, CallModel("small", "small", tools=True, hidden=True))
    if message is not None:
        state["draft"] = message_to_dict(message)
        state["planned_kind"] = "answer" if state.get("structured") else step_kind(message)


def _predict(spec: StepSpec, view: StepView, state: PendingStep) -> Generator[Effect, Any, None]:
    kind: Kind | None = state.get("planned_kind") or (None if "plan_error" in state else "answer")
    draft = _draft_message(state)
    request = PredictionRequest(
        messages=view.messages,
        kind=kind or "answer",
        reasoning=state.get("reasoning"),
        draft=draft,
        task=view.task,
        tool_names=view.tool_names,
    )
    prediction: Prediction | None = None
    if spec.policy.needs_prediction and spec.predictor is not None:
        try:
            prediction = checked_prediction((yield Predict(spec.predictor, request)), spec.predictor)
        except Exception as exc:  # noqa: BLE001 - any failure or garbage defers; interrupts are re-raised
            state["predictor_error"] = predictor_failure(exc)
        if prediction is not None:
            usage = prediction.usage or LegUsage(prediction.predictor, latency_ms=prediction.latency_ms)
            state["legs"]["predict"] = usage.to_dict()
    context = PolicyContext(
        kind=kind,
        step=view.step,
        deferrals=view.deferrals,
        learning_actions=view.learning_actions,
        can_act=bool(view.tool_names),
    )
    route = spec.policy.decide(prediction, context)
    state["route"] = route.route
    state["reason"] = route.reason
    state["threshold"] = route.threshold
    state["score"] = route.score
    state["prediction"] = prediction.to_dict() if prediction is not None else None


def _reason_again(spec: StepSpec, view: StepView, state: PendingStep) -> Generator[Effect, Any, None]:
    raw = state.get("prediction")
    prediction = Prediction.from_dict(raw) if raw else None
    if state.get("route") == "tools":
        verdict = "The policy routes this step to the tools: call one that gathers what you lack."
    else:
        verdict = f"The policy lets you take this step yourself (threshold {state.get('threshold', 0.0):.2f})."
    prompt = reason_again_prompt(state.get("reasoning", ""), prediction, verdict)
    message = yield from _call(state, CallModel("reason_again", "small", system=prompt, hidden=True))
    if message is not None:
        state["second_reasoning"] = message.text


def _small(spec: StepSpec, view: StepView, state: PendingStep) -> Generator[Effect, Any, AIMessage | None]:
    draft = _draft_message(state)
    if draft is not None:  # verify keeps its draft (also as the degraded fallback)
        state["taken"] = "small"
        if "large_error" in state:
            state["degraded"] = True
            state["reason"] = "large_error_degraded"
            state["route"] = "small"
        return draft
    reasoning = state.get("second_reasoning") or state.get("reasoning")
    plan = state.get("plan")
    forced = plan if plan and plan != "answer" and "large_error" not in state else None
    effect = CallModel(
        "small",
        "small",
        system=ANSWER_PROMPT.format(reasoning=reasoning) if reasoning else None,
        tools=True,
        tool_choice=forced,
    )
    if "large_error" in state:  # the degraded fallback: a failure here ends the step
        try:
            out: ModelOutput = yield effect
        except Exception as exc:
            reraise_control_flow(exc)
            raise ExceptionGroup("the large model failed, and so did the small fallback", [exc]) from exc
        state["legs"]["small"] = out.usage.to_dict()
        state["structured"] = out.structured
        state["taken"] = "small"
        state["degraded"] = True
        state["reason"] = "large_error_degraded"
        state["route"] = "small"
        return out.message
    message = yield from _call(state, effect)
    if message is not None:
        state["taken"] = "small"
    return message


def _act_to_learn(spec: StepSpec, view: StepView, state: PendingStep) -> Generator[Effect, Any, AIMessage | None]:
    notes = state.get("second_reasoning") or state.get("reasoning")
    system = f"{LEARN_PROMPT}\n\nYour private reasoning:\n{notes}" if notes else LEARN_PROMPT
    message = yield from _call(state, CallModel("act_to_learn", "small", system=system, tools=True, tool_choice="any"))
    if message is not None and not message.tool_calls:
        state["small_error"] = "NoToolCall"  # asked to act, it answered: fail toward quality
        return None
    if message is not None:
        state["taken"] = "act_to_learn"
    return message


def _large(spec: StepSpec, view: StepView, state: PendingStep) -> Generator[Effect, Any, AIMessage | None]:
    notes = state.get("reasoning")
    system = SHARE_PROMPT.format(reasoning=notes) if spec.share_reasoning and notes else None
    try:
        out: ModelOutput = yield CallModel("large", "large", system=system, tools=True)
    except Exception as exc:
        reraise_control_flow(exc)
        errors = list(exc.errors) if isinstance(exc, ModelCallError) else [exc]
        if spec.faults.on_large_failure != "small" or "small_error" in state:
            raise ExceptionGroup(
                "the large model failed and no fallback is configured",
                [e if isinstance(e, Exception) else RuntimeError(repr(e)) for e in errors],
            ) from exc
        state["large_error"] = _error_name(errors[-1])
        return None
    state["legs"]["large"] = out.usage.to_dict()
    state["structured"] = out.structured
    state["taken"] = "large"
    if "small_error" in state:
        state["reason"] = "small_error"
    return out.message


_STAGES: dict[str, Any] = {
    "reason": _reason,
    "plan": _plan_stage,
    "draft": _draft,
    "predict": _predict,
    "reason_again": _reason_again,
    "small": _small,
    "act_to_learn": _act_to_learn,
    "large": _large,
}


def record_stage(spec: StepSpec, view: StepView, pending: Mapping[str, Any], message: AIMessage) -> Flow:
    """Assemble the step's :class:`Decision` from ``pending`` and the message given, and record it."""
    state: PendingStep = dict(pending)  # type: ignore[assignment]
    taken = state.get("taken", "small")
    prediction = state.get("prediction")
    draft = _draft_message(state)
    metadata = {
        "score": state.get("score"),
        "policy": policy_options(spec.policy),
        "plan": state.get("plan"),
        "planned_kind": state.get("planned_kind"),
        "predicted_kind": state.get("planned_kind") or ("answer" if "route" in state else None),
        "context": context_record(view.messages),
        "reasoning": state.get("reasoning"),
        "second_reasoning": state.get("second_reasoning"),
        "predictor_error": state.get("predictor_error"),
        "plan_error": state.get("plan_error"),
    }
    decision = Decision(
        run_id=view.run_id,
        thread_id=view.thread_id,
        step=view.step,
        kind="answer" if state.get("structured") else step_kind(message),
        paradigm=spec.paradigm,
        prediction=Prediction.from_dict(prediction) if prediction else None,
        threshold=float(state.get("threshold", 0.0)),
        route="large" if taken == "large" else "small",
        reason=state.get("reason", "forced"),  # type: ignore[arg-type]
        task=view.task,
        small_model=spec.small_model,
        large_model=spec.large_model,
        legs={k: LegUsage.from_dict(v) for k, v in state.get("legs", {}).items()},
        request=last_request_text(view.messages),
        response=message_text(message),
        tool_calls=tuple(c["name"] for c in message.tool_calls),
        error=state.get("small_error") or state.get("large_error"),
        degraded=bool(state.get("degraded")),
        created_at=state.get("created_at") or utcnow(),
        draft=message_text(draft) if draft is not None and taken != "small" else "",
        metadata={k: v for k, v in metadata.items() if v is not None},
    )
    yield Record(decision)
    state["decision"] = decision.to_dict()
    return state, None


def _draft_message(state: Mapping[str, Any]) -> AIMessage | None:
    raw = state.get("draft")
    if not raw:
        return None
    message = messages_from_dict([raw])[0]
    return message if isinstance(message, AIMessage) else None


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, ModelCallError) and exc.errors:
        return type(exc.errors[-1]).__name__
    return type(exc).__name__
