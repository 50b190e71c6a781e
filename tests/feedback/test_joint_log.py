"""Joint judging of the log: every response to one request in one judge call, order seeded and recorded."""

from __future__ import annotations

import json
import re

from langchain_core.messages import HumanMessage

from rpra_agent import build_rpra_graph
from rpra_agent.feedback import LLMJudge, judge_log
from rpra_agent.feedback._order import parse_order_tag
from rpra_agent.store import InMemoryDecisionStore
from rpra_agent.testing import FixedPredictor, ScriptedChatModel

HIGH, LOW = {"great": 0.9, "ok": 0.1}, {"bad": 0.9, "ok": 0.1}
GRADES = {"small": "bad", "large": "great", "regen": "ok", "other": "ok"}


def by_content(messages):
    """Grades each response by which model wrote it, wherever it is shown."""
    bodies = re.findall(r'<response id="(\d+)">\n(.*?)\n</response>', str(messages[-1].content), re.S)
    verdicts = [
        {"response": int(i), "rationale": "r", "weakest": "none", "grade": GRADES[json.loads(b).split()[0]]}
        for i, b in bodies
    ]
    return json.dumps({"verdicts": verdicts})


def logged_store() -> InMemoryDecisionStore:
    """The same question answered by the small model in one run and deferred to the large one in another,
    plus a different question."""
    store = InMemoryDecisionStore()
    small = ScriptedChatModel(responses=["small answer"], rpra_name="small-m")
    large = ScriptedChatModel(responses=["large answer"], rpra_name="large-m")
    for question, dist in (("What is 2+2?", HIGH), ("What is 2+2?", LOW), ("Capital of France?", HIGH)):
        graph = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(dist), store=store)
        graph.invoke({"messages": [HumanMessage(question)]})
    return store


def test_log_is_judged_jointly_per_request_with_regenerated_and_extra_answers():
    store = logged_store()
    judge_model = ScriptedChatModel(responses=[by_content], rpra_name="judge-m")
    result = judge_log(
        store,
        LLMJudge(judge_model, backoff_s=0, seed=7),
        small=ScriptedChatModel(responses=["regen answer"], rpra_name="small-m"),
        extra=[("gguf:other.gguf", ScriptedChatModel(responses=["other answer"], rpra_name="other"))],
        progress=False,
    )
    assert (result.considered, result.calls, result.joint) == (3, 2, 2)
    shown = sorted(str(c[-1].content).count('<response id="') for c in judge_model.calls)
    # 2+2: given small, given large, the deferred step's regenerated small answer, the extra; France: given, extra
    assert shown == [2, 4]
    verdicts = store.verdicts()
    decisions = {d.id: d for d in store.decisions()}
    two = [v for v in verdicts if decisions[v.decision_id].request == "What is 2+2?"]
    assert sorted((v.subject, v.grade) for v in two) == [
        ("extra1", "ok"),
        ("given", "bad"),
        ("given", "great"),
        ("small", "ok"),
    ]
    orders = {tuple(parse_order_tag(v.rationale)[1]) for v in two}
    assert len(orders) == 1 and sorted(next(iter(orders))) == ["extra1", "given", "given", "small"]
    assert {parse_order_tag(v.rationale)[0] for v in two} == {1, 2, 3, 4}
    (extra,) = [v for v in two if v.subject == "extra1"]
    assert "[model: gguf:other.gguf]" in extra.rationale
    again = judge_log(store, LLMJudge(judge_model, backoff_s=0), progress=False)
    assert again.considered == 0  # nothing judged twice


def test_isolated_ablation_judges_each_response_alone():
    store = logged_store()
    judge_model = ScriptedChatModel(responses=[by_content], rpra_name="judge-m")
    result = judge_log(
        store,
        LLMJudge(judge_model, backoff_s=0, isolated=True),
        small=ScriptedChatModel(responses=["regen answer"], rpra_name="small-m"),
        progress=False,
    )
    assert result.calls == 2 and len(judge_model.calls) == 4  # 3 responses to 2+2, 1 to France: one call each
    assert all(str(c[-1].content).count('<response id="') == 1 for c in judge_model.calls)
    verdicts = store.verdicts()
    assert len(verdicts) == 4 and all("[judged alone]" in v.rationale for v in verdicts)
    assert all(parse_order_tag(v.rationale) is None for v in verdicts)


def test_rpra_judge_cli_judges_jointly_or_isolated(tmp_path, monkeypatch):
    from rich.console import Console
    from typer.testing import CliRunner

    from rpra_agent.cli import feedback as cli
    from rpra_agent.cli.app import app
    from rpra_agent.store import open_store

    monkeypatch.setattr(cli, "console", Console(width=200))
    models = {
        "judge": ScriptedChatModel(responses=[by_content], rpra_name="judge-m"),
        "small": ScriptedChatModel(responses=["regen answer"], rpra_name="small-m"),
        "other": ScriptedChatModel(responses=["other answer"], rpra_name="other"),
    }
    monkeypatch.setattr(cli, "_load_model", lambda spec, base_url=None: models[spec])
    for mode in ("joint", "isolated"):
        url = f"sqlite:///{tmp_path / mode}.db"
        store = open_store(url, spool_path=str(tmp_path / f"{mode}.spool"))
        for d in logged_store().decisions():
            store.add(d)
        store.close()
        before = len(models["judge"].calls)
        args = ["judge", "--db", url, "--judge", "judge", "--regenerate-small", "small", "--extra-model", "other"]
        res = CliRunner().invoke(app, [*args, "--no-progress", *(["--isolated"] if mode == "isolated" else [])])
        assert res.exit_code == 0, res.output
        calls = len(models["judge"].calls) - before
        if mode == "joint":
            assert calls == 2 and "2 judge calls, 2 joint" in res.output
        else:
            assert calls == 6 and "each judged alone" in res.output  # 4 responses to 2+2, 2 to France
