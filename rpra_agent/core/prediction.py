"""The prediction seam: what a predictor is asked, what it answers, and its protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from langchain_core.messages import AIMessage, BaseMessage

from rpra_agent.core.grades import GradeScale
from rpra_agent.core.usage import LegUsage

__all__ = ["Kind", "Prediction", "PredictionRequest", "Predictor", "needs_draft"]

Kind = Literal["answer", "action"]


@dataclass(frozen=True)
class PredictionRequest:
    """Everything a predictor may look at for one step.

    Attributes:
        messages: The conversation so far (the user's request is in here).
        kind: ``"answer"`` or ``"action"``; ``"answer"`` when not yet known.
        reasoning: The small model's private reasoning for this step (RPRA), if any.
        draft: The small model's drafted reply (verify paradigm / draft mode), if any.
        task: The user-supplied task tag (category) of the request, if any.
        tool_names: Names of the tools the step may call.
    """

    messages: tuple[BaseMessage, ...]
    kind: Kind = "answer"
    reasoning: str | None = None
    draft: AIMessage | None = None
    task: str | None = None
    tool_names: tuple[str, ...] = ()

    @property
    def request_text(self) -> str:
        """The text of the last human message: the bare request."""
        for message in reversed(self.messages):
            if message.type == "human":
                return message.text if isinstance(message.text, str) else str(message.content)
        return ""


@dataclass(frozen=True)
class Prediction:
    """A predictor's belief about the judge's grade for the step about to be taken.

    Attributes:
        distribution: Probability of each grade label (sums to 1, plain floats).
        expected_score: Expected grade value on ``scale``.
        p_acceptable: Probability that the grade is acceptable on ``scale``.
        predictor: The predictor's name.
        version: The predictor's version (model, card or artifact version).
        latency_ms: Wall time the prediction took.
        raw: The raw model output the prediction was derived from (DEBUG only).
        scale: The grade scale of ``distribution``.
        method: How the distribution was obtained: ``logprobs``, ``one_hot``,
            ``forward_pass``, ``statistical`` or ``learned``.
        usage: The model call the prediction made (its model, tokens, latency), or
            ``None`` when no model was called (statistical and learned predictors).
    """

    distribution: Mapping[str, float]
    expected_score: float
    p_acceptable: float
    predictor: str
    version: str = "0"
    latency_ms: float = 0.0
    raw: str = ""
    scale: GradeScale = field(default_factory=GradeScale.paper)
    method: str = "one_hot"
    usage: LegUsage | None = None

    @classmethod
    def from_distribution(
        cls,
        distribution: Mapping[str, float],
        *,
        scale: GradeScale,
        predictor: str,
        version: str = "0",
        latency_ms: float = 0.0,
        raw: str = "",
        method: str = "one_hot",
        usage: LegUsage | None = None,
    ) -> Prediction:
        """Build a prediction, normalising the distribution and deriving its statistics."""
        dist = scale.normalize_distribution(distribution)
        return cls(
            distribution=dist,
            expected_score=scale.expected(dist),
            p_acceptable=scale.p_acceptable(dist),
            predictor=predictor,
            version=version,
            latency_ms=float(latency_ms),
            raw=raw,
            scale=scale,
            method=method,
            usage=usage,
        )

    @property
    def grade(self) -> str:
        """The most probable grade."""
        return self.scale.mode(self.distribution)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "distribution": {k: float(v) for k, v in self.distribution.items()},
            "expected_score": float(self.expected_score),
            "p_acceptable": float(self.p_acceptable),
            "predictor": self.predictor,
            "version": self.version,
            "latency_ms": float(self.latency_ms),
            "raw": self.raw,
            "scale": self.scale.to_dict(),
            "method": self.method,
            "usage": self.usage.to_dict() if self.usage is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prediction:
        """Rebuild a prediction from :meth:`to_dict` output."""
        return cls(
            distribution={str(k): float(v) for k, v in data["distribution"].items()},
            expected_score=float(data["expected_score"]),
            p_acceptable=float(data["p_acceptable"]),
            predictor=str(data["predictor"]),
            version=str(data.get("version", "0")),
            latency_ms=float(data.get("latency_ms", 0.0)),
            raw=str(data.get("raw", "")),
            scale=GradeScale.from_dict(data["scale"]) if "scale" in data else GradeScale.paper(),
            method=str(data.get("method", "one_hot")),
            usage=LegUsage.from_dict(data["usage"]) if data.get("usage") else None,
        )


@runtime_checkable
class Predictor(Protocol):
    """Predicts how a judge would grade the step the small model is about to take.

    Implementations raise :class:`~rpra_agent.core.errors.PredictorError` on failure or
    garbage output; the graph turns that into a deferral (reason ``predictor_error``).
    One that cannot predict without the small model's drafted answer says so with an
    optional ``needs_draft = True`` attribute: the graph and the middleware then refuse
    any paradigm but ``verify``, where every prediction would fail and defer
    (:func:`needs_draft`).
    """

    name: str
    scale: GradeScale

    @property
    def version(self) -> str:
        """The version recorded with every prediction."""
        ...

    def predict(self, request: PredictionRequest) -> Prediction:
        """Predict the grade distribution for ``request``."""
        ...

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict`."""
        ...


def needs_draft(predictor: object) -> bool:
    """Whether ``predictor`` predicts only from the small model's draft (its ``needs_draft``, default ``False``)."""
    return bool(getattr(predictor, "needs_draft", False))


def messages_tuple(messages: Sequence[BaseMessage]) -> tuple[BaseMessage, ...]:
    """Freeze a message list for a :class:`PredictionRequest`."""
    return tuple(messages)
