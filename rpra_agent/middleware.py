"""RPRA for ``langchain.agents.create_agent``: a ``wrap_model_call`` middleware.

The agent's own model is the *small* model. Per model call the middleware predicts
the judge's grade (``pa``: before the call; ``rpra``: after a private reasoning pass,
reasoning again before answering; ``verify``: on the small model's draft), asks the
:class:`~rpra_agent.core.policy.DeferralPolicy`, and, when the prediction is low, re-issues
the *same* request to the large model with ``request.override(model=large)``. The
rest of the middleware chain and the agent bind tools, the system prompt and the
structured-output strategy to whichever model runs, so both legs keep them.

Each call's :class:`~rpra_agent.core.decision.Decision` goes to the store and into the
agent state (``rpra_decisions``). Interrupts and other LangGraph control-flow signals
pass through untouched. Order semantics with LangChain's own middleware are in
``docs/MIDDLEWARE.md``.

Example::

    agent = create_agent(
        small_model,
        tools=[...],
        middleware=[RPRAMiddleware(large_model, store=open_store(), policy=ThresholdPolicy(0.6))],
    )
"""

from __future__ import annotations

import importlib
import logging
import operator
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated, Any, NotRequired

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    OmitFromSchema,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime
from langgraph.types import Command

from rpra_agent._drive import (
    HIDDEN,
    RunBook,
    acall_leg,
    achoose,
    adrive,
    arun_leg,
    call_leg,
    choose,
    counters_after,
    drive,
    leg_options,
    run_leg,
)
from rpra_agent.core.decision import Decision, Paradigm, new_id
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.faults import FaultPolicy
from rpra_agent.core.messages import extend_system
from rpra_agent.core.naming import model_id
from rpra_agent.core.policy import DeferralPolicy, ThresholdPolicy
from rpra_agent.core.prediction import Predictor
from rpra_agent.core.step import (
    CallModel,
    Choose,
    Effect,
    ModelOutput,
    PendingStep,
    Predict,
    Record,
    StepSpec,
    StepView,
    next_stage,
    record_stage,
    run_stage,
    run_tags,
)
from rpra_agent.core.step_checks import log_decision, policy_options
from rpra_agent.predictors.self_predict import ZeroShotPredictor
from rpra_agent.store.base import DecisionStore

__all__ = ["RPRAMiddleware", "RPRAMiddlewareState"]

logger = logging.getLogger(__name__)
_PRIVATE = OmitFromSchema(input=True, output=True)
_OUTPUT_ONLY = OmitFromSchema(input=True, output=False)


class RPRAMiddlewareState(AgentState[Any]):
    """Agent state keys the middleware adds.

    Attributes:
        rpra_task: Optional task tag of the request (report cards use it).
        rpra_decisions: Every decision of the thread, as JSON dicts (in the output).
        rpra_run_id: The current run's id (private).
        rpra_step: Model calls taken in the current run (private).
        rpra_deferrals: Model calls deferred in the current run (private).
        rpra_learning: Act-to-learn tool calls made in the current run (private).
    """

    rpra_task: NotRequired[str | None]
    rpra_decisions: NotRequired[Annotated[list[dict[str, Any]], _OUTPUT_ONLY, operator.add]]
    rpra_run_id: NotRequired[Annotated[str, _PRIVATE]]
    rpra_step: NotRequired[Annotated[int, _PRIVATE]]
    rpra_deferrals: NotRequired[Annotated[int, _PRIVATE]]
    rpra_learning: NotRequired[Annotated[int, _PRIVATE]]


def _configurable() -> dict[str, Any]:
    try:
        from langgraph.config import get_config

        return dict(get_config().get("configurable") or {})
    except RuntimeError:  # called directly, e.g. in a unit test
        return {}


def _as_response(result: Any) -> ModelResponse[Any]:
    if isinstance(result, AIMessage):
        return ModelResponse(result=[result])
    if isinstance(result, ExtendedModelResponse):
        return result.model_response
    return result  # type: ignore[no-any-return]


def _tool_names(tools: list[Any]) -> tuple[str, ...]:
    names = []
    for tool in tools:
        name = getattr(tool, "name", None)
        if name is None and isinstance(tool, dict):
            name = tool.get("name") or (tool.get("function") or {}).get("name")
        if name:
            names.append(str(name))
    return tuple(names)


