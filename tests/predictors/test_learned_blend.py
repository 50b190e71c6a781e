"""The second-stage members folded into the learned head (ridge, draft length, gain head): exact dual ridge, fallback to the head, save/load."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import Ridge

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.predictors._blend import (
    GAIN_WEIGHT,
    PCR_BLOCK,
    PCR_RANKS,
    PCR_WEIGHT,
    choose_member,
    fit_ridge,
    length_column,
    ridge_columns,
    ridge_oof,
)
from rpra_agent.predictors._ordinal import OrdinalLogit
from rpra_agent.predictors._select import target_positions
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


def _pcr_reference(X: sparse.csr_matrix, y: np.ndarray, train: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    """Principal-component regression written out: centre, SVD, ridge on the top ``k`` component scores."""
    dense = X.toarray()
    mean = dense[train].mean(axis=0)
    _, _, vt = np.linalg.svd(dense[train] - mean, full_matrices=False)
    scores = (dense - mean) @ vt[:k].T
    return Ridge(alpha=1.0, tol=1e-12).fit(scores[train], y[train]).predict(scores[test])


def test_the_principal_component_member_is_ridge_on_the_top_components() -> None:
    rng = np.random.default_rng(5)
    X = sparse.random(90, 400, density=0.05, random_state=7, format="csr")
    y = rng.normal(size=90)
    fold = fold_ids(90, 3, 1)
    one = ridge_oof(X, y, fold, ranks=(5,))
    two = ridge_oof(X, y, fold, ranks=(5, 30))
    for f in range(3):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        five, thirty = _pcr_reference(X, y, train, test, 5), _pcr_reference(X, y, train, test, 30)
        np.testing.assert_allclose(one[test], five, atol=1e-8)
        np.testing.assert_allclose(two[test], (five + thirty) / 2, atol=1e-8)  # one fit per rank, averaged
    # at full rank (more columns than rows) it is the plain ridge; a rank past the data's is capped
    np.testing.assert_allclose(ridge_oof(X, y, fold, ranks=(10**6,)), ridge_oof(X, y, fold), atol=1e-8)
    # linear in X, so it folds into the head: the primal weights reproduce the dual predictions
    coef, intercept = fit_ridge(X, y, ranks=(5, 30))
    rows = np.arange(90)
    expected = (_pcr_reference(X, y, rows, rows, 5) + _pcr_reference(X, y, rows, rows, 30)) / 2
    np.testing.assert_allclose(np.asarray(X @ coef).ravel() + intercept, expected, atol=1e-8)
    assert not np.allclose(one, ridge_oof(X, y, fold), atol=1e-3)  # and it is not the ridge at low rank


def test_many_rows_take_a_truncated_svd_and_a_ridge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the dual's row limit the member is scikit-learn's TruncatedSVD (uncentred) + Ridge, per rank."""
    from sklearn.decomposition import TruncatedSVD

    from rpra_agent.predictors import _blend

    monkeypatch.setattr(_blend, "_DUAL_MAX_ROWS", 10)
    rng = np.random.default_rng(2)
    X = sparse.random(80, 300, density=0.05, random_state=4, format="csr")
    y = rng.normal(size=80)
    coef, intercept = fit_ridge(X, y, ranks=(4, 12))
    svd = TruncatedSVD(12, random_state=0).fit(X)
    Z = svd.transform(X)
    expected = np.mean([Ridge(alpha=1.0).fit(Z[:, :k], y).predict(Z[:, :k]) for k in (4, 12)], axis=0)
    np.testing.assert_allclose(np.asarray(X @ coef).ravel() + intercept, expected, atol=1e-8)


