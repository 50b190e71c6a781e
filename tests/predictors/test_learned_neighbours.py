"""The learned predictor's neighbour member: kNN over the requests' embeddings, gated, kept beside the weights.

The fast tests give the predictor a stand-in embedding model (an ``_EmbeddingFeaturizer``
whose ``embed`` is a table lookup, defined here: fakes live in tests), so what the
embeddings know is set by the test: a hidden property of each request that the TF-IDF
cannot read. ``tests/predictors/test_sentence_model.py`` runs the real model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.evaluation.metrics import apgr
from rpra_agent.predictors._blend import neighbour_oof, neighbour_values, unit_rows
from rpra_agent.predictors._featurebase import Sample, register_featurizer
from rpra_agent.predictors.embeddings import _EmbeddingFeaturizer
from rpra_agent.predictors.features import TextFeaturizer
from rpra_agent.predictors.folds import fold_ids
from rpra_agent.predictors.learned import LearnedPredictor

SCALE = GradeScale.integer(1, 10, acceptable=7)


@register_featurizer("test_lookup_embedding")
class LookupEmbedding(_EmbeddingFeaturizer):
    """A stand-in embedding model: each text's vector is looked up (unknown texts: a fixed random vector)."""

    kind = "test_lookup_embedding"

    def __init__(self, table: Mapping[str, np.ndarray], width: int = 8) -> None:
        super().__init__()
        self.table, self.width, self.calls = dict(table), width, 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        rng = np.random.default_rng(7)
        fallback = rng.normal(size=self.width)
        return np.array([self.table.get(t, fallback) for t in texts], dtype=np.float64).reshape(len(texts), -1)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_chars": self.max_chars, "draft": self.draft, "width": self.width}

    @classmethod
    def from_state(
        cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], **resources: Any
    ) -> LookupEmbedding:
        self = cls(resources.get("table", {}), width=int(config["width"]))
        self._restore(config, arrays)
        return self


