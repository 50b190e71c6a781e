"""The HTTP service under a bounded local load: requests/s, p50/p99 latency, errors.

Run from the repository root (loopback only; bounded by --requests and --seconds):

    .venv/bin/python benchmarks/bench_service_load.py                       # test doubles, SQLite log
    .venv/bin/python benchmarks/bench_service_load.py --engine gguf         # `rpra serve` on two scripted GGUFs
    .venv/bin/python benchmarks/bench_service_load.py --requests 2000 --concurrency 32,64 --stream

The server runs in a child process (so client and server do not share a GIL):
``--engine doubles`` serves ``create_app`` over the route mix of
``tests/reliability/_mix.py`` (every route, server-side tool steps, failures that
defer or degrade); ``--engine gguf`` runs the real ``rpra serve`` command with two
synthesized llama.cpp models (small predicts ``great`` for itself). Both record to
SQLite. The client is httpx's async client with ``--concurrency`` workers. After
each row the log is checked: one stored decision per decision the responses report.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KEY = "sk-bench-0123456789"


def serve_doubles(port: int, db: str) -> None:
    """Child process: the mix engine behind the real FastAPI app and uvicorn."""
    import logging

    import uvicorn

    from rpra_agent import FaultPolicy
    from rpra_agent.service.app import create_app
    from rpra_agent.service.engine import ChatEngine
    from rpra_agent.store import open_store
    from tests.reliability._mix import MixPredictor, add, mix_models

    logging.disable(logging.WARNING)
    small, large = mix_models()
    engine = ChatEngine(
        small=small, large=large, predictor=MixPredictor(), store=open_store(f"sqlite:///{db}"), tools=[add],
        model_name="rpra", faults=FaultPolicy(large_attempts=2, backoff_s=0.0, on_large_failure="small"),
    )  # fmt: skip
    app = create_app(engine, api_key=KEY)

    @app.middleware("http")
    async def _forget(request: Any, call_next: Any) -> Any:  # keep the doubles' call logs from growing
        small.calls.clear()
        small.plan_prompts.clear()
        large.calls.clear()
        return await call_next(request)

    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    finally:
        engine.store.close()  # type: ignore[union-attr]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(engine: str, port: int, db: Path, tmp: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPRA_")}
    if engine == "doubles":
        code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.bench_service_load import serve_doubles; serve_doubles({port}, {str(db)!r})"
        cmd = [sys.executable, "-c", code]
    else:
        from rpra_agent.testing.gguf import write_scripted_gguf

        small = write_scripted_gguf(tmp / "small.gguf", reply="Paris is the capital of France.", grade="great")
        large = write_scripted_gguf(tmp / "large.gguf", reply="Paris.", grade="great")
        env["RPRA_API_KEY"] = KEY
        cmd = [
            sys.executable, "-c", "from rpra_agent.cli import main; main()", "serve", "--port", str(port),
            "--model-name", "rpra", "--small", f"gguf:{small}?n_threads=1", "--large", f"gguf:{large}?n_threads=1",
            "--database-url", f"sqlite:///{db}", "--log-level", "warning",
        ]  # fmt: skip
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    sys.exit("the server did not come up")


def _body(i: int, engine: str, stream: bool) -> dict[str, Any]:
    if engine == "doubles":
        from tests.reliability._mix import request_for

        kind, _ = request_for(i)
        text = f"{kind} request number {i}"
    else:
        text = f"What is the capital of France? (request {i})"
    return {"model": "rpra", "messages": [{"role": "user", "content": text}], "stream": stream}


async def load(
    url: str, engine: str, n: int, concurrency: int, seconds: float, stream: bool, offset: int
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    decisions: list[str] = []
    next_i = 0
    deadline = time.monotonic() + seconds
    headers = {"authorization": f"Bearer {KEY}"}

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_i
        while next_i < n and time.monotonic() < deadline:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/chat/completions", json=_body(offset + i, engine, stream), headers=headers)
                text = r.text
                latencies.append(time.perf_counter() - t0)
                statuses[str(r.status_code)] += 1
                if r.status_code == 200 and not stream:
                    decisions.extend(d["id"] for d in r.json()["rpra"]["decisions"])
                elif r.status_code == 200 and '"rpra"' not in text:
                    statuses["stream-without-metadata"] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {"latencies": latencies, "statuses": statuses, "decisions": decisions, "wall": wall}


def stored_ids(db: Path) -> Counter[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return Counter(row[0] for row in conn.execute("select id from rpra_decisions"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=["doubles", "gguf"], default="doubles")
    ap.add_argument("--requests", type=int, default=1000, help="per row (bounded)")
    ap.add_argument("--seconds", type=float, default=60.0, help="time cap per row")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--stream", action="store_true", help="stream=true (SSE)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rpra-svc-load-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # scratch removed at exit
    db = tmp / "log.db"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args.engine, port, db, tmp)
    try:
        wait_up(url, proc)
        asyncio.run(load(url, args.engine, 20, 4, 30, args.stream, offset=10**6))  # warm-up
        print(f"engine={args.engine} stream={args.stream} requests<={args.requests} per row, cap {args.seconds:.0f} s")
        print(f"{'conc':>5} {'done':>6} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
        offset = 0
        for conc in (int(c) for c in args.concurrency.split(",")):
            r = asyncio.run(load(url, args.engine, args.requests, conc, args.seconds, args.stream, offset))
            offset += args.requests
            lat = sorted(r["latencies"])
            p = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
            print(
                f"{conc:>5} {len(lat):>6} {len(lat) / r['wall']:>7.1f} {p[49] * 1000:>8.1f} {p[98] * 1000:>8.1f} "
                f"{lat[-1] * 1000:>8.1f}  {dict(r['statuses'])}",
                flush=True,
            )
            if not args.stream:
                time.sleep(1.0)  # let the writer's batch land
                stored = stored_ids(db)
                missing = [d for d in r["decisions"] if stored[d] != 1]
                print(
                    f"      decision log: {len(r['decisions'])} decisions reported, {len(missing)} missing or duplicated"
                )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
