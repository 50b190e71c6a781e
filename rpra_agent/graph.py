"""The RPRA graph: predict (and reason), then let the small or the large model take each step.

Topology (``pa``)::

    START → start → predict ─┬→ small ─┬→ record ─┬→ tools → predict …
                             └→ large ─┘          └→ END

``rpra`` puts ``reason`` before ``predict`` (and reasons again inside ``small``);
``verify`` puts ``draft`` before ``predict`` and ``small`` keeps the draft.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, SystemMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.constants import TAG_NOSTREAM
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode

from rpra_agent._legs import FaultPolicy, LegResult, acall_leg, call_leg
from rpra_agent._steps import (
    checked_prediction,
    log_decision,
    policy_snapshot,
    predictor_failure,
)
from rpra_agent.core.messages import last_request_text, message_text, step_kind
from rpra_agent.core.decision import Decision, LegUsage, Paradigm, new_id
from rpra_agent.core.errors import ConfigError, ModelCallError
from rpra_agent.core.naming import model_id
from rpra_agent.core.policy import DeferralPolicy, PolicyContext, Route, ThresholdPolicy
from rpra_agent.core.prediction import Prediction, PredictionRequest, Predictor
from rpra_agent.store.base import DecisionStore

__all__ = ["RPRAState", "build_rpra_graph", "decisions_from_state"]

logger = logging.getLogger(__name__)

REASON_PROMPT = (
    "Before responding, think step by step about the latest request: what is asked, what you "
    "know, what could go wrong, and whether a tool is needed. Write only your reasoning; do not "
    "write the reply yet."
)
REASON_AGAIN_PROMPT = (
    "Here is your earlier private reasoning:\n{reasoning}\n\nReconsider it: check it for mistakes "
    "and plan the reply. Write only the revised reasoning; do not write the reply yet."
)
ANSWER_PROMPT = (
    "Your private reasoning (never quote it; the user cannot see it):\n{reasoning}\n\nNow give your reply to the user."
)
SHARE_PROMPT = "Private notes from a smaller assistant (may be wrong; never quote them):\n{reasoning}"
_HIDDEN = {"tags": [TAG_NOSTREAM]}


class RPRAState(TypedDict):
    """Graph state; compatible with LangGraph's ``MessagesState``.

    Attributes:
        messages: The conversation (``add_messages`` reducer).
        rpra_task: Optional task tag (category) of the request, for report cards.
        rpra_decisions: Every decision of the thread, as JSON dicts.
        rpra_run_id: The current run's id.
        rpra_step: Steps taken in the current run.
        rpra_deferrals: Steps deferred in the current run.
        rpra_reasoning: The small model's private reasoning for the current step.
        rpra_pending: The current step's prediction, route and usage, until recorded.
    """

    messages: Annotated[list[AnyMessage], add_messages]
    rpra_task: NotRequired[str | None]
    rpra_decisions: NotRequired[Annotated[list[dict[str, Any]], operator.add]]
    rpra_run_id: NotRequired[str]
    rpra_step: NotRequired[int]
    rpra_deferrals: NotRequired[int]
    rpra_reasoning: NotRequired[str | None]
    rpra_pending: NotRequired[dict[str, Any] | None]


def decisions_from_state(state: dict[str, Any]) -> list[Decision]:
    """The :class:`Decision` records held in a graph state (or a graph's output)."""
    return [Decision.from_dict(d) for d in state.get("rpra_decisions") or []]


def _with_system(messages: Sequence[BaseMessage], extra: str) -> list[BaseMessage]:
    """Add ``extra`` to the leading system message (or prepend one)."""
    msgs = list(messages)
    if msgs and isinstance(msgs[0], SystemMessage):
        return [SystemMessage(f"{msgs[0].text}\n\n{extra}"), *msgs[1:]]
    return [SystemMessage(extra), *msgs]


class _Nodes:
    """The graph's nodes, bound to their collaborators. Sync and async share helpers."""

    def __init__(
        self,
        *,
        small: Any,
        large: Any,
        predictor: Predictor | None,
        policy: DeferralPolicy,
        paradigm: Paradigm,
        tools: Sequence[BaseTool],
        store: DecisionStore | None,
        max_steps: int,
        share_reasoning: bool,
        faults: FaultPolicy,
    ) -> None:
        self.small_raw, self.large_raw = small, large
        self.small = small.bind_tools(list(tools)) if tools else small
        self.large = large.bind_tools(list(tools)) if tools else large
        self.predictor, self.policy, self.paradigm = predictor, policy, paradigm
        self.tool_names = tuple(t.name for t in tools)
        self.has_tools = bool(tools)
        self.store, self.max_steps = store, max_steps
        self.share_reasoning, self.faults = share_reasoning, faults
        self.small_name, self.large_name = model_id(small), model_id(large)

    # -- start -----------------------------------------------------------------
    def start(self, state: RPRAState, config: RunnableConfig) -> dict[str, Any]:
        conf = config.get("configurable") or {}
        run_id = str(conf.get("rpra_run_id") or new_id())
        if self.store is not None:
            self.store.upsert_run(
                run_id,
                thread_id=conf.get("thread_id"),
                paradigm=self.paradigm,
                config={
                    "paradigm": self.paradigm,
                    "policy": policy_snapshot(self.policy),
                    "predictor": getattr(self.predictor, "name", None),
                    "small": self.small_name,
                    "large": self.large_name,
                    "max_steps": self.max_steps,
                },
                status="running",
            )
        return {
            "rpra_run_id": run_id,
            "rpra_step": 0,
            "rpra_deferrals": 0,
            "rpra_reasoning": None,
            "rpra_pending": None,
        }

    # -- reason (rpra) ---------------------------------------------------------
    def _reason_msgs(self, state: RPRAState) -> list[BaseMessage]:
        return _with_system(state["messages"], REASON_PROMPT)

    def _pending(self, state: RPRAState) -> dict[str, Any]:
        return dict(state.get("rpra_pending") or {"legs": {}})

    def _after_reason(self, state: RPRAState, res: LegResult) -> dict[str, Any]:
        pending = self._pending(state)
        pending["legs"] = {**pending.get("legs", {}), "reason": res.usage.to_dict()}
        return {"rpra_reasoning": res.message.text, "rpra_pending": pending}

    def reason(self, state: RPRAState) -> dict[str, Any]:
        try:
            res = call_leg(
                self.small_raw,
                self._reason_msgs(state),
                leg="small",
                timeout_s=self.faults.small_timeout_s,
                config=_HIDDEN,
            )
        except ModelCallError as exc:
            return self._small_failed(state, exc)
        return self._after_reason(state, res)

    async def areason(self, state: RPRAState) -> dict[str, Any]:
        try:
            res = await acall_leg(
                self.small_raw,
                self._reason_msgs(state),
                leg="small",
                timeout_s=self.faults.small_timeout_s,
                config=_HIDDEN,
            )
        except ModelCallError as exc:
            return self._small_failed(state, exc)
        return self._after_reason(state, res)

    # -- draft (verify) --------------------------------------------------------
    def _after_draft(self, state: RPRAState, res: LegResult) -> dict[str, Any]:
        pending = self._pending(state)
        pending["legs"] = {**pending.get("legs", {}), "small": res.usage.to_dict()}
        pending["draft"] = res.message
        return {"rpra_pending": pending}

    def draft(self, state: RPRAState) -> dict[str, Any]:
        try:
            res = call_leg(
                self.small, state["messages"], leg="small", timeout_s=self.faults.small_timeout_s, config=_HIDDEN
            )
        except ModelCallError as exc:
            return self._small_failed(state, exc)
        return self._after_draft(state, res)

    async def adraft(self, state: RPRAState) -> dict[str, Any]:
        try:
            res = await acall_leg(
                self.small, state["messages"], leg="small", timeout_s=self.faults.small_timeout_s, config=_HIDDEN
            )
        except ModelCallError as exc:
            return self._small_failed(state, exc)
        return self._after_draft(state, res)

    def _small_failed(self, state: RPRAState, exc: ModelCallError) -> dict[str, Any]:
        logger.warning("small model failed (%s); deferring the step", type(exc.errors[-1]).__name__)
        pending = self._pending(state)
        pending.update(small_error=type(exc.errors[-1]).__name__)
        return {"rpra_pending": pending}

    # -- predict ---------------------------------------------------------------
    def _request(self, state: RPRAState, config: RunnableConfig) -> PredictionRequest:
        pending = self._pending(state)
        draft = pending.get("draft")
        return PredictionRequest(
            messages=tuple(state["messages"]),
            kind=step_kind(draft) if isinstance(draft, AIMessage) else "answer",
            reasoning=state.get("rpra_reasoning"),
            draft=draft if isinstance(draft, AIMessage) else None,
            task=self._task(state, config),
            tool_names=self.tool_names,
        )

    def _task(self, state: RPRAState, config: RunnableConfig) -> str | None:
        return state.get("rpra_task") or (config.get("configurable") or {}).get("rpra_task")

    def _decide(
        self, state: RPRAState, request: PredictionRequest, prediction: Prediction | None, error: str | None
    ) -> dict[str, Any]:
        pending = self._pending(state)
        context = PolicyContext(
            kind=request.kind, step=state.get("rpra_step", 0), deferrals=state.get("rpra_deferrals", 0)
        )
        if pending.get("small_error"):
            route = Route("large", "small_error", self.policy.decide(prediction, context).threshold)
        else:
            route = self.policy.decide(prediction, context)
        pending.update(route=route.route, reason=route.reason, threshold=route.threshold, score=route.score)
        pending["prediction"] = prediction.to_dict() if prediction else None
        if prediction is not None:
            pending["legs"] = {
                **pending.get("legs", {}),
                "predict": LegUsage(prediction.predictor, latency_ms=prediction.latency_ms).to_dict(),
            }
        if error:
            pending["predictor_error"] = error
        return {"rpra_pending": pending}

    def _needs_prediction(self, state: RPRAState) -> bool:
        return (
            self.policy.needs_prediction and self.predictor is not None and not self._pending(state).get("small_error")
        )

    def predict(self, state: RPRAState, config: RunnableConfig) -> dict[str, Any]:
        request = self._request(state, config)
        prediction, error = None, None
        if self._needs_prediction(state):
            assert self.predictor is not None  # noqa: S101 - narrowed by _needs_prediction
            try:
                prediction = checked_prediction(self.predictor.predict(request), self.predictor)
            except Exception as exc:  # any failure or garbage defers; interrupts are re-raised
                error = predictor_failure(exc)
        return self._decide(state, request, prediction, error)

    async def apredict(self, state: RPRAState, config: RunnableConfig) -> dict[str, Any]:
        request = self._request(state, config)
        prediction, error = None, None
        if self._needs_prediction(state):
            assert self.predictor is not None  # noqa: S101 - narrowed by _needs_prediction
            try:
                prediction = checked_prediction(await self.predictor.apredict(request), self.predictor)
            except Exception as exc:  # any failure or garbage defers; interrupts are re-raised
                error = predictor_failure(exc)
        return self._decide(state, request, prediction, error)

    def route_step(self, state: RPRAState) -> Literal["small", "large"]:
        """Which model takes the step, as the policy decided."""
        return "large" if self._pending(state).get("route") == "large" else "small"

    # -- small -----------------------------------------------------------------
    def _answer_msgs(self, state: RPRAState, reasoning: str | None) -> list[BaseMessage]:
        if reasoning:
            return _with_system(state["messages"], ANSWER_PROMPT.format(reasoning=reasoning))
        return list(state["messages"])

    def _took(self, state: RPRAState, leg: str, res: LegResult, **extra: Any) -> dict[str, Any]:
        pending = self._pending(state)
        pending["legs"] = {**pending.get("legs", {}), leg: res.usage.to_dict()}
        pending.update(extra)
        pending.pop("draft", None)
        return {"messages": [res.message], "rpra_pending": pending}

    def small_step(self, state: RPRAState) -> dict[str, Any]:
        pending = self._pending(state)
        draft = pending.get("draft")
        if isinstance(draft, AIMessage):
            pending.pop("draft")
            return {"messages": [draft], "rpra_pending": pending}
        reasoning = state.get("rpra_reasoning")
        try:
            if self.paradigm == "rpra" and reasoning:
                again = call_leg(
                    self.small_raw,
                    _with_system(state["messages"], REASON_AGAIN_PROMPT.format(reasoning=reasoning)),
                    leg="small",
                    timeout_s=self.faults.small_timeout_s,
                    config=_HIDDEN,
                )
                reasoning = again.message.text
            res = call_leg(
                self.small, self._answer_msgs(state, reasoning), leg="small", timeout_s=self.faults.small_timeout_s
            )
        except ModelCallError as exc:
            update = self._small_failed(state, exc)
            merged: RPRAState = {**state, **update}  # type: ignore[typeddict-item]
            return self.large_step(merged, reason="small_error")
        return self._took(state, "small", res)

    async def asmall_step(self, state: RPRAState) -> dict[str, Any]:
        pending = self._pending(state)
        draft = pending.get("draft")
        if isinstance(draft, AIMessage):
            pending.pop("draft")
            return {"messages": [draft], "rpra_pending": pending}
        reasoning = state.get("rpra_reasoning")
        try:
            if self.paradigm == "rpra" and reasoning:
                again = await acall_leg(
                    self.small_raw,
                    _with_system(state["messages"], REASON_AGAIN_PROMPT.format(reasoning=reasoning)),
                    leg="small",
                    timeout_s=self.faults.small_timeout_s,
                    config=_HIDDEN,
                )
                reasoning = again.message.text
            res = await acall_leg(
                self.small, self._answer_msgs(state, reasoning), leg="small", timeout_s=self.faults.small_timeout_s
            )
        except ModelCallError as exc:
            update = self._small_failed(state, exc)
            merged: RPRAState = {**state, **update}  # type: ignore[typeddict-item]
            return await self.alarge_step(merged, reason="small_error")
        return self._took(state, "small", res)

    # -- large -----------------------------------------------------------------
    def _large_msgs(self, state: RPRAState) -> list[BaseMessage]:
        reasoning = state.get("rpra_reasoning")
        if self.share_reasoning and reasoning:
            return _with_system(state["messages"], SHARE_PROMPT.format(reasoning=reasoning))
        return list(state["messages"])

    def _large_kwargs(self) -> dict[str, Any]:
        f = self.faults
        return {"leg": "large", "attempts": f.large_attempts, "timeout_s": f.large_timeout_s, "backoff_s": f.backoff_s}

    def _large_failed(self, state: RPRAState, exc: ModelCallError) -> dict[str, Any] | None:
        """Degrade to the small model's draft, or None when a fresh small call is needed."""
        if self.faults.on_large_failure != "small" or self._pending(state).get("small_error"):
            errors = [e if isinstance(e, Exception) else RuntimeError(repr(e)) for e in exc.errors]
            if self.store is not None and state.get("rpra_run_id"):
                self.store.upsert_run(
                    str(state.get("rpra_run_id")), thread_id=None, paradigm=self.paradigm, config={}, status="failed"
                )
            raise ExceptionGroup("the large model failed and no fallback is configured", errors) from exc
        logger.warning("large model failed %d time(s); answering with the small model (degraded)", len(exc.errors))
        draft = self._pending(state).get("draft")
        if isinstance(draft, AIMessage):
            pending = self._pending(state)
            pending.pop("draft")
            pending.update(
                degraded=True, reason="large_error_degraded", route="small", large_error=type(exc.errors[-1]).__name__
            )
            return {"messages": [draft], "rpra_pending": pending}
        return None

    def large_step(self, state: RPRAState, reason: str | None = None) -> dict[str, Any]:
        try:
            res = call_leg(self.large, self._large_msgs(state), **self._large_kwargs())
        except ModelCallError as exc:
            update = self._large_failed(state, exc)
            if update is not None:
                return update
            res = call_leg(self.small, list(state["messages"]), leg="small", timeout_s=self.faults.small_timeout_s)
            return self._took(
                state,
                "small",
                res,
                degraded=True,
                reason="large_error_degraded",
                route="small",
                large_error=type(exc.errors[-1]).__name__,
            )
        return self._took(state, "large", res, **({"reason": reason, "route": "large"} if reason else {}))

    async def alarge_step(self, state: RPRAState, reason: str | None = None) -> dict[str, Any]:
        try:
            res = await acall_leg(self.large, self._large_msgs(state), **self._large_kwargs())
        except ModelCallError as exc:
            update = self._large_failed(state, exc)
            if update is not None:
                return update
            res = await acall_leg(
                self.small, list(state["messages"]), leg="small", timeout_s=self.faults.small_timeout_s
            )
            return self._took(
                state,
                "small",
                res,
                degraded=True,
                reason="large_error_degraded",
                route="small",
                large_error=type(exc.errors[-1]).__name__,
            )
        return self._took(state, "large", res, **({"reason": reason, "route": "large"} if reason else {}))

    # -- record ----------------------------------------------------------------
    def _decision(self, state: RPRAState, config: RunnableConfig) -> tuple[Decision, dict[str, Any]]:
        pending = self._pending(state)
        message = state["messages"][-1]
        assert isinstance(message, AIMessage)  # noqa: S101 - the previous node always appends one
        step = state.get("rpra_step", 0)
        conf = config.get("configurable") or {}
        pred = pending.get("prediction")
        error = pending.get("small_error") or pending.get("large_error")
        decision = Decision(
            run_id=state.get("rpra_run_id") or new_id(),
            thread_id=conf.get("thread_id"),
            step=step,
            kind=step_kind(message),
            paradigm=self.paradigm,
            prediction=Prediction.from_dict(pred) if pred else None,
            threshold=float(pending.get("threshold", 0.0)),
            route=pending.get("route", "small"),
            reason=pending.get("reason", "forced"),
            task=self._task(state, config),
            small_model=self.small_name,
            large_model=self.large_name,
            legs={k: LegUsage.from_dict(v) for k, v in pending.get("legs", {}).items()},
            request=last_request_text(state["messages"]),
            response=message_text(message),
            tool_calls=tuple(c["name"] for c in message.tool_calls),
            error=error,
            degraded=bool(pending.get("degraded")),
            metadata={k: pending[k] for k in ("score", "predictor_error") if pending.get(k) is not None},
        )
        update: dict[str, Any] = {
            "rpra_decisions": [decision.to_dict()],
            "rpra_step": step + 1,
            "rpra_deferrals": state.get("rpra_deferrals", 0) + (1 if decision.deferred else 0),
            "rpra_pending": None,
            "rpra_reasoning": None,
        }
        if message.tool_calls and step + 1 >= self.max_steps:
            update["messages"] = [
                AIMessage(
                    f"Stopped: the step limit (max_steps={self.max_steps}) was reached before a final answer.",
                    id=message.id,
                )
            ]
        return decision, update

    def _finish_run(self, state: RPRAState, config: RunnableConfig, decision: Decision, update: dict[str, Any]) -> None:
        if self.store is not None and self.after_record({**state, **update}) == END:  # type: ignore[typeddict-item]
            conf = config.get("configurable") or {}
            self.store.upsert_run(
                decision.run_id, thread_id=conf.get("thread_id"), paradigm=self.paradigm, config={}, status="completed"
            )

    def record(self, state: RPRAState, config: RunnableConfig) -> dict[str, Any]:
        decision, update = self._decision(state, config)
        if self.store is not None:
            self.store.add(decision)
        log_decision(logger, decision)
        self._finish_run(state, config, decision, update)
        return update

    async def arecord(self, state: RPRAState, config: RunnableConfig) -> dict[str, Any]:
        decision, update = self._decision(state, config)
        if self.store is not None:
            await self.store.aadd(decision)
        log_decision(logger, decision)
        self._finish_run(state, config, decision, update)
        return update

    def after_record(self, state: RPRAState) -> Literal["tools", "__end__"]:
        """Run the tools when the step was a tool action, else finish."""
        last = state["messages"][-1]
        if self.has_tools and isinstance(last, AIMessage) and last.tool_calls:
            return "tools"
        return "__end__"


def build_rpra_graph(
    *,
    small: BaseChatModel | Any,
    large: BaseChatModel | Any,
    predictor: Predictor | None = None,
    policy: DeferralPolicy | None = None,
    paradigm: Paradigm = "pa",
    tools: Sequence[BaseTool] = (),
    store: DecisionStore | None = None,
    max_steps: int = 8,
    share_reasoning: bool = False,
    faults: FaultPolicy | None = None,
    checkpointer: Any = None,
    name: str = "rpra",
) -> CompiledStateGraph:  # type: ignore[type-arg]
    """Build the compiled RPRA graph.

    Args:
        small: The small chat model (e.g. llama.cpp); must support ``bind_tools``
            when ``tools`` are given.
        large: The large chat model (any OpenAI-compatible endpoint).
        predictor: Predicts the judge's grade; required unless the policy is a baseline.
        policy: Turns predictions into routes; defaults to ``ThresholdPolicy()``.
        paradigm: ``"pa"``, ``"rpra"`` or ``"verify"`` (see the module docstring).
        tools: Tools the agent may call; each step's action is predicted and may be
            deferred like an answer. Tool errors come back as tool messages.
        store: Where decisions are recorded (``None``: only in the state).
        max_steps: Model steps per run before the run is stopped.
        share_reasoning: Give the large model the small model's private reasoning.
        faults: What to do when a model leg fails or times out.
        checkpointer: A LangGraph checkpointer, for multi-turn threads.
        name: The graph's name (as a subgraph).

    Returns:
        A compiled graph whose state is compatible with ``MessagesState``.

    Raises:
        ConfigError: on an unknown paradigm, a missing predictor or a bad limit.
    """
    chosen: DeferralPolicy = ThresholdPolicy() if policy is None else policy
    if paradigm not in ("pa", "rpra", "verify"):
        raise ConfigError(f"paradigm must be 'pa', 'rpra' or 'verify', not {paradigm!r}")
    if predictor is None and chosen.needs_prediction:
        raise ConfigError(
            f"policy {chosen.name!r} needs a predictor: pass predictor=ZeroShotPredictor(small) "
            "(or another Predictor), or use AlwaysSmall()/AlwaysLarge()"
        )
    if max_steps < 1:
        raise ConfigError("max_steps must be at least 1")
    if tools and not hasattr(small, "bind_tools"):
        raise ConfigError("tools were given but the small model has no bind_tools()")
    nodes = _Nodes(
        small=small,
        large=large,
        predictor=predictor,
        policy=chosen,
        paradigm=paradigm,
        tools=tools,
        store=store,
        max_steps=max_steps,
        share_reasoning=share_reasoning,
        faults=faults or FaultPolicy(),
    )
    g: StateGraph[Any] = StateGraph(RPRAState)
    g.add_node("start", RunnableLambda(nodes.start, name="start"))
    g.add_node("predict", RunnableLambda(nodes.predict, afunc=nodes.apredict, name="predict"))
    g.add_node("small", RunnableLambda(nodes.small_step, afunc=nodes.asmall_step, name="small"))
    g.add_node("large", RunnableLambda(nodes.large_step, afunc=nodes.alarge_step, name="large"))
    g.add_node("record", RunnableLambda(nodes.record, afunc=nodes.arecord, name="record"))
    first = "predict"
    if paradigm == "rpra":
        g.add_node("reason", RunnableLambda(nodes.reason, afunc=nodes.areason, name="reason"))
        g.add_edge("reason", "predict")
        first = "reason"
    elif paradigm == "verify":
        g.add_node("draft", RunnableLambda(nodes.draft, afunc=nodes.adraft, name="draft"))
        g.add_edge("draft", "predict")
        first = "draft"
    g.add_edge(START, "start")
    g.add_edge("start", first)
    g.add_conditional_edges("predict", nodes.route_step, {"small": "small", "large": "large"})
    g.add_edge("small", "record")
    g.add_edge("large", "record")
    if tools:
        g.add_node("tools", ToolNode(list(tools), handle_tool_errors=True))
        g.add_conditional_edges("record", nodes.after_record, {"tools": "tools", END: END})
        g.add_edge("tools", first)
    else:
        g.add_edge("record", END)
    return g.compile(checkpointer=checkpointer, name=name)
