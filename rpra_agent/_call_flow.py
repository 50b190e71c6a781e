"""The routing flow of one agent model call, free of I/O (used by ``RPRAMiddleware``).

The flow is a generator: it *yields* effects (call the rest of the middleware chain,
predict, reason privately, record a decision) and receives their results, so one
body serves the sync and the async hook; the driver runs each effect and throws its
exception back into the flow. Control-flow signals (interrupts) are re-raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain.agents.middleware.types import ExtendedModelResponse, ModelRequest, ModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.types import Command

from rpra_agent.core.control import reraise_control_flow
from rpra_agent._legs import LegResult
from rpra_agent._steps import (
    checked_prediction,
    log_decision,
    predictor_failure,
)
from rpra_agent.core.messages import extend_system, last_request_text, message_text, step_kind
from rpra_agent.core.decision import Decision, LegUsage, Paradigm, new_id
from rpra_agent.graph import ANSWER_PROMPT, REASON_AGAIN_PROMPT, REASON_PROMPT, SHARE_PROMPT
from rpra_agent.core.naming import model_id
from rpra_agent.core.policy import DeferralPolicy, PolicyContext, Route
from rpra_agent.core.prediction import Prediction, PredictionRequest, Predictor
from rpra_agent.predictors import ZeroShotPredictor

__all__ = ["Call", "CallFlow", "Effect", "Predict", "Reason", "Record", "as_response", "configurable"]

logger = logging.getLogger("rpra_agent.middleware")


@dataclass(frozen=True)
class Call:
    """Run the rest of the chain (inner middleware, then the model) on ``request``."""

    request: ModelRequest[Any]


@dataclass(frozen=True)
class Predict:
    """Ask ``predictor`` about ``request``."""

    predictor: Predictor
    request: PredictionRequest


@dataclass(frozen=True)
class Reason:
    """A private, unstreamed reasoning call of the small model (returns a LegResult)."""

    model: Any
    messages: Sequence[BaseMessage]


@dataclass(frozen=True)
class Record:
    """Write ``decision`` to the store."""

    decision: Decision


Effect = Call | Predict | Reason | Record
Flow = Generator[Effect, Any, ExtendedModelResponse[Any]]


def configurable() -> dict[str, Any]:
    """The current run's ``configurable`` (empty outside a runnable context)."""
    try:
        from langgraph.config import get_config

        return dict(get_config().get("configurable") or {})
    except RuntimeError:  # called directly, e.g. in a unit test
        return {}


def as_response(result: Any) -> ModelResponse[Any]:
    """Normalise what a handler returned to a ``ModelResponse``."""
    if isinstance(result, AIMessage):
        return ModelResponse(result=[result])
    if isinstance(result, ExtendedModelResponse):
        return result.model_response
    return result  # type: ignore[no-any-return]


def _ai_message(response: ModelResponse[Any]) -> AIMessage:
    message = next((m for m in reversed(response.result) if isinstance(m, AIMessage)), None)
    if message is None:
        raise TypeError("the model call returned no AIMessage")
    return message


def _usage(model: Any, response: ModelResponse[Any], elapsed: float) -> LegUsage:
    meta: dict[str, Any] = dict(_ai_message(response).usage_metadata or {})
    tokens_in, tokens_out = int(meta.get("input_tokens", 0) or 0), int(meta.get("output_tokens", 0) or 0)
    return LegUsage(model_id(model), tokens_in, tokens_out, elapsed * 1000.0)


def _add_usage(old: LegUsage | None, new: LegUsage) -> LegUsage:
    if old is None:
        return new
    return LegUsage(
        new.model,
        old.input_tokens + new.input_tokens,
        old.output_tokens + new.output_tokens,
        old.latency_ms + new.latency_ms,
    )


def _tool_names(tools: list[Any]) -> tuple[str, ...]:
    names = []
    for tool in tools:
        name = getattr(tool, "name", None)
        if name is None and isinstance(tool, dict):
            name = tool.get("name") or (tool.get("function") or {}).get("name")
        if name:
            names.append(str(name))
    return tuple(names)


