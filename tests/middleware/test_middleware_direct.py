"""RPRAMiddleware called directly with a stub handler, as LangChain's own middleware tests do."""

import pytest
from langchain.agents.middleware.types import ExtendedModelResponse, ModelRequest, ModelResponse
from langchain.agents.structured_output import ToolStrategy
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.errors import GraphInterrupt
from pydantic import BaseModel

from rpra_agent import AlwaysLarge, ConfigError, Decision, FaultPolicy, ThresholdPolicy
from rpra_agent.core.step_prompts import ANSWER_PROMPT, REASON_PROMPT, SHARE_PROMPT
from rpra_agent.middleware import RPRAMiddleware
from rpra_agent.testing import FixedPredictor, InMemoryDecisionStore, ScriptedChatModel, grade_logprobs

HIGH, LOW = {"great": 0.9, "ok": 0.1}, {"bad": 0.9, "ok": 0.1}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Answer(BaseModel):
    value: int


class Stub:
    """A handler that answers per model and records every request it gets."""

    def __init__(self, fail=()):
        self.requests: list[ModelRequest] = []
        self.fail = set(fail)

    def _reply(self, request):
        self.requests.append(request)
        name = request.model.rpra_name
        if name in self.fail:
            raise ConnectionError(f"{name} is down")
        return ModelResponse(
            result=[
                AIMessage(f"{name} says hi", usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5})
            ]
        )

    def __call__(self, request):
        return self._reply(request)

    async def acall(self, request):
        return self._reply(request)


def make_request(small=None, state=None):
    small = small or ScriptedChatModel(responses=["private thoughts"], rpra_name="small")
    return ModelRequest(
        model=small,
        messages=[HumanMessage("What is 2+3?")],
        system_message=SystemMessage("Be terse."),
        tools=[add],
        tool_choice=None,
        response_format=ToolStrategy(Answer),
        state=state or {"messages": [HumanMessage("What is 2+3?")]},
    )


def make_mw(dist=HIGH, **kw):
    large = ScriptedChatModel(responses=["unused"], rpra_name="large")
    store = kw.pop("store", InMemoryDecisionStore())
    predictor = kw.pop("predictor", FixedPredictor(dist))
    return RPRAMiddleware(large, predictor=predictor, store=store, **kw), store


def decision_of(result: ExtendedModelResponse) -> Decision:
    (d,) = result.command.update["rpra_decisions"]
    return Decision.from_dict(d)


def test_high_prediction_keeps_the_small_model_and_the_request_untouched():
    mw, store = make_mw(HIGH)
    stub, request = Stub(), make_request()
    result = mw.wrap_model_call(request, stub)
    assert isinstance(result, ExtendedModelResponse)
    assert result.model_response.result[0].content == "small says hi"
    assert stub.requests == [request]  # the very same request object: nothing was rewritten
    d = decision_of(result)
    assert (d.route, d.reason, d.kind, d.step) == ("small", "predicted_ok", "answer", 0)
    assert d.small_model == "small" and d.large_model == "large"
    assert d.legs["small"].input_tokens == 3 and "predict" in d.legs and "large" not in d.legs
    assert d.request == "What is 2+3?" and d.response == "small says hi"
    assert store.decisions() == [d]
    assert result.command.update["rpra_step"] == 1 and result.command.update["rpra_deferrals"] == 0


def test_low_prediction_reissues_the_same_request_to_the_large_model():
    mw, store = make_mw(LOW)
    stub, request = Stub(), make_request()
    result = mw.wrap_model_call(request, stub)
    (sent,) = stub.requests  # PA: the small model never answered
    assert sent.model is mw.large
    assert sent.tools == request.tools and sent.system_message is request.system_message
    assert sent.response_format is request.response_format and sent.messages is request.messages
    d = decision_of(result)
    assert (d.route, d.reason) == ("large", "predicted_low")
    assert d.prediction is not None and d.prediction.grade == "bad"
    assert result.command.update["rpra_deferrals"] == 1


