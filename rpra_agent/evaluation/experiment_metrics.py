"""The paper's figures for one arm of the experiment, and what deferring at a calibrated threshold does.

- :func:`arm_scores`: exact-match label accuracy, macro-F1 and the confusion matrix, per
  dataset and overall.
- :func:`improvements`: the relative improvement of an arm's accuracy over zero-shot per
  dataset, and its mean over datasets (the paper's headline figure).
- :func:`deferral_figures`: deferring the test items whose expected grade is below a
  threshold calibrated to a target deferral rate, two-fold cross-fitted on the test items
  (the threshold applied to one half is calibrated on the other): the share deferred,
  the quality served, the share of the quality gap recovered, and the large-model calls
  and tokens saved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rpra_agent.core.grades import GradeScale
from rpra_agent.evaluation.metrics.agreement import grade_accuracy, macro_f1

__all__ = ["ArmScores", "Outcome", "arm_scores", "deferral_figures", "improvements"]

OVERALL = "overall"


@dataclass(frozen=True)
class Outcome:
    """One test item of one arm.

    Attributes:
        item: The item id.
        dataset: Its dataset (category).
        label: The judge's grade of the small model's answer.
        distribution: The arm's predicted distribution (``None``: the prediction failed).
        small_score: The judge's score of the small answer.
        large_score: The judge's score of the large answer.
        large_tokens: Tokens the large model spent answering it.
    """

    item: str
    dataset: str
    label: str
    distribution: Mapping[str, float] | None
    small_score: float
    large_score: float
    large_tokens: int = 0


@dataclass(frozen=True)
class ArmScores:
    """Agreement with the judge of one arm on one group of test items."""

    n: int
    accuracy: float
    macro_f1: float
    confusion: dict[str, dict[str, int]]
    failed: int = 0
    predicted: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "confusion": self.confusion,
            "failed": self.failed,
            "predicted": self.predicted,
        }


def predicted_label(outcome: Outcome, scale: GradeScale) -> str:
    """The arm's predicted label: the most likely grade; a failed prediction is the lowest (it defers)."""
    if outcome.distribution is None:
        return scale.labels[0]
    return scale.mode(outcome.distribution)


def _scores(outcomes: Sequence[Outcome], scale: GradeScale) -> ArmScores:
    truth = [o.label for o in outcomes]
    pred = [predicted_label(o, scale) for o in outcomes]
    confusion = {t: {p: 0 for p in scale.labels} for t in scale.labels}
    for t, p in zip(truth, pred, strict=True):
        confusion[t][p] += 1
    return ArmScores(
        n=len(outcomes),
        accuracy=grade_accuracy(truth, pred),
        macro_f1=macro_f1(truth, pred, scale.labels),
        confusion=confusion,
        failed=sum(1 for o in outcomes if o.distribution is None),
        predicted={lab: pred.count(lab) for lab in scale.labels},
    )


def arm_scores(outcomes: Sequence[Outcome], scale: GradeScale) -> dict[str, ArmScores]:
    """Scores per dataset, and ``overall``."""
    datasets = sorted({o.dataset for o in outcomes})
    out = {ds: _scores([o for o in outcomes if o.dataset == ds], scale) for ds in datasets}
    if outcomes:
        out[OVERALL] = _scores(outcomes, scale)
    return out


def improvements(arm: Mapping[str, ArmScores], zero_shot: Mapping[str, ArmScores]) -> dict[str, float | None]:
    """Relative accuracy improvement over zero-shot per dataset, and ``mean`` over datasets.

    ``(acc - acc_zero_shot) / acc_zero_shot``; undefined (``None``) where zero-shot
    scored 0. The mean is over the datasets where it is defined (``overall`` excluded).
    """
    out: dict[str, float | None] = {}
    for ds, scores in arm.items():
        base = zero_shot.get(ds)
        out[ds] = None if base is None or base.accuracy == 0 else (scores.accuracy - base.accuracy) / base.accuracy
    defined = [v for ds, v in out.items() if ds != OVERALL and v is not None]
    out["mean"] = float(np.mean(defined)) if defined else None
    return out


def _half(item: str, seed: int) -> int:
    return hashlib.sha256(f"{seed}:{item}".encode()).digest()[0] % 2


def deferral_figures(
    outcomes: Sequence[Outcome], scale: GradeScale, *, target_rate: float, seed: int
) -> dict[str, Any]:
    """What deferring below a calibrated threshold on the expected grade saves and costs (cross-fitted)."""
    from rpra_agent.feedback.calibration import calibrate_deferral_rate

    if len(outcomes) < 2:
        return {"note": "fewer than 2 test items: no calibration"}
    keep = np.array([scale.expected(o.distribution) if o.distribution else scale.low for o in outcomes])
    small = np.array([o.small_score for o in outcomes])
    large = np.array([o.large_score for o in outcomes])
    half = np.array([_half(o.item, seed) for o in outcomes])
    if len(set(half.tolist())) < 2:
        half = np.arange(len(outcomes)) % 2
    defer = np.zeros(len(outcomes), dtype=bool)
    thresholds = []
    for h in (0, 1):
        fit = calibrate_deferral_rate(keep[half != h], target_rate, metric="expected_score", upper=scale.high + 1.0)
        thresholds.append(fit.threshold)
        defer[half == h] = keep[half == h] < fit.threshold
    served = np.where(defer, large, small)
    q_small, q_large, q = float(small.mean()), float(large.mean()), float(served.mean())
    gap = q_large - q_small
    tokens = np.array([o.large_tokens for o in outcomes])
    return {
        "target_rate": target_rate,
        "thresholds": thresholds,
        "deferral_rate": float(defer.mean()),
        "quality": q,
        "quality_always_small": q_small,
        "quality_always_large": q_large,
        "pgr": (q - q_small) / gap if gap > 0 else None,
        "large_calls_saved": float(1.0 - defer.mean()),
        "large_tokens_saved": int(tokens[~defer].sum()),
        "large_tokens_always_large": int(tokens.sum()),
    }
