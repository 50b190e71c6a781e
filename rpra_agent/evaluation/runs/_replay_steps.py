"""The replay run's steps (see :mod:`.pipeline`): stores, worker pools, judging, routing, notes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rpra_agent.core.decision import Decision, Paradigm
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.policy import ThresholdPolicy
from rpra_agent.core.prediction import Predictor
from rpra_agent.core.verdict import Verdict
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.evaluation.metrics.costs import item_costs
from rpra_agent.evaluation.report.results import Curve, PredictorRow
from rpra_agent.evaluation.runs._parallel import GraphPool
from rpra_agent.evaluation.runs._scoring import predictor_row
from rpra_agent.evaluation.runs.graphrun import EvalProgress, run_items
from rpra_agent.evaluation.runs.replay import ReplayChatModel, ReplayJudge
from rpra_agent.evaluation.runs.routers import RouterScores
from rpra_agent.graph import build_rpra_graph
from rpra_agent.store import DecisionStore, open_store
from rpra_agent.store.prices import PriceTable

logger = logging.getLogger(__name__)

_VERDICT_CHUNK = 2000


class Timer:
    """Wall and CPU seconds per stage (CPU: this process's user + system time)."""

    def __init__(self, progress: EvalProgress) -> None:
        self.times: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str, label: str, total: int | None = None) -> Iterator[None]:
        """Time the stage ``name``, shown as ``label`` on the progress bar."""
        self.progress.stage(label, total)
        start, cpu = time.perf_counter(), time.process_time()
        yield
        self.times[name] = round(time.perf_counter() - start, 3)
        self.cpu[name] = round(time.process_time() - cpu, 3)


def open_db(store: DecisionStore | str | None, out: Path) -> tuple[DecisionStore, bool, str]:
    if store is None or isinstance(store, str):
        url = store or f"sqlite:///{(out / 'eval.db').resolve()}"
        return open_store(url), True, url
    return store, False, type(store).__name__


def graph_pool(ds: EvalDataset, db_label: str, owned: bool, opts: Any) -> GraphPool | None:
    if opts.workers <= 1:
        return None
    if not owned or db_label.startswith("memory:"):
        logger.warning(
            "workers=%d needs an SQL store URL (sqlite:/// or postgresql://); running in-process", opts.workers
        )
        return None
    return GraphPool(ds, db_label, workers=opts.workers)


def judge_all(
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


def run_costs(ds: EvalDataset, prices: PriceTable | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    has_cost = all(r.cost is not None for i in ds.items for m, r in i.responses.items() if m in (ds.weak, ds.strong))
    if prices is None and not has_cost:
        return None, None
    return item_costs(ds, ds.weak, prices), item_costs(ds, ds.strong, prices)


def route_items(
    ds: EvalDataset,
    folds: np.ndarray,
    predictors: Sequence[Predictor],
    threshold: float,
    small: ReplayChatModel,
    large: ReplayChatModel,
    db: DecisionStore,
    opts: Any,
    run: dict[str, Any],
    pool: GraphPool | None = None,
    *,
    paradigm: Paradigm | None = None,
) -> list[Decision]:
    """The route pass: fold ``f``'s items run through a graph holding fold ``f``'s predictor.

    ``paradigm`` (default ``opts.paradigm``): ``verify`` for a router that reads the
    small model's answer, so the small model drafts every item, deferred ones too.
    """
    policy = ThresholdPolicy(threshold=threshold, metric="expected_score", name="calibrated")
    paradigm = paradigm or opts.paradigm
    if pool is not None:
        groups = [(np.flatnonzero(folds == f).tolist(), p) for f, p in enumerate(predictors)]
        done = pool.run(groups, phase="route", policy=policy, paradigm=paradigm, **run)
        return [done[i] for i in range(len(ds))]
    by_item: dict[int, Decision] = {}
    for f, predictor in enumerate(predictors):
        idx = np.flatnonzero(folds == f)
        graph = build_rpra_graph(
            small=small, large=large, predictor=predictor, policy=policy, paradigm=paradigm, store=db
        )
        decisions = run_items(graph, [ds.items[i] for i in idx], phase="route", **run)
        by_item.update(zip((int(i) for i in idx), decisions, strict=True))
    return [by_item[i] for i in range(len(ds))]


def router_row(
    r: RouterScores, weak: np.ndarray, strong: np.ndarray, labels: list[str], scale: GradeScale
) -> tuple[PredictorRow, Curve]:
    """A router's table row and curve; agreement figures only for grades on the judge's ``scale``."""
    graded = r.grades_on(scale)
    return predictor_row(
        r.name,
        weak,
        strong,
        r.keep,
        true_labels=labels,
        distributions=r.distributions if graded else None,
        scale=r.scale if graded else None,
        note=r.note,
    )


def choice_note(requested: str | None, *, fixed_threshold: bool = False) -> str:
    """Why the operating router is the one it is (the report's "set by")."""
    if requested in (None, "", "auto") and fixed_threshold:
        return (
            "auto: the best cross-fitted APGR among the grade predictors, since --threshold is a grade; "
            "--operating-router NAME to choose"
        )
    if requested in (None, "", "auto"):
        return (
            "auto: the best cross-fitted APGR among the routers that predict a distribution (a grade, or the "
            "learned gain over the large model); --operating-router NAME to choose"
        )
    return f"--operating-router {requested}"


def by_item_id(ds: EvalDataset, distributions: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {item.id: d for item, d in zip(ds.items, distributions, strict=True)}


def protocol_note(ds: EvalDataset, opts: Any) -> str:
    routed = ds.metadata.get("protocol") or "per item"
    return (
        f"routed {routed}; report card, learned predictor and TF-IDF baselines {opts.folds}-fold cross-fitted by "
        "conversation on the same folds "
        f"(seed {opts.seed}); "
        "curves at every point k/n with ties averaged exactly (random = its expectation); "
        "the operating point is what the graph did at the operating router's calibrated threshold"
    )


def card_note(ds: EvalDataset, folds: int) -> str:
    categories = {item.category for item in ds.items}
    if len(categories) <= 1:
        return (
            f"no categories: one card distribution for every item, so it cannot rank them; {folds}-fold "
            "cross-fitting alone moves it off 0.5 (each fold is scored by the other folds' mean)"
        )
    return f"card per category ({len(categories)}), {folds}-fold cross-fitted"