def test_a_useless_member_is_left_out_and_a_useful_one_kept() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    head = y + 0.3 * rng.normal(size=200)

    def rank(keep: np.ndarray) -> float:
        return spearman(y, keep)

    def member(oof: np.ndarray, weight: float = 0.25, tolerance: float = 0.07) -> Any:
        return choose_member("ridge", head, rank(head), oof, rank, weight=weight, tolerance=tolerance)

    useless = member(rng.normal(size=200))
    assert not useless.used and useless.scale == 0.0
    assert useless.record()["used"] is False and useless.record()["inner"] < 0.3
    useful = member(y + 0.3 * rng.normal(size=200))
    assert useful.used and useful.scale == pytest.approx(0.25 * np.std(head) / np.std(useful.oof))
    assert not member(y, weight=0.0).used
    assert not member(np.ones(200)).used  # a constant member carries nothing
    # a negative tolerance: it must route better than the head
    assert not member(y + 0.3 * rng.normal(size=200) + 0.1 * rng.normal(size=200), tolerance=-0.05).used
    assert member(y, tolerance=-0.01).used


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
    head = LearnedPredictor(scale=TEN, ridge_weight=0.0, pcr_weight=0.0).fit(samples, scores)
    blend = blended.training["blend"]
    assert blend["used"] == [] and blend["ridge"]["used"] is False and blend["pcr"]["used"] is False
    assert blend["ridge"]["inner"] < blend["ridge"]["needed"] < blend["head_inner"]
    assert head.training["blend"]["used"] == [] and not {"ridge", "pcr"} & set(head.training["blend"])
    np.testing.assert_array_equal(blended.predict_proba(samples), head.predict_proba(samples))
    assert blended.version == head.version


def test_a_kept_member_is_folded_into_the_heads_weights_and_survives_save_and_load(tmp_path) -> None:
    samples, scores = _word_signal()
    blended = LearnedPredictor(scale=TEN, pcr_weight=0.0).fit(samples, scores)
    head = LearnedPredictor(scale=TEN, ridge_weight=0.0, pcr_weight=0.0).fit(samples, scores)
    assert blended.training["blend"]["used"] == ["ridge"] and blended.training["blend"]["ridge"]["scale"] > 0
    assert blended.version != head.version
    cols = ridge_columns(blended.featurizer, blended.model.beta.shape[0])
    X = blended.featurizer.transform(samples)
    coef, intercept = fit_ridge(X[:, cols], np.asarray(scores) - 1.0)
    delta = blended.model.score(X) / blended.training["blend"]["spread"] - head.model.score(X)
    c = blended.training["blend"]["ridge"]["scale"]
    # beta_blend = a * (beta_head + c * ridge_coef) on the char columns (c rounded in the record; a: the recalibration)
    np.testing.assert_allclose(delta, c * np.asarray(X[:, cols] @ coef).ravel(), rtol=1e-3, atol=1e-4)
    assert np.isfinite(intercept)
    loaded = LearnedPredictor.load(blended.save(tmp_path / "art"))
    np.testing.assert_array_equal(loaded.predict_proba(samples), blended.predict_proba(samples))
    assert loaded.training["blend"] == blended.training["blend"] and loaded.version == blended.version
    keep = blended.keep_scores(samples)
    assert spearman(scores, keep) > 0.8


def test_the_principal_component_member_joins_by_default_and_is_folded_in(tmp_path) -> None:
    samples, scores = _word_signal()
    assert PCR_WEIGHT > 0 and PCR_BLOCK == "text"
    pcr = LearnedPredictor(scale=TEN, ridge_weight=0.0).fit(samples, scores)
    head = LearnedPredictor(scale=TEN, ridge_weight=0.0, pcr_weight=0.0).fit(samples, scores)
    blend = pcr.training["blend"]
    assert blend["used"] == ["pcr"] and blend["pcr"]["inner"] >= blend["pcr"]["needed"]
    assert blend["pcr"]["weight"] == PCR_WEIGHT and pcr.version != head.version
    X = pcr.featurizer.transform(samples)
    cols = ridge_columns(pcr.featurizer, X.shape[1], PCR_BLOCK)
    coef, _ = fit_ridge(X[:, cols], np.asarray(scores) - 1.0, ranks=PCR_RANKS)
    np.testing.assert_allclose(
        pcr.model.score(X) / blend["spread"] - head.model.score(X),
        blend["pcr"]["scale"] * np.asarray(X[:, cols] @ coef).ravel(),
        rtol=1e-3,
        atol=1e-4,
    )
    loaded = LearnedPredictor.load(pcr.save(tmp_path / "pcr"))
    np.testing.assert_array_equal(loaded.predict_proba(samples), pcr.predict_proba(samples))
    both = LearnedPredictor(scale=TEN).fit(samples, scores)  # the default: the ridge and the pcr members
    assert both.training["blend"]["used"] == ["ridge", "pcr"]


