"""The graphs of langgraph.json, loaded the way LangGraph's server loads them, and served by ``langgraph dev``.

Each test runs the graphs in a fresh subprocess (llama.cpp aborts the whole process on
some inputs, and the server imports the files itself), on synthesized GGUF models: no
network, no downloaded weights.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures_deploy import ROOT
from tests.fixtures_llama import _free_port

pytestmark = pytest.mark.llama

GRAPHS: dict[str, str] = json.loads((ROOT / "langgraph.json").read_text())["graphs"]
ASSISTANT_TOOLS = ["calculator", "convert_units", "query_decision_log", "read_document", "search_documents"]
SMALL_REPLY = "Paris."

# What langgraph_api.graph._graph_from_spec does with a "./path.py:attr" entry.
LOAD_LIKE_THE_SERVER = r"""
import importlib.util, json, sys
from langgraph.pregel import Pregel
path, attr = sys.argv[1].rsplit(":", 1)
name = path.replace("/", "__").replace(".py", "").replace(" ", "_").lstrip(".")
spec = importlib.util.spec_from_file_location(name, path)
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
graph = module.__dict__[attr]
assert isinstance(graph, Pregel), type(graph)
out = graph.invoke({"messages": [{"role": "user", "content": sys.argv[2]}]})
tools = sorted(t.name for t in getattr(module, "tools", []))
print(json.dumps({"answer": out["messages"][-1].content, "tools": tools, "nodes": sorted(graph.get_graph().nodes)}))
"""


def _models(request: pytest.FixtureRequest, tmp_path: Path, family: str) -> tuple[str, str]:
    """Model strings of a small model that answers SMALL_REPLY sure of itself, and a large one.

    ``toy`` is the synthesized 469-token vocabulary; other families carry a real model's
    tokenizer and chat template (``scripted_family``, from llama.cpp's vocab files).
    """
    if family == "toy":
        from rpra_agent.testing.gguf import write_scripted_gguf

        small = write_scripted_gguf(tmp_path / "small.gguf", reply=SMALL_REPLY, grade="great")
        large = write_scripted_gguf(tmp_path / "large.gguf", reply="Paris, France.", grade="great")
    else:
        scripted_family = request.getfixturevalue("scripted_family")
        small = scripted_family(family, reply=SMALL_REPLY, grade="great")
        large = scripted_family(family, reply="Paris, France.", grade="great")
    # The assistant's tool prompt (over 3,000 tokens on the toy and Phi-3 vocabularies) does not fit
    # the 2048-token context these two models get by default: raise it, as the README tells deployers to.
    options = "" if family == "qwen2" else "?n_ctx=8192"
    return f"gguf:{small}{options}", f"gguf:{large}{options}"


def _env(request: pytest.FixtureRequest, tmp_path: Path, family: str) -> dict[str, str]:
    small, large = _models(request, tmp_path, family)
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "kb.md").write_text("The office opens at 9am.")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RPRA_", "LANGSMITH_", "LANGCHAIN_"))}
    env.update(
        RPRA_SMALL_MODEL=small,
        RPRA_LARGE_MODEL=large,
        RPRA_DATABASE_URL=f"sqlite:///{tmp_path / 'decisions.db'}",
        RPRA_DOCS_DIR=str(docs),
        RPRA_PREDICTOR="zero-shot",  # a trusted small model; the default (guarded) defers until the log holds evidence
        LANGSMITH_TRACING="false",
        LANGGRAPH_CLI_NO_ANALYTICS="1",
    )
    return env


CASES = [("rpra_qa", "toy"), ("rpra_qa", "qwen2"), ("rpra_assistant", "toy"), ("rpra_assistant", "qwen2")]
CASES += [("rpra_assistant", "phi3")]  # Phi-3's template drops the system turn that carries the tools


@pytest.mark.parametrize(("name", "family"), CASES)
def test_each_graph_loads_the_way_the_server_loads_it_and_answers(request, tmp_path, name, family):
    proc = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-P", "-c", LOAD_LIKE_THE_SERVER, GRAPHS[name], "What is the capital of France?"],
        cwd=ROOT, env=_env(request, tmp_path, family), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    died = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
    assert proc.returncode == 0, f"{died}; stderr ends: {proc.stderr[-1500:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["answer"] == SMALL_REPLY
    if name == "rpra_assistant":  # every shipped tool is bound, query_decision_log's schema included
        assert result["tools"] == ASSISTANT_TOOLS and "tools" in result["nodes"]


@pytest.fixture
def langgraph_dev(request, tmp_path) -> Iterator[tuple[str, Path]]:
    """``langgraph dev`` on langgraph.json, on 127.0.0.1 (a free port), Qwen2-tokenizer models; stopped by its PID."""
    cli = Path(sys.executable).with_name("langgraph")
    try:
        import langgraph_api  # noqa: F401
    except ImportError:
        cli = Path("/nonexistent")
    if not cli.exists():
        missing = "the langgraph CLI is not installed: pip install 'rpra-agent[langgraph]'"
        if os.environ.get("CI", "").lower() == "true":  # scripts/test.sh installs it (extra 'all')
            pytest.fail(missing)
        pytest.skip(missing)
    port = _free_port()
    log = tmp_path / "langgraph_dev.log"
    # The server keeps its state in ./.langgraph_api: run it in a folder that links to the repository's files.
    workdir = tmp_path / "deploy"
    workdir.mkdir()
    for entry in ("langgraph.json", "graphs"):
        (workdir / entry).symlink_to(ROOT / entry)
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [str(cli), "dev", "--host", "127.0.0.1", "--port", str(port), "--no-browser", "--no-reload",
             "--config", "langgraph.json"],
            cwd=workdir, env=_env(request, tmp_path, "qwen2"), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "langgraph dev did not answer within 120 s"
                time.sleep(0.25)
            yield url, log
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and any worker it started
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def test_langgraph_dev_serves_both_graphs(langgraph_dev):
    url, log = langgraph_dev
    with httpx.Client(base_url=url, timeout=300) as client:
        found = client.post("/assistants/search", json={}).json()
        assert sorted(a["graph_id"] for a in found) == sorted(GRAPHS)
        for name in sorted(GRAPHS):
            body = {"assistant_id": name, "input": {"messages": [{"role": "user", "content": "Capital of France?"}]}}
            try:
                out = client.post("/runs/wait", json=body)
            except httpx.TransportError as exc:
                pytest.fail(f"{name}: the server died ({exc}); its log ends: {log.read_text()[-1500:]}")
            assert out.status_code == 200, out.text
            state = out.json()
            assert "__error__" not in state, (state, log.read_text()[-3000:])
            assert state["messages"][-1]["content"] == SMALL_REPLY
            (decision,) = state["rpra_decisions"]
            assert (decision["route"], decision["reason"]) == ("small", "predicted_ok")
