"""The judging seam: what a judge is given (a task of candidate responses) and its protocol.

A judge grades every candidate response to one conversation together, in one call (the
paper's joint judging), and returns one :class:`~rpra_agent.core.verdict.Verdict` per
candidate, in order. ``LLMJudge`` (an LLM with a rubric) and ``ReplayJudge`` (recorded
scores) implement it; every caller takes a :class:`Judge`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from langchain_core.messages import AIMessage, BaseMessage

from rpra_agent.core.grades import GradeScale
from rpra_agent.core.messages import message_text
from rpra_agent.core.prediction import Kind
from rpra_agent.core.verdict import Verdict

__all__ = ["Candidate", "Judge", "JudgeTask", "ajudge_tasks", "judge_tasks"]


@dataclass(frozen=True)
class Candidate:
    """One response to be judged.

    Attributes:
        response: The reply text, or the ``AIMessage`` (its tool calls are shown).
        decision_id: The decision the verdict will be about.
        subject: ``given`` (what the user saw), ``small`` (regenerated) or ``large``.
    """

    response: str | AIMessage
    decision_id: str = ""
    subject: str = "given"

    @property
    def text(self) -> str:
        """The response as the judge sees it."""
        return self.response if isinstance(self.response, str) else message_text(self.response)


@dataclass(frozen=True)
class JudgeTask:
    """Responses to one conversation, graded together in one judge call.

    Attributes:
        conversation: The conversation up to (not including) the responses.
        candidates: The responses; one verdict each, in order.
        kind: ``answer`` or ``action`` (a proposed tool call).
        tool_names: Tools the assistant could call (shown for actions).
    """

    conversation: tuple[BaseMessage, ...]
    candidates: tuple[Candidate, ...]
    kind: Kind = "answer"
    tool_names: tuple[str, ...] = ()


@runtime_checkable
class Judge(Protocol):
    """Grades the candidate responses of a :class:`JudgeTask`.

    Implementations never guess: a response that could not be graded gets a verdict
    with ``grade=None`` (unjudged) and a rationale that says why.
    """

    name: str
    scale: GradeScale

    def judge_task(self, task: JudgeTask) -> list[Verdict]:
        """One verdict per candidate of ``task``, in order."""
        ...

    async def ajudge_task(self, task: JudgeTask) -> list[Verdict]:
        """Async twin of :meth:`judge_task`."""
        ...


async def ajudge_tasks(judge: Judge, tasks: Sequence[JudgeTask], *, max_concurrency: int = 4) -> list[list[Verdict]]:
    """Judge many tasks concurrently (at most ``max_concurrency`` calls at once), in the tasks' order."""
    limit = asyncio.Semaphore(max(1, max_concurrency))

    async def one(task: JudgeTask) -> list[Verdict]:
        async with limit:
            return await judge.ajudge_task(task)

    return list(await asyncio.gather(*(one(t) for t in tasks)))


def judge_tasks(judge: Judge, tasks: Sequence[JudgeTask], *, max_concurrency: int = 4) -> list[list[Verdict]]:
    """Sync form of :func:`ajudge_tasks` (call it outside a running event loop)."""
    return asyncio.run(ajudge_tasks(judge, tasks, max_concurrency=max_concurrency))
