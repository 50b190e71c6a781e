"""The root Typer app; sub-commands register themselves from their modules."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="rpra", help="RPRA: a small model predicts its judge's grade and defers to a large one.", no_args_is_help=True
)


def main() -> None:
    """Entry point of the ``rpra`` console script."""
    from rpra_agent.cli import commands  # noqa: F401  (registers the commands)

    app()
