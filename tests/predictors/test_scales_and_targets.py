"""Scores modelled as they are (continuous scales, gain target, pooling), the fold helper, the ranking figures, the ridge baseline."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets import EvalDataset, EvalItem, ModelResponse
from rpra_agent.evaluation.metrics import apgr
from rpra_agent.evaluation.metrics.agreement import auroc as eval_auroc
from rpra_agent.evaluation.metrics.agreement import expected_calibration_error as eval_ece
from rpra_agent.predictors.baselines import RidgeTextPredictor, point_distribution
from rpra_agent.predictors.crossfit import crossfit_predictions, crossfit_scores, dataset_folds
from rpra_agent.predictors.data import RecordedDataset, scale_of
from rpra_agent.predictors.features import Sample
from rpra_agent.predictors.folds import conversation_key, fold_ids, stable_fold_ids
from rpra_agent.predictors.learned import LearnedPredictor
from rpra_agent.predictors.ranking import auroc, expected_calibration_error, routing_area
from tests.predictors.learned_data import make_dataset, make_samples


# -- GradeScale ----------------------------------------------------------------------
def test_continuous_scale_round_trips_and_keeps_the_exact_threshold() -> None:
    scale = GradeScale.continuous(0.0, 1.0, 0.55)
    assert scale.labels == ("0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1")
    assert scale.acceptable_from == "0.6" and scale.threshold == 0.55 and scale.is_continuous
    assert GradeScale.from_dict(scale.to_dict()) == scale
    assert "threshold" not in GradeScale.paper().to_dict()  # discrete scales serialise as before
    assert scale.position(0.37) == pytest.approx(3.7) and scale.position(-1) == 0 and scale.position(2) == 10
    with pytest.raises(ConfigError, match="low < high"):
        GradeScale.continuous(1.0, 1.0, 1.0)
    with pytest.raises(ConfigError, match="outside"):
        GradeScale(("a", "b"), (0.0, 1.0), "b", "x", threshold=3.0)


@pytest.mark.parametrize(
    ("scores", "low", "high", "name"),
    [
        ([0, 1, 1], 0, 1, "correct01"),
        ([0, 0.5, 1], 0, 1, "continuous:0-1"),  # a tie at 0.5 is not rounded into 0/1
        ([0.37, 0.9], 0, 1, "continuous:0-1"),
        ([1, 8.5, 10], 1, 10, "ten"),  # MT-bench per question: means of two grades
        ([1, 8.25, 10], 1, 10, "continuous:1-10"),
        ([0, 3, 5], 0, 5, "int0-5"),
    ],
)
def test_scale_for_scores_never_rounds_scores_away(scores: list[float], low: float, high: float, name: str) -> None:
    assert GradeScale.for_scores(scores, low, high, (low + high) / 2).name == name


def test_margin_and_normalised_scales() -> None:
    assert GradeScale.ten_point().margin().labels[0] == "-9" and GradeScale.ten_point().margin().acceptable_from == "0"
    assert GradeScale.binary().margin().labels == ("-1", "0", "1")
    margin = GradeScale.continuous(0, 1, 0.5).margin()
    assert (margin.low, margin.high, margin.threshold, len(margin.labels)) == (-1.0, 1.0, 0.0, 21)
    norm = GradeScale.ten_point().normalized()
    assert norm.threshold == pytest.approx(6 / 9) and (norm.low, norm.high) == (0.0, 1.0)


# -- folds and ranking ------------------------------------------------------------------
def test_fold_ids_keep_groups_together_and_reject_bad_counts() -> None:
    groups = ["a", "a", "b", "c", "c", "d", "e"]
    folds = fold_ids(len(groups), 3, seed=4, groups=groups)
    assert folds[0] == folds[1] and folds[3] == folds[4]
    assert np.array_equal(folds, fold_ids(len(groups), 3, seed=4, groups=groups))  # seeded
    assert sorted(np.bincount(fold_ids(10, 5, seed=1))) == [2] * 5
    with pytest.raises(ConfigError, match="at least 2 folds"):
        fold_ids(5, 1)
    with pytest.raises(ConfigError, match=r"3 items in 2 folds: they form only 1 group\(s\).*give more items") as one:
        fold_ids(3, 2, groups=["x", "x", "x"])
    assert "at most" not in str(one.value)  # one group: no fold count helps
    with pytest.raises(ConfigError, match="only 2 group.*use at most 2 folds"):
        fold_ids(4, 3, groups=["x", "x", "y", "y"])
    with pytest.raises(ConfigError, match="cannot cross-fit 3 items in 4 folds: use fewer folds"):
        fold_ids(3, 4)
    assert stable_fold_ids(["q1", "q2"], 5).tolist() == stable_fold_ids(["q2", "q1"], 5).tolist()[::-1]


def test_routing_area_and_agreement_equal_the_evaluations_definitions() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        weak, strong = rng.integers(1, 11, 40).astype(float), rng.integers(1, 11, 40).astype(float)
        keep = rng.integers(0, 4, 40).astype(float)  # many ties
        assert routing_area(weak, strong, keep) == pytest.approx(apgr(weak, strong, keep))
    labels, probs = (rng.random(80) > 0.5).astype(float), rng.random(80)
    assert auroc(labels, probs) == pytest.approx(eval_auroc(labels, probs))
    assert expected_calibration_error(labels, probs) == pytest.approx(eval_ece(labels, probs))
    assert np.isnan(routing_area([1, 2], [1, 2], [0, 1]))  # no gap to recover


# -- data on other scales -------------------------------------------------------------------
def _continuous_dataset(n: int = 80, seed: int = 0) -> EvalDataset:
    """Scores in [0, 1]: maths requests score low (0.1-0.4), writing high (0.6-0.95); never 0/1."""
    samples, _ = make_samples(n, seed=seed)
    rng = random.Random(seed)
    items = []
    for i, s in enumerate(samples):
        weak = rng.uniform(0.1, 0.4) if s.task == "math" else rng.uniform(0.6, 0.95)
        items.append(
            EvalItem(
                id=f"c{i}",
                prompt=s.request,
                messages=({"role": "user", "content": s.request},),
                category=s.task,
                responses={"w": ModelResponse(text=s.draft, score=weak), "s": ModelResponse(text="x", score=0.9)},
            )
        )
    return EvalDataset("cont", tuple(items), "w", "s", (0.0, 1.0), "synthetic", {"acceptable": 0.5})


def test_continuous_scores_are_modelled_on_a_continuous_scale() -> None:
    ds = _continuous_dataset()
    assert isinstance(ds, RecordedDataset) and scale_of(ds).name == "continuous:0-1"
    predictor = LearnedPredictor(target="small").fit_dataset(ds)
    assert predictor.scale.is_continuous and predictor.scale.threshold == 0.5
    math_req, chat_req = (
        Sample(request=f"Please help with this {w} number 1", task=t)
        for w, t in (("integral", "math"), ("poem", "writing"))
    )
    low, high = (predictor.predict(s.to_request()) for s in (math_req, chat_req))
    assert 0.1 < low.expected_score < 0.45 < 0.55 < high.expected_score < 0.95  # not quantised to 0/1
    assert low.p_acceptable < 0.5 < high.p_acceptable
    assert len(predictor.training["label_counts"]) > 2


def test_gain_target_predicts_the_margin_and_auto_chooses_by_inner_routing() -> None:
    ds = make_dataset(80)
    gain = LearnedPredictor(target="gain").fit_dataset(ds)
    assert gain.target == "gain" and gain.scale.name == "margin:ten" and gain.name == "learned_gain"
    assert gain.data_scale.name == "ten" and gain.version.startswith("learned-request-gain-")
    auto = LearnedPredictor().fit_dataset(ds)
    assert auto.target in ("small", "gain") and auto.target_option == "auto"
    assert any(key.startswith("gain@") for key in auto.training["selection"])
    with pytest.raises(ConfigError, match="large_scores"):
        LearnedPredictor(target="gain", scale=GradeScale.ten_point()).fit(*make_samples(20))
    with pytest.raises(ConfigError, match="target must be"):
        LearnedPredictor(target="best")  # type: ignore[arg-type]


def test_gain_artifact_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    predictor = LearnedPredictor(target="gain").fit_dataset(make_dataset(60))
    loaded = LearnedPredictor.load(predictor.save(tmp_path / "gain"))
    assert loaded.scale == predictor.scale and loaded.data_scale == predictor.data_scale and loaded.target == "gain"
    request = Sample(request="Please help with this integral number 3", task="math").to_request()
    assert loaded.predict(request).distribution == predictor.predict(request).distribution


def test_pooling_datasets_on_different_scales_normalises_to_0_1() -> None:
    pooled = LearnedPredictor(target="small").fit_dataset([make_dataset(40), _continuous_dataset(40)])
    assert pooled.data_scale.name == "normalized01" and (pooled.scale.low, pooled.scale.high) == (0.0, 1.0)
    assert pooled.data_scale.threshold == pytest.approx((5 / 9 + 0.5) / 2)  # 1-10 acceptable from 6; 0-1 from 0.5
    assert pooled.training["source"] == "dataset:synthetic+cont" and pooled.training["n"] == 80


def test_crossfit_predictions_report_targets_and_share_folds() -> None:
    ds = make_dataset(60, turns=True)
    folds = dataset_folds(ds, 3, seed=2)
    assert all(folds[i] == folds[i + 1] for i in range(0, len(ds), 2))  # turns share a fold
    assert len({conversation_key(it) for it in ds.items}) == 60
    fit = crossfit_predictions(ds, k=3, folds=folds)
    assert len(fit.targets) == 3 and fit.keep.shape == (len(ds),)
    assert apgr(ds.scores(ds.weak), ds.scores(ds.strong), fit.keep) > 0.7


# -- the ridge baseline -----------------------------------------------------------------------
def test_ridge_text_baseline_predicts_and_crossfits() -> None:
    ds = make_dataset(60)
    ridge = RidgeTextPredictor().fit_dataset(ds)
    math_req = Sample(request="Please help with this integral number 3", task="math").to_request()
    chat_req = Sample(request="Please help with this poem number 4", task="writing").to_request()
    low, high = ridge.predict(math_req), ridge.predict(chat_req)
    assert low.expected_score < high.expected_score and low.scale.name == "ten" and ridge.version.startswith("ridge-")
    keep = crossfit_scores(ds, lambda: RidgeTextPredictor(mode="draft"), k=3, mode="draft")
    assert apgr(ds.scores(ds.weak), ds.scores(ds.strong), keep) > 0.7
    with pytest.raises(PredictorError, match="not trained"):
        RidgeTextPredictor().keep_scores([Sample(request="x")])
    with pytest.raises(PredictorError, match="needs a draft"):
        RidgeTextPredictor(mode="draft").fit_dataset(ds).predict(math_req)
    with pytest.raises(ConfigError, match="alpha"):
        RidgeTextPredictor(alpha=0)


def test_point_distribution_has_the_prediction_as_its_mean() -> None:
    scale = GradeScale.ten_point()
    for value in (0.0, 3.4, 7.0, 9.99, 12.0):
        dist = point_distribution(scale, value)
        assert scale.expected(dist) == pytest.approx(min(max(value, 1.0), 10.0))


def test_scores_off_the_scale_are_refused_not_clipped() -> None:
    """1-10 judge scores given without their scale would all clip to the top label and train nothing."""
    samples = [Sample(f"question {i} about {'math' if i % 2 else 'art'}") for i in range(30)]
    judged = np.array([3.0, 8.0] * 15)
    with pytest.raises(ConfigError, match=r"scores range from 3 to 8, outside the scale 'paper3'.*GradeScale\.integer"):
        LearnedPredictor().fit(samples, judged)
    with pytest.raises(ConfigError, match="large_scores range from 2 to 12"):
        LearnedPredictor(scale=GradeScale.integer(1, 10, acceptable=7)).fit(
            samples, judged, large_scores=np.array([2.0, 12.0] * 15)
        )
    with pytest.raises(ConfigError, match="outside the scale"):
        RidgeTextPredictor().fit(samples, judged)
    # on its scale, with unjudged (NaN) items, it trains; no_worse compares the two scores on any scale
    with_gaps = judged.copy()
    with_gaps[:4] = np.nan
    assert LearnedPredictor(scale=GradeScale.integer(1, 10, acceptable=7)).fit(samples, with_gaps).fitted
    assert LearnedPredictor(target="no_worse").fit(samples, judged, large_scores=np.full(30, 5.0)).fitted
    GradeScale.paper().check_scores([0.0, 0.5, 1.0, float("nan")])  # no error
