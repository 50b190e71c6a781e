"""A stable identifier for any chat model, for decision records."""

from __future__ import annotations

from typing import Any

__all__ = ["model_id"]


def model_id(model: Any) -> str:
    """The model's identifier: its ``rpra_name``, model name, path, or class name."""
    for attr in ("rpra_name", "model_name", "model", "model_path"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    bound = getattr(model, "bound", None)
    if bound is not None and bound is not model:
        return model_id(bound)
    return type(model).__name__
