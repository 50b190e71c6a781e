"""ChatLlamaCpp's contract on real llama.cpp with synthesized models."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import START, MessagesState, StateGraph
from pydantic import BaseModel

from rpra_agent.core.errors import ConfigError
from rpra_agent.models import llamacpp as llamacpp_module
from rpra_agent.models.llamacpp import ChatLlamaCpp
from rpra_agent.testing.gguf import scripted_pieces

REPLY = "Paris is the capital of France."
CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'
STRUCTURED = '<tool_call>\n{"name": "Answer", "arguments": {"city": "Paris", "confidence": 0.9}}\n</tool_call>'


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


class Answer(BaseModel):
    """A city and how sure the model is."""

    city: str
    confidence: float


class Grade(BaseModel):
    """A grade."""

    grade: Literal["bad", "ok", "great"]


def _load(path, **kw) -> ChatLlamaCpp:
    return ChatLlamaCpp(model_path=str(path), n_ctx=1024, seed=0, **kw)


@pytest.fixture(scope="module")
def model(scripted_gguf) -> ChatLlamaCpp:
    return _load(scripted_gguf(reply=REPLY, grade="great"))


@pytest.fixture(scope="module")
def random_model(random_gguf) -> ChatLlamaCpp:
    return _load(random_gguf, temperature=0.8, max_tokens=96)


def _sum(chunks):
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    return full


def test_invoke_returns_the_reply_with_usage_and_metadata(model):
    messages = [SystemMessage("Be brief."), HumanMessage("Capital of France?")]
    msg = model.invoke(messages)
    assert msg.content == REPLY
    assert msg.tool_calls == []
    usage = msg.usage_metadata
    assert usage["output_tokens"] == len(scripted_pieces(REPLY, grade="great"))
    assert usage["input_tokens"] == model.get_num_tokens_from_messages(messages)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    meta = msg.response_metadata
    assert meta["finish_reason"] == "stop"
    assert meta["model_name"] == model.rpra_name and model.rpra_name.startswith("gguf:")
    assert meta["timings"]["eval_tokens"] >= 1


def test_stream_yields_token_chunks_then_usage(model):
    chunks = list(model.stream("hello"))
    texts = [c.content for c in chunks if c.content]
    assert "".join(texts) == REPLY
    assert texts == scripted_pieces(REPLY, grade="great")
    full = _sum(chunks)
    assert full.usage_metadata["output_tokens"] == len(texts)
    assert full.response_metadata["finish_reason"] == "stop"


def test_stop_strings_and_max_tokens(model):
    stopped = model.invoke("x", stop=["capital"])
    assert stopped.content == "Paris is the "
    assert stopped.response_metadata["finish_reason"] == "stop"
    cut = model.invoke("x", max_tokens=3)
    assert cut.content == "".join(scripted_pieces(REPLY, grade="great")[:3])
    assert cut.response_metadata["finish_reason"] == "length"
    streamed = "".join(c.content for c in model.stream("x", stop=["France"]))
    assert streamed == "Paris is the capital of "


async def test_async_invoke_and_stream_run_off_the_event_loop(model, monkeypatch):
    loop_thread = threading.get_ident()
    seen: list[tuple[int, bool]] = []
    real = llamacpp_module.stream_tokens

    def spy(*args, **kwargs):
        seen.append((threading.get_ident(), model.lock.locked()))
        return (yield from real(*args, **kwargs))

    monkeypatch.setattr(llamacpp_module, "stream_tokens", spy)
    assert (await model.ainvoke("hi")).content == REPLY
    assert "".join([c.content async for c in model.astream("hi")]) == REPLY
    assert len(seen) == 2
    assert all(ident != loop_thread and locked for ident, locked in seen)


def test_concurrent_calls_are_serialised_by_the_lock(model):
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda i: model.invoke(f"question {i}").content, range(8)))
    assert replies == [REPLY] * 8


def test_get_num_tokens_uses_the_model_tokenizer(model):
    assert model.get_num_tokens("abc") == 3  # one character per token in the synthesized vocabulary
    assert model.get_num_tokens("") == 0


def test_unknown_call_option_is_a_config_error(model):
    with pytest.raises(ConfigError, match="unsupported llama.cpp call options"):
        model.invoke("x", frobnicate=1)


# -- tools -------------------------------------------------------------------------
def test_auto_tool_choice_returns_a_parsed_tool_call(scripted_gguf):
    m = _load(scripted_gguf(reply=CALL))
    msg = m.bind_tools([add, shout]).invoke("what is 2+3?")
    assert msg.content == ""
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert msg.response_metadata["finish_reason"] == "tool_calls"
    streamed = _sum(list(m.bind_tools([add]).stream("what is 2+3?")))
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [("add", {"a": 2, "b": 3})]


def test_auto_tool_choice_lets_text_through_and_streams_it(model):
    bound = model.bind_tools([add])
    assert bound.invoke("hi").content == REPLY
    chunks = [c.content for c in bound.stream("hi") if c.content]
    assert "".join(chunks) == REPLY and len(chunks) > 1


@pytest.mark.parametrize("choice", ["add", "any", "required", {"type": "function", "function": {"name": "add"}}])
def test_forced_tool_choice_makes_even_a_random_model_call_the_tool(random_model, choice):
    msg = random_model.bind_tools([add], tool_choice=choice).invoke("hi")
    assert msg.invalid_tool_calls == []
    assert len(msg.tool_calls) >= 1
    for call in msg.tool_calls:
        assert call["name"] == "add"
        assert set(call["args"]) == {"a", "b"} and all(isinstance(v, int) for v in call["args"].values())


def test_unknown_tool_choice_is_a_config_error(model):
    with pytest.raises(ConfigError, match="tool_choice"):
        model.bind_tools([add], tool_choice="multiply")


def test_tool_history_is_rendered_for_the_template(model):
    history = [
        HumanMessage("2+3?"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]),
        ToolMessage("5", tool_call_id="c1"),
    ]
    assert model.bind_tools([add]).invoke(history).content == REPLY
    with model.lock:
        text = model.llama.detokenize(model.prompt_tokens(history, None), special=True).decode()
    assert '"name": "add"' in text and "<tool_response>\n5\n</tool_response>" in text


def test_structured_output_via_a_forced_tool_call(scripted_gguf, random_model):
    m = _load(scripted_gguf(reply=STRUCTURED))
    assert m.with_structured_output(Answer).invoke("capital?") == Answer(city="Paris", confidence=0.9)
    grade = random_model.with_structured_output(Grade).invoke("grade it")
    assert isinstance(grade, Grade) and grade.grade in {"bad", "ok", "great"}


# -- logprobs ------------------------------------------------------------------------
def test_logprobs_are_openai_format_plain_floats(model):
    msg = model.bind(logprobs=True, top_logprobs=3).invoke("hi")
    content = msg.response_metadata["logprobs"]["content"]
    assert [e["token"] for e in content] == scripted_pieces(REPLY, grade="great")
    for entry in content:
        assert type(entry["logprob"]) is float and entry["logprob"] > -1e-3
        assert len(entry["top_logprobs"]) == 3
        assert all(type(t["logprob"]) is float for t in entry["top_logprobs"])
        assert entry["top_logprobs"][0]["token"] == entry["token"]
    assert content[0]["top_logprobs"][1]["token"] == "great"  # the scripted grade (one token) is the runner-up
    assert -16 < content[0]["top_logprobs"][1]["logprob"] < -14
    streamed = _sum(list(model.stream("hi", logprobs=True, top_logprobs=2)))
    assert len(streamed.response_metadata["logprobs"]["content"]) == len(content)


def test_logprobs_checkpoint_cleanly_through_langgraph(model):
    bound = model.bind(logprobs=True, top_logprobs=2)

    def call(state: MessagesState):
        return {"messages": [bound.invoke(state["messages"])]}

    graph = (
        StateGraph(MessagesState).add_node("call", call).add_edge(START, "call").compile(checkpointer=InMemorySaver())
    )
    config = {"configurable": {"thread_id": "t1"}}
    out = graph.invoke({"messages": [HumanMessage("hi")]}, config)
    saved = graph.get_state(config).values["messages"][-1]
    assert saved.response_metadata["logprobs"] == out["messages"][-1].response_metadata["logprobs"]
    serde = JsonPlusSerializer()
    again = serde.loads_typed(serde.dumps_typed(out["messages"][-1]))
    assert again.response_metadata["logprobs"] == out["messages"][-1].response_metadata["logprobs"]
    json.dumps(out["messages"][-1].response_metadata)  # plain JSON types only


# -- file validation -----------------------------------------------------------------
def test_missing_file_directory_and_non_gguf_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        ChatLlamaCpp(model_path=str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="is a directory"):
        ChatLlamaCpp(model_path=str(tmp_path))
    text = tmp_path / "model.gguf"
    text.write_text("this is not a model")
    with pytest.raises(ConfigError, match="not a GGUF file"):
        ChatLlamaCpp(model_path=str(text))


def test_truncated_and_corrupt_files_are_config_errors(tmp_path, scripted_gguf):
    data = scripted_gguf(reply=REPLY).read_bytes()
    for name, blob in [("tail.gguf", data[:-4096]), ("head.gguf", data[:200]), ("noise.gguf", b"GGUF" + b"\xff" * 64)]:
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(ConfigError, match=r"corrupt|truncated|unsupported"):
            ChatLlamaCpp(model_path=str(path))


def _write_duplicate_vocab_gguf(path):
    import gguf
    import numpy as np

    from rpra_agent.testing._gguf_vocab import base_vocab

    tokens, types = base_vocab()
    tokens[-1] = tokens[-2]  # two tokens with the same string: llama.cpp would abort the process
    rng = np.random.default_rng(0)
    n_embd, n_ff = 64, 128
    w = gguf.GGUFWriter(str(path), arch="llama")
    for add_kv, value in [
        (w.add_context_length, 512), (w.add_embedding_length, n_embd), (w.add_block_count, 1),
        (w.add_feed_forward_length, n_ff), (w.add_head_count, 4), (w.add_head_count_kv, 2),
        (w.add_layer_norm_rms_eps, 1e-5), (w.add_tokenizer_model, "llama"), (w.add_token_list, tokens),
        (w.add_token_scores, [0.0] * len(tokens)), (w.add_token_types, types),
    ]:  # fmt: skip
        add_kv(value)

    def mat(r, c):
        return rng.normal(0, 0.02, (r, c)).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(len(tokens), n_embd))
    for name, shape in [("attn_q", (n_embd, n_embd)), ("attn_k", (32, n_embd)), ("attn_v", (32, n_embd)),
                        ("attn_output", (n_embd, n_embd)), ("ffn_gate", (n_ff, n_embd)), ("ffn_up", (n_ff, n_embd)),
                        ("ffn_down", (n_embd, n_ff))]:  # fmt: skip
        w.add_tensor(f"blk.0.{name}.weight", mat(*shape))
    for name in ("blk.0.attn_norm", "blk.0.ffn_norm", "output_norm"):
        w.add_tensor(f"{name}.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("output.weight", mat(len(tokens), n_embd))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_duplicate_token_strings_are_refused_before_llama_cpp_sees_them(tmp_path):
    path = _write_duplicate_vocab_gguf(tmp_path / "dup.gguf")
    with pytest.raises(ConfigError, match="duplicate token strings"):
        ChatLlamaCpp(model_path=str(path))


def test_a_file_without_chat_template_falls_back_to_chatml(tmp_path, caplog):
    from rpra_agent.testing.gguf import write_random_gguf

    path = write_random_gguf(tmp_path / "plain.gguf", chat_template=None)
    with caplog.at_level("WARNING"):
        m = _load(path, max_tokens=4)
    assert "no chat template" in caplog.text
    with m.lock:
        text = m.llama.detokenize(m.prompt_tokens([HumanMessage("hi")]), special=True).decode()
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert m.invoke("hi").usage_metadata["output_tokens"] >= 1
