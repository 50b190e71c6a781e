"""A zero-shot self-predictor whose prompt extends the answer prompt, so llama.cpp evaluates it once.

:class:`~rpra_agent.predictors.ZeroShotPredictor` shows the model the conversation as
escaped JSON inside a separate system prompt: robust to prompt injection, but its
tokens share nothing with the answer call, so the small model evaluates the
conversation twice. :class:`PrefixSharingPredictor` keeps the conversation exactly as
the answer call sends it:

- On a model with a one-pass ``grade_distribution(..., prefill=...)`` (the llama.cpp
  chat model), the prediction prompt is the answer prompt itself, up to and including
  the assistant header, followed by a short self-check the assistant "starts" its turn
  with. The answer prompt is then an exact token prefix of the prediction prompt: the
  prediction evaluates only the self-check, and the answer call afterwards
  re-evaluates one token (see ``benchmarks/bench_llamacpp.py``).
- Elsewhere (chat APIs, or to grade a ``verify`` draft) the self-check is a user turn
  after the conversation (joined to the last user message, so templates that require
  alternating roles still render); the draft is an assistant turn before it.

Trade-off: the conversation is not fenced as data, so text in it can sway what the
model *believes* (never how the output is parsed: the distribution is read from
logits or logprobs). Prefer :class:`~rpra_agent.predictors.ZeroShotPredictor` where
user text is hostile and latency matters less.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from rpra_agent.core.control import reraise_control_flow
from rpra_agent.core.errors import PredictorError
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.predictors.prompts import grade_instruction
from rpra_agent.predictors.self_predict import ZeroShotPredictor

__all__ = ["PrefixSharingPredictor"]


class PrefixSharingPredictor(ZeroShotPredictor):
    """Zero-shot self-prediction that shares the answer's prompt prefix (KV-cache friendly).

    Args:
        model: Any LangChain chat model; on :class:`~rpra_agent.models.ChatLlamaCpp`
            the grade is read from one forward pass over the answer prompt plus a
            short self-check.
        **kwargs: As for :class:`~rpra_agent.predictors.SelfPredictor`.
    """

    name = "prefix_sharing"

    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self._supports: dict[tuple[int, str], bool] = {}

    def _subject(self, request: PredictionRequest) -> str:
        if request.draft is not None:
            return "your reply above"
        return {"answer": "your next reply", "action": "your next tool action"}[request.kind]

    def prefill(self, request: PredictionRequest) -> str:
        """The self-check the assistant turn starts with (short: its tokens are the prediction's cost)."""
        what = self._subject(request).replace("your", "my")
        labels = self.scale.labels
        choices = f"{', '.join(labels[:-1])} or {labels[-1]}" if len(labels) > 1 else labels[0]
        reasoning = f" My private reasoning: {request.reasoning}" if request.reasoning else ""
        return (
            f"[Self-check, hidden from the user: a judge will grade {what} on {self.rubric}, "
            f"as {choices}.{reasoning} My prediction:]\n"
        )

    def question(self, request: PredictionRequest) -> str:
        """The self-check as a user turn, for models without a prefill pass."""
        reasoning = f" Your private reasoning so far: {request.reasoning}" if request.reasoning else ""
        return (
            f"(Self-check, not part of the conversation: a judge will grade {self._subject(request)} on "
            f"{self.rubric}.{reasoning} Predict the grade honestly. {grade_instruction(self.scale)})"
        )

    def build_prompt(self, request: PredictionRequest) -> list[BaseMessage]:
        """The conversation as the answer call sees it, then the self-check as a user turn."""
        messages: list[BaseMessage] = list(request.messages)
        if request.draft is not None:
            messages.append(AIMessage(content=request.draft.content, tool_calls=request.draft.tool_calls))
        question = self.question(request)
        last = messages[-1] if messages else None
        if isinstance(last, HumanMessage) and isinstance(last.content, str):
            messages[-1] = HumanMessage(f"{last.content}\n\n{question}")
        else:
            messages.append(HumanMessage(question))
        return messages

    def _prefill_pass(self, request: PredictionRequest, attr: str) -> Callable[..., Any] | None:
        fn = getattr(self.model, attr, None)
        if self.method != "auto" or request.draft is not None or not callable(fn):
            return None
        key = (id(self.model), attr)
        if key not in self._supports:
            try:
                self._supports[key] = "prefill" in inspect.signature(fn).parameters
            except (TypeError, ValueError):
                self._supports[key] = False
        return fn if self._supports[key] else None

    def predict(self, request: PredictionRequest) -> Prediction:
        """Predict from one forward pass over the answer prompt plus the self-check, where possible."""
        fast = self._prefill_pass(request, "grade_distribution")
        if fast is None:
            return super().predict(request)
        start = time.perf_counter()
        try:
            dist = fast(list(request.messages), list(self.scale.labels), prefill=self.prefill(request))
        except PredictorError:
            raise
        except Exception as exc:
            reraise_control_flow(exc)
            raise PredictorError(f"{type(exc).__name__} while predicting", predictor=self.name) from exc
        return self._finish(dict(dist), "", "forward_pass", start, request, self._prompt_usage(list(request.messages)))

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict`."""
        fast = self._prefill_pass(request, "agrade_distribution")
        if fast is None:
            return await super().apredict(request)
        start = time.perf_counter()
        try:
            dist = await fast(list(request.messages), list(self.scale.labels), prefill=self.prefill(request))
        except PredictorError:
            raise
        except Exception as exc:
            reraise_control_flow(exc)
            raise PredictorError(f"{type(exc).__name__} while predicting", predictor=self.name) from exc
        return self._finish(dict(dist), "", "forward_pass", start, request, self._prompt_usage(list(request.messages)))
