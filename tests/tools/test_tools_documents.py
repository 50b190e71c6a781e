import os
import time
from pathlib import Path

import pytest

from tools.documents import DocumentError, DocumentFolder


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "france.md").write_text("# France\n\nParis is the capital of France.\n\nIt has the Louvre.")
    (root / "sub" / "rpra.txt").write_text(
        "Deferral\n\nThe small model defers to the large model when its predicted grade is low."
    )
    (root / "notes.bin").write_bytes(b"\x00capital")
    (root / ".hidden.md").write_text("capital secret")
    (tmp_path / "outside.md").write_text("capital outside the folder")
    os.symlink(tmp_path / "outside.md", root / "link.md")
    return DocumentFolder(root)


def test_search_finds_the_best_document_and_passage(folder):
    hits = folder.search("capital of France")
    assert [h.path for h in hits] == ["france.md"]
    assert hits[0].snippet == "Paris is the capital of France."
    assert folder.search("predicted grade defers")[0].path == "sub/rpra.txt"


def test_search_never_sees_hidden_binary_or_outside_files(folder):
    assert [h.path for h in folder.search("capital secret outside")] == ["france.md"]


def test_index_follows_changes(folder):
    (folder.root / "new.md").write_text("Quokkas live on Rottnest Island.")
    assert folder.search("quokkas")[0].path == "new.md"


def test_read_document(folder):
    assert "Louvre" in folder.read("france.md")
    assert folder.read("sub/rpra.txt").startswith("Deferral")
    assert "truncated" in folder.read("france.md", max_chars=10)


@pytest.mark.parametrize(
    "path",
    [
        "../outside.md",
        "/etc/passwd",
        "sub/../../outside.md",
        "link.md",
        "C:/x.md",
        "missing.md",
        "notes.bin",
        "sub",
        "",
    ],
)
def test_read_refuses_paths_outside_or_not_documents(folder, path):
    with pytest.raises(DocumentError):
        folder.read(path)


def test_tools_return_errors_as_messages(folder):
    search, read = folder.tools()
    assert "[france.md]" in search.invoke({"query": "Paris"})
    assert search.invoke({"query": "zebra"}) == "No document matches the query."
    assert search.invoke({"query": "!!!"}).startswith("Error:")
    assert read.invoke({"path": "../outside.md"}).startswith("Error:")
    assert "k" in search.invoke({"query": "Paris", "k": 99})


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DocumentError, match="does not exist"):
        DocumentFolder(tmp_path / "nope")


def _past(root, seconds=60):
    """Set every directory's mtime in the past, as for a folder nobody touched lately."""
    old = time.time() - seconds
    for dirpath, _, _ in os.walk(root):
        os.utime(dirpath, (old, old))


@pytest.fixture
def counting(monkeypatch):
    """Count directory listings and file reads of tools.documents."""
    import tools.documents as documents

    counts = {"scandir": 0, "read": 0, "stat": 0}
    scandir, read, stat = os.scandir, documents._read_text, os.stat

    def counted(name, fn):
        def call(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)

        return call

    monkeypatch.setattr(os, "scandir", counted("scandir", scandir))
    monkeypatch.setattr(os, "stat", counted("stat", stat))
    monkeypatch.setattr(documents, "_read_text", counted("read", read))

    def take():
        snapshot = dict(counts)
        counts.update({k: 0 for k in counts})
        return snapshot

    return take


def test_a_second_search_with_nothing_changed_does_not_walk_again(tmp_path, counting):
    root = tmp_path / "many"
    for d in range(40):
        sub = root / f"d{d:02}" / "inner"
        sub.mkdir(parents=True)
        for f in range(50):
            (sub.parent if f % 2 else sub / "").joinpath(f"f{f:02}.md").write_text(f"file {d} {f} word{d}x{f} common")
    (root / "d00" / "needle.md").write_text("a quokka is here")
    _past(root)
    folder = DocumentFolder(root, recheck_files_s=3600)
    counting()
    started = time.perf_counter()
    assert folder.search("quokka")[0].path == "d00/needle.md"
    first_s = time.perf_counter() - started
    first = counting()
    assert first["scandir"] == 81 and first["read"] == 2001 + 1  # every directory and file, plus the hit's snippet
    started = time.perf_counter()
    assert folder.search("word7x3")[0].path == "d07/f03.md"
    second_s = time.perf_counter() - started
    second = counting()
    assert second == {"scandir": 0, "read": 1, "stat": 81}  # one stat per directory, the snippet's read
    assert second_s < first_s
    # a new file: only its directory is listed again and only it is read
    (root / "d05" / "inner" / "new.md").write_text("platypus")
    assert folder.search("platypus")[0].path == "d05/inner/new.md"
    assert counting()["scandir"] == 1
    # an atomic save (write then rename) and a deletion are seen
    (root / "d06" / "tmp.part").write_text("wombat")
    os.replace(root / "d06" / "tmp.part", root / "d06" / "f01.md")
    (root / "d00" / "needle.md").unlink()
    assert folder.search("wombat")[0].path == "d06/f01.md"
    assert folder.search("quokka") == []
    # an edit in place keeps the directory's mtime: seen on the periodic (or a full) re-check
    (root / "d09" / "f03.md").write_text("numbat")
    folder.refresh(full=True)
    assert folder.search("numbat")[0].path == "d09/f03.md"


