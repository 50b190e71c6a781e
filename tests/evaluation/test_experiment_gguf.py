"""`rpra experiment` end to end on real llama.cpp: scripted GGUFs, the judge and the large model behind
llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``), the small model in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("llama_cpp.server")
pytest.importorskip("gguf")

from rpra_agent.cli import commands  # noqa: E402, F401  (registers the commands)
from rpra_agent.cli.app import app  # noqa: E402
from rpra_agent.testing.gguf import write_scripted_gguf  # noqa: E402
from tests.fixtures_llama import _free_port, run_llama_cpp_server  # noqa: E402

pytestmark = pytest.mark.slow

N_CTX = 8192  # the judge prompt (rubric, three answers) is ~2000 tokens with these byte-level vocabularies
JUDGE_REPLY = json.dumps(
    {
        "verdicts": [
            {"response": i + 1, "rationale": r, "weakest": w, "grade": g}
            for i, (r, w, g) in enumerate(
                [
                    ("Correct and clear.", "none", "great"),
                    ("Mostly right.", "clarity", "ok"),
                    ("Wrong sum.", "accuracy", "bad"),
                ]
            )
        ]
    }
)


def write_prompts(path: Path) -> Path:
    rows = [
        *({"id": f"math-{i}", "prompt": f"What is {i} + {i}?", "category": "math"} for i in range(4)),
        *({"id": f"chat-{i}", "prompt": f"Say hello to guest number {i}.", "category": "chat"} for i in range(4)),
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The small and fine-tuned GGUFs (in process), the judge and large model behind one llama.cpp server."""
    root = tmp_path_factory.mktemp("experiment")
    small = write_scripted_gguf(root / "small.gguf", reply="The answer is 4.", grade="ok", n_ctx=N_CTX)
    tuned = write_scripted_gguf(root / "tuned.gguf", reply="Tuned to grade.", grade="great", n_ctx=N_CTX)
    judge = write_scripted_gguf(root / "judge.gguf", reply=JUDGE_REPLY, n_ctx=N_CTX)
    large = write_scripted_gguf(root / "large.gguf", reply="The large model says: 4.", n_ctx=N_CTX)
    port = _free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "models": [
            {"model": str(judge), "model_alias": "judge", "n_ctx": N_CTX},
            {"model": str(large), "model_alias": "large", "n_ctx": N_CTX},
        ],
    }
    (root / "server.json").write_text(json.dumps(config))
    args = ["--config_file", str(root / "server.json")]
    with run_llama_cpp_server(args, port=port, log_path=root / "server.log") as base:
        yield {
            "small": f"gguf:{small}?n_ctx={N_CTX}",
            "tuned": f"gguf:{tuned}?n_ctx={N_CTX}",
            "judge": "openai:judge",
            "large": "openai:large",
            "base_url": base,
            "root": str(root),
        }


def test_experiment_end_to_end_on_llama_cpp(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [
        "experiment", "--prompts", str(write_prompts(tmp_path / "prompts.jsonl")),
        "--small", models["small"], "--large", models["large"], "--judge", models["judge"],
        "--fine-tuned", models["tuned"], "--base-url", models["base_url"], "--judge-method", "json",
        "--out", str(out), "--seed", "1",
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads((out / "experiment.json").read_text())
    assert (data["small"], data["judge"]) == ("gguf:small.gguf", "openai:judge")
    assert data["split"]["train"] == data["split"]["test"] == 4 and data["skipped"] == {}
    arms = {(a["paradigm"], a["predictor"]): a for a in data["arms"]}
    assert set(arms) == {(p, n) for p in ("pa", "rpra") for n in ("zero_shot", "report_card", "fine_tuned")}
    for arm in arms.values():
        overall = arm["scores"]["overall"]
        assert overall["n"] == 4 and overall["failed"] == 0
        assert sum(map(sum, (r.values() for r in overall["confusion"].values()))) == 4
    # the scripted small model predicts "ok" and the tuned one "great": each arm's predictions say so
    assert arms[("pa", "zero_shot")]["scores"]["overall"]["predicted"]["ok"] == 4
    assert arms[("rpra", "fine_tuned")]["scores"]["overall"]["predicted"]["great"] == 4
    # the judge graded by the (seeded, recorded) position of each answer: the labels are not all the same
    labels = {
        lab for a in data["arms"] for lab, row in a["scores"]["overall"]["confusion"].items() if sum(row.values())
    }
    assert len(labels) >= 2
    for title in ("label accuracy / macro-F1", "relative improvement", "defer at a calibrated threshold"):
        assert title in res.output
    assert "mean" in res.output and (out / "experiment.html").exists() and (out / "split.json").exists()
    # the README's worked example shows these tables, as printed by the same command on the same models
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    shown = readme.split("<!-- experiment-output: printed by the command above -->\n```\n", 1)[1].split("\n```", 1)[0]

    def tables(text: str) -> list[str]:
        lines = [line.rstrip() for line in text.splitlines()]
        start = next(i for i, line in enumerate(lines) if line.startswith("experiment exp-"))
        end = next(i for i, line in enumerate(lines) if line.startswith("json: "))
        return lines[start:end]

    assert tables(res.output) == tables(shown)
