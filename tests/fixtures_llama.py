"""Fixtures for real llama.cpp on synthesized GGUF models (import from a conftest).

- ``random_gguf``: a random-weight tiny model file.
- ``scripted_gguf(reply=..., grade=...)``: a model file that always replies ``reply``.
- ``llama_server``: llama.cpp's OpenAI-compatible server on 127.0.0.1 with a scripted
  model replying :data:`SERVER_REPLY`; yields its ``/v1`` base URL and is stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def run_llama_cpp_server(args: list[str], *, port: int, log_path: Path) -> Iterator[str]:
    """Run ``python -m llama_cpp.server ARGS`` (listening on 127.0.0.1:``port``); yield its ``/v1`` base URL.

    Waits until it answers, logs to ``log_path`` and stops it by PID (SIGTERM, then SIGKILL).
    """
    base_url = f"http://127.0.0.1:{port}/v1"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "llama_cpp.server", *args], stdout=log, stderr=subprocess.STDOUT
        )
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


def model_server_args(model: Path, port: int, *, n_ctx: int = 2048, alias: str = "large") -> list[str]:
    """``llama_cpp.server`` arguments serving one GGUF on 127.0.0.1 under ``alias``."""
    return ["--model", str(model), "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
            "--model_alias", alias]  # fmt: skip


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` on a free 127.0.0.1 port; yield its base URL; stop it by PID."""
    pytest.importorskip("llama_cpp.server")
    root = tmp_path_factory.mktemp("server")
    model = write_scripted_gguf(root / "large.gguf", reply=SERVER_REPLY)
    port = _free_port()
    with run_llama_cpp_server(model_server_args(model, port), port=port, log_path=root / "server.log") as base_url:
        yield base_url


# -- real tokenizers (llama.cpp's ggml-vocab-*.gguf, extracted by scripts/test.sh) ------------
REAL_FAMILIES = ("qwen2", "llama3", "phi3", "gemma", "command-r", "llama2")
"""Families with a real-tokenizer fixture (``llama2`` is the one without a chat template)."""


@pytest.fixture(scope="session")
def vocab_dir() -> Path:
    """The directory of llama.cpp's vocab files (``$RPRA_VOCAB_DIR``); missing: skip, or fail under CI=true."""
    from rpra_agent.testing.gguf import FAMILIES, VOCAB_ENV, family_vocab

    try:
        for family in FAMILIES:
            family_vocab(family)
    except FileNotFoundError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"real-tokenizer vocab files are required under CI: {exc}")
        pytest.skip(f"real-tokenizer vocab files not found ({exc})")
    return Path(os.environ[VOCAB_ENV])


class _DiskCache:
    """At most ``size`` generated model files on disk: the least recently used is deleted.

    The real-tokenizer GGUFs weigh 40-80 MB each (a 256k-token vocabulary), and the
    suite asks for about sixty distinct ones: kept all at once they filled 2.5 GB of a
    CI host's ``/tmp``. A file evicted here is rebuilt if asked for again; a process that
    still has it open keeps reading it (unlinking does not unmap).
    """

    def __init__(self, root: Path, size: int = 8) -> None:
        self.root, self.size = root, size
        self._paths: OrderedDict[tuple[object, ...], Path] = OrderedDict()
        self._made = 0

    def get(self, key: tuple[object, ...], build: Callable[[Path], Path], stem: str) -> Path:
        if key in self._paths:
            self._paths.move_to_end(key)
            return self._paths[key]
        while len(self._paths) >= self.size:
            _, old = self._paths.popitem(last=False)
            old.unlink(missing_ok=True)
        path = build(self.root / f"{stem}-{self._made}.gguf")
        self._made += 1
        self._paths[key] = path
        return path

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def family_gguf(vocab_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Path]]:
    """A factory ``family_gguf(family, n_embd=32)``: a random-weight model with that family's tokenizer (cached)."""
    from rpra_agent.testing.gguf import FAMILIES, family_vocab, write_tokenizer_gguf

    cache = _DiskCache(tmp_path_factory.mktemp("families"))

    def make(family: str, n_embd: int = 32) -> Path:
        return cache.get(
            (family, n_embd),
            lambda path: write_tokenizer_gguf(
                path, like=family_vocab(family, vocab_dir), n_embd=n_embd, chat_template=FAMILIES[family][1]
            ),
            f"{family}-{n_embd}",
        )

    yield make
    cache.close()


@pytest.fixture(scope="session")
def scripted_family(vocab_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Path]]:
    """A factory ``scripted_family(family, reply=..., grade=..., grades=..., grade_text=...)`` (cached)."""
    from rpra_agent.testing.gguf import FAMILIES, GRADE_WORDS, family_vocab, write_scripted_like

    cache = _DiskCache(tmp_path_factory.mktemp("scripted-families"))

    def make(
        family: str,
        *,
        reply: str,
        grade: str | None = None,
        grades: tuple[str, ...] = GRADE_WORDS,
        grade_text: str | None = None,
    ) -> Path:
        return cache.get(
            (family, reply, grade, grades, grade_text),
            lambda path: write_scripted_like(
                path,
                like=family_vocab(family, vocab_dir),
                reply=reply,
                grade=grade,
                grades=grades,
                grade_text=grade_text,
                chat_template=FAMILIES[family][1],
            ),
            family,
        )

    yield make
    cache.close()
