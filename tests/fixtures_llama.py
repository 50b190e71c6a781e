"""Fixtures for real llama.cpp on synthesized GGUF models (import from a conftest).

- ``random_gguf``: a random-weight tiny model file.
- ``scripted_gguf(reply=..., grade=...)``: a model file that always replies ``reply``.
- ``llama_server``: llama.cpp's OpenAI-compatible server on 127.0.0.1 with a scripted
  model replying :data:`SERVER_REPLY`; yields its ``/v1`` base URL and is stopped by PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

from rpra_agent.testing.gguf import write_random_gguf, write_scripted_gguf  # noqa: E402

SERVER_REPLY = "The large model says: Paris."


@pytest.fixture(scope="session")
def random_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight tiny llama GGUF shared by the session."""
    return write_random_gguf(tmp_path_factory.mktemp("gguf") / "random.gguf", seed=0)


@pytest.fixture(scope="session")
def scripted_gguf(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A factory ``scripted_gguf(reply=..., grade=..., name=...)`` caching one file per arguments."""
    root = tmp_path_factory.mktemp("scripted")
    cache: dict[tuple[object, ...], Path] = {}

    def make(*, reply: str, grade: str | None = None, name: str | None = None) -> Path:
        key = (reply, grade, name)
        if key not in cache:
            cache[key] = write_scripted_gguf(root / (name or f"m{len(cache)}.gguf"), reply=reply, grade=grade)
        return cache[key]

    return make


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=1) as resp:  # noqa: S310 - 127.0.0.1 only
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"llama_cpp.server did not answer on {url} within {timeout} s")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` on a free 127.0.0.1 port; yield its base URL; stop it by PID."""
    pytest.importorskip("llama_cpp.server")
    root = tmp_path_factory.mktemp("server")
    model = write_scripted_gguf(root / "large.gguf", reply=SERVER_REPLY)
    port = _free_port()
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--model_alias", "large"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_up(base_url, proc)
        yield base_url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
