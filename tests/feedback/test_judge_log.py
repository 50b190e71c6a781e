import threading

import pytest
from langchain_core.messages import AIMessage

from rpra_agent.feedback import AuditingStore, LLMJudge, conversation_for, judge_log
from rpra_agent.store import DecisionFilter, InMemoryDecisionStore
from rpra_agent.testing import ScriptedChatModel
from tests.feedback.builders import decision, reply


def judge_by_count(model_name="judge-m"):
    """A judge replying 'great' for each response it is shown (and remembering prompts)."""

    def grade(messages):
        n = messages[1].content.count('<response id="')
        return reply(*(["great"] * n))

    model = ScriptedChatModel(responses=[grade], rpra_name=model_name)
    return LLMJudge(model, backoff_s=0), model


def test_judges_unjudged_decisions_and_skips_judged_ones():
    store = InMemoryDecisionStore()
    a, b = decision(), decision()
    store.add(a)
    store.add(b)
    judge, model = judge_by_count()
    res = judge_log(store, judge, progress=False)
    assert (res.considered, res.judged, res.unjudged, res.regenerated) == (2, 2, 0, 0)
    verdicts = store.verdicts()
    assert {(v.decision_id, v.subject, v.grade) for v in verdicts} == {
        (a.id, "given", "great"),
        (b.id, "given", "great"),
    }
    assert a.request in model.calls[0][1].content and a.response in model.calls[0][1].content
    again = judge_log(store, judge, progress=False)
    assert again.considered == 0 and len(model.calls) == 2


def test_unusable_judge_output_is_recorded_unjudged_and_retried_next_time():
    store = InMemoryDecisionStore()
    d = decision()
    store.add(d)
    bad = LLMJudge(ScriptedChatModel(responses=["no idea"]), backoff_s=0, max_retries=1)
    res = judge_log(store, bad, progress=False)
    assert (res.judged, res.unjudged) == (0, 1)
    [v] = store.verdicts()
    assert v.grade is None and v.decision_id == d.id
    assert store.decisions(DecisionFilter(unjudged=True)) == [d]
    judge, _ = judge_by_count()
    assert judge_log(store, judge, progress=False).judged == 1


def test_sample_judges_only_n_decisions_reproducibly():
    store = InMemoryDecisionStore()
    for _ in range(10):
        store.add(decision())
    first = judge_log(store, judge_by_count()[0], sample=3, seed=7, progress=False)
    assert first.considered == 3 and len(store.verdicts()) == 3
    other = InMemoryDecisionStore()
    for d in store.decisions():
        other.add(d)
    judge_log(other, judge_by_count()[0], sample=3, seed=7, progress=False)
    assert {v.decision_id for v in other.verdicts()} == {v.decision_id for v in store.verdicts()}


def test_deferred_decisions_get_a_regenerated_small_answer_judged_jointly():
    store = InMemoryDecisionStore()
    kept = decision(route="small")
    deferred = decision(route="large", reason="predicted_low", response="the large answer")
    action = decision(route="large", kind="action", response='TOOL CALLS: [{"name": "x"}]')
    for d in (kept, deferred, action):
        store.add(d)
    small = ScriptedChatModel(responses=["the small answer"], rpra_name="small-m")
    judge, model = judge_by_count()
    res = judge_log(store, judge, small=small, progress=False)
    assert res.regenerated == 1 and res.skipped == {"deferred action without tools to regenerate it": 1}
    assert len(small.calls) == 1 and small.calls[0][0].content == deferred.request
    joint = next(c for c in model.calls if "the large answer" in c[1].content)
    assert "the small answer" in joint[1].content and joint[1].content.count('<response id="') == 2
    got = {(v.decision_id, v.subject) for v in store.verdicts()}
    assert got == {(kept.id, "given"), (deferred.id, "given"), (deferred.id, "small"), (action.id, "given")}


def test_regenerating_later_adds_only_the_small_verdict():
    store = InMemoryDecisionStore()
    deferred = decision(route="large", reason="predicted_low")
    store.add(deferred)
    judge, _ = judge_by_count()
    judge_log(store, judge, progress=False)
    assert [v.subject for v in store.verdicts()] == ["given"]
    small = ScriptedChatModel(responses=["small"], rpra_name="small-m")
    res = judge_log(store, judge, small=small, progress=False)
    assert res.regenerated == 1
    assert sorted(v.subject for v in store.verdicts()) == ["given", "small"]
    assert judge_log(store, judge, small=small, progress=False).considered == 0


