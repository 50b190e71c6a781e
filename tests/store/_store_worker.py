"""A worker process for the durability tests: writes N decisions with deterministic ids.

Usage: python _store_worker.py URL N TAG SPOOL [close|atexit]
Every 10th decision is added twice (a retry), to prove inserts are idempotent.
"""

from __future__ import annotations

import sys

from rpra_agent.core.decision import Decision, LegUsage
from rpra_agent.store import open_store


def write_decisions(url: str, n: int, tag: str, spool: str, how: str = "close") -> None:
    """Add ``n`` decisions with ids ``{tag}-00000``...; close the store, or leave it to atexit."""
    store = open_store(url, spool_path=spool, retry_interval=0.2)
    for i in range(n):
        d = Decision(
            id=f"{tag}-{i:05d}", run_id=tag, step=i, kind="answer", paradigm="pa", prediction=None,
            threshold=0.5, route="large" if i % 3 == 0 else "small", reason="forced",
            legs={"small": LegUsage("small-m", 5, 7, 1.0)}, request=f"q{i}", response=f"a{i}",
        )  # fmt: skip
        store.add(d)
        if i % 10 == 0:
            store.add(d)
    if how == "close":
        store.close()
    # "atexit": the interpreter's exit hook must flush the queue


def main() -> None:
    write_decisions(
        sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else "close"
    )


if __name__ == "__main__":
    main()
