"""EnsemblePredictor: stacking weights learned on judged data, fallbacks when members fail."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest, Predictor
from rpra_agent.evaluation.metrics.agreement import auroc
from rpra_agent.predictors.ensemble import EnsemblePredictor
from rpra_agent.predictors.learned import LearnedPredictor
from rpra_agent.testing import FixedPredictor
from tests.predictors.learned_data import make_samples

PAPER = GradeScale.paper()


class Cue:
    """A test member: believes answers are good when ``word`` is in the request (pure noise without one)."""

    def __init__(self, name: str, word: str | None, *, fail_on: str | None = None, seed: int = 0) -> None:
        self.name, self.word, self.fail_on = name, word, fail_on
        self.scale = PAPER
        self.seed = seed

    @property
    def version(self) -> str:
        return "1"

    def predict(self, request: PredictionRequest) -> Prediction:
        text = request.request_text
        if self.fail_on and self.fail_on in text:
            raise PredictorError("cannot say", predictor=self.name)
        noise = random.Random(f"{self.seed}:{text}").random()  # deterministic per request
        p = (0.8 if self.word in text else 0.3) if self.word else noise
        return Prediction.from_distribution({"bad": 1 - p, "great": p}, scale=PAPER, predictor=self.name)

    async def apredict(self, request: PredictionRequest) -> Prediction:
        return self.predict(request)


def _data(n: int = 80) -> tuple[list[PredictionRequest], list[float]]:
    rng = random.Random(1)
    reqs, scores = [], []
    for i in range(n):
        good = i % 2 == 0
        word = "easy" if good else "hard"
        reqs.append(PredictionRequest(messages=(HumanMessage(f"an {word} request {i}"),)))
        scores.append(1.0 if (good if rng.random() < 0.9 else not good) else 0.0)
    return reqs, scores


def test_stacking_weights_the_informative_member() -> None:
    reqs, scores = _data()
    ens = EnsemblePredictor([Cue("noise", None), Cue("cue", "easy")]).fit(reqs, scores)
    assert isinstance(ens, Predictor)
    weights, _ = ens.stackers[(0, 1)]
    assert abs(weights[2]) > 3 * abs(weights[0])  # logit p_acceptable of "cue" vs of "noise"
    preds = [ens.predict(r) for r in reqs]
    assert auroc([s >= 0.5 for s in scores], [p.p_acceptable for p in preds]) > 0.85
    p = preds[0]
    assert p.predictor == "ensemble" and p.method == "ensemble" and p.raw.startswith("stacked over noise,cue")
    assert sum(p.distribution.values()) == pytest.approx(1.0)
    assert p.scale.p_acceptable(p.distribution) == pytest.approx(p.p_acceptable)


def test_a_failing_member_falls_back_to_the_survivors_stacker() -> None:
    reqs, scores = _data()
    ens = EnsemblePredictor([Cue("cue", "easy", fail_on="request 3"), Cue("other", "easy", seed=2)]).fit(reqs, scores)
    assert set(ens.stackers) == {(0, 1), (0,), (1,)}
    p = ens.predict(PredictionRequest(messages=(HumanMessage("an easy request 3"),)))
    assert p.raw == "stacked over other; failed: cue"
    assert p.p_acceptable > 0.5


def test_without_a_stacker_the_lowest_belief_wins_and_all_failing_raises() -> None:
    low = FixedPredictor({"bad": 0.7, "great": 0.3}, name="low")
    high = FixedPredictor({"great": 1.0}, name="high")
    ens = EnsemblePredictor([low, high])  # untrained: fail toward quality
    p = ens.predict(PredictionRequest(messages=(HumanMessage("x"),)))
    assert p.p_acceptable == pytest.approx(0.3) and p.raw.startswith("min over low,high")
    assert ens.version.endswith("-untrained")
    broken = EnsemblePredictor([FixedPredictor(error="down", name="a"), FixedPredictor(error="down", name="b")])
    with pytest.raises(PredictorError, match="every ensemble member failed"):
        broken.predict(PredictionRequest(messages=(HumanMessage("x"),)))


async def test_async_and_persistence() -> None:
    reqs, scores = _data(40)
    members = [Cue("noise", None), Cue("cue", "easy")]
    ens = EnsemblePredictor(members, name="combo").fit(reqs, scores)
    req = reqs[5]
    assert (await ens.apredict(req)).p_acceptable == pytest.approx(ens.predict(req).p_acceptable)
    data = json.loads(json.dumps(ens.to_dict()))
    again = EnsemblePredictor.from_dict(data, members, name="combo")
    assert again.predict(req).p_acceptable == pytest.approx(ens.predict(req).p_acceptable)
    with pytest.raises(ConfigError, match="combines"):
        EnsemblePredictor.from_dict(data, [members[1], members[0]])


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        EnsemblePredictor([])
    with pytest.raises(ConfigError, match="distinct names"):
        EnsemblePredictor([FixedPredictor(), FixedPredictor()])
    with pytest.raises(ConfigError, match="predicts grades"):
        EnsemblePredictor(
            [FixedPredictor(name="a"), FixedPredictor({"10": 1.0}, scale=GradeScale.ten_point(), name="b")]
        )
    reqs, _ = _data(10)
    with pytest.raises(ConfigError, match="both acceptable and unacceptable"):
        EnsemblePredictor([FixedPredictor()]).fit(reqs, [1.0] * 10)


def test_learned_predictor_as_a_member() -> None:
    samples, scores = make_samples(60)
    learned = LearnedPredictor(scale=GradeScale.ten_point(), C=1.0, block_grid=None).fit(samples, scores)
    zero_shot = FixedPredictor({"7": 1.0}, scale=GradeScale.ten_point(), name="zero_shot")  # uninformative
    reqs = [PredictionRequest(messages=(HumanMessage(s.request),), task=s.task) for s in make_samples(40, seed=3)[0]]
    held_out = make_samples(40, seed=3)[1]
    ens = EnsemblePredictor([zero_shot, learned]).fit(reqs, held_out)
    p = np.array([ens.predict(r).p_acceptable for r in reqs])
    assert auroc([s >= 7 for s in held_out], p) > 0.9


def test_fit_store_uses_the_logs_hindsight_labels() -> None:
    from rpra_agent.store.memory import InMemoryDecisionStore
    from tests.predictors.test_learned import _log

    store = InMemoryDecisionStore()
    _log(store, 40)
    words = FixedPredictor({"7": 1.0}, scale=GradeScale.ten_point(), name="flat")
    learned = LearnedPredictor(scale=GradeScale.ten_point(), C=1.0, block_grid=None).fit(*make_samples(60, seed=7))
    ens = EnsemblePredictor([words, learned]).fit_store(store)
    assert (0, 1) in ens.stackers
    hard = ens.predict(
        PredictionRequest(messages=(HumanMessage("Please help with this integral number 5"),), task="math")
    )
    easy = ens.predict(
        PredictionRequest(messages=(HumanMessage("Please help with this poem number 5"),), task="writing")
    )
    assert hard.p_acceptable < 0.5 < easy.p_acceptable
