"""LearnedPredictor: training, predicting, saving and loading (no pickle), training from the log."""

from __future__ import annotations

import json

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage

from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import PredictionRequest, Predictor
from rpra_agent.core.verdict import Verdict
from rpra_agent.predictors.features import Sample, TextFeaturizer
from rpra_agent.predictors.learned import LearnedPredictor
from rpra_agent.store.memory import InMemoryDecisionStore
from tests.predictors.learned_data import make_dataset, make_samples

TEN = GradeScale.ten_point()


def _req(text: str, *, task: str | None = None, draft: str | None = None) -> PredictionRequest:
    return PredictionRequest(
        messages=(HumanMessage(text),), task=task, draft=AIMessage(draft) if draft is not None else None
    )


@pytest.fixture(scope="module")
def trained() -> LearnedPredictor:
    samples, scores = make_samples(60)
    return LearnedPredictor(scale=TEN, Cs=(0.3, 3.0), block_grid={"cues": (0.5, 1.0)}).fit(samples, scores)


def test_learns_which_requests_the_small_model_fails(trained: LearnedPredictor) -> None:
    assert isinstance(trained, Predictor)
    hard = trained.predict(_req("Please help with this integral number 7", task="math"))
    easy = trained.predict(_req("Please help with this poem number 8", task="writing"))
    assert hard.method == "learned" and hard.predictor == "learned"
    assert hard.version == trained.version and trained.version.startswith("learned-request-")
    assert sum(hard.distribution.values()) == pytest.approx(1.0)
    assert hard.expected_score < 5.0 < easy.expected_score
    assert hard.p_acceptable < 0.5 < easy.p_acceptable
    assert hard.grade in {"2", "3", "4"}
    assert hard.latency_ms > 0


def test_records_training_facts_and_inner_cv_metrics(trained: LearnedPredictor) -> None:
    assert trained.training["n"] == 60
    assert len(trained.training["data_sha256"]) == 64
    assert trained.training["label_counts"]
    m = trained.metrics
    assert m["C"] in (0.3, 3.0)
    assert m["auroc"] > 0.9 and 0.0 <= m["ece"] <= 0.3
    assert m["block_weights"]["chosen"]["cues"] in (0.5, 1.0)


def test_save_and_load_round_trip_gives_identical_predictions(trained: LearnedPredictor, tmp_path) -> None:
    path = trained.save(tmp_path / "art")
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "manifest.json"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "rpra-learned-predictor" and manifest["training"]["n"] == 60
    loaded = LearnedPredictor.load(path)
    samples, _ = make_samples(30, seed=5)
    np.testing.assert_array_equal(loaded.predict_proba(samples), trained.predict_proba(samples))
    req = _req("Please help with this matrix number 3", task="math")
    assert loaded.predict(req).distribution == trained.predict(req).distribution
    assert loaded.version == trained.version and loaded.scale == TEN


def test_store_artifact_round_trip(trained: LearnedPredictor) -> None:
    store = InMemoryDecisionStore()
    first = trained.save_to_store(store, "qa")
    second = trained.save_to_store(store, "qa")
    assert (first.version, second.version) == (1, 2)
    json.dumps(second.payload)  # plain JSON
    loaded = LearnedPredictor.load_from_store(store, "qa")
    samples, _ = make_samples(10, seed=9)
    np.testing.assert_array_equal(loaded.predict_proba(samples), trained.predict_proba(samples))
    with pytest.raises(ConfigError, match="no learned_predictor artifact named 'other'"):
        LearnedPredictor.load_from_store(store, "other")


def test_tampered_or_foreign_artifacts_are_refused(trained: LearnedPredictor, tmp_path) -> None:
    path = trained.save(tmp_path / "art")
    data = bytearray((path / "arrays.npz").read_bytes())
    data[-40] ^= 0xFF
    (path / "arrays.npz").write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="SHA-256"):
        LearnedPredictor.load(path)
    other = trained.save(tmp_path / "art2")
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["format_version"] = 99
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="format version 99"):
        LearnedPredictor.load(other)
    with pytest.raises(ConfigError, match="not a saved learned predictor"):
        LearnedPredictor.load(tmp_path / "nowhere")


def test_a_pickled_array_is_never_loaded(trained: LearnedPredictor, tmp_path) -> None:
    """An attacker who rewrites both files with an object array still cannot run code."""
    import hashlib

    path = trained.save(tmp_path / "art")
    np.savez(path / "arrays.npz", **{"classifier/beta": np.array([object()], dtype=object)})
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["arrays"]["sha256"] = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="cannot be read safely"):
        LearnedPredictor.load(path)


