"""docs/LOCAL_MODELS.md's family x feature table is what benchmarks/model_matrix.py printed, and still holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

from benchmarks import model_matrix

DOC = Path(__file__).resolve().parents[2] / "docs" / "LOCAL_MODELS.md"


def _doc_table() -> str:
    text = DOC.read_text()
    match = re.search(r"<!-- model-matrix -->\n(.*?)\n<!-- /model-matrix -->", text, re.DOTALL)
    assert match, "docs/LOCAL_MODELS.md lost its <!-- model-matrix --> block"
    return match.group(1).strip()


def test_doc_table_equals_the_recorded_run_of_the_matrix_command():
    rows = json.loads(model_matrix.RESULTS.read_text())
    assert set(rows) == set(model_matrix.FAMILIES)
    assert _doc_table() == model_matrix.render(rows)


def test_the_phi3_row_still_comes_out_of_the_same_checks(vocab_dir, tmp_path):
    recorded = json.loads(model_matrix.RESULTS.read_text())["phi3"]
    assert model_matrix.family_row("phi3", tmp_path, str(vocab_dir)) == recorded
