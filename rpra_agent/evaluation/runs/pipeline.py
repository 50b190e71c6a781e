"""The offline evaluation: the actual RPRA graph replayed over a recorded dataset.

``rpra eval --dataset mt-bench`` runs :func:`run_replay_eval`. Stages:

1. **collect**: the graph (``AlwaysSmall``) runs every item with the replay models,
   as a deployment's log fills in shadow: every decision goes to the store.
2. **judge**: the replay judge records verdicts on the small answer (``given``) and,
   in hindsight, on the large model's answer (``large``).
3. **report card**: the small model's card is built from the log (the feedback
   builder) and stored as an artifact; ``k`` cross-fitted cards are built, one per
   fold, each from the other folds only.
4. **predict**: each item is predicted by its fold's card, read statistically
   (:class:`~rpra_agent.evaluation.runs.crossfit.CardStatPredictor`); the learned
   predictor joins, cross-fitted, when installed.
5. **calibrate**: a threshold on the card's expected grade (fixed, a target deferral
   rate, or a quality-loss bound), stored as a calibration artifact.
6. **route**: the graph runs every item again with its fold's card predictor and
   the calibrated ``ThresholdPolicy``; the judge grades what it answered; the
   realised quality, deferral rate and cost form the operating point.
7. **metrics and report**: agreement and routing figures for every predictor and
   baseline; a PNG, a self-contained HTML report and a JSON file in ``out_dir``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rpra_agent.core.decision import Decision, Paradigm
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.policy import AlwaysSmall, ThresholdPolicy
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.core.verdict import Verdict
from rpra_agent.evaluation.datasets.records import EvalDataset, load_dataset
from rpra_agent.evaluation.datasets.scales import scale_for
from rpra_agent.evaluation.metrics.costs import PriceTable, item_costs
from rpra_agent.evaluation.report.html import write_report
from rpra_agent.evaluation.report.results import Curve, EvalResult, PredictorRow
from rpra_agent.evaluation.runs._graphrun import EvalProgress, NullProgress, masked_url, run_items
from rpra_agent.evaluation.runs._learned import learned_available, learned_rows
from rpra_agent.evaluation.runs._parallel import GraphPool
from rpra_agent.evaluation.runs._scoring import baseline_rows, card_summary, graph_operating_point, predictor_row
from rpra_agent.evaluation.runs.calibrate import calibrate_threshold, calibration_details, run_method
from rpra_agent.evaluation.runs.crossfit import CardStatPredictor, conversation_key, crossfit_cards, fold_ids
from rpra_agent.evaluation.runs.replay import ReplayChatModel, ReplayIndex, ReplayJudge
from rpra_agent.graph import build_rpra_graph
from rpra_agent.store import DecisionStore, open_store

__all__ = ["ReplayOptions", "run_replay_eval"]

logger = logging.getLogger(__name__)

_VERDICT_CHUNK = 2000


@dataclass(frozen=True)
class ReplayOptions:
    """Knobs of :func:`run_replay_eval`.

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
        learned: Evaluate the learned predictor when it is installed.
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
    learned: bool = True
    prior_strength: float = 1.0
    report: bool = True
    workers: int = 1

    def __post_init__(self) -> None:
        chosen = [n for n in ("threshold", "target_rate", "epsilon") if getattr(self, n) is not None]
        if len(chosen) > 1:
            raise ConfigError(f"choose one of --threshold, --target-rate and --epsilon, not {', '.join(chosen)}")
        if self.target_rate is not None and not 0.0 <= self.target_rate <= 1.0:
            raise ConfigError(f"target_rate must lie in [0, 1], got {self.target_rate}")
        if not 0.0 < self.delta < 1.0:
            raise ConfigError(f"delta must lie in (0, 1), got {self.delta}")
        if self.batch_size < 1 or self.max_concurrency < 1 or self.workers < 1:
            raise ConfigError("batch_size, max_concurrency and workers must be at least 1")


class _Timer:
    def __init__(self, progress: EvalProgress) -> None:
        self.times: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str, label: str, total: int | None = None) -> Iterator[None]:
        self.progress.stage(label, total)
        start = time.perf_counter()
        yield
        self.times[name] = round(time.perf_counter() - start, 3)


def _open(store: DecisionStore | str | None, out: Path) -> tuple[DecisionStore, bool, str]:
    if store is None or isinstance(store, str):
        url = store or f"sqlite:///{(out / 'eval.db').resolve()}"
        return open_store(url), True, url
    return store, False, type(store).__name__


def _pool(ds: EvalDataset, db_label: str, owned: bool, opts: ReplayOptions) -> GraphPool | None:
    if opts.workers <= 1:
        return None
    if not owned or db_label.startswith("memory:"):
        logger.warning(
            "workers=%d needs an SQL store URL (sqlite:/// or postgresql://); running in-process", opts.workers
        )
        return None
    return GraphPool(ds, db_label, workers=opts.workers)


def _judge_all(
    judge: ReplayJudge,
    decisions: list[Decision],
    subjects: tuple[str, ...],
    store: DecisionStore,
    progress: EvalProgress,
) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for start in range(0, len(decisions), _VERDICT_CHUNK):
        chunk = decisions[start : start + _VERDICT_CHUNK]
        batch = [v for d in chunk for v in judge.judge_decision(d, subjects=subjects, item_id=_item_of(d))]
        store.add_verdicts(batch)
        verdicts.extend(batch)
        progress.advance(len(chunk))
    return verdicts


def _item_of(decision: Decision) -> str:
    return decision.run_id.split(":", 2)[2]


