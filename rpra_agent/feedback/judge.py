"""LLM-as-judge over any LangChain chat model: rubric, joint judging, retries, batches.

Joint judging (the paper's): every candidate response to one conversation is graded in
one call, shown in a seeded random order that each verdict's rationale records
(``[shown 2 of 3: large,given,small]``). ``isolated=True`` is the paper's ablation: each
response is judged alone, in its own call (``[judged alone]``).

A judge reply that cannot be read is retried with exponential backoff; after the
last attempt the response is recorded as unjudged (``Verdict.grade is None``). A
grade is never guessed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.constants import TAG_NOSTREAM

from rpra_agent.core.control import reraise_control_flow
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.judging import Candidate, JudgeTask
from rpra_agent.core.naming import model_id
from rpra_agent.core.prediction import Kind
from rpra_agent.core.verdict import Verdict
from rpra_agent.feedback._order import ALONE_TAG, order_tag, shown_order
from rpra_agent.feedback._parse import Malformed, ParsedGrade, parse_judge_reply
from rpra_agent.feedback.rubric import RECONSTRUCTED_RUBRIC, Rubric, build_judge_prompt, verdict_schema

__all__ = ["Candidate", "JudgeTask", "LLMJudge", "WEAKEST_TAG"]

logger = logging.getLogger(__name__)

WEAKEST_TAG = "[weakest: {}] "
"""Prefix of a verdict's rationale naming the rubric criterion the response did worst on."""

_CONFIG: RunnableConfig = {"tags": [TAG_NOSTREAM], "run_name": "rpra_judge"}


