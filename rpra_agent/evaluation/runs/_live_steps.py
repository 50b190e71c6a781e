"""The judge, predict and metrics stages of the live evaluation (each resumable)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.judging import Judge, judge_tasks
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.core.verdict import Verdict
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.evaluation.report.results import Curve, EvalResult, PredictorRow
from rpra_agent.evaluation.runs._journal import PredictionJournal
from rpra_agent.evaluation.runs._scoring import (
    agreement_row,
    baseline_rows,
    card_summary,
    computed_operating_point,
    predictor_row,
)
from rpra_agent.evaluation.runs.calibrate import calibrate_threshold, calibration_details, run_method
from rpra_agent.evaluation.runs.crossfit import crossfit_cards
from rpra_agent.evaluation.runs.replay import item_message
from rpra_agent.predictors.folds import stable_fold_ids
from rpra_agent.store.base import DecisionStore

__all__ = ["judge_pending", "live_rows", "predict_pending"]

logger = logging.getLogger(__name__)

Verdicts = dict[tuple[str, str], Verdict]


def _judged(store: DecisionStore, decision_ids: Sequence[str]) -> Verdicts:
    out: Verdicts = {}
    for v in sorted(store.verdicts(list(decision_ids)), key=lambda v: v.created_at):
        if v.judged:
            out[(v.decision_id, v.subject)] = v
    return out


def judge_pending(
    judge: Judge,
    store: DecisionStore,
    ds: EvalDataset,
    answers: Mapping[str, Decision],
    larges: Mapping[str, Decision],
    *,
    batch: int,
    progress: Any,
) -> Verdicts:
    """Judge what has no usable verdict yet: the small and the large answer to a prompt together.

    Returns:
        The judged verdicts by ``(answer decision id, subject)``; subject ``given`` is
        the small answer, ``large`` the large model's answer to the same prompt.
    """
    from rpra_agent.feedback import Candidate, JudgeTask

    verdicts = _judged(store, [d.id for d in answers.values()])
    tasks = []
    for item in ds.items:
        answer = answers.get(item.id)
        if answer is None:
            continue
        cands = []
        if (answer.id, "given") not in verdicts:
            cands.append(Candidate(answer.response, answer.id, "given"))
        big = larges.get(item.id)
        if big is not None and (answer.id, "large") not in verdicts:
            cands.append(Candidate(big.response, answer.id, "large"))
        if cands:
            tasks.append(JudgeTask(tuple(item_message(item)), tuple(cands)))
    total = sum(1 for it in ds.items if it.id in answers)
    progress.stage(f"judge: {total - len(tasks)} of {total} already judged", total)
    progress.advance(total - len(tasks))
    for start in range(0, len(tasks), batch):
        chunk = tasks[start : start + batch]
        fresh = [v for vs in judge_tasks(judge, chunk, max_concurrency=batch) for v in vs]
        store.add_verdicts(fresh)
        verdicts.update({(v.decision_id, v.subject): v for v in fresh if v.judged})
        progress.advance(len(chunk))
    unjudged = sum(1 for d in answers.values() if (d.id, "given") not in verdicts)
    if unjudged:
        logger.warning(
            "%d small answers stayed unjudged (the judge's output was unusable); run again to retry", unjudged
        )
    return verdicts


def _predict(predictor: Any, item: Any) -> tuple[Prediction | None, str | None]:
    request = PredictionRequest(messages=tuple(item_message(item)), task=item.category)
    try:
        return predictor.predict(request), None
    except PredictorError as exc:
        return None, str(exc)


def predict_pending(
    small: Any,
    fine_tuned: Any,
    ds: EvalDataset,
    answers: Mapping[str, Decision],
    verdicts: Verdicts,
    journal: PredictionJournal,
    *,
    scale: GradeScale,
    folds: int,
    seed: int,
    progress: Any,
) -> dict[str, dict[str, Prediction | None]]:
    """Predictions per predictor and item: zero-shot (from the graph), report card, fine-tuned."""
    from rpra_agent.predictors import FineTunedPredictor, ReportCardPredictor

    items = [it for it in ds.items if it.id in answers and (answers[it.id].id, "given") in verdicts]
    out: dict[str, dict[str, Prediction | None]] = {"zero_shot": {it.id: answers[it.id].prediction for it in items}}
    if not items:
        return out
    fold = stable_fold_ids([it.id for it in items], folds, seed)
    decisions = [answers[it.id] for it in items]
    given = [verdicts[(d.id, "given")] for d in decisions]
    cards = crossfit_cards(decisions, given, decisions[0].small_model, fold, scale=scale)
    makers: dict[str, Any] = {
        "report_card": lambda f: ReportCardPredictor(small, card=cards[f].text_for, scale=scale),
    }
    if fine_tuned is not None:
        makers["fine_tuned"] = lambda f: FineTunedPredictor(fine_tuned, scale=scale)
    for name, make in makers.items():
        todo = [(i, it) for i, it in enumerate(items) if (it.id, name) not in journal]
        progress.stage(f"predict ({name}): {len(items) - len(todo)} of {len(items)} already done", len(items))
        progress.advance(len(items) - len(todo))
        predictors: dict[int, Any] = {}
        for i, item in todo:
            f = int(fold[i])
            predictor = predictors.setdefault(f, make(f))
            pred, error = _predict(predictor, item)
            journal.put(item.id, name, pred, error=error)
            progress.advance(1)
        out[name] = {it.id: journal.get(it.id, name) for it in items}
    return out


def _dist(pred: Prediction | None, scale: GradeScale) -> Mapping[str, float]:
    # A failed prediction defers (fail toward quality): all mass on the lowest grade.
    return pred.distribution if pred is not None else scale.one_hot(scale.labels[0])


def live_rows(
    store: DecisionStore,
    ds: EvalDataset,
    answers: Mapping[str, Decision],
    verdicts: Verdicts,
    preds: Mapping[str, Mapping[str, Prediction | None]],
    *,
    scale: GradeScale,
    opts: Any,
    eval_id: str,
) -> EvalResult:
    """The figures of a live evaluation from its decisions, verdicts and predictions."""
    from rpra_agent.feedback import build_report_card, save_report_card

    routing = bool(opts.judge_large)
    items = [
        it
        for it in ds.items
        if it.id in answers
        and (answers[it.id].id, "given") in verdicts
        and (not routing or (answers[it.id].id, "large") in verdicts)
    ]
    if not items:
        raise PredictorError("no prompt has a judged small answer (and a judged large one): nothing to measure")
    given = [verdicts[(answers[it.id].id, "given")] for it in items]
    labels = [str(v.grade) for v in given]
    weak = np.array([float(v.score or 0.0) for v in given])
    rows: list[tuple[PredictorRow, Curve | None]] = []
    keeps: dict[str, np.ndarray] = {}
    strong = np.zeros(len(items))
    if routing:
        strong = np.array([float(verdicts[(answers[it.id].id, "large")].score or 0.0) for it in items])
    for name, by_item in preds.items():
        dists = [_dist(by_item.get(it.id), scale) for it in items]
        failed = sum(1 for it in items if by_item.get(it.id) is None)
        note = f"{failed} failed predictions count as deferrals" if failed else ""
        if name == "report_card":
            note = f"card {opts.folds}-fold cross-fitted" + (f"; {note}" if note else "")
        if routing:
            keeps[name] = np.array([scale.expected(d) for d in dists])
            rows.append(
                predictor_row(
                    name, weak, strong, keeps[name], true_labels=labels, distributions=dists, scale=scale, note=note
                )
            )
        else:
            rows.append((agreement_row(name, labels, dists, scale, note=note), None))
    operating = None
    if routing:
        rows += baseline_rows(weak, strong, [answers[it.id].response for it in items])
        route = "report_card" if "report_card" in keeps else "zero_shot"
        cal = calibrate_threshold(
            store,
            ds,
            keeps[route],
            weak,
            strong,
            opts,
            predictor=route,
            scale=scale,
            score_range=(scale.low, scale.high),
        )
        operating = computed_operating_point(
            predictor=route,
            metric="expected_score",
            threshold=cal.threshold,
            method=run_method(cal),
            calibration_version=cal.version,
            weak=weak,
            strong=strong,
            keep=keeps[route],
            details={
                **calibration_details(cal),
                "operating_router_choice": "live: the report card when it was built, else zero-shot",
            },
        )
    decisions = [answers[it.id] for it in items]
    card = save_report_card(store, build_report_card(decisions, given, decisions[0].small_model, scale=scale))
    return EvalResult(
        dataset=ds.name,
        protocol=(
            f"live: small answers judged jointly with the large answer; report card {opts.folds}-fold cross-fitted; "
            "the operating point is computed from the predictions"
        ),
        n_items=len(items),
        n_dropped=len(ds) - len(items),
        weak="",
        strong="",
        scale=scale.name,
        rows=[r for r, _ in rows],
        curves=[c for _, c in rows if c is not None],
        operating=operating,
        report_card=card_summary(card, scale),
        eval_id=eval_id,
        mode="live",
    )