def test_the_predictor_sees_system_prompt_messages_and_tool_names():
    predictor = FixedPredictor(HIGH)
    mw, _ = make_mw(predictor=predictor)
    mw.wrap_model_call(make_request(state={"messages": [], "rpra_task": "math"}), Stub())
    (asked,) = predictor.requests
    assert [m.type for m in asked.messages] == ["system", "human"]
    assert asked.tool_names == ("add",) and asked.task == "math" and asked.kind == "answer"


def test_predictor_error_defers_and_is_recorded():
    mw, _ = make_mw(predictor=FixedPredictor(error="garbage"))
    stub = Stub()
    d = decision_of(mw.wrap_model_call(make_request(), stub))
    assert (d.route, d.reason, d.prediction) == ("large", "predictor_error", None)
    assert d.metadata["predictor_error"] == "garbage"
    assert [r.model.rpra_name for r in stub.requests] == ["large"]


def test_small_failure_defers_with_reason_small_error():
    mw, _ = make_mw(HIGH)
    stub = Stub(fail={"small"})
    result = mw.wrap_model_call(make_request(), stub)
    d = decision_of(result)
    assert (d.route, d.reason, d.error) == ("large", "small_error", "ConnectionError")
    assert result.model_response.result[0].content == "large says hi"
    assert "is down" not in d.response  # exception text never reaches the conversation


def test_large_failure_raises_an_exception_group_by_default_as_the_graph_does():
    mw, store = make_mw(LOW)
    with pytest.raises(ExceptionGroup) as info:
        mw.wrap_model_call(make_request(), Stub(fail={"large"}))
    assert [type(e) for e in info.value.exceptions] == [ConnectionError]
    assert store.decisions() == []


def test_large_failure_degrades_to_small_when_configured():
    mw, _ = make_mw(LOW, faults=FaultPolicy(on_large_failure="small"))
    stub = Stub(fail={"large"})
    result = mw.wrap_model_call(make_request(), stub)
    d = decision_of(result)
    assert (d.route, d.reason, d.degraded, d.error) == ("small", "large_error_degraded", True, "ConnectionError")
    assert result.model_response.result[0].content == "small says hi"


@pytest.mark.parametrize("where", ["handler", "predictor"])
def test_interrupts_pass_through_untouched(where):
    class Interrupting(FixedPredictor):
        def predict(self, request):
            raise GraphInterrupt(())

    predictor = Interrupting(HIGH) if where == "predictor" else FixedPredictor(HIGH)
    mw, store = make_mw(predictor=predictor)

    def handler(request):
        raise GraphInterrupt(())

    with pytest.raises(GraphInterrupt):
        mw.wrap_model_call(make_request(), handler)
    assert store.decisions() == []


def test_budget_and_shadow_come_from_the_shared_policy():
    mw, _ = make_mw(LOW, policy=ThresholdPolicy(0.5, max_deferrals=1))
    state = {"messages": [], "rpra_step": 3, "rpra_deferrals": 1, "rpra_run_id": "r1"}
    d = decision_of(mw.wrap_model_call(make_request(state=state), Stub()))
    assert (d.route, d.reason, d.step, d.run_id) == ("small", "budget_exhausted", 3, "r1")
    mw, _ = make_mw(LOW, policy=ThresholdPolicy(0.5, shadow=True))
    d = decision_of(mw.wrap_model_call(make_request(), Stub()))
    assert (d.route, d.reason) == ("small", "shadow")


def test_baseline_policy_needs_no_predictor():
    mw, _ = make_mw(predictor=None, policy=AlwaysLarge())
    stub = Stub()
    d = decision_of(mw.wrap_model_call(make_request(), stub))
    assert (d.route, d.reason, d.prediction) == ("large", "forced", None)


def test_default_predictor_is_the_small_model_itself():
    small = ScriptedChatModel(
        responses=["great"], logprobs=grade_logprobs({"great": 0.8, "ok": 0.2}), rpra_name="small"
    )
    mw, _ = make_mw(predictor=None)
    d = decision_of(mw.wrap_model_call(make_request(small), Stub()))
    assert d.prediction is not None and d.prediction.predictor == "zero_shot"
    assert d.prediction.p_acceptable == pytest.approx(1.0)
    assert len(small.calls) == 1 and "Predicted grade:" in small.calls[0][-1].content


