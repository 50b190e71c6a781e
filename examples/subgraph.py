"""Mount the RPRA graph as a subgraph inside a larger LangGraph application.

The parent graph tags the request (``triage``), lets the RPRA subgraph answer it (the
two share ``messages``, ``rpra_task`` and ``rpra_decisions``), then audits which model
answered (``audit``).

    python examples/subgraph.py
"""

import operator
from typing import Annotated, Any, NotRequired, TypedDict

from _demo import model_strings, show
from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from rpra_agent import ThresholdPolicy, ZeroShotPredictor, build_rpra_graph, decisions_from_state
from rpra_agent.models import load_chat_model


class AppState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    rpra_task: NotRequired[str | None]
    rpra_decisions: NotRequired[Annotated[list[dict[str, Any]], operator.add]]
    audit: NotRequired[str]


def triage(state: AppState) -> dict[str, Any]:
    text = state["messages"][-1].content.lower()
    return {"rpra_task": "geography" if "capital" in text else "general"}


def audit(state: AppState) -> dict[str, Any]:
    decisions = decisions_from_state(state)
    deferred = sum(d.deferred for d in decisions)
    return {"audit": f"{len(decisions)} step(s), {deferred} deferred to the large model"}


def main() -> None:
    small_spec, large_spec = model_strings()
    small, large = load_chat_model(small_spec), load_chat_model(large_spec)
    rpra = build_rpra_graph(
        small=small, large=large, predictor=ZeroShotPredictor(small), policy=ThresholdPolicy(0.5), name="rpra"
    )
    app = StateGraph(AppState)
    app.add_node("triage", triage)
    app.add_node("rpra", rpra)  # the compiled RPRA graph is the node
    app.add_node("audit", audit)
    app.add_edge(START, "triage")
    app.add_edge("triage", "rpra")
    app.add_edge("rpra", "audit")
    app.add_edge("audit", END)
    graph = app.compile()
    out = graph.invoke({"messages": [HumanMessage("What is the capital of France?")]})
    print("task:", out["rpra_task"])
    print("answer:", out["messages"][-1].content)
    show(decisions_from_state(out))
    print("audit:", out["audit"])


if __name__ == "__main__":
    main()
