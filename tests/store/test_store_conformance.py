"""One conformance suite for every DecisionStore: in-memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from rpra_agent.core.verdict import Verdict
from rpra_agent.store import DecisionFilter, DecisionStore
from rpra_agent.store.prices import PriceTable
from rpra_agent.store.stats import compute_stats
from tests.store.conftest import make_decision


def test_is_a_decision_store(store):
    assert isinstance(store, DecisionStore)


def test_round_trip_keeps_every_field(store):
    d = make_decision(tool_calls=("add", "search"), error="TimeoutError", degraded=True, kind="action")
    none_pred = make_decision(prediction=None, route="large", reason="predictor_error", legs={}, metadata={})
    store.add(d)
    store.add(none_pred)
    store.flush()
    got = {x.id: x for x in store.decisions()}
    assert got[d.id] == d
    assert got[none_pred.id] == none_pred
    assert got[d.id].prediction.grade == "great"


def test_text_no_database_can_hold_is_stored_with_a_replacement_character(store, store_url):
    """NUL (PostgreSQL's text and JSON refuse it) and a lone surrogate (not UTF-8) reach the log as U+FFFD.

    Chat input carries them (pasted binary, a broken emoji split by a client); the
    decision is stored with the rest of its text intact instead of being rejected.
    """
    d = make_decision(
        request="a\x00b \ud83d end",
        response="ok\x00",
        task="ma\x00th",
        metadata={"context": [{"role": "user", "content": "x\x00y"}], "note\x00": "\ud800"},
    )
    store.add(d)
    store.flush()
    (got,) = store.decisions()
    if store_url == "memory://":  # Python strings, never encoded: kept exactly
        assert got == d
        return
    assert got.request == "a\ufffdb \ufffd end" and got.response == "ok\ufffd" and got.task == "ma\ufffdth"
    assert got.metadata["context"] == [{"role": "user", "content": "x\ufffdy"}]
    assert got.metadata["note\ufffd"] == "\ufffd"
    store.add_verdicts([Verdict(d.id, "ok", 0.5, "paper3", "judge\x00m", "v1", rationale="so\x00so \udc00")])
    (verdict,) = store.verdicts([d.id])
    assert (verdict.judge, verdict.rationale) == ("judge\ufffdm", "so\ufffdso \ufffd")


def test_add_is_idempotent_on_id(store):
    d = make_decision()
    for _ in range(3):
        store.add(d)
    store.add(d.with_updates(response="a different response, same id"))
    store.flush()
    rows = store.decisions()
    assert [x.id for x in rows] == [d.id]
    assert rows[0].response == d.response  # first write wins


async def test_aadd_and_async_reads(store):
    ds = [make_decision(run_id="async-run", step=i) for i in range(20)]
    await asyncio.gather(*(store.aadd(d) for d in ds))
    store.flush()
    got = store.decisions(DecisionFilter(run_id="async-run"))
    assert sorted(x.id for x in got) == sorted(d.id for d in ds)
    if hasattr(store, "adecisions"):
        assert len(await store.adecisions(DecisionFilter(run_id="async-run"))) == 20


def test_filters_and_order(store):
    a = make_decision(run_id="r-a", thread_id="t-a", task="math", kind="answer", created_at="2026-01-01T00:00:00+00:00")
    b = make_decision(run_id="r-a", thread_id="t-a", task="code", kind="action", created_at="2026-01-02T00:00:00+00:00")
    c = make_decision(run_id="r-b", thread_id=None, task=None, kind="answer", created_at="2026-01-03T00:00:00+00:00")
    for d in (c, a, b):
        store.add(d)
    store.flush()
    ids = lambda **kw: [x.id for x in store.decisions(DecisionFilter(**kw))]  # noqa: E731
    assert ids() == [a.id, b.id, c.id]
    assert ids(run_id="r-a") == [a.id, b.id]
    assert ids(thread_id="t-a") == [a.id, b.id]
    assert ids(task="code") == [b.id]
    assert ids(kind="answer") == [a.id, c.id]
    assert ids(since="2026-01-02") == [b.id, c.id]
    assert ids(limit=2) == [a.id, b.id]
    assert ids(run_id="r-b", kind="action") == []


def test_verdicts_and_unjudged(store):
    # explicit times: the stores order by created_at, which must not depend on how many decisions other tests made
    ds = [make_decision(run_id="v", step=i, created_at=f"2026-11-25T10:00:0{i}+00:00") for i in range(3)]
    for d in ds:
        store.add(d)
    good = Verdict(ds[0].id, "great", 1.0, "paper3", "judge-m", "v1", rationale="fine")
    unusable = Verdict(ds[1].id, None, None, "paper3", "judge-m", "v1")
    store.add_verdicts([good, unusable])
    store.add_verdicts([good])  # idempotent
    assert {v.id for v in store.verdicts()} == {good.id, unusable.id}
    assert store.verdicts([ds[0].id]) == [good]
    assert store.verdicts([ds[2].id]) == []
    unjudged = [x.id for x in store.decisions(DecisionFilter(run_id="v", unjudged=True))]
    assert unjudged == [ds[1].id, ds[2].id]


def test_runs_upsert_keeps_config(store):
    store.upsert_run("run-x", thread_id="t", paradigm="rpra", config={"threshold": 0.4}, status="running")
    store.upsert_run("run-x", thread_id="t", paradigm="rpra", config={}, status="completed")
    store.flush()
    run = store.runs()["run-x"]
    assert run["status"] == "completed"
    assert run["paradigm"] == "rpra" and run["thread_id"] == "t"
    assert run["config"] == {"threshold": 0.4}  # an empty update keeps the snapshot


def test_artifacts_are_versioned(store):
    assert store.latest_artifact("report_card", "small-m") is None
    one = store.put_artifact("report_card", "small-m", {"text": "mostly ok", "counts": {"ok": 3}})
    two = store.put_artifact("report_card", "small-m", {"text": "mostly great"})
    other = store.put_artifact("calibration", "small-m", {"threshold": 0.42})
    assert (one.version, two.version, other.version) == (1, 2, 1)
    latest = store.latest_artifact("report_card", "small-m")
    assert latest.version == 2 and latest.payload == {"text": "mostly great"}
    assert store.latest_artifact("calibration", "small-m").payload == {"threshold": 0.42}
    assert store.latest_artifact("calibration", "nope") is None


def test_close_flushes(store_url, open_test_store, tmp_path):
    if store_url == "memory://":
        pytest.skip("the in-memory store has nothing to persist")
    first = open_test_store(store_url)
    ds = [make_decision(run_id="closing") for _ in range(50)]
    for d in ds:
        first.add(d)
    first.close()
    again = open_test_store(store_url)
    assert len(again.decisions(DecisionFilter(run_id="closing"))) == 50


def _populate(store):
    days = ["2026-11-20", "2026-11-21"]
    for i in range(12):
        deferred = i % 3 == 0
        legs = {"predict": make_decision().legs["predict"], "small": make_decision().legs["small"]}
        if deferred:
            legs = {**legs, "large": legs["small"].__class__("large-m", 20, 40, 9.0)}
        d = make_decision(
            run_id="stats",
            step=i % 2,
            kind="action" if i % 4 == 0 else "answer",
            route="large" if deferred else "small",
            reason="predicted_low" if deferred else "predicted_ok",
            small_model="small-a" if i < 6 else "small-b",
            distribution={"bad": 1.0} if deferred else {"great": 1.0},
            legs=legs,
            created_at=f"{days[i % 2]}T12:00:{i:02d}+00:00",
        )
        store.add(d)
        if i in (1, 2, 4):  # small answered: judged on what was given
            store.add_verdicts([Verdict(d.id, "great" if i != 4 else "ok", 1.0, "paper3", "j", "v1")])
        if i == 3:  # deferred: a "given" verdict grades the large model and does not count...
            store.add_verdicts([Verdict(d.id, "great", 1.0, "paper3", "j", "v1", subject="given")])
        if i == 6:  # ...but a hindsight verdict on the small model's answer does
            store.add_verdicts([Verdict(d.id, "bad", 0.0, "paper3", "j", "v1", subject="small")])
    store.flush()


def test_stats_are_the_same_on_every_backend(store):
    _populate(store)
    prices = PriceTable().with_prices({"large-m": (1.0, 2.0)})
    s = compute_stats(store, prices=prices)
    assert (s.decisions, s.deferred) == (12, 4)
    assert s.deferral_rate == pytest.approx(1 / 3)
    assert [(r.key, r.decisions, r.deferred) for r in s.by_kind] == [("action", 3, 1), ("answer", 9, 3)]
    assert [(r.key, r.decisions, r.deferred) for r in s.by_step] == [("0", 6, 2), ("1", 6, 2)]
    assert [(r.key, r.decisions, r.deferred) for r in s.by_model] == [("small-a", 6, 2), ("small-b", 6, 2)]
    assert [(r.key, r.decisions) for r in s.by_day] == [("2026-11-20", 6), ("2026-11-21", 6)]
    assert [(r.key, r.deferred) for r in s.by_reason] == [("predicted_low", 4), ("predicted_ok", 0)]
    legs = {(r.leg, r.model): r for r in s.legs}
    assert [r.leg for r in s.legs] == ["predict", "small", "large"]
    assert legs[("large", "large-m")].calls == 4
    assert legs[("large", "large-m")].input_tokens == 80 and legs[("large", "large-m")].output_tokens == 160
    assert legs[("large", "large-m")].cost == pytest.approx((80 * 1.0 + 160 * 2.0) / 1e6)
    assert legs[("small", "small-m")].cost is None  # no price given, none invented
    assert legs[("small", "small-m")].latency_ms_mean == pytest.approx(5.5)
    assert s.total_cost == pytest.approx(legs[("large", "large-m")].cost)
    # counted: i=1, 2 (great vs great), i=4 (great vs ok), i=6 (bad vs a hindsight "bad"); not i=3 (large's answer)
    assert s.agreement.judged == 4
    assert s.agreement.matches == 3
    assert s.agreement.accuracy == pytest.approx(0.75)
    assert s.agreement.confusion == {"bad": {"bad": 1}, "great": {"great": 2, "ok": 1}}
    assert compute_stats(store, since="2026-11-21").decisions == 6
    assert s.to_dict()["by_kind"][0]["rate"] == pytest.approx(1 / 3)
