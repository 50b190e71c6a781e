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
from rpra_agent.core.errors import ModelCallError, PredictorError
from rpra_agent.core.naming import model_id
from rpra_agent.core.step import Effect
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
    "drive",
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


def _failed(exc: Exception, leg: str, timeout_s: float | None, errors: list[BaseException]) -> bool:
    """Record a failed attempt; True when it is worth retrying."""
    reraise_control_flow(exc)
    timed_out = isinstance(exc, TimeoutError | concurrent.futures.TimeoutError)
    errors.append(TimeoutError(f"{leg} leg timed out after {timeout_s}s") if timed_out else exc)
    return timed_out or is_transient(exc)


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
    errors: list[BaseException] = []
    for attempt in range(attempts):
        start = time.perf_counter()
        try:
            if timeout_s is None:
                result = invoke()
            else:
                result = _POOL.submit(contextvars.copy_context().run, invoke).result(timeout_s)
            return result, _usage(model, message_of(result), time.perf_counter() - start)
        except Exception as exc:
            if not _failed(exc, leg, timeout_s, errors):
                break
            if attempt + 1 < attempts and backoff_s:
                time.sleep(backoff_s * (2**attempt))
    raise ModelCallError(f"the {leg} model failed {len(errors)} time(s)", leg=leg, errors=errors)


async def arun_leg(
    invoke: Callable[[], Awaitable[T]],
    model: Any,
    *,
    leg: str,
    attempts: int = 1,
    timeout_s: float | None = None,
    backoff_s: float = 0.0,
) -> tuple[T, LegUsage]:
    """Async twin of :func:`run_leg`."""
    errors: list[BaseException] = []
    for attempt in range(attempts):
        start = time.perf_counter()
        try:
            result = await (asyncio.wait_for(invoke(), timeout_s) if timeout_s else invoke())
            return result, _usage(model, message_of(result), time.perf_counter() - start)
        except Exception as exc:
            if not _failed(exc, leg, timeout_s, errors):
                break
            if attempt + 1 < attempts and backoff_s:
                await asyncio.sleep(backoff_s * (2**attempt))
    raise ModelCallError(f"the {leg} model failed {len(errors)} time(s)", leg=leg, errors=errors)


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
