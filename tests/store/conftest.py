"""Fixtures for the decision-log tests: one store factory over every backend."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rpra_agent.core.decision import Decision, LegUsage
from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import Prediction
from rpra_agent.store import InMemoryDecisionStore, open_store
from tests.fixtures_disk import tiny_disk  # noqa: F401  (the disk-full tests' fixture)
from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401

_counter = itertools.count()


def make_decision(**overrides: Any) -> Decision:
    """A fully populated decision; every field can be overridden."""
    n = next(_counter)
    dist = overrides.pop("distribution", {"great": 0.6, "ok": 0.3, "bad": 0.1})
    fields: dict[str, Any] = dict(
        run_id="run-1",
        step=n % 4,
        kind="answer",
        paradigm="pa",
        prediction=Prediction.from_distribution(
            dist,
            scale=GradeScale.paper(),
            predictor="fixed",
            version="1",
            latency_ms=1.5,
            raw="raw grade",
            method="logprobs",
        ),
        threshold=0.5,
        route="small",
        reason="predicted_ok",
        thread_id="thread-1",
        task="math",
        small_model="small-m",
        large_model="large-m",
        legs={"predict": LegUsage("small-m", 10, 1, 2.0), "small": LegUsage("small-m", 12, 30, 5.5)},
        request="What is 2+2?",
        response="4",
        tool_calls=(),
        error=None,
        degraded=False,
        created_at=f"2026-11-{20 + n % 3:02d}T10:00:{n % 60:02d}.{n:06d}+00:00",
        completed_at="2026-11-22T10:00:01+00:00",
        metadata={"metric": "p_acceptable", "nested": {"a": [1, 2]}},
    )
    fields.update(overrides)
    return Decision(**fields)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'log.db'}"


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conformance.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def open_test_store(tmp_path) -> Iterator[Callable[..., Any]]:
    """Open stores with a private spool and a short retry; all are closed afterwards."""
    opened: list[Any] = []

    def _open(url: str, **opts: Any) -> Any:
        if url != "memory://":
            opts.setdefault("spool_path", str(tmp_path / f"spool-{len(opened)}.jsonl"))
            opts.setdefault("retry_interval", 0.2)
        store = open_store(url, **opts)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(store_url, open_test_store):
    return open_test_store(store_url)


@pytest.fixture
def memory_store() -> InMemoryDecisionStore:
    return InMemoryDecisionStore()
