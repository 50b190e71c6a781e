import math

import pytest

from rpra_agent import AlwaysLarge, AlwaysSmall, ConfigError, GradeScale, PolicyContext, Prediction, ThresholdPolicy

PAPER = GradeScale.paper()


def pred(dist):
    return Prediction.from_distribution(dist, scale=PAPER, predictor="t")


@pytest.mark.parametrize(
    ("dist", "expected", "p_ok", "mode"),
    [
        ({"great": 1.0}, 1.0, 1.0, "great"),
        ({"bad": 1.0}, 0.0, 0.0, "bad"),
        ({"bad": 0.2, "ok": 0.5, "great": 0.3}, 0.55, 0.8, "ok"),
        ({"bad": 2.0, "great": 2.0}, 0.5, 0.5, "bad"),  # tie goes to the lower grade
    ],
)
def test_paper_scale_statistics(dist, expected, p_ok, mode):
    p = pred(dist)
    assert p.expected_score == pytest.approx(expected)
    assert p.p_acceptable == pytest.approx(p_ok)
    assert p.grade == mode
    assert math.isclose(sum(p.distribution.values()), 1.0)


def test_ten_point_scale():
    s = GradeScale.ten_point()
    assert s.is_acceptable("7") and not s.is_acceptable("6")
    assert s.label_for(6.6) == "7"
    assert s.normalize(10) == 1.0
    assert s.parse_label(" 10. ") == "10"
    assert s.parse_label("10/10") is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"labels": ("a",), "values": (1.0,), "acceptable_from": "a"},
        {"labels": ("a", "a"), "values": (1.0, 2.0), "acceptable_from": "a"},
        {"labels": ("a", "b"), "values": (2.0, 1.0), "acceptable_from": "a"},
        {"labels": ("a", "b"), "values": (1.0, 2.0), "acceptable_from": "c"},
    ],
)
def test_bad_scales_raise(kwargs):
    with pytest.raises(ConfigError):
        GradeScale(**kwargs)


def test_scale_roundtrip():
    s = GradeScale.ten_point(8)
    assert GradeScale.from_dict(s.to_dict()) == s


def test_distribution_without_mass_is_rejected():
    with pytest.raises(ValueError):
        PAPER.normalize_distribution({"bad": 0.0})
    with pytest.raises(ValueError):
        PAPER.normalize_distribution({"bad": float("nan")})


@pytest.mark.parametrize(
    ("policy", "dist", "ctx", "route", "reason"),
    [
        (ThresholdPolicy(0.5), {"great": 1}, PolicyContext(), "small", "predicted_ok"),
        (ThresholdPolicy(0.5), {"bad": 1}, PolicyContext(), "large", "predicted_low"),
        (ThresholdPolicy(0.5), None, PolicyContext(), "large", "predictor_error"),
        (ThresholdPolicy(0.5, max_deferrals=1), {"bad": 1}, PolicyContext(deferrals=1), "small", "budget_exhausted"),
        (ThresholdPolicy(0.5, max_deferrals=1), {"bad": 1}, PolicyContext(deferrals=0), "large", "predicted_low"),
        (ThresholdPolicy(0.5, shadow=True), {"bad": 1}, PolicyContext(), "small", "shadow"),
        (ThresholdPolicy(0.5, shadow=True), {"great": 1}, PolicyContext(), "small", "predicted_ok"),
        # separate thresholds for answers and actions
        (
            ThresholdPolicy(0.5, action_threshold=0.9),
            {"ok": 0.8, "bad": 0.2},
            PolicyContext(kind="action"),
            "large",
            "predicted_low",
        ),
        (
            ThresholdPolicy(0.5, action_threshold=0.9),
            {"ok": 0.8, "bad": 0.2},
            PolicyContext(kind="answer"),
            "small",
            "predicted_ok",
        ),
        (ThresholdPolicy(0.6, metric="expected_score"), {"ok": 1}, PolicyContext(), "large", "predicted_low"),
        (ThresholdPolicy(0.4, metric="expected_score"), {"ok": 1}, PolicyContext(), "small", "predicted_ok"),
        (AlwaysSmall(), None, PolicyContext(), "small", "forced"),
        (AlwaysLarge(), {"great": 1}, PolicyContext(), "large", "forced"),
    ],
)
def test_policy_table(policy, dist, ctx, route, reason):
    r = policy.decide(pred(dist) if dist else None, ctx)
    assert (r.route, r.reason) == (route, reason)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 1.5},
        {"threshold": -0.1},
        {"action_threshold": 2.0},
        {"metric": "nope"},
        {"max_deferrals": -1},
        {"threshold": float("nan")},
    ],
)
def test_policy_rejects_bad_config(kwargs):
    with pytest.raises(ConfigError):
        ThresholdPolicy(**kwargs)
