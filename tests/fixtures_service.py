"""Real servers on 127.0.0.1 for tests.

- ``serve_app(app)``: an ASGI app under real uvicorn (a free port) in a background thread.
- ``llama_server_process(model)``: ``python -m llama_cpp.server`` on a GGUF file, stopped by PID.
- ``RequestLog``: httpx clients that count (and keep) every request they send.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["RequestLog", "llama_server_process", "serve_app"]


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Run ``app`` on a fresh loopback port; yield its base URL (``http://127.0.0.1:PORT``)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def llama_server_process(model: Path, *, n_ctx: int = 2048, alias: str = "large") -> Iterator[str]:
    """Run llama.cpp's OpenAI-compatible server on ``model``; yield its ``/v1`` base URL; stop it by PID."""
    from tests.fixtures_llama import _free_port, model_server_args, run_llama_cpp_server

    port = _free_port()
    args = model_server_args(model, port, n_ctx=n_ctx, alias=alias)
    with run_llama_cpp_server(args, port=port, log_path=model.with_suffix(f".{port}.log")) as base_url:
        yield base_url


class RequestLog:
    """httpx clients whose every request is counted and its JSON body kept (``bodies``)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def _record(self, request: Any) -> None:
        raw = request.content  # the OpenAI SDK sends a JSON body that is already read
        self.bodies.append(json.loads(raw) if raw else {})

    async def _arecord(self, request: Any) -> None:
        self._record(request)

    @property
    def count(self) -> int:
        """Requests sent so far (every attempt, including the SDK's own retries)."""
        return len(self.bodies)

    def client(self) -> Any:
        """A sync ``httpx.Client`` that logs here."""
        import httpx

        return httpx.Client(event_hooks={"request": [self._record]}, timeout=60)

    def async_client(self) -> Any:
        """An ``httpx.AsyncClient`` that logs here."""
        import httpx

        return httpx.AsyncClient(event_hooks={"request": [self._arecord]}, timeout=60)
