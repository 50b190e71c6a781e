"""Grade scales: the judge's ordered labels and their numeric values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rpra_agent.core.errors import ConfigError

__all__ = ["GradeScale"]


@dataclass(frozen=True)
class GradeScale:
    """An ordered set of judge grades, worst first, with numeric values.

    Attributes:
        labels: Grade labels from worst to best, e.g. ``("bad", "ok", "great")``.
        values: The numeric value of each label, strictly increasing.
        acceptable_from: The lowest label that counts as an acceptable answer.
        name: A short identifier stored with every prediction and verdict.
    """

    labels: tuple[str, ...]
    values: tuple[float, ...]
    acceptable_from: str
    name: str = "custom"

    def __post_init__(self) -> None:
        if len(self.labels) < 2:
            raise ConfigError("a GradeScale needs at least two labels")
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"GradeScale labels must be unique, got {self.labels}")
        if len(self.values) != len(self.labels):
            raise ConfigError("GradeScale needs exactly one value per label")
        if any(b <= a for a, b in zip(self.values, self.values[1:], strict=False)):
            raise ConfigError("GradeScale values must increase from worst to best label")
        if self.acceptable_from not in self.labels:
            raise ConfigError(f"acceptable_from={self.acceptable_from!r} is not one of {self.labels}")

    @classmethod
    def paper(cls) -> GradeScale:
        """The RPRA paper's three-label scale ``bad < ok < great`` (values 0, 0.5, 1)."""
        return cls(("bad", "ok", "great"), (0.0, 0.5, 1.0), "ok", "paper3")

    @classmethod
    def ten_point(cls, acceptable_from: int = 7) -> GradeScale:
        """A 1-10 scale (labels ``"1"`` .. ``"10"``), acceptable from ``acceptable_from``."""
        labels = tuple(str(i) for i in range(1, 11))
        return cls(labels, tuple(float(i) for i in range(1, 11)), str(acceptable_from), "ten")

    @classmethod
    def named(cls, name: str) -> GradeScale:
        """Look a built-in scale up by name: ``paper3`` or ``ten``."""
        if name in ("paper3", "paper", "great-ok-bad"):
            return cls.paper()
        if name in ("ten", "1-10"):
            return cls.ten_point()
        raise ConfigError(f"unknown grade scale {name!r}; use 'paper3' or 'ten'")

    # -- lookups ---------------------------------------------------------------
    @property
    def low(self) -> float:
        """The value of the worst label."""
        return self.values[0]

    @property
    def high(self) -> float:
        """The value of the best label."""
        return self.values[-1]

    def value(self, label: str) -> float:
        """The numeric value of ``label``."""
        return self.values[self._index(label)]

    def is_acceptable(self, label: str) -> bool:
        """Whether ``label`` is at or above ``acceptable_from``."""
        return self._index(label) >= self._index(self.acceptable_from)

    def normalize(self, score: float) -> float:
        """Map a value on this scale to [0, 1]."""
        return (float(score) - self.low) / (self.high - self.low)

    def label_for(self, score: float) -> str:
        """The label whose value is nearest to ``score`` (ties go to the lower label)."""
        best = min(range(len(self.values)), key=lambda i: (abs(self.values[i] - score), i))
        return self.labels[best]

    def parse_label(self, text: str) -> str | None:
        """Return the label ``text`` names exactly (case and edge punctuation ignored)."""
        cleaned = text.strip().strip("\"'`*.!:;,()[]{} \n\t").lower()
        for label in self.labels:
            if cleaned == label.lower():
                return label
        return None

    def _index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise ConfigError(f"{label!r} is not a grade of scale {self.name} {self.labels}") from None

    # -- distributions ---------------------------------------------------------
    def normalize_distribution(self, weights: Mapping[str, float]) -> dict[str, float]:
        """Renormalise non-negative weights over the labels; all labels present.

        Raises:
            ValueError: if the weights carry no mass or any weight is negative or NaN.
        """
        clean: dict[str, float] = {}
        for label in self.labels:
            w = float(weights.get(label, 0.0))
            if math.isnan(w) or w < 0:
                raise ValueError(f"invalid weight {w!r} for grade {label!r}")
            clean[label] = w
        total = sum(clean.values())
        if total <= 0 or math.isinf(total):
            raise ValueError("the distribution carries no probability mass on any grade")
        return {label: w / total for label, w in clean.items()}

    def one_hot(self, label: str) -> dict[str, float]:
        """A distribution with all mass on ``label``."""
        self._index(label)
        return {lab: (1.0 if lab == label else 0.0) for lab in self.labels}

    def expected(self, distribution: Mapping[str, float]) -> float:
        """The expected value of a distribution over this scale's labels."""
        return float(sum(distribution.get(lab, 0.0) * v for lab, v in zip(self.labels, self.values, strict=True)))

    def p_acceptable(self, distribution: Mapping[str, float]) -> float:
        """The probability mass on acceptable labels."""
        return float(sum(p for lab, p in distribution.items() if lab in self.labels and self.is_acceptable(lab)))

    def mode(self, distribution: Mapping[str, float]) -> str:
        """The most probable label (ties go to the lower label: fail toward quality)."""
        return max(self.labels, key=lambda lab: (distribution.get(lab, 0.0), -self._index(lab)))

    # -- serialisation ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "labels": list(self.labels),
            "values": list(self.values),
            "acceptable_from": self.acceptable_from,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GradeScale:
        """Rebuild a scale from :meth:`to_dict` output."""
        labels: Sequence[str] = data["labels"]
        values: Sequence[float] = data["values"]
        return cls(
            tuple(str(x) for x in labels),
            tuple(float(v) for v in values),
            str(data["acceptable_from"]),
            str(data.get("name", "custom")),
        )
