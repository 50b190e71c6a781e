"""The core install (no extras) is enough for the graph, the middleware and the store."""

from __future__ import annotations

import subprocess
import sys
import textwrap

EXTRAS_ONLY = ["numpy", "sklearn", "scipy", "matplotlib", "typer", "rich", "fastapi", "psycopg", "llama_cpp", "torch"]


def test_graph_middleware_and_store_run_without_any_extra(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {EXTRAS_ONLY!r}:
                    raise ImportError("blocked: " + name)
                return None

        sys.meta_path.insert(0, Block())
        from langchain.agents import create_agent
        from langchain_core.messages import HumanMessage

        import rpra_agent
        from rpra_agent import RPRAMiddleware, ThresholdPolicy, build_rpra_graph, open_store
        from rpra_agent.testing import FixedPredictor, ScriptedChatModel

        store = open_store("sqlite:///{tmp_path}/core.db")
        g = build_rpra_graph(
            small=ScriptedChatModel(responses=["hi"]), large=ScriptedChatModel(responses=["x"]),
            predictor=FixedPredictor(), store=store,
        )
        assert g.invoke({{"messages": [HumanMessage("q")]}})["messages"][-1].content == "hi"
        agent = create_agent(
            ScriptedChatModel(responses=["hey"]), middleware=[RPRAMiddleware(ScriptedChatModel(responses=["x"]),
            predictor=FixedPredictor(), store=store)],
        )
        assert agent.invoke({{"messages": [HumanMessage("q")]}})["messages"][-1].content == "hey"
        store.flush()
        assert len(store.decisions()) == 2
        store.close()
        print("ok", sorted(m for m in sys.modules if m.split(".")[0] in {EXTRAS_ONLY!r}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok []"
