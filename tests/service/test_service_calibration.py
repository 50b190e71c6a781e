"""A deployment routes at a stored calibration's threshold (RPRA_CALIBRATION / rpra serve --calibration)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.core.errors import ConfigError
from rpra_agent.feedback.calibration import Calibration, save_calibration
from rpra_agent.service.config import Settings, build_components
from rpra_agent.store import open_store

MODELS = {"RPRA_SMALL_MODEL": "gguf:/s.gguf", "RPRA_LARGE_MODEL": "gguf:/l.gguf"}


def test_the_calibration_setting_is_read_and_cannot_be_set_beside_a_threshold() -> None:
    assert Settings.from_env({**MODELS, "RPRA_CALIBRATION": "prod"}).calibration == "prod"
    assert Settings.from_env({**MODELS, "RPRA_CALIBRATION": " "}).calibration is None  # an empty variable is unset
    assert Settings.from_env(MODELS, calibration="prod").calibration == "prod"
    with pytest.raises(ConfigError, match=r"both RPRA_THRESHOLD \(or rpra serve --threshold\) and RPRA_CALIBRATION"):
        Settings.from_env({**MODELS, "RPRA_THRESHOLD": "0.4"}, calibration="prod")
    with pytest.raises(ConfigError, match="must name a stored calibration"):
        Settings(small_model="a", large_model="b", calibration="")


def test_rpra_serve_refuses_a_threshold_beside_a_calibration_with_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RPRA_THRESHOLD", "RPRA_CALIBRATION"):
        monkeypatch.delenv(var, raising=False)
    args = ["serve", "--small", "gguf:/s.gguf", "--large", "gguf:/l.gguf", "--threshold", "0.3", "--calibration", "p"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "set only one of them" in " ".join(result.output.split())


def test_a_calibrated_threshold_off_the_predictors_scale_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    """An expected-score threshold from another predictor's scale would keep or defer every step."""
    from rpra_agent.core.policy import ThresholdPolicy
    from rpra_agent.feedback.calibration import warn_off_scale
    from rpra_agent.predictors.guarded import PriorPredictor

    prior = PriorPredictor({"great": 0.9, "bad": 0.1})  # the paper's three grades
    low, high = prior.scale.low, prior.scale.high
    inside = ThresholdPolicy((low + high) / 2, metric="expected_score")
    assert not warn_off_scale(inside, prior, "ok")
    assert not warn_off_scale(ThresholdPolicy(0.99), prior, "p")  # P(acceptable) is always on [0, 1]
    with caplog.at_level("WARNING", logger="rpra_agent.feedback.calibration"):
        assert warn_off_scale(ThresholdPolicy(low - 0.3, metric="expected_score"), prior, "margin")
    assert "calibration 'margin'" in caplog.text and "every step will be kept" in caplog.text


@pytest.mark.llama
def test_the_graph_routes_at_the_stored_calibrations_threshold(scripted_gguf, tmp_path: Path, caplog) -> None:
    """The same deployment keeps the small answer at the fixed 0.5 and defers at a stored stricter calibration."""
    db = f"sqlite:///{tmp_path / 'log.db'}"
    small = f"gguf:{scripted_gguf(reply='Paris.', grade='great')}"
    large = f"gguf:{scripted_gguf(reply='Paris, France.', grade='great')}"
    base = Settings(small_model=small, large_model=large, database_url=db, predictor="zero-shot")

    with pytest.raises(ConfigError, match=r"RPRA_CALIBRATION \(or rpra serve --calibration\).*rpra calibrate --name"):
        build_components(base.with_overrides(calibration="strict"))  # nothing stored yet

    store = open_store(db)
    # A calibration on the expected grade above the scale's top: every step is deferred.
    save_calibration(store, Calibration(2.0, "expected_score", "deferral_rate", 1.0, 50, 1.0), "strict")
    store.close()

    answers = {}
    caplog.set_level("WARNING", logger="rpra_agent.feedback.calibration")
    for settings in (base, base.with_overrides(calibration="strict")):
        components = build_components(settings)
        try:
            policy = components.policy
            graph = _graph(components)
            out = graph.invoke({"messages": [("user", "Capital of France?")]})
            answers[settings.calibration] = (out["messages"][-1].content, policy.threshold, policy.metric, policy.name)
        finally:
            components.store.close()
    assert answers[None] == ("Paris.", 0.5, "p_acceptable", "threshold")
    assert answers["strict"] == ("Paris, France.", 2.0, "expected_score", "calibrated:v1")
    assert "every step will be deferred" in caplog.text  # 2.0 is above the top grade: said at start-up


def _graph(components):
    from rpra_agent.service.config import build_graph

    return build_graph(components)