def test_a_1100_deep_tree_is_walked_without_recursion(tmp_path):
    root = tmp_path / "deep"
    root.mkdir()
    levels = [f"{root}" + "/d" * i for i in range(1, 1101)]
    for level in levels:  # pathlib's and os.makedirs's mkdir -p recurse: build it level by level
        os.mkdir(level)
    bottom = levels[-1] + "/bottom.md"
    with open(bottom, "w") as handle:
        handle.write("the bottom of the well")
    try:
        folder = DocumentFolder(root)
        (hit,) = folder.search("bottom well")
        assert hit.path == "d/" * 1100 + "bottom.md"
        assert folder.read(hit.path) == "the bottom of the well"
    finally:  # shutil.rmtree (pytest's clean-up) recurses too: remove it level by level
        os.unlink(bottom)
        for level in reversed(levels):
            os.rmdir(level)


@pytest.fixture
def mixed(tmp_path):
    """Every kind of entry the visibility rule decides on."""
    root = tmp_path / "mixed"
    (root / ".secrets").mkdir(parents=True)
    (root / ".secrets" / "creds.txt").write_text("password hunter2")
    (root / ".secrets" / "creds.md").write_text("password hunter2")
    (root / "ok").mkdir()
    (root / "ok" / "doc.md").write_text("password policy document")
    (root / ".hidden.md").write_text("password hidden")
    (root / "big.md").write_text("password " + "x" * 2000)
    os.symlink(root / ".secrets" / "creds.md", root / "alias.md")  # inside, but to a hidden file
    os.symlink(root / "ok" / "doc.md", root / "inside.md")  # inside, to a visible file
    (tmp_path / "outside.md").write_text("password outside")
    os.symlink(tmp_path / "outside.md", root / "escape.md")
    os.symlink(root / "ok", root / "linkdir")  # a symlinked directory is not followed
    os.symlink(root / "nowhere.md", root / "dangling.md")
    os.symlink(root / "loop.md", root / "loop.md")
    return DocumentFolder(root, max_file_bytes=1000)


CANDIDATES = [
    ".secrets/creds.txt",
    ".secrets/creds.md",
    ".hidden.md",
    "ok/doc.md",
    "big.md",
    "alias.md",
    "inside.md",
    "escape.md",
    "linkdir/doc.md",
    "dangling.md",
    "loop.md",
]


def test_search_and_read_apply_the_same_visibility_rule(mixed):
    searchable = {h.path for h in mixed.search("password", k=10)}
    readable = set()
    for path in CANDIDATES:
        try:
            mixed.read(path)
            readable.add(path)
        except DocumentError:
            pass
    assert searchable == readable == {"ok/doc.md", "inside.md"}


def test_read_document_refuses_hidden_files_as_a_tool_message(mixed):
    _, read = mixed.tools()
    out = read.invoke({"type": "tool_call", "id": "1", "name": "read_document", "args": {"path": ".secrets/creds.txt"}})
    assert out.status == "error" and "hunter2" not in out.content and "hidden" in out.content


if __name__ == "__main__":  # figures for docs/RELIABILITY.md: python -m tests.tools.test_tools_documents [files]
    import sys
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    if len(sys.argv) > 2:  # another implementation's file, e.g. an older tools/documents.py
        import importlib.util

        spec = importlib.util.spec_from_file_location("other_documents", sys.argv[2])
        other = importlib.util.module_from_spec(spec)
        sys.modules["other_documents"] = other
        spec.loader.exec_module(other)
        DocumentFolder = other.DocumentFolder  # noqa: F811
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "docs"
        for i in range(n):
            sub = root / f"d{i // 100:04}"
            if i % 100 == 0:
                sub.mkdir(parents=True)
            (sub / f"f{i % 100:02}.md").write_text(f"document {i} about topic{i % 977} and more words")
        _past(root)
        folder = DocumentFolder(root, max_files=n + 1)
        for label in ("first search (indexes everything)", "second search, nothing changed", "third search"):
            started = time.perf_counter()
            folder.search("topic42")
            print(f"{n} files, {label}: {time.perf_counter() - started:.3f} s")
        (root / "d0007" / "new.md").write_text("platypus")
        started = time.perf_counter()
        folder.search("platypus")
        print(f"{n} files, after adding one file: {time.perf_counter() - started:.3f} s")
