"""Fixtures for the feedback-loop tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rpra_agent.store import open_store
from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'log.db'}"


@pytest.fixture
def open_test_store(tmp_path) -> Iterator[Callable[..., Any]]:
    """Open stores with a private spool; every store is closed afterwards."""
    opened: list[Any] = []

    def _open(url: str, **opts: Any) -> Any:
        if url != "memory://":
            opts.setdefault("spool_path", str(tmp_path / f"spool-{len(opened)}.jsonl"))
        store = open_store(url, **opts)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()