class _Call:
    """One model call of the agent: the step's view, and the responses its legs returned."""

    def __init__(self, mw: RPRAMiddleware, request: ModelRequest[Any]) -> None:
        state: dict[str, Any] = dict(request.state or {})
        conf = _configurable()
        self.request, self.mw = request, mw
        self.spec = replace(
            mw.spec,
            predictor=mw.spec.predictor or ZeroShotPredictor(request.model),
            small_model=model_id(request.model),
        )
        system = [request.system_message] if request.system_message else []
        self.view = StepView.of((*system, *request.messages), _tool_names(request.tools), state, conf)
        self.pending: PendingStep = {}
        self.output: AIMessage | None = None
        self.responses: dict[str, ModelResponse[Any]] = {}

    def stage(self) -> Any:
        """The next stage's flow, or ``None`` when the step is recorded."""
        stage = next_stage(self.spec, self.pending, bool(self.view.tool_names))
        if stage == "done":
            return None
        if stage == "record":
            if self.output is None:  # unreachable: every taken leg produced a message
                raise RuntimeError("the step produced no message")
            return record_stage(self.spec, self.view, self.pending, self.output)
        return run_stage(stage, self.spec, self.view, self.pending)

    def took(self, result: tuple[PendingStep, AIMessage | None]) -> None:
        self.pending, output = result
        self.output = output or self.output

    def leg_request(self, effect: CallModel) -> ModelRequest[Any]:
        request = self.request
        changes: dict[str, Any] = {}
        if effect.model == "large":
            changes["model"] = self.mw.large
        if effect.system:
            changes["system_message"] = extend_system(request.system_message, effect.system)
        if effect.tool_choice:
            changes["tool_choice"] = effect.tool_choice
        return request.override(**changes) if changes else request

    def leg_kwargs(self, effect: CallModel) -> dict[str, Any]:
        return leg_options(self.spec.faults, effect)

    def private(self, effect: CallModel | Choose) -> list[Any]:
        system = (
            extend_system(self.request.system_message, effect.system) if effect.system else self.request.system_message
        )
        return [*([system] if system else []), *self.request.messages]

    def kept(self, effect: CallModel, response: ModelResponse[Any], output: ModelOutput) -> ModelOutput:
        self.responses[effect.leg] = response
        return ModelOutput(output.message, output.usage, response.structured_response is not None)

    def recorded(self) -> ExtendedModelResponse[Any]:
        raw = self.pending["decision"]
        decision = Decision.from_dict(raw)
        taken = self.pending.get("taken", "small")
        response = self.responses.get(taken) or self.responses.get("small")
        if response is None:  # unreachable: the taken leg went through the handler
            raise RuntimeError("no response was kept for the step")
        update = {"rpra_decisions": [raw], **counters_after(self.view, decision)}
        return ExtendedModelResponse(model_response=response, command=Command(update=update))


