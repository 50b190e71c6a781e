"""The judge, predict and metrics stages of the live evaluation (each resumable)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.judging import Judge, judge_tasks
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.core.verdict import Verdict
from rpra_agent.evaluation.datasets.records import EvalDataset, EvalItem, ModelResponse
from rpra_agent.evaluation.report.results import Curve, EvalResult, PredictorRow
from rpra_agent.evaluation.runs._journal import PredictionJournal
from rpra_agent.evaluation.runs._replay_steps import choice_note, router_row
from rpra_agent.evaluation.runs._router_scores import length_scores
from rpra_agent.evaluation.runs._scoring import (
    agreement_row,
    baseline_rows,
    card_summary,
    computed_operating_point,
    leader_comparison,
)
from rpra_agent.evaluation.runs.calibrate import calibrate_threshold, calibration_details, run_method
from rpra_agent.evaluation.runs.crossfit import crossfit_cards
from rpra_agent.evaluation.runs.replay import item_message
from rpra_agent.evaluation.runs.routers import (
    ALIASES,
    RouterScores,
    RouterSelection,
    auto_candidates,
    choose_operating_router,
)
from rpra_agent.predictors.folds import conversation_key, stable_fold_ids
from rpra_agent.store.base import DecisionStore

__all__ = ["judge_pending", "judged_dataset", "live_folds", "live_router_scores", "live_rows", "predict_pending"]

logger = logging.getLogger(__name__)

Verdicts = dict[tuple[str, str], Verdict]


def live_folds(items: Sequence[EvalItem], folds: int, seed: int) -> np.ndarray:
    """Cross-fitting folds of a live run: stable as items come and go, one fold per conversation.

    Hashing the conversation (:func:`~rpra_agent.predictors.folds.conversation_key`), not
    the item id, keeps the turns of one conversation in one fold, as the replay's folds
    do: a turn's prediction never comes from a model trained on another turn of its
    conversation, and a resumed run gives every item the fold it had.
    """
    return stable_fold_ids([conversation_key(it) for it in items], folds, seed)


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
    fold = live_folds(items, folds, seed)
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


def judged_dataset(
    ds: EvalDataset,
    items: Sequence[EvalItem],
    answers: Mapping[str, Decision],
    larges: Mapping[str, Decision],
    verdicts: Verdicts,
    scale: GradeScale,
) -> EvalDataset:
    """The live run's judged items as a recorded dataset (weak ``small``, strong ``large``), on the judge's scale.

    What the replay's routers read: every item's request, the small and the large
    answer and their scores. The dataset declares the judge's scale
    (:data:`~rpra_agent.predictors.data.GRADE_SCALE_KEY`), so the routers predict on it.
    """
    from rpra_agent.predictors.data import GRADE_SCALE_KEY

    rows = []
    for it in items:
        answer = answers[it.id]
        big = larges.get(it.id)
        large_verdict = verdicts.get((answer.id, "large"))
        responses = {
            "small": ModelResponse(text=answer.response, score=verdicts[(answer.id, "given")].score),
            "large": ModelResponse(
                text=big.response if big is not None else None,
                score=large_verdict.score if large_verdict is not None else None,
            ),
        }
        rows.append(EvalItem(it.id, it.prompt, it.messages, it.category, responses, it.metadata))
    return EvalDataset(
        name=ds.name,
        items=tuple(rows),
        weak="small",
        strong="large",
        score_range=(scale.low, scale.high),
        attribution="live evaluation: the run's own answers and verdicts",
        metadata={"acceptable": scale.acceptable_value, GRADE_SCALE_KEY: scale.to_dict(), "protocol": "per item"},
    )


def _skipped(name: str, why: str) -> tuple[PredictorRow, None]:
    return PredictorRow(name, "predictor", None, note=f"skipped: {why}"), None


def live_router_scores(
    judged: EvalDataset,
    scale: GradeScale,
    selection: RouterSelection,
    folds: np.ndarray,
    *,
    k: int,
    seed: int,
    neighbours: str | None = None,
) -> tuple[list[RouterScores], dict[str, str]]:
    """The selected routers' keep-scores on the judged items, cross-fitted on the run's folds as in the replay.

    Returns:
        The routers computed, and the reason for every selected router that was not.
    """
    from rpra_agent.evaluation.runs._learned import learned_available
    from rpra_agent.evaluation.runs._router_scores import router_scores
    from rpra_agent.evaluation.runs.artifacts import artifact_name

    n = len(judged)
    scores: list[RouterScores] = []
    skipped: dict[str, str] = {}
    fitted = [name for name in ("learned", "learned_draft", "tfidf", "tfidf_draft") if selection.wants(name)]
    if n < k:
        why = f"{n} judged items (small and large answers), fewer than the {k} folds it is cross-fitted on"
        skipped.update(dict.fromkeys(fitted, why))
        fitted = []
    learned = [name for name in fitted if name.startswith("learned")]
    if learned:
        scores += router_scores(
            judged, scale, RouterSelection(tuple(learned)), folds, seed, learned=True, neighbours=neighbours
        )
        why = (
            f"the learned predictor could not be fitted on {n} judged items in {k} folds (the log's warning says why)"
            if learned_available()
            else "the learned predictor is not installed: pip install 'rpra-agent[learned]'"
        )
        skipped.update({name: why for name in learned if name not in {s.name for s in scores}})
    others = [(name, RouterSelection((name,))) for name in fitted if not name.startswith("learned")]
    others += [(artifact_name(p), RouterSelection((), (p,))) for p in selection.artifacts]
    for name, one in others:
        try:
            got = router_scores(judged, scale, one, folds, seed, learned=False)
        except (ConfigError, ValueError) as exc:
            logger.warning("router %s skipped: %s", name, exc)
            skipped[name] = str(exc)
            continue
        scores += got
        if not got:
            skipped[name] = "not installed (pip install 'rpra-agent[learned]'); see the log"
    order = {name: i for i, name in enumerate([*selection.names, *(artifact_name(p) for p in selection.artifacts)])}
    scores.sort(key=lambda r: order.get(r.name, len(order)))
    return scores, skipped


def _operating(
    requested: str | None,
    rows: Sequence[PredictorRow],
    scores: Sequence[RouterScores],
    skipped: Mapping[str, str],
    answer_length: bool,
    scale: GradeScale,
    *,
    fixed_threshold: bool = False,
) -> tuple[str, str]:
    """The operating router and why: the one asked for, else the best cross-fitted router with distributions.

    A router asked for but skipped in this run (too few judged items) falls back to
    ``auto``, and the note says so.
    """
    computed = {s.name for s in scores}
    candidates = [r.name for r in rows if r.name in computed or (answer_length and r.name == "answer_length")]
    # auto: the routers fitted without these items' verdicts (a fine-tuned model or artifact may have seen them)
    graded = auto_candidates(scores, scale, fixed_threshold=fixed_threshold)
    name = requested
    if requested not in (None, "", "auto") and requested in ALIASES and len(ALIASES[requested]) == 1:
        name = ALIASES[requested][0]
    if name is not None and name in skipped:
        chosen = choose_operating_router("auto", rows, candidates, graded)
        instead = choice_note("auto", fixed_threshold=fixed_threshold)
        return chosen, f"--operating-router {requested} was skipped in this run ({skipped[name]}); instead {instead}"
    chosen = choose_operating_router(requested, rows, candidates, graded)
    return chosen, choice_note(requested, fixed_threshold=fixed_threshold)


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
    larges: Mapping[str, Decision] | None = None,
) -> EvalResult:
    """The figures of a live evaluation from its decisions, verdicts and predictions.

    With the large answers judged (``opts.judge_large``), the routers of
    ``opts.selected_routers()`` are cross-fitted on the judged items
    (:func:`live_router_scores`) and ``opts.operating_router`` sets the operating point.
    """
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
    scores: list[RouterScores] = []
    strong = np.zeros(len(items))
    if routing:
        strong = np.array([float(verdicts[(answers[it.id].id, "large")].score or 0.0) for it in items])
    for name, by_item in preds.items():
        dists = [dict(_dist(by_item.get(it.id), scale)) for it in items]
        failed = sum(1 for it in items if by_item.get(it.id) is None)
        note = f"{failed} failed predictions count as deferrals" if failed else ""
        if name == "report_card":
            note = f"card {opts.folds}-fold cross-fitted" + (f"; {note}" if note else "")
        if routing:
            scores.append(RouterScores(name, np.array([scale.expected(d) for d in dists]), dists, scale, note))
            rows.append(router_row(scores[-1], weak, strong, labels, scale))
        else:
            rows.append((agreement_row(name, labels, dists, scale, note=note), None))
    operating = None
    comparison: dict[str, Any] = {}
    warnings: list[str] = []
    selection = opts.selected_routers()
    if routing:
        judged = judged_dataset(ds, items, answers, larges or {}, verdicts, scale)
        warnings += [w for w in (judged.strength_warning(),) if w]
        folds = live_folds(items, opts.folds, opts.seed)
        routers, skipped = live_router_scores(
            judged, scale, selection, folds, k=opts.folds, seed=opts.seed, neighbours=opts.neighbours
        )
        scores += routers
        rows += [router_row(r, weak, strong, labels, scale) for r in routers]
        rows += [_skipped(name, why) for name, why in skipped.items()]
        wants_length = selection.wants("answer_length")
        rows += baseline_rows(weak, strong, judged.texts(judged.weak) if wants_length else None)
        route, choice = _operating(
            opts.operating_router,
            [r for r, _ in rows],
            scores,
            skipped,
            wants_length,
            scale,
            fixed_threshold=opts.threshold is not None,
        )
        op = next((s for s in scores if s.name == route), None) or length_scores(judged)
        metric = "expected_score" if op.distributions is not None else "keep_score"
        cal = calibrate_threshold(
            store,
            ds,
            op.keep,
            weak,
            strong,
            opts,
            predictor=route,
            scale=op.scale or scale,
            score_range=(scale.low, scale.high),
            metric=metric,
        )
        details: dict[str, Any] = {**calibration_details(cal), "operating_router_choice": choice}
        if margin := op.threshold_scale(scale):
            details["threshold_scale"] = margin
        operating = computed_operating_point(
            predictor=route,
            metric=metric,
            threshold=cal.threshold,
            method=run_method(cal),
            calibration_version=cal.version,
            weak=weak,
            strong=strong,
            keep=op.keep,
            details=details,
        )
        comparison = leader_comparison(
            [r for r, _ in rows],
            {r.name: r.keep for r in scores},
            weak,
            strong,
            groups=[conversation_key(it) for it in items],
            small_texts=judged.texts(judged.weak) if wants_length else None,
            seed=opts.seed,
        )
    decisions = [answers[it.id] for it in items]
    card = save_report_card(store, build_report_card(decisions, given, decisions[0].small_model, scale=scale))
    protocol = f"live: small answers judged jointly with the large answer; report card {opts.folds}-fold cross-fitted"
    if routing:
        protocol += (
            "; the other routers cross-fitted on the same folds over the judged items, as in the replay; "
            "the operating point is computed from the predictions"
        )
    else:
        protocol += "; no large answers, so agreement figures only (no routers, no operating point)"
    return EvalResult(
        dataset=ds.name,
        protocol=protocol,
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
        warnings=warnings,
        comparison=comparison,
    )
