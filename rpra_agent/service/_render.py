"""Turning engine results into OpenAI bodies, SSE chunks and ``x-rpra-*`` headers."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from rpra_agent.core.decision import Decision
from rpra_agent.core.prediction import Prediction
from rpra_agent.service._openai import chunk, error_body, finish_reason
from rpra_agent.service.engine import Completion, Delta, Done, Routed

__all__ = ["decision_headers", "routed_headers", "rpra_metadata", "sse_events", "usage"]

logger = logging.getLogger("rpra_agent.service")


def _ascii(value: Any) -> str:
    return str(value).encode("ascii", "replace").decode("ascii").replace("\n", " ")


def _grade(prediction: Prediction | None) -> tuple[str, str]:
    if prediction is None:
        return "-", "-"
    return prediction.grade, f"{prediction.p_acceptable:.4f}"


def decision_headers(completion: Completion) -> dict[str, str]:
    """Headers naming the model that gave the final reply, and why."""
    headers = {"x-rpra-run-id": completion.run_id, "x-rpra-steps": str(len(completion.decisions))}
    headers["x-rpra-deferrals"] = str(sum(d.deferred for d in completion.decisions))
    if completion.decisions:
        last = completion.decisions[-1]
        grade, p_ok = _grade(last.prediction)
        headers.update({
            "x-rpra-route": last.route,
            "x-rpra-reason": last.reason,
            "x-rpra-model": _ascii(last.small_model if last.route == "small" else last.large_model),
            "x-rpra-predicted-grade": grade,
            "x-rpra-p-acceptable": p_ok,
            "x-rpra-threshold": f"{last.threshold:.4f}",
            "x-rpra-decision-id": last.id,
        })  # fmt: skip
    return headers


def routed_headers(event: Routed, small: str, large: str) -> dict[str, str]:
    """Streaming headers: the first step's routing, decided before any token is sent."""
    pending = event.pending
    prediction = Prediction.from_dict(pending["prediction"]) if pending.get("prediction") else None
    grade, p_ok = _grade(prediction)
    route = str(pending.get("route", "small"))
    return {
        "x-rpra-route": route,
        "x-rpra-reason": str(pending.get("reason", "forced")),
        "x-rpra-model": _ascii(small if route == "small" else large),
        "x-rpra-predicted-grade": grade,
        "x-rpra-p-acceptable": p_ok,
        "x-rpra-threshold": f"{float(pending.get('threshold', 0.0)):.4f}",
    }


def _compact(d: Decision) -> dict[str, Any]:
    grade, _ = _grade(d.prediction)
    return {
        "id": d.id,
        "step": d.step,
        "kind": d.kind,
        "route": d.route,
        "reason": d.reason,
        "model": d.small_model if d.route == "small" else d.large_model,
        "predicted_grade": None if d.prediction is None else grade,
        "p_acceptable": None if d.prediction is None else d.prediction.p_acceptable,
        "threshold": d.threshold,
        "tool_calls": list(d.tool_calls),
        "degraded": d.degraded,
        "error": d.error,
        "legs": {k: v.to_dict() for k, v in d.legs.items()},
    }


def rpra_metadata(completion: Completion) -> dict[str, Any]:
    """The ``rpra`` field of a response: who answered and why, per step."""
    decisions = [_compact(d) for d in completion.decisions]
    last = decisions[-1] if decisions else {}
    return {
        "run_id": completion.run_id,
        "route": last.get("route"),
        "reason": last.get("reason"),
        "model": last.get("model"),
        "predicted_grade": last.get("predicted_grade"),
        "p_acceptable": last.get("p_acceptable"),
        "threshold": last.get("threshold"),
        "steps": len(decisions),
        "deferrals": sum(d["route"] == "large" for d in decisions),
        "decisions": decisions,
    }


def usage(completion: Completion) -> dict[str, int]:
    """Tokens over every leg of every step (prediction and reasoning included)."""
    prompt = sum(leg.input_tokens for d in completion.decisions for leg in d.legs.values())
    output = sum(leg.output_tokens for d in completion.decisions for leg in d.legs.values())
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}


async def _detached(events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Iterate ``events`` in a task of its own.

    Starlette cancels a streaming response's scope when the client hangs up; anyio's
    repeated cancellation can interrupt LangGraph's own cleanup and leave the node task
    running. Here the run lives in a plain asyncio task that is cancelled once, cleanly.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)
    end = object()

    async def pump() -> None:
        try:
            async for item in events:
                await queue.put(item)
        except Exception as exc:  # handed to the consumer
            await queue.put(exc)
            return
        await queue.put(end)

    task = asyncio.create_task(pump())
    try:
        while True:
            item = await queue.get()
            if item is end:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        task.cancel()


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


def _tool_deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in chunks:
        delta: dict[str, Any] = {"index": int(c.get("index") or 0)}
        if c.get("id"):
            delta.update(id=c["id"], type="function")
        function = {k: v for k, v in (("name", c.get("name")), ("arguments", c.get("args"))) if v}
        delta["function"] = function
        out.append(delta)
    return out


async def sse_events(
    events: AsyncIterator[Routed | Delta | Done],
    *,
    completion_id: str,
    model: str,
    client_tools: bool,
    include_usage: bool,
    on_done: Any,
) -> AsyncIterator[str]:
    """OpenAI chunk SSE lines for the rest of a stream, ending with ``data: [DONE]``.

    ``on_done(completion | None, status)`` is called once at the end (metrics): 200,
    500 when the run failed mid-stream, 499 when the client went away (the graph run
    is then cancelled).
    """
    created = int(time.time())
    result: Completion | None = None
    try:
        yield _sse(chunk(completion_id, model, created, {"role": "assistant", "content": ""}))
        try:
            async for event in _detached(events):
                if isinstance(event, Delta):
                    delta: dict[str, Any] = {}
                    if event.text:
                        delta["content"] = event.text
                    if event.tool_call_chunks:
                        delta["tool_calls"] = _tool_deltas(event.tool_call_chunks)
                    yield _sse(chunk(completion_id, model, created, delta))
                elif isinstance(event, Done):
                    result = event.completion
        except Exception:  # headers are gone: report in-band, as OpenAI does
            logger.exception("chat completion %s failed while streaming", completion_id)
            on_done(None, 500)
            yield _sse(
                error_body("The model failed while streaming the response.", "server_error", code="stream_error")
            )
            yield "data: [DONE]\n\n"
            return
        if result is None:
            on_done(None, 500)
            return
        finish = finish_reason(result.message, client_tools)
        yield _sse(chunk(completion_id, model, created, {}, finish_reason=finish, rpra=rpra_metadata(result)))
        if include_usage:
            yield _sse(chunk(completion_id, model, created, None, usage=usage(result)))
        yield "data: [DONE]\n\n"
        on_done(result, 200)
    finally:
        on_done(None, 499)  # a no-op unless the client disconnected before the end