def _hidden_property_data(
    n: int = 240, seed: int = 0
) -> tuple[list[Sample], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Requests whose score follows a hidden 'difficulty' that only the embedding table knows.

    The text is a random string of common words plus an id: the TF-IDF sees nothing that
    carries the score. Each request's embedding is its difficulty's direction plus noise.
    """
    rng = np.random.default_rng(seed)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "theta", "kappa"]
    centres = unit_rows(np.random.default_rng(99).normal(size=(4, 8)))  # the same directions in every draw
    samples, small, large, table = [], [], [], {}
    for i in range(n):
        hard = int(rng.integers(4))
        text = " ".join(rng.choice(words, 6)) + f" item{i}"
        samples.append(Sample(request=text))
        table[text] = centres[hard] + 0.3 * rng.normal(size=8)
        small.append(float(np.clip(9 - 2 * hard + rng.normal(scale=0.8), 1, 10).round()))
        large.append(9.0)
    return samples, np.array(small), np.array(large), table


def test_neighbour_values_is_the_similarity_weighted_mean_of_the_k_most_similar() -> None:
    rng = np.random.default_rng(1)
    train, query, y = unit_rows(rng.normal(size=(30, 5))), unit_rows(rng.normal(size=(4, 5))), rng.normal(size=30)
    got = neighbour_values(query, train, y, 7)
    for row, q in zip(got, query, strict=True):
        sims = train @ q
        top = np.argsort(-sims)[:7]
        w = np.clip(sims[top], 0, None) + 1e-6
        assert row == pytest.approx(float((w * y[top]).sum() / w.sum()))
    assert neighbour_values(query, train, y, 500) == pytest.approx(neighbour_values(query, train, y, 30))


def test_out_of_fold_neighbours_never_read_their_own_fold() -> None:
    rng = np.random.default_rng(2)
    vectors, y = unit_rows(rng.normal(size=(40, 6))), rng.normal(size=40)
    fold = fold_ids(40, 4, 0)
    base = neighbour_oof(vectors, y, fold, 5)
    moved = y.copy()
    moved[fold == 0] += 1000.0  # the labels of fold 0 change: fold 0's own values must not
    again = neighbour_oof(vectors, moved, fold, 5)
    np.testing.assert_allclose(again[fold == 0], base[fold == 0])
    assert not np.allclose(again[fold != 0], base[fold != 0])


def test_the_member_joins_where_the_embeddings_know_what_the_text_does_not() -> None:
    samples, small, large, table = _hidden_property_data()
    test_samples, test_small, test_large, test_table = _hidden_property_data(120, seed=1)
    table.update(test_table)
    plain = LearnedPredictor(scale=SCALE).fit(samples, small, large_scores=large)
    embedder = LookupEmbedding(table)
    with_knn = LearnedPredictor(scale=SCALE, neighbours=embedder).fit(samples, small, large_scores=large)
    blend = with_knn.training["blend"]
    assert "knn" in blend["used"] and blend["knn"]["k"] == 20 and blend["knn"]["inner"] > blend["head_inner"]
    assert with_knn.knn is not None and with_knn.knn.vectors.shape == (240, 8)
    assert embedder.calls == 240  # the training requests were embedded once
    gained = apgr(test_small, test_large, with_knn.keep_scores(test_samples))
    alone = apgr(test_small, test_large, plain.keep_scores(test_samples))
    assert alone < 0.56 and gained > alone + 0.08, (alone, gained)  # held-out items, unseen by either
    assert with_knn.version != plain.version


def test_a_useless_embedding_is_left_out_and_changes_no_prediction() -> None:
    samples, small, large, _ = _hidden_property_data()
    rng = np.random.default_rng(3)
    # The text now carries the score (a word per difficulty); the embeddings are noise.
    texts = [f"{s.request} level{int(9 - v) // 2}" for s, v in zip(samples, small, strict=True)]
    samples = [Sample(request=t) for t in texts]
    noise = {t: rng.normal(size=8) for t in texts}
    plain = LearnedPredictor(scale=SCALE).fit(samples, small, large_scores=large)
    gated = LearnedPredictor(scale=SCALE, neighbours=LookupEmbedding(noise)).fit(samples, small, large_scores=large)
    assert "knn" not in gated.training["blend"]["used"] and gated.knn is None
    assert gated.training["blend"]["knn"]["used"] is False
    np.testing.assert_array_equal(gated.keep_scores(samples[:20]), plain.keep_scores(samples[:20]))


def test_save_and_load_keep_the_member_and_say_when_the_embedding_model_differs(tmp_path: Path) -> None:
    samples, small, large, table = _hidden_property_data()
    fitted = LearnedPredictor(scale=SCALE, neighbours=LookupEmbedding(table)).fit(samples, small, large_scores=large)
    fitted.save(tmp_path / "a")
    loaded = LearnedPredictor.load(tmp_path / "a", table=table)
    assert loaded.version == fitted.version and loaded.knn is not None
    np.testing.assert_allclose(loaded.keep_scores(samples[:30]), fitted.keep_scores(samples[:30]), rtol=1e-6)
    request = PredictionRequest(messages=[HumanMessage(samples[0].request)])
    assert loaded.predict(request).expected_score == pytest.approx(fitted.predict(request).expected_score, rel=1e-6)
    # Another embedding model (another width) is named, not silently compared.
    wide = {t: np.concatenate([v, v]) for t, v in table.items()}
    other = LearnedPredictor.load(tmp_path / "a", table=wide)
    other.neighbours.width = 16  # type: ignore[union-attr]
    with pytest.raises(PredictorError, match="gives 16 dimensions, the neighbour member was trained on 8"):
        other.predict(request)


async def test_the_async_path_embeds_in_a_thread_and_agrees() -> None:
    samples, small, large, table = _hidden_property_data()
    fitted = LearnedPredictor(scale=SCALE, neighbours=LookupEmbedding(table)).fit(samples, small, large_scores=large)
    request = PredictionRequest(messages=[HumanMessage(samples[3].request)])
    assert (await fitted.apredict(request)).distribution == fitted.predict(request).distribution


def test_repeated_texts_are_embedded_once() -> None:
    samples, _, _, table = _hidden_property_data(30)
    embedder = LookupEmbedding(table)
    first = embedder.vectors(samples)
    again = embedder.vectors(list(reversed(samples)))
    assert embedder.calls == 30
    np.testing.assert_allclose(again, first[::-1], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"neighbours": TextFeaturizer()}, "neighbours must be an embedding featurizer"),
        ({"knn_k": 0}, "knn_k must be a positive integer"),
        ({"knn_k": 2.5}, "knn_k must be a positive integer"),
        ({"knn_weight": -1.0}, "knn_weight must be a finite number >= 0"),
    ],
)
def test_bad_neighbour_options_are_config_errors(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        LearnedPredictor(**options)


def test_draft_mode_leaves_the_member_out_unless_asked() -> None:
    samples, small, large, table = _hidden_property_data(120)
    drafted = [Sample(request=s.request, draft=f"answer {i}") for i, s in enumerate(samples)]
    default = LearnedPredictor(scale=SCALE, mode="draft", neighbours=LookupEmbedding(table))
    default.fit(drafted, small, large_scores=large)
    assert "knn" not in default.training["blend"] and default.knn is None
    asked = LearnedPredictor(scale=SCALE, mode="draft", neighbours=LookupEmbedding(table), knn_weight=1.0)
    asked.fit(drafted, small, large_scores=large)
    assert "knn" in asked.training["blend"]["used"]
