"""A predictor that returns garbage or raises anything at all defers the step, in the graph and the middleware.

``tests/core/test_graph.py::test_predictor_failure_defers`` covers a ``PredictorError``;
these are the cases a third-party or buggy predictor produces: a NaN or out-of-range
probability (which a threshold comparison would silently read as "keep small"), a
value that is not a ``Prediction``, and an arbitrary exception. Interrupts raised
inside a predictor still pass through.
"""

import pytest
from langchain.agents.middleware.types import ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt

from rpra_agent import Decision, GradeScale, Prediction, build_rpra_graph, decisions_from_state
from rpra_agent.middleware import RPRAMiddleware
from rpra_agent.testing import InMemoryDecisionStore, ScriptedChatModel

NAN = float("nan")


def _pred(p: float, e: float = 0.5) -> Prediction:
    return Prediction({"great": 1.0}, expected_score=e, p_acceptable=p, predictor="bad")


GARBAGE = {
    "nan_probability": lambda: _pred(NAN),
    "probability_above_one": lambda: _pred(7.0),
    "negative_probability": lambda: _pred(-0.5),
    "infinite_expected_score": lambda: _pred(0.9, float("inf")),
    "a_dict": lambda: {"great": 1.0},
    "none": lambda: None,
    "raises_key_error": lambda: {}["missing"],
    "raises_runtime_error": lambda: (_ for _ in ()).throw(
        RuntimeError("label '0' is not on the scale; key sk-secret-in-a-message-0123456789")
    ),
}


class Garbage:
    name, scale, version = "garbage", GradeScale.paper(), "1"

    def __init__(self, make):
        self.make = make

    def predict(self, request):
        return self.make()

    async def apredict(self, request):
        return self.make()


def _models():
    return ScriptedChatModel(responses=["small"], rpra_name="small"), ScriptedChatModel(
        responses=["large"], rpra_name="large"
    )


def _assert_deferred(d: Decision, store: InMemoryDecisionStore) -> None:
    assert (d.route, d.reason, d.prediction) == ("large", "predictor_error", None)
    assert d.metadata["predictor_error"]
    assert "sk-secret" not in d.metadata["predictor_error"]  # the exception's text is scrubbed of secrets
    assert [x.id for x in store.decisions()] == [d.id]


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_graph_defers_on_garbage_sync(case):
    small, large = _models()
    store = InMemoryDecisionStore()
    out = build_rpra_graph(small=small, large=large, predictor=Garbage(GARBAGE[case]), store=store).invoke(
        {"messages": [HumanMessage("q")]}
    )
    (d,) = decisions_from_state(out)
    _assert_deferred(d, store)
    assert out["messages"][-1].content == "large" and small.calls == []


@pytest.mark.parametrize("case", ["nan_probability", "a_dict", "raises_key_error"])
async def test_graph_defers_on_garbage_async(case):
    small, large = _models()
    store = InMemoryDecisionStore()
    out = await build_rpra_graph(small=small, large=large, predictor=Garbage(GARBAGE[case]), store=store).ainvoke(
        {"messages": [HumanMessage("q")]}
    )
    (d,) = decisions_from_state(out)
    _assert_deferred(d, store)


def _request():
    small = ScriptedChatModel(responses=["unused"], rpra_name="small")
    return ModelRequest(
        model=small,
        messages=[HumanMessage("q")],
        system_message=None,
        tools=[],
        tool_choice=None,
        response_format=None,
        state={"messages": [HumanMessage("q")]},
    )


def _handler(request):
    return ModelResponse(result=[AIMessage(f"{request.model.rpra_name} says hi")])


async def _ahandler(request):
    return _handler(request)


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_middleware_defers_on_garbage(case):
    store = InMemoryDecisionStore()
    mw = RPRAMiddleware(
        ScriptedChatModel(responses=["x"], rpra_name="large"), predictor=Garbage(GARBAGE[case]), store=store
    )
    result = mw.wrap_model_call(_request(), _handler)
    (d,) = [Decision.from_dict(x) for x in result.command.update["rpra_decisions"]]
    _assert_deferred(d, store)
    assert result.model_response.result[0].content == "large says hi"


async def test_middleware_async_defers_on_garbage():
    store = InMemoryDecisionStore()
    mw = RPRAMiddleware(
        ScriptedChatModel(responses=["x"], rpra_name="large"),
        predictor=Garbage(GARBAGE["nan_probability"]),
        store=store,
    )
    result = await mw.awrap_model_call(_request(), _ahandler)
    (d,) = [Decision.from_dict(x) for x in result.command.update["rpra_decisions"]]
    _assert_deferred(d, store)


def test_an_interrupt_inside_a_predictor_still_passes_through():
    def ask():
        return _pred(1.0 if interrupt("grade this?") == "fine" else 0.0)

    small, large = _models()
    g = build_rpra_graph(small=small, large=large, predictor=Garbage(ask), checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t"}}
    out = g.invoke({"messages": [HumanMessage("q")]}, cfg)
    assert out["__interrupt__"][0].value == "grade this?" and large.calls == [] and small.calls == []
    out = g.invoke(Command(resume="fine"), cfg)
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason) == ("small", "predicted_ok")


def test_a_raising_predictor_says_why_in_the_decision_and_the_warning(caplog):
    """A third-party predictor's own words reach the record and the log (scrubbed), not only its type."""
    small, large = _models()
    graph = build_rpra_graph(small=small, large=large, predictor=Garbage(GARBAGE["raises_runtime_error"]))
    with caplog.at_level("WARNING", logger="rpra_agent.predictors"):
        (d,) = decisions_from_state(graph.invoke({"messages": [HumanMessage("q")]}))
    reason = d.metadata["predictor_error"]
    assert reason.startswith("the predictor raised RuntimeError: label '0' is not on the scale; key ")
    assert "sk-secret" not in reason and "[REDACTED]" in reason
    (line,) = [r.getMessage() for r in caplog.records if r.name == "rpra_agent.predictors"]
    assert line == f"{reason}; deferring"
    long = Garbage(lambda: (_ for _ in ()).throw(ValueError("x" * 5000)))
    (d,) = decisions_from_state(
        build_rpra_graph(small=small, large=large, predictor=long).invoke({"messages": [HumanMessage("q")]})
    )
    assert d.metadata["predictor_error"] == "the predictor raised ValueError: " + "x" * 300
