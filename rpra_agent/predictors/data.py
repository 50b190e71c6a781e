"""What the predictors need of a recorded dataset: a protocol, so they never import the evaluation.

:class:`rpra_agent.evaluation.datasets.EvalDataset` satisfies :class:`RecordedDataset`;
so does any object of the same shape. Loading a dataset by name or path is the
evaluation's job (``rpra_agent.evaluation.datasets.load_dataset``): the predictors take
an already loaded one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rpra_agent.core.grades import GradeScale

__all__ = ["GRADE_SCALE_KEY", "RecordedDataset", "RecordedItem", "scale_of"]

GRADE_SCALE_KEY = "grade_scale"
"""Header (``metadata``) key of a dataset that declares its grade scale (:meth:`GradeScale.to_dict`)."""


@runtime_checkable
class RecordedItem(Protocol):
    """One recorded prompt: its id, text, chat messages and task tag."""

    @property
    def id(self) -> str:
        """Unique id within the dataset."""
        ...

    @property
    def prompt(self) -> str:
        """The request as text."""
        ...

    @property
    def messages(self) -> Sequence[Mapping[str, Any]]:
        """The request as ``{"role", "content"}`` messages."""
        ...

    @property
    def category(self) -> str | None:
        """The task tag, if any."""
        ...


@runtime_checkable
class RecordedDataset(Protocol):
    """A recorded evaluation: items, a weak (small) and a strong (large) model, their scores."""

    @property
    def name(self) -> str:
        """Dataset name."""
        ...

    @property
    def items(self) -> Sequence[Any]:
        """The items (each a :class:`RecordedItem`)."""
        ...

    @property
    def weak(self) -> str:
        """The small model's name."""
        ...

    @property
    def strong(self) -> str:
        """The large model's name."""
        ...

    @property
    def score_range(self) -> tuple[float, float]:
        """``(lowest, highest)`` possible score."""
        ...

    @property
    def acceptable(self) -> float:
        """The lowest acceptable score."""
        ...

    def __len__(self) -> int: ...

    def scores(self, model: str) -> np.ndarray:
        """Every item's score for ``model``, NaN where missing."""
        ...

    def texts(self, model: str) -> list[str | None]:
        """Every item's answer text for ``model`` (``None`` where not recorded)."""
        ...

    def subset(self, indices: Iterable[int] | np.ndarray) -> Any:
        """A dataset of the items at ``indices``."""
        ...


def scale_of(dataset: RecordedDataset) -> GradeScale:
    """The grade scale of a dataset's scores (:meth:`GradeScale.for_scores` over every model's scores).

    A dataset that declares its scale (metadata :data:`GRADE_SCALE_KEY`, e.g. the live
    evaluation's judged items, graded by a judge on a known scale such as ``paper3``)
    is on that scale: its scores are not re-inferred.
    """
    declared = (getattr(dataset, "metadata", None) or {}).get(GRADE_SCALE_KEY)
    if declared:
        return GradeScale.from_dict(declared)
    low, high = (float(x) for x in dataset.score_range)
    seen: list[float] = []
    for model in dict.fromkeys([dataset.weak, dataset.strong]):
        seen.extend(float(s) for s in dataset.scores(model))
    return GradeScale.for_scores(seen, low, high, float(dataset.acceptable))