def test_draft_mode_reads_the_draft_and_needs_one() -> None:
    samples, scores = make_samples(60)
    plain = [Sample(request="Please help with this", draft=s.draft) for s in samples]  # only the draft differs
    predictor = LearnedPredictor(scale=TEN, mode="draft", C=1.0, block_grid=None).fit(plain, scores)
    assert predictor.name == "learned_draft"
    bad = predictor.predict(_req("Please help with this", draft="The answer is 12."))
    good = predictor.predict(_req("Please help with this", draft="Here is a lovely poem for you."))
    assert bad.expected_score < good.expected_score
    with pytest.raises(PredictorError, match="draft mode"):
        predictor.predict(_req("Please help with this"))
    with pytest.raises(ConfigError, match="draft"):
        LearnedPredictor(scale=TEN, mode="draft").fit([Sample(request="x"), Sample(request="y")], [1.0, 9.0])


def test_untrained_and_bad_inputs_fail_clearly() -> None:
    with pytest.raises(PredictorError, match="not trained"):
        LearnedPredictor().predict(_req("hi"))
    with pytest.raises(ConfigError, match="mode"):
        LearnedPredictor(mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least 2 judged"):
        LearnedPredictor().fit([Sample(request="a"), Sample(request="b")], [1.0, float("nan")])
    with pytest.raises(ConfigError, match="2 samples but 1 scores"):
        LearnedPredictor().fit([Sample(request="a"), Sample(request="b")], [1.0])
    with pytest.raises(ConfigError, match="before saving"):
        LearnedPredictor().save("/tmp/never")


async def test_apredict_matches_predict(trained: LearnedPredictor) -> None:
    req = _req("Please help with this haiku number 1", task="writing")
    assert (await trained.apredict(req)).distribution == trained.predict(req).distribution


def test_fit_dataset_infers_the_scale_and_uses_the_weak_models_scores() -> None:
    predictor = LearnedPredictor(C=1.0, block_grid=None).fit_dataset(make_dataset(40))
    assert predictor.scale.name == "ten" and predictor.training["source"] == "dataset:synthetic"
    assert predictor.predict(_req("Please help with this equation number 3", task="math")).expected_score < 6


def _log(store: InMemoryDecisionStore, n: int = 40) -> None:
    samples, scores = make_samples(n)
    decisions, verdicts = [], []
    for i, (s, score) in enumerate(zip(samples, scores, strict=True)):
        route = "small" if i % 4 else "large"
        d = Decision(
            run_id=f"run{i}", step=0, kind="answer", paradigm="pa", prediction=None, threshold=0.5,
            route=route, reason="predicted_ok" if route == "small" else "predicted_low", task=s.task,
            request=s.request, response=s.draft or "",
        )  # fmt: skip
        decisions.append(d)
        label = TEN.label_for(score)
        subject = "given" if route == "small" else "small"  # hindsight verdict on the small answer
        verdicts.append(Verdict(d.id, label, score, "ten", "judge", "v1", subject=subject))
        if route == "large":  # a verdict on the large answer must not become a label
            verdicts.append(Verdict(d.id, "10", 10.0, "ten", "judge", "v1", subject="given"))
    for d in decisions:
        store.add(d)
    store.add_verdicts(verdicts)


def test_fit_store_trains_on_hindsight_labels_of_the_small_answer() -> None:
    store = InMemoryDecisionStore()
    _log(store)
    predictor = LearnedPredictor(C=1.0, block_grid=None).fit_store(store)
    assert predictor.scale.name == "ten" and predictor.training["n"] == 40
    assert isinstance(predictor.featurizer, TextFeaturizer) and predictor.featurizer.context is False
    hard = predictor.predict(_req("Please help with this prove number 2", task="math"))
    easy = predictor.predict(_req("Please help with this story number 2", task="writing"))
    assert hard.expected_score < easy.expected_score
    # draft mode: deferred decisions have no small answer recorded, so they are skipped
    drafted = LearnedPredictor(mode="draft", C=1.0, block_grid=None).fit_store(store)
    assert drafted.training["n"] == 30
    with pytest.raises(ConfigError, match="no decision in the store has a verdict"):
        LearnedPredictor().fit_store(InMemoryDecisionStore())


def test_fit_store_no_worse_target_uses_the_large_answers_verdicts(tmp_path) -> None:
    store = InMemoryDecisionStore()
    _log(store)
    predictor = LearnedPredictor(target="no_worse", C=1.0, block_grid=None).fit_store(store)
    # only deferred decisions have a large verdict (10): the small answer was no worse on none of them
    assert predictor.training["n"] == 10 and predictor.training["label_counts"] == {"worse": 10}
    loaded = LearnedPredictor.load(predictor.save(tmp_path / "nw"))
    assert loaded.target == "no_worse" and loaded.scale.name == "no_worse"
    only_small = InMemoryDecisionStore()
    for d in store.decisions():
        if d.route == "small":
            only_small.add(d)
    only_small.add_verdicts([v for v in store.verdicts() if v.subject == "given"])
    with pytest.raises(ConfigError, match="large model's answers"):
        LearnedPredictor(target="no_worse").fit_store(only_small)
    with pytest.raises(ConfigError, match="target"):
        LearnedPredictor(target="better")  # type: ignore[arg-type]
