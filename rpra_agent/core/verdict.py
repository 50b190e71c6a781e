"""The judge seam's value type: a verdict on one decision's response."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rpra_agent.core.decision import new_id, utcnow

__all__ = ["Verdict"]


@dataclass(frozen=True)
class Verdict:
    """A judge's grade for the response given (or regenerated) at one decision.

    Attributes:
        decision_id: The decision the verdict is about.
        grade: The judge's label on ``scale``; ``None`` when the judge output was
            unusable after retries (the decision stays unjudged, never guessed).
        score: The numeric value of ``grade`` on the scale (``None`` when unjudged).
        scale: Name of the grade scale (``paper3``, ``ten`` ...).
        judge: The judge model's identifier.
        rubric_version: Version of the rubric the judge was given.
        rationale: The judge's short rationale.
        subject: Whose response was graded: ``given`` (what the user saw), ``small``
            (the small model's, regenerated in hindsight) or ``large``.
        id: Client-generated UUID.
        created_at: ISO-8601 UTC timestamp.
    """

    decision_id: str
    grade: str | None
    score: float | None
    scale: str
    judge: str
    rubric_version: str
    rationale: str = ""
    subject: str = "given"
    id: str = field(default_factory=new_id)
    created_at: str = field(default_factory=utcnow)

    @property
    def judged(self) -> bool:
        """Whether the judge produced a usable grade."""
        return self.grade is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "id": self.id,
            "decision_id": self.decision_id,
            "grade": self.grade,
            "score": None if self.score is None else float(self.score),
            "scale": self.scale,
            "judge": self.judge,
            "rubric_version": self.rubric_version,
            "rationale": self.rationale,
            "subject": self.subject,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Rebuild from :meth:`to_dict` output."""
        score = data.get("score")
        return cls(
            id=str(data["id"]),
            decision_id=str(data["decision_id"]),
            grade=data.get("grade"),
            score=None if score is None else float(score),
            scale=str(data.get("scale", "paper3")),
            judge=str(data.get("judge", "")),
            rubric_version=str(data.get("rubric_version", "")),
            rationale=str(data.get("rationale") or ""),
            subject=str(data.get("subject", "given")),
            created_at=str(data.get("created_at") or utcnow()),
        )
