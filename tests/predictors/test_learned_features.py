"""Featurizers: cues, TF-IDF / hashing, unions, llama.cpp embeddings on a synthesized GGUF, sentence-transformers."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.predictors._cues import DRAFT_CUES, REQUEST_CUES, arithmetic_check, draft_cues, request_cues
from rpra_agent.predictors.embeddings import LlamaEmbeddingFeaturizer, SentenceTransformerFeaturizer
from rpra_agent.predictors.features import FeatureUnion, Sample, TextFeaturizer, featurizer_from_state, fit_features
from rpra_agent.predictors.learned import LearnedPredictor
from tests.predictors.learned_data import make_samples


@pytest.mark.parametrize(
    ("text", "right", "wrong"),
    [
        ("3 * 4 = 12 and 5 + 5 = 11", 1, 1),
        ("<<80000+50000=130000>>130000", 1, 0),
        ("It costs 2 x 3 = $6, then 6 / 4 = 1.5", 2, 0),
        ("10 / 0 = 3", 0, 0),  # not evaluable: ignored
        ("no arithmetic here", 0, 0),
    ],
)
def test_arithmetic_check(text: str, right: int, wrong: int) -> None:
    assert arithmetic_check(text) == (right, wrong)


def test_cues_describe_requests_and_drafts() -> None:
    req = request_cues("How many apples? def f(): return 2")
    assert len(req) == len(REQUEST_CUES)
    named = dict(zip(REQUEST_CUES, req, strict=True))
    assert named["has_code"] == 1.0 and named["has_question_word"] == 1.0 and named["has_math_word"] == 1.0
    d = dict(zip(DRAFT_CUES, draft_cues("I'm sorry, but 2 + 2 = 5 so the answer is", "q"), strict=True))
    assert len(d) == len(DRAFT_CUES)
    assert d["draft_refuses"] == 1.0 and d["draft_arithmetic_wrong"] == 1.0 and d["draft_looks_cut_off"] == 1.0
    ok = dict(zip(DRAFT_CUES, draft_cues("Step: 2 + 2 = 4.\n#### 4", "q"), strict=True))
    assert ok["draft_refuses"] == 0.0 and ok["draft_states_final_answer"] == 1.0 and ok["draft_arithmetic_right"] == 1.0
    long = draft_cues("word " * 50000, "q")  # long texts are cut, not slow
    assert long[0] > 10


def test_sample_from_request_splits_request_context_and_draft() -> None:
    req = PredictionRequest(
        messages=(SystemMessage("sys"), HumanMessage("first"), AIMessage("reply"), HumanMessage("second")),
        draft=AIMessage("", tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "1"}]),
        task="qa",
        kind="action",
        tool_names=("search",),
    )
    s = Sample.from_request(req)
    assert s.request == "second" and "user: first" in s.context and "assistant: reply" in s.context
    assert "sys" not in s.context and "tools: search" in s.context
    assert s.draft is not None and "TOOL CALLS" in s.draft and s.task == "qa" and s.kind == "action"
    m = Sample.from_messages(
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    )
    assert m.request == "c" and m.context == "user: a\nassistant: b"


@pytest.mark.parametrize("vectorizer", ["tfidf", "hashing"])
def test_text_featurizer_blocks_and_round_trip(vectorizer: str) -> None:
    samples, _ = make_samples(30)
    f = TextFeaturizer(vectorizer=vectorizer, n_features=256)
    f.fit(samples, draft=True)
    X = f.transform(samples)
    blocks = f.blocks()
    assert list(blocks) == ["request", "draft", "request_chars", "draft_chars", "cues", "task"]
    assert X.shape == (30, blocks["task"][1])
    assert blocks["task"][1] - blocks["task"][0] == 2  # math, writing
    assert np.allclose(X[:, slice(*blocks["task"])].sum(axis=1), 3.0)  # the default task weight
    rebuilt = featurizer_from_state(f.config(), f.state())
    np.testing.assert_array_equal(rebuilt.transform(samples).toarray(), X.toarray())
    unseen = f.transform([Sample(request="zebra quantum", task="unknown-task", draft="")])
    assert unseen[:, slice(*blocks["task"])].sum() == 0  # unknown tag: no one-hot


def test_text_featurizer_weights_scale_blocks_and_bad_config() -> None:
    samples, _ = make_samples(20)
    a, b = TextFeaturizer(weights={"task": 1.0}), TextFeaturizer(weights={"task": 3.0})
    a.fit(samples, draft=False)
    b.fit(samples, draft=False)
    sl = slice(*a.blocks()["task"])
    np.testing.assert_allclose(b.transform(samples)[:, sl].toarray(), 3 * a.transform(samples)[:, sl].toarray())
    with pytest.raises(ConfigError, match="vectorizer"):
        TextFeaturizer(vectorizer="bert")
    with pytest.raises(ConfigError, match="not fitted"):
        TextFeaturizer().transform(samples)
    with pytest.raises(ConfigError, match="unknown featurizer kind"):
        featurizer_from_state({"kind": "magic"}, {})


def test_union_concatenates_and_round_trips() -> None:
    samples, _ = make_samples(20)
    union = FeatureUnion(
        [TextFeaturizer(), TextFeaturizer(vectorizer="hashing", n_features=64, cues=False, task=False, chars=None)]
    )
    union.fit(samples, draft=False)
    X = union.transform(samples)
    assert X.shape[1] == union.parts[0].transform(samples).shape[1] + 64
    rebuilt = featurizer_from_state(union.config(), union.state())
    np.testing.assert_array_equal(rebuilt.transform(samples).toarray(), X.toarray())
    with pytest.raises(ConfigError, match="at least one"):
        FeatureUnion([])


@pytest.mark.parametrize("max_features", [20000, 300])
def test_fit_transform_is_fit_then_transform_from_one_pass(max_features: int) -> None:
    """The one-pass matrix equals the two-pass one on real text, also where min_df and max_features prune."""
    from rpra_agent.evaluation.datasets import load_dataset
    from rpra_agent.predictors._training import dataset_examples

    samples = dataset_examples(load_dataset("arena").judged(), mode="draft")[0][:120]  # type: ignore[arg-type]
    one = TextFeaturizer(max_features=max_features)
    X = one.fit_transform(samples, draft=True)
    two = TextFeaturizer(max_features=max_features)
    two.fit(samples, draft=True)
    assert one.blocks() == two.blocks() and X.shape == (120, max(b for _, b in two.blocks().values()))
    np.testing.assert_allclose(X.toarray(), two.transform(samples).toarray(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(X.toarray(), one.transform(samples).toarray(), rtol=0, atol=1e-12)
    widths = {name: b - a for name, (a, b) in one.blocks().items()}
    assert min(widths.values()) > 0
    if max_features == 300:  # the cap pruned every text block, so the kept columns had to line up
        assert all(widths[name] == 300 for name in ("request", "draft", "request_chars", "draft_chars"))


def test_fit_features_uses_fit_transform_where_there_is_one_and_fit_then_transform_otherwise() -> None:
    samples, _ = make_samples(20)
    calls: list[str] = []

    class Plain:  # the protocol only: fit and transform
        kind = "plain"

        def fit(self, samples, *, draft):  # type: ignore[no-untyped-def]
            calls.append(f"fit draft={draft}")

        def transform(self, samples):  # type: ignore[no-untyped-def]
            calls.append("transform")
            return np.ones((len(samples), 2))

    X = fit_features(Plain(), samples, draft=False)  # type: ignore[arg-type]
    assert calls == ["fit draft=False", "transform"] and X.shape == (20, 2)
    union = FeatureUnion([TextFeaturizer(), Plain()])  # type: ignore[list-item]
    calls.clear()
    X = fit_features(union, samples, draft=True)
    assert calls == ["fit draft=True", "transform"]
    np.testing.assert_allclose(X.toarray(), union.transform(samples).toarray(), rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def llama_featurizer(random_gguf) -> LlamaEmbeddingFeaturizer:  # type: ignore[no-untyped-def]
    pytest.importorskip("llama_cpp")
    return LlamaEmbeddingFeaturizer(random_gguf, n_ctx=128, n_threads=1)


@pytest.mark.llama
def test_llama_embedding_featurizer_on_a_synthesized_gguf(llama_featurizer, random_gguf, tmp_path) -> None:  # type: ignore[no-untyped-def]
    samples, scores = make_samples(16)
    emb = llama_featurizer.embed(["hello world", "a different text", ""])
    assert emb.shape == (3, 64) and np.isfinite(emb).all() and not np.allclose(emb[0], emb[1])
    learned = LearnedPredictor(
        FeatureUnion([TextFeaturizer(), llama_featurizer]), scale=GradeScale.ten_point(), C=1.0, block_grid=None
    ).fit(samples, scores)
    assert learned.featurizer.transform(samples[:2]).shape[1] > 64
    path = learned.save(tmp_path / "llama")
    loaded = LearnedPredictor.load(path, llama_model_path=str(random_gguf))
    np.testing.assert_allclose(loaded.predict_proba(samples), learned.predict_proba(samples), atol=1e-6)
    assert loaded.featurizer.blocking  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="llama_model_path"):
        LearnedPredictor.load(path, llama_model_path=str(tmp_path / "gone.gguf"))


@pytest.mark.llama
def test_llama_embeddings_serve_the_neighbour_member(random_gguf) -> None:  # type: ignore[no-untyped-def]
    """The small model's own llama.cpp embeddings feed the kNN member (random weights here: the plumbing)."""
    pytest.importorskip("llama_cpp")
    samples, scores = make_samples(40)
    embedder = LlamaEmbeddingFeaturizer(random_gguf, n_ctx=128, n_threads=1)
    learned = LearnedPredictor(scale=GradeScale.ten_point(), neighbours=embedder, knn_weight=1.0).fit(samples, scores)
    record = learned.training["blend"]["knn"]
    vectors = embedder.vectors(samples[:3])
    assert vectors.shape == (3, 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    # A random-weight model's neighbours route no better than chance on the inner folds: the gate leaves them out.
    assert record["k"] == 20 and record["used"] is False and record["inner"] < record["needed"]
    assert learned.knn is None


@pytest.mark.llama
async def test_llama_featurizer_from_chat_model_and_async_predict(random_gguf) -> None:  # type: ignore[no-untyped-def]
    from rpra_agent.models import load_chat_model

    chat = load_chat_model(f"gguf:{random_gguf}?n_ctx=256")
    featurizer = LlamaEmbeddingFeaturizer.from_chat_model(chat, n_ctx=128, n_threads=1)
    samples, scores = make_samples(12)
    learned = LearnedPredictor(featurizer, C=1.0, block_grid=None).fit(samples, [s / 10 for s in scores])
    req = PredictionRequest(messages=(HumanMessage("Please help with this poem number 3"),))
    assert (await learned.apredict(req)).distribution == pytest.approx(learned.predict(req).distribution)
    with pytest.raises(ConfigError, match="llama.cpp chat model"):
        LlamaEmbeddingFeaturizer.from_chat_model(object())
    with pytest.raises(ConfigError, match="model_path"):
        LlamaEmbeddingFeaturizer()


def test_sentence_transformer_featurizer_names_the_extra_when_missing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ConfigError, match=r"pip install \"rpra-agent\[embeddings\]\""):
        SentenceTransformerFeaturizer().fit([Sample(request="a")], draft=False)


def test_sentence_transformer_featurizer_plumbing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class FakeST:  # stands in for sentence_transformers.SentenceTransformer (no model needed here)
        def __init__(self, name: str, device: str = "cpu") -> None:
            self.name = name

        def encode(self, texts, normalize_embeddings=True, show_progress_bar=False):  # type: ignore[no-untyped-def]
            return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=float)

    monkeypatch.setitem(sys.modules, "sentence_transformers", types.SimpleNamespace(SentenceTransformer=FakeST))
    samples, scores = make_samples(20)
    f = SentenceTransformerFeaturizer("tiny-model")
    learned = LearnedPredictor(f, C=1.0, block_grid=None)
    learned.fit(samples, [s / 10 for s in scores])
    assert f.transform(samples).shape == (20, 3)
    rebuilt = featurizer_from_state(f.config(), f.state())
    np.testing.assert_allclose(rebuilt.transform(samples).toarray(), f.transform(samples).toarray())
