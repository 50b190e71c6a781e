"""Chat models: model strings, the in-process llama.cpp model and OpenAI-compatible servers.

``load_chat_model("gguf:/path/model.gguf?n_ctx=4096")`` or
``load_chat_model("openai:gpt-4o-mini")``; see :mod:`rpra_agent.models.registry`.
Heavy backends are imported only when a model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rpra_agent.core.naming import model_id

if TYPE_CHECKING:
    from rpra_agent.models.llamacpp import ChatLlamaCpp, ContextOverflowError

__all__ = ["ChatLlamaCpp", "ContextOverflowError", "load_chat_model", "model_id"]


def __getattr__(name: str) -> Any:
    if name in ("ChatLlamaCpp", "ContextOverflowError"):
        from rpra_agent.models import llamacpp

        return getattr(llamacpp, name)
    raise AttributeError(name)


def load_chat_model(spec: str, **opts: Any) -> Any:
    """Build a chat model from a model string; see :func:`rpra_agent.models.registry.load_chat_model`."""
    from rpra_agent.models.registry import load_chat_model as _load

    return _load(spec, **opts)
