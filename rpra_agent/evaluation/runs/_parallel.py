"""Graph passes over many items in worker processes (the graph's per-run overhead is Python-bound).

Each worker (spawned, not forked: the parent runs threads) receives the dataset once,
builds its own replay models and opens its own connection to the same SQL store;
tasks are chunks of items with the policy and predictor to use. A worker flushes
its store before returning a chunk, so the parent reads every decision afterwards.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from rpra_agent.core.decision import Decision, Paradigm
from rpra_agent.evaluation.runs.graphrun import EvalProgress, NullProgress

__all__ = ["GraphPool"]

_STATE: dict[str, Any] = {}


def _init(dataset: Any, store_url: str) -> None:
    from rpra_agent.evaluation.runs.replay import ReplayChatModel
    from rpra_agent.store import open_store

    _STATE["dataset"] = dataset
    _STATE["models"] = ReplayChatModel.for_dataset(dataset)
    _STATE["store"] = open_store(store_url)


def _run(
    indices: Sequence[int],
    phase: str,
    eval_id: str,
    policy: Any,
    predictor: Any,
    paradigm: Paradigm,
    batch_size: int,
    max_concurrency: int,
) -> list[dict[str, Any]]:
    from rpra_agent.evaluation.runs.graphrun import run_items
    from rpra_agent.graph import build_rpra_graph

    small, large = _STATE["models"]
    store = _STATE["store"]
    graph = build_rpra_graph(
        small=small, large=large, predictor=predictor, policy=policy, paradigm=paradigm, store=store
    )
    items = [_STATE["dataset"].items[i] for i in indices]
    decisions = run_items(
        graph, items, eval_id=eval_id, phase=phase, batch_size=batch_size, max_concurrency=max_concurrency
    )
    store.flush()
    return [d.to_dict() for d in decisions]


class GraphPool:
    """A pool of worker processes running graph passes over one dataset into one SQL store.

    Args:
        dataset: The (judged) dataset; sent to each worker once.
        store_url: The SQL store's URL (``sqlite:///...`` or ``postgresql://...``).
        workers: Worker processes.
        chunk: Items per task (progress advances per task).
    """

    def __init__(self, dataset: Any, store_url: str, *, workers: int, chunk: int = 1000) -> None:
        self.chunk = chunk
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(dataset, store_url),
        )

    def run(
        self,
        groups: Sequence[tuple[Sequence[int], Any]],
        *,
        phase: str,
        eval_id: str,
        policy: Any,
        paradigm: Paradigm = "pa",
        batch_size: int = 256,
        max_concurrency: int = 4,
        progress: EvalProgress | None = None,
    ) -> dict[int, Decision]:
        """Run one pass; ``groups`` are ``(item indices, predictor)`` pairs; decisions by item index."""
        progress = progress or NullProgress()
        jobs = [
            (list(indices[i : i + self.chunk]), predictor)
            for indices, predictor in groups
            for i in range(0, len(indices), self.chunk)
        ]
        futures = [
            self.pool.submit(_run, c, phase, eval_id, policy, predictor, paradigm, batch_size, max_concurrency)
            for c, predictor in jobs
        ]
        out: dict[int, Decision] = {}
        for (chunk, _), future in zip(jobs, futures, strict=True):
            out.update(zip(chunk, (Decision.from_dict(d) for d in future.result()), strict=True))
            progress.advance(len(chunk))
        return out

    def close(self) -> None:
        """Stop the workers."""
        self.pool.shutdown(wait=True, cancel_futures=True)
