"""Deploying RPRA: settings from the environment, and an OpenAI-compatible HTTP service.

The service needs the ``serve`` extra (``pip install 'rpra-agent[serve]'``); it is
imported only when :func:`create_app` is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rpra_agent.service.config import Components, Settings, build_components, build_graph

if TYPE_CHECKING:
    from rpra_agent.service.app import create_app
    from rpra_agent.service.engine import ChatEngine

__all__ = ["ChatEngine", "Components", "Settings", "build_components", "build_graph", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from rpra_agent.service.app import create_app

        return create_app
    if name == "ChatEngine":
        from rpra_agent.service.engine import ChatEngine

        return ChatEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