class RPRAMiddleware(AgentMiddleware[RPRAMiddlewareState, Any, Any]):
    """Route each model call of an agent between its own (small) model and a large one.

    Args:
        large: The large model (a chat model, or a model string for
            ``rpra_agent.models.load_chat_model``).
        predictor: Predicts the judge's grade; ``None``: the request's own model
            predicts its grade zero-shot (``ZeroShotPredictor``).
        policy: Turns predictions into routes; defaults to ``ThresholdPolicy()``.
        paradigm: ``"pa"``, ``"rpra"`` or ``"verify"``.
        store: Where decisions are recorded (``None``: only in the agent state).
        share_reasoning: Give the large model the small model's private reasoning.
        faults: Timeouts, retries of transient large-model failures, and what a
            large-model failure does: ``on_large_failure="raise"`` raises an
            ``ExceptionGroup`` with every error (an outer ModelFallback middleware
            sees it), ``"small"`` answers with the small model, recorded as
            ``large_error_degraded``. The default makes one attempt, so that an
            outer ModelRetry middleware owns retries.

    Raises:
        ConfigError: On an unknown paradigm.
    """

    state_schema = RPRAMiddlewareState

    def __init__(
        self,
        large: BaseChatModel | str,
        *,
        predictor: Predictor | None = None,
        policy: DeferralPolicy | None = None,
        paradigm: Paradigm = "pa",
        store: DecisionStore | None = None,
        share_reasoning: bool = False,
        faults: FaultPolicy | None = None,
    ) -> None:
        super().__init__()
        if paradigm not in ("pa", "rpra", "verify"):
            raise ConfigError(f"paradigm must be 'pa', 'rpra' or 'verify', not {paradigm!r}")
        if isinstance(large, str):
            large = importlib.import_module("rpra_agent.models").load_chat_model(large)
        self.large: BaseChatModel = large  # type: ignore[assignment]
        self.spec = StepSpec(
            paradigm=paradigm,
            policy=policy if policy is not None else ThresholdPolicy(),
            predictor=predictor,
            faults=faults or FaultPolicy(large_attempts=1),
            share_reasoning=share_reasoning,
            small_model="",
            large_model=model_id(large),
        )
        self.store = store
        self.book = RunBook(
            store,
            paradigm,
            {
                "entry": "middleware",
                "paradigm": paradigm,
                "policy": policy_options(self.spec.policy),
                "predictor": getattr(predictor, "name", "zero_shot"),
                "large": self.spec.large_model,
            },
        )

    @property
    def policy(self) -> DeferralPolicy:
        """The deferral policy."""
        return self.spec.policy

    def before_agent(self, state: RPRAMiddlewareState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Start a run: fresh counters, and a ``running`` row in the store."""
        conf = _configurable()
        _, thread_id, _ = run_tags(state, conf)  # a bad tag is refused before the run is marked running
        run_id = str(conf.get("rpra_run_id") or new_id())
        self.book.mark(run_id, "running", thread_id)
        return {"rpra_run_id": run_id, "rpra_step": 0, "rpra_deferrals": 0, "rpra_learning": 0}

    def after_agent(self, state: RPRAMiddlewareState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Mark the run completed in the store."""
        _, thread_id, _ = run_tags(state, _configurable())
        self.book.mark(state.get("rpra_run_id"), "completed", thread_id)
        return None

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> ExtendedModelResponse[Any]:
        """Take the step: its stages in order, the answer/action legs through ``handler``.

        Returns:
            The taken leg's response, with a state update carrying the decision.
        """
        call = _Call(self, request)

        def execute(effect: Effect) -> Any:
            if isinstance(effect, CallModel) and not effect.tools:  # private reasoning: no tools, no handler
                message, usage = call_leg(request.model, call.private(effect), config=HIDDEN, **call.leg_kwargs(effect))
                return ModelOutput(message, usage)
            if isinstance(effect, CallModel):
                leg_request = call.leg_request(effect)
                response, usage = run_leg(
                    lambda: _as_response(handler(leg_request)), leg_request.model, **call.leg_kwargs(effect)
                )
                return call.kept(effect, response, ModelOutput(_last_ai(response), usage))
            if isinstance(effect, Choose):
                return choose(request.model, call.private(effect), effect.options)
            if isinstance(effect, Predict):
                return effect.predictor.predict(effect.request)
            self._record(effect)
            return None

        def step() -> ExtendedModelResponse[Any]:
            while (flow := call.stage()) is not None:
                call.took(drive(flow, execute))
            return call.recorded()

        return self.book.guarded(call.view.run_id, call.view.thread_id, step)

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
    ) -> ExtendedModelResponse[Any]:
        """Async twin of :meth:`wrap_model_call` (the same stages, with awaited effects)."""
        call = _Call(self, request)

        async def execute(effect: Effect) -> Any:
            if isinstance(effect, CallModel) and not effect.tools:  # private reasoning: no tools, no handler
                message, usage = await acall_leg(
                    request.model, call.private(effect), config=HIDDEN, **call.leg_kwargs(effect)
                )
                return ModelOutput(message, usage)
            if isinstance(effect, CallModel):
                leg_request = call.leg_request(effect)

                async def invoke() -> ModelResponse[Any]:
                    return _as_response(await handler(leg_request))

                response, usage = await arun_leg(invoke, leg_request.model, **call.leg_kwargs(effect))
                return call.kept(effect, response, ModelOutput(_last_ai(response), usage))
            if isinstance(effect, Choose):
                return await achoose(request.model, call.private(effect), effect.options)
            if isinstance(effect, Predict):
                return await effect.predictor.apredict(effect.request)
            if self.store is not None:
                await self.store.aadd(effect.decision)
            log_decision(logger, effect.decision)
            return None

        async def step() -> ExtendedModelResponse[Any]:
            while (flow := call.stage()) is not None:
                call.took(await adrive(flow, execute))
            return call.recorded()

        return await self.book.aguarded(call.view.run_id, call.view.thread_id, step)

    def _record(self, effect: Record) -> None:
        if self.store is not None:
            self.store.add(effect.decision)
        log_decision(logger, effect.decision)


def _last_ai(response: ModelResponse[Any]) -> AIMessage:
    message = next((m for m in reversed(response.result) if isinstance(m, AIMessage)), None)
    if message is None:
        raise TypeError("the model call returned no AIMessage")
    return message