def test_hashed_requests_are_skipped_not_judged():
    store = InMemoryDecisionStore()
    store.add(decision(request="sha256:" + "a" * 64))
    res = judge_log(store, judge_by_count()[0], progress=False)
    assert res.skipped == {"request text not kept in the log": 1} and store.verdicts() == []


def test_conversation_of_a_later_step_replays_the_earlier_actions():
    first = decision(run_id="r", step=0, kind="action", response='TOOL CALLS: [{"name": "search"}]')
    second = decision(run_id="r", step=1, request=first.request, response="final")
    other = decision(run_id="other", step=0)
    convo = conversation_for(second, [second, other, first])
    assert [m.type for m in convo] == ["human", "ai"]
    assert isinstance(convo[1], AIMessage) and "search" in convo[1].content


# -- online audit -------------------------------------------------------------------------


def test_audit_judges_the_configured_fraction_in_the_background():
    inner = InMemoryDecisionStore()
    gate = threading.Event()

    def slow_grade(messages):
        gate.wait(5)
        return reply("ok")

    judge = LLMJudge(ScriptedChatModel(responses=[slow_grade]), backoff_s=0)
    store = AuditingStore(inner, judge, fraction=0.5)
    decisions = [decision() for _ in range(40)]
    for d in decisions:
        store.add(d)  # returns although the judge is blocked: add() never waits for it
    assert len(inner.decisions()) == 40 and inner.verdicts() == []
    gate.set()
    store.wait()
    audited = {v.decision_id for v in inner.verdicts()}
    assert audited == {d.id for d in decisions if store.selected(d)}
    assert 10 <= len(audited) <= 30  # about half
    store.close()


def test_audit_fraction_edges_and_full_queue():
    inner = InMemoryDecisionStore()
    gate = threading.Event()
    judge = LLMJudge(ScriptedChatModel(responses=[lambda m: gate.wait(5) and reply("ok")]), backoff_s=0)
    none = AuditingStore(InMemoryDecisionStore(), judge, fraction=0.0)
    assert not any(none.selected(decision()) for _ in range(50))
    none.close()
    store = AuditingStore(inner, judge, fraction=1.0, max_queue=2)
    for _ in range(6):
        store.add(decision())
    assert store.dropped >= 3  # the worker holds one, the queue two: the rest are dropped, not waited for
    gate.set()
    store.close()
    assert len(inner.verdicts()) == 6 - store.dropped
    with pytest.raises(ValueError):
        AuditingStore(inner, judge, fraction=1.5)


async def test_audit_wraps_async_adds_too():
    inner = InMemoryDecisionStore()
    store = AuditingStore(inner, judge_by_count()[0], fraction=1.0)
    d = decision()
    await store.aadd(d)
    store.wait()
    assert [v.decision_id for v in store.verdicts()] == [d.id]
    store.close()


def test_audit_store_under_the_real_graph_and_delegation():
    from langchain_core.messages import HumanMessage

    from rpra_agent import build_rpra_graph
    from rpra_agent.testing import FixedPredictor

    inner = InMemoryDecisionStore()
    store = AuditingStore(inner, judge_by_count()[0], fraction=1.0)
    small = ScriptedChatModel(responses=["small says hi"], rpra_name="small-m")
    large = ScriptedChatModel(responses=["large says hi"], rpra_name="large-m")
    graph = build_rpra_graph(small=small, large=large, predictor=FixedPredictor({"great": 1.0}), store=store)
    graph.invoke({"messages": [HumanMessage("hello there")]})
    store.wait()
    [d] = inner.decisions()
    [v] = inner.verdicts()
    assert v.decision_id == d.id and v.grade == "great" and d.response == "small says hi"
    assert store.runs() == inner.runs()  # beyond the protocol: delegated
    store.close()


async def test_sync_judge_log_refuses_a_running_loop():
    from rpra_agent.core.errors import ConfigError
    from rpra_agent.feedback import ajudge_log

    store = InMemoryDecisionStore()
    store.add(decision())
    with pytest.raises(ConfigError, match="await ajudge_log"):
        judge_log(store, judge_by_count()[0])
    res = await ajudge_log(store, judge_by_count()[0], progress=False)
    assert res.judged == 1