@dataclass(frozen=True)
class CallFlow:
    """The middleware's settings, and the flow that routes one model call."""

    large: BaseChatModel
    predictor: Predictor | None
    policy: DeferralPolicy
    paradigm: Paradigm
    share_reasoning: bool
    on_large_failure: Literal["raise", "small"]

    def _leg(self, request: ModelRequest[Any]) -> Generator[Effect, Any, tuple[ModelResponse[Any], LegUsage]]:
        start = time.perf_counter()
        response = yield Call(request)
        return response, _usage(request.model, response, time.perf_counter() - start)

    def _reason(
        self, request: ModelRequest[Any], prompt: str, legs: dict[str, LegUsage]
    ) -> Generator[Effect, Any, str]:
        messages = [extend_system(request.system_message, prompt), *request.messages]
        res: LegResult = yield Reason(request.model, messages)
        legs["reason"] = _add_usage(legs.get("reason"), res.usage)
        return res.message.text

    def _predict(
        self, request: ModelRequest[Any], ask: PredictionRequest, legs: dict[str, LegUsage], errors: dict[str, str]
    ) -> Generator[Effect, Any, Prediction | None]:
        if not self.policy.needs_prediction or "small" in errors:
            return None
        predictor = self.predictor if self.predictor is not None else ZeroShotPredictor(request.model)
        try:
            prediction = checked_prediction((yield Predict(predictor, ask)), predictor)
        except Exception as exc:  # any failure or garbage defers; interrupts are re-raised
            errors["predictor"] = predictor_failure(exc)
            return None
        legs["predict"] = LegUsage(prediction.predictor, latency_ms=prediction.latency_ms)
        return prediction

    def run(self, request: ModelRequest[Any]) -> Flow:
        """Predict, route, take the step on the chosen model, record the decision."""
        state: dict[str, Any] = dict(request.state or {})
        conf = configurable()
        step, deferrals = int(state.get("rpra_step", 0) or 0), int(state.get("rpra_deferrals", 0) or 0)
        task = state.get("rpra_task") or conf.get("rpra_task")
        legs: dict[str, LegUsage] = {}
        errors: dict[str, str] = {}
        reasoning: str | None = None
        draft: ModelResponse[Any] | None = None

        def failed(leg: str, exc: Exception) -> None:
            reraise_control_flow(exc)
            logger.warning("%s leg failed (%s)", leg, type(exc).__name__)
            errors[leg] = type(exc).__name__

        try:
            if self.paradigm == "rpra":
                reasoning = yield from self._reason(request, REASON_PROMPT, legs)
            elif self.paradigm == "verify":
                draft, legs["small"] = yield from self._leg(request)
        except Exception as exc:
            failed("small", exc)

        draft_msg = _ai_message(draft) if draft is not None else None
        kind = step_kind(draft_msg) if draft_msg is not None else "answer"
        system = [request.system_message] if request.system_message else []
        ask = PredictionRequest(
            messages=(*system, *request.messages),
            kind=kind,
            reasoning=reasoning,
            draft=draft_msg,
            task=task,
            tool_names=_tool_names(request.tools),
        )
        prediction = yield from self._predict(request, ask, legs, errors)
        route = self.policy.decide(prediction, PolicyContext(kind=kind, step=step, deferrals=deferrals))
        if "small" in errors:
            route = Route("large", "small_error", route.threshold, route.score)

        response: ModelResponse[Any] | None = draft
        if route.route == "small" and draft is None:
            try:
                answer_request = request
                if self.paradigm == "rpra" and reasoning:
                    reasoning = yield from self._reason(request, REASON_AGAIN_PROMPT.format(reasoning=reasoning), legs)
                    system_message = extend_system(request.system_message, ANSWER_PROMPT.format(reasoning=reasoning))
                    answer_request = request.override(system_message=system_message)
                response, legs["small"] = yield from self._leg(answer_request)
            except Exception as exc:
                failed("small", exc)
                route = Route("large", "small_error", route.threshold, route.score)
        if route.route == "large":
            large_request = request.override(model=self.large)
            if self.share_reasoning and reasoning:
                shared = extend_system(request.system_message, SHARE_PROMPT.format(reasoning=reasoning))
                large_request = large_request.override(system_message=shared)
            try:
                response, legs["large"] = yield from self._leg(large_request)
            except Exception as exc:
                reraise_control_flow(exc)
                if self.on_large_failure != "small" or "small" in errors:
                    raise
                failed("large", exc)
                if draft is None:
                    draft, legs["small"] = yield from self._leg(request)
                response, route = draft, Route("small", "large_error_degraded", route.threshold, route.score)
        if response is None:  # unreachable: every branch above sets it or raises
            raise RuntimeError("no response was produced")

        message = _ai_message(response)
        decision = Decision(
            run_id=str(state.get("rpra_run_id") or conf.get("rpra_run_id") or new_id()),
            thread_id=conf.get("thread_id"),
            step=step,
            kind="answer" if response.structured_response is not None else step_kind(message),
            paradigm=self.paradigm,
            prediction=prediction,
            threshold=route.threshold,
            route=route.route,
            reason=route.reason,
            task=task,
            small_model=model_id(request.model),
            large_model=model_id(self.large),
            legs=legs,
            request=last_request_text(request.messages),
            response=message_text(message),
            tool_calls=tuple(c["name"] for c in message.tool_calls),
            error=errors.get("small") or errors.get("large"),
            degraded=route.reason == "large_error_degraded",
            metadata={
                k: v for k, v in (("score", route.score), ("predictor_error", errors.get("predictor"))) if v is not None
            },
        )
        yield Record(decision)
        log_decision(logger, decision)
        update = {
            "rpra_decisions": [decision.to_dict()],
            "rpra_step": step + 1,
            "rpra_deferrals": deferrals + (1 if decision.deferred else 0),
        }
        return ExtendedModelResponse(model_response=response, command=Command(update=update))
