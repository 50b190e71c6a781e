"""Bad configuration and data: a clear error that says what to fix, and no data lost.

Each case: a threshold out of range, an unknown model string, a corrupt GGUF, a
malformed dataset line, an oversized request (to the service and to the graph).
"""

import json
import math

import httpx
import pytest
from langchain_core.messages import HumanMessage
from typer.testing import CliRunner

from rpra_agent import ConfigError, DatasetError, ModelStringError, ThresholdPolicy, build_rpra_graph
from rpra_agent import decisions_from_state as decisions
from rpra_agent.cli import commands  # noqa: F401  (registers the commands)
from rpra_agent.cli.app import app
from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.middleware import RPRAMiddleware
from rpra_agent.models import load_chat_model
from rpra_agent.service.app import create_app
from rpra_agent.service.config import Settings
from rpra_agent.service.engine import ChatEngine
from rpra_agent.testing import FixedPredictor, InMemoryDecisionStore, ScriptedChatModel
from tests.fixtures_service import serve_app

runner = CliRunner()


# -- thresholds ----------------------------------------------------------------------
@pytest.mark.parametrize("value", [1.5, -0.1, math.nan, "0.5"])
def test_threshold_out_of_range_is_a_config_error_naming_the_fix(value):
    with pytest.raises(ConfigError, match="threshold"):
        ThresholdPolicy(threshold=value)  # type: ignore[arg-type]


def test_deployment_threshold_from_the_environment_is_checked():
    env = {"RPRA_SMALL_MODEL": "openai:s", "RPRA_LARGE_MODEL": "openai:l"}
    with pytest.raises(
        ConfigError, match=r"RPRA_THRESHOLD \(or rpra serve --threshold\) must be a probability in \[0, 1\]"
    ):
        Settings.from_env({**env, "RPRA_THRESHOLD": "1.5"})
    with pytest.raises(ConfigError, match=r"RPRA_THRESHOLD \(or rpra serve --threshold\): 'high' is not a valid float"):
        Settings.from_env({**env, "RPRA_THRESHOLD": "high"})


