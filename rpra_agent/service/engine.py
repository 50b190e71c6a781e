"""The chat engine behind the HTTP service: OpenAI-style requests through the RPRA graph.

Tools come in two kinds:

- **server-side tools** are given when the engine is built; the graph runs them
  itself (``ToolNode``) and the client sees only the final answer;
- **client-side tools** arrive in a request's ``tools``. Both models are bound to
  them (``bind_tools``, ``tool_choice`` passed through) in a graph without a tool
  node, so a step that calls a tool ends the run and the calls go back to the client
  as ``tool_calls``; the client runs them and sends the results as ``tool`` messages.
  A request with ``tools`` sees only its own tools. Graphs are cached per tool set.

Every step is predicted and routed by the graph and recorded in the store.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.tools import BaseTool

from rpra_agent.core.decision import Decision, LegUsage, Paradigm, new_id
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.faults import FaultPolicy
from rpra_agent.core.messages import last_request_text
from rpra_agent.core.naming import model_id
from rpra_agent.core.policy import DeferralPolicy, ThresholdPolicy
from rpra_agent.core.prediction import Prediction, Predictor
from rpra_agent.graph import build_rpra_graph
from rpra_agent.service.config import Components
from rpra_agent.store.base import DecisionFilter, DecisionStore

__all__ = ["ChatEngine", "Completion", "Delta", "Done", "Routed"]

logger = logging.getLogger(__name__)

_ANSWER_NODES = ("small", "large", "act_to_learn")  # the nodes whose model output reaches the client


@dataclass(frozen=True)
class Completion:
    """A finished run: the reply, the run's decisions and its id."""

    message: AIMessage
    decisions: list[Decision]
    run_id: str


@dataclass(frozen=True)
class Routed:
    """Streaming: the first step was routed (sent before any token).

    Attributes:
        pending: The graph's pending record for the step: ``route``, ``reason``,
            ``threshold``, ``score`` and the ``prediction`` dict.
    """

    pending: dict[str, Any]


@dataclass(frozen=True)
class Delta:
    """Streaming: a piece of the answer (text and/or client tool-call chunks)."""

    text: str = ""
    tool_call_chunks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Done:
    """Streaming: the run finished."""

    completion: Completion


def _tool_choice(choice: str | dict[str, Any] | None) -> Any:
    if isinstance(choice, dict):
        return (choice.get("function") or {}).get("name") or choice
    return choice


