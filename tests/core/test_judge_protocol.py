"""Both judges implement the Judge protocol, and the protocol's batch helper keeps the tasks' order."""

from __future__ import annotations

from rpra_agent.core.judging import Candidate, Judge, JudgeTask, judge_tasks
from rpra_agent.evaluation.datasets import load_dataset
from rpra_agent.evaluation.runs.replay import ReplayJudge, item_message
from rpra_agent.feedback import LLMJudge
from rpra_agent.testing import ScriptedChatModel


def test_llm_judge_and_replay_judge_are_judges():
    assert isinstance(LLMJudge(ScriptedChatModel(responses=["x"])), Judge)
    assert isinstance(ReplayJudge(load_dataset("mt-bench")), Judge)
    assert not isinstance(ScriptedChatModel(responses=["x"]), Judge)  # a chat model is not a judge by itself


def test_judge_tasks_runs_any_judge_in_order():
    ds = load_dataset("mt-bench")
    judge = ReplayJudge(ds)
    items = ds.items[:3]
    tasks = [
        JudgeTask(tuple(item_message(it)), (Candidate(it.responses[ds.weak].text or "", f"d{i}", "small"),))
        for i, it in enumerate(items)
    ]
    verdicts = judge_tasks(judge, tasks, max_concurrency=2)
    assert [v[0].decision_id for v in verdicts] == ["d0", "d1", "d2"]
    assert [v[0].score for v in verdicts] == [it.responses[ds.weak].score for it in items]
