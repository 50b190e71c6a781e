"""Turning a model's output into a grade distribution.

Only the model's *output* is parsed, never the conversation, so grade words or fake
instructions in user text cannot change how a prediction is read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rpra_agent.core.grades import GradeScale

__all__ = ["distribution_from_logprobs", "match_grade_token"]

_STRIP = " \t\n\"'`*_:([{<"


def match_grade_token(token: str, scale: GradeScale) -> str | None:
    """The grade a (possibly partial) first token stands for, or ``None``.

    An exact match wins (``"1"`` is grade 1, not 10); otherwise the token must be a
    prefix of exactly one label (``"gre"`` -> ``great``).
    """
    t = token.strip(_STRIP).strip().lower()
    if not t:
        return None
    labels = [label.lower() for label in scale.labels]
    if t in labels:
        return scale.labels[labels.index(t)]
    hits = [scale.labels[i] for i, label in enumerate(labels) if label.startswith(t)]
    return hits[0] if len(hits) == 1 else None


def _first_grade_position(content: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for entry in content:
        if not isinstance(entry, Mapping):  # a malformed reply: read no grade from it at all
            return None
        token = str(entry.get("token", ""))
        if token.strip(_STRIP).strip():
            return entry
    return None


def distribution_from_logprobs(logprobs: Mapping[str, Any] | None, scale: GradeScale) -> dict[str, float] | None:
    """Read the grade distribution from OpenAI-format logprobs.

    The first output token that is not whitespace or an opening quote is taken as the
    grade position; the probabilities of its alternatives (``top_logprobs``, or the
    token itself) are summed per grade and renormalised over the grades.

    Args:
        logprobs: ``response_metadata["logprobs"]``: ``{"content": [{"token",
            "logprob", "top_logprobs": [{"token", "logprob"}, ...]}, ...]}``.
        scale: The grade scale.

    Returns:
        A normalised distribution over all labels, or ``None`` when the logprobs are
        absent or put no mass on any grade.
    """
    if not logprobs:
        return None
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not content or not isinstance(content, list):
        return None
    entry = _first_grade_position(content)
    if entry is None:
        return None
    alternatives = entry.get("top_logprobs")
    if not isinstance(alternatives, list) or not alternatives:
        alternatives = [entry]
    mass: dict[str, float] = {}
    seen_tokens: set[str] = set()
    for alt in alternatives:
        if not isinstance(alt, Mapping):
            continue
        token = str(alt.get("token", ""))
        if token in seen_tokens:
            continue
        seen_tokens.add(token)
        try:
            lp = float(alt.get("logprob"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isnan(lp) or lp > 1e-6:
            continue
        grade = match_grade_token(token, scale)
        if grade is not None:
            mass[grade] = mass.get(grade, 0.0) + math.exp(lp)
    if not mass:
        return None
    try:
        return scale.normalize_distribution(mass)
    except ValueError:
        return None
