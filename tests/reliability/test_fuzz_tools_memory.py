"""Memory and time of the tools under hostile input, measured in a subprocess under ``RLIMIT_AS``.

The child process imports the tools, caps its address space at what it uses plus
512 MiB (``resource.setrlimit(RLIMIT_AS, ...)``), then runs a battery: the expensive SQL
statements of ``test_fuzz_sql_tool.py`` (issue 14's ``printf('%.*c',100000000,'x')`` took
48 s and 5 GB) and 300 random word statements, on SQLite and on PostgreSQL as the reader
role, both through the tool and straight to the database; the calculator's and unit
converter's worst cases and 2,000 random expressions. It prints the peak RSS growth and
the slowest call as JSON; the test bounds both. Run it by hand for the figures::

    PYTHONPATH=. .venv/bin/python -m tests.reliability.test_fuzz_tools_memory
"""

import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADROOM = 512 * 1024 * 1024
MAX_RSS_GROWTH_MB = 200
# PostgreSQL checks for cancellation between rows, not while one value doubles toward 1 GB
# (docs/RELIABILITY.md, "Tools: not guaranteed"): its doubling CTE overran a 1 s timeout by
# 0.8-3.6 s across runs. 10 s still fails the regressions this guards (printf allowed again: 25.4 s).
MAX_CALL_S = 10.0


def _status(field: str) -> int:
    """A ``/proc/self/status`` figure in bytes (``VmSize``, ``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _random_expression(rng: random.Random, depth: int = 0) -> str:
    from tests.reliability.test_fuzz_tools import LITERALS, OPERATORS
    from tools.calculator import _FUNCTIONS

    if depth > 3 or rng.random() < 0.3:
        return rng.choice(LITERALS)
    kind = rng.random()
    if kind < 0.5:
        return f"({_random_expression(rng, depth + 1)} {rng.choice(OPERATORS)} {_random_expression(rng, depth + 1)})"
    args = ", ".join(_random_expression(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    return f"{rng.choice(sorted(_FUNCTIONS))}({args})"


def battery(sqlite_path: str, postgres_reader: str | None) -> dict[str, object]:
    """Run every hostile input once; the peak RSS growth (MiB) and the slowest call (s)."""
    from langchain_core.tools import ToolException

    from tests.reliability.test_fuzz_sql_tool import EXPENSIVE, WORDS
    from tools.calculator import CalculatorError, evaluate
    from tools.decision_sql import DecisionLogSQL, SQLRefused
    from tools.units import UnitError, convert

    tools = [DecisionLogSQL(f"sqlite:///{sqlite_path}", timeout_s=1.0)]
    if postgres_reader:
        tools.append(DecisionLogSQL(postgres_reader, timeout_s=1.0))
    rng = random.Random(14)
    statements = [f"select {e} from rpra_decisions" for e in EXPENSIVE]
    statements += [" ".join(rng.choices(WORDS, k=rng.randint(1, 14))) for _ in range(300)]
    expressions = ["round(7, -10**999)", "10**999 * 10**999", "factorial(449)", "1e999", "10**1000"]
    expressions += [_random_expression(rng) for _ in range(2000)]
    tools[0].query("select 1")  # warm up imports and caches before the baseline
    evaluate("1 + 1")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    baseline = _status("VmRSS")
    resource.setrlimit(resource.RLIMIT_AS, (_status("VmSize") + HEADROOM, resource.RLIM_INFINITY))
    slowest, slowest_call, failures = 0.0, "", []

    def timed(fn, *args):
        nonlocal slowest, slowest_call
        started = time.monotonic()
        try:
            out = str(fn(*args))
        except (SQLRefused, ToolException, CalculatorError, UnitError) as exc:
            out = str(exc)
        except MemoryError:
            out = "MemoryError"
        except Exception as exc:  # a driver's error past the parser
            out = f"{type(exc).__name__}: {exc}"
        if time.monotonic() - started > slowest:
            slowest, slowest_call = time.monotonic() - started, f"{getattr(fn, '__name__', fn)}{args!r}"[:160]
        if "out of memory" in out.lower() or "MemoryError" in out:
            failures.append((args, out[:200]))

    for statement in statements:
        for tool in tools:
            timed(tool.query, statement)
            timed(tool._sqlite if tool.db.dialect == "sqlite" else tool._postgres, statement, 5)
    for expression in expressions:
        timed(evaluate, expression)
    for value in (1e308, -1e308, 1.7e308, 10**400, 5e-324):
        for src, dst in (("tb", "b"), ("mi2", "cm2"), ("F", "C"), ("C", "F"), ("kwh", "cal")):
            timed(convert, value, src, dst)
    peak = _status("VmHWM")
    return {
        "baseline_rss_mib": round(baseline / 2**20, 1),
        "rss_growth_mib": round((peak - baseline) / 2**20, 1),
        "slowest_call_s": round(slowest, 2),
        "slowest_call": slowest_call,
        "calls": len(statements) * len(tools) * 2 + len(expressions) + 25,
        "out_of_memory": len(failures),
    }


def _sqlite_db(directory: Path) -> str:
    import sqlite3

    from rpra_agent.store import open_store
    from tests.reliability.test_fuzz_sql_tool import _decision

    path = directory / "log.db"
    store = open_store(f"sqlite:///{path}", spool_path=str(directory / "spool.jsonl"))
    for i in range(200):
        store.add(_decision(i))
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("pragma journal_mode=delete")
    return str(path)


def _run_child(sqlite_path: str, reader: str | None) -> dict[str, object]:
    code = (
        "import json, sys; from tests.reliability.test_fuzz_tools_memory import battery; "
        "print(json.dumps(battery(sys.argv[1], sys.argv[2] or None)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, sqlite_path, reader or ""], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.postgres
def test_hostile_inputs_stay_within_memory_and_time(tmp_path, postgres_url):
    import psycopg

    from tools.decision_sql import create_reader_role

    sqlite_path = _sqlite_db(tmp_path)
    from rpra_agent.store import open_store
    from tests.reliability.test_fuzz_sql_tool import _decision

    store = open_store(postgres_url, spool_path=str(tmp_path / "pg-spool.jsonl"))
    for i in range(200):
        store.add(_decision(i))
    store.flush()
    store.close()
    role = f"rpra_mem_{uuid.uuid4().hex[:8]}"
    reader = create_reader_role(postgres_url, role, statement_timeout_ms=1000)
    try:
        figures = _run_child(sqlite_path, reader)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
    print(figures)
    assert figures["out_of_memory"] == 0
    assert figures["rss_growth_mib"] < MAX_RSS_GROWTH_MB
    assert figures["slowest_call_s"] < MAX_CALL_S


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(battery(_sqlite_db(Path(directory)), os.environ.get("RPRA_SQL_TOOL_URL"))))
