from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from rpra_agent.core.errors import ConfigError, DatasetError
from rpra_agent.evaluation.datasets.prompts import load_prompts
from rpra_agent.evaluation.runs.live import LiveOptions, run_live_eval
from rpra_agent.evaluation.runs.routers import select_routers
from rpra_agent.feedback import LLMJudge
from rpra_agent.store import open_store
from rpra_agent.testing import ScriptedChatModel, grade_logprobs
from tests.evaluation.toy_data import toy_dataset

SMALL_REPLY = "I think so."
N = 6


def _prompts(tmp_path: Path, n: int = N, *, categories: bool = True) -> Path:
    lines = [
        {
            "id": f"p{i}",
            "prompt": f"{'hard' if i % 2 else 'easy'} question number {i}?",
            # without categories the card cannot tell hard from easy prompts; the text routers can
            "category": ("math" if i % 2 else "chat") if categories else "general",
        }
        for i in range(n)
    ]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


class CountingJudge:
    """A judge model: small answers to hard questions are bad, easy ones great; large always great."""

    def __init__(self, fail_at: int | None = None, unusable: tuple[str, ...] = ()) -> None:
        self.calls = 0
        self.fail_at = fail_at
        self.unusable = unusable  # prompts (by text) the judge answers with no usable verdict

    def __call__(self, messages: list[BaseMessage]) -> str:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise KeyboardInterrupt  # Ctrl-C in the middle of judging
        text = str(messages[-1].content)
        if any(u in text for u in self.unusable):
            return "I would rather not grade this."
        hard = "hard" in text
        verdicts = []
        for i in range(1, text.count('<response id="') + 1):
            body = text.split(f'<response id="{i}">')[1].split("</response>")[0]
            small = SMALL_REPLY.split()[0] in body
            grade = ("bad" if hard else "great") if small else "great"
            verdicts.append({"response": i, "rationale": "fine", "weakest": "none", "grade": grade})
        return json.dumps({"verdicts": verdicts})


def _fine_tuned() -> ScriptedChatModel:
    """A "fine-tuned" predictor model that learned the truth: hard prompts get bad answers."""
    return ScriptedChatModel(
        responses=[lambda msgs: "bad" if "hard" in str(msgs[-1].content) else "great"], rpra_name="ft"
    )


def _judge(counter: CountingJudge) -> LLMJudge:
    return LLMJudge(ScriptedChatModel(responses=[counter], rpra_name="judge"), backoff_s=0, max_retries=0)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("llama_cpp")
    from rpra_agent.models import load_chat_model
    from rpra_agent.testing.gguf import write_scripted_gguf

    path = write_scripted_gguf(tmp_path_factory.mktemp("live") / "small.gguf", reply=SMALL_REPLY, grade="great")
    return load_chat_model(f"gguf:{path}")


