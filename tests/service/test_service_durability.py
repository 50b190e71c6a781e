"""The service's audit trail under hostile clients and a failing disk (issue 14, items 3, 4, 6).

- A streaming client that hangs up (after 3 events, or after reading the whole answer)
  still gets its step recorded exactly once, with the text produced so far, and the
  run closes as ``cancelled`` (real uvicorn on 127.0.0.1, the official openai client
  and raw httpx).
- A body nested 5,000 deep or holding a 5,000-digit integer gets an OpenAI-shaped 400,
  counted in ``/metrics``.
- In the default ``sync`` mode an HTTP 200 means the decision is durable; when the
  database and the spool both fail (a full tmpfs), the request gets a 503, counted.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from rpra_agent import FaultPolicy
from rpra_agent.service.app import create_app
from rpra_agent.service.engine import ChatEngine
from rpra_agent.store import open_store
from rpra_agent.testing import ScriptedChatModel
from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401
from tests.fixtures_service import serve_app
from tests.service.conftest import KeywordPredictor, replier

WORDS = 40


class SlowStreamer(ScriptedChatModel):
    """Streams its reply one word every 20 ms, like a real model (so a client can hang up mid-answer)."""

    async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> AsyncIterator[ChatGenerationChunk]:  # type: ignore[override]  # fmt: skip
        for i in range(WORDS):
            await asyncio.sleep(0.02)
            token = f"w{i} "
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token, id="slow"))
            if run_manager:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'log.db'}", spool_path=str(tmp_path / "spool.jsonl"), durability="sync")
    yield s
    s.close()


@pytest.fixture
def url(store) -> Iterator[str]:
    engine = ChatEngine(
        small=SlowStreamer(responses=["unused"], rpra_name="small"), large=replier("large"),
        predictor=KeywordPredictor(), store=store, model_name="rpra", faults=FaultPolicy(large_attempts=1),
    )  # fmt: skip
    with serve_app(create_app(engine)) as base:
        yield base


def _wait_for(store, runs: int, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = {k: v for k, v in store.runs().items() if v["status"] != "running"}
        if len(found) >= runs or time.monotonic() > deadline:
            return store.runs()
        time.sleep(0.05)


def _stream_httpx(url: str, stop_after: int | None) -> list[str]:
    body = {"model": "rpra", "messages": [{"role": "user", "content": "tell me"}], "stream": True}
    seen: list[str] = []
    with httpx.Client(timeout=20) as client, client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: ") and '"content":"w' in line:
                seen.append(line)
                if stop_after is not None and len(seen) >= stop_after:
                    break  # leaving the block closes the connection
            if stop_after is None and len(seen) >= WORDS:
                break  # the whole answer read; hang up before [DONE]
    return seen


def _stream_openai(url: str, stop_after: int | None) -> int:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=20)
    stream = client.chat.completions.create(
        model="rpra", messages=[{"role": "user", "content": "tell me"}], stream=True
    )
    n = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
            if n >= (stop_after or WORDS):
                break
    stream.close()
    return n


@pytest.mark.parametrize("how", ["httpx", "openai"])
def test_a_client_that_hangs_up_is_recorded_once_with_the_text_so_far(url, store, how):
    for stop_after in (3, 3, 3, None, None, None):
        if how == "httpx":
            _stream_httpx(url, stop_after)
        else:
            _stream_openai(url, stop_after)
    runs = _wait_for(store, 6)
    assert len(runs) == 6 and {r["status"] for r in runs.values()} == {"cancelled"}
    decisions = store.decisions()
    assert sorted(d.run_id for d in decisions) == sorted(runs)  # exactly one per run
    lengths = []
    for d in decisions:
        words = d.response.split()
        assert words == [f"w{i}" for i in range(len(words))] and len(words) >= 3  # the text produced so far
        assert (d.route, d.reason) == ("small", "predicted_ok")
        if len(words) < WORDS:  # cut off mid-answer: recorded by the service, marked as such
            assert d.metadata.get("cancelled") is True and d.error == "cancelled"
        lengths.append(len(words))
    assert sum(n < WORDS for n in lengths) == 3 and lengths.count(WORDS) == 3


def test_deep_json_and_huge_integers_get_an_openai_400_and_are_counted(url):
    deep = '{"model": "rpra", "messages": ' + "[" * 5000 + "]" * 5000 + "}"
    huge = '{"model": "rpra", "n": ' + "9" * 5000 + ', "messages": [{"role": "user", "content": "hi"}]}'
    for body in (deep, huge):
        r = httpx.post(f"{url}/v1/chat/completions", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        assert r.json()["error"]["type"] == "invalid_request_error"
    metrics = httpx.get(f"{url}/metrics").json()
    assert metrics["errors"]["invalid_json"] == 2 and metrics["responses"]["4xx"] == 2
    assert 'rpra_errors_total{code="invalid_json"} 2' in httpx.get(f"{url}/metrics?format=prometheus").text


def test_a_full_disk_answers_503_never_a_200_without_a_record(tiny_disk):
    store = open_store(
        f"sqlite:///{tiny_disk / 'log.db'}", spool_path=str(tiny_disk / "spool.jsonl"),
        durability="sync", retry_interval=0.1,
    )  # fmt: skip
    engine = ChatEngine(small=replier("small"), large=replier("large"), predictor=KeywordPredictor(), store=store)
    body = {"model": "rpra", "messages": [{"role": "user", "content": "x" * 60_000}]}
    try:
        with serve_app(create_app(engine, max_body_bytes=200_000)) as base:
            assert httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30).status_code == 200
            free = __import__("os").statvfs(tiny_disk)
            (tiny_disk / "filler").write_bytes(b"\0" * max(0, free.f_bavail * free.f_frsize - 32 * 1024))
            statuses = [httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30).status_code for _ in range(6)]
            assert 503 in statuses and set(statuses) <= {200, 503}
            r = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30)
            assert r.status_code == 503 and r.json()["error"]["code"] == "decision_log_unavailable"
            assert httpx.get(f"{base}/metrics").json()["errors"]["decision_log_unavailable"] >= 2
            (tiny_disk / "filler").unlink()
            time.sleep(0.3)
            assert httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30).status_code == 200
        store.flush()
        store.replay()
        answered = 2 + statuses.count(200)
        assert store.count() >= answered  # every 200 is in the log (503s may be too: kept in memory, retried)
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_loses_no_decision_behind_an_http_200(backend, tmp_path, request):
    import os
    import signal
    import socket
    import sys
    import threading
    from pathlib import Path

    root = Path(__file__).parents[2]
    db = f"sqlite:///{tmp_path / 'log.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    spool = tmp_path / "spool.jsonl"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RPRA_")}, "PYTHONPATH": str(root)}
    worker = Path(__file__).with_name("_serve_worker.py")
    proc = subprocess.Popen([sys.executable, str(worker), db, str(spool), str(port)], env=env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    promised: list[str] = []
    lock, stop = threading.Lock(), threading.Event()

    def client(k: int) -> None:
        with httpx.Client(timeout=10) as http:
            i = 0
            while not stop.is_set():
                text = ("hard " if i % 3 == 0 else "") + f"question {k}-{i}"
                body = {"model": "rpra", "messages": [{"role": "user", "content": text}]}
                try:
                    r = http.post(f"{base}/v1/chat/completions", json=body)
                except httpx.TransportError:
                    return  # the server was killed
                if r.status_code == 200:
                    with lock:
                        promised.append(r.headers["x-rpra-decision-id"])
                i += 1

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.05)
        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        while len(promised) < 120 and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-traffic: requests are in flight
        proc.wait(timeout=30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
    for t in threads:
        t.join(timeout=30)
    store = open_store(db, spool_path=str(spool))
    try:
        store.replay()
        stored = {d.id for d in store.decisions()}
    finally:
        store.close()
    assert len(promised) >= 120 and [i for i in promised if i not in stored] == []


def test_an_unexpected_error_is_an_openai_shaped_500_and_counted(monkeypatch, store):
    def broken(raw: bytes):
        raise RuntimeError("a bug the handler did not foresee")

    monkeypatch.setattr("rpra_agent.service.app.parse_request", broken)
    engine = ChatEngine(small=replier("small"), large=replier("large"), predictor=KeywordPredictor(), store=store)
    with serve_app(create_app(engine)) as base:
        r = httpx.post(f"{base}/v1/chat/completions", json={"model": "rpra", "messages": []})
        assert r.status_code == 500 and r.json()["error"] == {
            "message": "The server failed to answer the request.", "type": "server_error", "param": None,
            "code": "internal_error",
        }  # fmt: skip
        assert httpx.get(f"{base}/metrics").json()["errors"]["internal_error"] == 1
