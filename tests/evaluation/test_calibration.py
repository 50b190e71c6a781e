"""Calibration: the quantile mode, the finite-sample quality guarantee, storage and the policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.policy import PolicyContext, ThresholdPolicy
from rpra_agent.core.prediction import Prediction
from rpra_agent.core.verdict import Verdict
from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.evaluation.runs.judged import judged_from_dataset, judged_from_store
from rpra_agent.feedback.bounds import pvalues, upper_bound
from rpra_agent.feedback.calibration import (
    Calibration,
    calibrate_deferral_rate,
    calibrate_quality,
    load_calibrated_policy,
    load_calibration,
    save_calibration,
)
from rpra_agent.store.memory import InMemoryDecisionStore

TEN = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


# -- target deferral rate (a quantile) ------------------------------------------------
@pytest.mark.parametrize(
    ("keep", "target", "metric", "threshold", "rate"),
    [
        (TEN, 0.3, "p_acceptable", 0.4, 0.3),
        (TEN, 0.0, "p_acceptable", 0.1, 0.0),
        (TEN, 0.34, "p_acceptable", 0.4, 0.3),
        (TEN, 1.0, "p_acceptable", 1.0, 0.9),  # a p_acceptable threshold cannot exceed 1
        ([0.5] * 5 + [0.9] * 5, 0.3, "p_acceptable", 0.9, 0.5),  # ties: 0.5 is nearer than 0
        ([0.5] * 5 + [0.9] * 5, 0.25, "p_acceptable", 0.9, 0.5),  # equally near: defer more
        ([0.5] * 5 + [0.9] * 5, 0.9, "p_acceptable", 1.0, 1.0),
        ([3.0, 7.0], 1.0, "answer_chars", float(np.nextafter(7.0, 8.0)), 1.0),
    ],
)
def test_deferral_rate_quantile(keep, target, metric, threshold, rate):
    cal = calibrate_deferral_rate(keep, target, metric=metric)
    assert cal.threshold == pytest.approx(threshold) and cal.deferral_rate == pytest.approx(rate)
    assert (cal.mode, cal.method, cal.n, cal.target) == ("deferral_rate", "quantile", len(keep), target)
    assert np.mean(np.asarray(keep) < cal.threshold) == pytest.approx(cal.deferral_rate)


def test_deferral_rate_on_many_scores_is_close_to_target():
    keep = np.random.default_rng(1).random(1000)
    for target in (0.1, 0.5, 0.77):
        assert calibrate_deferral_rate(keep, target).deferral_rate == pytest.approx(target, abs=1e-3)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_deferral_rate_rejects_bad_targets(bad):
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        calibrate_deferral_rate(TEN, bad)


# -- the quality guarantee ------------------------------------------------------------
def _binary(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """keep ~ U(0,1); small correct w.p. keep; large correct w.p. 0.95."""
    keep = rng.random(n)
    return keep, (rng.random(n) < keep).astype(float), (rng.random(n) < 0.95).astype(float)


def _true_clipped_risk(t: float) -> float:
    """E[(large - small)_+ 1{keep >= t}] = integral_t^1 0.95 (1 - s) ds."""
    t = min(max(t, 0.0), 1.0)
    return 0.95 * (1 - t) ** 2 / 2


def test_quality_guarantee_holds_over_many_seeds_binary():
    eps, delta, seeds, n = 0.05, 0.1, 300, 400
    fresh_keep, fresh_small, fresh_large = _binary(np.random.default_rng(10_000), 100_000)
    order = np.argsort(fresh_keep)
    fresh_sorted = fresh_keep[order]
    # realised quality loss against always-large on fresh data if the items with keep >= t stay small
    fresh_suffix = np.r_[np.cumsum((fresh_large - fresh_small)[order][::-1])[::-1], 0.0] / len(fresh_keep)
    violations = realised_violations = naive_violations = certified = 0
    thresholds = []
    for seed in range(seeds):
        keep, small, large = _binary(np.random.default_rng(seed), n)
        cal = calibrate_quality(keep, small, large, epsilon=eps, delta=delta)
        assert cal.method == "binomial" and cal.bound is not None and cal.empirical_loss is not None
        certified += cal.certified
        thresholds.append(cal.threshold)
        violations += _true_clipped_risk(cal.threshold) > eps
        realised_violations += fresh_suffix[np.searchsorted(fresh_sorted, cal.threshold)] > eps
        if cal.certified:
            assert cal.bound <= eps + 1e-9 and cal.empirical_loss <= cal.bound
        # a naive rule (empirical loss <= eps, no bound) for contrast
        srt = np.argsort(keep)
        emp = np.cumsum(np.clip(large - small, 0, 1)[srt][::-1])[::-1] / n  # loss if keep >= keep[srt][i]
        naive = keep[srt][np.flatnonzero(emp <= eps)[0]]
        naive_violations += _true_clipped_risk(naive) > eps
    slack = 2 * math.sqrt(delta * (1 - delta) / seeds)
    assert violations / seeds <= delta + slack
    assert realised_violations / seeds <= delta + slack
    assert naive_violations / seeds > 0.3  # the test can tell a procedure without a bound
    assert certified == seeds
    # not vacuous: the oracle threshold is 0.676; the calibrated ones sit a little above
    assert 0.676 < np.median(thresholds) < 0.85


def test_quality_guarantee_holds_over_many_seeds_on_a_ten_point_scale():
    eps, delta, seeds, n = 0.4, 0.2, 200, 300

    def draw(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keep = rng.random(m)
        small = np.clip(np.round(1 + 9 * keep + rng.normal(0, 1.5, m)), 1, 10)
        large = np.clip(np.round(8.5 + rng.normal(0, 1.0, m)), 1, 10)
        return keep, small, large

    fk, fs, fl = draw(np.random.default_rng(99), 400_000)
    fresh_loss = np.clip(fl - fs, 0, None)
    violations = 0
    for seed in range(seeds):
        keep, small, large = draw(np.random.default_rng(seed), n)
        cal = calibrate_quality(keep, small, large, epsilon=eps, delta=delta, score_range=(1, 10))
        assert cal.method == "hoeffding-bentkus"
        violations += np.mean(fresh_loss * (fk >= cal.threshold)) > eps
    assert violations / seeds <= delta + 2 * math.sqrt(delta * (1 - delta) / seeds)


def test_too_little_data_is_not_certified_and_defers_everything():
    keep, small, large = _binary(np.random.default_rng(0), 10)
    cal = calibrate_quality(keep, small, large, epsilon=0.01, delta=0.05)
    assert not cal.certified and cal.threshold == 1.0 and cal.deferral_rate == 1.0


def test_perfect_small_model_defers_nothing():
    keep = np.linspace(0, 0.99, 500)
    cal = calibrate_quality(keep, np.ones(500), np.ones(500), epsilon=0.02, delta=0.1)
    assert cal.certified and cal.deferral_rate == 0.0 and cal.threshold == 0.0 and cal.empirical_loss == 0.0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": 0.1, "delta": 1.0}, "delta"),
        ({"epsilon": 0.1, "score_range": (1, 1)}, "score_range"),
        ({"epsilon": 0.1, "bound": "binomial", "score_range": (0, 4)}, "0/1 losses"),
    ],
)
def test_quality_rejects_bad_arguments(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        calibrate_quality([0.1, 0.2], [1, 0], [2, 1], **kwargs)


def test_bounds_known_values():
    assert pvalues([0.0], 100, 0.1, "hoeffding")[0] == pytest.approx(math.exp(-2))
    assert pvalues([0.0], 10, 0.5, "binomial")[0] == pytest.approx(0.5**10)
    assert pvalues([0.0], 10, 0.5, "bentkus")[0] == pytest.approx(math.e * 0.5**10)
    assert pvalues([0.0], 10, 0.5, "hoeffding-bentkus")[0] == pytest.approx(min(math.exp(-5), math.e / 1024))
    assert pvalues([0.6], 10, 0.5, "hoeffding")[0] == 1.0
    assert upper_bound(0.0, 100, math.exp(-2), "hoeffding") == pytest.approx(0.1, abs=1e-9)
    ub = upper_bound(0.1, 50, 0.1, "binomial")  # Clopper-Pearson inverts the binomial test
    assert pvalues([0.1], 50, ub, "binomial")[0] == pytest.approx(0.1)
    hb = upper_bound(0.1, 50, 0.1, "hoeffding-bentkus")
    assert pvalues([0.1], 50, hb, "hoeffding-bentkus")[0] == pytest.approx(0.1, abs=1e-6)
    assert upper_bound(0.3, 50, 0.1, "hoeffding") == pytest.approx(0.3 + math.sqrt(math.log(10) / 100), abs=1e-9)


# -- storage and the policy -----------------------------------------------------------
def test_save_load_and_policy_use_the_latest_version():
    store = InMemoryDecisionStore()
    with pytest.raises(ConfigError, match="no calibration named 'default'"):
        load_calibrated_policy(store)
    first = save_calibration(store, calibrate_deferral_rate(TEN, 0.3))
    second = save_calibration(store, calibrate_deferral_rate(TEN, 0.5))
    assert (first.version, second.version) == (1, 2)
    loaded = load_calibration(store)
    assert loaded == second
    policy = load_calibrated_policy(store, max_deferrals=3)
    assert isinstance(policy, ThresholdPolicy)
    assert (policy.threshold, policy.metric, policy.max_deferrals, policy.name) == (
        0.6,
        "p_acceptable",
        3,
        "calibrated:v2",
    )
    low = Prediction.from_distribution({"bad": 0.5, "ok": 0.5}, scale=GradeScale.paper(), predictor="p")
    assert policy.decide(low, PolicyContext()).route == "large"  # p_acceptable 0.5 < 0.6


def test_calibration_round_trips_and_refuses_non_policy_metrics():
    cal = calibrate_quality([0.1, 0.9] * 50, [0, 1] * 50, [1, 1] * 50, epsilon=0.2, delta=0.1)
    assert Calibration.from_dict(cal.to_dict(), version=4) == Calibration(**{**cal.__dict__, "version": 4})
    with pytest.raises(ConfigError, match="cannot read"):
        calibrate_deferral_rate([1.0, 2.0], 0.5, metric="answer_chars").to_policy()


def test_calibrate_from_a_bundled_dataset():
    judged = judged_from_dataset(load_dataset("mt-bench"), "category")
    assert judged.n == 160 and judged.metric == "p_acceptable" and judged.score_range == (1.0, 10.0)
    cal = calibrate_quality(
        judged.keep, judged.small, judged.large, epsilon=0.5, delta=0.1, score_range=judged.score_range
    )
    assert cal.certified and 0 < cal.deferral_rate < 1 and cal.bound is not None and cal.bound <= 0.5


def _decision(route: str, p_ok: float | None, degraded: bool = False) -> Decision:
    scale = GradeScale.paper()
    pred = None
    if p_ok is not None:
        pred = Prediction.from_distribution({"bad": 1 - p_ok, "great": p_ok}, scale=scale, predictor="zs")
    return Decision("run", 0, "answer", "pa", pred, 0.5, route, "predicted_ok", degraded=degraded)  # type: ignore[arg-type]


def _verdict(decision: Decision, grade: str, subject: str, created_at: str = "2026-01-01") -> Verdict:
    value = GradeScale.paper().value(grade)
    return Verdict(decision.id, grade, value, "paper3", "judge", "1", subject=subject, created_at=created_at)


def test_judged_from_store_pairs_small_and_large_verdicts():
    store = InMemoryDecisionStore()
    d1, d2, d3, d4, d5 = (
        _decision("small", 0.9),
        _decision("large", 0.2),
        _decision("small", 0.8),
        _decision("large", None),
        _decision("large", 0.3, degraded=True),
    )
    for d in (d1, d2, d3, d4, d5):
        store.add(d)
    store.add_verdicts(
        [
            _verdict(d1, "great", "given"),
            _verdict(d1, "bad", "large", "2026-01-01"),
            _verdict(d1, "ok", "large", "2026-01-02"),  # the newest wins
            _verdict(d2, "great", "given"),
            _verdict(d2, "bad", "small"),
            _verdict(d3, "great", "given"),  # no large verdict: left out
            _verdict(d4, "great", "given"),
            _verdict(d4, "bad", "small"),  # no prediction: left out
            _verdict(d5, "great", "given"),
            _verdict(d5, "bad", "small"),  # degraded: its given answer was the small one
        ]
    )
    judged = judged_from_store(store, source="memory://")
    assert judged.n == 2 and judged.score_range == (0.0, 1.0) and judged.predictor == "zs"
    rows = sorted(zip(judged.keep, judged.small, judged.large, strict=True))
    assert rows == [pytest.approx((0.2, 0.0, 1.0)), pytest.approx((0.9, 1.0, 0.5))]
    with pytest.raises(ConfigError, match="both the small and the large"):
        judged_from_store(InMemoryDecisionStore())
    with pytest.raises(ConfigError, match="metric"):
        judged_from_store(store, metric="vibes")
