"""A worker the SIGKILL tests kill mid-run: real graph runs over a SQL store.

Usage: python _kill_worker.py URL SPOOL DURABILITY

Runs the RPRA graph (test doubles for the models) forever. After each ``invoke()``
returns, it prints the run's decision ids on one stdout line (flushed), so the parent
knows exactly which decisions were promised before it sends SIGKILL.
"""

from __future__ import annotations

import sys

from rpra_agent import decisions_from_state
from rpra_agent.store import open_store
from tests.reliability._mix import mix_graph, request_for


def main() -> None:
    url, spool, durability = sys.argv[1], sys.argv[2], sys.argv[3]
    store = open_store(url, spool_path=spool, durability=durability, retry_interval=0.2)
    graph = mix_graph(store)
    i = 0
    while True:
        state = graph.invoke(request_for(i * 6)[1])  # "easy" requests: one decision per run
        print(" ".join(d.id for d in decisions_from_state(state)), flush=True)
        i += 1


if __name__ == "__main__":
    main()
