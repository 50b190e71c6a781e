"""The service on real llama.cpp (synthesized GGUF models): in-process and as `rpra serve`."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from rpra_agent.service.app import create_app
from rpra_agent.service.config import Settings, build_components
from rpra_agent.service.engine import ChatEngine
from tests.fixtures_service import serve_app

pytestmark = pytest.mark.llama
openai = pytest.importorskip("openai")


def test_deferral_through_llama_cpp_plain_and_streaming(scripted_gguf, tmp_path):
    settings = Settings(
        small_model=f"gguf:{scripted_gguf(reply='I am not sure.', grade='bad')}",
        large_model=f"gguf:{scripted_gguf(reply='Paris is the capital.', grade='great')}",
        database_url="memory://",
    )
    components = build_components(settings)
    with serve_app(create_app(ChatEngine.from_components(components, model_name="rpra"))) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
        raw = client.chat.completions.with_raw_response.create(
            model="rpra", messages=[{"role": "user", "content": "Capital of France?"}]
        )
        assert raw.parse().choices[0].message.content == "Paris is the capital."
        assert (raw.headers["x-rpra-route"], raw.headers["x-rpra-predicted-grade"]) == ("large", "bad")
        stream = client.chat.completions.create(
            model="rpra", messages=[{"role": "user", "content": "Capital of France?"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Paris is the capital."
    assert [d.route for d in components.store.decisions()] == ["large", "large"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rpra_serve_command_end_to_end(scripted_gguf, tmp_path):
    port, db = _free_port(), tmp_path / "log.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPRA_")}
    env["RPRA_API_KEY"] = "sk-serve"
    cmd = [
        sys.executable, "-c", "from rpra_agent.cli import main; main()", "serve", "--port", str(port), "--model-name", "local",
        "--small", f"gguf:{scripted_gguf(reply='Paris.', grade='great')}",
        "--large", f"gguf:{scripted_gguf(reply='Paris, France.', grade='great')}",
        "--database-url", f"sqlite:///{db}", "--log-level", "warning",
        "--predictor", "zero-shot",  # trust self-prediction (the default, guarded, defers without evidence)
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "rpra serve did not come up"
            time.sleep(0.1)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-serve", max_retries=0, timeout=60)
        raw = client.chat.completions.with_raw_response.create(
            model="local", messages=[{"role": "user", "content": "Capital of France?"}]
        )
        assert raw.parse().choices[0].message.content == "Paris."
        assert raw.headers["x-rpra-route"] == "small" and raw.headers["x-rpra-predicted-grade"] == "great"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="nope", max_retries=0).models.list()
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert "serving local at" in output and "sk-serve" not in output and "predictor=zero_shot" in output
    with sqlite3.connect(db) as conn:
        assert conn.execute("select route, reason from rpra_decisions").fetchall() == [("small", "predicted_ok")]
