"""Driving the step's effects: one sync and one async loop, and the I/O they share.

:func:`drive` and :func:`adrive` run a stage of :mod:`rpra_agent.core.step`: they pass
each yielded effect to the adapter's executor and send the result back (or throw the
executor's exception into the stage, which decides what a failure means). Model legs
go through :func:`call_leg` / :func:`acall_leg` (timeouts; retries of transient
failures only), the plan through :func:`choose`, and run bookkeeping through
:class:`RunBook`, so the graph and the middleware do these the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langgraph.constants import TAG_NOSTREAM

from rpra_agent.core.control import reraise_control_flow
from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ModelCallError, PredictorError
from rpra_agent.core.faults import FaultPolicy
from rpra_agent.core.naming import model_id
from rpra_agent.core.redact import scrub_secrets
from rpra_agent.core.step import CallModel, Effect, StepView
from rpra_agent.core.usage import LegUsage
from rpra_agent.models.retry import is_transient

__all__ = [
    "HIDDEN",
    "RunBook",
    "acall_leg",
    "achoose",
    "adrive",
    "arun_leg",
    "call_leg",
    "choose",
    "counters_after",
    "drive",
    "leg_options",
    "message_of",
    "run_leg",
    "with_system",
]

logger = logging.getLogger("rpra_agent.step")
T = TypeVar("T")
HIDDEN: dict[str, Any] = {"tags": [TAG_NOSTREAM], "run_name": "rpra_private"}
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="rpra-leg")


def drive(flow: Any, execute: Callable[[Effect], Any]) -> Any:
    """Run a stage's generator to its return value, executing each effect with ``execute``."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.throw(error) if error is not None else flow.send(result)
        except StopIteration as stop:
            return stop.value
        result, error = None, None
        try:
            result = execute(effect)
        except Exception as exc:  # thrown into the stage, which re-raises control flow
            error = exc


async def adrive(flow: Any, execute: Callable[[Effect], Awaitable[Any]]) -> Any:
    """Async twin of :func:`drive`: the same loop, awaiting each effect."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.throw(error) if error is not None else flow.send(result)
        except StopIteration as stop:
            return stop.value
        result, error = None, None
        try:
            result = await execute(effect)
        except Exception as exc:
            error = exc


def with_system(messages: Sequence[BaseMessage], extra: str | None) -> list[BaseMessage]:
    """``messages`` with ``extra`` appended to the leading system message (or a new one)."""
    msgs = list(messages)
    if not extra:
        return msgs
    if msgs and isinstance(msgs[0], SystemMessage):
        return [SystemMessage(f"{msgs[0].text}\n\n{extra}"), *msgs[1:]]
    return [SystemMessage(extra), *msgs]


# -- model legs ---------------------------------------------------------------------------
def _usage(model: Any, message: AIMessage, elapsed: float) -> LegUsage:
    meta: dict[str, Any] = dict(message.usage_metadata or {})
    return LegUsage(
        model=model_id(model),
        input_tokens=int(meta.get("input_tokens", 0) or 0),
        output_tokens=int(meta.get("output_tokens", 0) or 0),
        latency_ms=elapsed * 1000.0,
    )


def message_of(result: Any) -> AIMessage:
    """The reply of a model call: an ``AIMessage``, or the last one of a ``ModelResponse``."""
    if isinstance(result, AIMessage):
        return result
    found = next((m for m in reversed(getattr(result, "result", None) or []) if isinstance(m, AIMessage)), None)
    if found is None:
        raise TypeError(f"the model returned {type(result).__name__}, not an AIMessage")
    return found


class _Retry:
    """One leg's attempts: which failures are retried, the backoff, and every error seen."""

    def __init__(self, leg: str, attempts: int, timeout_s: float | None, backoff_s: float) -> None:
        self.leg, self.attempts, self.timeout_s, self.backoff_s = leg, attempts, timeout_s, backoff_s
        self.errors: list[BaseException] = []

    def delay(self, exc: Exception) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up (a deterministic error, or no attempts left)."""
        reraise_control_flow(exc)
        timed_out = isinstance(exc, TimeoutError | concurrent.futures.TimeoutError)
        self.errors.append(TimeoutError(f"{self.leg} leg timed out after {self.timeout_s}s") if timed_out else exc)
        if not (timed_out or is_transient(exc)) or len(self.errors) >= self.attempts:
            return None
        return self.backoff_s * (2 ** (len(self.errors) - 1))

    def error(self) -> ModelCallError:
        """Every error seen, with the last one's message (secrets scrubbed), e.g. the server's own words."""
        last = self.errors[-1]
        detail = f"{type(last).__name__}: {scrub_secrets(str(last))[:300]}"
        return ModelCallError(
            f"the {self.leg} model failed {len(self.errors)} time(s); last: {detail}", leg=self.leg, errors=self.errors
        )


def run_leg(
    invoke: Callable[[], T],
    model: Any,
    *,
    leg: str,
    attempts: int = 1,
    timeout_s: float | None = None,
    backoff_s: float = 0.0,
) -> tuple[T, LegUsage]:
    """Call ``invoke``; retry transient failures; raise :class:`ModelCallError` with every error."""
    retry = _Retry(leg, attempts, timeout_s, backoff_s)
    while True:
        start = time.perf_counter()
        try:
            pending = _POOL.submit(contextvars.copy_context().run, invoke) if timeout_s else None
            result = pending.result(timeout_s) if pending is not None else invoke()
            return result, _usage(model, message_of(result), time.perf_counter() - start)
        except Exception as exc:
            if (delay := retry.delay(exc)) is None:
                raise retry.error() from None
            time.sleep(delay)


async def arun_leg(
    invoke: Callable[[], Awaitable[T]],
    model: Any,
    *,
    leg: str,
    attempts: int = 1,
    timeout_s: float | None = None,
    backoff_s: float = 0.0,
) -> tuple[T, LegUsage]:
    """Async twin of :func:`run_leg` (the same :class:`_Retry`, awaited)."""
    retry = _Retry(leg, attempts, timeout_s, backoff_s)
    while True:
        start = time.perf_counter()
        try:
            result = await (asyncio.wait_for(invoke(), timeout_s) if timeout_s else invoke())
            return result, _usage(model, message_of(result), time.perf_counter() - start)
        except Exception as exc:
            if (delay := retry.delay(exc)) is None:
                raise retry.error() from None
            await asyncio.sleep(delay)


def leg_options(faults: FaultPolicy, effect: CallModel) -> dict[str, Any]:
    """Attempts, timeout and backoff of a leg, from the :class:`FaultPolicy` (only the large leg retries)."""
    if effect.model == "large":
        return {
            "leg": effect.leg,
            "attempts": faults.large_attempts,
            "timeout_s": faults.large_timeout_s,
            "backoff_s": faults.backoff_s,
        }
    return {"leg": effect.leg, "timeout_s": faults.small_timeout_s}


def counters_after(view: StepView, decision: Decision) -> dict[str, int]:
    """The run's counters once ``decision`` is recorded."""
    return {
        "rpra_step": view.step + 1,
        "rpra_deferrals": view.deferrals + (1 if decision.deferred else 0),
        "rpra_learning": view.learning_actions + (1 if decision.reason == "act_to_learn" else 0),
    }


