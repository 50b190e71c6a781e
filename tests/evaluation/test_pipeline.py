from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from rpra_agent.core.errors import ConfigError, DatasetError
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.evaluation.datasets import ModelResponse, load_dataset, save_dataset
from rpra_agent.evaluation.runs.crossfit import CardStatPredictor, crossfit_cards
from rpra_agent.evaluation.runs.pipeline import ReplayOptions, run_replay_eval
from rpra_agent.evaluation.runs.replay import ReplayJudge
from rpra_agent.predictors.folds import conversation_key, fold_ids
from rpra_agent.store import DecisionFilter, InMemoryDecisionStore, open_store
from tests.evaluation.toy_data import STRONG, WEAK, toy_dataset

FAST = ReplayOptions(folds=3, learned=False, report=False, operating_router="report_card")


def test_end_to_end_on_a_bundled_slice(tmp_path: Path) -> None:
    full = load_dataset("mt-bench")
    ds = full.subset(range(40))
    result = run_replay_eval(
        ds, out_dir=tmp_path, options=ReplayOptions(folds=4, target_rate=0.25, learned=False, operating_router="card")
    )
    # Every decision of both passes and every verdict is in the SQLite log.
    store = open_store(f"sqlite:///{tmp_path / 'eval.db'}")
    try:
        decisions = store.decisions()
        assert len(decisions) == 80
        assert {d.run_id.split(":")[1] for d in decisions} == {"collect", "route"}
        verdicts = store.verdicts()
        assert len(verdicts) == 40 * 2 + 40
        assert store.latest_artifact("report_card", full.weak) is not None
        cal = store.latest_artifact("calibration", f"eval:{full.name}:report_card")
        assert cal is not None and cal.payload["threshold"] == pytest.approx(result.operating.threshold)  # type: ignore[union-attr]
    finally:
        store.close()
    op = result.operating
    assert op is not None and op.method == "target_rate"
    assert "route_mismatches" not in op.details  # the graph routed exactly as the keep-score rule says
    assert op.quality == pytest.approx(op.details["expected_quality"])
    # The graph deferred exactly the share the calibration chose (the closest to the target).
    assert op.deferral_rate == pytest.approx(op.details["calibrated_deferral_rate"])
    assert abs(op.deferral_rate - 0.25) < 0.2
    assert result.row("oracle").apgr is not None and result.row("oracle").apgr > 0.9
    assert result.row("random").apgr == pytest.approx(0.5)
    assert result.row("report_card").accuracy is not None
    page = Path(result.paths["html"]).read_text()
    b64 = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert b64 is not None and base64.b64decode(b64.group(1)).startswith(b"\x89PNG")
    assert json.loads(Path(result.paths["json"]).read_text())["n_items"] == 40


def test_graph_routes_by_the_cross_fitted_card(tmp_path: Path) -> None:
    ds = toy_dataset(30)
    store = InMemoryDecisionStore()
    result = run_replay_eval(
        ds, out_dir=tmp_path, store=store, options=dataclasses.replace(FAST, threshold=6.0, prior_strength=0.0)
    )
    routed = [d for d in store.decisions() if ":route:" in d.run_id]
    assert len(routed) == 30
    by_task: dict[str | None, set[str]] = {}
    for d in routed:
        by_task.setdefault(d.task, set()).add(d.route)
        assert d.prediction is not None and d.prediction.method == "statistical"
    # The weak model is bad at math and good at chat: the card defers math, keeps chat.
    assert by_task["math"] == {"large"} and by_task["chat"] == {"small"}
    assert result.operating is not None and result.operating.method == "fixed"
    assert result.operating.deferral_precision is not None


