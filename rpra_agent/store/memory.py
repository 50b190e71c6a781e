"""An in-memory :class:`DecisionStore`, for tests and short scripts."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rpra_agent.core.decision import Decision
from rpra_agent.core.verdict import Verdict
from rpra_agent.store.base import Artifact, DecisionFilter

__all__ = ["InMemoryDecisionStore"]


class InMemoryDecisionStore:
    """Keeps everything in process memory; thread-safe; idempotent on ids."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decisions: dict[str, Decision] = {}
        self._verdicts: dict[str, Verdict] = {}
        self._runs: dict[str, dict[str, Any]] = {}
        self._artifacts: dict[tuple[str, str], list[Artifact]] = {}

    def add(self, decision: Decision) -> None:
        """Record a decision (a second add of the same id is ignored)."""
        with self._lock:
            self._decisions.setdefault(decision.id, decision)

    async def aadd(self, decision: Decision) -> None:
        """Async twin of :meth:`add`."""
        self.add(decision)

    def upsert_run(
        self, run_id: str, *, thread_id: str | None, paradigm: str, config: Mapping[str, Any], status: str
    ) -> None:
        """Create or update a run (an empty ``config`` or ``None`` fields keep the stored values)."""
        with self._lock:
            old = self._runs.get(run_id, {})
            self._runs[run_id] = {
                "thread_id": thread_id if thread_id is not None else old.get("thread_id"),
                "paradigm": paradigm or old.get("paradigm"),
                "config": dict(config) if config else dict(old.get("config") or {}),
                "status": status,
            }

    def runs(self) -> dict[str, dict[str, Any]]:
        """All runs by id (a copy)."""
        with self._lock:
            return {k: dict(v) for k, v in self._runs.items()}

    def decisions(self, where: DecisionFilter | None = None) -> list[Decision]:
        """Decisions matching ``where``, oldest first."""
        where = where or DecisionFilter()
        with self._lock:
            judged = {v.decision_id for v in self._verdicts.values() if v.judged}
            rows = [d for d in self._decisions.values() if where.matches(d, judged)]
        rows.sort(key=lambda d: (d.created_at, d.step))
        return rows[: where.limit] if where.limit is not None else rows

    def add_verdicts(self, verdicts: Sequence[Verdict]) -> None:
        """Record verdicts (idempotent on their ids)."""
        with self._lock:
            for verdict in verdicts:
                self._verdicts.setdefault(verdict.id, verdict)

    def verdicts(self, decision_ids: Sequence[str] | None = None) -> list[Verdict]:
        """Verdicts, optionally only for some decisions, oldest first."""
        with self._lock:
            rows = list(self._verdicts.values())
        if decision_ids is not None:
            wanted = set(decision_ids)
            rows = [v for v in rows if v.decision_id in wanted]
        return sorted(rows, key=lambda v: v.created_at)

    def put_artifact(self, kind: str, name: str, payload: Mapping[str, Any]) -> Artifact:
        """Store a new version of an artifact."""
        with self._lock:
            versions = self._artifacts.setdefault((kind, name), [])
            artifact = Artifact(kind, name, len(versions) + 1, dict(payload))
            versions.append(artifact)
            return artifact

    def latest_artifact(self, kind: str, name: str) -> Artifact | None:
        """The newest version of an artifact, or ``None``."""
        with self._lock:
            versions = self._artifacts.get((kind, name))
            return versions[-1] if versions else None

    def flush(self) -> None:
        """Nothing to flush: memory is the destination."""

    def close(self) -> None:
        """Nothing to release."""