def call_leg(
    model: Any, messages: Sequence[BaseMessage], *, config: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[AIMessage, LegUsage]:
    """Invoke a chat model as one leg (see :func:`run_leg` for ``leg``, ``attempts``, ``timeout_s``, ``backoff_s``)."""
    reply, usage = run_leg(lambda: model.invoke(list(messages), config=config), model, **kwargs)
    return message_of(reply), usage


async def acall_leg(
    model: Any, messages: Sequence[BaseMessage], *, config: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[AIMessage, LegUsage]:
    """Async twin of :func:`call_leg`."""
    reply, usage = await arun_leg(lambda: model.ainvoke(list(messages), config=config), model, **kwargs)
    return message_of(reply), usage


# -- the plan ---------------------------------------------------------------------------
def _forward(model: Any, asynchronous: bool) -> Any:
    for name in ("choice_distribution", "grade_distribution"):
        fn = getattr(model, ("a" if asynchronous else "") + name, None)
        if callable(fn):
            return fn
    return None


def _parse_choice(reply: AIMessage, options: Sequence[str]) -> dict[str, float]:
    word = re.sub(r"[^\w.-]", "", reply.text.strip().split()[0] if reply.text.strip() else "").lower()
    for option in options:
        if option.lower() == word:
            return {option: 1.0}
    raise PredictorError(f"the plan reply {reply.text[:40]!r} names none of {list(options)}", predictor="plan")


def choose(model: Any, messages: Sequence[BaseMessage], options: Sequence[str]) -> tuple[dict[str, float], LegUsage]:
    """The small model's choice among ``options``: one forward pass where it offers one, else a one-word reply."""
    start = time.perf_counter()
    fast = _forward(model, False)
    if fast is not None:
        dist = dict(fast(list(messages), list(options)))
        return dist, LegUsage(model_id(model), latency_ms=(time.perf_counter() - start) * 1000.0)
    reply, usage = call_leg(model, messages, leg="plan", config=HIDDEN)
    return _parse_choice(reply, options), usage


async def achoose(
    model: Any, messages: Sequence[BaseMessage], options: Sequence[str]
) -> tuple[dict[str, float], LegUsage]:
    """Async twin of :func:`choose`."""
    start = time.perf_counter()
    fast = _forward(model, True)
    if fast is not None:
        dist = dict(await fast(list(messages), list(options)))
        return dist, LegUsage(model_id(model), latency_ms=(time.perf_counter() - start) * 1000.0)
    reply, usage = await acall_leg(model, messages, leg="plan", config=HIDDEN)
    return _parse_choice(reply, options), usage


# -- runs ---------------------------------------------------------------------------------
class RunBook:
    """The ``runs`` rows of the store: ``running`` at the start, then ``completed`` or ``failed``.

    Args:
        store: The decision store, or ``None`` (then nothing is written).
        paradigm: Recorded with the run.
        config: The run's configuration (JSON), recorded with it.
    """

    def __init__(self, store: Any, paradigm: str, config: dict[str, Any]) -> None:
        self.store, self.paradigm, self.config = store, paradigm, config

    def mark(self, run_id: str | None, status: str, thread_id: str | None = None) -> None:
        """Write the run's status (no-op without a store or a run id)."""
        if self.store is not None and run_id:
            self.store.upsert_run(
                run_id, thread_id=thread_id, paradigm=self.paradigm, config=self.config, status=status
            )

    def guarded(self, run_id: str | None, thread_id: str | None, fn: Callable[[], T]) -> T:
        """Run ``fn``; mark the run ``failed`` when it raises an ``ExceptionGroup`` (a step that could not be taken)."""
        try:
            return fn()
        except BaseExceptionGroup:
            self.mark(run_id, "failed", thread_id)
            raise

    async def aguarded(self, run_id: str | None, thread_id: str | None, fn: Callable[[], Awaitable[T]]) -> T:
        """Async twin of :meth:`guarded`."""
        try:
            return await fn()
        except BaseExceptionGroup:
            self.mark(run_id, "failed", thread_id)
            raise
