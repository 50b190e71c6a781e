"""A stable identifier for any chat model, for decision records, and the one way to match model names.

Decisions record a model as ``model_id`` gives it (``gguf:small.gguf``,
``openai:gpt-4o``, or a custom ``rpra_name``); users type ``small.gguf``,
``/models/small.gguf``, ``gguf:/models/small.gguf?n_ctx=4096`` or ``gpt-4o``. Every
lookup by model name (report cards, SFT export, evaluation) compares
:func:`model_key` of both sides.
"""

from __future__ import annotations

from typing import Any

__all__ = ["model_id", "model_key", "model_spellings", "same_model"]


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


def _basename(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def model_key(name: str) -> str:
    """The normal form of a model name, equal for every spelling of one model.

    - GGUF files become ``gguf:<file name>`` (directory and ``?options`` dropped), whether
      written ``small.gguf``, ``/m/small.gguf`` or ``gguf:/m/small.gguf?n_ctx=8192``;
    - OpenAI-compatible models lose the ``openai:`` scheme and options: ``openai:gpt-4o``
      and ``gpt-4o`` are both ``gpt-4o``;
    - any other name (a custom ``rpra_name``) is kept, trimmed.

    Examples:
        >>> model_key("small.gguf") == model_key("gguf:/models/small.gguf?n_ctx=4096") == "gguf:small.gguf"
        True
        >>> model_key("openai:gpt-4o?temperature=0")
        'gpt-4o'
    """
    text = name.strip()
    scheme, sep, rest = text.partition(":")
    if sep and scheme.lower() == "gguf":
        return "gguf:" + _basename(rest.split("?", 1)[0])
    if sep and scheme.lower() == "openai":
        return rest.split("?", 1)[0].strip()
    if text.split("?", 1)[0].lower().endswith(".gguf"):
        return "gguf:" + _basename(text.split("?", 1)[0])
    return text


def same_model(a: str, b: str) -> bool:
    """Whether two spellings name the same model (``small.gguf`` and ``gguf:small.gguf`` do)."""
    return model_key(a) == model_key(b)


def model_spellings(name: str) -> tuple[str, ...]:
    """The spellings under which ``name`` may have been recorded.

    They are ``name``, its key and, for a bare name, ``openai:<name>``: for looking up
    records (artifacts) keyed by whatever spelling was used when they were written.
    """
    key = model_key(name)
    out = [name, key]
    if ":" not in key:
        out.append(f"openai:{key}")
    return tuple(dict.fromkeys(s for s in out if s))
