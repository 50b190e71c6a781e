"""Build the bundled datasets in rpra_agent/data from the recordings in ../shared/data.

Run from the repository root::

    .venv/bin/python scripts/bundle_data.py [--source ../shared/data]

It is deterministic: the same source files give byte-identical outputs (gzip mtime 0),
so the committed bundle can be checked by re-running it and `git diff`.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path
from typing import Any

from rpra_agent.evaluation.datasets import EvalDataset, EvalItem, ModelResponse, render_messages, save_dataset

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "rpra_agent" / "data"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
ROUTELLM_COMMIT = "0b64fdafe049e596a3f5657c219329f24af24198"
ROUTELLM = (
    f"RouteLLM, github.com/lm-sys/RouteLLM at commit {ROUTELLM_COMMIT}, licence Apache-2.0 "
    "(see rpra_agent/data/NOTICE.md and LICENSE-Apache-2.0.txt)."
)
ARENA = (
    "arena-hard-auto, github.com/lmarena/arena-hard-auto, data/arena-bench-v1/ (git history, Nov-Dec 2023; "
    "the commit of every file is in rpra_agent/data/arena-manifest.json), licence Apache-2.0 "
    "(see rpra_agent/data/NOTICE.md and LICENSE-Apache-2.0.txt)."
)
ROUTELLM_SOURCE = {
    "repository": "https://github.com/lm-sys/RouteLLM",
    "commit": ROUTELLM_COMMIT,
    "license": "Apache-2.0",
}


def _dataset(name: str, items: list[EvalItem], attribution: str, **meta: Any) -> EvalDataset:
    score_range = meta.pop("score_range")
    return EvalDataset(name, tuple(items), WEAK, STRONG, score_range, attribution, meta)


def mt_bench(src: Path) -> tuple[EvalDataset, EvalDataset]:
    """MT-bench routed per turn (n=160) and per question (n=80, mean of both turns)."""
    rows = [json.loads(line) for line in (src / "routellm" / "mt_bench_gpt4_single.jsonl").open(encoding="utf-8")]
    by = {(r["question_id"], r["turn"], r["model"]): r for r in rows}
    qids = sorted({r["question_id"] for r in rows})
    per_turn: list[EvalItem] = []
    per_question: list[EvalItem] = []
    for q in qids:
        first = by[(q, 1, WEAK)]
        question1 = first["prompt"]
        for turn in (1, 2):
            w, s = by[(q, turn, WEAK)], by[(q, turn, STRONG)]
            if turn == 1:
                messages: tuple[dict[str, Any], ...] = ({"role": "user", "content": question1},)
            else:  # the conversation as the small model saw it: its own first answer
                messages = (
                    {"role": "user", "content": question1},
                    {"role": "assistant", "content": first["answer"]},
                    {"role": "user", "content": w["prompt"]},
                )
            responses = {
                WEAK: ModelResponse(text=w["answer"], score=float(w["score"])),
                STRONG: ModelResponse(text=s["answer"], score=float(s["score"])),
            }
            per_turn.append(
                EvalItem(
                    f"{q}-t{turn}",
                    render_messages(messages),
                    messages,
                    first["category"],
                    responses,
                    {"question_id": q, "turn": turn},
                )
            )
        responses = {
            m: ModelResponse(text=by[(q, 1, m)]["answer"], score=(by[(q, 1, m)]["score"] + by[(q, 2, m)]["score"]) / 2)
            for m in (WEAK, STRONG)
        }
        messages = ({"role": "user", "content": question1},)
        per_question.append(EvalItem(str(q), question1, messages, first["category"], responses, {"question_id": q}))
    common = {
        "score_range": (1.0, 10.0),
        "acceptable": 7,
        "judge": "gpt-4 single-answer grading (MT-bench), 1-10",
        "source": {**ROUTELLM_SOURCE, "files": ["routellm/evals/mt_bench/judgements.jsonl", "question.jsonl"]},
    }
    turn_ds = _dataset(
        "mt-bench",
        per_turn,
        ROUTELLM,
        description="MT-bench, 80 questions x 2 turns, routed per turn (n=160). A turn-2 item's messages carry "
        "the conversation as the small model saw it (its own turn-1 answer); each model's turn-2 answer was "
        "recorded after its own turn-1 answer.",
        protocol="per turn",
        **common,
    )
    question_ds = _dataset(
        "mt-bench-question",
        per_question,
        ROUTELLM,
        description="MT-bench routed per question as RouteLLM does (n=80): the prompt is the first turn, the "
        "score is the mean of both turns' scores, the text is the first-turn answer.",
        protocol="per question (RouteLLM)",
        **common,
    )
    return turn_ds, question_ds


def gsm8k(src: Path) -> EvalDataset:
    """GSM8K with correctness labels and both answers (n=1319)."""
    items = []
    for line in (src / "routellm" / "gsm8k.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        responses = {
            WEAK: ModelResponse(text=r["weak_response"], score=1.0 if r["weak_correct"] else 0.0),
            STRONG: ModelResponse(text=r["strong_response"], score=1.0 if r["strong_correct"] else 0.0),
        }
        items.append(EvalItem(str(r["idx"]), r["prompt"], ({"role": "user", "content": r["prompt"]},), None, responses))
    return _dataset(
        "gsm8k",
        items,
        ROUTELLM,
        score_range=(0.0, 1.0),
        acceptable=1,
        judge="exact-match correctness of the final answer",
        description="GSM8K test set, all 1,319 items (RouteLLM drops prompts it found contaminated; this keeps all).",
        source={**ROUTELLM_SOURCE, "files": ["routellm/evals/gsm8k/gsm8k_responses.csv"]},
    )


def mmlu(src: Path) -> EvalDataset:
    """MMLU with correctness labels, no answer texts (n=14042)."""
    items = []
    with (src / "routellm" / "mmlu.csv").open(encoding="utf-8", newline="") as fh:
        for i, r in enumerate(csv.DictReader(fh)):
            responses = {
                WEAK: ModelResponse(score=float(int(r["weak_correct"]))),
                STRONG: ModelResponse(score=float(int(r["strong_correct"]))),
            }
            items.append(
                EvalItem(
                    f"mmlu-{i:05d}", r["prompt"], ({"role": "user", "content": r["prompt"]},), r["subject"], responses
                )
            )
    return _dataset(
        "mmlu",
        items,
        ROUTELLM,
        score_range=(0.0, 1.0),
        acceptable=1,
        judge="multiple-choice correctness",
        description="MMLU, all 14,042 test items with each model's correctness (answer texts were not recorded).",
        source={**ROUTELLM_SOURCE, "files": ["routellm/evals/mmlu/responses/*.csv"]},
    )


def arena(src: Path) -> EvalDataset:
    """arena-bench-v1, Mixtral-8x7B -> gpt-4-1106-preview, items where both scores parsed (n=293)."""
    base = src / "arena_bench_v1"
    prompts = {
        json.loads(line)["question_id"]: json.loads(line) for line in (base / "prompts.jsonl").open(encoding="utf-8")
    }
    outputs = {
        json.loads(line)["question_id"]: json.loads(line)["outputs"]
        for line in (base / "outputs.jsonl").open(encoding="utf-8")
    }
    scores: dict[tuple[str, str], str] = {}
    with (base / "judgments.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            scores[(r["question_id"], r["model"])] = r["score"]
    items = []
    for qid, p in sorted(prompts.items(), key=lambda kv: kv[1]["idx"]):
        w, s = scores.get((qid, WEAK), ""), scores.get((qid, STRONG), "")
        if not w or not s:
            continue
        responses = {
            WEAK: ModelResponse(text=outputs[qid][WEAK], score=float(w)),
            STRONG: ModelResponse(text=outputs[qid][STRONG], score=float(s)),
        }
        items.append(
            EvalItem(qid, p["prompt"], ({"role": "user", "content": p["prompt"]},), None, responses, {"idx": p["idx"]})
        )
    return _dataset(
        "arena",
        items,
        ARENA,
        score_range=(1.0, 10.0),
        acceptable=7,
        judge="gpt-4 (temperature 0) single-answer 1-10 with a gpt-4 reference answer",
        description="arena-bench-v1: 300 hard Chatbot Arena prompts; Mixtral-8x7B (weak) vs gpt-4-1106-preview "
        "(strong), the 293 items where both judge outputs parsed.",
        source={
            "repository": "https://github.com/lmarena/arena-hard-auto",
            "path": "data/arena-bench-v1/",
            "license": "Apache-2.0",
        },
    )


def main() -> None:
    """Build every bundled dataset and copy the attribution files."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    src: Path = args.source
    turn_ds, question_ds = mt_bench(src)
    for ds in (turn_ds, question_ds, gsm8k(src), mmlu(src), arena(src)):
        path = save_dataset(ds, args.out / f"{ds.name}.jsonl.gz")
        print(f"{ds.name:20s} n={len(ds):6d}  {path.stat().st_size / 1024:8.1f} KiB  {path}")
    shutil.copyfile(src / "arena_bench_v1" / "manifest.json", args.out / "arena-manifest.json")
    shutil.copyfile(src / "routellm" / "manifest.json", args.out / "routellm-manifest.json")


if __name__ == "__main__":
    main()
