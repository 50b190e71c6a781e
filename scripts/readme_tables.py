"""Regenerate the README's result tables from what the commands print.

Two blocks of README.md sit between markers and are written only by this script:

- ``main``: the table and operating point of the main job, read from
  ``rpra_out/eval.json`` (written by ``rpra eval --dataset mt-bench``);
- ``baselines``: the baselines of every bundled dataset, computed by the same code as
  ``rpra data list --baselines``.

Usage::

    rpra eval --dataset mt-bench                       # writes rpra_out/eval.json
    python scripts/readme_tables.py --write            # rewrite the blocks in README.md
    python scripts/readme_tables.py --check            # exit 1 when README.md is stale
    python scripts/readme_tables.py --run --write      # run the main job in a temp dir first

``tests/test_readme_tables.py`` runs the main job and fails when the README disagrees.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: How each router of ``rpra eval`` is described in the README.
DESCRIPTIONS: Mapping[str, str] = {
    "report_card": "report card, read statistically (per MT-bench category)",
    "learned": "learned predictor, request only",
    "learned_draft": "learned predictor, request + the small model's draft",
    "tfidf": "TF-IDF + ridge, request only",
    "tfidf_draft": "TF-IDF + ridge, request + the small model's draft",
    "random": "random (its exact expectation)",
    "answer_length": "defer the shortest small answers first",
    "oracle": "oracle (reads both answers' scores)",
}
_DATASETS: Mapping[str, str] = {
    "mt-bench": "mt-bench (per turn, n=160)",
    "gsm8k": "gsm8k (n=1319)",
    "mmlu": "mmlu (n=14042)",
    "arena": "arena, Mixtral → gpt-4-1106 (n=293)",
}


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main_block(result: Mapping[str, Any]) -> str:
    """The main job's table and operating point, from ``eval.json`` (``EvalResult.to_dict()``)."""
    op = result.get("operating") or {}
    lines = ["| router | APGR | CPT(50%) | CPT(80%) |", "|---|---|---|---|"]
    for row in result["rows"]:
        if row["apgr"] is None:
            continue  # always-small / always-large: their quality is in the operating point below
        name = DESCRIPTIONS.get(row["name"], row["name"])
        mark = " **(sets the operating point)**" if row["name"] == op.get("predictor") else ""
        lines.append(f"| {name}{mark} | {_f(row['apgr'])} | {_f(row['cpt50'])} | {_f(row['cpt80'])} |")
    if op:
        details = op.get("details") or {}
        how = "target deferral rate {:.0%}".format(details["target_rate"]) if "target_rate" in details else op["method"]
        auto = str(details.get("operating_router_choice", "")).startswith("auto")
        why = "the router with the best cross-fitted APGR in the run" if auto else "--operating-router"
        lines += [
            "",
            f"At the calibrated operating point ({how}, set by {op['predictor']}: {why}), the graph's answers "
            f"scored {op['quality']:.3f}. That is against "
            f"{op['quality_small']:.3f} for always-small and {op['quality_large']:.3f} for always-large, so it "
            f"recovered {op['pgr']:.0%} of the quality gap (PGR {op['pgr']:.3f}) while deferring "
            f"{op['deferral_rate']:.0%} of the requests.",
        ]
    c = result.get("comparison") or {}
    if c.get("low") is not None and c.get("high") is not None:
        lines += [
            "",
            f"The best router against the {c['against_is']} (the line under the table): {c['leader']} leads "
            f"{c['against']} by {c['difference']:+.3f} APGR, {c['level']:.0%} interval {c['low']:+.3f} to "
            f"{c['high']:+.3f} by a paired bootstrap over the {c['units']} conversations "
            f"({c['resamples']:,} resamples), so "
            + ("these items tell the two apart." if c["excludes_zero"] else "these items do not tell the two apart."),
        ]
    return "\n".join(lines)


def baselines_block() -> str:
    """Every bundled dataset's baselines, as ``rpra data list --baselines`` computes them."""
    from rpra_agent.evaluation.datasets import load_dataset
    from rpra_agent.evaluation.metrics.baselines import dataset_baselines

    lines = ["| data | random | oracle | shortest answers first |", "|---|---|---|---|"]
    for name, label in _DATASETS.items():
        rows = {r.name: r.apgr for r in dataset_baselines(load_dataset(name))}
        length = _f(rows["answer_length"]) if "answer_length" in rows else "– (no answer texts)"
        lines.append(f"| {label} | {_f(rows['random'])} | {_f(rows['oracle'])} | {length} |")
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the block ``name`` (between its markers) replaced by ``body``.

    Raises:
        ValueError: when the markers are missing.
    """
    start, end = f"<!-- readme-tables:{name} -->", f"<!-- /readme-tables:{name} -->"
    if start not in text or end not in text:
        raise ValueError(f"README.md has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def render(readme: str, result: Mapping[str, Any]) -> str:
    """The README with both blocks regenerated."""
    return replace_block(replace_block(readme, "main", main_block(result)), "baselines", baselines_block())


def run_main_job(out: Path) -> dict[str, Any]:
    """Run ``rpra eval --dataset mt-bench`` (its defaults) into ``out`` and return its ``eval.json``."""
    from rpra_agent.evaluation.runs.pipeline import run_replay_eval

    run_replay_eval("mt-bench", out_dir=out)
    return dict(json.loads((out / "eval.json").read_text(encoding="utf-8")))


def main() -> int:
    """Regenerate (--write) or check (--check) the README blocks; 1 when --check finds them stale."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-json", type=Path, default=Path("rpra_out/eval.json"))
    parser.add_argument("--run", action="store_true", help="run the main job in a temp dir instead of reading a file")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when README.md differs")
    args = parser.parse_args()
    if args.run:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_main_job(Path(tmp))
    else:
        result = json.loads(args.eval_json.read_text(encoding="utf-8"))
    old = README.read_text(encoding="utf-8")
    new = render(old, result)
    if args.write:
        README.write_text(new, encoding="utf-8")
        return 0
    if new != old:
        sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "README.md", "new"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