def test_the_principal_component_member_is_not_tried_on_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from rpra_agent.predictors import _select

    samples, scores = _word_signal()
    assert "pcr" in LearnedPredictor(scale=TEN).fit(samples, scores).training["blend"]
    monkeypatch.setattr(_select, "PCR_MAX_ROWS", 100)  # fewer than the 120 training rows
    fitted = LearnedPredictor(scale=TEN).fit(samples, scores)
    assert "pcr" not in fitted.training["blend"] and fitted.training["blend"]["used"] == ["ridge"]


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.25"])
@pytest.mark.parametrize("option", ["ridge_weight", "length_weight", "gain_weight", "pcr_weight"])
def test_a_bad_member_weight_is_a_config_error(option: str, bad: object) -> None:
    with pytest.raises(ConfigError, match=option):
        LearnedPredictor(**{option: bad})  # type: ignore[arg-type]


def _length_signal(n: int = 150, seed: int = 0, *, signal: bool = True) -> tuple[list[Sample], list[float]]:
    """Drafts of random words and lengths; with ``signal`` the longer drafts score higher."""
    rng = random.Random(seed)
    samples, scores = [], []
    for i in range(n):
        words = rng.randint(3, 300)
        draft = " ".join(rng.choice(_WORDS) for _ in range(words))
        request = " ".join(rng.choice(_WORDS) for _ in range(8)) + f" {i}"
        samples.append(Sample(request=request, draft=draft))
        base = 2 + 7 * words / 300 if signal else rng.uniform(2, 9)
        scores.append(float(np.clip(round(base + rng.choice([-1, 0, 1])), 1, 10)))
    return samples, scores


def test_the_draft_length_joins_only_where_it_routes_as_well_as_the_head(tmp_path) -> None:
    samples, scores = _length_signal()
    draft = LearnedPredictor(scale=TEN, mode="draft").fit(samples, scores)
    blend = draft.training["blend"]
    assert "length" in blend["used"] and blend["length"]["inner"] >= blend["head_inner"]
    col = length_column(draft.featurizer)
    assert col is not None and draft.featurizer.config()["weights"]["cues"] > 0
    loaded = LearnedPredictor.load(draft.save(tmp_path / "draft"))
    np.testing.assert_array_equal(loaded.predict_proba(samples), draft.predict_proba(samples))
    noise = LearnedPredictor(scale=TEN, mode="draft").fit(*_length_signal(signal=False))
    assert "length" not in noise.training["blend"]["used"]
    request = LearnedPredictor(scale=TEN).fit(samples, scores)
    assert "length" not in request.training["blend"] and length_column(request.featurizer) is None


def test_a_featurizer_without_word_blocks_lets_the_ridge_read_every_column() -> None:
    featurizer = TextFeaturizer(chars=None)
    featurizer.fit(_word_signal(20)[0], draft=False)
    width = sum(end - start for start, end in featurizer.blocks().values())
    assert list(ridge_columns(featurizer, width)) == list(range(*featurizer.blocks()["request"]))
    assert list(ridge_columns(object(), 7)) == list(range(7))


def test_the_ridge_member_can_read_the_character_blocks(tmp_path) -> None:
    """``ridge_block`` picks the member's columns: chars (the default), words + chars, or words when there are no chars."""
    samples, scores = _word_signal()
    featurizer = TextFeaturizer()
    featurizer.fit(samples, draft=False)
    ranges = featurizer.blocks()
    width = max(end for _, end in ranges.values())
    assert list(ridge_columns(featurizer, width, "chars")) == list(range(*ranges["request_chars"]))
    text = ridge_columns(featurizer, width, "text")
    assert set(text) == set(range(*ranges["request"])) | set(range(*ranges["request_chars"]))
    no_chars = TextFeaturizer(chars=None)
    no_chars.fit(samples, draft=False)
    assert list(ridge_columns(no_chars, width, "chars")) == list(range(*no_chars.blocks()["request"]))
    assert list(ridge_columns(featurizer, width)) == list(range(*ranges["request_chars"]))  # the default
    chars = LearnedPredictor(scale=TEN, pcr_weight=0.0).fit(samples, scores)
    words = LearnedPredictor(scale=TEN, ridge_block="words", pcr_weight=0.0).fit(samples, scores)
    assert chars.training["blend"]["used"] == ["ridge"] and chars.training["blend"]["ridge"]["block"] == "chars"
    assert words.training["blend"]["ridge"]["block"] == "words" and chars.version != words.version
    X = chars.featurizer.transform(samples)
    head = LearnedPredictor(scale=TEN, ridge_weight=0.0, pcr_weight=0.0).fit(samples, scores)
    unscaled = chars.model.beta / chars.training["blend"]["spread"]
    moved = np.flatnonzero(~np.isclose(unscaled, head.model.beta, rtol=0, atol=1e-6))
    assert set(moved) <= set(ridge_columns(chars.featurizer, X.shape[1], "chars"))  # only the char weights moved
    loaded = LearnedPredictor.load(chars.save(tmp_path / "chars"))
    np.testing.assert_array_equal(loaded.predict_proba(samples), chars.predict_proba(samples))
    with pytest.raises(ConfigError, match="ridge_block must be one of words, chars, text"):
        LearnedPredictor(ridge_block="sentences")


