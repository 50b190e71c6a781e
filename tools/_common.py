"""Helpers shared by the tools: turning bad input into a tool message, not a crash."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["validation_message"]


def validation_message(exc: ValidationError) -> str:
    """A short, model-readable message for arguments that failed validation."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "input"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "Error: invalid arguments (" + "; ".join(parts) + ")"
