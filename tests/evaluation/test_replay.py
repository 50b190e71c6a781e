from __future__ import annotations

import dataclasses

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from rpra_agent.core.policy import ThresholdPolicy
from rpra_agent.evaluation.datasets import EvalItem, ModelResponse, binary_scale, scale_for
from rpra_agent.evaluation.runs.replay import (
    ReplayChatModel,
    ReplayError,
    ReplayJudge,
    item_message,
)
from rpra_agent.graph import build_rpra_graph, decisions_from_state
from rpra_agent.store import InMemoryDecisionStore
from rpra_agent.testing import FixedPredictor
from tests.evaluation.toy_data import STRONG, WEAK, toy_dataset


def test_replays_the_recorded_response_with_recorded_tokens() -> None:
    ds = toy_dataset(6)
    small, large = ReplayChatModel.for_dataset(ds)
    reply = small.invoke([HumanMessage("question 4 about chat?")])
    assert reply.content == ds.items[4].responses[WEAK].text
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == 14
    assert reply.response_metadata["replay_item"] == "q4"
    assert large.invoke(item_message(ds.items[4])).content == "strong answer 4"


async def test_async_and_id_lookup_win_over_text() -> None:
    ds = toy_dataset(6)
    small, _ = ReplayChatModel.for_dataset(ds)
    # The message id names the item even when the text is shared by two items.
    twin = dataclasses.replace(ds.items[1], id="twin", prompt=ds.items[0].prompt, messages=ds.items[0].messages)
    ds2 = dataclasses.replace(ds, items=(*ds.items, twin))
    small2, _ = ReplayChatModel.for_dataset(ds2)
    reply = await small2.ainvoke(item_message(twin))
    assert reply.response_metadata["replay_item"] == "twin"
    with pytest.raises(ReplayError, match="occurs 2 times"):
        small2.invoke([HumanMessage(ds.items[0].prompt)])
    assert (await small.ainvoke([SystemMessage("sys"), HumanMessage("question 0 about math?")])).content.startswith(
        "weak answer 0"
    )


def test_unknown_prompt_and_missing_model_are_clear_errors() -> None:
    ds = toy_dataset(3)
    small, _ = ReplayChatModel.for_dataset(ds)
    with pytest.raises(ReplayError, match="not in the recording"):
        small.invoke("what is the meaning of life?")
    other = ReplayChatModel(dataset=ds, recorded_model="nobody")
    with pytest.raises(ReplayError, match="no recorded response of 'nobody'"):
        other.invoke([HumanMessage("question 0 about math?")])


def test_graph_runs_on_replay_models_and_judge_grades_decisions() -> None:
    ds = toy_dataset(6)
    small, large = ReplayChatModel.for_dataset(ds)
    store = InMemoryDecisionStore()
    graph = build_rpra_graph(
        small=small,
        large=large,
        predictor=FixedPredictor({"great": 0.2, "bad": 0.8}),
        policy=ThresholdPolicy(0.5),
        store=store,
    )
    item = ds.items[2]
    out = graph.invoke({"messages": item_message(item), "rpra_task": item.category})
    (decision,) = decisions_from_state(out)
    assert decision.route == "large" and decision.response == "strong answer 2"
    assert decision.large_model == STRONG and decision.legs["large"].output_tokens == 42
    judge = ReplayJudge(ds)
    given, small_v, large_v = judge.judge_decision(decision, subjects=("given", "small", "large"))
    assert given.score == item.responses[STRONG].score and given.subject == "given"
    assert small_v.score == item.responses[WEAK].score
    assert large_v.grade == judge.scale.label_for(item.responses[STRONG].score or 0)
    assert given.decision_id == decision.id and given.judge == "replay:toy"


