"""The llama.cpp path on real tokenizers: fixtures, file check, prompts, template quirks, forgery, context.

Each family's fixture is a tiny random-weight model carrying the complete tokenizer
(and chat template) of Qwen2, Llama 3, Phi-3, Gemma, Command-R or Llama 2 (no
template), copied from llama.cpp's vocab files (see tests/fixtures_llama.py).
"""

from __future__ import annotations

import collections
import time

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from rpra_agent.core.errors import RPRAError
from rpra_agent.models.llamacpp import ChatLlamaCpp, ContextOverflowError, check_gguf
from rpra_agent.testing.gguf import FAMILIES, family_vocab, write_tokenizer_gguf
from tests.fixtures_llama import REAL_FAMILIES

CALL = {"name": "lookup", "args": {"q": "x"}, "id": "call_1"}


@pytest.fixture(scope="module")
def models(family_gguf) -> dict[str, ChatLlamaCpp]:
    return {f: ChatLlamaCpp(model_path=str(family_gguf(f)), n_ctx=4096, n_threads=1) for f in REAL_FAMILIES}


def _reference_tokens(model: ChatLlamaCpp, dicts: list[dict[str, str]]) -> list[int]:
    """llama.cpp's own tokenization of the template rendered by llama-cpp-python's formatter."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from rpra_agent.models._llama_template import CHATML_TEMPLATE

    llama = model.llama
    template = model._info.chat_template or CHATML_TEMPLATE  # the file's own, or the fallback
    bos = llama._model.token_get_text(llama.token_bos())
    eos = llama._model.token_get_text(llama.token_eos())
    prompt = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)(
        messages=dicts
    ).prompt
    import llama_cpp

    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama._model.vocab)) and not prompt.startswith(bos)
    return list(llama.tokenize(prompt.encode(), add_bos=add_bos, special=True))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_fixture_builds_in_under_a_second_and_checks_in_under_half(family, vocab_dir, tmp_path):
    like = family_vocab(family, vocab_dir)
    builds, checks = [], []
    for i in range(2):  # best of two: the machine is shared
        start = time.perf_counter()
        path = write_tokenizer_gguf(tmp_path / f"{i}.gguf", like=like, chat_template=FAMILIES[family][1])
        builds.append(time.perf_counter() - start)
        start = time.perf_counter()
        info = check_gguf(path)
        checks.append(time.perf_counter() - start)
    assert min(builds) < 1.0, builds
    assert min(checks) < 0.5, checks
    assert info.n_vocab > 30_000 and info.context_length == 8192


@pytest.mark.parametrize("family", ["qwen2", "llama3", "gemma", "command-r", "llama2"])  # phi3: see below
def test_prompt_tokens_equal_llama_cpps_tokenization_of_the_rendered_template(models, family):
    model = models[family]
    dicts = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3+3, spelled out?"},
    ]
    messages = [
        SystemMessage("Be brief."),
        HumanMessage("What is 2+2?"),
        AIMessage("4."),
        HumanMessage(dicts[3]["content"]),
    ]
    assert model.prompt_tokens(messages) == _reference_tokens(model, dicts)


def test_sentencepiece_prompt_has_no_extra_space_tokens_at_message_boundaries(models):
    model = models["phi3"]  # SentencePiece, and its template drops the system role
    messages = [HumanMessage("What is 2+2?"), AIMessage("4."), HumanMessage("And 3+3?")]
    dicts = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."}]
    dicts.append({"role": "user", "content": "And 3+3?"})
    assert model.prompt_tokens(messages) == _reference_tokens(model, dicts)


def test_template_without_system_role_gets_system_text_and_tools_in_the_first_user_turn(models):
    model = models["phi3"]
    assert model._template.folds_system
    tools = [{"type": "function", "function": {"name": "lookup", "description": "Find.", "parameters": {}}}]
    tokens = model.prompt_tokens([SystemMessage("Answer in French."), HumanMessage("Hi")], tools)
    text = model.llama.detokenize(tokens, special=True).decode()
    assert "Answer in French." in text and '"name": "lookup"' in text
    assert text.index("<|user|>") < text.index("Answer in French.") < text.index("Hi") < text.index("<|assistant|>")


def test_model_without_template_gets_chatml_with_stop_strings_and_bos(models):
    model = models["llama2"]
    tokens = model.prompt_tokens([HumanMessage("Hi")])
    assert tokens[0] == model.llama.token_bos() and tokens[1] != model.llama.token_bos()
    assert model._template.stop == ["<|im_end|>", "<|im_start|>"]
    assert model._options(None, {})["stop"] == ["<|im_end|>", "<|im_start|>"]
    assert model.invoke("Hi", max_tokens=4).response_metadata["finish_reason"] in ("stop", "length")


@pytest.mark.parametrize("family", REAL_FAMILIES)
def test_no_special_token_can_be_forged_in_user_system_or_tool_content(models, family):
    model = models[family]
    llama = model.llama
    texts = model._info.special_texts
    ids = set()
    for text in texts:
        toks = llama.tokenize(text.encode(), add_bos=False, special=True)
        if len(toks) == 1:
            ids.add(toks[0])
    assert len(ids) == len(texts) > 0  # every CONTROL / USER_DEFINED token text of the vocabulary

    def specials(content: str) -> collections.Counter[int]:
        messages = [
            SystemMessage(content),
            HumanMessage(content),
            AIMessage("", tool_calls=[CALL]),
            ToolMessage(content, tool_call_id="call_1"),
            HumanMessage("x" + content + "x"),
        ]
        return collections.Counter(t for t in model.prompt_tokens(messages) if t in ids)

    baseline = specials("hello")
    for sep in (" ", "", "\n"):
        assert specials(sep.join(texts)) == baseline


def test_special_text_split_across_content_edge_cannot_form_a_token(models):
    model = models["qwen2"]
    ids = {model.llama.tokenize(b"<|im_end|>", add_bos=False, special=True)[0]}
    normal = model.prompt_tokens([HumanMessage("hi")])
    edge = model.prompt_tokens([HumanMessage("<|im_end"), HumanMessage("|>")])
    assert sum(t in ids for t in edge) == sum(t in ids for t in normal) + 1  # only the template's own


def test_n_ctx_defaults_to_the_trained_context_capped_by_the_kv_budget(family_gguf):
    path = str(family_gguf("qwen2"))
    assert ChatLlamaCpp(model_path=path).n_ctx == 8192  # the file's trained context
    info = check_gguf(path)
    capped = ChatLlamaCpp(model_path=path, kv_cache_mb=1024 * info.kv_bytes_per_token / 2**20)
    assert capped.n_ctx == 1024
    assert ChatLlamaCpp(model_path=path, n_ctx=600).n_ctx == 600


def test_a_prompt_that_does_not_fit_names_both_sizes(family_gguf):
    model = ChatLlamaCpp(model_path=str(family_gguf("qwen2")), n_ctx=64)
    with pytest.raises(ContextOverflowError) as err:
        model.invoke("word " * 200)
    assert isinstance(err.value, RPRAError)
    assert err.value.n_ctx == 64 and err.value.prompt_tokens > 64
    assert f"{err.value.prompt_tokens} tokens" in str(err.value) and "holds 64" in str(err.value)
    with pytest.raises(ContextOverflowError):
        model.grade_distribution([HumanMessage("word " * 200)], ["bad", "ok", "great"])
    assert model.invoke("hi", max_tokens=2).response_metadata["finish_reason"] in ("stop", "length")
