"""Choosing the evaluation's threshold with :mod:`rpra_agent.feedback.calibration` and storing it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets import EvalDataset
from rpra_agent.feedback.calibration import Calibration as StoredCalibration
from rpra_agent.feedback.calibration import calibrate_deferral_rate, calibrate_quality, save_calibration
from rpra_agent.store.base import DecisionStore

__all__ = ["Calibration", "calibrate_threshold", "calibration_name"]

logger = logging.getLogger(__name__)

DEFAULT_TARGET_RATE = 0.5
METRIC = "expected_score"


@dataclass(frozen=True)
class Calibration:
    """A chosen threshold (defer when the keep-score is below it) and its stored version."""

    threshold: float
    method: str
    version: int | None
    details: dict[str, Any] = field(default_factory=dict)


def calibration_name(dataset: str, predictor: str) -> str:
    """The artifact name of an evaluation's calibration (``load_calibrated_policy(store, name)``)."""
    return f"eval:{dataset}:{predictor}"


def calibrate_threshold(
    store: DecisionStore,
    ds: EvalDataset,
    keep: np.ndarray,
    weak: np.ndarray,
    strong: np.ndarray,
    opts: Any,
    *,
    predictor: str,
    scale: GradeScale,
    score_range: tuple[float, float] | None = None,
) -> Calibration:
    """A fixed threshold, a target deferral rate (quantile) or a quality-loss bound; stored as an artifact.

    The keep-scores are the predictor's expected grade on ``scale``. With ``opts.epsilon``
    the threshold is the cheapest whose expected quality loss against always-large is at
    most epsilon (score units) with confidence ``1 - opts.delta``.
    """
    source = f"eval:{ds.name}"
    if opts.threshold is not None:
        t = float(opts.threshold)
        cal = StoredCalibration(
            threshold=t,
            metric=METRIC,
            mode="deferral_rate",
            target=float(np.mean(keep < t)),
            n=len(keep),
            deferral_rate=float(np.mean(keep < t)),
            method="fixed",
            predictor=predictor,
            source=source,
        )
    elif opts.epsilon is not None:
        lo, hi = score_range or (float(ds.score_range[0]), float(ds.score_range[1]))
        cal = calibrate_quality(
            keep,
            weak,
            strong,
            epsilon=float(opts.epsilon),
            delta=float(opts.delta),
            score_range=(lo, hi),
            metric=METRIC,
            upper=scale.high + 1.0,
            predictor=predictor,
            source=source,
        )
    else:
        rate = DEFAULT_TARGET_RATE if opts.target_rate is None else float(opts.target_rate)
        cal = calibrate_deferral_rate(
            keep, rate, metric=METRIC, upper=scale.high + 1.0, predictor=predictor, source=source
        )
    stored = save_calibration(store, cal, calibration_name(ds.name, predictor))
    method = "fixed" if cal.method == "fixed" else ("target_rate" if cal.mode == "deferral_rate" else "risk")
    details: dict[str, Any] = {"calibrated_deferral_rate": cal.deferral_rate, "n": cal.n}
    if cal.mode == "deferral_rate" and method == "target_rate":
        details["target_rate"] = cal.target
    if cal.mode == "quality":
        details.update(
            epsilon=cal.epsilon,
            delta=cal.delta,
            bound=cal.bound,
            empirical_loss=cal.empirical_loss,
            certified=cal.certified,
            test=cal.method,
        )
    return Calibration(stored.threshold, method, stored.version, details)
