"""``rpra calibrate --predictor``: a trained artifact's expected grade calibrated on a dataset, and its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.evaluation.datasets import save_dataset
from rpra_agent.feedback.calibration import load_calibrated_policy
from tests.evaluation.toy_data import toy_dataset

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    learned = pytest.importorskip("rpra_agent.predictors.learned")
    from rpra_agent.predictors.features import TextFeaturizer

    predictor = learned.LearnedPredictor(TextFeaturizer(), mode="request", C=1.0)
    predictor.fit_dataset(toy_dataset(45, seed=3))
    return predictor.save(tmp_path_factory.mktemp("art") / "toy10")


def test_calibrate_an_artifact_on_a_dataset_and_store_a_usable_policy(tmp_path: Path, artifact: Path) -> None:
    data = save_dataset(toy_dataset(40, seed=5), tmp_path / "toy.jsonl")
    db = f"sqlite:///{tmp_path / 'c.db'}"
    out = tmp_path / "cal.json"
    code, text = _run(
        "calibrate", "--dataset", str(data), "--predictor", str(artifact), "--target-rate", "0.25",
        "--db", db, "--name", "art", "--out", str(out),
    )  # fmt: skip
    assert code == 0, text
    cal = json.loads(out.read_text())
    assert cal["predictor"] == "artifact:toy10" and cal["metric"] == "expected_score"
    assert abs(cal["deferral_rate"] - 0.25) < 0.05 and 1.0 <= cal["threshold"] <= 10.0
    from rpra_agent.store import open_store

    store = open_store(db)
    try:
        policy = load_calibrated_policy(store, "art")
    finally:
        store.close()
    assert policy.metric == "expected_score" and np.isclose(policy.threshold, cal["threshold"])


def test_calibrate_refuses_an_artifact_on_another_scale(tmp_path: Path, artifact: Path) -> None:
    data = save_dataset(toy_dataset(40, binary=True), tmp_path / "binary.jsonl")
    code, text = _run("calibrate", "--dataset", str(data), "--predictor", str(artifact), "--target-rate", "0.3")
    assert code == 2 and "trained on score scale 'ten'" in text and "'correct01'" in text


def test_calibrate_names_what_predictor_may_be() -> None:
    code, text = _run("calibrate", "--dataset", "mt-bench", "--predictor", "vibes", "--target-rate", "0.3")
    assert code == 2 and "unknown --predictor 'vibes'" in text and "trained artifact" in text


def test_an_artifact_scored_on_its_own_training_data_is_flagged_in_sample(
    artifact: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its figures and a threshold calibrated on them are optimistic: the note and a warning say so."""
    from rpra_agent.evaluation.runs.artifacts import artifact_scores
    from rpra_agent.evaluation.runs.judged import scale_for

    own = toy_dataset(45, seed=3).judged()  # the artifact's training set ("dataset:toy")
    with caplog.at_level("WARNING"):
        scores = artifact_scores(own, artifact, scale_for(own))
    assert "IN-SAMPLE" in scores.note and "optimistic" in caplog.text
    caplog.clear()
    other = toy_dataset(40, seed=5, name="fresh").judged()
    with caplog.at_level("WARNING"):
        scores = artifact_scores(other, artifact, scale_for(other))
    assert "IN-SAMPLE" not in scores.note and not caplog.records
