"""What one model call within a step cost: tokens and latency."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LegUsage"]


@dataclass(frozen=True)
class LegUsage:
    """Tokens and latency of one model call within a step.

    Attributes:
        model: The model's identifier.
        input_tokens: Prompt tokens, when the model reported them.
        output_tokens: Completion tokens, when the model reported them.
        latency_ms: Wall time of the call.
    """

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "model": self.model,
            "input_tokens": int(self.input_tokens),
            "output_tokens": int(self.output_tokens),
            "latency_ms": float(self.latency_ms),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LegUsage:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            model=str(data.get("model", "")),
            input_tokens=int(data.get("input_tokens", 0) or 0),
            output_tokens=int(data.get("output_tokens", 0) or 0),
            latency_ms=float(data.get("latency_ms", 0.0) or 0.0),
        )
