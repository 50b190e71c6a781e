"""The graphs langgraph.json points at import and run, configured from the environment."""

import json
import uuid

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from rpra_agent import ConfigError, decisions_from_state
from rpra_agent.service.config import ENV
from rpra_agent.store import open_store
from rpra_agent.testing import ScriptedChatModel, grade_logprobs
from tests.fixtures_deploy import ROOT, import_fresh

GRAPHS = json.loads((ROOT / "langgraph.json").read_text())["graphs"]


@pytest.fixture
def env(monkeypatch, tmp_path):
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    monkeypatch.setenv("RPRA_DATABASE_URL", url)
    # these tests model a trusted small model; the default (guarded) defers until the log holds evidence
    monkeypatch.setenv("RPRA_PREDICTOR", "zero-shot")
    return monkeypatch, url


def load(entry):
    path, _, attr = entry.partition(":")
    module = import_fresh(path.removeprefix("./"))
    return module, getattr(module, attr)


def test_langgraph_json_points_at_both_graphs():
    assert set(GRAPHS) == {"rpra_qa", "rpra_assistant"}
    for entry in GRAPHS.values():
        path, _, attr = entry.partition(":")
        assert (ROOT / path).is_file() and attr == "graph"


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_every_graph_imports_and_answers(env, scripted_models, name):
    monkeypatch, url = env
    monkeypatch.setenv("RPRA_SMALL_MODEL", "scripted:small?reply=Paris.&grade=great")
    monkeypatch.setenv("RPRA_LARGE_MODEL", "scripted:large?reply=Paris, France.")
    module, graph = load(GRAPHS[name])
    out = graph.invoke({"messages": [HumanMessage("Capital of France?")]})
    assert out["messages"][-1].content == "Paris."
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason, d.small_model) == ("small", "predicted_ok", "small")
    module.components.store.flush()
    with_store = open_store(url)
    try:
        assert [x.id for x in with_store.decisions()] == [d.id]
    finally:
        with_store.close()
        module.components.store.close()


def test_qa_reads_paradigm_and_threshold_from_the_environment(env, scripted_models):
    monkeypatch, _ = env
    monkeypatch.setenv("RPRA_SMALL_MODEL", "scripted:small?reply=small says&grade=bad")
    monkeypatch.setenv("RPRA_LARGE_MODEL", "scripted:large?reply=large says")
    monkeypatch.setenv("RPRA_PARADIGM", "verify")
    module, graph = load(GRAPHS["rpra_qa"])
    (d,) = decisions_from_state(graph.invoke({"messages": [HumanMessage("Hard question")]}))
    assert (d.paradigm, d.route, d.reason, d.threshold) == ("verify", "large", "predicted_low", 0.5)
    module.components.store.close()
    monkeypatch.setenv("RPRA_THRESHOLD", "0")  # nothing is below 0: the small model keeps the step
    module, graph = load(GRAPHS["rpra_qa"])
    (d,) = decisions_from_state(graph.invoke({"messages": [HumanMessage("Hard question")]}))
    assert (d.route, d.reason, d.threshold) == ("small", "predicted_ok", 0.0)
    module.components.store.close()


def test_assistant_runs_its_tools_and_turns_tool_errors_into_messages(env, scripted_models, tmp_path):
    monkeypatch, url = env
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kb.md").write_text("The office opens at 9am.")
    monkeypatch.setenv("RPRA_DOCS_DIR", str(docs))
    calls = [
        AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "c1"}]),
        AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "import os"}, "id": "c2"}]),
        AIMessage("", tool_calls=[{"name": "search_documents", "args": {"query": "office opens"}, "id": "c3"}]),
        AIMessage(
            "", tool_calls=[{"name": "query_decision_log", "args": {"sql": "delete from rpra_decisions"}, "id": "c4"}]
        ),
        "42, and the office opens at 9am.",
    ]
    script = iter(calls)

    def respond(messages):
        last = messages[-1].content
        return "great" if isinstance(last, str) and last.endswith("Predicted grade:") else next(script)

    small = ScriptedChatModel(responses=[respond], logprobs=grade_logprobs({"great": 1.0}), rpra_name="small")
    monkeypatch.setenv("RPRA_SMALL_MODEL", scripted_models.register("small", small))
    monkeypatch.setenv("RPRA_LARGE_MODEL", "scripted:large")
    module, graph = load(GRAPHS["rpra_assistant"])
    assert {t.name for t in small.bound_tools} == {
        "calculator",
        "convert_units",
        "search_documents",
        "read_document",
        "query_decision_log",
    }
    out = graph.invoke({"messages": [HumanMessage("What is 6*7 and when does the office open?")]})
    results = {m.tool_call_id: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert results["c1"].content == "42"
    assert results["c2"].status == "error" and results["c2"].content.startswith("Error:")
    assert "[kb.md]" in results["c3"].content
    assert results["c4"].content.startswith("Error: refused")
    assert out["messages"][-1].content == "42, and the office opens at 9am."
    assert [d.kind for d in decisions_from_state(out)] == ["action"] * 4 + ["answer"]
    module.components.store.close()


@pytest.mark.parametrize("entry", sorted(GRAPHS.values()))
def test_missing_configuration_names_the_variables(env, entry):
    with pytest.raises(ConfigError, match="RPRA_SMALL_MODEL, RPRA_LARGE_MODEL"):
        load(entry)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("RPRA_THRESHOLD", "high", r"RPRA_THRESHOLD \(or rpra serve --threshold\): 'high'"),
        ("RPRA_THRESHOLD", "1.5", "RPRA_THRESHOLD"),
        ("RPRA_PARADIGM", "guess", "RPRA_PARADIGM"),
        ("RPRA_MAX_STEPS", "0", "RPRA_MAX_STEPS"),
    ],
)
def test_invalid_configuration_names_the_variable(env, scripted_models, var, value, message):
    monkeypatch, _ = env
    monkeypatch.setenv("RPRA_SMALL_MODEL", "scripted:s")
    monkeypatch.setenv("RPRA_LARGE_MODEL", "scripted:l")
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=message):
        load(GRAPHS["rpra_qa"])


