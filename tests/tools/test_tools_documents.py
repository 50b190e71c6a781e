import os

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
