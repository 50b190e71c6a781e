"""The RPRA graph in-process: predict the judge's grade, answer small or defer, log it.

python examples/graph_inprocess.py            # tiny synthesized models
RPRA_SMALL_MODEL=gguf:/m/small.gguf RPRA_LARGE_MODEL=openai:gpt-4o-mini python examples/graph_inprocess.py
"""

from _demo import model_strings, show
from langchain_core.messages import HumanMessage

from rpra_agent import ThresholdPolicy, ZeroShotPredictor, build_rpra_graph, decisions_from_state
from rpra_agent.models import load_chat_model
from rpra_agent.store import open_store


def main() -> None:
    small_spec, large_spec = model_strings()
    small, large = load_chat_model(small_spec), load_chat_model(large_spec)
    store = open_store("memory://")  # or open_store() for ./rpra.db, or a postgresql:// URL
    graph = build_rpra_graph(
        small=small,
        large=large,
        predictor=ZeroShotPredictor(small),  # the small model predicts its own grade
        policy=ThresholdPolicy(threshold=0.5),
        store=store,
    )
    out = graph.invoke({"messages": [HumanMessage("What is the capital of France?")]})
    print("answer:", out["messages"][-1].content)
    show(decisions_from_state(out))
    print("decisions in the store:", len(store.decisions()))


if __name__ == "__main__":
    main()
