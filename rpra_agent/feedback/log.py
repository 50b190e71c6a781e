"""Judging the decision log in hindsight: every decision gets a grade for the small model.

Steps are grouped by what they answered (the same conversation and kind): every response
in a group, plus any regenerated ones, goes to the judge in ONE call (the paper's joint
judging), shown in a seeded random order that each verdict records. For a decision the
small model took, the judge grades the response the user saw (``subject="given"``). For
a deferred decision, the large model's response was given; with a small model at hand
the small model's answer is regenerated and judged with it (``subject="small"``), so
the small model gets a hindsight label too. ``large`` does the same the other way round
(``subject="large"``), and each ``extra`` model adds its own answer to the group
(``subject="extra1"``, ...; its rationale names the model).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from rpra_agent.core.control import reraise_control_flow
from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.judging import Candidate, Judge, JudgeTask
from rpra_agent.core.verdict import Verdict
from rpra_agent.feedback._order import insert_tag
from rpra_agent.feedback.context import context_key, conversation_for
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
        regenerated: Answers regenerated (small, large or extra models).
        skipped: Decisions left alone, by reason.
        failures: Unjudged verdicts by reason (e.g. ``judge call failed (ValueError)``).
        calls: Judge calls (tasks) made.
        joint: Those with more than one response.
    """

    considered: int
    judged: int
    unjudged: int
    regenerated: int
    skipped: dict[str, int]
    failures: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    joint: int = 0


def has_text(text: str) -> bool:
    """Whether the log kept the text itself (not nothing, nor a ``store_text="hash"`` digest)."""
    return bool(text) and _HASHED.fullmatch(text) is None


def graded_model(decision: Decision, subject: str) -> str:
    """The model whose response a verdict with ``subject`` graded (``""`` for an extra model)."""
    if subject == "small" or (subject == "given" and decision.route == "small"):
        return decision.small_model
    return decision.large_model if subject in ("given", "large") else ""


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


@dataclass
class _Pass:
    """One pass's models, limits and counters."""

    small: Any
    large: Any
    extra: list[tuple[str, Any]]
    tools: list[Any]
    limit: asyncio.Semaphore
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    regenerated: int = 0

    def bound(self, model: Any, kind: str, what: str) -> Any:
        if kind != "action":
            return model
        if not self.tools:
            self.skipped[f"{what} without tools to regenerate it"] += 1
            return None
        return model.bind_tools(self.tools)

    async def answer(self, model: Any, convo: Sequence[BaseMessage], subject: str) -> AIMessage | None:
        async with self.limit:
            reply = await _regenerate(model, convo, subject)
        if reply is None:
            self.skipped["regeneration failed"] += 1
        else:
            self.regenerated += 1
        return reply


async def _group_task(
    group: Sequence[Decision], convo: tuple[BaseMessage, ...], p: _Pass, tool_names: tuple[str, ...]
) -> JudgeTask:
    """Every response to one conversation: the given ones, the regenerated other sides, the extras."""
    kind = group[0].kind
    cands = [Candidate(d.response, d.id, "given") for d in group]
    for d in group:
        other = p.small if d.deferred else p.large
        what = "deferred action" if d.deferred else "action the small model took"
        model = p.bound(other, kind, what) if other is not None else None
        if model is not None:
            reply = await p.answer(model, convo, _other_subject(d))
            if reply is not None:
                cands.append(Candidate(reply, d.id, _other_subject(d)))
    for i, (_, extra) in enumerate(p.extra, 1):
        model = p.bound(extra, kind, f"extra model's {kind}")
        reply = await p.answer(model, convo, f"extra{i}") if model is not None else None
        if reply is not None:
            cands.append(Candidate(reply, group[0].id, f"extra{i}"))
    return JudgeTask(convo, tuple(cands), kind, tool_names if kind == "action" else ())


def _groups(
    todo: Sequence[Decision], earlier: Mapping[str, list[Decision]], max_group: int, skipped: dict[str, int]
) -> list[tuple[list[Decision], tuple[BaseMessage, ...]]]:
    """Steps grouped by what they answered (same conversation and kind), at most ``max_group`` each."""
    by_key: dict[tuple[str, str], list[Decision]] = {}
    convos: dict[tuple[str, str], tuple[BaseMessage, ...]] = {}
    for d in todo:
        if not has_text(d.request):
            skipped["request text not kept in the log"] += 1
            continue
        convo = conversation_for(d, earlier.get(d.run_id, ()))
        key: tuple[str, str] = (str(d.kind), context_key(convo))
        by_key.setdefault(key, []).append(d)
        convos.setdefault(key, convo)
    out = []
    for group_key, members in by_key.items():
        for start in range(0, len(members), max_group):
            out.append((members[start : start + max_group], convos[group_key]))
    return out


