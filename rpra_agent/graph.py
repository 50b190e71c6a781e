"""The RPRA graph: the step of :mod:`rpra_agent.core.step`, one LangGraph node per stage.

Each node drives its stage (sync or async) and writes the step's pending state, a
dict of JSON values; every conditional edge is :func:`~rpra_agent.core.step.next_stage`,
so the drawn graph shows each stage and each fallback. Topology (``rpra`` with tools)::

    START → start → reason → predict ─┬→ reason_again ─┬→ small ─┬→ record ─┬→ tools → reason …
                      │               │                └→ learn ─┤          └→ END
                      └──────────────→└→ large ⇄ small (fallbacks)┘

``pa`` has ``plan`` (with tools) instead of ``reason``/``reason_again``; ``verify`` has
``draft`` and keeps it from ``predict``.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Annotated, Any, NotRequired, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode

from rpra_agent._drive import (
    HIDDEN,
    RunBook,
    acall_leg,
    achoose,
    adrive,
    call_leg,
    choose,
    counters_after,
    drive,
    leg_options,
    with_system,
)
from rpra_agent.core.decision import Decision, Paradigm, new_id
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.faults import FaultPolicy
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
    Stage,
    StepSpec,
    StepView,
    next_stage,
    record_stage,
    run_stage,
    run_tags,
)
from rpra_agent.core.step_checks import log_decision, policy_options
from rpra_agent.store.base import DecisionStore

__all__ = ["RPRAState", "build_rpra_graph", "decisions_from_state"]

logger = logging.getLogger(__name__)

# Where each stage may go next (the path maps of the conditional edges).
_NEXT: dict[str, tuple[str, ...]] = {
    "reason": ("predict", "large"),
    "plan": ("predict",),
    "draft": ("predict", "large"),
    "predict": ("small", "act_to_learn", "large", "reason_again"),
    "reason_again": ("small", "act_to_learn", "large"),
    "small": ("record", "large"),
    "act_to_learn": ("record", "large"),
    "large": ("record", "small"),
}
_PARADIGM_STAGES: dict[str, tuple[str, ...]] = {
    "pa": ("plan", "predict", "small", "act_to_learn", "large"),
    "rpra": ("reason", "predict", "reason_again", "small", "act_to_learn", "large"),
    "verify": ("draft", "predict", "small", "act_to_learn", "large"),
}


class RPRAState(TypedDict):
    """Graph state; compatible with LangGraph's ``MessagesState``.

    Attributes:
        messages: The conversation (``add_messages`` reducer).
        rpra_task: Optional task tag (category) of the request, for report cards.
        rpra_decisions: Every decision of the thread, as JSON dicts.
        rpra_run_id: The current run's id.
        rpra_step: Steps taken in the current run.
        rpra_deferrals: Steps deferred in the current run.
        rpra_learning: Act-to-learn tool calls made in the current run.
        rpra_pending: The step in progress (JSON values only), until it is recorded.
    """

    messages: Annotated[list[AnyMessage], add_messages]
    rpra_task: NotRequired[str | None]
    rpra_decisions: NotRequired[Annotated[list[dict[str, Any]], operator.add]]
    rpra_run_id: NotRequired[str]
    rpra_step: NotRequired[int]
    rpra_deferrals: NotRequired[int]
    rpra_learning: NotRequired[int]
    rpra_pending: NotRequired[PendingStep | None]


def decisions_from_state(state: dict[str, Any]) -> list[Decision]:
    """The :class:`Decision` records held in a graph state (or a graph's output)."""
    return [Decision.from_dict(d) for d in state.get("rpra_decisions") or []]


class _Adapter:
    """Binds the step to the graph's models, tools and store; builds each node."""

    def __init__(
        self, *, small: Any, large: Any, spec: StepSpec, tools: Sequence[BaseTool], store: Any, max_steps: int
    ) -> None:
        self.small, self.large, self.spec, self.tools, self.store = small, large, spec, list(tools), store
        self.max_steps = max_steps
        self.tool_names = tuple(t.name for t in tools)
        self._bound: dict[tuple[str, str | None], Any] = {}
        if self.tools:  # bind now, so that a model that cannot take the tools fails when the graph is built
            self._bound[("small", None)] = small.bind_tools(self.tools)
            self._bound[("large", None)] = large.bind_tools(self.tools)
        self.book = RunBook(
            store,
            spec.paradigm,
            {
                "entry": "graph",
                "paradigm": spec.paradigm,
                "policy": policy_options(spec.policy),
                "predictor": getattr(spec.predictor, "name", None),
                "small": spec.small_model,
                "large": spec.large_model,
                "max_steps": max_steps,
            },
        )

    # -- state <-> step ----------------------------------------------------------------
    def start(self, state: RPRAState, config: RunnableConfig) -> dict[str, Any]:
        conf = config.get("configurable") or {}
        _, thread_id, _ = run_tags(state, conf)  # a bad tag is refused before the run is marked running
        run_id = str(conf.get("rpra_run_id") or new_id())
        self.book.mark(run_id, "running", thread_id)
        return {"rpra_run_id": run_id, "rpra_step": 0, "rpra_deferrals": 0, "rpra_learning": 0, "rpra_pending": None}

    def view(self, state: RPRAState, config: RunnableConfig) -> StepView:
        return StepView.of(tuple(state["messages"]), self.tool_names, state, config.get("configurable") or {})

    def route(self, state: RPRAState) -> str:
        return next_stage(self.spec, state.get("rpra_pending") or {}, bool(self.tools))

    def after_record(self, state: RPRAState) -> str:
        last = state["messages"][-1]
        return "tools" if self.tools and isinstance(last, AIMessage) and last.tool_calls else END

    def _update(self, pending: PendingStep, output: AIMessage | None) -> dict[str, Any]:
        update: dict[str, Any] = {"rpra_pending": pending}
        if output is not None:
            update["messages"] = [output]
        return update

    def _recorded(self, state: RPRAState, view: StepView, pending: PendingStep) -> dict[str, Any]:
        decision = Decision.from_dict(pending["decision"])
        message = state["messages"][-1]
        update: dict[str, Any] = {
            "rpra_decisions": [pending["decision"]],
            **counters_after(view, decision),
            "rpra_pending": None,
        }
        if self.tools and isinstance(message, AIMessage) and message.tool_calls:
            if view.step + 1 >= self.max_steps:
                stop = f"Stopped: the step limit (max_steps={self.max_steps}) was reached before a final answer."
                update["messages"] = [AIMessage(stop, id=message.id)]
                self.book.mark(view.run_id, "completed", view.thread_id)
        else:
            self.book.mark(view.run_id, "completed", view.thread_id)
        return update

    # -- nodes -----------------------------------------------------------------------
    def node(self, stage: Stage) -> RunnableLambda[Any, Any]:
        def flow(state: RPRAState, config: RunnableConfig) -> tuple[StepView, Any]:
            view = self.view(state, config)
            pending = state.get("rpra_pending") or {}
            if stage == "record":
                message = state["messages"][-1]
                if not isinstance(message, AIMessage):  # unreachable: a stage always adds one
                    raise RuntimeError("the record stage found no AIMessage")
                before = replace(view, messages=view.messages[:-1])  # the step's context excludes its output
                return view, record_stage(self.spec, before, pending, message)
            return view, run_stage(stage, self.spec, view, pending)

        def finish(state: RPRAState, view: StepView, result: tuple[PendingStep, AIMessage | None]) -> dict[str, Any]:
            pending, output = result
            return self._recorded(state, view, pending) if stage == "record" else self._update(pending, output)

        def sync(state: RPRAState, config: RunnableConfig) -> dict[str, Any]:
            view, gen = flow(state, config)
            result = self.book.guarded(view.run_id, view.thread_id, lambda: drive(gen, self.executor(state)))
            return finish(state, view, result)

        async def asynchronous(state: RPRAState, config: RunnableConfig) -> dict[str, Any]:
            view, gen = flow(state, config)
            result = await self.book.aguarded(view.run_id, view.thread_id, lambda: adrive(gen, self.aexecutor(state)))
            return finish(state, view, result)

        return RunnableLambda(sync, afunc=asynchronous, name=stage)

    # -- effects ---------------------------------------------------------------------
    def _model(self, effect: CallModel) -> Any:
        base = self.small if effect.model == "small" else self.large
        if not (effect.tools and self.tools):
            return base
        key = (effect.model, effect.tool_choice)
        if key not in self._bound:
            kwargs = {"tool_choice": effect.tool_choice} if effect.tool_choice else {}
            self._bound[key] = base.bind_tools(self.tools, **kwargs)
        return self._bound[key]

    def _leg_kwargs(self, effect: CallModel) -> dict[str, Any]:
        return {**leg_options(self.spec.faults, effect), "config": HIDDEN if effect.hidden else None}

    def executor(self, state: RPRAState) -> Callable[[Effect], Any]:
        def execute(effect: Effect) -> Any:
            if isinstance(effect, CallModel):
                message, usage = call_leg(
                    self._model(effect), with_system(state["messages"], effect.system), **self._leg_kwargs(effect)
                )
                return ModelOutput(message, usage)
            if isinstance(effect, Choose):
                return choose(self.small, with_system(state["messages"], effect.system), effect.options)
            if isinstance(effect, Predict):
                return effect.predictor.predict(effect.request)
            if isinstance(effect, Record):
                if self.store is not None:
                    self.store.add(effect.decision)
                log_decision(logger, effect.decision)
            return None

        return execute

    def aexecutor(self, state: RPRAState) -> Callable[[Effect], Any]:
        async def execute(effect: Effect) -> Any:
            if isinstance(effect, CallModel):
                message, usage = await acall_leg(
                    self._model(effect), with_system(state["messages"], effect.system), **self._leg_kwargs(effect)
                )
                return ModelOutput(message, usage)
            if isinstance(effect, Choose):
                return await achoose(self.small, with_system(state["messages"], effect.system), effect.options)
            if isinstance(effect, Predict):
                return await effect.predictor.apredict(effect.request)
            if isinstance(effect, Record):
                if self.store is not None:
                    await self.store.aadd(effect.decision)
                log_decision(logger, effect.decision)
            return None

        return execute


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
        paradigm: ``"pa"``, ``"rpra"`` or ``"verify"`` (see :mod:`rpra_agent.core.step`).
        tools: Tools the agent may call; each step's action is planned, predicted
            as an action and may be deferred like an answer, or taken to learn.
            Tool errors come back as tool messages.
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
    if paradigm not in _PARADIGM_STAGES:
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
    spec = StepSpec(
        paradigm=paradigm,
        policy=chosen,
        predictor=predictor,
        faults=faults or FaultPolicy(),
        share_reasoning=share_reasoning,
        small_model=model_id(small),
        large_model=model_id(large),
    )
    adapter = _Adapter(small=small, large=large, spec=spec, tools=tools, store=store, max_steps=max_steps)
    stages = [s for s in _PARADIGM_STAGES[paradigm] if tools or s not in ("plan", "act_to_learn")]
    first = stages[0]
    g: StateGraph[Any] = StateGraph(RPRAState)
    g.add_node("start", RunnableLambda(adapter.start, name="start"))
    for stage in stages:
        g.add_node(stage, adapter.node(stage))  # type: ignore[arg-type]
    g.add_node("record", adapter.node("record"))
    g.add_edge(START, "start")
    g.add_edge("start", first)
    for stage in stages:
        targets = [t for t in _NEXT[stage] if t in stages or t == "record"]
        if stage == "small" and paradigm == "verify":
            targets = ["record"]  # verify's small node keeps the draft: no model call that could fail
        if len(targets) == 1:
            g.add_edge(stage, targets[0])
        else:
            g.add_conditional_edges(stage, adapter.route, {t: t for t in targets})
    if tools:
        g.add_node("tools", ToolNode(list(tools), handle_tool_errors=True))
        g.add_conditional_edges("record", adapter.after_record, {"tools": "tools", END: END})
        g.add_edge("tools", first)
    else:
        g.add_edge("record", END)
    return g.compile(checkpointer=checkpointer, name=name)
