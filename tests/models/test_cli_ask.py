"""``rpra ask`` end to end: a gguf: small model in-process and llama.cpp's server as the openai: large model."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from tests.fixtures_llama import SERVER_REPLY

QUESTION = "What is the capital of France?"


def _rpra(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RPRA_", "OPENAI_"))}
    return subprocess.run(  # noqa: S603 - fixed interpreter and arguments
        [sys.executable, "-c", "from rpra_agent.cli import main; main()", *args],
        capture_output=True, text=True, timeout=120, env={**base, **(env or {})},
    )  # fmt: skip


def test_ask_keeps_the_confident_small_answer(llama_server, scripted_gguf):
    small = scripted_gguf(reply="Small: Paris.", grade="great")
    done = _rpra("ask", QUESTION, "--small", f"gguf:{small}", "--large", "openai:large", "--base-url", llama_server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Small: Paris."
    [line] = [x for x in done.stderr.splitlines() if x.startswith("step ")]
    assert "route=small reason=predicted_ok kind=answer grade=great p_ok=1.000 threshold=0.50" in line
    assert "latency=" in line


def test_ask_defers_to_the_server_with_env_defaults(llama_server, scripted_gguf, tmp_path):
    small = scripted_gguf(reply="Small: no idea.", grade="bad")
    db = tmp_path / "decisions.db"
    env = {"RPRA_SMALL_MODEL": f"gguf:{small}", "RPRA_LARGE_MODEL": "openai:large", "OPENAI_BASE_URL": llama_server}
    done = _rpra(
        "ask", QUESTION, "--threshold", "0.3", "--predictor", "prefix-sharing", "--db", f"sqlite:///{db}", env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == SERVER_REPLY
    assert "route=large reason=predicted_low kind=answer grade=bad" in done.stderr
    assert "threshold=0.30" in done.stderr
    from rpra_agent.store import open_store

    store = open_store(f"sqlite:///{db}")
    try:
        [decision] = store.decisions()
        assert (decision.route, decision.response, decision.large_model) == ("large", SERVER_REPLY, "openai:large")
    finally:
        store.close()


def test_ask_routes_at_a_calibration_stored_in_the_log(llama_server, scripted_gguf, tmp_path):
    from rpra_agent.feedback.calibration import Calibration, save_calibration
    from rpra_agent.store import open_store

    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    store = open_store(url)
    # above the top grade's expected score: even a confident small answer is deferred
    save_calibration(store, Calibration(2.0, "expected_score", "deferral_rate", 1.0, 40, 1.0), "strict")
    store.close()
    small = scripted_gguf(reply="Small: Paris.", grade="great")
    args = ["ask", QUESTION, "--small", f"gguf:{small}", "--large", "openai:large", "--base-url", llama_server]
    done = _rpra(*args, "--db", url, "--calibration", "strict")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == SERVER_REPLY
    assert "route=large reason=predicted_low kind=answer grade=great" in done.stderr and "threshold=2.00" in done.stderr
    missing = _rpra(*args, "--db", url, "--calibration", "nope")
    assert missing.returncode == 2 and "no calibration named 'nope'" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--small", "gguf:/x.gguf"], "no large model: pass --large openai:MODEL"),
        (["--large", "openai:x"], "no small model: pass --small"),
        (["--small", "llama:/x", "--large", "openai:x"], "unknown model scheme 'llama'"),
        (["--small", "gguf:/does/not/exist.gguf", "--large", "openai:x"], "GGUF model file not found"),
        (["--small", "gguf:/x", "--large", "openai:x", "--threshold", "1.5"], "outside [0, 1]"),
        (["--small", "gguf:/x", "--large", "openai:x", "--paradigm", "fast"], "--paradigm must be one of"),
        (
            ["--small", "gguf:/x", "--large", "openai:x", "--threshold", "0.3", "--calibration", "c"],
            "--threshold and --calibration both given",
        ),
        (["--small", "gguf:/x", "--large", "openai:x", "--calibration", "c"], "pass --db URL"),
        (
            ["--small", "gguf:/x", "--large", "openai:x", "--predictor", "oracle"],
            "unknown --predictor 'oracle': use one of",
        ),
    ],
)
def test_missing_or_invalid_configuration_exits_2_with_what_to_set(args, message, monkeypatch):
    for var in ("RPRA_SMALL_MODEL", "RPRA_LARGE_MODEL", "RPRA_DATABASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(app, ["ask", QUESTION, *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_openai_without_key_names_the_env_var(scripted_gguf, monkeypatch):
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    small = scripted_gguf(reply="Small: Paris.", grade="great")
    result = CliRunner().invoke(app, ["ask", QUESTION, "--small", f"gguf:{small}", "--large", "openai:gpt-4o-mini"])
    assert result.exit_code == 2
    assert "set OPENAI_API_KEY" in " ".join(result.output.split())


def test_a_draft_mode_predictor_outside_verify_exits_2(scripted_gguf, tmp_path, monkeypatch):
    """Outside --paradigm verify a draft-mode predictor would defer every step: said, not run."""
    from rpra_agent.predictors.features import TextFeaturizer
    from rpra_agent.predictors.learned import LearnedPredictor
    from tests.evaluation.toy_data import toy_dataset

    for var in ("RPRA_SMALL_MODEL", "RPRA_LARGE_MODEL", "RPRA_DATABASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    art = LearnedPredictor(TextFeaturizer(), mode="draft").fit_dataset(toy_dataset(45)).save(tmp_path / "draft")
    small = scripted_gguf(reply="Small: Paris.", grade="great")
    args = [
        "ask",
        QUESTION,
        "--small",
        f"gguf:{small}",
        "--large",
        "openai:large",
        "--base-url",
        "http://127.0.0.1:9/v1",
    ]
    args += ["--predictor", f"learned:{art}"]  # nothing is called: the graph is refused when built
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "paradigm='verify'" in " ".join(result.output.split())
