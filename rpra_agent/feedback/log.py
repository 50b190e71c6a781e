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

from rpra_agent.core.control import reraise_control_flow
from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.verdict import Verdict
from rpra_agent.feedback.judge import Candidate, JudgeTask, LLMJudge
from rpra_agent.store.base import DecisionFilter, DecisionStore

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


def _needs(store: DecisionStore, small: bool, large: bool) -> tuple[list[Decision], set[str]]:
    """Decisions needing a verdict, and the ids among them that only need the other model's verdict.

    With ``small``, deferred decisions also need a verdict on the small model's
    regenerated answer; with ``large``, decisions the small model took also need one on
    the large model's (so that quality against always-large can be calibrated).
    """
    todo = {d.id: d for d in store.decisions(DecisionFilter(unjudged=True))}
    other_only: set[str] = set()
    if small or large:
        wanted = [d for d in store.decisions() if (small and d.deferred) or (large and not d.deferred)]
        have = {(v.decision_id, v.subject) for v in store.verdicts([d.id for d in wanted]) if v.judged}
        for d in wanted:
            if (d.id, _other_subject(d)) not in have and d.id not in todo:
                todo[d.id] = d
                other_only.add(d.id)
    return sorted(todo.values(), key=lambda d: (d.created_at, d.step)), other_only


def _other_subject(decision: Decision) -> str:
    """Whose answer a hindsight regeneration produces: the model that did not answer."""
    return "small" if decision.deferred else "large"


def _earlier(store: DecisionStore, todo: Sequence[Decision]) -> dict[str, list[Decision]]:
    runs: dict[str, list[Decision]] = defaultdict(list)
    for run_id in sorted({d.run_id for d in todo if d.step > 0}):
        runs[run_id] = store.decisions(DecisionFilter(run_id=run_id))
    return runs


async def _regenerate(model: Any, convo: Sequence[BaseMessage], subject: str) -> AIMessage | None:
    try:
        reply = await model.ainvoke(list(convo), config={"run_name": f"rpra_regenerate_{subject}"})
    except Exception as exc:  # noqa: BLE001 - a failed regeneration leaves the decision as it was
        reraise_control_flow(exc)
        logger.warning("regenerating the %s answer failed: %s", subject, type(exc).__name__)
        return None
    return reply if isinstance(reply, AIMessage) else AIMessage(str(getattr(reply, "content", reply)))


async def ajudge_log(
    store: DecisionStore,
    judge: LLMJudge,
    *,
    sample: int | None = None,
    seed: int = 0,
    small: BaseChatModel | Runnable[Any, Any] | None = None,
    large: BaseChatModel | Runnable[Any, Any] | None = None,
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
        large: The large model; when given, decisions the small model took also get
            the large model's answer judged (``subject="large"``), which quality
            calibration against always-large needs (``rpra calibrate --epsilon``).
        tools: Tools to bind when regenerating actions (tool calls); without them,
            actions are not regenerated.
        max_concurrency: Concurrent judge calls (the judge's default otherwise).
        progress: Show a Rich progress bar.

    Returns:
        Counts of what was done.
    """
    todo, small_only = _needs(store, small is not None, large is not None)
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
        subject = _other_subject(d)
        other = small if d.deferred else large
        if other is not None:
            if d.kind == "action" and not tools:
                what = "deferred action" if d.deferred else "action the small model took"
                skipped[f"{what} without tools to regenerate it"] += 1
            else:
                model = other.bind_tools(list(tools)) if d.kind == "action" else other  # type: ignore[union-attr]
                async with limit:
                    reply = await _regenerate(model, convo, subject)
                if reply is None:
                    skipped["regeneration failed"] += 1
                else:
                    cands.append(Candidate(reply, d.id, subject))
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
