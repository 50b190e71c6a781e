"""Fixtures for real llama.cpp on synthesized GGUF models (import from a conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

from rpra_agent.testing.gguf import write_random_gguf, write_scripted_gguf  # noqa: E402


@pytest.fixture(scope="session")
def random_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight tiny llama GGUF shared by the session."""
    return write_random_gguf(tmp_path_factory.mktemp("gguf") / "random.gguf", seed=0)


@pytest.fixture(scope="session")
def scripted_gguf(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A factory ``scripted_gguf(reply=..., grade=...)`` caching one file per arguments."""
    root = tmp_path_factory.mktemp("scripted")
    cache: dict[tuple[object, ...], Path] = {}

    def make(*, reply: str, grade: str | None = None, **kwargs: object) -> Path:
        key = (reply, grade, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = write_scripted_gguf(root / f"m{len(cache)}.gguf", reply=reply, grade=grade, **kwargs)  # type: ignore[arg-type]
        return cache[key]

    return make
