"""The store seam: the :class:`DecisionStore` protocol and its record types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rpra_agent.core.decision import Decision, utcnow
from rpra_agent.core.verdict import Verdict

__all__ = ["Artifact", "DecisionFilter", "DecisionStore"]


@dataclass(frozen=True)
class Artifact:
    """A versioned JSON document kept beside the decisions.

    Report cards (``kind="report_card"``) and calibrated thresholds
    (``kind="calibration"``) are artifacts; versions count up from 1 per
    ``(kind, name)``.
    """

    kind: str
    name: str
    version: int
    payload: Mapping[str, Any]
    created_at: str = field(default_factory=utcnow)


@dataclass(frozen=True)
class DecisionFilter:
    """Which decisions a query returns (all fields are optional and ANDed).

    Attributes:
        run_id: Only this run.
        thread_id: Only this thread.
        task: Only this task tag.
        kind: Only ``answer`` or ``action`` decisions.
        unjudged: Only decisions without a usable verdict.
        since: Only decisions created at or after this ISO timestamp.
        limit: At most this many, oldest first.
    """

    run_id: str | None = None
    thread_id: str | None = None
    task: str | None = None
    kind: str | None = None
    unjudged: bool = False
    since: str | None = None
    limit: int | None = None

    def matches(self, decision: Decision, judged_ids: set[str]) -> bool:
        """Whether ``decision`` passes the filter (used by in-memory stores)."""
        return not (
            (self.run_id is not None and decision.run_id != self.run_id)
            or (self.thread_id is not None and decision.thread_id != self.thread_id)
            or (self.task is not None and decision.task != self.task)
            or (self.kind is not None and decision.kind != self.kind)
            or (self.unjudged and decision.id in judged_ids)
            or (self.since is not None and decision.created_at < self.since)
        )


@runtime_checkable
class DecisionStore(Protocol):
    """Records decisions, verdicts and versioned artifacts, and answers queries.

    ``add`` must be cheap (writers batch behind it) and idempotent on
    ``Decision.id``. ``flush`` makes everything added so far durable.
    """

    def add(self, decision: Decision) -> None:
        """Record a decision (idempotent on its id)."""
        ...

    async def aadd(self, decision: Decision) -> None:
        """Async twin of :meth:`add`."""
        ...

    def upsert_run(
        self, run_id: str, *, thread_id: str | None, paradigm: str, config: Mapping[str, Any], status: str
    ) -> None:
        """Create or update a run's row."""
        ...

    def decisions(self, where: DecisionFilter | None = None) -> list[Decision]:
        """Decisions matching ``where``, oldest first."""
        ...

    def add_verdicts(self, verdicts: Sequence[Verdict]) -> None:
        """Record verdicts (idempotent on their ids)."""
        ...

    def verdicts(self, decision_ids: Sequence[str] | None = None) -> list[Verdict]:
        """Verdicts, optionally only for some decisions."""
        ...

    def put_artifact(self, kind: str, name: str, payload: Mapping[str, Any]) -> Artifact:
        """Store a new version of an artifact and return it."""
        ...

    def latest_artifact(self, kind: str, name: str) -> Artifact | None:
        """The newest version of an artifact, or ``None``."""
        ...

    def flush(self) -> None:
        """Block until everything added so far is durable."""
        ...

    def close(self) -> None:
        """Flush and release resources."""
        ...
