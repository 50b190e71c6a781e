"""The ``rpra`` command line."""

from rpra_agent.cli.app import app, main

__all__ = ["app", "main"]
