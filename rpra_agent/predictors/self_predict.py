"""The paper's three self-predictors over any LangChain chat model."""

from __future__ import annotations

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
                return self._finish(dict(dist), "", "forward_pass", start)
            reply = self._bound().invoke(prompt, config=_CONFIG)
        except PredictorError:
            raise
        except Exception as exc:
            reraise_control_flow(exc)
            raise PredictorError(f"{type(exc).__name__} while predicting", predictor=self.name) from exc
        return self._parse(reply, start)

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict`."""
        start = time.perf_counter()
        prompt = self.build_prompt(request)
        try:
            fast = getattr(self.model, "agrade_distribution", None) if self._forward_pass() else None
            if fast is not None:
                dist = await fast(prompt, list(self.scale.labels))
                return self._finish(dict(dist), "", "forward_pass", start)
            reply = await self._bound().ainvoke(prompt, config=_CONFIG)
        except PredictorError:
            raise
        except Exception as exc:
            reraise_control_flow(exc)
            raise PredictorError(f"{type(exc).__name__} while predicting", predictor=self.name) from exc
        return self._parse(reply, start)

    # -- parsing ---------------------------------------------------------------
    def _parse(self, reply: Any, start: float) -> Prediction:
        if not isinstance(reply, AIMessage):
            raise PredictorError(f"expected an AIMessage, got {type(reply).__name__}", predictor=self.name)
        raw = reply.text if isinstance(reply.text, str) else str(reply.content)
        if self.method != "text":
            dist = distribution_from_logprobs(reply.response_metadata.get("logprobs"), self.scale)
            if dist is not None:
                return self._finish(dist, raw, "logprobs", start)
            if self.method == "logprobs":
                raise PredictorError("the model returned no logprobs over the grades", predictor=self.name, raw=raw)
        label = self.scale.parse_label(raw)
        if label is None:
            logger.debug("predictor %s: unparseable output %r", self.name, raw)
            raise PredictorError("the model's reply is not a grade", predictor=self.name, raw=raw)
        return self._finish(self.scale.one_hot(label), raw, "one_hot", start)

    def _finish(self, dist: dict[str, float], raw: str, method: str, start: float) -> Prediction:
        try:
            return Prediction.from_distribution(
                dist,
                scale=self.scale,
                predictor=self.name,
                version=self.version,
                latency_ms=(time.perf_counter() - start) * 1000.0,
                raw=raw,
                method=method,
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

    def build_prompt(self, request: PredictionRequest) -> list[BaseMessage]:
        """The self-prediction prompt with the report card in the system message."""
        return build_self_prompt(request, self.scale, rubric=self.rubric, report_card=self.card_for(request.task))


class FineTunedPredictor(SelfPredictor):
    """A model trained (hindsight SFT) to emit the grade directly from the bare request."""

    name = "fine_tuned"

    def build_prompt(self, request: PredictionRequest) -> list[BaseMessage]:
        """The bare-request prompt used in ``rpra export-sft``."""
        return build_finetuned_prompt(request)
