"""The featurizer seam: the :class:`Sample` a learned predictor sees, the protocol, the registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar, runtime_checkable

import numpy as np
from scipy import sparse

from rpra_agent.core.messages import message_text
from rpra_agent.core.prediction import PredictionRequest

__all__ = ["REGISTRY", "FeatureMatrix", "Featurizer", "Sample", "fit_features", "register_featurizer"]

_CONTEXT_CHARS = 4000
_ROLES = {"human": "user", "ai": "assistant", "tool": "tool"}


@dataclass(frozen=True)
class Sample:
    """What the learned predictor sees of one step.

    Attributes:
        request: The bare request (the last user message).
        context: The earlier conversation as text (``role: content`` lines), if any.
        draft: The small model's drafted answer or action (draft mode), if any.
        task: The task tag (category), if any.
        kind: ``"answer"`` or ``"action"``.
    """

    request: str
    context: str = ""
    draft: str | None = None
    task: str | None = None
    kind: str = "answer"

    @classmethod
    def from_request(cls, request: PredictionRequest) -> Sample:
        """The sample of a :class:`~rpra_agent.core.prediction.PredictionRequest`."""
        messages = [m for m in request.messages if m.type != "system"]
        last = max((i for i, m in enumerate(messages) if m.type == "human"), default=-1)
        earlier = [{"role": _ROLES.get(m.type, m.type), "content": message_text(m)} for m in messages[:last]]
        if request.tool_names:
            earlier.append({"role": "tools", "content": " ".join(request.tool_names)})
        return cls(
            request=request.request_text,
            context=_render(earlier),
            draft=message_text(request.draft) if request.draft is not None else None,
            task=request.task,
            kind=request.kind,
        )

    def to_request(self) -> PredictionRequest:
        """A :class:`PredictionRequest` carrying this sample (earlier turns as one message)."""
        from langchain_core.messages import AIMessage, HumanMessage

        messages = ((HumanMessage(self.context),) if self.context else ()) + (HumanMessage(self.request),)
        return PredictionRequest(
            messages=messages,
            kind="action" if self.kind == "action" else "answer",
            draft=AIMessage(self.draft) if self.draft is not None else None,
            task=self.task,
        )

    @classmethod
    def from_messages(
        cls,
        messages: Sequence[Mapping[str, Any]],
        *,
        draft: str | None = None,
        task: str | None = None,
        kind: str = "answer",
    ) -> Sample:
        """The sample of OpenAI-style ``{"role", "content"}`` messages (a dataset item)."""
        msgs = [m for m in messages if m.get("role") != "system"]
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=-1)
        request = str(msgs[last].get("content") or "") if last >= 0 else ""
        return cls(request=request, context=_render(msgs[: max(last, 0)]), draft=draft, task=task, kind=kind)


def _render(messages: Sequence[Mapping[str, Any]]) -> str:
    text = "\n".join(f"{m.get('role', 'user')}: {m.get('content') or ''}" for m in messages)
    return text[-_CONTEXT_CHARS:]


FeatureMatrix: TypeAlias = sparse.csr_matrix


@runtime_checkable
class Featurizer(Protocol):
    """Turns samples into a feature matrix; saved as a JSON config plus numpy arrays.

    Implementations are registered with :func:`register_featurizer` under ``kind``
    and rebuilt by :func:`featurizer_from_state`.
    """

    kind: str

    def fit(self, samples: Sequence[Sample], *, draft: bool) -> None:
        """Learn vocabularies / scalers from training samples; ``draft`` says whether drafts count."""
        ...

    def transform(self, samples: Sequence[Sample]) -> FeatureMatrix:
        """The feature matrix (one row per sample)."""
        ...

    def config(self) -> dict[str, Any]:
        """A JSON-serialisable description (includes ``kind``)."""
        ...

    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays (numeric or unicode; never objects)."""
        ...


def fit_features(featurizer: Featurizer, samples: Sequence[Sample], *, draft: bool) -> FeatureMatrix:
    """Fit ``featurizer`` on ``samples`` and return their feature matrix.

    Uses the featurizer's own ``fit_transform(samples, draft=...)`` where it has one
    (the text featurizer's analyses each text once instead of twice); ``fit`` then
    ``transform`` otherwise, so a featurizer written to the protocol needs nothing more.
    """
    fit_transform = getattr(featurizer, "fit_transform", None)
    if callable(fit_transform):
        return sparse.csr_matrix(fit_transform(samples, draft=draft))
    featurizer.fit(samples, draft=draft)
    return featurizer.transform(samples)


F = TypeVar("F")
REGISTRY: dict[str, Callable[..., Featurizer]] = {}


def register_featurizer(kind: str) -> Callable[[F], F]:
    """Class decorator: rebuild configs of ``kind`` with ``cls.from_state(config, arrays, **resources)``."""

    def deco(cls: F) -> F:
        REGISTRY[kind] = cls.from_state  # type: ignore[attr-defined]
        return cls

    return deco