def test_rpra_reasons_privately_and_answers_with_the_reasoning_in_the_system_prompt():
    small = ScriptedChatModel(responses=["first thoughts", "second thoughts"], rpra_name="small")
    predictor = FixedPredictor(HIGH)
    mw, _ = make_mw(predictor=predictor, paradigm="rpra")
    stub = Stub()
    result = mw.wrap_model_call(make_request(small), stub)
    assert REASON_PROMPT in small.calls[0][0].content and "Be terse." in small.calls[0][0].content
    assert predictor.requests[0].reasoning == "first thoughts"
    (answer_request,) = stub.requests
    assert answer_request.model is small and answer_request.tools == [add]
    assert ANSWER_PROMPT.format(reasoning="second thoughts") in answer_request.system_message.content
    assert answer_request.system_message.content.startswith("Be terse.")
    assert all("thoughts" not in str(m.content) for m in result.model_response.result)
    d = decision_of(result)
    assert d.legs["reason"].output_tokens > 0 and d.route == "small"


def test_rpra_can_share_its_reasoning_with_the_large_model():
    small = ScriptedChatModel(responses=["my notes"], rpra_name="small")
    mw, _ = make_mw(LOW, paradigm="rpra", share_reasoning=True)
    stub = Stub()
    mw.wrap_model_call(make_request(small), stub)
    (sent,) = stub.requests
    assert sent.model is mw.large and SHARE_PROMPT.format(reasoning="my notes") in sent.system_message.content


def test_verify_predicts_on_the_draft_and_keeps_it_when_good():
    predictor = FixedPredictor(HIGH)
    mw, _ = make_mw(predictor=predictor, paradigm="verify")
    stub = Stub()
    result = mw.wrap_model_call(make_request(), stub)
    assert [r.model.rpra_name for r in stub.requests] == ["small"]
    assert predictor.requests[0].draft.content == "small says hi"
    assert result.model_response.result[0].content == "small says hi"
    mw, _ = make_mw(LOW, paradigm="verify")
    stub = Stub()
    result = mw.wrap_model_call(make_request(), stub)
    assert [r.model.rpra_name for r in stub.requests] == ["small", "large"]
    assert decision_of(result).legs.keys() >= {"small", "large"}


async def test_async_twin_records_through_aadd():
    class AsyncStore(InMemoryDecisionStore):
        used = []

        async def aadd(self, decision):
            self.used.append("aadd")
            await super().aadd(decision)

    mw, store = make_mw(LOW, store=AsyncStore())
    stub = Stub()
    result = await mw.awrap_model_call(make_request(), stub.acall)
    assert decision_of(result).route == "large"
    assert store.used == ["aadd"] and len(store.decisions()) == 1


def test_bad_configuration_is_rejected_at_construction():
    large = ScriptedChatModel(responses=["x"])
    with pytest.raises(ConfigError, match="paradigm"):
        RPRAMiddleware(large, paradigm="guess")
    with pytest.raises(ConfigError, match="on_large_failure"):
        RPRAMiddleware(large, faults=FaultPolicy(on_large_failure="retry"))


def test_the_large_model_may_be_a_model_string(scripted_models):
    large = ScriptedChatModel(responses=["from the string"], rpra_name="big")
    mw = RPRAMiddleware(scripted_models.register("big", large), predictor=FixedPredictor(LOW))
    assert mw.large is large
    stub = Stub()
    mw.wrap_model_call(make_request(), stub)
    assert stub.requests[0].model is large


def test_an_integer_task_tag_is_read_as_a_string_and_a_list_is_refused_before_any_call():
    mw, store = make_mw(HIGH)
    result = mw.wrap_model_call(make_request(state={"messages": [HumanMessage("q")], "rpra_task": 3}), Stub())
    assert decision_of(result).task == "3" and store.decisions()[0].task == "3"
    stub = Stub()
    with pytest.raises(ConfigError, match="rpra_task must be a string"):
        mw.wrap_model_call(make_request(state={"messages": [HumanMessage("q")], "rpra_task": {"a": 1}}), stub)
    assert stub.requests == []
