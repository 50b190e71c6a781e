"""Judging the decision log in hindsight: every decision gets a grade for the small model.

For a decision the small model took, the judge grades the response the user saw
(``subject="given"``). For a deferred decision, the large model's response was given;
with a small model at hand the small model's answer is regenerated and both are judged
together in one call (joint judging), so the small model gets a hindsight label too
(``subject="small"``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable

from rpra_agent._control import reraise_control_flow
from rpra_agent.decision import Decision
from rpra_agent.errors import ConfigError
from rpra_agent.feedback.judge import Candidate, JudgeTask, LLMJudge
from rpra_agent.store.base import DecisionFilter, DecisionStore
from rpra_agent.verdict import Verdict

__all__ = ["JudgeLogResult", "ajudge_log", "conversation_for", "graded_model", "has_text", "judge_log"]

logger = logging.getLogger(__name__)

_HASHED = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class JudgeLogResult:
    """What a pass over the log did.

    Attributes:
        considered: Decisions that needed a verdict.
        judged: Verdicts with a grade written.
        unjudged: Verdicts written without a grade (the judge's output was unusable).
        regenerated: Small-model answers regenerated for deferred decisions.
        skipped: Decisions left alone, by reason.
        failures: Unjudged verdicts by reason (e.g. ``judge call failed (ValueError)``).
    """

    considered: int
    judged: int
    unjudged: int
    regenerated: int
    skipped: dict[str, int]
    failures: dict[str, int] = field(default_factory=dict)


def has_text(text: str) -> bool:
    """Whether the log kept the text itself (not nothing, nor a ``store_text="hash"`` digest)."""
    return bool(text) and _HASHED.fullmatch(text) is None


def graded_model(decision: Decision, subject: str) -> str:
    """The model whose response a verdict with ``subject`` graded."""
    if subject == "small" or (subject == "given" and decision.route == "small"):
        return decision.small_model
    return decision.large_model


def conversation_for(decision: Decision, earlier: Sequence[Decision] = ()) -> tuple[BaseMessage, ...]:
    """The conversation a decision answered, as far as the log records it.

    The log keeps the bare request and each step's response; the earlier steps of
    the same run (their tool calls) are replayed as assistant turns.
    """
    convo: list[BaseMessage] = [HumanMessage(decision.request)]
    for prev in sorted(earlier, key=lambda d: d.step):
        if prev.run_id == decision.run_id and prev.step < decision.step and prev.response:
            convo.append(AIMessage(prev.response))
    return tuple(convo)


def _needs(store: DecisionStore, regenerate: bool) -> tuple[list[Decision], set[str]]:
    """Decisions needing a verdict, and the ids among them that only need a small verdict."""
    todo = {d.id: d for d in store.decisions(DecisionFilter(unjudged=True))}
    small_only: set[str] = set()
    if regenerate:
        deferred = [d for d in store.decisions() if d.deferred]
        have = {v.decision_id for v in store.verdicts([d.id for d in deferred]) if v.judged and v.subject == "small"}
        for d in deferred:
            if d.id not in have and d.id not in todo:
                todo[d.id] = d
                small_only.add(d.id)
    return sorted(todo.values(), key=lambda d: (d.created_at, d.step)), small_only


def _earlier(store: DecisionStore, todo: Sequence[Decision]) -> dict[str, list[Decision]]:
    runs: dict[str, list[Decision]] = defaultdict(list)
    for run_id in sorted({d.run_id for d in todo if d.step > 0}):
        runs[run_id] = store.decisions(DecisionFilter(run_id=run_id))
    return runs


async def _regenerate(small: Any, convo: Sequence[BaseMessage]) -> AIMessage | None:
    try:
        reply = await small.ainvoke(list(convo), config={"run_name": "rpra_regenerate_small"})
    except Exception as exc:  # noqa: BLE001 - a failed regeneration leaves the decision as it was
        reraise_control_flow(exc)
        logger.warning("regenerating the small answer failed: %s", type(exc).__name__)
        return None
    return reply if isinstance(reply, AIMessage) else AIMessage(str(getattr(reply, "content", reply)))


async def ajudge_log(
    store: DecisionStore,
    judge: LLMJudge,
    *,
    sample: int | None = None,
    seed: int = 0,
    small: BaseChatModel | Runnable[Any, Any] | None = None,
    tools: Sequence[Any] = (),
    max_concurrency: int | None = None,
    progress: bool = True,
) -> JudgeLogResult:
    """Grade the unjudged decisions in ``store`` and write the verdicts back.

    Args:
        store: The decision store.
        judge: The judge.
        sample: Judge a random sample of this many decisions (``None``: all).
        seed: Seed of the sample.
        small: The small model; when given, deferred decisions also get the small
            model's regenerated answer judged (``subject="small"``).
        tools: Tools to bind to ``small`` when regenerating actions (tool calls);
            without them, deferred actions are not regenerated.
        max_concurrency: Concurrent judge calls (the judge's default otherwise).
        progress: Show a Rich progress bar.

    Returns:
        Counts of what was done.
    """
    todo, small_only = _needs(store, small is not None)
    skipped: dict[str, int] = defaultdict(int)
    if sample is not None and sample < len(todo):
        todo = sorted(random.Random(seed).sample(todo, sample), key=lambda d: (d.created_at, d.step))  # noqa: S311
    earlier = _earlier(store, todo)
    tool_names = tuple(str(getattr(t, "name", "")) for t in tools if getattr(t, "name", ""))
    limit = asyncio.Semaphore(max_concurrency or judge.max_concurrency)

    async def prepare(d: Decision) -> JudgeTask | None:
        if not has_text(d.request):
            skipped["request text not kept in the log"] += 1
            return None
        convo = conversation_for(d, earlier.get(d.run_id, ()))
        cands = [Candidate(d.response, d.id, "given")]
        if small is not None and d.deferred:
            if d.kind == "action" and not tools:
                skipped["deferred action without tools to regenerate it"] += 1
            else:
                model = small.bind_tools(list(tools)) if d.kind == "action" else small  # type: ignore[union-attr]
                async with limit:
                    reply = await _regenerate(model, convo)
                if reply is None:
                    skipped["regeneration failed"] += 1
                else:
                    cands.append(Candidate(reply, d.id, "small"))
        if d.id in small_only and len(cands) == 1:
            return None
        return JudgeTask(convo, tuple(cands), d.kind, tool_names if d.kind == "action" else ())

    prepared = await asyncio.gather(*(prepare(d) for d in todo))
    tasks = [t for t in prepared if t is not None]
    regenerated = sum(1 for t in tasks if len(t.candidates) > 1)
    results = await judge.ajudge_many(tasks, max_concurrency=max_concurrency, progress=progress)
    keep: list[Verdict] = []
    for task, verdicts in zip(tasks, results, strict=True):
        only_small = task.candidates[0].decision_id in small_only
        keep += [v for v in verdicts if not (only_small and v.subject == "given")]
    if keep:
        store.add_verdicts(keep)
        store.flush()
    judged = sum(1 for v in keep if v.judged)
    logger.info("judged %d decisions: %d verdicts, %d unjudged", len(tasks), judged, len(keep) - judged)
    failures = Counter(v.rationale.removeprefix("unjudged: ") for v in keep if not v.judged)
    return JudgeLogResult(len(todo), judged, len(keep) - judged, regenerated, dict(skipped), dict(failures))


def judge_log(store: DecisionStore, judge: LLMJudge, **kwargs: Any) -> JudgeLogResult:
    """Sync wrapper of :func:`ajudge_log` (call it outside a running event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(ajudge_log(store, judge, **kwargs))
    raise ConfigError("judge_log was called inside a running event loop: await ajudge_log instead")
