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
import operator
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, NotRequired

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    OmitFromSchema,
)
from langchain_core.language_models import BaseChatModel
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import Runtime

from rpra_agent._call_flow import Call, CallFlow, Effect, Flow, Predict, Reason, as_response, configurable
from rpra_agent._legs import acall_leg, call_leg
from rpra_agent._steps import policy_snapshot
from rpra_agent.core.decision import Paradigm, new_id
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.naming import model_id
from rpra_agent.core.policy import DeferralPolicy, ThresholdPolicy
from rpra_agent.core.prediction import Predictor
from rpra_agent.store.base import DecisionStore

__all__ = ["RPRAMiddleware", "RPRAMiddlewareState"]

_HIDDEN = {"tags": [TAG_NOSTREAM], "run_name": "rpra_reason"}
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
    """

    rpra_task: NotRequired[str | None]
    rpra_decisions: NotRequired[Annotated[list[dict[str, Any]], _OUTPUT_ONLY, operator.add]]
    rpra_run_id: NotRequired[Annotated[str, _PRIVATE]]
    rpra_step: NotRequired[Annotated[int, _PRIVATE]]
    rpra_deferrals: NotRequired[Annotated[int, _PRIVATE]]


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
        on_large_failure: ``"raise"`` (the large leg's exception propagates, so an
            outer ModelRetry/ModelFallback middleware sees it) or ``"small"`` (answer
            with the small model, recorded as ``large_error_degraded``).
        reasoning_timeout_s: Timeout of each private reasoning call (``rpra``).

    Raises:
        ConfigError: On an unknown paradigm or failure mode, or a bad timeout.
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
        on_large_failure: Literal["raise", "small"] = "raise",
        reasoning_timeout_s: float | None = None,
    ) -> None:
        super().__init__()
        if paradigm not in ("pa", "rpra", "verify"):
            raise ConfigError(f"paradigm must be 'pa', 'rpra' or 'verify', not {paradigm!r}")
        if on_large_failure not in ("raise", "small"):
            raise ConfigError(f"on_large_failure must be 'raise' or 'small', not {on_large_failure!r}")
        if reasoning_timeout_s is not None and reasoning_timeout_s <= 0:
            raise ConfigError("reasoning_timeout_s must be positive or None")
        if isinstance(large, str):
            large = importlib.import_module("rpra_agent.models").load_chat_model(large)
        self.flow = CallFlow(
            large=large,  # type: ignore[arg-type]
            predictor=predictor,
            policy=policy if policy is not None else ThresholdPolicy(),
            paradigm=paradigm,
            share_reasoning=share_reasoning,
            on_large_failure=on_large_failure,
        )
        self.store = store
        self.reasoning_timeout_s = reasoning_timeout_s

    @property
    def large(self) -> BaseChatModel:
        """The large model."""
        return self.flow.large

    @property
    def policy(self) -> DeferralPolicy:
        """The deferral policy."""
        return self.flow.policy

    # -- run bookkeeping -------------------------------------------------------
    def _run_config(self) -> dict[str, Any]:
        return {
            "entry": "middleware",
            "paradigm": self.flow.paradigm,
            "policy": policy_snapshot(self.flow.policy),
            "predictor": getattr(self.flow.predictor, "name", "zero_shot"),
            "large": model_id(self.flow.large),
        }

    def before_agent(self, state: RPRAMiddlewareState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Start a run: fresh counters, and a ``running`` row in the store."""
        conf = configurable()
        run_id = str(conf.get("rpra_run_id") or new_id())
        if self.store is not None:
            self.store.upsert_run(
                run_id,
                thread_id=conf.get("thread_id"),
                paradigm=self.flow.paradigm,
                config=self._run_config(),
                status="running",
            )
        return {"rpra_run_id": run_id, "rpra_step": 0, "rpra_deferrals": 0}

    def after_agent(self, state: RPRAMiddlewareState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Mark the run completed in the store."""
        run_id = state.get("rpra_run_id")
        if self.store is not None and run_id:
            conf = configurable()
            self.store.upsert_run(
                run_id,
                thread_id=conf.get("thread_id"),
                paradigm=self.flow.paradigm,
                config=self._run_config(),
                status="completed",
            )
        return None

    # -- the hooks ---------------------------------------------------------------
    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> ExtendedModelResponse[Any]:
        """Predict, route, call the chosen model through ``handler``, record the decision.

        Returns:
            The chosen leg's response, with a state update carrying the decision.
        """

        def execute(effect: Effect) -> Any:
            if isinstance(effect, Call):
                return as_response(handler(effect.request))
            if isinstance(effect, Predict):
                return effect.predictor.predict(effect.request)
            if isinstance(effect, Reason):
                return call_leg(
                    effect.model, effect.messages, leg="small", timeout_s=self.reasoning_timeout_s, config=_HIDDEN
                )
            if self.store is not None:
                self.store.add(effect.decision)
            return None

        flow: Flow = self.flow.run(request)
        result: Any = None
        error: Exception | None = None
        while True:
            try:
                effect = flow.throw(error) if error is not None else flow.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            result, error = None, None
            try:
                result = execute(effect)
            except Exception as exc:  # thrown into the flow, which re-raises control flow
                error = exc

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
    ) -> ExtendedModelResponse[Any]:
        """Async twin of :meth:`wrap_model_call` (the same flow, with awaited effects)."""

        async def execute(effect: Effect) -> Any:
            if isinstance(effect, Call):
                return as_response(await handler(effect.request))
            if isinstance(effect, Predict):
                return await effect.predictor.apredict(effect.request)
            if isinstance(effect, Reason):
                return await acall_leg(
                    effect.model, effect.messages, leg="small", timeout_s=self.reasoning_timeout_s, config=_HIDDEN
                )
            if self.store is not None:
                await self.store.aadd(effect.decision)
            return None

        flow: Flow = self.flow.run(request)
        result: Any = None
        error: Exception | None = None
        while True:
            try:
                effect = flow.throw(error) if error is not None else flow.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            result, error = None, None
            try:
                result = await execute(effect)
            except Exception as exc:
                error = exc
