"""The ridge member folded into the learned head: exact dual ridge, fallback to the head, save/load."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import Ridge

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.predictors._blend import choose_ridge, fit_ridge, ridge_oof, word_columns
from rpra_agent.predictors.features import Sample, TextFeaturizer
from rpra_agent.predictors.folds import fold_ids
from rpra_agent.predictors.learned import LearnedPredictor
from rpra_agent.predictors.ranking import spearman

TEN = GradeScale.ten_point()
_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


def test_dual_ridge_is_scikit_learns_ridge() -> None:
    rng = np.random.default_rng(0)
    X = sparse.random(120, 900, density=0.02, random_state=3, format="csr")
    y = rng.normal(size=120)
    coef, intercept = fit_ridge(X, y, alpha=1.0)
    reference = Ridge(alpha=1.0, tol=1e-12).fit(X, y)
    np.testing.assert_allclose(coef, reference.coef_, atol=1e-8)
    assert intercept == pytest.approx(float(reference.intercept_), abs=1e-8)
    fold = fold_ids(120, 3, 0)
    oof = ridge_oof(X, y, fold)
    for f in range(3):
        train, test = fold != f, fold == f
        expected = Ridge(alpha=1.0, tol=1e-12).fit(X[train], y[train]).predict(X[test])
        np.testing.assert_allclose(oof[test], expected, atol=1e-8)


def test_a_useless_member_is_left_out_and_a_useful_one_kept() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    head = y + 0.3 * rng.normal(size=200)

    def rank(keep: np.ndarray) -> float:
        return spearman(y, keep)

    useless = choose_ridge(head, rank(head), rng.normal(size=200), rank)
    assert not useless.used and useless.scale == 0.0
    assert useless.record()["ridge"] is False and useless.record()["ridge_inner"] < 0.3
    useful = choose_ridge(head, rank(head), y + 0.3 * rng.normal(size=200), rank)
    assert useful.used and useful.scale > 0
    assert not choose_ridge(head, rank(head), y, rank, weight=0.0).used
    assert not choose_ridge(head, rank(head), np.ones(200), rank).used  # a constant member carries nothing


def _task_only(n: int = 120, seed: int = 0) -> tuple[list[Sample], list[float]]:
    """The task tag decides the score; the words are noise (so a words-only ridge cannot route)."""
    rng = random.Random(seed)
    samples, scores = [], []
    for i in range(n):
        hard = i % 2 == 0
        words = " ".join(rng.choice(_WORDS) for _ in range(6))
        samples.append(Sample(request=f"{words} {i}", task="hard" if hard else "easy"))
        scores.append(float(rng.randint(2, 3) if hard else rng.randint(8, 9)))
    return samples, scores


def _word_signal(n: int = 120, seed: int = 0) -> tuple[list[Sample], list[float]]:
    """The score follows how many 'alpha's the request holds; no task tag."""
    rng = random.Random(seed)
    samples, scores = [], []
    for _ in range(n):
        k = rng.randint(0, 4)
        words = ["alpha"] * k + [rng.choice(_WORDS[1:]) for _ in range(6 - k)]
        rng.shuffle(words)
        samples.append(Sample(request=" ".join(words)))
        scores.append(float(np.clip(2 + 2 * k + rng.choice([-1, 0, 1]), 1, 10)))
    return samples, scores


def test_the_blend_falls_back_to_the_head_when_the_ridge_cannot_route() -> None:
    samples, scores = _task_only()
    blended = LearnedPredictor(scale=TEN).fit(samples, scores)
    head = LearnedPredictor(scale=TEN, ridge_weight=0.0).fit(samples, scores)
    blend = blended.training["blend"]
    assert blend["ridge"] is False and blend["ridge_inner"] < blend["head_inner"] - blend["tolerance"]
    assert head.training["blend"] == {"ridge": False}
    np.testing.assert_array_equal(blended.predict_proba(samples), head.predict_proba(samples))
    assert blended.version == head.version


def test_a_kept_member_is_folded_into_the_heads_weights_and_survives_save_and_load(tmp_path) -> None:
    samples, scores = _word_signal()
    blended = LearnedPredictor(scale=TEN).fit(samples, scores)
    head = LearnedPredictor(scale=TEN, ridge_weight=0.0).fit(samples, scores)
    assert blended.training["blend"]["ridge"] is True and blended.training["blend"]["scale"] > 0
    assert blended.version != head.version
    cols = word_columns(blended.featurizer, blended.model.beta.shape[0])
    X = blended.featurizer.transform(samples)
    coef, intercept = fit_ridge(X[:, cols], np.asarray(scores) - 1.0)
    delta = blended.model.score(X) - head.model.score(X)
    c = blended.training["blend"]["scale"]
    # beta_blend = beta_head + c * ridge_coef on the word columns (c rounded in the record)
    np.testing.assert_allclose(delta, c * np.asarray(X[:, cols] @ coef).ravel(), rtol=1e-3, atol=1e-4)
    assert np.isfinite(intercept)
    loaded = LearnedPredictor.load(blended.save(tmp_path / "art"))
    np.testing.assert_array_equal(loaded.predict_proba(samples), blended.predict_proba(samples))
    assert loaded.training["blend"] == blended.training["blend"] and loaded.version == blended.version
    keep = blended.keep_scores(samples)
    assert spearman(scores, keep) > 0.8


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.25"])
def test_a_bad_ridge_weight_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="ridge_weight"):
        LearnedPredictor(ridge_weight=bad)  # type: ignore[arg-type]


def test_a_featurizer_without_word_blocks_lets_the_ridge_read_every_column() -> None:
    featurizer = TextFeaturizer(chars=None)
    featurizer.fit(_word_signal(20)[0], draft=False)
    width = sum(end - start for start, end in featurizer.blocks().values())
    assert list(word_columns(featurizer, width)) == list(range(*featurizer.blocks()["request"]))
    assert list(word_columns(object(), 7)) == list(range(7))
