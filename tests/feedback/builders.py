"""Builders of decisions and judge replies for the feedback-loop tests."""

from __future__ import annotations

import itertools
import json
from typing import Any

from rpra_agent.core.decision import Decision

_n = itertools.count()


def decision(**overrides: Any) -> Decision:
    """A decision of the small model on task 'math' (override anything)."""
    n = next(_n)
    fields: dict[str, Any] = dict(
        run_id=f"run-{n}",
        step=0,
        kind="answer",
        paradigm="pa",
        prediction=None,
        threshold=0.5,
        route="small",
        reason="predicted_ok",
        task="math",
        small_model="small-m",
        large_model="large-m",
        request=f"request number {n}",
        response=f"response number {n}",
        created_at=f"2026-11-20T10:{n // 60 % 60:02d}:{n % 60:02d}.{n:06d}+00:00",
    )
    fields.update(overrides)
    return Decision(**fields)


def reply(*grades: str, weakest: str = "accuracy", rationale: str = "short reason") -> str:
    """A judge's JSON reply grading len(grades) responses in order."""
    return json.dumps(
        {
            "verdicts": [
                {"response": i, "rationale": rationale, "weakest": weakest, "grade": g} for i, g in enumerate(grades, 1)
            ]
        }
    )
