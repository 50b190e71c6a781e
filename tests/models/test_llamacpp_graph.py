"""The RPRA graph end to end on real llama.cpp: a scripted small model keeps or defers."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage

from rpra_agent.core.policy import ThresholdPolicy
from rpra_agent.graph import build_rpra_graph, decisions_from_state
from rpra_agent.models import load_chat_model
from rpra_agent.predictors import ZeroShotPredictor
from rpra_agent.predictors.prefix import PrefixSharingPredictor
from rpra_agent.store import InMemoryDecisionStore
from rpra_agent.testing.gguf import scripted_pieces

SMALL_OK = "Small model: Paris."
SMALL_BAD = "Small model: not sure."
LARGE = "Large model: Paris, on the Seine."
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def models(scripted_gguf):
    def load(reply, grade=None, name=None):
        return load_chat_model(f"gguf:{scripted_gguf(reply=reply, grade=grade, name=name)}?n_ctx=2048&seed=0")

    return {
        "confident": load(SMALL_OK, "great", "small_great.gguf"),
        "unsure": load(SMALL_BAD, "bad", "small_bad.gguf"),
        "large": load(LARGE, None, "large.gguf"),
    }


def _graph(small, large, store, predictor=None, paradigm="pa"):
    return build_rpra_graph(
        small=small, large=large, predictor=predictor or ZeroShotPredictor(small),
        policy=ThresholdPolicy(threshold=0.5), paradigm=paradigm, store=store,
    )  # fmt: skip


@pytest.mark.parametrize("paradigm", ["pa", "verify"])
def test_confident_small_model_answers_itself(models, paradigm):
    store = InMemoryDecisionStore()
    state = _graph(models["confident"], models["large"], store, paradigm=paradigm).invoke(
        {"messages": [HumanMessage(QUESTION)]}
    )
    assert state["messages"][-1].content == SMALL_OK
    [decision] = decisions_from_state(state)
    assert (decision.route, decision.reason, decision.kind, decision.paradigm) == (
        "small",
        "predicted_ok",
        "answer",
        paradigm,
    )
    assert decision.prediction.grade == "great" and decision.prediction.p_acceptable > 0.999
    assert decision.prediction.method == "forward_pass" and decision.prediction.predictor == "zero_shot"
    assert decision.small_model == "gguf:small_great.gguf" and decision.large_model == "gguf:large.gguf"
    assert decision.threshold == 0.5
    assert decision.request == QUESTION and decision.response == SMALL_OK
    assert decision.legs["small"].output_tokens == len(scripted_pieces(SMALL_OK, grade="great"))
    assert "large" not in decision.legs
    assert [d.id for d in store.decisions()] == [decision.id]


def test_unsure_small_model_defers_to_the_large_one(models):
    store = InMemoryDecisionStore()
    state = _graph(models["unsure"], models["large"], store).invoke({"messages": [HumanMessage(QUESTION)]})
    assert [m.content for m in state["messages"]] == [QUESTION, LARGE]
    [decision] = decisions_from_state(state)
    assert (decision.route, decision.reason) == ("large", "predicted_low")
    assert decision.deferred
    assert decision.prediction.grade == "bad" and decision.prediction.p_acceptable < 1e-3
    assert decision.legs["large"].output_tokens == len(scripted_pieces(LARGE))
    assert "small" not in decision.legs
    assert store.decisions()[0].response == LARGE


async def test_async_and_streaming_emit_the_answering_models_tokens(models):
    graph = _graph(models["unsure"], models["large"], InMemoryDecisionStore())
    tokens = []
    async for chunk, _meta in graph.astream({"messages": [HumanMessage(QUESTION)]}, stream_mode="messages"):
        if isinstance(chunk, AIMessageChunk) and chunk.content:
            tokens.append(chunk.content)
    assert "".join(tokens) == LARGE  # the prediction pass is not streamed
    state = await graph.ainvoke({"messages": [HumanMessage(QUESTION)]})
    assert decisions_from_state(state)[0].route == "large"


def test_prefix_sharing_predictor_makes_the_answer_reuse_the_prediction_prefix(models):
    small = models["confident"]
    with small.lock:
        small.llama.reset()
    state = _graph(small, models["large"], InMemoryDecisionStore(), predictor=PrefixSharingPredictor(small)).invoke(
        {"messages": [HumanMessage(QUESTION)]}
    )
    answer = state["messages"][-1]
    assert answer.content == SMALL_OK
    [decision] = decisions_from_state(state)
    assert decision.prediction.predictor == "prefix_sharing" and decision.route == "small"
    predict = decision.legs["predict"]  # the prediction's own forward pass, on the small model
    assert predict.model == decision.small_model and predict.input_tokens > 0 and predict.latency_ms > 0
    prompt = answer.usage_metadata["input_tokens"]
    assert answer.usage_metadata["input_token_details"]["cache_read"] == prompt - 1  # evaluated once, by the prediction


@pytest.mark.parametrize("family", ["qwen2", "phi3"])
@pytest.mark.parametrize("predictor", [ZeroShotPredictor, PrefixSharingPredictor])
def test_the_graph_keeps_or_defers_on_real_tokenizers(scripted_family, family, predictor):
    from rpra_agent.models.llamacpp import ChatLlamaCpp

    def load(reply, grade=None):
        path = scripted_family(family, reply=reply, grade=grade)
        return ChatLlamaCpp(model_path=str(path), n_ctx=2048, seed=0, rpra_name=f"{family}:{grade}")

    large = load("The large model says Paris, on the Seine.")
    for small, route, reply in ((load(SMALL_OK, "great"), "small", SMALL_OK), (load(SMALL_BAD, "bad"), "large", None)):
        state = _graph(small, large, InMemoryDecisionStore(), predictor=predictor(small)).invoke(
            {"messages": [HumanMessage(QUESTION)]}
        )
        [decision] = decisions_from_state(state)
        assert decision.route == route and decision.prediction.method == "forward_pass"
        assert state["messages"][-1].content == (reply or "The large model says Paris, on the Seine.")


@pytest.mark.parametrize("family", ["qwen2", "phi3"])
def test_the_plan_is_one_forward_pass_on_real_tokenizers(family_gguf, family):
    """With tools bound, pa plans first: llama.cpp reads the choice over ``answer`` and the tool names in one pass."""
    from langchain_core.tools import tool

    from rpra_agent.models.llamacpp import ChatLlamaCpp
    from rpra_agent.testing import FixedPredictor, ScriptedChatModel

    @tool
    def search_documents(query: str) -> str:
        """Search the documents."""
        return "nothing"

    @tool
    def calculator(expression: str) -> str:
        """Evaluate arithmetic."""
        return "42"

    small = ChatLlamaCpp(model_path=str(family_gguf(family)), n_ctx=4096, seed=0, max_tokens=8, rpra_name=family)
    graph = build_rpra_graph(
        small=small,
        large=ScriptedChatModel(responses=["large"], rpra_name="large"),
        predictor=FixedPredictor({"bad": 1.0}),  # defer, so the random model's answer does not matter
        tools=[search_documents, calculator],
    )
    [decision] = decisions_from_state(graph.invoke({"messages": [HumanMessage(QUESTION)]}))
    assert "plan_error" not in decision.metadata, decision.metadata
    assert decision.metadata["plan"] in ("answer", "search_documents", "calculator")
    assert decision.legs["plan"].model == family and decision.legs["plan"].latency_ms > 0