class ChatEngine:
    """Runs chat requests through the RPRA graph.

    Args:
        small: The small chat model.
        large: The large chat model.
        predictor: Predicts the judge's grade (required unless ``policy`` is a baseline).
        policy: The deferral policy (default ``ThresholdPolicy()``).
        paradigm: ``pa``, ``rpra`` or ``verify``.
        store: Where decisions are recorded.
        tools: Server-side tools the graph runs itself.
        max_steps: Model steps per request.
        model_name: The model name clients address and ``/v1/models`` lists.
        faults: Fault handling of the legs.
        cache_size: How many per-tool-set graphs are kept.
        client_task: Whether the HTTP layer takes a request's task tag from the client.
    """

    def __init__(
        self,
        *,
        small: Any,
        large: Any,
        predictor: Predictor | None = None,
        policy: DeferralPolicy | None = None,
        paradigm: Paradigm = "pa",
        store: DecisionStore | None = None,
        tools: Sequence[BaseTool] = (),
        max_steps: int = 8,
        model_name: str = "rpra",
        faults: FaultPolicy | None = None,
        cache_size: int = 32,
        client_task: bool = True,
    ) -> None:
        if not model_name.strip():
            raise ConfigError("model_name must not be empty")
        self.small, self.large, self.store, self.model_name = small, large, store, model_name
        self.client_task = client_task
        self._common: dict[str, Any] = dict(
            predictor=predictor,
            policy=policy or ThresholdPolicy(),
            paradigm=paradigm,
            store=store,
            max_steps=max_steps,
            faults=faults,
        )
        self.base_graph = build_rpra_graph(small=small, large=large, tools=tools, name="rpra", **self._common)
        self._graphs: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._cache_size = cache_size

    @classmethod
    def from_components(
        cls, components: Components, tools: Sequence[BaseTool] = (), *, model_name: str = "rpra"
    ) -> ChatEngine:
        """An engine over :func:`~rpra_agent.service.config.build_components` output."""
        s = components.settings
        return cls(
            small=components.small, large=components.large, predictor=components.predictor, policy=components.policy,
            paradigm=s.paradigm, store=components.store, tools=tools, max_steps=s.max_steps, model_name=model_name,
            client_task=s.client_task,
        )  # fmt: skip

    def graph_for(self, tools: list[dict[str, Any]] | None, tool_choice: str | dict[str, Any] | None) -> Any:
        """The graph for a request's client-side tools (the base graph when there are none)."""
        if not tools or tool_choice == "none":
            return self.base_graph
        key = json.dumps([tools, tool_choice], sort_keys=True)
        with self._lock:
            if key in self._graphs:
                self._graphs.move_to_end(key)
                return self._graphs[key]
        kwargs = {} if tool_choice in (None, "auto") else {"tool_choice": _tool_choice(tool_choice)}
        graph = build_rpra_graph(
            small=self.small.bind_tools(tools, **kwargs),
            large=self.large.bind_tools(tools, **kwargs),
            name="rpra",
            **self._common,
        )
        with self._lock:
            self._graphs[key] = graph
            while len(self._graphs) > self._cache_size:
                self._graphs.popitem(last=False)
        return graph

    @staticmethod
    def _inputs(messages: list[BaseMessage], task: str | None, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        state: dict[str, Any] = {"messages": messages}
        if task:
            state["rpra_task"] = task
        return state, {"configurable": {"rpra_run_id": run_id}}

    async def complete(
        self,
        messages: list[BaseMessage],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        task: str | None = None,
    ) -> Completion:
        """Run one request to the end."""
        run_id = new_id()
        state, config = self._inputs(messages, task, run_id)
        out = await self.graph_for(tools, tool_choice).ainvoke(state, config)
        final = out["messages"][-1]
        if not isinstance(final, AIMessage):
            raise TypeError(f"the graph ended on a {type(final).__name__}, not an AIMessage")
        return Completion(final, [Decision.from_dict(d) for d in out.get("rpra_decisions") or []], run_id)

    async def stream(
        self,
        messages: list[BaseMessage],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        task: str | None = None,
    ) -> AsyncIterator[Routed | Delta | Done]:
        """Run one request, yielding :class:`Routed` once, then :class:`Delta` pieces, then :class:`Done`.

        If the consumer stops early (the client hung up), the graph run is cancelled, the
        interrupted step's decision is recorded exactly once with the text produced so
        far (``metadata.cancelled``), and the run closes as ``cancelled``.
        """
        run_id = new_id()
        client_tools = bool(tools) and tool_choice != "none"
        state, config = self._inputs(messages, task, run_id)
        step = _Step()
        routed, streamed_ids = False, set()
        final: AIMessage | None = None
        decisions: list[Decision] = []
        run = self.graph_for(tools, tool_choice).astream(state, config, stream_mode=["updates", "messages"])
        try:
            async with aclosing(run):  # closing this stream (the client went away) cancels the graph run
                async for mode, payload in run:
                    if mode == "updates":
                        for node, update in (payload or {}).items():
                            update = update or {}
                            step.update(node, update)
                            pending = update.get("rpra_pending")
                            if node == "predict" and pending and not routed:
                                routed = True
                                yield Routed(dict(pending))
                            for message in update.get("messages") or []:
                                if isinstance(message, AIMessage) and node in (*_ANSWER_NODES, "record"):
                                    final = message
                            decisions.extend(Decision.from_dict(d) for d in update.get("rpra_decisions") or [])
                        continue
                    message, meta = payload
                    if meta.get("langgraph_node") not in _ANSWER_NODES or not isinstance(message, AIMessage):
                        continue
                    if isinstance(message, AIMessageChunk):
                        streamed_ids.add(message.id)
                        chunks: list[dict[str, Any]] = (
                            [dict(c) for c in message.tool_call_chunks] if client_tools else []
                        )
                        text = message.text if isinstance(message.text, str) else ""
                        step.text += text
                        if text or chunks:
                            yield Delta(text, chunks)
                    elif message.id not in streamed_ids:  # a whole message that was not streamed (e.g. a kept draft)
                        text = message.text if isinstance(message.text, str) else ""
                        step.text += text
                        chunks = [
                            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i} for i, c in enumerate(message.tool_calls)
                        ] if client_tools else []  # fmt: skip
                        if text or chunks:
                            yield Delta(text, chunks)
        except (GeneratorExit, asyncio.CancelledError):  # the consumer went away: close the audit trail
            await self._close_interrupted(run_id, messages, task, step)
            raise
        if final is None:
            raise RuntimeError("the graph produced no answer")
        yield Done(Completion(final, decisions, run_id))

    async def _close_interrupted(self, run_id: str, messages: list[BaseMessage], task: str | None, step: _Step) -> None:
        """Record the interrupted step's decision (once) and mark the run ``cancelled``."""
        if self.store is None:
            return
        store = self.store
        try:
            if step.pending is not None:
                where = DecisionFilter(run_id=run_id)
                recorded = await asyncio.to_thread(store.decisions, where)  # reads flush the writer first
                if all(d.step != step.index for d in recorded):
                    decision = step.decision(run_id, messages, task, self)
                    await store.aadd(decision)
                    logger.info("run %s: client disconnected; step %d recorded as cancelled", run_id, step.index)
            store.upsert_run(run_id, thread_id=None, paradigm=self._common["paradigm"], config={}, status="cancelled")
            await asyncio.to_thread(store.flush)
        except Exception:  # noqa: BLE001  (the client is gone: nobody to answer; the operator must see it)
            logger.exception("run %s: recording the cancelled step failed", run_id)


class _Step:
    """What the stream has seen of the current step (to record it if the client hangs up)."""

    def __init__(self) -> None:
        self.index = 0
        self.pending: dict[str, Any] | None = None
        self.text = ""

    def update(self, node: str, update: dict[str, Any]) -> None:
        if node == "record" and "rpra_step" in update:  # the step is recorded: start the next one
            self.index, self.pending, self.text = int(update["rpra_step"]), None, ""
        elif update.get("rpra_pending"):
            self.pending = dict(update["rpra_pending"])

    def decision(self, run_id: str, messages: list[BaseMessage], task: str | None, engine: ChatEngine) -> Decision:
        pending = self.pending or {}
        prediction = pending.get("prediction")
        return Decision(
            run_id=run_id,
            step=self.index,
            kind="answer",
            paradigm=engine._common["paradigm"],
            prediction=Prediction.from_dict(prediction) if prediction else None,
            threshold=float(pending.get("threshold", 0.0)),
            route="large" if pending.get("route") == "large" else "small",  # "tools": the small model acts to learn
            reason=pending.get("reason", "forced"),
            task=task,
            small_model=model_id(engine.small),
            large_model=model_id(engine.large),
            legs={k: LegUsage.from_dict(v) for k, v in (pending.get("legs") or {}).items()},
            request=last_request_text(messages),
            response=self.text,
            error="cancelled",
            metadata={"cancelled": True, "cause": "client_disconnected"},
        )
