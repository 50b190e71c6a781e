"""Baselines: exact expectations, and the figures published with the recordings, on the bundled data."""

from __future__ import annotations

import numpy as np
import pytest

from rpra_agent.core.errors import ConfigError
from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.evaluation.metrics import apgr
from rpra_agent.evaluation.metrics.baselines import (
    BASELINES,
    KEEP_SCORERS,
    answer_length_keep_scores,
    baseline_summaries,
    category_keep_scores,
    dataset_baselines,
    keep_scores,
    oracle_keep_scores,
)

# The table of baselines that came with the recorded data (its README; APGR, every point of
# the curve), copied here with its rounding. The oracle on GSM8K is 1.1249 exactly
# (383 items gain, 95 lose, n = 1319), which the README rounds to 1.13: pinned to the
# exact value, and to the README's figure within its rounding.
README = {
    # name: (oracle exact, oracle README, answer length exact, answer length README)
    "mt-bench": (1.02443, 1.02, 0.56346, 0.56),
    "mt-bench-question": (0.96840, 0.97, None, None),
    "gsm8k": (1.12491, 1.13, 0.46597, 0.47),
    "mmlu": (1.28512, 1.29, None, None),
    "arena": (0.87239, 0.87, None, None),
}


@pytest.mark.parametrize("name", list(README))
def test_bundled_baselines_reproduce_the_readme(name):
    oracle_exact, oracle_readme, length_exact, length_readme = README[name]
    rows = {r.name: r for r in dataset_baselines(load_dataset(name))}
    assert rows["random"].apgr == pytest.approx(0.5, abs=1e-9)  # README: 0.48-0.50 (sampled)
    assert rows["oracle"].apgr == pytest.approx(oracle_exact, abs=5e-5)
    assert abs(rows["oracle"].apgr - oracle_readme) <= 0.0051
    if length_exact is not None:
        assert rows["answer_length"].apgr == pytest.approx(length_exact, abs=5e-5)
        assert round(rows["answer_length"].apgr, 2) == length_readme
    fixed = {r.name: r for r in rows.values() if r.kind == "fixed"}
    assert fixed["always_small"].deferral_rate == 0.0 and fixed["always_large"].deferral_rate == 1.0


def test_mt_bench_fixed_points_and_cpt():
    ds = load_dataset("mt-bench")
    rows = {r.name: r for r in dataset_baselines(ds)}
    assert rows["always_small"].quality == pytest.approx(np.mean(ds.scores(ds.weak)))
    assert rows["always_large"].quality == pytest.approx(np.mean(ds.scores(ds.strong)))
    assert (rows["random"].cpt50, rows["random"].cpt80) == pytest.approx((0.5, 0.8))
    assert rows["oracle"].cpt50 < rows["answer_length"].cpt50 < rows["random"].cpt50 + 0.01


def test_baseline_summaries_without_texts_skip_answer_length():
    names = [r.name for r in baseline_summaries([0, 1, 0], [1, 1, 1])]
    assert names == [b for b in BASELINES if b != "answer_length"]
    assert [r.name for r in baseline_summaries([0, 1], [1, 1], ["a", "bb"])][-1] == "answer_length"


def test_oracle_and_length_keep_scores():
    np.testing.assert_array_equal(oracle_keep_scores([1, 5], [3, 2]), [-2, 3])
    np.testing.assert_array_equal(answer_length_keep_scores(["ab", "", "xyz"]), [2, 0, 3])
    with pytest.raises(ValueError, match="text"):
        answer_length_keep_scores(["a", None])


def test_category_keep_scores_are_cross_fitted():
    cats = ["a"] * 10 + ["b"] * 10
    weak = [10] * 10 + [1] * 10
    keep = category_keep_scores(cats, weak, acceptable=7, folds=5, seed=0)
    assert keep.min() >= 0 and keep.max() <= 1
    assert keep[:10].min() > 0.8 and keep[10:].max() < 0.2
    # Changing an item's own score never changes its own keep-score.
    for i in (0, 15):
        flipped = list(weak)
        flipped[i] = 1 if weak[i] == 10 else 10
        assert category_keep_scores(cats, flipped, acceptable=7)[i] == keep[i]


def test_category_keep_scores_keep_a_conversation_in_one_fold():
    """With groups, another turn of the item's conversation never informs its keep-score either."""
    cats = ["a"] * 20
    weak = [10, 1] * 10
    groups = [f"conversation {i // 2}" for i in range(20)]  # turns 2i and 2i+1 share a conversation
    keep = category_keep_scores(cats, weak, acceptable=7, folds=5, seed=0, groups=groups)
    for i in range(0, 20, 2):
        flipped = list(weak)
        flipped[i + 1] = 10  # the sibling turn's score
        assert category_keep_scores(cats, flipped, acceptable=7, folds=5, seed=0, groups=groups)[i] == keep[i]
    # without groups the sibling lands in another fold for some conversation, and leaks
    plain = category_keep_scores(cats, weak, acceptable=7, folds=5, seed=0)
    leaks = 0
    for i in range(0, 20, 2):
        flipped = list(weak)
        flipped[i + 1] = 10
        leaks += category_keep_scores(cats, flipped, acceptable=7, folds=5, seed=0)[i] != plain[i]
    assert leaks > 0
    # one conversation: too few groups to cross-fit, every item gets the uninformed 0.5
    assert category_keep_scores(["a", "a"], [10, 1], acceptable=7, groups=["c", "c"]).tolist() == [0.5, 0.5]


def test_keep_scores_registry():
    ds = load_dataset("gsm8k")
    scores, metric = keep_scores(ds, "length")
    assert metric == "answer_chars" and len(scores) == len(ds)
    assert set(KEEP_SCORERS) >= {"category", "length", "random", "oracle"}
    with pytest.raises(ConfigError, match="unknown keep-score"):
        keep_scores(ds, "magic")
    with pytest.raises(ConfigError, match="cannot run on dataset 'mmlu'"):
        keep_scores(load_dataset("mmlu"), "length")
    cat, metric = keep_scores(load_dataset("mt-bench"), "category")
    assert metric == "p_acceptable"
    ds_mt = load_dataset("mt-bench")
    assert apgr(ds_mt.scores(ds_mt.weak), ds_mt.scores(ds_mt.strong), cat) > 0.6
