"""Grade prediction in one forward pass, and KV-cache prefix reuse, on real llama.cpp."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from rpra_agent.errors import PredictorError
from rpra_agent.models.llamacpp import ChatLlamaCpp
from rpra_agent.models.prefix_predictor import PrefixSharingPredictor
from rpra_agent.prediction import PredictionRequest
from rpra_agent.predictors import ZeroShotPredictor

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


def test_grade_words_sharing_a_first_token_are_refused(graded):
    _, model = graded
    with pytest.raises(PredictorError, match="distinct first tokens"):
        model.grade_distribution(CONVERSATION, ["good", "great", "bad"])


def test_prediction_and_answer_share_the_kv_cache_prefix(scripted_gguf):
    model = ChatLlamaCpp(model_path=str(scripted_gguf(reply="Paris is the capital.", grade="great")), n_ctx=2048)
    predictor = PrefixSharingPredictor(model)
    request = PredictionRequest(messages=tuple(CONVERSATION))
    conversation_tokens = len(model.prompt_tokens(CONVERSATION))
    with model.lock:  # what the answer prompt has after the user's text
        tail = len(model.llama.tokenize(b"<|im_end|>\n<|im_start|>assistant\n", add_bos=False, special=True))

    # Cold: the predict pass evaluates the whole prompt.
    with model.lock:
        model.llama.reset()
    prediction = predictor.predict(request)
    assert prediction.grade == "great"
    predict_stats = model.last_stats
    assert predict_stats["cached_tokens"] == 0
    assert predict_stats["evaluated_tokens"] == predict_stats["prompt_tokens"] > conversation_tokens

    # The answer reuses everything up to the end of the user's text: only the template's tail is evaluated.
    answer = model.invoke(CONVERSATION)
    assert answer.content == "Paris is the capital."
    assert answer.usage_metadata["input_token_details"]["cache_read"] == conversation_tokens - tail
    assert model.last_stats["evaluated_tokens"] == tail
    assert answer.response_metadata["timings"]["prompt_eval_tokens"] == tail  # llama.cpp's own count

    # Without reuse the answer evaluates its whole prompt.
    with model.lock:
        model.llama.reset()
    cold = model.invoke(CONVERSATION)
    assert cold.usage_metadata["input_token_details"]["cache_read"] == 0
    assert cold.response_metadata["timings"]["prompt_eval_tokens"] == conversation_tokens


def test_verify_draft_is_reused_by_the_prediction(scripted_gguf):
    model = ChatLlamaCpp(model_path=str(scripted_gguf(reply="Paris is the capital.", grade="great")), n_ctx=2048)
    draft = model.invoke(CONVERSATION)
    request = PredictionRequest(messages=tuple(CONVERSATION), draft=AIMessage(draft.content))
    PrefixSharingPredictor(model).predict(request)
    stats = model.last_stats
    assert stats["cached_tokens"] > len(model.prompt_tokens(CONVERSATION))  # into the draft's tokens
    assert stats["evaluated_tokens"] == stats["prompt_tokens"] - stats["cached_tokens"]


def test_prefix_sharing_prompt_appends_the_question_to_the_last_user_turn():
    from rpra_agent.testing import FixedPredictor  # noqa: F401 - the predictor needs no model to build a prompt

    predictor = PrefixSharingPredictor(model=None)  # type: ignore[arg-type]
    prompt = predictor.build_prompt(PredictionRequest(messages=tuple(CONVERSATION), reasoning="Paris, surely."))
    assert prompt[0] == CONVERSATION[0]
    assert prompt[1].content.startswith("What is the capital of France?\n\n[Self-assessment")
    assert "Paris, surely." in prompt[1].content and prompt[1].content.endswith("one of: bad, ok, great.")