def _costs(ds: EvalDataset, prices: PriceTable | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    has_cost = all(r.cost is not None for i in ds.items for m, r in i.responses.items() if m in (ds.weak, ds.strong))
    if prices is None and not has_cost:
        return None, None
    return item_costs(ds, ds.weak, prices), item_costs(ds, ds.strong, prices)


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
        DatasetError: when the dataset cannot be loaded.
        ConfigError: on bad options (or too few judged items to cross-fit).
    """
    opts = options or ReplayOptions()
    progress = progress or NullProgress()
    timer = _Timer(progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with timer.stage("load", "loading the dataset"):
        full = dataset if isinstance(dataset, EvalDataset) else load_dataset(dataset)
        ds = full.judged()
        scale = scale_for(ds)
        n = len(ds)
        folds = fold_ids(n, opts.folds, opts.seed, groups=[conversation_key(it) for it in ds.items])
    db, owned, db_label = _open(store, out)
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
    pool = _pool(ds, db_label, owned, opts)
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
            verdicts = _judge_all(judge, collected, ("given", "large"), db, progress)
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
        keep = np.array([p.expected_score for p in preds], dtype=float)
        labels = [scale.label_for(float(x)) for x in weak]
        with timer.stage("calibrate", "calibrate: choosing the threshold"):
            cal = calibrate_threshold(db, ds, keep, weak, strong, opts, predictor="report_card", scale=scale)
        with timer.stage("route", "route: the graph at the calibrated threshold", n):
            routed = _route(ds, folds, predictors, cal.threshold, small, large, db, opts, run, pool)
        with timer.stage("metrics", "metrics: predictors and baselines", None):
            given = _judge_all(judge, routed, ("given",), db, NullProgress())
            weak_costs, strong_costs = _costs(ds, opts.prices)
            operating = graph_operating_point(
                predictor="report_card",
                metric="expected_score",
                threshold=cal.threshold,
                method=run_method(cal),
                calibration_version=cal.version,
                decisions=routed,
                given_scores=np.array([v.score for v in given], dtype=float),
                weak=weak,
                strong=strong,
                keep=keep,
                weak_costs=weak_costs,
                strong_costs=strong_costs,
                details=calibration_details(cal),
            )
            rows_curves: list[tuple[PredictorRow, Curve | None]] = [
                predictor_row(
                    "report_card",
                    weak,
                    strong,
                    keep,
                    true_labels=labels,
                    distributions=[p.distribution for p in preds],
                    scale=scale,
                    note=_card_note(ds, opts.folds),
                )
            ]
            rows_curves += baseline_rows(weak, strong, ds.texts(ds.weak))
        if opts.learned and learned_available():
            with timer.stage("learned", "learned predictor: cross-fitting (request, draft)"):
                rows_curves[1:1] = learned_rows(ds, weak, strong, labels, scale, folds=opts.folds, seed=opts.seed)
        db.flush()
    finally:
        if pool is not None:
            pool.close()
        if owned:
            db.close()
    result = EvalResult(
        dataset=ds.name,
        protocol=_protocol(ds, opts),
        n_items=n,
        n_dropped=len(full) - n,
        weak=ds.weak,
        strong=ds.strong,
        scale=scale.name,
        rows=[r for r, _ in rows_curves],
        curves=[c for _, c in rows_curves if c is not None],
        operating=operating,
        report_card=card_summary(card, scale),
        paths={"db": masked_url(db_label)},
        timings=timer.times,
        eval_id=eval_id,
    )
    if opts.report:
        with timer.stage("report", "report: plot, HTML and JSON"):
            write_report(result, out)
        result.timings = timer.times
    return result


def _route(
    ds: EvalDataset,
    folds: np.ndarray,
    predictors: list[CardStatPredictor],
    threshold: float,
    small: ReplayChatModel,
    large: ReplayChatModel,
    db: DecisionStore,
    opts: ReplayOptions,
    run: dict[str, Any],
    pool: GraphPool | None = None,
) -> list[Decision]:
    """The route pass: fold ``f``'s items run through a graph holding fold ``f``'s card predictor."""
    policy = ThresholdPolicy(threshold=threshold, metric="expected_score", name="calibrated")
    if pool is not None:
        groups = [(np.flatnonzero(folds == f).tolist(), p) for f, p in enumerate(predictors)]
        done = pool.run(groups, phase="route", policy=policy, paradigm=opts.paradigm, **run)
        return [done[i] for i in range(len(ds))]
    by_item: dict[int, Decision] = {}
    for f, predictor in enumerate(predictors):
        idx = np.flatnonzero(folds == f)
        graph = build_rpra_graph(
            small=small, large=large, predictor=predictor, policy=policy, paradigm=opts.paradigm, store=db
        )
        decisions = run_items(graph, [ds.items[i] for i in idx], phase="route", **run)
        by_item.update(zip((int(i) for i in idx), decisions, strict=True))
    return [by_item[i] for i in range(len(ds))]


def _protocol(ds: EvalDataset, opts: ReplayOptions) -> str:
    routed = ds.metadata.get("protocol") or "per item"
    return (
        f"routed {routed}; report card and learned predictor {opts.folds}-fold cross-fitted by conversation "
        f"(seed {opts.seed}); "
        "curves at every point k/n with ties averaged exactly (random = its expectation); "
        "the operating point is what the graph did at the calibrated threshold"
    )


def _card_note(ds: EvalDataset, folds: int) -> str:
    categories = {item.category for item in ds.items}
    if len(categories) <= 1:
        return (
            f"no categories: one card distribution for every item, so it cannot rank them; {folds}-fold "
            "cross-fitting alone moves it off 0.5 (each fold is scored by the other folds' mean)"
        )
    return f"card per category ({len(categories)}), {folds}-fold cross-fitted"
