"""The suite's generated-GGUF cache keeps its disk use bounded (a full /tmp once failed CI)."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures_llama import _DiskCache


def _writer(calls: list[str]):
    def build(path: Path) -> Path:
        calls.append(path.name)
        path.write_bytes(b"x" * 1024)
        return path

    return build


def test_the_least_recently_used_file_is_deleted_beyond_the_limit(tmp_path: Path) -> None:
    calls: list[str] = []
    cache = _DiskCache(tmp_path / "c", size=2)
    (tmp_path / "c").mkdir()
    a = cache.get(("a",), _writer(calls), "a")
    b = cache.get(("b",), _writer(calls), "b")
    assert cache.get(("a",), _writer(calls), "a") == a  # a hit: not rebuilt, and now the most recent
    c = cache.get(("c",), _writer(calls), "c")
    assert a.exists() and c.exists() and not b.exists()  # b was the least recently used
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted([a.name, c.name])
    b2 = cache.get(("b",), _writer(calls), "b")  # asked again: rebuilt under a fresh name
    assert b2.exists() and b2 != b and not a.exists()
    assert calls == ["a-0.gguf", "b-1.gguf", "c-2.gguf", "b-3.gguf"]


def test_close_removes_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    cache = _DiskCache(root, size=4)
    cache.get(("a",), _writer([]), "a")
    cache.close()
    assert not root.exists()
