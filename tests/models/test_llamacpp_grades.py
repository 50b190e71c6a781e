"""Grade prediction in one forward pass, and KV-cache prefix reuse, on real llama.cpp."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.models.llamacpp import ChatLlamaCpp
from rpra_agent.predictors import ZeroShotPredictor
from rpra_agent.predictors.prefix import PrefixSharingPredictor

LABELS = ["bad", "ok", "great"]
CONVERSATION = [SystemMessage("You are a helpful geography assistant."), HumanMessage("What is the capital of France?")]


@pytest.fixture(scope="module", params=LABELS)
def graded(request, scripted_gguf) -> tuple[str, ChatLlamaCpp]:
    path = scripted_gguf(reply="Paris is the capital.", grade=request.param)
    return request.param, ChatLlamaCpp(model_path=str(path), n_ctx=2048, seed=0)


def test_grade_distribution_puts_the_mass_on_the_scripted_grade(graded):
    grade, model = graded
    dist = model.grade_distribution(CONVERSATION, LABELS)
    assert set(dist) == set(LABELS)
    assert all(type(p) is float for p in dist.values())
    assert sum(dist.values()) == pytest.approx(1.0)
    assert dist[grade] > 0.999


async def test_async_grade_distribution_matches(graded):
    grade, model = graded
    dist = await model.agrade_distribution(CONVERSATION, LABELS)
    assert max(dist, key=dist.__getitem__) == grade


def test_zero_shot_predictor_uses_the_forward_pass(graded):
    grade, model = graded
    prediction = ZeroShotPredictor(model).predict(PredictionRequest(messages=tuple(CONVERSATION)))
    assert prediction.method == "forward_pass"
    assert prediction.grade == grade
    assert prediction.version == model.rpra_name


def test_logprob_path_agrees_with_the_forward_pass(graded):
    grade, model = graded
    prediction = ZeroShotPredictor(model, method="logprobs").predict(PredictionRequest(messages=tuple(CONVERSATION)))
    assert prediction.method == "logprobs"
    assert prediction.grade == grade


def test_grade_words_sharing_a_first_token_are_read_by_their_whole_sequences(graded):
    grade, model = graded
    dist = model.grade_distribution(CONVERSATION, ["good", "great", "bad"])
    assert sum(dist.values()) == pytest.approx(1.0)
    if grade != "ok":
        assert dist[grade] > 0.999  # "good" and "great" share "g", yet they are told apart


def test_prediction_and_answer_share_the_kv_cache_prefix(scripted_gguf):
    model = ChatLlamaCpp(model_path=str(scripted_gguf(reply="Paris is the capital.", grade="great")), n_ctx=2048)
    predictor = PrefixSharingPredictor(model)
    request = PredictionRequest(messages=tuple(CONVERSATION))
    answer_prompt = len(model.prompt_tokens(CONVERSATION))

    # Cold: the prediction evaluates the answer prompt plus the self-check, once.
    with model.lock:
        model.llama.reset()
    prediction = predictor.predict(request)
    assert prediction.grade == "great" and prediction.method == "forward_pass"
    predict_stats = model.last_stats
    assert predict_stats["cached_tokens"] == 0
    assert predict_stats["evaluated_tokens"] == predict_stats["prompt_tokens"] > answer_prompt

    # The answer prompt is a token prefix of the prediction's: one token is re-evaluated.
    answer = model.invoke(CONVERSATION)
    assert answer.content == "Paris is the capital."
    assert answer.usage_metadata["input_tokens"] == answer_prompt
    assert answer.usage_metadata["input_token_details"]["cache_read"] == answer_prompt - 1
    assert model.last_stats["evaluated_tokens"] == 1
    timings = answer.response_metadata["timings"]  # llama.cpp's own counters
    assert timings["prompt_eval_tokens"] <= 1

    # The next prediction finds the answer prompt cached and evaluates only the self-check.
    predictor.predict(request)
    assert model.last_stats["cached_tokens"] == answer_prompt
    assert model.last_stats["evaluated_tokens"] == predict_stats["prompt_tokens"] - answer_prompt

    # Without reuse the answer evaluates its whole prompt.
    with model.lock:
        model.llama.reset()
    cold = model.invoke(CONVERSATION)
    assert cold.usage_metadata["input_token_details"]["cache_read"] == 0
    assert cold.response_metadata["timings"]["prompt_eval_tokens"] == answer_prompt


def test_verify_draft_is_reused_by_the_prediction(scripted_gguf):
    model = ChatLlamaCpp(model_path=str(scripted_gguf(reply="Paris is the capital.", grade="great")), n_ctx=2048)
    draft = model.invoke(CONVERSATION)
    request = PredictionRequest(messages=tuple(CONVERSATION), draft=AIMessage(draft.content))
    PrefixSharingPredictor(model).predict(request)
    stats = model.last_stats
    assert stats["cached_tokens"] > len(model.prompt_tokens(CONVERSATION))  # into the draft's tokens
    assert stats["evaluated_tokens"] == stats["prompt_tokens"] - stats["cached_tokens"]


def test_prefix_sharing_prompt_appends_the_question_to_the_last_user_turn():
    predictor = PrefixSharingPredictor(model=None)  # type: ignore[arg-type]
    prompt = predictor.build_prompt(PredictionRequest(messages=tuple(CONVERSATION), reasoning="Paris, surely."))
    assert prompt[0] == CONVERSATION[0]
    assert prompt[1].content.startswith("What is the capital of France?\n\n(Self-check, not part of the conversation")
    assert "Paris, surely." in prompt[1].content and prompt[1].content.endswith("one of: bad, ok, great.)")


def test_prefill_names_the_grades_and_ends_with_a_newline():
    predictor = PrefixSharingPredictor(model=None)  # type: ignore[arg-type]
    text = predictor.prefill(PredictionRequest(messages=tuple(CONVERSATION), kind="action", reasoning="Use the tool."))
    assert "my next tool action" in text and "as bad, ok or great." in text and "Use the tool." in text
    assert text.endswith("My prediction:]\n")


async def test_prefix_sharing_async_uses_the_prefill_pass(scripted_gguf):
    model = ChatLlamaCpp(model_path=str(scripted_gguf(reply="Paris is the capital.", grade="ok")), n_ctx=2048)
    prediction = await PrefixSharingPredictor(model).apredict(PredictionRequest(messages=tuple(CONVERSATION)))
    assert (prediction.grade, prediction.method, prediction.predictor) == ("ok", "forward_pass", "prefix_sharing")
