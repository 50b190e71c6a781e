"""The grade scale of a recording: how its judge scores map onto labels.

Scores themselves are never rounded: a verdict keeps the recorded score, routing
metrics use it as it is, and the labels only serve the label-agreement figures.
The one implementation is :meth:`GradeScale.for_scores
<rpra_agent.core.grades.GradeScale.for_scores>` (via :func:`rpra_agent.predictors.data.scale_of`,
so a trained predictor and the evaluation always agree on a dataset's scale):

- 0/1 correctness (every score 0 or 1 on the range 0-1): ``incorrect < correct``;
- integer judge scores (an integer range of at most 20 steps, scores whole or half):
  one label per integer, a half score's label the nearest;
- anything else, e.g. 0.37 on 0-1: a continuous scale ``continuous:LO-HI`` of evenly
  spaced levels, which keeps the exact acceptable score as its threshold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rpra_agent.core.grades import GradeScale

if TYPE_CHECKING:
    from rpra_agent.evaluation.datasets.records import EvalDataset

__all__ = ["binary_scale", "continuous_scale", "scale_for"]


def binary_scale() -> GradeScale:
    """The two-label correctness scale ``incorrect < correct`` (values 0 and 1)."""
    return GradeScale.binary()


def continuous_scale(low: float, high: float, acceptable: float) -> GradeScale:
    """Evenly spaced levels over ``[low, high]`` (:meth:`GradeScale.continuous`)."""
    return GradeScale.continuous(low, high, acceptable)


def scale_for(dataset: EvalDataset) -> GradeScale:
    """The grade scale of a dataset's recorded scores (see the module docstring)."""
    from rpra_agent.predictors.data import scale_of

    return scale_of(dataset)
