"""``rpra train-predictor``: from a dataset file and from a store, with clear errors."""

from __future__ import annotations

from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.evaluation.datasets import save_dataset
from rpra_agent.predictors.learned import LearnedPredictor
from rpra_agent.store import open_store
from tests.predictors.learned_data import make_dataset
from tests.predictors.test_learned import _log

runner = CliRunner()


def test_train_from_a_dataset_file_saves_a_loadable_artifact(tmp_path) -> None:
    data = save_dataset(make_dataset(40), tmp_path / "data.jsonl")
    out = tmp_path / "art"
    result = runner.invoke(
        app, ["train-predictor", "--dataset", str(data), "--out", str(out), "--C", "1", "--mode", "draft", "--crossfit"]
    )
    assert result.exit_code == 0, result.output
    assert "saved learned-draft-" in result.output and "cross-fitted APGR on synthetic (draft mode" in result.output
    loaded = LearnedPredictor.load(out)
    assert loaded.mode == "draft" and loaded.training["n"] == 40


def test_train_from_the_log_and_store_it(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'rpra.db'}"
    store = open_store(url)
    _log(store)  # type: ignore[arg-type]
    store.close()
    result = runner.invoke(app, ["train-predictor", "--db", url, "--store-as", "qa", "--C", "1"])
    assert result.exit_code == 0, result.output
    assert "stored artifact learned_predictor/qa v1" in result.output
    store = open_store(url)
    try:
        assert LearnedPredictor.load_from_store(store, "qa").training["source"] == "store"
    finally:
        store.close()


def test_bad_invocations_exit_2_with_a_reason(tmp_path) -> None:
    cases = [
        (["train-predictor", "--out", str(tmp_path)], "give a training source"),
        (["train-predictor", "--dataset", "mt-bench"], "say where to save it"),
        (["train-predictor", "--dataset", "mt-bench", "--out", str(tmp_path), "--mode", "x"], "--mode must be"),
        (["train-predictor", "--dataset", "mmlu", "--out", str(tmp_path), "--mode", "draft"], "draft mode needs"),
        (["train-predictor", "--dataset", "nope", "--out", str(tmp_path)], "not a bundled name"),
        (["train-predictor", "--dataset", "mt-bench", "--store-as", "x"], "--store-as NAME"),
        (
            ["train-predictor", "--dataset", "mt-bench", "--out", str(tmp_path), "--featurizer", "llama"],
            "--llama-model",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
