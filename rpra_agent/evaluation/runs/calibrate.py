"""Choosing an evaluation run's threshold with :mod:`rpra_agent.feedback.calibration` and storing it.

The result is the one :class:`~rpra_agent.feedback.calibration.Calibration`;
:func:`run_method` and :func:`calibration_details` say how the report shows it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.feedback.calibration import Calibration, calibrate_deferral_rate, calibrate_quality, save_calibration
from rpra_agent.store.base import DecisionStore

__all__ = ["calibrate_threshold", "calibration_details", "calibration_name", "check_operating_options", "run_method"]

logger = logging.getLogger(__name__)

DEFAULT_TARGET_RATE = 0.5
METRIC = "expected_score"


def check_operating_options(
    threshold: float | None, target_rate: float | None, epsilon: float | None, delta: float
) -> None:
    """Refuse conflicting or out-of-range operating-point options before any work (replay and live alike).

    Raises:
        ConfigError: for more than one of threshold / target rate / epsilon, a target
            rate outside [0, 1], or a delta outside (0, 1).
    """
    given = {"--threshold": threshold, "--target-rate": target_rate, "--epsilon": epsilon}
    chosen = [name for name, value in given.items() if value is not None]
    if len(chosen) > 1:
        raise ConfigError(f"choose one of --threshold, --target-rate and --epsilon, not {', '.join(chosen)}")
    if target_rate is not None and not 0.0 <= target_rate <= 1.0:
        raise ConfigError(f"target_rate must lie in [0, 1], got {target_rate}")
    if epsilon is not None and not epsilon > 0.0:  # the upper end depends on the scale: checked when calibrating
        raise ConfigError(f"epsilon must lie in (0, the scale's span) score units, got {epsilon}")
    if not 0.0 < delta < 1.0:
        raise ConfigError(f"delta must lie in (0, 1), got {delta}")


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
    metric: str = METRIC,
) -> Calibration:
    """A fixed threshold, a target deferral rate (quantile) or a quality-loss bound; stored as an artifact.

    The keep-scores are the predictor's expected grade on ``scale`` (``metric``
    ``expected_score``), or another keep-score such as an answer length. With ``opts.epsilon``
    the threshold is the cheapest whose expected quality loss against always-large is at
    most epsilon (score units) with confidence ``1 - opts.delta``.
    """
    source = f"eval:{ds.name}"
    upper = max(scale.high, float(np.max(keep)) if len(keep) else scale.high) + 1.0
    if opts.threshold is not None:
        t = float(opts.threshold)
        cal = Calibration(
            threshold=t,
            metric=metric,
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
            metric=metric,
            upper=upper,
            predictor=predictor,
            source=source,
        )
    else:
        rate = DEFAULT_TARGET_RATE if opts.target_rate is None else float(opts.target_rate)
        cal = calibrate_deferral_rate(keep, rate, metric=metric, upper=upper, predictor=predictor, source=source)
    return save_calibration(store, cal, calibration_name(ds.name, predictor))


def run_method(cal: Calibration) -> str:
    """How the run chose the threshold: ``fixed``, ``target_rate`` or ``risk`` (a quality-loss bound)."""
    if cal.method == "fixed":
        return "fixed"
    return "target_rate" if cal.mode == "deferral_rate" else "risk"


def calibration_details(cal: Calibration) -> dict[str, Any]:
    """The calibration's evidence as the report shows it (rate, n, and epsilon/delta/bound for ``risk``)."""
    details: dict[str, Any] = {"calibrated_deferral_rate": cal.deferral_rate, "n": cal.n}
    if run_method(cal) == "target_rate":
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
    return details
