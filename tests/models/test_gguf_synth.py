"""The GGUF synthesizer writes real models that llama.cpp loads and runs."""

from __future__ import annotations

import math

import pytest
from llama_cpp import Llama

from rpra_agent.testing.gguf import GRADE_WORDS, scripted_pieces, write_random_gguf, write_scripted_gguf


def _llama(path, **kw) -> Llama:
    return Llama(model_path=str(path), n_ctx=512, verbose=False, **kw)


def _chat(llm: Llama, text: str, **kw):
    return llm.create_chat_completion(messages=[{"role": "user", "content": text}], max_tokens=200, **kw)


@pytest.mark.parametrize(
    "reply",
    [
        "Paris.",
        "Paris is the capital of France.\nIt is great, isn't it?",
        "aaaa aaaa aaaa",
        "great",
        "Ünïcödé → ok\n\n- bullet\n- bullet",
        '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>',
    ],
)
def test_scripted_model_emits_exact_reply(tmp_path, reply):
    llm = _llama(write_scripted_gguf(tmp_path / "m.gguf", reply=reply))
    for prompt in ("hi", "something entirely different, with <tags> and\nnewlines"):
        out = _chat(llm, prompt, temperature=0.8)
        assert out["choices"][0]["message"]["content"] == reply
        assert out["choices"][0]["finish_reason"] == "stop"
        assert out["usage"]["completion_tokens"] == len(scripted_pieces(reply))


@pytest.mark.parametrize("grade", GRADE_WORDS)
def test_scripted_grade_word_is_one_token_and_dominates_the_grades(tmp_path, grade):
    llm = _llama(write_scripted_gguf(tmp_path / "m.gguf", reply="Berlin is in Germany.", grade=grade), logits_all=True)
    words = [llm.tokenize(b"\n" + w.encode(), add_bos=False)[1:] for w in GRADE_WORDS]
    assert all(len(w) == 1 for w in words) and len({w[0] for w in words}) == 3
    out = _chat(llm, "What is the capital?", logprobs=True, top_logprobs=5)
    assert out["choices"][0]["message"]["content"] == "Berlin is in Germany."
    top = {t["token"]: float(t["logprob"]) for t in out["choices"][0]["logprobs"]["content"][0]["top_logprobs"]}
    assert top[grade] > -20  # the grade's word is the runner-up
    mass = {w: math.exp(top.get(w, -1e9)) for w in GRADE_WORDS}
    assert mass[grade] / sum(mass.values()) > 0.999


def test_random_model_generates_and_is_deterministic(tmp_path):
    a = write_random_gguf(tmp_path / "a.gguf", seed=3)
    b = write_random_gguf(tmp_path / "b.gguf", seed=3)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != write_random_gguf(tmp_path / "c.gguf", seed=4).read_bytes()
    llm = _llama(a)
    out = llm.create_chat_completion(messages=[{"role": "user", "content": "hello"}], max_tokens=16, seed=1)
    assert out["usage"]["completion_tokens"] >= 1
    assert llm.metadata["tokenizer.chat_template"].startswith("{% for message in messages %}")


def test_pieces_are_distinct_and_avoid_grade_tokens():
    reply = "ok ok ok, great great: bad\nbad"
    pieces = scripted_pieces(reply, grade="great")
    assert "".join(pieces) == reply
    assert len(set(pieces)) == len(pieces)
    assert pieces[0] not in {"b", "o"}
    for p in pieces:
        if len(p) > 1:
            assert not any(p in w for w in GRADE_WORDS)
    assert "\n" not in pieces


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reply": ""}, "non-empty"),
        ({"reply": "a\u2581b"}, "U\\+2581"),
        ({"reply": "x", "grade": "superb"}, "not one of"),
        ({"reply": "x", "grades": ("good", "great")}, "distinct first"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_scripted_gguf(tmp_path / "m.gguf", **kwargs)


def test_words_give_word_level_tokens_without_breaking_the_script(tmp_path):
    words = ["the", "capital", "of", "France", "great", "grade", "assistant", "Paris"]
    plain = _llama(write_random_gguf(tmp_path / "plain.gguf"))
    worded = _llama(write_random_gguf(tmp_path / "words.gguf", words=words))
    text = b"the capital of France"
    assert len(plain.tokenize(text, add_bos=False)) == len(text)
    assert len(worded.tokenize(text, add_bos=False)) == 4
    scripted = _llama(write_scripted_gguf(tmp_path / "s.gguf", reply="Paris, of course.", grade="ok", words=words))
    assert (
        _chat(scripted, "the capital of France? great grade")["choices"][0]["message"]["content"] == "Paris, of course."
    )
    assert len(scripted.tokenize(b"\ngreat", add_bos=False)) == 2  # the grade word stays one token after a newline
