"""Routing and agreement metrics against hand-computed examples."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets import EvalDataset, EvalItem, ModelResponse
from rpra_agent.evaluation.metrics import (
    PriceTable,
    agreement_report,
    apgr,
    auroc,
    cost_curve,
    cpt,
    deferral_precision_recall,
    expected_calibration_error,
    expected_deferred_sums,
    grade_accuracy,
    item_costs,
    macro_f1,
    mae,
    operating_point,
    routing_curve,
    spearman,
)

# weak, strong: gains from deferring are +1, +1, 0, -1 (items 0..3)
W = [0.0, 0.0, 1.0, 1.0]
S = [1.0, 1.0, 1.0, 0.0]

# (keep scores, expected PGR at c = 0, .25, .5, .75, 1, APGR, CPT50, CPT80)
ROUTING_CASES = [
    # distinct scores, best order: q = .5 .75 1 1 .75
    ([0.1, 0.2, 0.3, 0.4], [0, 1, 2, 2, 1], 1.375, 0.125, 0.2),
    # ties {0,1} and {2,3}: the second group half-deferred gives the mean of 0 and -1
    ([0, 0, 1, 1], [0, 1, 2, 1.5, 1], 1.25, 0.125, 0.2),
    # ties {1,2} (+1, 0) first, then {0,3} (+1, -1)
    ([1, 0, 0, 1], [0, 0.5, 1, 1, 1], 0.75, 0.25, 0.4),
    # everything tied: random routing, PGR(c) = c exactly
    ([5, 5, 5, 5], [0, 0.25, 0.5, 0.75, 1], 0.5, 0.5, 0.8),
    # worst order
    ([0.4, 0.3, 0.2, 0.1], [0, -1, -1, 0, 1], -0.375, 0.875, 0.95),
]


@pytest.mark.parametrize(("keep", "pgr", "area", "cpt50", "cpt80"), ROUTING_CASES)
def test_routing_curve_hand_computed(keep, pgr, area, cpt50, cpt80):
    curve = routing_curve(W, S, keep)
    assert curve.q_weak == 0.5 and curve.q_strong == 0.75
    np.testing.assert_allclose(curve.deferral, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(curve.pgr, pgr)
    np.testing.assert_allclose(curve.quality, 0.5 + 0.25 * np.asarray(pgr))
    assert apgr(W, S, keep) == pytest.approx(area)
    assert cpt(W, S, keep, 0.5) == pytest.approx(cpt50)
    assert cpt(W, S, keep, 0.8) == pytest.approx(cpt80)


def test_apgr_equals_routellm_auc_formula():
    rng = np.random.default_rng(3)
    w, s, keep = rng.integers(1, 11, 50).astype(float), rng.integers(1, 11, 50).astype(float), rng.random(50)
    curve = routing_curve(w, s, keep)
    auc = np.trapezoid(curve.quality, curve.deferral)
    routellm = (auc - w.mean()) / (s.mean() - w.mean())
    assert curve.apgr == pytest.approx(routellm)


def test_ties_are_the_exact_expectation_over_every_tie_breaking():
    rng = np.random.default_rng(0)
    for _ in range(5):
        n = 6
        w = rng.integers(0, 4, n).astype(float)
        s = rng.integers(0, 4, n).astype(float)
        keep = rng.integers(0, 3, n).astype(float)  # many ties
        total = np.zeros(n + 1)
        count = 0
        for perm in itertools.permutations(range(n)):
            order = sorted(range(n), key=lambda i: (keep[i], perm[i]))
            d = (s - w)[order]
            total += np.r_[0, np.cumsum(d)]
            count += 1
        np.testing.assert_allclose(expected_deferred_sums(s - w, keep), total / count)


def test_one_hot_predictor_is_scored_as_its_expectation_not_by_index_order():
    w, s = np.array([1.0, 0.0, 1.0, 0.0]), np.array([1.0, 1.0, 1.0, 1.0])
    assert apgr(w, s, [1, 1, 1, 1]) == pytest.approx(0.5)
    assert apgr(w, s, [1, 1, 1, 1]) == pytest.approx(apgr(w[::-1], s[::-1], [1, 1, 1, 1]))


def test_equal_models_give_nan_and_bad_input_raises():
    assert math.isnan(apgr([1, 2], [2, 1], [0, 1]))
    assert math.isnan(cpt([1, 2], [2, 1], [0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        apgr([1, float("nan")], [1, 2], [0, 1])
    with pytest.raises(ValueError, match="expected 2"):
        apgr([1, 2], [1, 2, 3], [0, 1])
    with pytest.raises(ValueError, match="no items"):
        apgr([], [], [])


def test_cpt_never_reached_is_nan_and_quality_at_interpolates():
    curve = routing_curve(W, S, [0.1, 0.2, 0.3, 0.4])
    assert math.isnan(curve.cpt(2.5))
    assert curve.quality_at(0.125) == pytest.approx(0.625)


@pytest.mark.parametrize(
    ("small_always", "expected"),
    [(False, [1, 3.25, 5.5, 7.75, 10]), (True, [1, 3.5, 6, 8.5, 11])],
)
def test_cost_curve(small_always, expected):
    got = cost_curve([1, 1, 1, 1], [10, 10, 10, 10], [0.1, 0.2, 0.3, 0.4], small_always_runs=small_always)
    np.testing.assert_allclose(got, expected)


def test_cost_curve_ties_average():
    np.testing.assert_allclose(cost_curve([0, 0], [2, 4], [0, 0]), [0, 1.5, 3])


def test_operating_point():
    point = operating_point(W, S, [0.1, 0.2, 0.3, 0.4], 0.25)
    assert (point.deferral_rate, point.quality, point.pgr) == (0.5, 1.0, 2.0)
    assert operating_point(W, S, [0.1, 0.2, 0.3, 0.4], 0.1).deferral_rate == 0.0


@pytest.mark.parametrize(
    ("threshold", "truth", "acceptable", "deferred", "needed", "tp", "precision", "recall", "f1"),
    [
        (0.35, "strong_better", None, 3, 2, 2, 2 / 3, 1.0, 0.8),
        (0.35, "unacceptable", 1.0, 3, 2, 2, 2 / 3, 1.0, 0.8),
        (0.15, "strong_better", None, 1, 2, 1, 1.0, 0.5, 2 / 3),
        (0.0, "strong_better", None, 0, 2, 0, float("nan"), 0.0, 0.0),
    ],
)
def test_deferral_precision_recall(threshold, truth, acceptable, deferred, needed, tp, precision, recall, f1):
    st = deferral_precision_recall(W, S, [0.1, 0.2, 0.3, 0.4], threshold, truth=truth, acceptable=acceptable)
    assert (st.deferred, st.needed, st.true_positives) == (deferred, needed, tp)
    np.testing.assert_allclose([st.precision, st.recall, st.f1], [precision, recall, f1])


def test_deferral_truth_unacceptable_needs_acceptable():
    with pytest.raises(ValueError, match="acceptable"):
        deferral_precision_recall(W, S, [0, 0, 0, 0], 0.5, truth="unacceptable")


# -- agreement ----------------------------------------------------------------------
TRUE = ["bad", "ok", "great", "great"]
PRED = ["bad", "great", "great", "ok"]


def test_grade_accuracy_and_macro_f1():
    assert grade_accuracy(TRUE, PRED) == 0.5
    # bad F1 1, ok F1 0, great P=R=.5 -> F1 .5
    assert macro_f1(TRUE, PRED, labels=["bad", "ok", "great"]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="length"):
        grade_accuracy(TRUE, PRED[:2])


@pytest.mark.parametrize(
    ("y", "p", "expected"),
    [
        ([0, 1, 1, 0], [0.1, 0.4, 0.35, 0.8], 0.5),
        ([0, 1, 1, 0], [0.2, 0.5, 0.5, 0.5], 0.75),  # ties count a half
        ([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], 1.0),
        ([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], float("nan")),
    ],
)
def test_auroc(y, p, expected):
    np.testing.assert_allclose(auroc(y, p), expected)


@pytest.mark.parametrize(
    ("t", "p", "expected"),
    [
        ([1, 2, 3, 4], [10, 20, 40, 30], 0.8),
        ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
        ([1, 1, 1, 1], [4, 3, 2, 1], float("nan")),
    ],
)
def test_spearman(t, p, expected):
    np.testing.assert_allclose(spearman(t, p), expected)


@pytest.mark.parametrize(
    ("y", "p", "expected"),
    [
        ([1, 0, 1, 1], [0.95, 0.95, 0.15, 0.15], 0.5 * 0.45 + 0.5 * 0.85),
        ([1, 0], [0.5, 0.5], 0.0),
        ([1, 1, 0, 0], [1.0, 1.0, 0.0, 0.0], 0.0),
        ([0, 0], [0.7, 0.9], 0.8),
    ],
)
def test_expected_calibration_error(y, p, expected):
    assert expected_calibration_error(y, p) == pytest.approx(expected)


def test_mae():
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)


def test_agreement_report_on_distributions():
    scale = GradeScale.paper()
    dists = [
        {"bad": 0.8, "ok": 0.1, "great": 0.1},
        {"bad": 0.1, "ok": 0.2, "great": 0.7},
        {"great": 1.0},
        {"bad": 0.2, "ok": 0.6, "great": 0.2},
    ]
    rep = agreement_report(TRUE, dists, scale)
    assert rep.n == 4 and rep.accuracy == 0.5 and rep.macro_f1 == pytest.approx(0.5)
    # expected scores .15 .8 1 .5 vs truth 0 .5 1 1
    assert rep.mae == pytest.approx((0.15 + 0.3 + 0 + 0.5) / 4)
    # acceptable: F T T T; p_acceptable .2 .9 1 .8 -> perfectly ranked
    assert rep.auroc == 1.0
    assert rep.spearman == pytest.approx(spearman([0, 0.5, 1, 1], [0.15, 0.8, 1.0, 0.5]))
    assert rep.ece == pytest.approx(expected_calibration_error([0, 1, 1, 1], [0.2, 0.9, 1.0, 0.8]))


# -- costs --------------------------------------------------------------------------
def _cost_ds(tokens: int | None = 1000, text: str | None = "abcdefgh", cost: float | None = None) -> EvalDataset:
    item = EvalItem("a", "p", ({"role": "user", "content": "p"},), None, {"m": ModelResponse(text, 1.0, tokens, cost)})
    return EvalDataset("d", (item,), "m", "x", (0.0, 1.0), "")


@pytest.mark.parametrize(
    ("specs", "ds", "expected"),
    [
        (["m=0.5/call"], _cost_ds(), 0.5),
        (["m=2/1k"], _cost_ds(tokens=500), 1.0),
        (["m=0.5/call", "m=2/1k"], _cost_ds(tokens=500), 1.5),
        (["m=1000/1k"], _cost_ds(tokens=None, text="abcdefghi"), 3.0),  # ceil(9/4) tokens estimated
        ([], _cost_ds(cost=0.25), 0.25),  # recorded cost
    ],
)
def test_item_costs(specs, ds, expected):
    assert item_costs(ds, "m", PriceTable.parse(specs))[0] == pytest.approx(expected)


def test_price_table_errors():
    with pytest.raises(ConfigError, match="MODEL=AMOUNT/call"):
        PriceTable.parse(["m=cheap"])
    with pytest.raises(ConfigError, match="no recorded cost"):
        item_costs(_cost_ds(), "m", PriceTable())
    with pytest.raises(ConfigError, match="tokens or the answer text"):
        item_costs(_cost_ds(tokens=None, text=None), "m", PriceTable.parse(["m=1/1k"]))
    with pytest.raises(ConfigError, match="non-negative"):
        PriceTable.from_dict({"m": {"per_call": -1}})
    table = PriceTable.parse(["a=1/call", "a=2/1k"])
    again = PriceTable.from_dict(table.to_dict())
    assert again.call_cost("a", 0, 500) == table.call_cost("a", 0, 500) == pytest.approx(2.0)


def test_apgr_difference_bootstraps_exactly_what_resampling_the_items_gives() -> None:
    from rpra_agent.evaluation.metrics import apgr_difference
    from rpra_agent.evaluation.metrics.routing import _weighted_apgr

    rng = np.random.default_rng(3)
    n = 120
    weak = rng.integers(1, 11, n).astype(float)
    strong = np.clip(weak + rng.integers(-2, 6, n), 1, 10).astype(float)
    good = np.round(weak - strong + rng.normal(0, 2, n))  # many ties: exactness over ties matters
    noise = rng.random(n)
    # one resample's APGR from multiplicities equals the APGR of the resampled items themselves
    counts = rng.multinomial(n, np.full(n, 1 / n), size=4)
    by_weights = _weighted_apgr(weak, strong, good, counts)
    for row, value in zip(counts, by_weights, strict=True):
        idx = np.repeat(np.arange(n), row)
        assert value == pytest.approx(apgr(weak[idx], strong[idx], good[idx]), abs=1e-12)
    d = apgr_difference(weak, strong, good, noise, resamples=400)
    assert d.difference == pytest.approx(apgr(weak, strong, good) - apgr(weak, strong, noise))
    assert d.low < d.difference < d.high and d.excludes_zero and d.low > 0  # a real signal against noise
    assert d.resamples == 400 and d.units == n and d.level == 0.95
    same = apgr_difference(weak, strong, good, good, resamples=50)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0) and not same.excludes_zero
    close = apgr_difference(weak, strong, noise, rng.random(n), resamples=400)
    assert close.low < 0 < close.high  # two random routers: not told apart


def test_apgr_difference_resamples_whole_groups() -> None:
    from rpra_agent.evaluation.metrics import apgr_difference

    rng = np.random.default_rng(5)
    pairs = 80
    weak = np.repeat(rng.integers(1, 11, pairs), 2).astype(float)  # both turns of a conversation alike
    strong = np.repeat(rng.integers(4, 11, pairs), 2).astype(float)
    a, b = weak - strong + np.repeat(rng.normal(0, 3, pairs), 2), rng.random(2 * pairs)
    groups = [f"c{i // 2}" for i in range(2 * pairs)]
    by_item = apgr_difference(weak, strong, a, b, resamples=600)
    by_conversation = apgr_difference(weak, strong, a, b, groups=groups, resamples=600)
    assert by_conversation.units == pairs and by_item.units == 2 * pairs
    assert by_conversation.difference == by_item.difference
    # duplicated turns are not independent evidence: the honest interval is wider
    assert by_conversation.high - by_conversation.low > 1.2 * (by_item.high - by_item.low)


def test_apgr_difference_refuses_bad_input() -> None:
    from rpra_agent.evaluation.metrics import apgr_difference

    with pytest.raises(ValueError, match="other_keep_scores has 2 values, expected 3"):
        apgr_difference([1, 2, 3], [3, 3, 3], [0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="groups has 2 keys for 3 items"):
        apgr_difference([1, 2, 3], [3, 3, 3], [0, 1, 2], [2, 1, 0], groups=["a", "b"])
    with pytest.raises(ValueError, match="level must lie in"):
        apgr_difference([1, 2, 3], [3, 3, 3], [0, 1, 2], [2, 1, 0], level=1.5)
    with pytest.raises(ValueError, match="at least 2 items"):
        apgr_difference([1], [3], [0], [1])
    with pytest.raises(ValueError, match="resamples must be at least 1"):
        apgr_difference([1, 2, 3], [3, 3, 3], [0, 1, 2], [2, 1, 0], resamples=0)
    tied = apgr_difference([0.1, 0.3, 0.2], [0.3, 0.1, 0.2], [0, 1, 2], [2, 1, 0])  # no gap: no APGR at all
    assert math.isnan(tied.difference) and tied.resamples < 1000
