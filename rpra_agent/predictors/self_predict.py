"""The paper's three self-predictors over any LangChain chat model."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langgraph.constants import TAG_NOSTREAM

from rpra_agent.core.control import reraise_control_flow
from rpra_agent.core.errors import PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.naming import model_id
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.core.usage import LegUsage
from rpra_agent.predictors._parse import distribution_from_logprobs
from rpra_agent.predictors.prompts import DEFAULT_RUBRIC, build_finetuned_prompt, build_self_prompt

__all__ = ["FineTunedPredictor", "ReportCardPredictor", "SelfPredictor", "ZeroShotPredictor"]

logger = logging.getLogger(__name__)

Method = Literal["auto", "logprobs", "text"]
_CONFIG = {"tags": [TAG_NOSTREAM], "run_name": "rpra_predict"}


class SelfPredictor:
    """Asks a chat model to predict the judge's grade for the step it is about to take.

    The distribution is read, in order of preference, from a single forward pass
    (models exposing ``grade_distribution``, such as the llama.cpp chat model), from
    OpenAI-format token logprobs, or from a strict one-word reply taken as one-hot.
    Anything else raises :class:`PredictorError`.

    Args:
        model: Any LangChain chat model.
        scale: The judge's grade scale.
        name: Recorded as the predictor's name.
        method: ``auto`` (forward pass, then logprobs, then text), ``logprobs``
            (fail without logprobs) or ``text`` (one-hot only).
        top_logprobs: How many alternatives to request per token.
        rubric: The rubric named in the prompt.
    """

    name: str = "self"

    def __init__(
        self,
        model: BaseChatModel | Runnable[Any, Any],
        *,
        scale: GradeScale | None = None,
        name: str | None = None,
        method: Method = "auto",
        top_logprobs: int = 10,
        rubric: str = DEFAULT_RUBRIC,
    ) -> None:
        self.model = model
        self.scale = scale or GradeScale.paper()
        if name:
            self.name = name
        self.method = method
        self.top_logprobs = top_logprobs
        self.rubric = rubric

    @property
    def version(self) -> str:
        """The model identifier."""
        return model_id(self.model)

    def version_for(self, request: PredictionRequest) -> str:
        """The version recorded with a prediction for ``request`` (subclasses add what their prompt holds)."""
        return self.version

    # -- prompt ----------------------------------------------------------------
    def build_prompt(self, request: PredictionRequest) -> list[BaseMessage]:
        """The prompt for ``request`` (subclasses change what the model sees)."""
        return build_self_prompt(request, self.scale, rubric=self.rubric)

    # -- calling ---------------------------------------------------------------
    def _bound(self) -> Any:
        fields = getattr(type(self.model), "model_fields", {})
        if self.method != "text" and "logprobs" in fields and hasattr(self.model, "bind"):
            return self.model.bind(logprobs=True, top_logprobs=self.top_logprobs)
        return self.model

    def _forward_pass(self) -> Callable[..., Any] | None:
        fn = getattr(self.model, "grade_distribution", None)
        return fn if self.method == "auto" and callable(fn) else None

    def predict(self, request: PredictionRequest) -> Prediction:
        """Predict the grade distribution for ``request``."""
        start = time.perf_counter()
        prompt = self.build_prompt(request)
        try:
            fast = self._forward_pass()
            if fast is not None:
                dist = fast(prompt, list(self.scale.labels))
                return self._finish(dict(dist), "", "forward_pass", start, request, self._prompt_usage(prompt))
            reply = self._bound().invoke(prompt, config=_CONFIG)
        except PredictorError:
            raise
        except Exception as exc:
            reraise_control_flow(exc)
            raise PredictorError(f"{type(exc).__name__} while predicting", predictor=self.name) from exc
        return self._parse(reply, start, request)

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict`."""
        start = time.perf_counter()
        prompt = self.build_prompt(request)
        try:
            fast = getattr(self.model, "agrade_distribution", None) if self._forward_pass() else None
            if fast is not None:
                dist = await fast(prompt, list(self.scale.labels))
                return self._finish(dict(dist), "", "forward_pass", start, request, self._prompt_usage(prompt))
            reply = await self._bound().ainvoke(prompt, config=_CONFIG)
        except PredictorError:
            raise
        except Exception as exc:
            reraise_control_flow(exc)
            raise PredictorError(f"{type(exc).__name__} while predicting", predictor=self.name) from exc
        return self._parse(reply, start, request)

    # -- parsing ---------------------------------------------------------------
    def _prompt_usage(self, prompt: list[BaseMessage]) -> LegUsage:
        """A forward pass reads the prompt and generates nothing: its input tokens, when the model can count them."""
        count = getattr(self.model, "prompt_tokens", None)
        try:
            n_in = len(count(prompt)) if callable(count) else 0
        except Exception:  # noqa: BLE001 - counting is best effort; the prediction itself succeeded
            n_in = 0
        return LegUsage(model_id(self.model), input_tokens=n_in)

    def _parse(self, reply: Any, start: float, request: PredictionRequest) -> Prediction:
        if not isinstance(reply, AIMessage):
            raise PredictorError(f"expected an AIMessage, got {type(reply).__name__}", predictor=self.name)
        raw = reply.text if isinstance(reply.text, str) else str(reply.content)
        meta: dict[str, Any] = dict(reply.usage_metadata or {})
        usage = LegUsage(
            model_id(self.model), int(meta.get("input_tokens", 0) or 0), int(meta.get("output_tokens", 0) or 0)
        )
        if self.method != "text":
            dist = distribution_from_logprobs(reply.response_metadata.get("logprobs"), self.scale)
            if dist is not None:
                return self._finish(dist, raw, "logprobs", start, request, usage)
            if self.method == "logprobs":
                raise PredictorError("the model returned no logprobs over the grades", predictor=self.name, raw=raw)
        label = self.scale.parse_label(raw)
        if label is None:
            logger.debug("predictor %s: unparseable output %r", self.name, raw)
            raise PredictorError("the model's reply is not a grade", predictor=self.name, raw=raw)
        return self._finish(self.scale.one_hot(label), raw, "one_hot", start, request, usage)

    def _finish(
        self,
        dist: dict[str, float],
        raw: str,
        method: str,
        start: float,
        request: PredictionRequest | None = None,
        usage: LegUsage | None = None,
    ) -> Prediction:
        elapsed = (time.perf_counter() - start) * 1000.0
        usage = usage or LegUsage(model_id(self.model))
        try:
            return Prediction.from_distribution(
                dist,
                scale=self.scale,
                predictor=self.name,
                version=self.version_for(request) if request is not None else self.version,
                latency_ms=elapsed,
                raw=raw,
                method=method,
                usage=LegUsage(usage.model, usage.input_tokens, usage.output_tokens, elapsed),
            )
        except ValueError as exc:
            raise PredictorError(str(exc), predictor=self.name, raw=raw) from exc


