"""Run tool calls as a model's tool calls through the assistant's graph (real LangGraph)."""

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from rpra_agent import ThresholdPolicy, ZeroShotPredictor, decisions_from_state
from rpra_agent.service.config import Components, Settings, build_graph
from rpra_agent.store import open_store
from rpra_agent.testing import ScriptedChatModel, grade_logprobs


def tool_results_through_graph(tools, calls):
    """Let the small model call ``calls`` (``(name, args)`` pairs) one per step, then answer.

    Returns:
        The ``ToolMessage`` of each call, in order, and the run's decisions.
    """
    script = iter(
        [AIMessage("", tool_calls=[{"name": n, "args": a, "id": f"c{i}"}]) for i, (n, a) in enumerate(calls)] + ["done"]
    )

    def respond(messages):
        last = messages[-1].content
        return "great" if isinstance(last, str) and last.endswith("Predicted grade:") else next(script)

    small = ScriptedChatModel(responses=[respond], logprobs=grade_logprobs({"great": 1.0}), rpra_name="small")
    large = ScriptedChatModel(responses=["large"], rpra_name="large")
    settings = Settings(small_model="scripted:small", large_model="scripted:large", max_steps=len(calls) + 2)
    store = open_store("memory://")
    components = Components(small, large, ZeroShotPredictor(small), ThresholdPolicy(0.5), store, settings)
    graph = build_graph(components, tools, name="rpra_assistant")
    out = graph.invoke({"messages": [HumanMessage("Look at the decision log.")]})
    results = {m.tool_call_id: m for m in out["messages"] if isinstance(m, ToolMessage)}
    store.close()
    return [results[f"c{i}"] for i in range(len(calls))], decisions_from_state(out)
