"""Every example runs as a script (on synthesized GGUF models) and prints what it promises."""

import os
import subprocess
import sys

import pytest

from tests.fixtures_deploy import ROOT

pytestmark = [pytest.mark.llama, pytest.mark.slow]

EXPECTED = {
    "graph_inprocess.py": [
        "answer: Paris is the capital of France.",
        "route=large reason=predicted_low predicted_grade=bad",
        "decisions in the store: 1",
    ],
    "subgraph.py": [
        "task: geography",
        "answer: Paris is the capital of France.",
        "audit: 1 step(s), 1 deferred to the large model",
    ],
    "middleware_agent.py": [
        "answer: Paris is the capital of France.",
        "route=large reason=predicted_low",
        "decisions in the store: 1",
    ],
    "service_client.py": [
        "models: ['rpra']",
        "route=large reason=predicted_low predicted_grade=bad",
        "streamed: Paris is the capital of France.",
        "wrong key -> 401 invalid_api_key",
    ],
}


def test_every_example_is_covered():
    assert {p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_")} == set(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPRA_")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for line in EXPECTED[script]:
        assert line in proc.stdout, proc.stdout
