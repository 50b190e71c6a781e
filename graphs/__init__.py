"""Deployable RPRA graphs (``graph = ...``), configured from the environment.

``langgraph.json`` at the repository root points at them. The variables are listed
in :mod:`rpra_agent.service.config`; a missing one raises a ``ConfigError`` naming it.
"""
