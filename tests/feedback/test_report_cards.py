import pytest

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.core.verdict import Verdict
from rpra_agent.feedback import (
    ReportCard,
    build_report_card,
    build_report_cards,
    load_report_card,
    report_card_loader,
)
from rpra_agent.predictors import ReportCardPredictor
from rpra_agent.store import InMemoryDecisionStore
from rpra_agent.testing import ScriptedChatModel
from tests.feedback.builders import decision

SECRET = "Zanzibar-7781 launch codes for Project Bluefin"
EARLY, LATE = "2026-11-21T00:00:00+00:00", "2026-11-22T00:00:00+00:00"


def verdict(d, grade, subject="given", weakest=None, *, at=EARLY, scale="paper3", judge="judge-m"):
    # the judge's rationale quotes the user: the card must never pass that on
    rationale = (f"[weakest: {weakest}] " if weakest else "") + f"The answer repeated {SECRET} without checking."
    score = None if grade is None else GradeScale.named(scale).value(grade)
    return Verdict(d.id, grade, score, scale, judge, "rpra-paper-1", rationale, subject, created_at=at)


def known_log():
    """small-m: math answers great, great, ok, bad(accuracy) + a deferred step's small answer bad(completeness);
    code answers bad(formatting), bad(accuracy), bad(formatting); one math action ok. large-m: one great."""
    ds, vs = [], []
    for grade, weakest in [("great", None), ("great", None), ("ok", "clarity"), ("bad", "accuracy")]:
        d = decision(task="math", request=f"Please solve this: {SECRET}", response=f"Sure: {SECRET}")
        ds.append(d)
        vs.append(verdict(d, grade, weakest=weakest))
    for grade, weakest in [("bad", "formatting"), ("bad", "accuracy"), ("bad", "formatting")]:
        d = decision(task="code", request=f"fix my code {SECRET}")
        ds.append(d)
        vs.append(verdict(d, grade, weakest=weakest))
    d = decision(task="math", kind="action")
    ds.append(d)
    vs.append(verdict(d, "ok", weakest="accuracy"))
    d = decision(task="math", route="large")
    ds.append(d)
    vs += [verdict(d, "great"), verdict(d, "bad", subject="small", weakest="completeness")]
    # noise that must not count: a superseded verdict, an unjudged one, another scale
    vs += [
        verdict(ds[0], "bad", at="2026-11-01T00:00:00+00:00"),
        verdict(ds[1], None),
        verdict(ds[2], "3", scale="ten"),
    ]
    return ds, vs


EXPECTED = """\
Report card of model small-m: 9 past steps graded by judge judge-m (grades worst to best: bad, ok, great).
- all tasks, answers (n=8): great 25%, ok 12%, bad 62%; most often bad; typical failure: weak on accuracy (2 of 5 low grades).
- all tasks, tool actions (n=1): great 0%, ok 100%, bad 0%; most often ok; no low grades.
- task "math", answers (n=5): great 40%, ok 20%, bad 40%; most often bad; typical failure: weak on accuracy (1 of 2 low grades).
- task "code", answers (n=3): great 0%, ok 0%, bad 100%; most often bad; typical failure: weak on formatting (2 of 3 low grades)."""


def test_card_from_a_known_log_has_the_expected_content():
    ds, vs = known_log()
    card = build_report_card(ds, vs, "small-m")
    assert card.text == EXPECTED
    assert 100 <= len(card.text) / 4 <= 200  # about 100-200 tokens
    assert card.judges == ("judge-m",) and card.rubric_versions == (
        "rpra-reconstructed-1",
    )  # the old label reads as the new one
    math = card.section("math", "answer")
    assert math is not None and dict(math.counts) == {"bad": 2, "ok": 1, "great": 2}
    assert math.most_common(card.scale) == "bad"  # ties go to the lower grade
    assert card.distribution("code") == {"bad": 1.0, "ok": 0.0, "great": 0.0}
    assert card.distribution("math", "action") == {"bad": 0.0, "ok": 1.0, "great": 0.0}
    assert card.distribution("poetry") is None
    assert set(card.distributions) == {
        ("*", "answer"),
        ("*", "action"),
        ("math", "answer"),
        ("code", "answer"),
        ("math", "action"),
    }


def test_deferred_steps_count_for_the_large_model_that_answered():
    ds, vs = known_log()
    large = build_report_card(ds, vs, "large-m")
    assert large.distribution("*") == {"bad": 0.0, "ok": 0.0, "great": 1.0}
    assert "1 past step graded" in large.text and "no low grades" in large.text


