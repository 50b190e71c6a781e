"""The packages import only downward: core <- store <- models/predictors <- adapters <- feedback <- evaluation <- service/cli.

Parsed from the source (every import, including lazy and TYPE_CHECKING ones), so a
loop cannot hide inside a function. No module reaches into another package's private
module either.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "rpra_agent"

# The rank of each first-level name under rpra_agent; a module may import only ranks <= its own.
LAYERS: dict[str, int] = {
    "core": 0,
    "store": 1,
    "models": 2,
    "predictors": 3,
    "_drive": 4,
    "graph": 4,
    "middleware": 4,
    "feedback": 5,
    "evaluation": 6,
    "service": 7,
    "cli": 8,
    "testing": 9,
    "__init__": 10,
}


def _unit(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.suffix else rel.stem


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "rpra_agent":
                found.extend((node.lineno, f"rpra_agent.{a.name}") for a in node.names)
            elif node.module.startswith("rpra_agent."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.startswith("rpra_agent."))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("rpra_agent."):
                found.append((node.lineno, arg.value))
    return found


SOURCES = sorted(p for p in ROOT.rglob("*.py") if "migrations" not in p.parts)


def test_every_unit_has_a_layer() -> None:
    units = {_unit(p) for p in SOURCES}
    assert units <= set(LAYERS), f"give these a layer in LAYERS: {sorted(units - set(LAYERS))}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_down(path: pathlib.Path) -> None:
    unit = _unit(path)
    bad = []
    for line, module in _imports(path):
        target = module.split(".")[1]
        if target not in LAYERS:
            continue  # a top-level name re-exported by rpra_agent/__init__ (only __init__ and testing do this)
        if target != unit and LAYERS[target] > LAYERS[unit]:
            bad.append(f"line {line}: {module} ({target} is above {unit})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reach_into_another_package_private_module(path: pathlib.Path) -> None:
    unit = _unit(path)
    bad = []
    for line, module in _imports(path):
        parts = module.split(".")
        if len(parts) > 2 and parts[1] != unit and any(p.startswith("_") for p in parts[2:]):
            bad.append(f"line {line}: {module}")
    assert not bad, "\n".join(bad)


def test_the_layering_test_catches_an_upward_import(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from rpra_agent.evaluation.datasets import load_dataset\n")
    assert _imports(bad) == [(2, "rpra_agent.evaluation.datasets")]
