"""Model strings: parsing, options, errors and the OpenAI-compatible workarounds (no network)."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from rpra_agent.core.errors import ConfigError, ModelStringError
from rpra_agent.models import load_chat_model
from rpra_agent.models.openai_compat import ChatOpenAICompatible, is_openai_url
from rpra_agent.models.registry import parse_model_string


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def mul(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


class City(BaseModel):
    """A city."""

    name: str


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gguf:/m/model.gguf", ("gguf", "/m/model.gguf", {})),
        ("GGUF:/m/model.gguf?n_ctx=4096&n_threads=2", ("gguf", "/m/model.gguf", {"n_ctx": "4096", "n_threads": "2"})),
        ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini", {})),
        (
            "openai:local?base_url=http://127.0.0.1:8080/v1",
            ("openai", "local", {"base_url": "http://127.0.0.1:8080/v1"}),
        ),
    ],
)
def test_parse_model_string(spec, expected):
    assert parse_model_string(spec) == expected


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "empty model string"),
        ("gpt-4o", "did you mean 'openai:gpt-4o'"),
        ("hf:meta-llama/Llama-3", "unknown model scheme 'hf'.*gguf:.*openai:"),
        ("gguf:", "names no model"),
        ("gguf:/m.gguf?n_ctx", "cannot parse the options"),
    ],
)
def test_bad_model_strings_say_what_is_supported(spec, match):
    with pytest.raises(ModelStringError, match=match):
        parse_model_string(spec)


def test_gguf_options_from_query_and_kwargs(scripted_gguf):
    path = scripted_gguf(reply="hi")
    model = load_chat_model(f"gguf:{path}?n_ctx=256&seed=7&temperature=0&max_tokens=9", temperature=0.5)
    assert (model.n_ctx, model.seed, model.max_tokens, model.temperature) == (256, 7, 9, 0.5)
    assert model.rpra_name == f"gguf:{path.name}"
    assert model.invoke("x").content == "hi"


def test_gguf_bad_options_and_paths(scripted_gguf, tmp_path):
    path = scripted_gguf(reply="hi")
    with pytest.raises(ModelStringError, match=r"unknown gguf option\(s\) \['bogus'\]; supported: .*n_ctx"):
        load_chat_model(f"gguf:{path}?bogus=1")
    with pytest.raises(ModelStringError, match="n_ctx"):
        load_chat_model(f"gguf:{path}?n_ctx=lots")
    with pytest.raises(ConfigError, match="GGUF model file not found"):
        load_chat_model(f"gguf:{tmp_path}/nope.gguf")


def test_openai_needs_a_key_only_for_openai_itself(monkeypatch):
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_chat_model("openai:gpt-4o-mini")
    local = load_chat_model("openai:qwen", base_url="http://127.0.0.1:8080/v1")
    assert local.openai_api_key.get_secret_value() == "sk-no-key-required"
    assert local.compat_mode and local.rpra_name == "openai:qwen"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    assert load_chat_model("openai:qwen").openai_api_base == "http://127.0.0.1:9999/v1"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    real = load_chat_model("openai:gpt-4o-mini", base_url="https://api.openai.com/v1")
    assert real.openai_api_key.get_secret_value() == "sk-test" and not real.compat_mode


def test_a_base_url_that_is_not_http_is_refused_and_its_password_is_not_echoed(monkeypatch):
    for url in ("notaurl", "ftp://host/v1", "http://u:hunter2@:80/v1"):
        with pytest.raises(ModelStringError, match="base_url must be an http.s. URL with a host") as err:
            load_chat_model("openai:qwen", base_url=url)
        assert "hunter2" not in str(err.value)
    with pytest.raises(ModelStringError, match="base_url must be"):
        load_chat_model("openai:qwen?base_url=127.0.0.1:8080/v1")  # no scheme
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8080")
    with pytest.raises(ModelStringError, match="OPENAI_BASE_URL must be an http.s. URL"):
        load_chat_model("openai:qwen")


def test_is_openai_url():
    assert is_openai_url(None) and is_openai_url("https://api.openai.com/v1")
    assert not is_openai_url("http://127.0.0.1:8000/v1") and not is_openai_url("http://vllm.internal/v1")


def _local() -> ChatOpenAICompatible:
    return load_chat_model("openai:local", base_url="http://127.0.0.1:1/v1", max_tokens=7)


def test_max_tokens_goes_to_extra_body_for_local_servers():
    payload = _local()._get_request_payload([HumanMessage("hi")])
    assert "max_tokens" not in payload and "max_completion_tokens" not in payload
    assert payload["extra_body"] == {"max_tokens": 7}
    per_call = _local()._get_request_payload([HumanMessage("hi")], max_tokens=3, logprobs=True)
    assert per_call["extra_body"] == {"max_tokens": 3}
    assert per_call["top_logprobs"] == 1


def test_tool_choice_any_becomes_forced_or_auto_for_local_servers():
    one = _local().bind_tools([add], tool_choice="any")
    assert one.kwargs["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    many = _local().bind_tools([add, mul], tool_choice="required")
    assert many.kwargs["tool_choice"] == "auto"
    assert _local().bind_tools([add], tool_choice="auto").kwargs["tool_choice"] == "auto"


def test_structured_output_uses_function_calling_for_local_servers():
    chain = _local().with_structured_output(City)
    binding = chain.first
    assert binding.kwargs["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    assert "response_format" not in binding.kwargs


def test_token_counting_is_offline(monkeypatch):
    import tiktoken

    def refuse(*args, **kwargs):
        raise AssertionError("tried to load a tokenizer")

    monkeypatch.setattr(tiktoken, "get_encoding", refuse)
    monkeypatch.setattr(tiktoken, "encoding_for_model", refuse)
    model = _local()
    assert model.get_num_tokens("") == 0
    assert model.get_num_tokens("a" * 40) == 10
    assert model.get_num_tokens_from_messages([HumanMessage("a" * 40)]) == 3 + 4 + 10