def test_card_never_leaks_user_text():
    ds, vs = known_log()
    card = build_report_card(ds, vs, "small-m")
    for piece in ("Zanzibar", "7781", "Bluefin", "launch codes", "repeated", "solve this"):
        assert piece not in card.text and piece not in str(card.to_payload())
        assert all(piece not in card.text_for(t) for t in ("math", "code", None))


def test_llm_summary_is_used_unless_it_quotes_a_user():
    ds, vs = known_log()
    clean = ScriptedChatModel(responses=["Tends to skip verification of its final result."])
    card = build_report_card(ds, vs, "small-m", summarizer=clean)
    assert "typical failure: Tends to skip verification of its final result." in card.text
    prompt = clean.calls[0][1].content
    assert prompt.startswith("<rationales>") and "[weakest:" not in prompt
    quoting = ScriptedChatModel(responses=[f"It repeats {SECRET.lower()} verbatim."])
    card = build_report_card(ds, vs, "small-m", summarizer=quoting)
    assert "Zanzibar" not in card.text.lower() and card.text == EXPECTED
    broken = ScriptedChatModel(responses=[RuntimeError("down")])
    assert build_report_card(ds, vs, "small-m", summarizer=broken).text == EXPECTED


def test_judge_filter_and_errors():
    ds, vs = known_log()
    with pytest.raises(ConfigError, match="no judged decisions of model 'small-m'"):
        build_report_card(ds, vs, "small-m", judge="other-judge")
    with pytest.raises(ConfigError, match="rpra judge"):
        build_report_card(ds, [], "small-m")
    with pytest.raises(ConfigError, match="empty"):
        build_report_cards(InMemoryDecisionStore())
    store = InMemoryDecisionStore()
    store.add(ds[0])
    with pytest.raises(ConfigError, match="judged yet"):
        build_report_cards(store)


def test_ten_point_cards():
    d1, d2 = decision(), decision()
    vs = [verdict(d1, "9", scale="ten"), verdict(d2, "4", scale="ten", weakest="accuracy")]
    card = build_report_card([d1, d2], vs, "small-m", scale=GradeScale.ten_point())
    assert card.distribution("math") == {**{str(i): 0.0 for i in range(1, 11)}, "9": 0.5, "4": 0.5}
    assert "weak on accuracy (1 of 1 low grades)" in card.text


def test_cards_are_versioned_in_the_store_and_loaded_for_the_predictor():
    store = InMemoryDecisionStore()
    ds, vs = known_log()
    for d in ds:
        store.add(d)
    store.add_verdicts(vs)
    loader = report_card_loader(store, "small-m", ttl_s=0)
    assert loader("math") is None  # no card yet
    cards = build_report_cards(store, save=True)
    assert set(cards) == {"small-m", "large-m"} and cards["small-m"].version == 1
    again = build_report_cards(store, ["small-m"], save=True)
    assert again["small-m"].version == 2
    loaded = load_report_card(store, "small-m")
    assert isinstance(loaded, ReportCard) and loaded.version == 2 and loaded.text == EXPECTED
    assert ReportCard.from_payload(loaded.to_payload()).distributions == loaded.distributions
    text = loader("code")
    assert text is not None and 'task "code"' in text and 'task "math"' not in text
    assert "no graded record for this task yet" in (loader("poetry") or "")
    model = ScriptedChatModel(responses=["great"])
    predictor = ReportCardPredictor(model, card=loader, method="text")
    from langchain_core.messages import HumanMessage

    predictor.predict(PredictionRequest(messages=(HumanMessage("hi"),), task="code"))
    assert "<report_card>" in model.calls[0][0].content and 'task "code"' in model.calls[0][0].content


def test_loader_caches_until_the_ttl_expires():
    store = InMemoryDecisionStore()
    ds, vs = known_log()
    for d in ds:
        store.add(d)
    store.add_verdicts(vs)
    build_report_cards(store, ["small-m"], save=True)
    loader = report_card_loader(store, "small-m", ttl_s=3600)
    before = loader("math")
    store.put_artifact("report_card", "small-m", {**load_report_card(store, "small-m").to_payload(), "text": "NEW"})
    assert loader("math") == before  # cached
    assert report_card_loader(store, "small-m", ttl_s=0)("math").startswith("NEW")
