"""Running the RPRA graph over many dataset items in batches, with progress."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import RPRAError
from rpra_agent.evaluation.runs.replay import item_message
from rpra_agent.graph import decisions_from_state

__all__ = ["EvalProgress", "NullProgress", "masked_url", "run_id_for", "run_items"]

logger = logging.getLogger(__name__)


class EvalProgress(Protocol):
    """Where an evaluation reports its progress (the CLI draws a Rich progress bar)."""

    def stage(self, name: str, total: int | None = None) -> None:
        """A new stage begins, with ``total`` steps (``None``: indeterminate)."""
        ...

    def advance(self, n: int = 1) -> None:
        """``n`` steps of the current stage are done."""
        ...


class NullProgress:
    """Reports nothing."""

    def stage(self, name: str, total: int | None = None) -> None:
        """Ignore the stage."""

    def advance(self, n: int = 1) -> None:
        """Ignore the progress."""


def masked_url(url: str) -> str:
    """A store URL without its password (it goes into report files)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL (e.g. memory://): nothing to hide
        return url


def run_id_for(eval_id: str, phase: str, item_id: str) -> str:
    """The graph run id of one item in one phase of an evaluation."""
    return f"{eval_id}:{phase}:{item_id}"


def run_items(
    graph: Any,
    items: Sequence[Any],
    *,
    eval_id: str,
    phase: str,
    progress: EvalProgress | None = None,
    batch_size: int = 256,
    max_concurrency: int = 4,
    strict: bool = True,
) -> list[Decision]:
    """Run ``graph`` once per item (batched) and return each run's final decision, in item order.

    Args:
        graph: A compiled RPRA graph.
        items: :class:`~rpra_agent.evaluation.datasets.EvalItem` objects.
        eval_id: Prefix of the run ids (``<eval_id>:<phase>:<item id>``).
        phase: Name of this pass (``collect``, ``route`` ...).
        progress: Advanced once per item.
        batch_size: Items per ``graph.batch`` call.
        max_concurrency: Concurrent runs within a batch.
        strict: Raise when a run recorded a failed leg (in replay a failed leg means a
            prompt missing from the recording, never a flaky model).

    Raises:
        RPRAError: naming the item whose run failed.
    """
    progress = progress or NullProgress()
    out: list[Decision] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        inputs = [{"messages": item_message(it), "rpra_task": it.category} for it in chunk]
        configs = [
            {
                "configurable": {"rpra_run_id": run_id_for(eval_id, phase, it.id), "rpra_item_id": it.id},
                "max_concurrency": max_concurrency,
            }
            for it in chunk
        ]
        states = graph.batch(inputs, configs, return_exceptions=True)
        for item, state in zip(chunk, states, strict=True):
            if isinstance(state, BaseException):
                raise RPRAError(
                    f"the {phase} run of item {item.id!r} failed: {type(state).__name__}: {state}"
                ) from state
            decisions = decisions_from_state(state)
            if not decisions:
                raise RPRAError(f"the {phase} run of item {item.id!r} recorded no decision")
            final = decisions[-1]
            if strict and final.error:
                raise RPRAError(
                    f"the {phase} run of item {item.id!r} had a failed model leg ({final.error}); in a replay this "
                    "means the prompt or a response is missing from the recording"
                )
            out.append(final)
        progress.advance(len(chunk))
    logger.info("%s pass: %d runs", phase, len(out))
    return out