def test_live_eval_end_to_end_and_resumes_after_interruption(tmp_path: Path, small_model: Any) -> None:
    prompts = _prompts(tmp_path)
    out = tmp_path / "out"
    opts = LiveOptions(folds=2, judge_batch=2, batch_size=4)
    large = ScriptedChatModel(responses=["The large answer."], rpra_name="large-m")
    first = CountingJudge(fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_live_eval(prompts, small=small_model, large=large, judge=_judge(first), out_dir=out, options=opts)
    assert len(large.calls) == N

    store = open_store(f"sqlite:///{out / 'eval.db'}")
    judged_before = {v.decision_id for v in store.verdicts() if v.judged}
    store.close()
    assert len(judged_before) == 2  # the first batch of two prompts was saved before the interruption

    large2 = ScriptedChatModel(responses=["The large answer."], rpra_name="large-m")
    second = CountingJudge()
    result = run_live_eval(
        prompts,
        small=small_model,
        large=large2,
        judge=_judge(second),
        fine_tuned=_fine_tuned(),
        out_dir=out,
        options=opts,
    )
    assert second.calls == N - 2  # judged prompts were not judged again
    assert len(large2.calls) == 0  # nor were the large answers regenerated

    # The paper's grade accuracy: the scripted model always predicts "great"; the judge
    # says great on the 3 easy prompts and bad on the 3 hard ones; the fine-tuned model knows.
    names = [r.name for r in result.rows]
    assert names[:3] == ["zero_shot", "report_card", "fine_tuned"]
    for name in ("zero_shot", "report_card"):
        assert result.row(name).accuracy == pytest.approx(0.5)
    assert result.row("fine_tuned").accuracy == pytest.approx(1.0)
    assert result.row("fine_tuned").apgr == pytest.approx(0.75)
    # Deferring the 3 hard prompts first recovers the whole gap at c = 0.5: APGR 0.25 + 0.5.
    assert result.row("oracle").apgr == pytest.approx(0.75)
    assert result.n_items == N and result.mode == "live"
    assert result.operating is not None and result.operating.quality_large == pytest.approx(1.0)
    assert Path(result.paths["html"]).exists() and "data:image/png;base64," in Path(result.paths["html"]).read_text()

    store = open_store(f"sqlite:///{out / 'eval.db'}")
    try:
        answers = [d for d in store.decisions() if ":answer:" in d.run_id]
        assert len(answers) == N and all(d.route == "small" and d.response == SMALL_REPLY for d in answers)
        assert all(d.prediction is not None and d.prediction.grade == "great" for d in answers)
        subjects = sorted(v.subject for v in store.verdicts() if v.judged)
        assert subjects == ["given"] * N + ["large"] * N
    finally:
        store.close()

    # A third run finds everything done: no judge call, no new prediction.
    journal = Path(result.paths["journal"])
    lines = journal.read_text().count("\n")
    third = CountingJudge()
    run_live_eval(
        prompts,
        small=small_model,
        large=large2,
        judge=_judge(third),
        fine_tuned=_fine_tuned(),
        out_dir=out,
        options=opts,
    )
    assert third.calls == 0 and journal.read_text().count("\n") == lines


def test_live_eval_without_large_reports_agreement_only(tmp_path: Path, small_model: Any) -> None:
    result = run_live_eval(
        _prompts(tmp_path),
        small=small_model,
        large=ScriptedChatModel(responses=["unused"]),
        judge=_judge(CountingJudge()),
        out_dir=tmp_path / "out",
        store="memory://",
        options=LiveOptions(folds=2, judge_large=False, report=False),
    )
    assert result.operating is None
    assert result.row("zero_shot").accuracy == pytest.approx(0.5) and result.row("zero_shot").apgr is None
    assert not any(r.kind == "baseline" for r in result.rows)


def _large() -> ScriptedChatModel:
    return ScriptedChatModel(responses=["The large answer."], rpra_name="large-m")


def test_live_eval_cross_fits_the_selected_routers_and_reports_the_named_ones_threshold(
    tmp_path: Path, small_model: Any
) -> None:
    pytest.importorskip("rpra_agent.predictors.crossfit")
    out = tmp_path / "out"
    opts = LiveOptions(folds=3, routers=select_routers(["tfidf", "length"]), operating_router="tfidf_request")
    result = run_live_eval(
        _prompts(tmp_path, 12, categories=False),
        small=small_model,
        large=_large(),
        judge=_judge(CountingJudge()),
        out_dir=out,
        options=opts,
    )
    names = [r.name for r in result.rows]
    assert "tfidf" in names and "tfidf_draft" in names and "answer_length" in names
    assert "learned" not in names and "learned_draft" not in names  # not selected
    # One category, one constant small answer: the card and the zero-shot prediction cannot rank the prompts;
    # TF-IDF + ridge, cross-fitted on the run's folds, learns that "hard" prompts get bad answers, as the oracle.
    assert result.row("report_card").apgr == pytest.approx(0.5)
    assert result.row("tfidf").apgr == pytest.approx(result.row("oracle").apgr) == pytest.approx(0.75)
    assert result.row("tfidf").accuracy is not None and "cross-fitted on the run's folds" in result.row("tfidf").note
    op = result.operating
    assert op is not None and op.predictor == "tfidf" and op.metric == "expected_score"
    assert op.details["operating_router_choice"] == "--operating-router tfidf_request"
    assert op.deferral_rate == pytest.approx(0.5) and op.pgr == pytest.approx(1.0)  # it defers exactly the hard ones
    # A baseline leads, so the line sets it against the best predictor, resampling the 12 conversations.
    c = result.comparison
    assert c["leader"] in ("tfidf", "tfidf_draft") and c["against_is"] == "best predictor"
    assert c["against"] in ("zero_shot", "report_card") and c["difference"] == pytest.approx(0.25)
    assert c["units"] == 12 and c["low"] <= 0.25 <= c["high"]
    data = json.loads((out / "live.json").read_text())
    assert data["operating"]["predictor"] == "tfidf"
    assert next(r for r in data["rows"] if r["name"] == "tfidf")["apgr"] == pytest.approx(0.75)
    assert "tfidf *" in Path(result.paths["html"]).read_text()
    store = open_store(f"sqlite:///{out / 'eval.db'}")
    try:
        cal = store.latest_artifact("calibration", "eval:prompts:tfidf")
        assert cal is not None and cal.payload["threshold"] == pytest.approx(op.threshold)
    finally:
        store.close()


def test_live_eval_auto_operating_router_is_the_best_cross_fitted_grade_predictor(tmp_path: Path) -> None:
    pytest.importorskip("rpra_agent.predictors.crossfit")
    small = ScriptedChatModel(
        responses=[SMALL_REPLY], logprobs=grade_logprobs({"great": 0.7, "ok": 0.2, "bad": 0.1}), rpra_name="s"
    )
    result = run_live_eval(
        _prompts(tmp_path, 12, categories=False),
        small=small,
        large=_large(),
        judge=_judge(CountingJudge()),
        out_dir=tmp_path / "out",
        store="memory://",
        options=LiveOptions(folds=3, report=False),  # every built-in router, operating router auto
    )
    graded = ["zero_shot", "report_card", "learned", "learned_draft", "tfidf", "tfidf_draft"]
    apgr = {name: result.row(name).apgr for name in graded}
    assert all(v is not None for v in apgr.values()), apgr
    assert result.row("learned").accuracy is not None  # the learned predictor predicts on the judge's scale (paper3)
    best = max(graded, key=lambda n: apgr[n] or 0.0)
    assert apgr[best] == pytest.approx(0.75) and apgr["report_card"] == pytest.approx(0.5)
    op = result.operating
    assert op is not None and op.predictor == best
    assert op.details["operating_router_choice"].startswith("auto: the best cross-fitted APGR")


def test_live_eval_skips_routers_with_too_few_judged_items_and_says_why(tmp_path: Path) -> None:
    pytest.importorskip("rpra_agent.predictors.crossfit")
    small = ScriptedChatModel(responses=[SMALL_REPLY], logprobs=grade_logprobs({"great": 1.0}), rpra_name="s")
    judge = CountingJudge(unusable=("number 0?", "number 1?", "number 2?"))
    result = run_live_eval(
        _prompts(tmp_path, N),
        small=small,
        large=_large(),
        judge=_judge(judge),
        out_dir=tmp_path / "out",
        store="memory://",
        options=LiveOptions(folds=4, report=False, operating_router="tfidf"),
    )
    assert result.n_items == 3 and result.n_dropped == 3  # three prompts stayed unjudged
    for name in ("learned", "learned_draft", "tfidf", "tfidf_draft"):
        row = result.row(name)
        assert row.apgr is None and row.note.startswith("skipped: 3 judged items") and "4 folds" in row.note
    assert result.row("report_card").apgr is not None and result.row("answer_length").apgr is not None
    op = result.operating
    assert op is not None and op.predictor in ("zero_shot", "report_card")  # auto among what was computed
    assert "--operating-router tfidf was skipped in this run (3 judged items" in op.details["operating_router_choice"]


@pytest.mark.parametrize(
    ("routers", "operating", "message"),
    [
        ((), "vibes", "unknown --operating-router 'vibes': choose auto or one of this run's routers"),
        ((), "oracle", "reads the recorded scores"),
        (("card",), "learned_draft", "unknown --operating-router 'learned_draft'"),
        (("ARTIFACT",), None, "was trained on score scale 'ten'"),
    ],
)
def test_bad_router_options_fail_before_any_model_runs(
    tmp_path: Path, routers: tuple[str, ...], operating: str | None, message: str
) -> None:
    if routers == ("ARTIFACT",):
        learned = pytest.importorskip("rpra_agent.predictors.learned")
        predictor = learned.LearnedPredictor(mode="request", C=1.0).fit_dataset(toy_dataset(30))  # 1-10 scores
        routers = (str(predictor.save(tmp_path / "art10")),)
    small = ScriptedChatModel(responses=[SMALL_REPLY], rpra_name="s")
    large, judge = _large(), CountingJudge()
    opts = LiveOptions(folds=2, routers=select_routers(list(routers)), operating_router=operating)
    with pytest.raises(ConfigError, match=message) as info:
        run_live_eval(_prompts(tmp_path), small=small, large=large, judge=_judge(judge), out_dir=tmp_path, options=opts)
    if routers and routers[0].endswith("art10"):
        assert "'paper3'" in str(info.value) and "rpra train-predictor" in str(info.value)
    assert small.calls == [] and large.calls == [] and judge.calls == 0


def test_operating_router_without_the_large_answers_is_refused() -> None:
    with pytest.raises(ConfigError, match="drop --no-large"):
        LiveOptions(judge_large=False, operating_router="tfidf")
    assert LiveOptions(judge_large=False, operating_router="auto").operating_router == "auto"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": 3}', "prompt"),
        ('{"id": "a", "prompt": "x", "colour": 1}', "unknown field"),
        ("not json", "not valid JSON"),
        ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}', "last message"),
    ],
)
def test_malformed_prompts_name_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "fine"}\n' + line + "\n")
    with pytest.raises(DatasetError, match=message) as info:
        load_prompts(path)
    assert info.value.line == 2