def test_no_item_informs_its_own_prediction() -> None:
    ds = toy_dataset(30)
    folds = fold_ids(len(ds), 3, seed=1)

    def predictions(dataset) -> np.ndarray:  # type: ignore[no-untyped-def]
        from rpra_agent.core.decision import Decision

        judge = ReplayJudge(dataset)
        decisions = [
            Decision(
                run_id=f"e:collect:{it.id}",
                step=0,
                kind="answer",
                paradigm="pa",
                prediction=None,
                threshold=0,
                route="small",
                reason="forced",
                task=it.category,
                small_model=WEAK,
                large_model=STRONG,
            )
            for it in dataset.items
        ]
        verdicts = [
            v for d, it in zip(decisions, dataset.items, strict=True) for v in judge.judge_decision(d, item_id=it.id)
        ]
        cards = crossfit_cards(decisions, verdicts, WEAK, folds, scale=judge.scale)
        preds = [CardStatPredictor(c) for c in cards]
        return np.array(
            [
                preds[int(folds[i])].predict(PredictionRequest(messages=(), task=it.category)).expected_score
                for i, it in enumerate(dataset.items)
            ]
        )

    base = predictions(ds)
    target = 3  # a "math" item: flip its own score to the best grade
    item = ds.items[target]
    flipped = dataclasses.replace(item, responses={**item.responses, WEAK: ModelResponse("w", 10.0)})
    changed = predictions(dataclasses.replace(ds, items=(*ds.items[:target], flipped, *ds.items[target + 1 :])))
    assert changed[target] == base[target]  # its own prediction ignores its own verdict
    same_cat_other_fold = [
        i for i, it in enumerate(ds.items) if it.category == item.category and folds[i] != folds[target]
    ]
    assert any(changed[i] != base[i] for i in same_cat_other_fold)


def test_turns_of_one_conversation_share_a_fold() -> None:
    ds = load_dataset("mt-bench")
    folds = fold_ids(len(ds), 5, 0, groups=[conversation_key(it) for it in ds.items])
    by_question: dict[object, set[int]] = {}
    for item, f in zip(ds.items, folds, strict=True):
        by_question.setdefault(item.metadata.get("question_id", item.id.split("-")[0]), set()).add(int(f))
    assert len(by_question) == 80 and all(len(fs) == 1 for fs in by_question.values())
    assert sorted(np.bincount(folds).tolist()) == [32] * 5


def test_items_without_both_scores_are_dropped_and_counted(tmp_path: Path) -> None:
    ds = toy_dataset(12)
    item = ds.items[0]
    broken = dataclasses.replace(item, responses={WEAK: item.responses[WEAK], STRONG: ModelResponse("s", None)})
    ds = dataclasses.replace(ds, items=(broken, *ds.items[1:]))
    result = run_replay_eval(ds, out_dir=tmp_path, store="memory://", options=FAST)
    assert result.n_items == 11 and result.n_dropped == 1


def test_malformed_dataset_file_is_a_clear_error(tmp_path: Path) -> None:
    good = save_dataset(toy_dataset(6), tmp_path / "toy.jsonl")
    lines = good.read_text().splitlines()
    bad = json.loads(lines[3])
    bad["responses"][WEAK]["score"] = "great"
    lines[3] = json.dumps(bad)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as info:
        run_replay_eval(path, out_dir=tmp_path / "out", store="memory://", options=FAST)
    assert info.value.line == 4 and "score" in str(info.value)
    with pytest.raises(DatasetError, match="no such dataset"):
        run_replay_eval(tmp_path / "missing.jsonl", out_dir=tmp_path / "out", options=FAST)


def test_quality_calibration_with_a_guarantee_drives_the_graph(tmp_path: Path) -> None:
    from rpra_agent.feedback.calibration import load_calibrated_policy

    ds = load_dataset("gsm8k").subset(range(300))
    store = InMemoryDecisionStore()
    result = run_replay_eval(
        ds, out_dir=tmp_path, store=store, options=dataclasses.replace(FAST, epsilon=0.1, delta=0.1)
    )
    op = result.operating
    assert op is not None and op.method == "risk"
    assert op.details["epsilon"] == 0.1 and op.details["bound"] is not None
    assert "route_mismatches" not in op.details
    if op.details["certified"]:
        assert op.details["bound"] <= 0.1 + 1e-9
    # The stored calibration is what the graph's policy loads.
    policy = load_calibrated_policy(store, "eval:gsm8k:report_card")
    assert policy.threshold == pytest.approx(op.threshold) and policy.metric == "expected_score"


