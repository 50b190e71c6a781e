"""The report card read statistically, and cross-fitting it so no item predicts itself.

:class:`CardStatPredictor` is a real, model-free :class:`~rpra_agent.core.prediction.Predictor`:
it predicts the judge's grade of the small model's answer as the grade distribution
its report card records for the request's task (smoothed toward the all-task
distribution with ``prior_strength`` pseudo-steps). It costs microseconds, so it can
route in production too; in the evaluation it is cross-fitted: the items are split
into ``k`` folds (by :mod:`rpra_agent.predictors.folds`, the one fold helper, so
every router of a run is scored on the same folds) and the items of fold ``f`` are
predicted by the card built from the other folds' verdicts only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rpra_agent.core.decision import Decision
from rpra_agent.core.errors import ConfigError, PredictorError
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction, PredictionRequest
from rpra_agent.core.verdict import Verdict

if TYPE_CHECKING:
    from rpra_agent.feedback import ReportCard

__all__ = ["CardStatPredictor", "crossfit_cards"]


class CardStatPredictor:
    """Predicts the grade as the report card's grade distribution for the request's task.

    Args:
        card: A :class:`~rpra_agent.feedback.ReportCard`.
        prior_strength: Pseudo-steps of the all-task distribution mixed into each
            task's counts (0: the task's raw distribution).
        name: Recorded as the predictor's name.
    """

    def __init__(self, card: ReportCard, *, prior_strength: float = 1.0, name: str = "report_card") -> None:
        scale = getattr(card, "scale", None)
        if not isinstance(scale, GradeScale) or not callable(getattr(card, "section", None)):
            raise ConfigError("CardStatPredictor needs a ReportCard (rpra_agent.feedback.ReportCard)")
        if prior_strength < 0:
            raise ConfigError("prior_strength must be >= 0")
        self.card = card
        self.scale = scale
        self.name = name
        self.prior_strength = float(prior_strength)

    @property
    def version(self) -> str:
        """``card-v<version>`` of the stored card, or ``card-<created_at>``."""
        version = self.card.version
        return f"card-v{version}" if version is not None else f"card-{self.card.created_at}"

    def distribution(self, task: str | None, kind: str = "answer") -> dict[str, float]:
        """The smoothed grade distribution for ``(task, kind)``.

        Raises:
            PredictorError: when the card has no record of this kind at all.
        """
        total = self.card.section("*", kind)
        if total is None or total.n == 0:
            raise PredictorError(f"the report card has no graded {kind} steps", predictor=self.name)
        prior = total.distribution
        section = self.card.section(task, kind) if task != "*" else None
        if section is None or section.n == 0:
            return dict(prior)
        s = self.prior_strength
        return {
            lab: (section.counts.get(lab, 0) + s * prior.get(lab, 0.0)) / (section.n + s) for lab in self.scale.labels
        }

    def predict(self, request: PredictionRequest) -> Prediction:
        """The card's distribution for the request's task."""
        start = time.perf_counter()
        dist = self.distribution(request.task, request.kind)
        return Prediction.from_distribution(
            dist,
            scale=self.scale,
            predictor=self.name,
            version=self.version,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            method="statistical",
        )

    async def apredict(self, request: PredictionRequest) -> Prediction:
        """Async twin of :meth:`predict` (no I/O)."""
        return self.predict(request)


def crossfit_cards(
    decisions: Sequence[Decision],
    verdicts: Sequence[Verdict],
    model: str,
    folds: np.ndarray,
    *,
    scale: GradeScale,
) -> list[ReportCard]:
    """One report card per fold, built from the other folds' decisions and verdicts.

    Args:
        decisions: One decision per item (aligned with ``folds``).
        verdicts: Their verdicts.
        model: The graded (small) model.
        folds: Fold id of each decision (:func:`fold_ids`).
        scale: The verdicts' scale.

    Returns:
        ``cards[f]`` for fold ``f``.
    """
    from rpra_agent.feedback import build_report_card

    if len(decisions) != len(folds):
        raise ConfigError(f"{len(decisions)} decisions but {len(folds)} fold ids")
    by_decision: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_decision.setdefault(v.decision_id, []).append(v)
    cards = []
    for f in range(int(folds.max()) + 1):
        train = [d for d, k in zip(decisions, folds, strict=True) if k != f]
        train_verdicts = [v for d in train for v in by_decision.get(d.id, ())]
        cards.append(build_report_card(train, train_verdicts, model, scale=scale))
    return cards
