"""Scripted chat models and fixed predictors for tests."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from rpra_agent.core.errors import PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest

__all__ = ["FixedPredictor", "ScriptedChatModel", "grade_logprobs"]

Reply = AIMessage | str | BaseException | Callable[[list[BaseMessage]], "AIMessage | str"]


def grade_logprobs(distribution: Mapping[str, float], *, chosen: str | None = None) -> dict[str, Any]:
    """OpenAI-format logprobs whose first token's alternatives carry ``distribution``."""
    top = [
        {"token": label, "logprob": math.log(p) if p > 0 else -1e9, "bytes": None}
        for label, p in sorted(distribution.items(), key=lambda kv: -kv[1])
    ]
    pick = chosen or str(top[0]["token"])
    first = next(t for t in top if t["token"] == pick)
    return {"content": [{**first, "top_logprobs": top}]}


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a script.

    Args:
        responses: Replies in order: an ``AIMessage``, a string, an exception to
            raise, or a callable of the prompt messages. The last one repeats when
            ``cycle`` is false and the script runs out.
        cycle: Start the script again when it runs out.
        logprobs: OpenAI-format logprobs attached to every reply's metadata.
        delay_s: Sleep this long before replying (for timeout tests).
        name: The model identifier recorded in decisions.
        plans: The step plans the model reports, in order (``"answer"`` or a tool
            name; the last repeats). ``None``: read from the script's next reply.
    """

    responses: list[Any]
    cycle: bool = False
    logprobs: dict[str, Any] | None = None
    delay_s: float = 0.0
    rpra_name: str = "scripted"
    plans: list[str] | None = None
    model_config = ConfigDict(arbitrary_types_allowed=True)

    _index: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _bound_tools: list[Any] = PrivateAttr(default_factory=list)
    _plans: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "rpra-scripted"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """Every prompt the model received, in order."""
        return self._calls

    @property
    def bound_tools(self) -> list[Any]:
        """The tools last bound with :meth:`bind_tools`."""
        return self._bound_tools

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        """Record the tools and return the model itself (the script decides the calls)."""
        self._bound_tools = list(tools)
        return self

    def choice_distribution(self, messages: Sequence[BaseMessage], options: Sequence[str]) -> dict[str, float]:
        """The step's plan, read from the script's next reply without consuming it (one-hot).

        The first tool the next reply calls, or ``answer`` (also for an exception or a
        callable entry), as the RPRA step's plan stage asks of any small model.
        """
        with self._lock:
            self._plans.append(list(messages))
            if self.plans:
                planned = self.plans[min(len(self._plans), len(self.plans)) - 1]
                return {o: 1.0 if o == planned else 0.0 for o in options}
            item: Any = None
            if self.responses:
                index = self._index if self._index < len(self.responses) else len(self.responses) - 1
                item = self.responses[index % len(self.responses) if self.cycle else index]
        choice = item.tool_calls[0]["name"] if isinstance(item, AIMessage) and item.tool_calls else "answer"
        choice = choice if choice in options else "answer"
        return {o: 1.0 if o == choice else 0.0 for o in options}

    async def achoice_distribution(self, messages: Sequence[BaseMessage], options: Sequence[str]) -> dict[str, float]:
        """Async twin of :meth:`choice_distribution`."""
        return self.choice_distribution(messages, options)

    @property
    def plan_prompts(self) -> list[list[BaseMessage]]:
        """Every plan prompt the model received, in order."""
        return self._plans

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        with self._lock:
            self._calls.append(list(messages))
            if not self.responses:
                raise RuntimeError("ScriptedChatModel has an empty script")
            if self._index >= len(self.responses):
                item = self.responses[self._index % len(self.responses)] if self.cycle else self.responses[-1]
            else:
                item = self.responses[self._index]
            self._index += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if isinstance(item, BaseException):
            raise item
        if callable(item) and not isinstance(item, AIMessage):
            item = item(messages)
        message = AIMessage(item) if isinstance(item, str) else item.model_copy(deep=True)
        meta = dict(message.response_metadata)
        if self.logprobs is not None and "logprobs" not in meta:
            meta["logprobs"] = self.logprobs
        message.response_metadata = meta
        if message.usage_metadata is None:
            n_in = sum(len(str(m.content).split()) for m in messages)
            n_out = max(1, len(str(message.content).split()))
            message.usage_metadata = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
            return await asyncio.to_thread(self._generate_nodelay, messages)
        return self._generate(messages)

    def _generate_nodelay(self, messages: list[BaseMessage]) -> ChatResult:
        delay, self.delay_s = self.delay_s, 0.0
        try:
            return self._generate(messages)
        finally:
            self.delay_s = delay

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._next(messages)
        text = message.text if isinstance(message.content, str) else ""
        pieces = [p for p in text.split(" ")] if text else []
        for i, piece in enumerate(pieces):
            token = piece if i == len(pieces) - 1 else piece + " "
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token, id=message.id))
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
        final = AIMessageChunk(
            content="" if pieces else message.content,
            id=message.id,
            tool_call_chunks=[
                {
                    "name": c["name"],
                    "args": __import__("json").dumps(c["args"]),
                    "id": c["id"],
                    "index": i,
                    "type": "tool_call_chunk",
                }
                for i, c in enumerate(message.tool_calls)
            ],
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=final)


class FixedPredictor:
    """A predictor that always returns the same distribution (or raises).

    Args:
        distribution: Probability per grade label; normalised.
        scale: The grade scale (the paper's by default).
        error: Raise :class:`PredictorError` with this message instead.
        name: Recorded predictor name.
    """

    def __init__(
        self,
        distribution: Mapping[str, float] | None = None,
        *,
        scale: GradeScale | None = None,
        error: str | None = None,
        name: str = "fixed",
    ) -> None:
        self.scale = scale or GradeScale.paper()
        self.distribution = dict(distribution or {self.scale.labels[-1]: 1.0})
        self.error = error
        self.name = name
        self.requests: list[PredictionRequest] = []

    @property
    def version(self) -> str:
        """Always ``"fixed"``."""
        return "fixed"

    def predict(self, request: PredictionRequest) -> Prediction:
        """Return the fixed prediction (recording the request)."""
        self.requests.append(request)
        if self.error is not None:
            raise PredictorError(self.error, predictor=self.name)
        return Prediction.from_distribution(
            self.distribution, scale=self.scale, predictor=self.name, version=self.version, method="fixed"
        )

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict`."""
        return self.predict(request)