@pytest.mark.llama
def test_qa_graph_on_synthesized_gguf_models(env, scripted_gguf):
    monkeypatch, _ = env
    monkeypatch.setenv("RPRA_SMALL_MODEL", f"gguf:{scripted_gguf(reply='Paris.', grade='great')}")
    monkeypatch.setenv("RPRA_LARGE_MODEL", f"gguf:{scripted_gguf(reply='Paris, France.', grade='great')}")
    module, graph = load(GRAPHS["rpra_qa"])
    out = graph.invoke({"messages": [HumanMessage("Capital of France?")]})
    assert out["messages"][-1].content == "Paris."
    (d,) = decisions_from_state(out)
    assert d.route == "small" and d.prediction is not None and d.prediction.grade == "great"
    module.components.store.close()


@pytest.mark.llama
def test_the_default_predictor_defers_until_the_log_holds_evidence(env, scripted_gguf):
    monkeypatch, _ = env
    monkeypatch.delenv("RPRA_PREDICTOR")
    monkeypatch.setenv("RPRA_SMALL_MODEL", f"gguf:{scripted_gguf(reply='Paris.', grade='great')}")
    monkeypatch.setenv("RPRA_LARGE_MODEL", f"gguf:{scripted_gguf(reply='Paris, France.', grade='great')}")
    module, graph = load(GRAPHS["rpra_qa"])
    out = graph.invoke({"messages": [HumanMessage("Capital of France?")]})
    assert out["messages"][-1].content == "Paris, France."  # the self-report alone cannot keep the step small


@pytest.mark.postgres
def test_assistant_on_postgres_reads_the_log_through_a_reader_role(env, scripted_models, postgres_url):
    from rpra_agent.core.errors import ConfigError
    from rpra_agent.store import open_store
    from tools.decision_sql import create_reader_role

    monkeypatch, _ = env
    store = open_store(postgres_url)  # the store creates the rpra_* tables on first use
    store.upsert_run("r0", thread_id=None, paradigm="pa", config={}, status="completed")
    store.close()
    monkeypatch.setenv("RPRA_DATABASE_URL", postgres_url)
    query = {"sql": "select count(*) from rpra_runs"}
    script = iter([AIMessage("", tool_calls=[{"name": "query_decision_log", "args": query, "id": "q"}]), "counted"])

    def respond(messages):  # the zero-shot predictor asks the same model: answer its prompts with a grade
        last = messages[-1].content
        return "great" if isinstance(last, str) and last.endswith("Predicted grade:") else next(script)

    small = ScriptedChatModel(responses=[respond], logprobs=grade_logprobs({"great": 1.0}), rpra_name="small")
    monkeypatch.setenv("RPRA_SMALL_MODEL", scripted_models.register("small", small))
    monkeypatch.setenv("RPRA_LARGE_MODEL", "scripted:large")
    with pytest.raises(ConfigError, match="write|privilege"):  # the store's writer role is refused
        load(GRAPHS["rpra_assistant"])
    monkeypatch.setenv("RPRA_SQL_URL", create_reader_role(postgres_url, f"reader_{uuid.uuid4().hex[:8]}", "pw-1234"))
    module, graph = load(GRAPHS["rpra_assistant"])
    out = graph.invoke({"messages": [HumanMessage("How many runs?")]})
    tool_message = next(m for m in out["messages"] if m.type == "tool")
    assert "error" not in tool_message.content.lower() and out["messages"][-1].content == "counted"
