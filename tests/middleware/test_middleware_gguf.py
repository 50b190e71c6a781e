"""create_agent + RPRAMiddleware on real llama.cpp (synthesized GGUF models)."""

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelFallbackMiddleware, ModelRetryMiddleware
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel

from rpra_agent import decisions_from_state
from rpra_agent.middleware import RPRAMiddleware
from rpra_agent.testing import InMemoryDecisionStore, ScriptedChatModel

pytestmark = pytest.mark.llama


class Answer(BaseModel):
    value: int


@pytest.fixture
def llama(scripted_gguf):
    from rpra_agent.models import load_chat_model

    def make(reply, grade):
        return load_chat_model(f"gguf:{scripted_gguf(reply=reply, grade=grade)}")

    return make


@pytest.mark.parametrize(
    ("grade", "route", "answer"), [("great", "small", "Paris."), ("bad", "large", "Paris, France.")]
)
def test_the_small_model_predicts_its_own_grade_and_defers_when_low(llama, grade, route, answer):
    store = InMemoryDecisionStore()
    agent = create_agent(
        llama("Paris.", grade), middleware=[RPRAMiddleware(llama("Paris, France.", "great"), store=store)]
    )
    out = agent.invoke({"messages": [HumanMessage("Capital of France?")]})
    assert out["messages"][-1].content == answer
    (d,) = decisions_from_state(out)
    assert (d.route, d.prediction.grade, d.prediction.method) == (route, grade, "forward_pass")
    assert store.decisions() == [d]


async def test_rpra_reasoning_on_llama_stays_out_of_the_conversation(llama):
    agent = create_agent(
        llama("Paris.", "great"), middleware=[RPRAMiddleware(llama("Large.", "great"), paradigm="rpra")]
    )
    out = await agent.ainvoke({"messages": [HumanMessage("Capital of France?")]})
    assert [type(m).__name__ for m in out["messages"]] == ["HumanMessage", "AIMessage"]
    (d,) = decisions_from_state(out)
    assert d.route == "small" and d.legs["reason"].output_tokens > 0


def test_structured_output_survives_retry_and_fallback_on_llama(llama, random_gguf):
    from rpra_agent.models import load_chat_model

    backup = load_chat_model(f"gguf:{random_gguf}?max_tokens=256&n_ctx=4096")
    broken_large = ScriptedChatModel(responses=[ConnectionError("down")], rpra_name="large")
    retry = ModelRetryMiddleware(max_retries=1, initial_delay=0.0, jitter=False, on_failure="error")
    agent = create_agent(
        llama("Paris.", "bad"),
        response_format=Answer,
        middleware=[RPRAMiddleware(broken_large), ModelFallbackMiddleware(backup), retry],
    )
    out = agent.invoke({"messages": [HumanMessage("2+3?")]})
    assert isinstance(out["structured_response"], Answer)  # the grammar-bound fallback's tool call was parsed
    assert isinstance(out["messages"][1], AIMessage) and out["messages"][1].tool_calls[0]["name"] == "Answer"
    (d,) = decisions_from_state(out)
    assert (d.route, d.reason, d.kind) == ("large", "predicted_low", "answer")
    assert len(broken_large.calls) == 2  # retry (innermost) tried the large model twice, then fallback took over
