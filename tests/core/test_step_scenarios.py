"""One scenario table through both adapters (the graph and the middleware), sync and async.

Each scenario runs four ways and must give the same decisions: the step is written
once (``rpra_agent.core.step``), so the adapters cannot drift.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt

from rpra_agent import FaultPolicy, RPRAMiddleware, ThresholdPolicy, build_rpra_graph, decisions_from_state
from rpra_agent.core.prediction import Prediction
from rpra_agent.testing import FixedPredictor, InMemoryDecisionStore, ScriptedChatModel

HIGH, LOW = {"great": 0.9, "ok": 0.1}, {"bad": 0.9, "ok": 0.1}
POLICY = ThresholdPolicy(0.5, action_threshold=0.7)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def ask_human(question: str) -> str:
    """Ask the human a question (interrupts the run until they answer)."""
    return str(interrupt(question))


def call(name: str = "add", args: dict[str, Any] | None = None, cid: str = "c1") -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args or {"a": 2, "b": 3}, "id": cid}])


class SeqPredictor(FixedPredictor):
    """Returns the given distributions in order (the last repeats)."""

    def __init__(self, *dists: dict[str, float]) -> None:
        super().__init__(dists[0])
        self.dists = list(dists)

    def predict(self, request):
        self.requests.append(request)
        dist = self.dists[min(len(self.requests), len(self.dists)) - 1]
        return Prediction.from_distribution(dist, scale=self.scale, predictor=self.name, method="fixed")


@dataclass
class Scenario:
    small: list[Any]
    large: list[Any]
    predictions: list[dict[str, float]] = field(default_factory=lambda: [HIGH])
    expected: list[tuple[str, str, str, float]] | None = None  # (kind, route, reason, threshold); None: raises
    policy: ThresholdPolicy = POLICY
    faults: FaultPolicy = field(default_factory=lambda: FaultPolicy(large_attempts=1))
    plans: list[str] | None = None
    predictor_error: bool = False
    interrupt: bool = False


SCENARIOS: dict[str, Scenario] = {
    "answer kept": Scenario(["five"], ["unused"], [HIGH], [("answer", "small", "predicted_ok", 0.5)]),
    "answer deferred": Scenario(["unused"], ["five"], [LOW], [("answer", "large", "predicted_low", 0.5)]),
    "tool action kept": Scenario(
        [call(), "five"],
        ["unused"],
        [HIGH],
        [("action", "small", "predicted_ok", 0.7), ("answer", "small", "predicted_ok", 0.5)],
    ),
    "tool action deferred": Scenario(
        [call(), "five"],
        [call(cid="c9"), "five from large"],
        [{"great": 0.6, "bad": 0.4}],  # 0.6: above the answer threshold, below the action one
        [("action", "large", "predicted_low", 0.7), ("answer", "large", "predicted_low", 0.7)],
    ),
    "act to learn": Scenario(
        [call(), "five"],
        ["unused"],
        [LOW, HIGH],
        [("action", "small", "act_to_learn", 0.5), ("answer", "small", "predicted_ok", 0.5)],
        policy=ThresholdPolicy(0.5, action_threshold=0.7, act_to_learn=True),
        plans=["answer"],
    ),
    "predictor error": Scenario(
        ["unused"], ["five"], expected=[("answer", "large", "predictor_error", 0.5)], predictor_error=True
    ),
    "small error": Scenario([RuntimeError("small down")], ["five"], [HIGH], [("answer", "large", "small_error", 0.5)]),
    "large error degraded": Scenario(
        ["five"],
        [ConnectionError("large down")],
        [LOW],
        [("answer", "small", "large_error_degraded", 0.5)],
        faults=FaultPolicy(large_attempts=1, on_large_failure="small"),
    ),
    "large error raised": Scenario(["five"], [ConnectionError("large down")], [LOW], None),
    "budget exhausted": Scenario(
        ["five"],
        [call(cid="c9"), "unused"],
        [LOW],
        # the small model planned an answer (its threshold applies); the large model chose a tool
        [("action", "large", "predicted_low", 0.5), ("answer", "small", "budget_exhausted", 0.5)],
        policy=ThresholdPolicy(0.5, action_threshold=0.7, max_deferrals=1),
    ),
    "shadow": Scenario(
        ["five"], ["unused"], [LOW], [("answer", "small", "shadow", 0.5)], policy=ThresholdPolicy(shadow=True)
    ),
    "interrupt from human-in-the-loop": Scenario(
        [call("ask_human", {"question": "ok?"}), "done"],
        ["unused"],
        [HIGH],
        [("action", "small", "predicted_ok", 0.7), ("answer", "small", "predicted_ok", 0.5)],
        interrupt=True,
    ),
}


def _runnable(adapter: str, sc: Scenario, store: InMemoryDecisionStore):
    small = ScriptedChatModel(responses=list(sc.small), rpra_name="small", plans=sc.plans)
    large = ScriptedChatModel(responses=list(sc.large), rpra_name="large")
    predictor = FixedPredictor(error="garbage") if sc.predictor_error else SeqPredictor(*sc.predictions)
    tools = [add, ask_human]
    saver = InMemorySaver()
    if adapter == "graph":
        return build_rpra_graph(
            small=small,
            large=large,
            predictor=predictor,
            policy=sc.policy,
            tools=tools,
            store=store,
            faults=sc.faults,
            checkpointer=saver,
        )
    mw = RPRAMiddleware(large, predictor=predictor, policy=sc.policy, store=store, faults=sc.faults)
    return create_agent(small, tools=tools, middleware=[mw], checkpointer=saver)


def _run(adapter: str, mode: str, sc: Scenario) -> list[tuple[Any, ...]] | str:
    store = InMemoryDecisionStore()
    graph = _runnable(adapter, sc, store)
    config = {"configurable": {"thread_id": "t"}}
    inputs: Any = {"messages": [HumanMessage("2+3?")]}

    async def arun(payload: Any) -> Any:
        return await graph.ainvoke(payload, config)

    def run(payload: Any) -> Any:
        return graph.invoke(payload, config) if mode == "sync" else asyncio.run(arun(payload))

    try:
        out = run(inputs)
        if sc.interrupt:
            assert "__interrupt__" in out, "the tool's interrupt did not surface"
            out = run(Command(resume="yes"))
    except ExceptionGroup as group:
        assert store.decisions() == []
        return "raised " + ",".join(type(e).__name__ for e in group.exceptions)
    decisions = decisions_from_state(out)
    assert not any("plan_error" in d.metadata for d in decisions), [d.metadata for d in decisions]
    assert [d.id for d in decisions] == [d.id for d in store.decisions()], "state and store disagree"
    return [(d.kind, d.route, d.reason, d.threshold, tuple(sorted(d.legs)), d.error, d.degraded) for d in decisions]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_both_adapters_sync_and_async_take_the_same_decisions(name):
    sc = SCENARIOS[name]
    results = {(a, m): _run(a, m, sc) for a in ("graph", "middleware") for m in ("sync", "async")}
    first = results[("graph", "sync")]
    assert all(r == first for r in results.values()), results
    if sc.expected is None:
        assert first == "raised ConnectionError"
    else:
        assert [r[:4] for r in first] == sc.expected