def test_judge_task_interface_matches_response_text() -> None:
    feedback = pytest.importorskip("rpra_agent.feedback.judge")
    ds = toy_dataset(6)
    judge = ReplayJudge(ds)
    item = ds.items[3]
    task = feedback.JudgeTask(
        conversation=tuple(item_message(item)),
        candidates=(
            feedback.Candidate(AIMessage(item.responses[STRONG].text or ""), "d1", "given"),
            feedback.Candidate(item.responses[WEAK].text or "", "d1", "small"),
        ),
    )
    v_strong, v_weak = judge.judge_task(task)
    assert v_strong.score == item.responses[STRONG].score
    assert v_weak.score == item.responses[WEAK].score


def test_unrecorded_score_is_unjudged_not_guessed() -> None:
    ds = toy_dataset(3)
    item = dataclasses.replace(ds.items[0], responses={WEAK: ModelResponse("w", None), STRONG: ModelResponse("s", 9.0)})
    ds = dataclasses.replace(ds, items=(item,))
    verdict = ReplayJudge(ds).verdict(item, WEAK)
    assert verdict.grade is None and verdict.score is None and not verdict.judged


@pytest.mark.parametrize(
    ("score_range", "acceptable", "name", "ok"),
    [
        ((1.0, 10.0), None, "ten", "6"),
        ((1.0, 10.0), 7, "ten", "7"),
        ((0.0, 1.0), None, "correct01", "correct"),
        ((0.0, 100.5), None, "continuous:0-100.5", "50.25"),
    ],
)
def test_scale_for(score_range: tuple[float, float], acceptable: float | None, name: str, ok: str) -> None:
    ds = dataclasses.replace(
        toy_dataset(3), score_range=score_range, metadata={} if acceptable is None else {"acceptable": acceptable}
    )
    if score_range == (0.0, 1.0):  # correctness: every recorded score 0 or 1
        ds = _rescored(ds, lambda i: float(i % 2))
    scale = scale_for(ds)
    assert scale.name == name and scale.acceptable_from == ok


def test_binary_scale_and_mean_scores() -> None:
    scale = binary_scale()
    assert scale.label_for(1.0) == "correct" and scale.label_for(0.0) == "incorrect"
    ds = toy_dataset(3)
    item = dataclasses.replace(ds.items[0], responses={WEAK: ModelResponse("w", 7.5), STRONG: ModelResponse("s", 9)})
    verdict = ReplayJudge(dataclasses.replace(ds, items=(item,))).verdict(item, WEAK)
    assert verdict.score == 7.5 and verdict.grade == "7"


def _rescored(ds, score):  # type: ignore[no-untyped-def]
    items = tuple(
        dataclasses.replace(it, responses={m: dataclasses.replace(r, score=score(i)) for m, r in it.responses.items()})
        for i, it in enumerate(ds.items)
    )
    return dataclasses.replace(ds, items=items)


def test_continuous_scores_are_not_quantised() -> None:
    """Scores such as 0.37 on 0-1 get a continuous scale; the verdict keeps the exact score."""
    ds = _rescored(dataclasses.replace(toy_dataset(4), score_range=(0.0, 1.0)), lambda i: [0.37, 0.5, 1.0, 0.0][i])
    scale = scale_for(ds)
    assert scale.name == "continuous:0-1" and len(scale.labels) == 11
    verdict = ReplayJudge(ds).verdict(ds.items[1], WEAK)
    assert verdict.score == 0.5 and verdict.grade == "0.5"  # a tie at 0.5 stays 0.5, not rounded down to 0
    assert ReplayJudge(ds).verdict(ds.items[0], WEAK).score == 0.37


def test_item_message_builds_multi_turn_conversation() -> None:
    item = EvalItem(
        id="m1",
        prompt="p",
        messages=(
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ),
        category=None,
        responses={},
    )
    msgs = item_message(item)
    assert [m.type for m in msgs] == ["system", "human", "ai", "human"]
    assert msgs[-1].id == "rpra-item:m1" and msgs[1].id == "rpra-item:m1:1"