def _two_signals(n: int = 160, seed: int = 0) -> tuple[list[Sample], list[float], list[float]]:
    """The small score follows the 'alpha's; the large score falls where a 'bravo' is, so only the gain sees both.

    The gain head routes a little better on the inner folds, by less than the margin that switches the target.
    """
    rng = random.Random(seed)
    samples, small, large = [], [], []
    for _ in range(n):
        k, j = rng.randint(0, 3), int(rng.random() < 0.3)
        words = ["alpha"] * k + ["bravo"] * j + [rng.choice(_WORDS[2:]) for _ in range(8 - k - j)]
        rng.shuffle(words)
        samples.append(Sample(request=" ".join(words)))
        small.append(float(np.clip(3 + k + rng.choice([-1, 0, 1]), 1, 10)))
        large.append(float(np.clip(9 - 2 * j + rng.choice([-1, 0, 1]), 1, 10)))
    return samples, small, large


def test_the_gain_head_joins_the_small_head_where_it_routes_as_well_and_is_folded_in(tmp_path) -> None:
    samples, small, large = _two_signals()
    assert GAIN_WEIGHT == 0.0  # off by default: the shipped figures are measured without it
    kw: dict[str, Any] = {"scale": TEN, "ridge_weight": 0.0, "pcr_weight": 0.0, "Cs": (0.3,)}
    both = LearnedPredictor(gain_weight=0.5, **kw).fit(samples, small, large_scores=large)
    head = LearnedPredictor(**kw).fit(samples, small, large_scores=large)
    blend = both.training["blend"]
    assert both.target == head.target == "small"  # better, but not by the margin that switches the target
    assert blend["used"] == ["gain"] and blend["gain"]["inner"] >= blend["head_inner"]
    assert "gain" not in head.training["blend"] and both.version != head.version
    # beta = beta_small + c * beta_gain, the gain head refitted on every row at its recorded C
    X = both.featurizer.transform(samples)
    gain_scale, positions = target_positions("auto", TEN, np.array(small), np.array(large))["gain"]
    gain = OrdinalLogit(len(gain_scale.labels), Cs=(0.3,))
    gain.fit_fixed(X, positions, blend["gain"]["C"])
    np.testing.assert_allclose(
        both.model.score(X) / blend["spread"] - head.model.score(X),
        blend["gain"]["scale"] * gain.score(X),
        rtol=1e-3,
        atol=1e-4,
    )
    # the blend sees the large model's weakness: it keeps the bravo-heavy requests higher than the small head does
    bravo = np.array([s.request.count("bravo") for s in samples], dtype=float)
    assert spearman(bravo, both.keep_scores(samples) - head.keep_scores(samples)) > 0.5
    loaded = LearnedPredictor.load(both.save(tmp_path / "gain"))
    np.testing.assert_array_equal(loaded.predict_proba(samples), both.predict_proba(samples))
    assert loaded.training["blend"] == blend


def test_the_gain_member_needs_the_auto_target_and_a_positive_weight() -> None:
    samples, small, large = _two_signals()
    kw: dict[str, Any] = {"scale": TEN, "ridge_weight": 0.0, "pcr_weight": 0.0, "Cs": (0.3,)}
    forced = LearnedPredictor(target="small", gain_weight=0.5, **kw).fit(samples, small, large_scores=large)
    assert "gain" not in forced.training["blend"]
    off = LearnedPredictor(gain_weight=0.0, **kw).fit(samples, small, large_scores=large)
    assert "gain" not in off.training["blend"]
    no_large = LearnedPredictor(gain_weight=0.5, **kw).fit(samples, small)
    assert "gain" not in no_large.training["blend"] and no_large.target == "small"