@pytest.mark.slow
def test_worker_processes_give_the_same_result(tmp_path: Path) -> None:
    ds = load_dataset("mt-bench").subset(range(24))
    opts = dataclasses.replace(FAST, target_rate=0.4)
    one = run_replay_eval(ds, out_dir=tmp_path / "one", options=opts)
    two = run_replay_eval(ds, out_dir=tmp_path / "two", options=dataclasses.replace(opts, workers=2))
    assert [(r.name, r.apgr) for r in one.rows] == [(r.name, r.apgr) for r in two.rows]
    assert one.operating is not None and two.operating is not None
    assert (one.operating.deferral_rate, one.operating.quality) == (two.operating.deferral_rate, two.operating.quality)
    store = open_store(f"sqlite:///{tmp_path / 'two' / 'eval.db'}")
    try:
        assert len(store.decisions()) == 48  # the workers' decisions are in the parent's SQLite file
    finally:
        store.close()


def test_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="choose one"):
        ReplayOptions(threshold=5.0, target_rate=0.3)
    with pytest.raises(ConfigError, match="target_rate"):
        ReplayOptions(target_rate=1.5)
    with pytest.raises(ConfigError, match="folds"):
        run_replay_eval(toy_dataset(2), out_dir=tmp_path, store="memory://", options=FAST)


def test_learned_predictor_joins_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("rpra_agent.predictors.learned")
    result = run_replay_eval(
        toy_dataset(60), out_dir=tmp_path, store="memory://", options=dataclasses.replace(FAST, learned=True)
    )
    names = [r.name for r in result.rows]
    assert names[:3] == ["report_card", "learned", "learned_draft"]
    for name in ("learned", "learned_draft"):
        row = result.row(name)
        assert row.apgr is not None and row.accuracy is not None and row.ece is not None
        assert "learned predictor (target " in row.note and "cross-fitted on the run's folds" in row.note
    assert {c.name for c in result.curves} >= {"learned", "learned_draft"}


def test_the_learned_note_says_when_the_folds_chose_different_targets() -> None:
    from rpra_agent.evaluation.runs._learned import target_note

    assert target_note(("small",) * 5) == "target small"
    mixed = target_note(("small", "gain", "small", "small", "gain"))
    assert mixed.startswith("target gain in 2, small in 3 of 5 folds: the folds disagree")
    assert "docs/LEARNED.md" in mixed


def test_the_best_router_is_set_against_the_best_of_the_other_kind(tmp_path: Path) -> None:
    from rpra_agent.evaluation.report.html import comparison_note, rich_table
    from rpra_agent.evaluation.runs.routers import BASELINES

    options = dataclasses.replace(FAST, learned=True, report=True)
    result = run_replay_eval(load_dataset("mt-bench").subset(range(80)), out_dir=tmp_path, options=options)
    c = result.comparison
    routed = [r for r in result.rows if r.apgr is not None and r.name not in ("random", "oracle")]
    best = max(routed, key=lambda r: r.apgr or 0.0)
    assert c["leader"] == best.name
    other = [r for r in routed if (r.name in BASELINES) != (best.name in BASELINES)]
    assert c["against"] == max(other, key=lambda r: r.apgr or 0.0).name
    assert c["against_is"] == ("best predictor" if best.name in BASELINES else "best baseline")
    assert c["difference"] == pytest.approx(best.apgr - result.row(c["against"]).apgr)
    assert c["low"] <= c["difference"] <= c["high"] and c["resamples"] == 1000 and c["units"] == 40  # conversations
    note = comparison_note(result)
    assert f"{c['leader']} - {c['against']} = {c['difference']:+.3f}" in note
    assert note in str(rich_table(result).caption)
    assert json.loads(Path(result.paths["json"]).read_text())["comparison"]["leader"] == c["leader"]
    assert "paired bootstrap" in Path(result.paths["html"]).read_text()


def test_store_records_are_queryable_per_pass(tmp_path: Path) -> None:
    store = InMemoryDecisionStore()
    run_replay_eval(toy_dataset(9), out_dir=tmp_path, store=store, options=FAST)
    first = store.decisions(DecisionFilter(task="math"))
    assert first and all(d.task == "math" for d in first)
    verdict_subjects = {v.subject for v in store.verdicts()}
    assert verdict_subjects == {"given", "large"}
