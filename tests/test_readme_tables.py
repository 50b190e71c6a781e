"""The README's result tables are what the commands print now: a stale figure fails CI.

Runs the main job (``rpra eval --dataset mt-bench``, its defaults) once in a temp
dir and regenerates the README's blocks with ``scripts/readme_tables.py``.
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "scripts" / "readme_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return _script()


@pytest.fixture(scope="module")
def main_job(script: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``rpra eval --dataset mt-bench``'s eval.json, run once for the module."""
    return dict(script.run_main_job(tmp_path_factory.mktemp("main")))


def test_readme_tables_match_a_fresh_main_job(script: ModuleType, main_job: dict[str, Any]) -> None:
    result = main_job
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    fresh = script.render(readme, result)
    if fresh != readme:
        diff = "".join(difflib.unified_diff(readme.splitlines(True), fresh.splitlines(True), "README.md", "fresh"))
        pytest.fail(f"README.md is stale; run `python scripts/readme_tables.py --run --write`\n{diff}")


def test_the_check_sees_a_changed_figure(script: ModuleType) -> None:
    result = {
        "rows": [{"name": "oracle", "apgr": 1.0, "cpt50": 0.1, "cpt80": 0.2}],
        "operating": None,
    }
    block = script.main_block(result)
    assert "| oracle (reads both answers' scores) | 1.000 | 0.100 | 0.200 |" in block
    text = "a\n<!-- readme-tables:main -->\nold\n<!-- /readme-tables:main -->\nb"
    assert script.replace_block(text, "main", block) != text
    with pytest.raises(ValueError, match="no <!-- readme-tables:x -->"):
        script.replace_block(text, "x", block)


def _mean(cell: str) -> str:
    """``**0.736 ± 0.019**`` -> ``0.736``."""
    return cell.strip().strip("*").split("±")[0].strip()


def test_readme_learned_table_is_learned_md_bar_table() -> None:
    """The README's learned-predictor table repeats docs/LEARNED.md's bar table (printed by learned_apgr.py)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    learned = (ROOT / "docs" / "LEARNED.md").read_text(encoding="utf-8").splitlines()
    head = "| data | mode | learned (default) |"
    start = next(i for i, line in enumerate(learned) if line.startswith(head))
    columns = [c.strip() for c in learned[start].strip("|").split("|")]
    doc: dict[tuple[str, str], list[str]] = {}
    data = ""
    for line in learned[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        data = cells[0].split(" ")[0].rstrip(",") or data
        row = dict(zip(columns, cells, strict=True))
        mode = "request" if row["mode"] == "request" else "request + draft"
        doc[(data, mode)] = [
            _mean(row[c]) for c in ("learned (default)", "TF-IDF + ridge", "category card", "shortest first")
        ]
    start = readme.index("| data | mode | learned | TF-IDF + ridge | category card | shortest-first |")
    rows = 0
    for line in readme[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        want = doc[(cells[0], cells[1])]
        got = [c if c != "–" else "no answers" for c in cells[2:]]
        assert got == want, (cells[0], cells[1], got, want)
        rows += 1
    assert rows == len(doc) == 7


def _comparison_sentence(dataset: str, c: dict[str, Any]) -> str:
    return (
        f"`rpra eval --dataset {dataset}` prints {c['leader']} - {c['against']} = {c['difference']:+.3f}, interval "
        f"{c['low']:+.3f} to {c['high']:+.3f}"
    )


def test_datasets_md_comparison_figures_are_what_rpra_eval_prints(main_job: dict[str, Any], tmp_path: Path) -> None:
    """docs/DATASETS.md quotes the line under `rpra eval`'s table for MT-bench and arena."""
    from rpra_agent.evaluation.runs.pipeline import ReplayOptions, run_replay_eval

    arena = run_replay_eval("arena", out_dir=tmp_path, options=ReplayOptions(report=False)).comparison
    text = " ".join((ROOT / "docs" / "DATASETS.md").read_text(encoding="utf-8").split())
    for sentence in (_comparison_sentence("mt-bench", main_job["comparison"]), _comparison_sentence("arena", arena)):
        assert sentence in text, f"docs/DATASETS.md should say: {sentence}"


def test_readme_calibration_figures_are_what_rpra_calibrate_prints() -> None:
    """The README's MMLU and MT-bench calibration sentences, against the commands beside them."""
    from typer.testing import CliRunner

    from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
    from rpra_agent.cli.app import app

    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    runner = CliRunner()
    args = ["calibrate", "--epsilon", "0.05", "--delta", "0.1", "--db", "memory://"]
    mmlu = runner.invoke(app, [*args, "--dataset", "mmlu"])
    assert mmlu.exit_code == 0, mmlu.output
    rows = _table(mmlu.output)
    bound = next(v for k, v in rows.items() if k.startswith("upper bound"))
    said = f"certified a threshold that defers {rows['deferral rate']} of requests, with a bound of {bound} on the loss"
    assert rows["certified"] == "yes" and said in readme, f"README.md should say: {said}"
    mt = runner.invoke(app, [*args, "--dataset", "mt-bench"])
    assert mt.exit_code == 0, mt.output
    rows = _table(mt.output)
    assert rows["certified"].startswith("NO") and rows["deferral rate"] == "100.0%"
    assert 'On MT-bench\'s 160 items no threshold below "defer everything" can be certified at ε=0.05' in readme


def _table(output: str) -> dict[str, str]:
    """The field -> value rows of a printed rich table (first line of each value)."""
    rows: dict[str, str] = {}
    for line in output.splitlines():
        cells = line.strip("│ ").split("│")
        if len(cells) == 2 and cells[0].strip() and cells[0].strip() not in rows:
            rows[cells[0].strip()] = cells[1].strip()
    return rows
