"""Hindsight judging of both sides, so quality can be calibrated from a live log, and the deployment routes at it."""

from langchain_core.messages import HumanMessage
from typer.testing import CliRunner

import rpra_agent.cli.commands  # noqa: F401  (registers every command)
from rpra_agent import ThresholdPolicy, ZeroShotPredictor, build_rpra_graph
from rpra_agent.cli.app import app
from rpra_agent.feedback import judge_log
from rpra_agent.store import InMemoryDecisionStore, open_store
from rpra_agent.testing import ScriptedChatModel, grade_logprobs
from tests.feedback.builders import decision, reply
from tests.feedback.test_judge_log import judge_by_count


def test_kept_decisions_get_the_large_answer_judged():
    store = InMemoryDecisionStore()
    kept, deferred = decision(route="small"), decision(route="large", reason="predicted_low")
    store.add(kept)
    store.add(deferred)
    small = ScriptedChatModel(responses=["small again"], rpra_name="small-m")
    large = ScriptedChatModel(responses=["large in hindsight"], rpra_name="large-m")
    judge, model = judge_by_count()
    res = judge_log(store, judge, small=small, large=large, progress=False)
    assert res.regenerated == 2
    assert [c[0].content for c in large.calls] == [kept.request]
    assert [c[0].content for c in small.calls] == [deferred.request]
    got = {(v.decision_id, v.subject) for v in store.verdicts()}
    assert got == {(kept.id, "given"), (kept.id, "large"), (deferred.id, "given"), (deferred.id, "small")}
    # a second pass has nothing left to do
    assert judge_log(store, judge, small=small, large=large, progress=False).considered == 0


def _grade_by_answer(messages):
    # the small model's answers are 'ok', the large model's 'great'
    text = messages[1].content
    ids = text.count('<response id="')
    grades = []
    for i in range(1, ids + 1):
        block = text.split(f'<response id="{i}"', 1)[1].split("</response>", 1)[0]
        grades.append("great" if "LARGE" in block else "ok")
    return reply(*grades)


def test_rpra_judge_with_both_regenerations_makes_quality_calibration_possible(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = open_store(url)
    small = ScriptedChatModel(responses=["small answer"], cycle=True, rpra_name="small-m")
    large = ScriptedChatModel(responses=["LARGE answer"], cycle=True, rpra_name="large-m")
    for i in range(40):
        p_ok = 0.9 if i % 2 else 0.2
        predictor = ZeroShotPredictor(
            ScriptedChatModel(responses=["ok"], logprobs=grade_logprobs({"bad": 1 - p_ok, "ok": p_ok}))
        )
        graph = build_rpra_graph(
            small=small, large=large, predictor=predictor, policy=ThresholdPolicy(0.5), store=store
        )
        graph.invoke({"messages": [HumanMessage(f"question {i}")]})
    store.close()

    models = {
        "judge:spec": ScriptedChatModel(responses=[_grade_by_answer], rpra_name="judge-m"),
        "small:spec": ScriptedChatModel(responses=["small answer"], cycle=True, rpra_name="small-m"),
        "large:spec": ScriptedChatModel(responses=["LARGE answer"], cycle=True, rpra_name="large-m"),
    }
    monkeypatch.setattr("rpra_agent.cli.feedback._load_model", lambda spec, base_url=None: models[spec])
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "judge",
            "--db",
            url,
            "--judge",
            "judge:spec",
            "--regenerate-small",
            "small:spec",
            "--regenerate-large",
            "large:spec",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "40 small/large answers regenerated" in " ".join(res.output.split())
    res = runner.invoke(app, ["calibrate", "--db", url, "--epsilon", "0.5", "--delta", "0.1"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "judged items │ 40" in out or "judged items" in out and " 40 " in out
    assert "quality" in out
    assert "certified │ yes" in out, out

    # ... and the deployment routes at the calibration it stored (RPRA_CALIBRATION): the loop is closed.
    from rpra_agent.feedback.calibration import load_calibration
    from rpra_agent.service.config import Settings, build_components, build_graph

    monkeypatch.setattr("rpra_agent.models.load_chat_model", lambda spec, **kw: models[spec])
    reader = open_store(url)
    stored = load_calibration(reader, "default")
    reader.close()
    assert stored is not None and stored.mode == "quality" and stored.metric == "p_acceptable"
    assert 0.05 < stored.threshold < 0.95  # so a prior 0.05 above it and one 0.05 below it both exist
    routes = {}
    for p in (min(stored.threshold + 0.05, 1.0), max(stored.threshold - 0.05, 0.0)):
        settings = Settings("small:spec", "large:spec", database_url=url, calibration="default", predictor=f"prior:{p}")
        components = build_components(settings)
        try:
            assert components.policy.threshold == stored.threshold  # type: ignore[attr-defined]
            out = build_graph(components).invoke({"messages": [HumanMessage("one more question")]})
            routes[p >= stored.threshold] = out["messages"][-1].content
        finally:
            components.store.close()
    assert routes == {True: "small answer", False: "LARGE answer"}
