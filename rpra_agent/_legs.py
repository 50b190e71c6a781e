"""Calling one model leg: timing, usage, timeouts and retries with backoff."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from rpra_agent.core.control import reraise_control_flow
from rpra_agent.core.decision import LegUsage
from rpra_agent.core.errors import ConfigError, ModelCallError
from rpra_agent.core.naming import model_id

__all__ = ["FaultPolicy", "LegResult", "acall_leg", "call_leg"]


@dataclass(frozen=True)
class FaultPolicy:
    """What the graph does when a model leg fails.

    Attributes:
        small_timeout_s: Timeout of one small-model call (``None``: no timeout).
            A failed or timed-out small call defers the step (reason ``small_error``).
        large_timeout_s: Timeout of one large-model call.
        large_attempts: Attempts at the large model before giving up (>= 1).
        backoff_s: First backoff between attempts; doubles each retry.
        on_large_failure: ``"raise"`` (an ``ExceptionGroup`` with every error) or
            ``"small"`` (answer with the small model, marked degraded).
    """

    small_timeout_s: float | None = None
    large_timeout_s: float | None = None
    large_attempts: int = 3
    backoff_s: float = 0.5
    on_large_failure: str = "raise"

    def __post_init__(self) -> None:
        if self.large_attempts < 1:
            raise ConfigError("large_attempts must be at least 1")
        if self.on_large_failure not in ("raise", "small"):
            raise ConfigError("on_large_failure must be 'raise' or 'small'")
        for name in ("small_timeout_s", "large_timeout_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive or None")
        if self.backoff_s < 0:
            raise ConfigError("backoff_s must be >= 0")


@dataclass(frozen=True)
class LegResult:
    """A leg's reply and usage."""

    message: AIMessage
    usage: LegUsage


_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="rpra-leg")


def _usage(model: Any, message: AIMessage, elapsed: float) -> LegUsage:
    meta: dict[str, Any] = dict(message.usage_metadata or {})
    return LegUsage(
        model=model_id(model),
        input_tokens=int(meta.get("input_tokens", 0) or 0),
        output_tokens=int(meta.get("output_tokens", 0) or 0),
        latency_ms=elapsed * 1000.0,
    )


def _check(reply: Any) -> AIMessage:
    if not isinstance(reply, AIMessage):
        raise TypeError(f"the model returned {type(reply).__name__}, not an AIMessage")
    return reply


def call_leg(
    model: Any,
    messages: Sequence[BaseMessage],
    *,
    leg: str,
    attempts: int = 1,
    timeout_s: float | None = None,
    backoff_s: float = 0.0,
    config: dict[str, Any] | None = None,
) -> LegResult:
    """Invoke ``model`` with retries; raise :class:`ModelCallError` with every error."""
    errors: list[BaseException] = []
    for attempt in range(attempts):
        start = time.perf_counter()
        try:
            if timeout_s is None:
                reply = _check(model.invoke(list(messages), config=config))
            else:
                import contextvars

                ctx = contextvars.copy_context()
                future = _POOL.submit(ctx.run, model.invoke, list(messages), config)
                reply = _check(future.result(timeout=timeout_s))
            return LegResult(reply, _usage(model, reply, time.perf_counter() - start))
        except Exception as exc:
            reraise_control_flow(exc)
            errors.append(
                exc
                if not isinstance(exc, concurrent.futures.TimeoutError)
                else TimeoutError(f"{leg} leg timed out after {timeout_s}s")
            )
            if attempt + 1 < attempts and backoff_s:
                time.sleep(backoff_s * (2**attempt))
    raise ModelCallError(f"the {leg} model failed {len(errors)} time(s)", leg=leg, errors=errors)


async def acall_leg(
    model: Any,
    messages: Sequence[BaseMessage],
    *,
    leg: str,
    attempts: int = 1,
    timeout_s: float | None = None,
    backoff_s: float = 0.0,
    config: dict[str, Any] | None = None,
) -> LegResult:
    """Async twin of :func:`call_leg`."""
    errors: list[BaseException] = []
    for attempt in range(attempts):
        start = time.perf_counter()
        try:
            coro = model.ainvoke(list(messages), config=config)
            reply = _check(await (asyncio.wait_for(coro, timeout_s) if timeout_s else coro))
            return LegResult(reply, _usage(model, reply, time.perf_counter() - start))
        except Exception as exc:
            reraise_control_flow(exc)
            errors.append(
                exc if not isinstance(exc, TimeoutError) else TimeoutError(f"{leg} leg timed out after {timeout_s}s")
            )
            if attempt + 1 < attempts and backoff_s:
                await asyncio.sleep(backoff_s * (2**attempt))
    raise ModelCallError(f"the {leg} model failed {len(errors)} time(s)", leg=leg, errors=errors)
