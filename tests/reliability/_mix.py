"""Deterministic test doubles that drive the graph through every route (load, soak, benchmarks).

A request's text says what should happen to it, so one graph serves a realistic mix:

- ``"easy ..."``: predicted ``great`` -> the small model answers (``predicted_ok``);
- ``"hard ..."``: predicted ``bad`` -> the large model answers (``predicted_low``);
- ``"garbled ..."``: the predictor raises -> deferred (``predictor_error``);
- ``"crash ..."``: the small model raises -> deferred (``small_error``);
- ``"outage ..."``: predicted ``bad``, the large model raises -> small answer (``large_error_degraded``);
- ``"tool ..."``: the small model first calls the ``add`` tool, then answers (two decisions).
"""

from __future__ import annotations

import itertools
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool

from rpra_agent import FaultPolicy, build_rpra_graph
from rpra_agent.core.errors import PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.testing import ScriptedChatModel

KINDS = ("easy", "hard", "garbled", "crash", "outage", "tool")
#: (route, reason) of each kind's decisions, in step order.
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "easy": [("small", "predicted_ok")],
    "hard": [("large", "predicted_low")],
    "garbled": [("large", "predictor_error")],
    "crash": [("large", "small_error")],
    "outage": [("small", "large_error_degraded")],
    "tool": [("small", "predicted_ok"), ("small", "predicted_ok")],
}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _kind(messages: list[BaseMessage]) -> str:
    human = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
    return str(human.content).split(" ", 1)[0]


class MixPredictor:
    """Predicts from the request's first word (see the module docstring)."""

    name, scale, version = "mix", GradeScale.paper(), "1"

    def predict(self, request: PredictionRequest) -> Prediction:
        kind = request.request_text.split(" ", 1)[0]
        if kind == "garbled":
            raise PredictorError("the model's reply is not a grade", predictor=self.name, raw="¯\\_(ツ)_/¯")
        grade = "bad" if kind in ("hard", "outage") else "great"
        return Prediction.from_distribution({grade: 0.9, "ok": 0.1}, scale=self.scale, predictor=self.name)

    async def apredict(self, request: PredictionRequest) -> Prediction:
        return self.predict(request)


def _small(messages: list[BaseMessage]) -> AIMessage | str:
    kind = _kind(messages)
    if kind == "crash":
        raise RuntimeError("small model crashed")
    if kind == "tool" and messages[-1].type != "tool":
        n = next(_ids)
        return AIMessage("", tool_calls=[{"name": "add", "args": {"a": n % 7, "b": 2}, "id": f"call-{n}"}])
    return f"small answer ({kind}, {len(messages)} messages)"


def _large(messages: list[BaseMessage]) -> str:
    if _kind(messages) == "outage":
        raise ConnectionError("large model unreachable")
    return "large answer"


_ids = itertools.count()


def mix_models() -> tuple[ScriptedChatModel, ScriptedChatModel]:
    """The small and large doubles (each keeps its prompts in ``.calls``: clear it in long runs)."""
    return (
        ScriptedChatModel(responses=[_small], rpra_name="small-mix"),
        ScriptedChatModel(responses=[_large], rpra_name="large-mix"),
    )


def mix_graph(store: Any = None, models: tuple[Any, Any] | None = None, **kwargs: Any) -> Any:
    """The RPRA graph over the mix doubles (large failures degrade to the small model)."""
    small, large = models or mix_models()
    faults = FaultPolicy(large_attempts=2, backoff_s=0.0, on_large_failure="small")
    return build_rpra_graph(
        small=small, large=large, predictor=MixPredictor(), tools=[add], store=store, faults=faults, **kwargs
    )


def request_for(i: int) -> tuple[str, dict[str, Any]]:
    """The kind and graph input of the ``i``-th request of the mix."""
    kind = KINDS[i % len(KINDS)]
    return kind, {"messages": [HumanMessage(f"{kind} request number {i}")]}
