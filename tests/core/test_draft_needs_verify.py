"""A predictor that reads the small model's draft is refused outside the verify paradigm.

Outside ``verify`` no draft exists when the step predicts, so every prediction would
fail and every step defer, silently; the graph and the middleware say so when built.
"""

from __future__ import annotations

import pytest

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.prediction import needs_draft
from rpra_agent.graph import build_rpra_graph
from rpra_agent.middleware import RPRAMiddleware
from rpra_agent.predictors import EnsemblePredictor
from rpra_agent.predictors.baselines import RidgeTextPredictor
from rpra_agent.predictors.guarded import GuardedPredictor, PriorPredictor
from rpra_agent.store import InMemoryDecisionStore
from rpra_agent.testing import ScriptedChatModel

DRAFT, REQUEST = RidgeTextPredictor(mode="draft"), RidgeTextPredictor(mode="request")
PRIOR = PriorPredictor({"great": 0.9, "bad": 0.1})


def test_which_predictors_need_the_draft() -> None:
    assert needs_draft(DRAFT) and not needs_draft(REQUEST) and not needs_draft(PRIOR)
    assert needs_draft(GuardedPredictor(PRIOR, DRAFT)) and needs_draft(GuardedPredictor(DRAFT, PRIOR))
    assert not needs_draft(GuardedPredictor(PRIOR, REQUEST))
    assert needs_draft(EnsemblePredictor([DRAFT, RidgeTextPredictor(mode="draft", name="ridge_2")]))
    assert not needs_draft(EnsemblePredictor([DRAFT, PRIOR]))  # a failing member falls back to the other


@pytest.mark.parametrize("paradigm", ["pa", "rpra"])
def test_graph_and_middleware_refuse_a_draft_predictor_outside_verify(paradigm: str) -> None:
    small, large = ScriptedChatModel(responses=["s"]), ScriptedChatModel(responses=["l"])
    with pytest.raises(ConfigError, match=r"predicts from the small model's drafted answer.*paradigm='verify'"):
        build_rpra_graph(small=small, large=large, predictor=DRAFT, paradigm=paradigm)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="RPRA_PARADIGM=verify"):
        RPRAMiddleware(large, predictor=GuardedPredictor(PRIOR, DRAFT), paradigm=paradigm)  # type: ignore[arg-type]
    build_rpra_graph(small=small, large=large, predictor=REQUEST, paradigm=paradigm)  # type: ignore[arg-type]


def test_verify_routes_with_a_draft_predictor() -> None:
    """In verify the predictor sees the draft: a trained draft-mode ridge keeps a good draft and defers a bad one."""
    from rpra_agent.predictors.features import Sample

    good = "The capital of France is Paris, a city on the Seine with about two million people."
    samples = [
        Sample.from_messages(({"role": "user", "content": f"q{i}"},), draft=d) for i, d in enumerate([good, "no"] * 10)
    ]
    ridge = RidgeTextPredictor(mode="draft").fit(samples, [1.0, 0.0] * 10)
    store = InMemoryDecisionStore()
    routes = []
    for draft in (good, "no"):
        small, large = ScriptedChatModel(responses=[draft]), ScriptedChatModel(responses=["large answer"])
        graph = build_rpra_graph(small=small, large=large, predictor=ridge, paradigm="verify", store=store)
        out = graph.invoke({"messages": [("user", "Capital of France?")]})
        routes.append(out["messages"][-1].content)
    assert routes == [good, "large answer"]