def test_rpra_serve_with_a_bad_threshold_exits_2_before_opening_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["serve", "--small", "openai:s", "--large", "openai:l", "--threshold", "7"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "RPRA_THRESHOLD (or rpra serve --threshold) must be a probability" in text
    assert list(tmp_path.iterdir()) == []  # no database file was created


# -- model strings --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpt-4o-mini", "did you mean 'openai:gpt-4o-mini'"),
        ("hf:meta-llama/Llama-3", "unknown model scheme 'hf'"),
        ("openai:", "names no model"),
        ("openai:gpt-4o?temprature=0", r"unknown openai option\(s\) \['temprature'\]"),
        ("openai:gpt-4o?model=other", "unknown openai option|remove the model= option"),
        ("gguf:/m.gguf?n_ctxx=4", r"unknown gguf option\(s\) \['n_ctxx'\]"),
        ("", "empty model string"),
    ],
)
def test_unknown_model_strings_say_what_is_supported(spec, message, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(ModelStringError, match=message):
        load_chat_model(spec)


def test_the_middleware_rejects_a_bad_large_model_string_at_construction():
    with pytest.raises(ModelStringError, match="unknown model scheme"):
        RPRAMiddleware("claude:opus")


# -- corrupt GGUF files (llama.cpp would abort the whole process on some of them) ------
def _corruptions(tmp_path):
    pytest.importorskip("gguf")
    from rpra_agent.testing.gguf import write_random_gguf

    good = write_random_gguf(tmp_path / "good.gguf").read_bytes()
    cases = {
        "random_bytes.gguf": bytes(range(256)) * 8,
        "empty.gguf": b"",
        "truncated.gguf": good[: len(good) // 2],
        "header_only.gguf": good[:64],
        "magic_then_garbage.gguf": b"GGUF" + b"\xff" * 200,
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    return [tmp_path / name for name in cases]


def test_corrupt_gguf_files_are_config_errors_not_crashes(tmp_path):
    pytest.importorskip("llama_cpp")
    for path in _corruptions(tmp_path):
        with pytest.raises(ConfigError, match=str(path.name)):
            load_chat_model(f"gguf:{path}")
    with pytest.raises(ConfigError, match="not found"):
        load_chat_model(f"gguf:{tmp_path / 'missing.gguf'}")


def test_rpra_serve_on_a_corrupt_gguf_exits_2_without_creating_the_log(tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp")
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 40)
    db = tmp_path / "log.db"
    result = runner.invoke(
        app, ["serve", "--small", f"gguf:{bad}", "--large", "openai:l", "--database-url", f"sqlite:///{db}"]
    )
    assert result.exit_code == 2 and "bad.gguf" in result.output and "Traceback" not in result.output
    assert not db.exists()


# -- datasets -------------------------------------------------------------------------
def _dataset_lines() -> list[str]:
    header = {"rpra_dataset": {"name": "t", "weak": "w", "strong": "s", "score_range": [0, 10], "attribution": "x"}}
    items = [{"id": f"q{i}", "prompt": f"p{i}", "responses": {"w": {"score": 5}, "s": {"score": 9}}} for i in range(6)]
    return [json.dumps(header)] + [json.dumps(i) for i in items]


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ('{"id": "q9", "prompt": "p", "responses": {"w": {"score": 50}}}', "responses.w.score", "outside"),
        ('{"id": "q9", "prompt": "p", "responses": ', None, "not valid JSON"),
        ('{"id": "q1", "prompt": "dup", "responses": {}}', "id", "duplicate id"),
        ('["not", "an", "object"]', None, "expected a JSON object"),
    ],
)
def test_a_malformed_dataset_line_is_named_by_number_and_nothing_is_skipped(tmp_path, bad, field, message):
    lines = _dataset_lines()
    lines.insert(4, bad)  # line 5 of the file
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(path)
    assert (info.value.line, info.value.path) == (5, str(path))
    if field:
        assert info.value.field is not None and info.value.field.startswith(field.split(".")[0])
    assert "line 5" in str(info.value)
    path.write_text("\n".join(_dataset_lines()) + "\n")
    assert len(load_dataset(path)) == 6  # the same file without the bad line loads every item


def test_rpra_eval_on_a_malformed_dataset_exits_2_naming_the_line(tmp_path):
    lines = _dataset_lines()
    lines.insert(3, "{oops")
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["eval", "--dataset", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "line 4" in result.output and "Traceback" not in result.output


# -- oversized requests ---------------------------------------------------------------
def _engine():
    small = ScriptedChatModel(responses=["small"], rpra_name="small")
    large = ScriptedChatModel(responses=["large"], rpra_name="large")
    store = InMemoryDecisionStore()
    return ChatEngine(small=small, large=large, predictor=FixedPredictor(), store=store, model_name="m"), small, store


def test_oversized_requests_get_413_and_write_nothing():
    engine, small, store = _engine()
    auth = {"authorization": "Bearer sk-k-0123456789", "content-type": "application/json"}
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}).encode()

    def chunks():  # no content-length: the limit applies while the body streams in
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    with serve_app(create_app(engine, api_key="sk-k-0123456789", max_body_bytes=2048)) as url:
        declared = httpx.post(f"{url}/v1/chat/completions", headers=auth, content=big)
        streamed = httpx.post(f"{url}/v1/chat/completions", headers=auth, content=chunks())
        ok = httpx.post(
            f"{url}/v1/chat/completions",
            headers=auth,
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
    for r in (declared, streamed):
        assert r.status_code == 413
        assert r.json() == {
            "error": {
                "message": "The request body is larger than the limit of 2048 bytes.",
                "type": "invalid_request_error",
                "param": None,
                "code": "request_too_large",
            }
        }
    assert ok.status_code == 200
    # only the accepted request reached the models and the log
    assert len(small.calls) == 1 and len(store.decisions()) == 1 and len(store.runs()) == 1


def test_rejected_requests_write_nothing_to_the_log():
    engine, small, store = _engine()
    auth = {"authorization": "Bearer sk-k-0123456789"}
    with serve_app(create_app(engine, api_key="sk-k-0123456789")) as url:
        post = lambda body, headers=auth: httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body)  # noqa: E731
        msgs = [{"role": "user", "content": "hi"}]
        statuses = [
            post({"model": "m", "messages": msgs}, {"authorization": "Bearer wrong"}).status_code,
            post({"model": "other", "messages": msgs}).status_code,
            post({"model": "m", "messages": []}).status_code,
            post({"model": "m", "messages": [{"role": "tool", "content": "x"}]}).status_code,
            post({"model": "m", "messages": msgs, "n": 2}).status_code,
        ]
    assert statuses == [401, 404, 400, 400, 400]
    assert small.calls == [] and store.decisions() == [] and store.runs() == {}


def test_an_oversized_request_to_the_graph_defers_instead_of_failing(tmp_path):
    pytest.importorskip("llama_cpp")
    from rpra_agent.predictors import ZeroShotPredictor
    from rpra_agent.testing.gguf import write_scripted_gguf

    path = write_scripted_gguf(tmp_path / "small.gguf", reply="short answer", grade="great")
    small = load_chat_model(f"gguf:{path}?n_ctx=1024&n_threads=1")
    large = ScriptedChatModel(responses=["the large model's answer"], rpra_name="large")
    store = InMemoryDecisionStore()
    graph = build_rpra_graph(small=small, large=large, predictor=ZeroShotPredictor(small), store=store)
    out = graph.invoke({"messages": [HumanMessage("word " * 2000)]})  # far beyond the small model's 1024 tokens
    (d,) = decisions(out)
    assert (d.route, d.reason, d.metadata["predictor_error"]) == (
        "large",
        "predictor_error",
        "ContextOverflowError while predicting",  # the prompt does not fit: named, and the step defers
    )
    assert out["messages"][-1].content == "the large model's answer"
    assert [x.id for x in store.decisions()] == [d.id]
    ok = graph.invoke({"messages": [HumanMessage("hi")]})  # the model is still usable afterwards
    assert decisions(ok)[0].route == "small" and ok["messages"][-1].content == "short answer"
