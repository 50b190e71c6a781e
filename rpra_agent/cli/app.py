"""The root Typer app; sub-commands register themselves from their modules."""

from __future__ import annotations

import inspect

import typer

app = typer.Typer(
    name="rpra", help="RPRA: a small model predicts its judge's grade and defers to a large one.", no_args_is_help=True
)


def reflow_help(typer_app: typer.Typer) -> None:
    """Join the single line breaks inside each command's help paragraphs, in place.

    Typer (0.29) keeps a docstring's line breaks in every paragraph after the first, so
    a help text wrapped at the source's width breaks mid-sentence in the terminal.
    Blank lines still separate paragraphs.
    """
    for info in typer_app.registered_commands:
        text = info.help if isinstance(info.help, str) else inspect.getdoc(info.callback)
        if text:
            info.help = "\n\n".join(" ".join(p.split("\n")) for p in inspect.cleandoc(text).split("\n\n"))
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)


def main() -> None:
    """Entry point of the ``rpra`` console script."""
    from rpra_agent.cli import commands  # noqa: F401  (registers the commands)

    app()
