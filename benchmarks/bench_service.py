"""Request overhead of `rpra serve` against calling the RPRA graph in-process.

Both sides use instant models (scripted test doubles, a fixed predictor, an in-memory
store), so the figures are pure framework overhead: the graph's own cost in-process,
then the same request through FastAPI/uvicorn over loopback HTTP (server in a
separate process by default, so client and server do not share a GIL).

    .venv/bin/python benchmarks/bench_service.py            # n=300 per row
    .venv/bin/python benchmarks/bench_service.py --n 1000 --server thread
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def make_engine():
    from rpra_agent.service.engine import ChatEngine
    from rpra_agent.testing import FixedPredictor, InMemoryDecisionStore, ScriptedChatModel

    small = ScriptedChatModel(responses=["Paris is the capital of France."], rpra_name="small")
    large = ScriptedChatModel(responses=["Paris."], rpra_name="large")
    return ChatEngine(
        small=small,
        large=large,
        predictor=FixedPredictor({"great": 0.9, "ok": 0.1}),
        store=InMemoryDecisionStore(),
        model_name="rpra",
    )


def serve(port: int) -> None:
    """Child process: serve the instant engine on 127.0.0.1:port."""
    import uvicorn

    from rpra_agent.service.app import create_app

    uvicorn.run(create_app(make_engine()), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(mode: str) -> tuple[str, Callable[[], None]]:
    port = free_port()
    if mode == "process":
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT)
        stop: Callable[[], None] = lambda: (proc.terminate(), proc.wait(10))  # noqa: E731
    else:
        import uvicorn

        from rpra_agent.service.app import create_app

        server = uvicorn.Server(
            uvicorn.Config(
                create_app(make_engine()), host="127.0.0.1", port=port, log_level="warning", access_log=False
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        stop = lambda: (setattr(server, "should_exit", True), thread.join(10))  # noqa: E731
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url, stop
        except httpx.TransportError:
            time.sleep(0.05)
    stop()
    raise RuntimeError("the service did not start")


def timed_interleaved(paths: list[tuple[str, Callable[[], object]]], n: int, warmup: int) -> dict[str, list[float]]:
    """Time every path n times, round-robin, so that all paths see the same machine load."""
    for _ in range(warmup):
        for _, fn in paths:
            fn()
    out: dict[str, list[float]] = {name: [] for name, _ in paths}
    for _ in range(n):
        for name, fn in paths:
            start = time.perf_counter()
            fn()
            out[name].append((time.perf_counter() - start) * 1000.0)
    return out


def row(name: str, ms: list[float]) -> tuple[str, float, float, float, float, float]:
    q = statistics.quantiles(ms, n=100)
    return name, q[49], q[89], q[98], statistics.fmean(ms), 1000.0 / statistics.fmean(ms)


def main() -> None:
    parser = argparse.ArgumentParser(description="Service overhead vs the graph in-process (instant models).")
    parser.add_argument("--n", type=int, default=300, help="timed requests per row (bounded loop)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    n = max(10, min(args.n, 20_000))

    import httpx
    import openai
    from langchain_core.messages import HumanMessage

    engine = make_engine()
    loop = asyncio.new_event_loop()
    question = MESSAGES[0]["content"]
    url, stop = start_server(args.server)
    try:
        body = json.dumps({"model": "rpra", "messages": MESSAGES}).encode()
        stream_body = json.dumps({"model": "rpra", "messages": MESSAGES, "stream": True}).encode()
        headers = {"content-type": "application/json"}
        http = httpx.Client(base_url=url, timeout=30)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        paths: list[tuple[str, Callable[[], object]]] = [
            (
                "graph.invoke (sync, in-process)",
                lambda: engine.base_graph.invoke({"messages": [HumanMessage(question)]}),
            ),
            (
                "graph.ainvoke (in-process)",
                lambda: loop.run_until_complete(engine.base_graph.ainvoke({"messages": [HumanMessage(question)]})),
            ),
            (
                "ChatEngine.complete (in-process)",
                lambda: loop.run_until_complete(engine.complete([HumanMessage(question)])),
            ),
            (
                "HTTP POST, httpx keep-alive",
                lambda: http.post("/v1/chat/completions", content=body, headers=headers).raise_for_status(),
            ),
            (
                "HTTP POST stream=true (SSE), httpx",
                lambda: http.post("/v1/chat/completions", content=stream_body, headers=headers).raise_for_status(),
            ),
            (
                "HTTP POST, official openai client",
                lambda: client.chat.completions.create(model="rpra", messages=MESSAGES),
            ),
        ]
        timings = timed_interleaved(paths, n, args.warmup)
        http.close()
    finally:
        stop()
    rows = [row(name, timings[name]) for name, _ in paths]
    print(f"\nRPRA service overhead: instant scripted models, fixed predictor, in-memory store; n={n} per row (round-robin), "
          f"server={args.server}, loopback 127.0.0.1, {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")  # fmt: skip
    print(f"{'path':<38}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'req/s':>9}")
    for name, p50, p90, p99, mean, rps in rows:
        print(f"{name:<38}{p50:>9.2f}{p90:>9.2f}{p99:>9.2f}{mean:>9.2f}{rps:>9.0f}")
    base = rows[1][1]
    for name, p50, *_ in rows[3:]:
        print(f"overhead of '{name}' over graph.ainvoke: +{p50 - base:.2f} ms at p50 ({p50 / base:.1f}x)")


if __name__ == "__main__":
    main()
