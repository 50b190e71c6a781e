"""Grade reads on real tokenizers: whole label sequences, exact probabilities, ``10`` vs ``1``, every spelling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.models.llamacpp import ChatLlamaCpp
from rpra_agent.predictors import ZeroShotPredictor
from rpra_agent.predictors.prefix import PrefixSharingPredictor
from tests.fixtures_llama import REAL_FAMILIES

PAPER = GradeScale.paper()
TEN = GradeScale.ten_point()
CUSTOM = GradeScale(("F", "C", "C+", "A", "A+"), (0.0, 1.0, 2.0, 3.0, 4.0), "C+", "letters")
CONVERSATION = [SystemMessage("You are a geography assistant."), HumanMessage("What is the capital of France?")]
REPLY = "Paris is the capital."
PREFILL = "[Self-check: a judge will grade my next reply. My prediction:]\n"


def _brute_force(model: ChatLlamaCpp, tokens: list[int], seq: tuple[int, ...]) -> float:
    """log P(seq | tokens), each step evaluated from an empty cache."""
    llama, total = model.llama, 0.0
    for i, tok in enumerate(seq):
        with model.lock:
            llama.reset()
            llama.eval(tokens + list(seq[:i]))
            import llama_cpp

            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama.ctx, -1), shape=(llama.n_vocab(),))
            z = logits.astype(np.float64)
            total += float(z[tok] - (z.max() + math.log(np.exp(z - z.max()).sum())))
    return total


@pytest.mark.parametrize("family", REAL_FAMILIES)
@pytest.mark.parametrize("scale", [PAPER, TEN, CUSTOM], ids=lambda s: s.name)
def test_label_sequences_are_distinct_and_scored_exactly_with_kv_reuse(family_gguf, family, scale):
    from rpra_agent.models._llama_grades import _sequence_logprobs, inner_paths, label_sequences
    from rpra_agent.models._llama_run import last_logits

    model = ChatLlamaCpp(model_path=str(family_gguf(family)), n_ctx=1024, n_threads=1)
    seqs = label_sequences(model.llama, scale.labels, "\n")
    assert {seqs[s] for s in seqs} == set(scale.labels)  # every label readable
    primary = {label: [s for s in seqs if seqs[s] == label] for label in scale.labels}
    if scale is TEN:
        assert not set(primary["1"]) & set(primary["10"])  # "10" is never read as "1"
    tokens = model.prompt_tokens(CONVERSATION)
    first = (inner_paths(list(seqs)) or [()])[0]
    with model.lock:
        rows, _ = last_logits(model.llama, tokens)
        fast = _sequence_logprobs(model.llama, len(tokens), rows, list(seqs))
        assert model.llama.n_tokens == len(tokens)  # the cache holds the prompt again
        rows, _ = last_logits(model.llama, tokens, first)  # the longest label path rides on the prompt
        riding = _sequence_logprobs(model.llama, len(tokens), rows, list(seqs), first)
        assert model.llama.n_tokens == len(tokens)
    for seq in list(seqs)[:8]:
        assert fast[seq] == pytest.approx(_brute_force(model, tokens, seq), abs=2e-3)
        assert riding[seq] == pytest.approx(fast[seq], abs=2e-3)
    dist = model.grade_distribution(CONVERSATION, scale.labels, prefill=PREFILL)
    assert set(dist) == set(scale.labels) and sum(dist.values()) == pytest.approx(1.0)
    assert all(type(p) is float for p in dist.values())


CASES = [
    (TEN, "10", "10"),
    (TEN, "10", " 10"),
    (TEN, "1", "1"),
    (TEN, "1", " 1"),
    (PAPER, "great", "great"),
    (PAPER, "great", "Great"),
    (PAPER, "ok", " ok"),
    (CUSTOM, "C", "C"),
    (CUSTOM, "A+", "A+"),
]


@pytest.mark.parametrize("family", REAL_FAMILIES)
@pytest.mark.parametrize(("scale", "grade", "text"), CASES, ids=[f"{g}-as-{t!r}" for _, g, t in CASES])
def test_every_spelling_of_the_scripted_grade_is_read_as_its_label(scripted_family, family, scale, grade, text):
    path = scripted_family(family, reply=REPLY, grade=grade, grades=scale.labels, grade_text=text)
    model = ChatLlamaCpp(model_path=str(path), n_ctx=1024, n_threads=1)
    for prefill in ("", PREFILL):
        dist = model.grade_distribution(CONVERSATION, scale.labels, prefill=prefill)
        assert dist[grade] > 0.99, (prefill, {k: round(v, 4) for k, v in dist.items()})


@pytest.mark.parametrize("family", ["qwen2", "phi3"])
def test_scripted_real_tokenizer_model_answers_and_predicts_through_the_predictors(scripted_family, family):
    model = ChatLlamaCpp(model_path=str(scripted_family(family, reply=REPLY, grade="ok")), n_ctx=2048, n_threads=1)
    request = PredictionRequest(messages=tuple(CONVERSATION))
    prefix = PrefixSharingPredictor(model)
    with model.lock:
        model.llama.reset()
    prediction = prefix.predict(request)
    assert prediction.grade == "ok" and prediction.method == "forward_pass"
    answer = model.invoke(CONVERSATION, temperature=0.0)
    assert answer.content == REPLY
    assert answer.usage_metadata["input_tokens"] - answer.usage_metadata["input_token_details"]["cache_read"] == 1
    assert ZeroShotPredictor(model).predict(request).grade == "ok"
    ten = PrefixSharingPredictor(model, scale=TEN).predict(request)
    assert set(ten.distribution) == set(TEN.labels)
