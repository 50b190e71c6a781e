"""RPRAMiddleware in a LangChain ``create_agent`` agent, stacked with LangChain's own middleware.

The agent's model is the small model; RPRAMiddleware predicts each call's grade and
re-issues low ones to the large model. Fallback and retry sit inside it, so each leg
gets them (see docs/MIDDLEWARE.md for the order semantics).

    python examples/middleware_agent.py
"""

import sys
from pathlib import Path

from _demo import model_strings, show
from langchain.agents import create_agent
from langchain.agents.middleware import ModelCallLimitMiddleware, ModelFallbackMiddleware, ModelRetryMiddleware
from langchain_core.messages import HumanMessage

from rpra_agent import ThresholdPolicy, decisions_from_state
from rpra_agent.middleware import RPRAMiddleware
from rpra_agent.models import load_chat_model
from rpra_agent.store import open_store

sys.path.append(str(Path(__file__).resolve().parent.parent))  # the repository's tools/ package
from tools import calculator, unit_converter  # noqa: E402


def main() -> None:
    small_spec, large_spec = model_strings()
    small, large = load_chat_model(small_spec), load_chat_model(large_spec)
    store = open_store("memory://")
    agent = create_agent(
        small,
        tools=[calculator, unit_converter],
        system_prompt="Answer briefly. Use the tools for arithmetic and unit conversions.",
        middleware=[
            ModelCallLimitMiddleware(run_limit=6),
            RPRAMiddleware(large, store=store, policy=ThresholdPolicy(0.5)),
            ModelFallbackMiddleware(large),
            ModelRetryMiddleware(max_retries=2, on_failure="error", initial_delay=0.1),
        ],
    )
    out = agent.invoke({"messages": [HumanMessage("What is the capital of France?")], "rpra_task": "geography"})
    print("answer:", out["messages"][-1].content)
    show(decisions_from_state(out))
    print("decisions in the store:", len(store.decisions()))


if __name__ == "__main__":
    main()
