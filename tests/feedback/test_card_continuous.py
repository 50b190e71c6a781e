"""Report cards and calibration on a continuous 0-1 scale and on an integer 1-10 scale (a real SQLite store).

The verdicts are what a judge on those scales records: the exact score, and as its
grade the label :meth:`GradeScale.label_for` gives (what ``ReplayJudge`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.core.verdict import Verdict
from rpra_agent.evaluation.runs.crossfit import CardStatPredictor
from rpra_agent.evaluation.runs.judged import judged_from_store
from rpra_agent.feedback import build_report_cards, load_report_card
from rpra_agent.feedback.calibration import (
    calibrate_deferral_rate,
    calibrate_quality,
    load_calibrated_policy,
    load_calibration,
    save_calibration,
)
from tests.feedback.builders import decision

CONTINUOUS = GradeScale.continuous(0.0, 1.0, 0.5)
TEN = GradeScale.integer(1, 10, 7)
# small-model scores per task; the large model scores 0.9 (continuous) or 9 (1-10) everywhere
CONTINUOUS_SCORES = {"math": [0.37, 0.82, 0.47, 0.12], "chat": [0.91, 0.66, 0.58]}
TEN_SCORES = {"math": [2.0, 7.0, 9.0, 4.0], "chat": [8.0, 10.0, 6.0]}


def _verdict(decision_id: str, score: float, scale: GradeScale, subject: str = "given") -> Verdict:
    return Verdict(decision_id, scale.label_for(score), score, scale.name, "judge-m", "rpra-paper-1", "why", subject)


def _log(
    store: Any,
    scale: GradeScale,
    scores: Mapping[str, Sequence[float]],
    large: float,
    predict: Callable[[str], Prediction] | None = None,
) -> None:
    """One judged small answer per score (and the large model's answer, judged in hindsight)."""
    for task, values in scores.items():
        for score in values:
            d = decision(task=task, prediction=predict(task) if predict is not None else None)
            store.add(d)
            store.add_verdicts([_verdict(d.id, score, scale), _verdict(d.id, large, scale, "large")])
    store.flush()


@pytest.fixture
def sqlite_store(open_test_store: Callable[..., Any], sqlite_url: str) -> Any:
    return open_test_store(sqlite_url)


def _card_prediction(store: Any, scale: GradeScale, task: str) -> Prediction:
    card = load_report_card(store, "small-m")
    assert card is not None and card.scale == scale  # the scale (and its exact threshold) survives the store
    return CardStatPredictor(card, prior_strength=0.0).predict(PredictionRequest(messages=(), task=task))


def test_label_of_a_continuous_score_stays_on_its_side_of_the_acceptable_threshold() -> None:
    assert CONTINUOUS.label_for(0.47) == "0.4" and not CONTINUOUS.is_acceptable(CONTINUOUS.label_for(0.47))
    assert CONTINUOUS.label_for(0.5) == "0.5" and CONTINUOUS.label_for(0.53) == "0.5"
    assert CONTINUOUS.label_for(0.37) == "0.4" and CONTINUOUS.label_for(0.82) == "0.8"
    between = GradeScale.continuous(0.0, 1.0, 0.55)  # acceptable from 0.55: levels 0.5 and 0.6 straddle it
    assert between.label_for(0.56) == "0.6" and between.label_for(0.54) == "0.5"
    assert TEN.label_for(6.5) == "6" and TEN.label_for(6.6) == "7"  # discrete scales: the nearest grade


def test_report_card_on_a_continuous_scale(sqlite_store: Any) -> None:
    _log(sqlite_store, CONTINUOUS, CONTINUOUS_SCORES, large=0.9)
    cards = build_report_cards(sqlite_store, scale=CONTINUOUS, save=True)
    card = cards["small-m"]
    math, chat = card.section("math", "answer"), card.section("chat", "answer")
    assert math is not None and chat is not None
    # 0.37 and 0.47 -> 0.4, 0.82 -> 0.8, 0.12 -> 0.1: ten-point levels, not 0/1 correctness
    assert {k: v for k, v in math.counts.items() if v} == {"0.1": 1, "0.4": 2, "0.8": 1}
    assert {k: v for k, v in chat.counts.items() if v} == {"0.6": 1, "0.7": 1, "0.9": 1}
    assert math.most_common(CONTINUOUS) == "0.4"
    # three math answers scored below 0.5 (0.47 included), none of the chat answers
    assert 'task "math", answers (n=4)' in card.text and "3 low grades" in card.text
    assert "grades worst to best: 0, 0.1, 0.2" in card.text

    math_pred = _card_prediction(sqlite_store, CONTINUOUS, "math")
    chat_pred = _card_prediction(sqlite_store, CONTINUOUS, "chat")
    # P(acceptable) is the share of scores >= 0.5 exactly
    assert math_pred.p_acceptable == pytest.approx(0.25) and chat_pred.p_acceptable == pytest.approx(1.0)
    # the expected score is the mean of the levels, within one level (0.1) of the exact mean
    assert math_pred.expected_score == pytest.approx((0.4 + 0.4 + 0.8 + 0.1) / 4)
    assert chat_pred.expected_score == pytest.approx((0.6 + 0.7 + 0.9) / 3)
    for pred, scores in ((math_pred, CONTINUOUS_SCORES["math"]), (chat_pred, CONTINUOUS_SCORES["chat"])):
        assert abs(pred.expected_score - float(np.mean(scores))) < 0.1
        assert pred.scale.name == "continuous:0-1" and pred.grade not in ("0", "1")


def test_report_card_on_an_integer_1_to_10_scale(sqlite_store: Any) -> None:
    _log(sqlite_store, TEN, TEN_SCORES, large=9.0)
    card = build_report_cards(sqlite_store, scale=TEN, save=True)["small-m"]
    math = card.section("math", "answer")
    assert math is not None and {k: v for k, v in math.counts.items() if v} == {"2": 1, "4": 1, "7": 1, "9": 1}
    total = card.section("*", "answer")
    assert total is not None and total.n == 7
    assert "3 low grades" in card.text  # 2, 4 and 6 are below 7
    math_pred = _card_prediction(sqlite_store, TEN, "math")
    chat_pred = _card_prediction(sqlite_store, TEN, "chat")
    assert math_pred.expected_score == pytest.approx(5.5) and math_pred.p_acceptable == pytest.approx(0.5)
    assert chat_pred.expected_score == pytest.approx(8.0) and chat_pred.p_acceptable == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("scale", "scores", "large", "epsilon"),
    [
        (CONTINUOUS, CONTINUOUS_SCORES, 0.9, 0.2),
        (TEN, TEN_SCORES, 9.0, 1.5),
        # correctness labels and a 0-100 judge: scales that GradeScale.named does not know by name
        (GradeScale.binary(), {"math": [0.0, 1.0, 0.0, 0.0], "chat": [1.0, 1.0, 0.0]}, 1.0, 0.35),
        (GradeScale.integer(0, 100, 70), {"math": [20.0, 70.0, 90.0, 40.0], "chat": [80.0, 100.0, 60.0]}, 90.0, 25.0),
    ],
    ids=["continuous", "ten", "correct01", "int0-100"],
)
def test_calibration_on_the_scale_from_the_store(
    sqlite_store: Any, scale: GradeScale, scores: Mapping[str, Sequence[float]], large: float, epsilon: float
) -> None:
    _log(sqlite_store, scale, scores, large=large)
    build_report_cards(sqlite_store, scale=scale, save=True)
    math_keep = _card_prediction(sqlite_store, scale, "math").expected_score
    chat_keep = _card_prediction(sqlite_store, scale, "chat").expected_score
    # later steps, logged by a graph that predicted with the card, judged the same way (70 of them)
    for _ in range(10):
        _log(sqlite_store, scale, scores, large=large, predict=lambda task: _card_prediction(sqlite_store, scale, task))

    judged = judged_from_store(sqlite_store, metric="expected_score", source="log")
    assert judged.score_range == (scale.low, scale.high) and judged.n == 70
    assert sorted(set(judged.small)) == sorted({s for v in scores.values() for s in v})  # exact scores, not levels
    assert sorted(set(judged.keep)) == pytest.approx([math_keep, chat_keep])

    by_rate = calibrate_deferral_rate(judged.keep, 4 / 7, metric="expected_score", upper=scale.high)
    assert by_rate.threshold == pytest.approx(chat_keep) and by_rate.deferral_rate == pytest.approx(4 / 7)
    by_quality = calibrate_quality(
        judged.keep,
        judged.small,
        judged.large,
        epsilon=epsilon,
        delta=0.2,
        score_range=judged.score_range,
        metric="expected_score",
        upper=scale.high,
    )
    # the cheapest certified threshold defers the math steps (the card's weak task) and keeps chat; the loss
    # left is the chat answers' shortfall against the large model, in the scale's own units
    # 0/1 losses get the exact binomial bound; bounded losses Hoeffding-Bentkus
    assert by_quality.certified
    assert by_quality.method == ("binomial" if scale.name == "correct01" else "hoeffding-bentkus")
    assert by_quality.threshold == pytest.approx(chat_keep) and by_quality.deferral_rate == pytest.approx(4 / 7)
    assert by_quality.empirical_loss == pytest.approx(sum(max(large - s, 0.0) for s in scores["chat"]) / 7)
    assert by_quality.empirical_loss < by_quality.bound <= epsilon
    stored = save_calibration(sqlite_store, by_quality, "card")
    assert load_calibration(sqlite_store, "card") == stored and stored.score_range == (scale.low, scale.high)
    policy = load_calibrated_policy(sqlite_store, "card")
    assert policy.metric == "expected_score" and policy.threshold == pytest.approx(chat_keep)
