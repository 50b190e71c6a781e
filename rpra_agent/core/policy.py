"""Deferral policies: pure functions from a prediction to a route.

Scoring (a :class:`~rpra_agent.core.prediction.Predictor`) and deciding (a
:class:`DeferralPolicy`) are kept apart, as RouteLLM does: a predictor returns a
distribution, a policy applies a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from rpra_agent.core.decision import Reason
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.prediction import Kind, Prediction

__all__ = [
    "AlwaysLarge",
    "AlwaysSmall",
    "DeferralPolicy",
    "PolicyContext",
    "Route",
    "RouteTo",
    "ThresholdPolicy",
]

Metric = Literal["p_acceptable", "expected_score"]
#: Who takes the step: the small model, the large one, or the small model acting to learn.
RouteTo = Literal["small", "large", "tools"]


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know besides the prediction.

    Attributes:
        kind: ``"answer"`` or ``"action"``; ``None`` when the step's kind is unknown
            (its plan failed): the stricter threshold then applies.
        step: 0-based step index in the run.
        deferrals: How many steps of this run were already deferred.
        learning_actions: How many act-to-learn tool calls this run already made.
        can_act: Whether tools are bound, so that the step could act to learn.
    """

    kind: Kind | None = "answer"
    step: int = 0
    deferrals: int = 0
    learning_actions: int = 0
    can_act: bool = False


@dataclass(frozen=True)
class Route:
    """A policy's output: who takes the step and why.

    Attributes:
        route: ``"small"``, ``"large"`` or ``"tools"`` (the small model calls a tool
            to learn what it lacks; the next step is predicted afresh).
        reason: The recorded reason.
        threshold: The threshold compared against (NaN-free; 0 for baselines).
        score: The prediction's value on the policy's metric, if any.
    """

    route: RouteTo
    reason: Reason
    threshold: float
    score: float | None = None


@runtime_checkable
class DeferralPolicy(Protocol):
    """Turns a prediction (or its absence, after a predictor error) into a route.

    Implementations must be pure: same inputs, same route.
    """

    @property
    def name(self) -> str:
        """A short name recorded with the run's configuration."""
        ...

    @property
    def needs_prediction(self) -> bool:
        """Whether the graph must run the predictor before calling :meth:`decide`."""
        ...

    def decide(self, prediction: Prediction | None, context: PolicyContext) -> Route:
        """Route one step. ``prediction`` is ``None`` when the predictor failed."""
        ...


@dataclass(frozen=True)
class ThresholdPolicy:
    """Defer when the prediction falls below a threshold.

    Attributes:
        threshold: Threshold for answers. On ``p_acceptable`` a probability in
            [0, 1]; on ``expected_score`` a value in the scale's range.
        action_threshold: Threshold for tool actions (defaults to ``threshold``).
        metric: ``p_acceptable`` (default) or ``expected_score``.
        max_deferrals: Deferral budget per run; past it, steps stay small with
            reason ``budget_exhausted``. ``None`` for no budget.
        shadow: Always answer small, but record ``shadow`` where it would defer.
        act_to_learn: When a prediction is low and tools are bound, route to the
            tools first: the small model calls a tool that gathers what it lacks,
            and the next step is predicted afresh with the result.
        max_learning_actions: Act-to-learn tool calls per run; past it, a low
            prediction defers.
        name: Recorded in the run's configuration.
    """

    threshold: float = 0.5
    action_threshold: float | None = None
    metric: Metric = "p_acceptable"
    max_deferrals: int | None = None
    shadow: bool = False
    act_to_learn: bool = False
    max_learning_actions: int = 1
    name: str = "threshold"

    def __post_init__(self) -> None:
        if self.metric not in ("p_acceptable", "expected_score"):
            raise ConfigError(f"metric must be 'p_acceptable' or 'expected_score', not {self.metric!r}")
        for label, value in (("threshold", self.threshold), ("action_threshold", self.action_threshold)):
            if value is None:
                continue
            if not isinstance(value, int | float) or value != value:
                raise ConfigError(f"{label} must be a number, got {value!r}")
            if self.metric == "p_acceptable" and not 0.0 <= value <= 1.0:
                raise ConfigError(
                    f"{label}={value} is outside [0, 1]; a p_acceptable threshold is a probability "
                    "(use metric='expected_score' for a threshold on the grade scale)"
                )
        if self.max_deferrals is not None and self.max_deferrals < 0:
            raise ConfigError(f"max_deferrals must be >= 0 or None, got {self.max_deferrals}")
        if self.max_learning_actions < 0:
            raise ConfigError(f"max_learning_actions must be >= 0, got {self.max_learning_actions}")

    @property
    def needs_prediction(self) -> bool:
        """Threshold policies always need a prediction."""
        return True

    def threshold_for(self, kind: Kind | None) -> float:
        """The threshold that applies to ``kind`` (the stricter of the two when unknown)."""
        action = float(self.threshold if self.action_threshold is None else self.action_threshold)
        if kind is None:
            return max(float(self.threshold), action)
        return action if kind == "action" else float(self.threshold)

    def score(self, prediction: Prediction) -> float:
        """The prediction's value on this policy's metric."""
        return prediction.p_acceptable if self.metric == "p_acceptable" else prediction.expected_score

    def decide(self, prediction: Prediction | None, context: PolicyContext) -> Route:
        """Route one step; fail toward quality when the prediction is missing."""
        threshold = self.threshold_for(context.kind)
        if prediction is None:
            wants, reason, score = "large", "predictor_error", None
        else:
            score = self.score(prediction)
            low = score < threshold
            wants, reason = ("large", "predicted_low") if low else ("small", "predicted_ok")
            if low and self._may_learn(context):
                return Route("tools", "act_to_learn", threshold, score)
        if wants == "large" and self.shadow:
            return Route("small", "shadow", threshold, score)
        if wants == "large" and self.max_deferrals is not None and context.deferrals >= self.max_deferrals:
            return Route("small", "budget_exhausted", threshold, score)
        return Route(wants, reason, threshold, score)  # type: ignore[arg-type]

    def _may_learn(self, context: PolicyContext) -> bool:
        return (
            self.act_to_learn
            and context.can_act
            and context.kind != "action"
            and context.learning_actions < self.max_learning_actions
        )


@dataclass(frozen=True)
class AlwaysSmall:
    """Baseline: the small model takes every step (no prediction is made)."""

    name: str = "always_small"

    @property
    def needs_prediction(self) -> bool:
        """Baselines need no prediction."""
        return False

    def decide(self, prediction: Prediction | None, context: PolicyContext) -> Route:
        """Always ``small`` with reason ``forced``."""
        return Route("small", "forced", 0.0)


@dataclass(frozen=True)
class AlwaysLarge:
    """Baseline: the large model takes every step (no prediction is made)."""

    name: str = "always_large"

    @property
    def needs_prediction(self) -> bool:
        """Baselines need no prediction."""
        return False

    def decide(self, prediction: Prediction | None, context: PolicyContext) -> Route:
        """Always ``large`` with reason ``forced``."""
        return Route("large", "forced", 0.0)
