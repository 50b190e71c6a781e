"""``--predictor`` specs and the guarded predictor (issue 14, item 7)."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import HumanMessage

from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.predictors import FineTunedPredictor, ReportCardPredictor, ZeroShotPredictor
from rpra_agent.predictors.guarded import GuardedPredictor, PriorPredictor
from rpra_agent.service.predictors import predictor_from_spec
from rpra_agent.store import InMemoryDecisionStore
from rpra_agent.testing.adversarial import ObedientChatModel

REQUEST = PredictionRequest(messages=(HumanMessage("hi"),), task="math")


class Boom:
    name, version = "boom", "1"
    scale = PriorPredictor({"great": 1.0}).scale

    def predict(self, request):
        raise RuntimeError("secret internals")

    async def apredict(self, request):
        raise RuntimeError("secret internals")


@pytest.mark.parametrize(
    ("spec", "kind", "name"),
    [
        ("zero-shot", ZeroShotPredictor, "zero_shot"),
        ("fine-tuned", FineTunedPredictor, "fine_tuned"),
        ("report-card", ReportCardPredictor, "report_card"),
        ("prior:0.7", PriorPredictor, "prior_0.7"),
        ("no-evidence", PriorPredictor, "prior_no_evidence"),
        ("guarded", GuardedPredictor, "guarded(zero_shot,prior_no_evidence)"),
        ("guarded:fine-tuned+prior:0.9", GuardedPredictor, "guarded(fine_tuned,prior_0.9)"),
    ],
)
def test_every_spec_builds_its_predictor(spec, kind, name):
    predictor = predictor_from_spec(spec, ObedientChatModel(), InMemoryDecisionStore())
    assert isinstance(predictor, kind) and predictor.name == name


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("zero_shot", "unknown --predictor 'zero_shot'"),
        ("prior:2", r"probability P in \[0, 1\]"),
        ("guarded:prior:0.5+zero-shot", "guarded:SELF\\+INDEPENDENT"),
        ("card-stats", "no report card"),
        ("learned-store", "no learned_predictor artifact"),
        ("learned:/nonexistent/dir", "not a saved learned predictor"),
    ],
)
def test_bad_specs_say_what_to_do(spec, match):
    with pytest.raises(ConfigError, match=match):
        predictor_from_spec(spec, ObedientChatModel(), InMemoryDecisionStore())


def test_guarded_keeps_the_lower_p_acceptable_sync_and_async():
    low = PriorPredictor({"great": 0.2, "bad": 0.8}, name="low")
    high = PriorPredictor({"great": 0.9, "bad": 0.1}, name="high")
    for own, other, expect in ((high, low, 0.2), (low, high, 0.2), (high, high, 0.9)):
        guarded = GuardedPredictor(own, other)
        p = guarded.predict(REQUEST)
        q = asyncio.run(guarded.apredict(REQUEST))
        assert p.p_acceptable == pytest.approx(expect) == q.p_acceptable
        assert p.predictor == f"guarded({own.name},{other.name})"


def test_a_failing_independent_signal_is_a_predictor_error_not_a_crash():
    guarded = GuardedPredictor(PriorPredictor({"great": 1.0}), Boom())
    with pytest.raises(PredictorError, match="boom failed: RuntimeError"):
        guarded.predict(REQUEST)
    with pytest.raises(PredictorError):
        asyncio.run(guarded.apredict(REQUEST))


def test_scales_may_differ_and_priors_must_be_distributions():
    from rpra_agent.core.grades import GradeScale

    ten = PriorPredictor({"3": 1.0}, scale=GradeScale.ten_point())  # P(acceptable) = 0 on 1-10
    p = GuardedPredictor(PriorPredictor({"great": 1.0}), ten).predict(REQUEST)
    assert p.p_acceptable == 0.0 and p.scale == GradeScale.ten_point() and p.grade == "3"
    with pytest.raises(ConfigError, match="two predictors"):
        GuardedPredictor(PriorPredictor({"great": 1.0}), object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="non-negative weights"):
        PriorPredictor({"excellent": 1.0})


def _cli(*args: str) -> tuple[int, str]:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[2]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RPRA_")}, "PYTHONPATH": str(root)}
    env["OPENAI_API_KEY"] = "sk-test-" + "0" * 20
    proc = subprocess.run(
        [sys.executable, "-c", "from rpra_agent.cli import main; main()", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("command", ["ask", "serve"])
def test_the_cli_rejects_an_unknown_predictor_naming_the_specs(command, tmp_path):
    db = f"sqlite:///{tmp_path / 'log.db'}"
    args = ["ask", "hi", "--db", db] if command == "ask" else ["serve", "--database-url", db, "--port", "0"]
    code, out = _cli(*args, "--small", "openai:x", "--large", "openai:y", "--predictor", "bogus")
    assert code == 2 and "unknown --predictor 'bogus'" in out and "learned:PATH" in out


@pytest.mark.parametrize(("client_task", "route"), [(True, "small"), (False, "large")])
def test_no_client_task_stops_a_client_from_picking_the_best_task(client_task, route):
    # Point 3 of docs/RELIABILITY.md: a predictor that reads the task (report-card statistics)
    # can be steered by a client claiming the task with the best record; --no-client-task closes it.
    import httpx

    from rpra_agent.feedback.cards import save_report_card
    from rpra_agent.feedback.report_card import CardSection, ReportCard
    from rpra_agent.service.app import create_app
    from rpra_agent.service.engine import ChatEngine
    from tests.fixtures_service import serve_app
    from tests.service.conftest import replier

    store = InMemoryDecisionStore()
    sections = (
        CardSection("*", "answer", {"bad": 9, "great": 1}, ""),
        CardSection("easy", "answer", {"great": 10}, ""),
    )
    save_report_card(
        store, ReportCard(model="small", scale=PriorPredictor({"great": 1}).scale, sections=sections, text="")
    )
    small = replier("small")
    engine = ChatEngine(
        small=small, large=replier("large"), predictor=predictor_from_spec("card-stats", small, store), store=store,
        client_task=client_task,
    )  # fmt: skip
    with serve_app(create_app(engine)) as base:
        body = {"model": "rpra", "messages": [{"role": "user", "content": "anything"}]}
        r = httpx.post(f"{base}/v1/chat/completions", json=body, headers={"x-rpra-task": "easy"}, timeout=30)
    assert r.status_code == 200 and r.headers["x-rpra-route"] == route
    assert [d.task for d in store.decisions()] == (["easy"] if client_task else [None])


def test_settings_read_the_new_variables_and_name_bad_values():
    from rpra_agent.service.config import Settings

    env = {"RPRA_SMALL_MODEL": "a", "RPRA_LARGE_MODEL": "b"}
    s = Settings.from_env({**env, "RPRA_MAX_DEFERRALS": "2", "RPRA_CLIENT_TASK": "false", "RPRA_DURABILITY": "async"})
    assert (s.max_deferrals, s.client_task, s.durability, s.predictor, s.on_loss) == (
        2,
        False,
        "async",
        "guarded",
        "raise",
    )
    for var, value in [
        ("RPRA_CLIENT_TASK", "maybe"),
        ("RPRA_MAX_DEFERRALS", "-1"),
        ("RPRA_DURABILITY", "exit"),
        ("RPRA_ON_LOSS", "drop"),
    ]:
        with pytest.raises(ConfigError, match=var):
            Settings.from_env({**env, var: value})
