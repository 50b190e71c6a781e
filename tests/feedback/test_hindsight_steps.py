"""Hindsight data for agent steps: each step's context is its prompt, the judge's grade of that step its target."""

from __future__ import annotations

import json
import re
from collections import defaultdict

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from rpra_agent import build_rpra_graph
from rpra_agent.feedback import LLMJudge, collect_examples, export_sft, judge_log, sft_messages
from rpra_agent.feedback.context import context_messages, context_record, conversation_for, step_request
from rpra_agent.predictors import FineTunedPredictor
from rpra_agent.store import InMemoryDecisionStore
from rpra_agent.testing import FixedPredictor, ScriptedChatModel
from tests.feedback.builders import decision

HIGH = {"great": 0.9, "ok": 0.1}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def call(cid: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": cid}])


def tool_calls_great_answers_bad(messages):
    """The judge: a tool call is the right step (great); the final answers are all bad."""
    bodies = re.findall(r'<response id="(\d+)">\n(.*?)\n</response>', str(messages[-1].content), re.S)
    verdicts = [
        {"response": int(i), "rationale": "r", "weakest": "none", "grade": "great" if "add" in b else "bad"}
        for i, b in bodies
    ]
    return json.dumps({"verdicts": verdicts})


def tool_runs(n: int = 3) -> InMemoryDecisionStore:
    """``n`` real graph runs of one request: the small model calls ``add``, then answers with its result."""
    store = InMemoryDecisionStore()
    for i in range(n):
        small = ScriptedChatModel(responses=[call(f"c{i}"), "The sum is 5."], rpra_name="small-m")
        large = ScriptedChatModel(responses=["large"], rpra_name="large-m")
        graph = build_rpra_graph(small=small, large=large, predictor=FixedPredictor(HIGH), tools=[add], store=store)
        graph.invoke({"messages": [HumanMessage("What is 2+3?")]})
    return store


def test_multi_step_tool_run_gives_no_contradictory_examples(tmp_path):
    store = tool_runs()
    decisions = store.decisions()
    assert sorted((d.step, d.kind) for d in decisions) == [(0, "action")] * 3 + [(1, "answer")] * 3
    judge_model = ScriptedChatModel(responses=[tool_calls_great_answers_bad], rpra_name="judge-m")
    result = judge_log(store, LLMJudge(judge_model, backoff_s=0), progress=False)
    assert (result.judged, result.calls, result.joint) == (6, 2, 2)  # each step's 3 responses judged jointly

    examples = collect_examples(store)
    assert len(examples) == 6
    # the bare request is the same for every step, with contradictory grades: why a bare-request prompt fails
    assert {e.request for e in examples} == {"What is 2+3?"} and {e.grade for e in examples} == {"great", "bad"}
    targets: dict[str, set[str]] = defaultdict(set)
    for e in examples:
        prompt = json.dumps(sft_messages(e.prompt_request(), e.grade)[:-1])
        targets[prompt].add(e.grade)
    assert len(targets) == 2 and all(len(grades) == 1 for grades in targets.values())

    out = export_sft(store, tmp_path / "sft", val_fraction=0.0)
    rows = [json.loads(line)["messages"] for line in (out.out / "trl" / "train.jsonl").read_text().splitlines()]
    by_prompt: dict[str, set[str]] = defaultdict(set)
    for messages in rows:
        by_prompt[json.dumps(messages[:-1])].add(messages[-1]["content"])
    assert len(rows) == 6 and all(len(grades) == 1 for grades in by_prompt.values())


def test_recorded_step_context_carries_tool_results_kind_and_reasoning():
    convo = [
        HumanMessage("What is 2+3?"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]),
        ToolMessage("5", tool_call_id="c1", name="add"),
    ]
    record = context_record(convo)
    assert json.loads(json.dumps(record)) == record  # JSON for Decision.metadata
    rebuilt = context_messages(record)
    assert rebuilt is not None and [m.type for m in rebuilt] == ["human", "ai", "tool"]
    assert rebuilt[1].tool_calls[0]["args"] == {"a": 2, "b": 3} and rebuilt[2].content == "5"
    d = decision(
        step=1,
        paradigm="rpra",
        request="What is 2+3?",
        metadata={"context": record, "reasoning": "The tool said 5, so I can answer."},
    )
    assert conversation_for(d) == rebuilt
    request = step_request(d)
    assert (request.kind, request.reasoning) == ("answer", "The tool said 5, so I can answer.")
    prompt = sft_messages(request, "great")[1]["content"]
    assert '"role": "tool", "content": "5"' in prompt and "TOOL CALLS" in prompt
    assert '<step kind="answer" />' in prompt and "The tool said 5" in prompt
    # the fine-tuned predictor sends exactly the exported prompt for that step
    model = ScriptedChatModel(responses=["great"])
    FineTunedPredictor(model, method="text").predict(request)
    sent = [{"role": {"system": "system", "human": "user"}[m.type], "content": m.content} for m in model.calls[0]]
    assert sent == sft_messages(request, "great")[:-1]
    # a malformed record falls back to the bare request
    assert conversation_for(decision(request="hi", metadata={"context": [{"role": "alien", "content": "x"}]})) == (
        HumanMessage("hi"),
    )
