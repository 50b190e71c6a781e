"""Injection-resistant prediction: a self-report may only move a step toward deferral.

A self-predictor reads the request, so text in the request can steer it (see
``rpra_agent.testing.adversarial``). :class:`GuardedPredictor` combines it with a
signal that does not read the model's self-report (a learned artifact, report-card
statistics, a task prior) and keeps the more pessimistic of the two: its
P(acceptable) is ``min(self, independent)``. An injection can then only lower
P(acceptable) (a cost attack: more deferrals); keeping a step small needs the
independent signal to agree.

:class:`PriorPredictor` is the simplest independent signal: a fixed grade
distribution per task (for example the judge's grades of the small model's past
answers), the same for every request whatever its text says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest, Predictor, needs_draft

__all__ = ["GuardedPredictor", "PriorPredictor"]


class PriorPredictor:
    """A grade distribution per task that ignores the request's text (an independent signal).

    Args:
        default: The distribution for tasks without their own (labels of ``scale``).
        by_task: Distributions for specific task tags.
        scale: The grade scale (default: the paper's bad/ok/great).
        name: Recorded as the predictor's name.

    Raises:
        ConfigError: when a distribution names unknown grades or does not sum to a
            positive number.
    """

    def __init__(
        self,
        default: Mapping[str, float],
        by_task: Mapping[str, Mapping[str, float]] | None = None,
        *,
        scale: GradeScale | None = None,
        name: str = "prior",
    ) -> None:
        self.scale = scale or GradeScale.paper()
        self.name = name
        self.default = self._check(default, "default")
        self.by_task = {str(k): self._check(v, f"by_task[{k!r}]") for k, v in (by_task or {}).items()}

    def _check(self, dist: Mapping[str, float], where: str) -> dict[str, float]:
        unknown = set(dist) - set(self.scale.labels)
        total = sum(float(v) for v in dist.values())
        if unknown or total <= 0 or any(float(v) < 0 for v in dist.values()):
            raise ConfigError(
                f"PriorPredictor {where} must map grades of {list(self.scale.labels)} to non-negative weights "
                f"with a positive sum, got {dict(dist)!r}"
            )
        return {k: float(v) / total for k, v in dist.items()}

    @classmethod
    def never_trusted(cls, scale: GradeScale | None = None) -> PriorPredictor:
        """All mass on the worst grade: with no independent evidence, every step defers."""
        scale = scale or GradeScale.paper()
        return cls({scale.labels[0]: 1.0}, scale=scale, name="prior_no_evidence")

    @property
    def version(self) -> str:
        """A digest of the distributions."""
        blob = json.dumps([self.default, self.by_task], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def predict(self, request: PredictionRequest) -> Prediction:
        """The task's distribution (the default when the task has none)."""
        start = time.perf_counter()
        dist = self.by_task.get(request.task or "", self.default)
        return Prediction.from_distribution(
            dist, scale=self.scale, predictor=self.name, version=self.version,
            latency_ms=(time.perf_counter() - start) * 1000.0, method="statistical",
        )  # fmt: skip

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict` (no I/O)."""
        return self.predict(request)


class GuardedPredictor:
    """``min(self-prediction, independent signal)`` on P(acceptable).

    The returned prediction is the more pessimistic of the two (its distribution,
    grade and method), named ``guarded(<self>,<independent>)``; its ``raw`` says which
    one decided. A failure of either raises :class:`PredictorError` (the graph defers).

    Args:
        self_predictor: The small model predicting its own grade (zero-shot, report
            card, fine-tuned, prefix-sharing ...).
        independent: A predictor that does not read the model's self-report: a
            learned artifact, report-card statistics, a :class:`PriorPredictor`.

    The two may use different grade scales (P(acceptable) means the same on each): the
    result keeps the scale of the part that decided.

    Raises:
        ConfigError: when either part is not a predictor.
    """

    def __init__(self, self_predictor: Predictor, independent: Predictor) -> None:
        for part in (self_predictor, independent):
            if not callable(getattr(part, "predict", None)) or not callable(getattr(part, "apredict", None)):
                raise ConfigError(f"GuardedPredictor needs two predictors (predict/apredict), got {part!r}")
        self.self_predictor, self.independent = self_predictor, independent
        self.scale = self_predictor.scale
        self.name = f"guarded({self_predictor.name},{independent.name})"

    @property
    def version(self) -> str:
        """Both parts' versions."""
        return f"{self.self_predictor.version}+{self.independent.version}"

    @property
    def needs_draft(self) -> bool:
        """Whether either part needs the small model's draft (without it the guard fails, and the step defers)."""
        return needs_draft(self.self_predictor) or needs_draft(self.independent)

    def _combine(self, own: Prediction, other: Prediction, start: float) -> Prediction:
        low, which = (own, "self") if own.p_acceptable <= other.p_acceptable else (other, "independent")
        return Prediction.from_distribution(
            dict(low.distribution), scale=low.scale, predictor=self.name, version=self.version,
            latency_ms=(time.perf_counter() - start) * 1000.0, method=low.method,
            raw=f"{which} decided: self p_ok={own.p_acceptable:.4f}, independent p_ok={other.p_acceptable:.4f}",
        )  # fmt: skip

    def predict(self, request: PredictionRequest) -> Prediction:
        """Both predictions; the lower P(acceptable) wins."""
        start = time.perf_counter()
        other = self._independent(self.independent.predict, request)
        return self._combine(self.self_predictor.predict(request), other, start)

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict` (the two run concurrently)."""
        start = time.perf_counter()
        own, other = await asyncio.gather(self.self_predictor.apredict(request), self._aindependent(request))
        return self._combine(own, other, start)

    def _independent(self, fn: Any, request: PredictionRequest) -> Prediction:
        try:
            return fn(request)  # type: ignore[no-any-return]
        except PredictorError:
            raise
        except Exception as exc:  # noqa: BLE001  (the guard failing must defer, not crash)
            raise PredictorError(
                f"the independent signal {self.independent.name} failed: {type(exc).__name__}", predictor=self.name
            ) from exc

    async def _aindependent(self, request: PredictionRequest) -> Prediction:
        try:
            return await self.independent.apredict(request)
        except PredictorError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise PredictorError(
                f"the independent signal {self.independent.name} failed: {type(exc).__name__}", predictor=self.name
            ) from exc
