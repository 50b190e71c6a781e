"""The HTTP service under concurrent load: every request answered, every decision logged once.

A bounded version of ``benchmarks/bench_service_load.py`` (which reports requests/s and
latency percentiles): 120 requests over 24 concurrent loopback connections, plain and
streaming, over every route of the mix (server-side tool steps, predictor and model
failures that defer or degrade), into SQLite.
"""

import asyncio
import json
from collections import Counter

import httpx

from rpra_agent import FaultPolicy
from rpra_agent.service.app import create_app
from rpra_agent.service.engine import ChatEngine
from rpra_agent.store import open_store
from tests.fixtures_service import serve_app
from tests.reliability._mix import EXPECTED, MixPredictor, add, mix_models, request_for

KEY = "sk-load-0123456789abcdef"
N, CONCURRENCY = 120, 24


async def _fire(url: str) -> list[tuple[str, int, list[dict]]]:
    sem = asyncio.Semaphore(CONCURRENCY)
    headers = {"authorization": f"Bearer {KEY}"}

    async def one(client: httpx.AsyncClient, i: int) -> tuple[str, int, list[dict]]:
        kind, _ = request_for(i)
        stream = i % 3 == 0
        body = {"model": "rpra", "messages": [{"role": "user", "content": f"{kind} request number {i}"}]}
        async with sem:
            r = await client.post("/v1/chat/completions", json={**body, "stream": stream}, headers=headers)
        if r.status_code != 200:
            return kind, r.status_code, []
        if not stream:
            return kind, 200, r.json()["rpra"]["decisions"]
        chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
        final = next(c for c in chunks if c.get("rpra"))
        assert r.text.rstrip().endswith("data: [DONE]")
        return kind, 200, final["rpra"]["decisions"]

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(one(client, i) for i in range(N)))


def test_concurrent_requests_are_all_answered_and_logged_exactly_once(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}", spool_path=str(tmp_path / "spool.jsonl"))
    small, large = mix_models()
    faults = FaultPolicy(large_attempts=2, backoff_s=0.0, on_large_failure="small")
    engine = ChatEngine(
        small=small, large=large, predictor=MixPredictor(), store=store, tools=[add], model_name="rpra", faults=faults
    )
    try:
        with serve_app(create_app(engine, api_key=KEY)) as url:
            results = asyncio.run(_fire(url))
        assert Counter(status for _, status, _ in results) == {200: N}
        for kind, _, decisions in results:
            assert [(d["route"], d["reason"]) for d in decisions] == EXPECTED[kind]
        reported = Counter(d["id"] for _, _, ds in results for d in ds)
        stored = Counter(d.id for d in store.decisions())
        assert reported == stored and set(reported.values()) == {1}
        assert len(store.runs()) == N
    finally:
        store.close()
