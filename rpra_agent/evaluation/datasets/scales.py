"""The grade scale of a recording: how its judge scores map onto labels.

Scores themselves are never rounded: a verdict keeps the recorded score, routing
metrics use it as it is, and the labels only serve the label-agreement figures.

- 0/1 correctness (every score 0 or 1 on the range 0-1): ``incorrect < correct``.
- Integer judge scores (an integer range of at most 20 steps, e.g. 1-10): one label per
  integer; a score between labels (MT-bench per question: the mean of two turns) keeps
  its exact value, its label is the nearest one.
- Any other range, or continuous scores in it (e.g. 0.37 on 0-1): a continuous scale
  of :data:`CONTINUOUS_LEVELS` evenly spaced levels named ``continuous:LO-HI``; again
  the score is kept and only the label is the nearest level.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from rpra_agent.core.errors import DatasetError
from rpra_agent.core.grades import GradeScale

if TYPE_CHECKING:
    from rpra_agent.evaluation.datasets.records import EvalDataset

__all__ = ["CONTINUOUS_LEVELS", "binary_scale", "continuous_scale", "is_binary", "scale_for"]

#: Levels of a continuous scale's labels (for label agreement only; scores stay exact).
CONTINUOUS_LEVELS = 11


def binary_scale() -> GradeScale:
    """The two-label correctness scale ``incorrect < correct`` (values 0 and 1)."""
    return GradeScale(("incorrect", "correct"), (0.0, 1.0), "correct", "correct01")


def continuous_scale(low: float, high: float, acceptable: float, levels: int = CONTINUOUS_LEVELS) -> GradeScale:
    """Evenly spaced levels over ``[low, high]``, acceptable from the first level at or above ``acceptable``.

    Raises:
        DatasetError: when ``low >= high`` or a bound is not finite.
    """
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise DatasetError(f"a score range needs finite LO < HI, got [{low}, {high}]")
    values = tuple(float(v) for v in np.linspace(low, high, levels))
    labels = tuple(f"{v:.6g}" for v in values)
    ok = next((lab for lab, v in zip(labels, values, strict=True) if v >= acceptable - 1e-9), labels[-1])
    return GradeScale(labels, values, ok, f"continuous:{low:g}-{high:g}")


def is_binary(dataset: EvalDataset) -> bool:
    """Whether the dataset's range is 0-1 and every recorded score of it is 0 or 1."""
    if tuple(float(x) for x in dataset.score_range) != (0.0, 1.0):
        return False
    for item in dataset.items:
        for response in item.responses.values():
            if response.score is not None and not math.isnan(response.score) and response.score not in (0.0, 1.0):
                return False
    return True


def scale_for(dataset: EvalDataset) -> GradeScale:
    """The grade scale of a dataset's recorded scores (see the module docstring).

    The lowest acceptable label is the first at or above ``dataset.acceptable``.
    """
    low, high = (float(x) for x in dataset.score_range)
    if is_binary(dataset):
        return binary_scale()
    if low.is_integer() and high.is_integer() and 1 <= high - low <= 20 and _integer_scores(dataset):
        labels = tuple(str(int(v)) for v in range(int(low), int(high) + 1))
        ok = min(max(int(math.ceil(dataset.acceptable - 1e-9)), int(low)), int(high))
        name = "ten" if (low, high) == (1.0, 10.0) else f"int{int(low)}-{int(high)}"
        return GradeScale(labels, tuple(float(x) for x in labels), str(ok), name)
    return continuous_scale(low, high, dataset.acceptable)


def _integer_scores(dataset: EvalDataset) -> bool:
    """Every recorded score is a whole or half number (the mean of two integer grades)."""
    for item in dataset.items:
        for response in item.responses.values():
            s = response.score
            if s is not None and not math.isnan(s) and not float(2 * s).is_integer():
                return False
    return True
