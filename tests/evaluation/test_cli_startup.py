"""``rpra --help`` starts fast: no heavy module is imported until a command runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "sklearn", "scipy", "matplotlib", "langgraph", "langchain", "sqlalchemy", "pandas", "torch")

_PROBE = """
import json, sys
from typer.testing import CliRunner
from rpra_agent.cli import commands  # registers every command, as the console script does
from rpra_agent.cli.app import app
runner = CliRunner()
outputs = [runner.invoke(app, args) for args in (["--help"], ["eval", "--help"], ["data", "--help"])]
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(",")))
print(json.dumps({"codes": [o.exit_code for o in outputs], "heavy": heavy, "help": outputs[0].output}))
"""


def test_help_imports_no_heavy_module() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(HEAVY)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    data = json.loads(done.stdout.strip().splitlines()[-1])
    assert data["codes"] == [0, 0, 0]
    assert "eval" in data["help"] and "train-predictor" in data["help"]
    assert data["heavy"] == [], f"`rpra --help` imported {data['heavy']}: import them inside the command"


def test_the_probe_can_see_a_heavy_import() -> None:
    """The check above fails when a command module imports numpy at the top."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    probe = "import numpy\n" + _PROBE
    done = subprocess.run(
        [sys.executable, "-c", probe, ",".join(HEAVY)], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1])["heavy"] == ["numpy"]


def test_help_paragraphs_do_not_break_mid_sentence() -> None:
    """Typer keeps a docstring's line breaks after the first paragraph; ``reflow_help`` joins them."""
    from typer.testing import CliRunner

    from rpra_agent.cli import commands  # noqa: F401  (registers the commands and reflows their help)
    from rpra_agent.cli.app import app

    wide = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}
    for args, sentence in (
        (["eval", "--help"], "replays the recorded DATASET through the actual RPRA graph (no network, no model)."),
        (["judge", "--help"], "judged together in one call (joint judging, as in the paper), with any regenerated"),
        (["data", "convert", "--help"], "an empty score cell, or NA, N/A, NaN, null or None, means not judged;"),
    ):
        result = CliRunner().invoke(app, args, env=wide)
        assert result.exit_code == 0
        assert any(sentence in line for line in result.output.splitlines()), (args, result.output)


def test_brackets_in_option_help_survive_rich_markup() -> None:
    """Rich reads ``[word]`` as a markup tag and drops it ('rpra-agent[embeddings]' became 'rpra-agent')."""
    import re

    import click
    import typer
    from typer.testing import CliRunner

    from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
    from rpra_agent.cli.app import app

    def walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
        found = [(path, command)]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*path, name])
        return found

    wide = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}
    checked = 0
    for path, command in walk(typer.main.get_command(app), []):
        texts = [getattr(p, "help", None) or "" for p in command.params]
        tokens = [t for text in texts for t in re.findall(r"\S*\[[a-z][a-z0-9_,-]*\]\S*", text)]
        if not tokens:
            continue
        output = CliRunner().invoke(app, [*path, "--help"], env=wide).output
        for token in tokens:
            assert token.startswith("\\") or "\\[" in token, f"rpra {' '.join(path)}: escape {token!r} as \\\\["
            assert token.replace("\\[", "[") in output, (path, token)
            checked += 1
    assert checked >= 2  # rpra eval and rpra train-predictor name the embeddings extra