def test_prompts_file_ids_default_to_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n\n{"prompt": "b", "category": "x"}\n')
    ds = load_prompts(path)
    assert [i.id for i in ds.items] == ["1", "3"] and ds.items[1].category == "x"
    with pytest.raises(DatasetError, match="duplicate id"):
        path.write_text('{"id": 2, "prompt": "a"}\n{"prompt": "b"}\n')
        load_prompts(path)


def test_live_folds_keep_a_conversations_turns_together_and_stay_stable() -> None:
    """Live cross-fitting must not predict turn 2 with a model trained on turn 1 of its conversation."""
    from rpra_agent.evaluation.datasets.records import EvalItem
    from rpra_agent.evaluation.runs._live_steps import live_folds

    def turns(q: int) -> list[EvalItem]:
        first = {"role": "user", "content": f"question {q}: write a poem"}
        second = ({"role": "assistant", "content": "a poem"}, {"role": "user", "content": "now shorter"})
        return [
            EvalItem(f"q{q}-t1", first["content"], (first,), "writing", {}),
            EvalItem(f"q{q}-t2", "now shorter", (first, *second), "writing", {}),
        ]

    items = [it for q in range(40) for it in turns(q)]
    folds = live_folds(items, 5, seed=0)
    assert all(folds[2 * q] == folds[2 * q + 1] for q in range(40))
    assert len(set(folds.tolist())) == 5  # the conversations still spread over every fold
    # a resumed run over more items gives every earlier item its fold
    more = live_folds(items + turns(40), 5, seed=0)
    assert more[: len(items)].tolist() == folds.tolist()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target_rate": 1.5}, "target_rate must lie in"),
        ({"delta": 1.0}, "delta must lie in"),
        ({"epsilon": -0.5}, "epsilon must lie in"),
        ({"threshold": 5.0, "target_rate": 0.3}, "choose one of --threshold, --target-rate and --epsilon"),
    ],
)
def test_live_options_refuse_a_bad_operating_point_before_any_model_call(options: dict[str, Any], message: str) -> None:
    """Checked like the replay's, so a live run never generates and judges only to fail at calibration."""
    from rpra_agent.evaluation.runs.pipeline import ReplayOptions

    with pytest.raises(ConfigError, match=message):
        LiveOptions(**options)
    with pytest.raises(ConfigError, match=message):
        ReplayOptions(**options)
