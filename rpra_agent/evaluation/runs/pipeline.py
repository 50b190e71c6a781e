"""The offline evaluation: the actual RPRA graph replayed over a recorded dataset.

``rpra eval --dataset mt-bench`` runs :func:`run_replay_eval`. Stages:

1. **collect**: the graph (``AlwaysSmall``) runs every item with the replay models,
   as a deployment's log fills in shadow: every decision goes to the store.
2. **judge**: the replay judge records verdicts on the small answer (``given``) and,
   in hindsight, on the large model's answer (``large``).
3. **report card**: the small model's card is built from the log (the feedback
   builder) and stored as an artifact; ``k`` cross-fitted cards are built, one per
   fold, each from the other folds only.
4. **learned** and **baselines**: every selected router of
   :mod:`~rpra_agent.evaluation.runs.routers` scores every item, cross-fitted on the
   run's folds: the card read statistically
   (:class:`~rpra_agent.evaluation.runs.crossfit.CardStatPredictor`), the learned
   predictor and TF-IDF + ridge (request, request + draft), shortest-first, random,
   oracle, and any trained artifact; the operating router is chosen
   (``--operating-router``, by default the router with distributions and the best APGR).
5. **calibrate**: a threshold on the operating router's keep-score (fixed, a target
   deferral rate, or a quality-loss bound), stored as a calibration artifact.
6. **route**: the graph runs every item again with the operating router (its fold's
   card, or its cross-fitted predictions replayed) and the calibrated
   ``ThresholdPolicy``; the judge grades what it answered; the realised quality,
   deferral rate and cost form the operating point. A router that reads the small
   model's answer routes in the ``verify`` paradigm: the small model answers every
   item first, so its tokens and cost count on the deferred items too. A router that predicts no grade
   (shortest-first) gives an operating point computed from the
   recording instead.
7. **report**: agreement and routing figures for every router; a PNG, a
   self-contained HTML report and a JSON file in ``out_dir``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rpra_agent.core.decision import Paradigm
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.policy import AlwaysSmall
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.evaluation.datasets.records import EvalDataset, load_dataset
from rpra_agent.evaluation.datasets.scales import scale_for
from rpra_agent.evaluation.metrics.costs import PriceTable
from rpra_agent.evaluation.report.html import write_report
from rpra_agent.evaluation.report.results import Curve, EvalResult, PredictorRow
from rpra_agent.evaluation.runs._replay_steps import (
    Timer,
    by_item_id,
    card_note,
    choice_note,
    graph_pool,
    judge_all,
    open_db,
    protocol_note,
    route_items,
    router_row,
    run_costs,
)
from rpra_agent.evaluation.runs._router_scores import length_scores, router_scores
from rpra_agent.evaluation.runs._scoring import (
    baseline_rows,
    card_summary,
    computed_operating_point,
    graph_operating_point,
    leader_comparison,
)
from rpra_agent.evaluation.runs.calibrate import (
    calibrate_threshold,
    calibration_details,
    check_operating_options,
    run_method,
)
from rpra_agent.evaluation.runs.crossfit import CardStatPredictor, crossfit_cards
from rpra_agent.evaluation.runs.graphrun import EvalProgress, NullProgress, masked_url, run_items
from rpra_agent.evaluation.runs.replay import ReplayChatModel, ReplayIndex, ReplayJudge
from rpra_agent.evaluation.runs.routers import (
    ReplayedPredictor,
    RouterOptions,
    RouterScores,
    auto_candidates,
    choose_operating_router,
)
from rpra_agent.graph import build_rpra_graph
from rpra_agent.predictors.folds import conversation_key, fold_ids
from rpra_agent.store import DecisionStore

__all__ = ["ReplayOptions", "run_replay_eval"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayOptions(RouterOptions):
    """Knobs of :func:`run_replay_eval` (and the router knobs of :class:`RouterOptions`).

    Attributes:
        folds: Cross-fitting folds (every prediction comes from the other folds).
        seed: Seed of the fold assignment.
        threshold: A fixed threshold on the card's expected grade (skips calibration).
        target_rate: Calibrate to defer this share of requests (a quantile).
        epsilon: Calibrate to lose at most this much quality (score units) against
            always-large, with confidence ``1 - delta``.
        delta: See ``epsilon``.
        prices: Price table for costs (``None``: recorded costs when every item has
            one, else token counts only).
        paradigm: The graph's paradigm (``pa``; replay has no reasoning text).
        batch_size: Items per ``graph.batch`` call.
        max_concurrency: Concurrent graph runs within a batch.
        prior_strength: Smoothing of a category's card distribution toward all tasks.
        report: Write the PNG, HTML and JSON files.
        workers: Worker processes for the two graph passes (needs an SQL store URL;
            1 runs them in this process). Workers are spawned: a script that sets
            this needs the ``if __name__ == "__main__":`` guard.
    """

    folds: int = 5
    seed: int = 0
    threshold: float | None = None
    target_rate: float | None = None
    epsilon: float | None = None
    delta: float = 0.1
    prices: PriceTable | None = None
    paradigm: Paradigm = "pa"
    batch_size: int = 256
    max_concurrency: int = 4
    prior_strength: float = 1.0
    report: bool = True
    workers: int = 1

    def __post_init__(self) -> None:
        check_operating_options(self.threshold, self.target_rate, self.epsilon, self.delta)
        if self.batch_size < 1 or self.max_concurrency < 1 or self.workers < 1:
            raise ConfigError("batch_size, max_concurrency and workers must be at least 1")


def _check_operating_router(opts: ReplayOptions) -> None:
    """Refuse an ``--operating-router`` that this run will not compute before any work (not after it)."""
    from rpra_agent.evaluation.runs.artifacts import artifact_name

    selection = opts.selected_routers()
    choose_operating_router(
        opts.operating_router, [], [*selection.names, *(artifact_name(p) for p in selection.artifacts)], []
    )


def run_replay_eval(
    dataset: str | Path | EvalDataset,
    *,
    out_dir: str | Path = "rpra_out",
    store: DecisionStore | str | None = None,
    options: ReplayOptions | None = None,
    progress: EvalProgress | None = None,
) -> EvalResult:
    """Replay a recorded dataset through the RPRA graph and measure every predictor.

    Args:
        dataset: A bundled name (``mt-bench``, ``gsm8k`` ...), a dataset file, or a dataset.
        out_dir: Where the SQLite log and the report files go.
        store: A store, or a database URL; default ``sqlite:///<out_dir>/eval.db``.
            Each run's records carry a fresh eval id, so a reused file keeps older runs.
        options: See :class:`ReplayOptions`.
        progress: Progress sink (the CLI's Rich bar).

    Returns:
        The figures, curves, operating point, report card and files written.

    Raises:
        DatasetError: when the dataset cannot be loaded, or no item is scored for both models.
        ConfigError: on bad options (or too few judged items to cross-fit).
    """
    opts = options or ReplayOptions()
    _check_operating_router(opts)
    progress = progress or NullProgress()
    timer = Timer(progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with timer.stage("load", "loading the dataset"):
        full = dataset if isinstance(dataset, EvalDataset) else load_dataset(dataset)
        ds = full.require_judged()
        scale = scale_for(ds)
        n = len(ds)
        folds = fold_ids(n, opts.folds, opts.seed, groups=[conversation_key(it) for it in ds.items])
    db, owned, db_label = open_db(store, out)
    eval_id = f"eval-{uuid.uuid4().hex[:10]}"
    index = ReplayIndex(ds)
    small, large = ReplayChatModel.for_dataset(ds, index)
    judge = ReplayJudge(ds, scale=scale, index=index)
    run: dict[str, Any] = {
        "eval_id": eval_id,
        "progress": progress,
        "batch_size": opts.batch_size,
        "max_concurrency": opts.max_concurrency,
    }
    pool = graph_pool(ds, db_label, owned, opts)
    try:
        with timer.stage("collect", "collect: the small model answers (graph)", n):
            if pool is not None:
                done = pool.run(
                    [(range(n), None)], phase="collect", policy=AlwaysSmall(), paradigm=opts.paradigm, **run
                )
                collected = [done[i] for i in range(n)]
            else:
                graph = build_rpra_graph(
                    small=small, large=large, policy=AlwaysSmall(), paradigm=opts.paradigm, store=db
                )
                collected = run_items(graph, ds.items, phase="collect", **run)
        with timer.stage("judge", "judge: replaying the recorded verdicts", n):
            verdicts = judge_all(judge, collected, ("given", "large"), db, progress)
        with timer.stage("card", "report card: built and cross-fitted"):
            from rpra_agent.feedback import build_report_card, save_report_card

            card = save_report_card(db, build_report_card(collected, verdicts, ds.weak, scale=scale))
            cards = crossfit_cards(collected, verdicts, ds.weak, folds, scale=scale)
            predictors = [CardStatPredictor(c, prior_strength=opts.prior_strength) for c in cards]
            preds = [
                predictors[int(folds[i])].predict(PredictionRequest(messages=(), task=item.category))
                for i, item in enumerate(ds.items)
            ]
        weak, strong = ds.scores(ds.weak), ds.scores(ds.strong)
        labels = [scale.label_for(float(x)) for x in weak]
        card_scores = RouterScores(
            "report_card",
            np.array([p.expected_score for p in preds], dtype=float),
            [dict(p.distribution) for p in preds],
            scale,
            card_note(ds, opts.folds),
        )
        selection = opts.selected_routers()
        with timer.stage("learned", "learned predictor: cross-fitting (request, draft)"):
            scores = [
                card_scores,
                *router_scores(ds, scale, selection, folds, opts.seed, learned=True, neighbours=opts.neighbours),
            ]
        with timer.stage("baselines", "baselines and artifacts: TF-IDF + ridge (cross-fitted), shortest-first"):
            scores += router_scores(ds, scale, selection, folds, opts.seed, learned=False)
            rows_curves: list[tuple[PredictorRow, Curve | None]] = [
                router_row(r, weak, strong, labels, scale) for r in scores
            ]
            rows_curves += baseline_rows(weak, strong, ds.texts(ds.weak) if selection.wants("answer_length") else None)
            rows = [r for r, _ in rows_curves]
            candidates = [r.name for r in rows if r.name in {s.name for s in scores} or r.name == "answer_length"]
            fixed = opts.threshold is not None
            op_name = choose_operating_router(
                opts.operating_router, rows, candidates, auto_candidates(scores, scale, fixed_threshold=fixed)
            )
            op = next((s for s in scores if s.name == op_name), None) or length_scores(ds)
        op_scale = op.scale or scale
        with timer.stage("calibrate", "calibrate: choosing the threshold"):
            metric = "expected_score" if op.distributions is not None else "keep_score"
            cal = calibrate_threshold(
                db, ds, op.keep, weak, strong, opts, predictor=op_name, scale=op_scale, metric=metric
            )
        weak_costs, strong_costs = run_costs(ds, opts.prices)
        common: dict[str, Any] = {
            "predictor": op_name,
            "metric": metric,
            "threshold": cal.threshold,
            "method": run_method(cal),
            "calibration_version": cal.version,
            "weak": weak,
            "strong": strong,
            "keep": op.keep,
        }
        details = {
            **calibration_details(cal),
            "operating_router_choice": choice_note(opts.operating_router, fixed_threshold=fixed),
        }
        if margin := op.threshold_scale(scale):
            details["threshold_scale"] = margin
        if op.distributions is None:  # not a grade prediction: what its threshold does on the recording
            operating = computed_operating_point(**common, details=details)
        else:
            route_predictors = (
                predictors
                if op_name == "report_card"
                else [ReplayedPredictor(op_name, by_item_id(ds, op.distributions), op_scale, index)] * opts.folds
            )
            paradigm: Paradigm = "verify" if op.reads_draft() else opts.paradigm
            if paradigm != opts.paradigm:
                details["route_paradigm"] = (
                    f"verify: {op_name} reads the small model's answer, so the small model answers every item "
                    "and its output tokens count on the deferred ones too"
                )
            with timer.stage("route", f"route: the graph with {op_name} at the calibrated threshold", n):
                routed = route_items(
                    ds, folds, route_predictors, cal.threshold, small, large, db, opts, run, pool, paradigm=paradigm
                )
            given = judge_all(judge, routed, ("given",), db, NullProgress())
            operating = graph_operating_point(
                **common,
                decisions=routed,
                given_scores=np.array([v.score for v in given], dtype=float),
                weak_costs=weak_costs,
                strong_costs=strong_costs,
                details=details,
                drafted=paradigm == "verify",
            )
        db.flush()
    finally:
        if pool is not None:
            pool.close()
        if owned:
            db.close()
    result = EvalResult(
        dataset=ds.name,
        protocol=protocol_note(ds, opts),
        n_items=n,
        n_dropped=len(full) - n,
        weak=ds.weak,
        strong=ds.strong,
        scale=scale.name,
        rows=rows,
        curves=[c for _, c in rows_curves if c is not None],
        operating=operating,
        report_card=card_summary(card, scale),
        paths={"db": masked_url(db_label)},
        timings=timer.times,
        cpu_timings=timer.cpu,
        eval_id=eval_id,
        warnings=[w for w in (ds.strength_warning(),) if w],
        comparison=leader_comparison(
            rows,
            {r.name: r.keep for r in scores},
            weak,
            strong,
            groups=[conversation_key(it) for it in ds.items],
            small_texts=ds.texts(ds.weak),
            seed=opts.seed,
        ),
    )
    for warning in result.warnings:  # the CLI and the HTML report show result.warnings beside the figures
        logger.info("%s: %s", ds.name, warning)
    if opts.report:
        with timer.stage("report", "report: plot, HTML and JSON"):
            write_report(result, out)
        result.timings = timer.times
        result.cpu_timings = timer.cpu
    return result
