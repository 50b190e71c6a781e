"""Online audit: judge a fraction of live decisions in the background.

:class:`AuditingStore` wraps any :class:`~rpra_agent.store.base.DecisionStore`. ``add``
hands the decision to the wrapped store and, for the chosen fraction, to a queue that
a background thread drains through the judge. The user never waits for the judge: when
the queue is full, the audit of that decision is dropped (and counted), not delayed.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.judging import Candidate, Judge, JudgeTask
from rpra_agent.core.verdict import Verdict
from rpra_agent.feedback.log import conversation_for, has_text
from rpra_agent.store.base import Artifact, DecisionFilter, DecisionStore

__all__ = ["AuditingStore"]

logger = logging.getLogger(__name__)

_STOP = object()


class AuditingStore:
    """A :class:`DecisionStore` that also judges a fraction of what it records.

    The choice is deterministic in the decision id (the same decision is always in or
    out of the sample), so a replayed or retried write is not audited twice.

    Args:
        store: The store to record into (verdicts go there too).
        judge: The judge.
        fraction: Share of decisions to judge, in [0, 1].
        kinds: Which decision kinds to audit (answers and actions by default).
        max_queue: Pending audits beyond this are dropped, never waited for.
    """

    def __init__(
        self,
        store: DecisionStore,
        judge: Judge,
        fraction: float,
        *,
        kinds: Sequence[str] = ("answer", "action"),
        max_queue: int = 1000,
    ) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(f"audit fraction must be within [0, 1], got {fraction}")
        self.store = store
        self.judge = judge
        self.fraction = fraction
        self.kinds = tuple(kinds)
        self.dropped = 0
        self.audited = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._worker = threading.Thread(target=self._run, name="rpra-audit", daemon=True)
        self._closed = False
        self._worker.start()

    # -- sampling and the worker ----------------------------------------------------
    def selected(self, decision: Decision) -> bool:
        """Whether ``decision`` falls in the audited fraction."""
        if decision.kind not in self.kinds or not has_text(decision.request):
            return False
        bucket = int.from_bytes(hashlib.sha256(decision.id.encode()).digest()[:8], "big") / 2**64
        return bucket < self.fraction

    def _offer(self, decision: Decision) -> None:
        if self._closed or not self.selected(decision):
            return
        try:
            self._queue.put_nowait(decision)
        except queue.Full:
            self.dropped += 1
            logger.warning("audit queue full: decision %s not audited", decision.id)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._audit(item)
            except Exception:  # noqa: BLE001 - the audit must never take the service down
                logger.exception("audit of decision %s failed", getattr(item, "id", "?"))
            finally:
                self._queue.task_done()

    def _audit(self, decision: Decision) -> None:
        earlier = self.store.decisions(DecisionFilter(run_id=decision.run_id)) if decision.step > 0 else []
        task = JudgeTask(
            conversation_for(decision, earlier), (Candidate(decision.response, decision.id),), decision.kind
        )
        verdicts = self.judge.judge_task(task)
        self.store.add_verdicts(verdicts)
        self.audited += 1

    def wait(self) -> None:
        """Block until every queued audit is done (its verdicts handed to the store)."""
        self._queue.join()

    def __getattr__(self, name: str) -> Any:
        # anything beyond the protocol (stats, async reads, replay ...) is the wrapped store's
        if name == "store":
            raise AttributeError(name)
        return getattr(self.store, name)

    # -- DecisionStore -----------------------------------------------------------------
    def add(self, decision: Decision) -> None:
        """Record the decision, and queue it for audit when sampled (never blocks on the judge)."""
        self.store.add(decision)
        self._offer(decision)

    async def aadd(self, decision: Decision) -> None:
        """Async twin of :meth:`add`."""
        await self.store.aadd(decision)
        self._offer(decision)

    def upsert_run(
        self, run_id: str, *, thread_id: str | None, paradigm: str, config: Mapping[str, Any], status: str
    ) -> None:
        """Delegate to the wrapped store."""
        self.store.upsert_run(run_id, thread_id=thread_id, paradigm=paradigm, config=config, status=status)

    def decisions(self, where: DecisionFilter | None = None) -> list[Decision]:
        """Delegate to the wrapped store."""
        return self.store.decisions(where)

    def add_verdicts(self, verdicts: Sequence[Verdict]) -> None:
        """Delegate to the wrapped store."""
        self.store.add_verdicts(verdicts)

    def verdicts(self, decision_ids: Sequence[str] | None = None) -> list[Verdict]:
        """Delegate to the wrapped store."""
        return self.store.verdicts(decision_ids)

    def put_artifact(self, kind: str, name: str, payload: Mapping[str, Any]) -> Artifact:
        """Delegate to the wrapped store."""
        return self.store.put_artifact(kind, name, payload)

    def latest_artifact(self, kind: str, name: str) -> Artifact | None:
        """Delegate to the wrapped store."""
        return self.store.latest_artifact(kind, name)

    def flush(self) -> None:
        """Flush the wrapped store (pending audits keep running; see :meth:`wait`)."""
        self.store.flush()

    def close(self) -> None:
        """Finish the queued audits, stop the worker and close the wrapped store."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._worker.join()
        self.store.close()