class LLMJudge:
    """Grades responses with a chat model on a rubric, jointly and with retries.

    Args:
        model: Any LangChain chat model (ideally one with tool calling / structured output).
        scale: The grade scale (the paper's ``great / ok / bad`` by default).
        rubric: The rubric; :data:`RECONSTRUCTED_RUBRIC` (reconstructed from the paper's description) by default.
        name: The judge's name recorded on verdicts (the model id by default).
        method: ``auto`` (structured output when available, else JSON text),
            ``structured`` (require it) or ``json`` (plain text JSON only).
        max_retries: Extra attempts after a malformed reply or a failed call.
        backoff_s: First retry delay; doubles each attempt (with jitter).
        max_concurrency: Default concurrency limit of batch judging.
        timeout_s: Per-call timeout in async judging (``None``: the model's own).
        isolated: Judge each candidate alone, one call each (the paper's ablation),
            instead of all candidates of a task together.
        shuffle: Show a joint call's candidates in a seeded random order (recorded in
            each verdict's rationale); ``False`` keeps the task's order.
        seed: Seed of that order.
    """

    def __init__(
        self,
        model: BaseChatModel | Runnable[Any, Any],
        *,
        scale: GradeScale | None = None,
        rubric: Rubric | None = None,
        name: str | None = None,
        method: str = "auto",
        max_retries: int = 2,
        backoff_s: float = 1.0,
        max_concurrency: int = 4,
        timeout_s: float | None = None,
        isolated: bool = False,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if method not in ("auto", "structured", "json"):
            raise ConfigError(f"LLMJudge method must be 'auto', 'structured' or 'json', got {method!r}")
        if max_retries < 0 or max_concurrency < 1 or backoff_s < 0:
            raise ConfigError("LLMJudge needs max_retries >= 0, max_concurrency >= 1 and backoff_s >= 0")
        self.model = model
        self.scale = scale or GradeScale.paper()
        self.rubric = rubric or RECONSTRUCTED_RUBRIC
        self.name = name or model_id(model)
        self.method = method
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.isolated = isolated
        self.shuffle = shuffle
        self.seed = seed
        self._runnables: dict[int, Runnable[Any, Any]] = {}

    # -- plumbing ------------------------------------------------------------------
    def _runnable(self, n: int) -> Runnable[Any, Any]:
        if n in self._runnables:
            return self._runnables[n]
        runnable: Runnable[Any, Any] = self.model
        if self.method != "json":
            try:
                structured = getattr(self.model, "with_structured_output", None)
                if structured is None:
                    raise NotImplementedError
                runnable = structured(
                    verdict_schema(self.scale, self.rubric, n), method="function_calling", include_raw=True
                )
            except NotImplementedError:
                if self.method == "structured":
                    raise ConfigError(
                        f"judge model {self.name} has no structured output; use method='json' or 'auto'"
                    ) from None
                logger.debug("judge %s has no structured output; parsing JSON text", self.name)
        self._runnables[n] = runnable
        return runnable

    def prompt(self, task: JudgeTask) -> list[BaseMessage]:
        """The judge prompt for ``task``, its candidates in the order they are shown (see :meth:`order`)."""
        return build_judge_prompt(
            task.conversation,
            [task.candidates[i].text for i in self.order(task)],
            self.scale,
            self.rubric,
            kind=task.kind,
            tool_names=task.tool_names,
        )

    def order(self, task: JudgeTask) -> list[int]:
        """Indices of ``task.candidates`` in the order the judge is shown them (seeded, random)."""
        return shown_order(task, self.seed, self.shuffle)

    def _delay(self, attempt: int) -> float:
        return self.backoff_s * (2**attempt) * (0.5 + random.random() / 2)  # noqa: S311 - jitter only

    def _verdicts(self, task: JudgeTask, parsed: list[ParsedGrade] | None, failure: str) -> list[Verdict]:
        order = self.order(task)
        shown = [task.candidates[i].subject for i in order]
        out = []
        for i, cand in enumerate(task.candidates):
            position = order.index(i)
            common = {
                "decision_id": cand.decision_id,
                "scale": self.scale.name,
                "judge": self.name,
                "rubric_version": self.rubric.version,
                "subject": cand.subject,
            }
            if parsed is None:
                out.append(Verdict(grade=None, score=None, rationale=f"unjudged: {failure}", **common))
                continue
            p = parsed[position]
            prefix = WEAKEST_TAG.format(p.weakest) if p.weakest else ""
            prefix += order_tag(position, shown) if len(shown) > 1 else (ALONE_TAG if self.isolated else "")
            out.append(
                Verdict(grade=p.grade, score=self.scale.value(p.grade), rationale=prefix + p.rationale, **common)
            )
        return out

    def _check(self, task: JudgeTask) -> None:
        if not task.candidates:
            raise ConfigError("a JudgeTask needs at least one candidate response")

    def _failure(self, exc: BaseException, attempt: int) -> str:
        """The unjudged rationale for ``exc`` (class name only); the operator log gets the message."""
        reraise_control_flow(exc)
        logger.warning("judge %s attempt %d failed: %s: %s", self.name, attempt + 1, type(exc).__name__, str(exc)[:300])
        if isinstance(exc, Malformed):
            return f"malformed judge output ({exc})"
        return f"judge call failed ({type(exc).__name__})"

    # -- single tasks ----------------------------------------------------------------
    def judge_task(self, task: JudgeTask) -> list[Verdict]:
        """Grade a task's responses in one call (retrying); one verdict per candidate.

        With ``isolated``, each response is graded alone, one call each.
        """
        self._check(task)
        if self.isolated and len(task.candidates) > 1:
            return [self.judge_task(one)[0] for one in _singles(task)]
        n, prompt, failure = len(task.candidates), self.prompt(task), ""
        runnable = self._runnable(n)
        for attempt in range(self.max_retries + 1):
            try:
                reply = runnable.invoke(prompt, config=_CONFIG)
                return self._verdicts(task, parse_judge_reply(reply, self.scale, self.rubric, n), "")
            except Exception as exc:  # noqa: BLE001 - every failure is retried, then recorded
                failure = self._failure(exc, attempt)
            if attempt < self.max_retries:
                time.sleep(self._delay(attempt))
        return self._verdicts(task, None, failure)

    async def ajudge_task(self, task: JudgeTask) -> list[Verdict]:
        """Async twin of :meth:`judge_task`."""
        self._check(task)
        if self.isolated and len(task.candidates) > 1:
            alone = await asyncio.gather(*(self.ajudge_task(one) for one in _singles(task)))
            return [vs[0] for vs in alone]
        n, prompt, failure = len(task.candidates), self.prompt(task), ""
        runnable = self._runnable(n)
        for attempt in range(self.max_retries + 1):
            try:
                call = runnable.ainvoke(prompt, config=_CONFIG)
                reply = await (asyncio.wait_for(call, self.timeout_s) if self.timeout_s else call)
                return self._verdicts(task, parse_judge_reply(reply, self.scale, self.rubric, n), "")
            except Exception as exc:  # noqa: BLE001 - every failure is retried, then recorded
                failure = self._failure(exc, attempt)
            if attempt < self.max_retries:
                await asyncio.sleep(self._delay(attempt))
        return self._verdicts(task, None, failure)

    # -- conveniences ------------------------------------------------------------------
    def judge(
        self,
        conversation: str | Sequence[BaseMessage],
        response: str | AIMessage,
        *,
        kind: Kind = "answer",
        decision_id: str = "",
        subject: str = "given",
        tool_names: Sequence[str] = (),
    ) -> Verdict:
        """Grade one response to a conversation (a string is one user message)."""
        task = _task(conversation, [Candidate(response, decision_id, subject)], kind, tool_names)
        return self.judge_task(task)[0]

    def judge_joint(
        self,
        conversation: str | Sequence[BaseMessage],
        responses: Sequence[str | AIMessage | Candidate],
        *,
        kind: Kind = "answer",
        tool_names: Sequence[str] = (),
    ) -> list[Verdict]:
        """Grade several responses to one conversation in one call, as the paper did."""
        cands = [r if isinstance(r, Candidate) else Candidate(r) for r in responses]
        return self.judge_task(_task(conversation, cands, kind, tool_names))

    async def ajudge_joint(
        self,
        conversation: str | Sequence[BaseMessage],
        responses: Sequence[str | AIMessage | Candidate],
        *,
        kind: Kind = "answer",
        tool_names: Sequence[str] = (),
    ) -> list[Verdict]:
        """Async twin of :meth:`judge_joint`."""
        cands = [r if isinstance(r, Candidate) else Candidate(r) for r in responses]
        return await self.ajudge_task(_task(conversation, cands, kind, tool_names))

    # -- batches -------------------------------------------------------------------------
    async def ajudge_many(
        self,
        tasks: Sequence[JudgeTask],
        *,
        max_concurrency: int | None = None,
        progress: bool = True,
        description: str = "judging",
    ) -> list[list[Verdict]]:
        """Judge many tasks concurrently (bounded), with an optional Rich progress bar.

        Returns one list of verdicts per task, in the tasks' order.
        """
        limit = asyncio.Semaphore(max_concurrency or self.max_concurrency)
        results: list[list[Verdict]] = [[] for _ in tasks]

        async def one(i: int, task: JudgeTask, advance: Any) -> None:
            async with limit:
                results[i] = await self.ajudge_task(task)
            advance()

        from rich.progress import Progress

        with Progress(disable=not progress, transient=True) as bar:
            tid = bar.add_task(description, total=len(tasks))
            await asyncio.gather(*(one(i, t, lambda: bar.advance(tid)) for i, t in enumerate(tasks)))
        return results

    def judge_many(self, tasks: Sequence[JudgeTask], **kwargs: Any) -> list[list[Verdict]]:
        """Sync wrapper of :meth:`ajudge_many` (call it outside a running event loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.ajudge_many(tasks, **kwargs))
        raise ConfigError("judge_many was called inside a running event loop: await ajudge_many instead")


def _singles(task: JudgeTask) -> list[JudgeTask]:
    return [JudgeTask(task.conversation, (c,), task.kind, task.tool_names) for c in task.candidates]


def _task(
    conversation: str | Sequence[BaseMessage], cands: list[Candidate], kind: Kind, tool_names: Sequence[str]
) -> JudgeTask:
    convo = (HumanMessage(conversation),) if isinstance(conversation, str) else tuple(conversation)
    return JudgeTask(convo, tuple(cands), kind, tuple(tool_names))