async def ajudge_log(
    store: DecisionStore,
    judge: Judge,
    *,
    sample: int | None = None,
    seed: int = 0,
    small: Any = None,
    large: Any = None,
    extra: Sequence[tuple[str, Any]] = (),
    tools: Sequence[Any] = (),
    max_concurrency: int = 4,
    max_group: int = 4,
    progress: bool = True,
) -> JudgeLogResult:
    """Grade the unjudged decisions in ``store`` jointly per request and write the verdicts back.

    Args:
        store: The decision store.
        judge: Any :class:`~rpra_agent.core.judging.Judge` (e.g. ``LLMJudge``; give it
            ``isolated=True`` for the one-response-per-call ablation).
        sample: Judge a random sample of this many decisions (``None``: all).
        seed: Seed of the sample.
        small: The small model; when given, deferred decisions also get the small
            model's regenerated answer judged (``subject="small"``).
        large: The large model; when given, decisions the small model took also get
            the large model's answer judged (``subject="large"``), which quality
            calibration against always-large needs (``rpra calibrate --epsilon``).
        extra: ``(name, model)`` pairs: each answers every judged group once
            (``subject="extra1"``, ...), so the judge compares more responses.
        tools: Tools to bind when regenerating actions (tool calls); without them,
            actions are not regenerated.
        max_concurrency: Concurrent judge calls and regenerations.
        max_group: Logged steps judged together at most (a larger group is split).
        progress: Show a Rich progress bar.

    Returns:
        Counts of what was done.
    """
    if max_concurrency < 1 or max_group < 1:
        raise ConfigError("max_concurrency and max_group must be at least 1")
    todo, other_only = _needs(store, small is not None, large is not None)
    if sample is not None and sample < len(todo):
        todo = sorted(random.Random(seed).sample(todo, sample), key=lambda d: (d.created_at, d.step))  # noqa: S311
    p = _Pass(small, large, list(extra), list(tools), asyncio.Semaphore(max_concurrency))
    groups = _groups(todo, _earlier(store, todo), max_group, p.skipped)
    tool_names = tuple(str(getattr(t, "name", "")) for t in tools if getattr(t, "name", ""))
    prepared = await asyncio.gather(*(_group_task(g, convo, p, tool_names) for g, convo in groups))
    # a step that only needed the other side's verdict, and got no other side, is not judged again
    tasks = [t for t in prepared if not all(c.decision_id in other_only and c.subject == "given" for c in t.candidates)]
    results = await _judge_all(judge, tasks, max_concurrency, progress)
    names = {f"extra{i}": name for i, (name, _) in enumerate(extra, 1)}
    keep: list[Verdict] = []
    for verdicts in results:
        for v in verdicts:
            if v.subject == "given" and v.decision_id in other_only:
                continue  # already judged; it was shown for comparison
            keep.append(
                replace(v, rationale=insert_tag(v.rationale, f"[model: {names[v.subject]}] "))
                if v.subject in names
                else v
            )
    if keep:
        store.add_verdicts(keep)
        store.flush()
    judged = sum(1 for v in keep if v.judged)
    joint = sum(1 for t in tasks if len(t.candidates) > 1)
    logger.info(
        "judged %d decisions in %d calls (%d joint): %d graded, %d unjudged",
        len(todo),
        len(tasks),
        joint,
        judged,
        len(keep) - judged,
    )
    failures = Counter(v.rationale.removeprefix("unjudged: ") for v in keep if not v.judged)
    return JudgeLogResult(
        len(todo), judged, len(keep) - judged, p.regenerated, dict(p.skipped), dict(failures), len(tasks), joint
    )


async def _judge_all(judge: Judge, tasks: Sequence[JudgeTask], limit_n: int, progress: bool) -> list[list[Verdict]]:
    from rich.progress import Progress

    limit = asyncio.Semaphore(limit_n)
    results: list[list[Verdict]] = [[] for _ in tasks]
    with Progress(disable=not progress, transient=True) as bar:
        tid = bar.add_task("judging", total=len(tasks))

        async def one(i: int, task: JudgeTask) -> None:
            async with limit:
                results[i] = await judge.ajudge_task(task)
            bar.advance(tid)

        await asyncio.gather(*(one(i, t) for i, t in enumerate(tasks)))
    return results


def judge_log(store: DecisionStore, judge: Judge, **kwargs: Any) -> JudgeLogResult:
    """Sync wrapper of :func:`ajudge_log` (call it outside a running event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(ajudge_log(store, judge, **kwargs))
    raise ConfigError("judge_log was called inside a running event loop: await ajudge_log instead")
