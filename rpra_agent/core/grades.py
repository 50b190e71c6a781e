"""Grade scales: the judge's ordered labels and their numeric values."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rpra_agent.core.errors import ConfigError

__all__ = ["CONTINUOUS_LEVELS", "GradeScale"]

CONTINUOUS_LEVELS = 11
"""Labels of a continuous scale by default (``0, 0.1, ... 1`` on 0-1); scores stay exact."""


@dataclass(frozen=True)
class GradeScale:
    """An ordered set of judge grades, worst first, with numeric values.

    Attributes:
        labels: Grade labels from worst to best, e.g. ``("bad", "ok", "great")``.
        values: The numeric value of each label, strictly increasing.
        acceptable_from: The lowest label that counts as an acceptable answer.
        name: A short identifier stored with every prediction and verdict.
        threshold: For a continuous scale (:meth:`continuous`), the lowest acceptable
            score; ``None`` for a scale of discrete grades. The labels of a continuous
            scale are evenly spaced levels that a score is nearest to; scores keep
            their exact value wherever a model is fitted (:meth:`position`).
    """

    labels: tuple[str, ...]
    values: tuple[float, ...]
    acceptable_from: str
    name: str = "custom"
    threshold: float | None = None

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
        if self.threshold is not None and not self.values[0] <= self.threshold <= self.values[-1]:
            raise ConfigError(
                f"threshold {self.threshold} lies outside the scale [{self.values[0]}, {self.values[-1]}]"
            )

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

    @classmethod
    def binary(cls) -> GradeScale:
        """Correctness: ``incorrect < correct`` (values 0 and 1), named ``correct01``."""
        return cls(("incorrect", "correct"), (0.0, 1.0), "correct", "correct01")

    @classmethod
    def integer(cls, low: int, high: int, acceptable: float) -> GradeScale:
        """One label per integer of ``[low, high]`` (e.g. 1-10), acceptable from ``ceil(acceptable)``."""
        if not 1 <= high - low <= 100:
            raise ConfigError(f"an integer scale needs 2 to 101 grades, got [{low}, {high}]")
        labels = tuple(str(v) for v in range(int(low), int(high) + 1))
        ok = min(max(math.ceil(acceptable - 1e-9), int(low)), int(high))
        name = "ten" if (low, high) == (1, 10) else f"int{int(low)}-{int(high)}"
        return cls(labels, tuple(float(x) for x in labels), str(ok), name)

    @classmethod
    def continuous(
        cls, low: float, high: float, acceptable: float, *, levels: int = CONTINUOUS_LEVELS, name: str | None = None
    ) -> GradeScale:
        """A continuous score range ``[low, high]``, acceptable from ``acceptable``.

        The labels are ``levels`` evenly spaced values (named by the value, e.g.
        ``"0.3"``); a distribution over them describes a score anywhere in the range,
        and :attr:`threshold` keeps the exact acceptable score. Example::

            GradeScale.continuous(0.0, 1.0, 0.5)   # labels "0", "0.1", ... "1"

        Raises:
            ConfigError: when ``low >= high``, a bound is not finite, ``levels < 2``
                or ``acceptable`` lies outside the range.
        """
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ConfigError(f"a continuous scale needs finite low < high, got [{low}, {high}]")
        if levels < 2:
            raise ConfigError(f"a continuous scale needs at least 2 levels, got {levels}")
        step = (high - low) / (levels - 1)
        values = tuple(round(float(low + i * step), 12) for i in range(levels - 1)) + (float(high),)
        labels = tuple(f"{v:.6g}" for v in values)
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{levels} levels over [{low}, {high}] are too close to name apart; use fewer levels")
        ok = next((lab for lab, v in zip(labels, values, strict=True) if v >= acceptable - 1e-9), labels[-1])
        return cls(labels, values, ok, name or f"continuous:{low:g}-{high:g}", threshold=float(acceptable))

    @classmethod
    def for_scores(cls, scores: Iterable[float], low: float, high: float, acceptable: float) -> GradeScale:
        """The scale of recorded scores on ``[low, high]``: nothing is rounded away.

        - every score 0 or 1 on the range 0-1: :meth:`binary`;
        - an integer range of 2 to 20 steps whose scores are whole or half numbers
          (a mean of two grades): :meth:`integer`;
        - anything else (e.g. 0.37 on 0-1): :meth:`continuous`.

        NaN scores (unjudged) are ignored.
        """
        seen = [float(s) for s in scores if s is not None and not math.isnan(float(s))]
        if (float(low), float(high)) == (0.0, 1.0) and all(s in (0.0, 1.0) for s in seen):
            return cls.binary()
        whole = float(low).is_integer() and float(high).is_integer() and 2 <= high - low <= 20
        if whole and all(float(2 * s).is_integer() for s in seen):
            return cls.integer(int(low), int(high), acceptable)
        return cls.continuous(float(low), float(high), acceptable)

    # -- derived scales --------------------------------------------------------
    def margin(self) -> GradeScale:
        """The scale of ``small - large`` score differences (acceptable: no worse, margin >= 0).

        Integer-valued scales give one label per integer difference (``-9`` .. ``9``
        for 1-10; ``-1``, ``0``, ``1`` for correctness); others a continuous scale
        over ``[-(high - low), high - low]``.
        """
        span = self.high - self.low
        if all(float(v).is_integer() for v in self.values) and self.threshold is None and span <= 100:
            return GradeScale.integer(-int(span), int(span), 0.0).with_name(f"margin:{self.name}")
        return GradeScale.continuous(-span, span, 0.0, levels=2 * len(self.values) - 1, name=f"margin:{self.name}")

    def normalized(self) -> GradeScale:
        """The scale mapped onto a continuous ``[0, 1]`` (for pooling datasets on different scales).

        The acceptable threshold maps with it: ``(threshold - low) / (high - low)``.
        """
        return GradeScale.continuous(0.0, 1.0, self.normalize(self.acceptable_value), name="normalized01")

    def with_name(self, name: str) -> GradeScale:
        """The same scale under another name."""
        return GradeScale(self.labels, self.values, self.acceptable_from, name, self.threshold)

    # -- lookups ---------------------------------------------------------------
    @property
    def is_continuous(self) -> bool:
        """Whether scores may lie anywhere in the range (:meth:`continuous`)."""
        return self.threshold is not None

    @property
    def acceptable_value(self) -> float:
        """The lowest acceptable score: :attr:`threshold`, or the value of ``acceptable_from``."""
        return self.threshold if self.threshold is not None else self.value(self.acceptable_from)

    def position(self, score: float) -> float:
        """A score's fractional label index: 0 at the worst label, ``len(labels) - 1`` at the best.

        A score between two labels' values falls between their indices (linearly),
        so a model fitted on positions sees the exact score (clipped to the range).
        NaN (an unjudged score) stays NaN.
        """
        x, v = float(score), self.values
        if math.isnan(x):
            return math.nan
        if x <= v[0]:
            return 0.0
        if x >= v[-1]:
            return float(len(v) - 1)
        i = bisect.bisect_right(v, x) - 1
        return i + (x - v[i]) / (v[i + 1] - v[i])

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

    def check_scores(self, scores: Iterable[float], what: str = "scores") -> None:
        """Refuse scores off this scale (NaN, an unjudged score, is fine).

        A model fitted on :meth:`position` would clip them to the scale's ends and learn
        nothing, so a 1-10 judge score given without its scale is an error, not a 1.

        Raises:
            ConfigError: naming the range seen and how to pass the right scale.
        """
        seen = [float(x) for x in scores if not math.isnan(float(x))]
        if not seen:
            return
        slack = 1e-9 * max(1.0, self.high - self.low)
        lo, hi = min(seen), max(seen)
        if lo < self.low - slack or hi > self.high + slack:
            raise ConfigError(
                f"{what} range from {lo:g} to {hi:g}, outside the scale {self.name!r} ({self.low:g} to "
                f"{self.high:g}): pass the judge's scale, e.g. scale=GradeScale.integer(1, 10, acceptable=7), "
                "or GradeScale.for_scores(scores, low, high, acceptable)"
            )

    def normalize(self, score: float) -> float:
        """Map a value on this scale to [0, 1]."""
        return (float(score) - self.low) / (self.high - self.low)

    def label_for(self, score: float) -> str:
        """The label whose value is nearest to ``score`` (ties go to the lower label).

        On a continuous scale the label stays on the score's side of :attr:`threshold`,
        so a label is acceptable exactly when its score is: 0.47 on 0-1 acceptable from
        0.5 is ``"0.4"``, not the nearer ``"0.5"``.
        """
        candidates = range(len(self.values))
        if self.threshold is not None:
            ok = self._index(self.acceptable_from)
            side = range(ok, len(self.values)) if score >= self.threshold - 1e-9 else range(ok)
            candidates = side or candidates
        best = min(candidates, key=lambda i: (abs(self.values[i] - score), i))
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
        """A JSON-serialisable form (``threshold`` only for a continuous scale)."""
        out: dict[str, Any] = {
            "labels": list(self.labels),
            "values": list(self.values),
            "acceptable_from": self.acceptable_from,
            "name": self.name,
        }
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out

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
            None if data.get("threshold") is None else float(data["threshold"]),
        )