class ZeroShotPredictor(SelfPredictor):
    """The paper's zero-shot predictor: just ask the model."""

    name = "zero_shot"


class ReportCardPredictor(SelfPredictor):
    """The paper's in-context report card: the model's track record is in the prompt.

    Args:
        model: Any LangChain chat model.
        card: The report card text (about 100-200 tokens), or a callable returning
            the card for a task tag (e.g. one that loads the latest card from a store).
        **kwargs: As for :class:`SelfPredictor`.
    """

    name = "report_card"

    def __init__(
        self,
        model: BaseChatModel | Runnable[Any, Any],
        card: str | Callable[[str | None], str | None],
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.card = card

    def card_for(self, task: str | None) -> str | None:
        """The card text for a task tag."""
        return self.card(task) if callable(self.card) else self.card

    def version_for(self, request: PredictionRequest) -> str:
        """The model and the version of the card in the prompt (a hash of its text, or ``none``)."""
        card = self.card_for(request.task)
        tag = hashlib.sha256(card.encode("utf-8")).hexdigest()[:12] if card else "none"
        return f"{self.version}+card:{tag}"

    def build_prompt(self, request: PredictionRequest) -> list[BaseMessage]:
        """The self-prediction prompt with the report card in the system message."""
        return build_self_prompt(request, self.scale, rubric=self.rubric, report_card=self.card_for(request.task))


class FineTunedPredictor(SelfPredictor):
    """A model trained (hindsight SFT) to emit the grade directly from the bare request."""

    name = "fine_tuned"

    def build_prompt(self, request: PredictionRequest) -> list[BaseMessage]:
        """The bare-request prompt used in ``rpra export-sft``."""
        return build_finetuned_prompt(request)
