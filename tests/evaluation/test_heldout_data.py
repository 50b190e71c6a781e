"""The held-out arena-bench-v1 recordings ship with the benchmarks, and docs/LEARNED.md's pair sizes are theirs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from benchmarks.learned_apgr import arena_pair

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "benchmarks" / "data" / "arena_bench_v1"


def _documented() -> tuple[list[list[tuple[str, str]]], list[int]]:
    """Each held-out command's pairs (the ten, then the eight fresh ones) and every table row's size, in order."""
    doc = (ROOT / "docs" / "LEARNED.md").read_text()
    commands = re.findall(r"--arena-dir\s+benchmarks/data/arena_bench_v1 --continuous --pairs\s+\"([^\"]+)\"", doc)
    assert commands, "LEARNED.md's held-out commands name the shipped recordings"
    pairs = [[tuple(p.split(">")) for p in command.split(",")] for command in commands]
    sizes = [int(n) for n in re.findall(r"^\| [^|]+ > [^|]+ \((\d+)\) \| request \|", doc, flags=re.M)]
    return pairs, sizes  # type: ignore[return-value]


def test_the_recordings_ship_with_their_attribution() -> None:
    notice = (DATA / "NOTICE.md").read_text()
    assert "github.com/lmarena/arena-hard-auto" in notice and "Apache-2.0" in notice
    assert "Apache License" in (DATA / "LICENSE-Apache-2.0.txt").read_text()
    assert {p.name for p in DATA.glob("*.gz")} == {"prompts.jsonl.gz", "outputs.jsonl.gz", "judgments.csv.gz"}


def test_documented_held_out_pairs_have_the_documented_sizes_and_real_scores() -> None:
    commands, sizes = _documented()
    assert [len(c) for c in commands] == [10, 8], "the ten pairs, then the eight fresh ones"
    ten, fresh = commands
    assert not set(fresh) & set(ten), "the fresh pairs are not among the ten"
    pairs = ten + fresh
    assert len(sizes) == len(pairs)
    for (weak, strong), n in zip(pairs, sizes, strict=True):
        ds = arena_pair(str(DATA), weak, strong, continuous=True)
        assert len(ds) == n, (weak, strong)
        small, large = ds.scores(ds.weak), ds.scores(ds.strong)
        assert np.all((small >= 0.1) & (small <= 1.0)) and np.all((large >= 0.1) & (large <= 1.0))
        assert small.mean() < large.mean(), "each pair is weak > strong on average"
        assert all(t is not None for t in ds.texts(ds.weak)), "the answers the judge saw are there (draft mode)"
