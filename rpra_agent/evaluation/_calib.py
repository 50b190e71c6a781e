"""Choosing the evaluation's threshold and storing it as a calibration artifact."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rpra_agent.errors import ConfigError
from rpra_agent.evaluation.datasets import EvalDataset
from rpra_agent.grades import GradeScale
from rpra_agent.store.base import DecisionStore

__all__ = ["Calibration", "calibrate_threshold"]

logger = logging.getLogger(__name__)

DEFAULT_TARGET_RATE = 0.5


@dataclass(frozen=True)
class Calibration:
    """A chosen threshold: defer when the keep-score is below it."""

    threshold: float
    method: str
    version: int | None
    details: dict[str, Any] = field(default_factory=dict)


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
) -> Calibration:
    """A fixed threshold, a target deferral rate (quantile) or a quality-loss bound; stored."""
    if opts.threshold is not None:
        threshold, method, details = float(opts.threshold), "fixed", {}
    elif opts.epsilon is not None:
        raise ConfigError("--epsilon needs the calibration module (rpra_agent.calibration), not installed yet")
    else:
        rate = DEFAULT_TARGET_RATE if opts.target_rate is None else float(opts.target_rate)
        threshold = float(np.quantile(keep, rate)) if rate < 1 else float(np.max(keep)) + 1.0
        method, details = "target_rate", {"target_rate": rate}
    payload = {
        "threshold": threshold,
        "method": method,
        "metric": "expected_score",
        "predictor": predictor,
        "dataset": ds.name,
        "scale": scale.to_dict(),
        "n": int(len(keep)),
        **details,
    }
    artifact = store.put_artifact("calibration", f"{ds.name}:{predictor}", payload)
    return Calibration(threshold, method, artifact.version, details)
