"""Which features work on which model family: runs the checks on the real-tokenizer fixtures, prints a table.

    RPRA_VOCAB_DIR=~/.cache/rpra/vocab-0.3.36 .venv/bin/python benchmarks/model_matrix.py --write

Each family is a tiny llama.cpp model carrying that family's complete tokenizer and
chat template (random weights for chat/stream/tools/structured output, scripted ones for
the grade reads and KV reuse; see ``rpra_agent.testing.gguf``). A cell is ``yes`` when
the check passed, otherwise what went wrong. ``--write`` stores the results in
``benchmarks/model_matrix.json``, whose table docs/LOCAL_MODELS.md shows (a test checks
that the doc matches the file, and re-runs the Phi-3 row).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.models.llamacpp import ChatLlamaCpp
from rpra_agent.predictors.prefix import PrefixSharingPredictor
from rpra_agent.testing.gguf import FAMILIES, family_vocab, write_scripted_like, write_tokenizer_gguf

RESULTS = Path(__file__).with_name("model_matrix.json")
COLUMNS = [
    "template",
    "chat",
    "stream",
    "tools",
    "structured output",
    "grade paper3",
    "grade 1-10",
    "grade custom",
    "forgery blocked",
    "KV reuse",
]
CUSTOM = GradeScale(("F", "C", "C+", "A", "A+"), (0.0, 1.0, 2.0, 3.0, 4.0), "C+", "letters")
REPLY = "Paris is the capital."
CONVERSATION = [SystemMessage("You are a geography assistant."), HumanMessage("What is the capital of France?")]
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a city up.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Rome", "Oslo"]}},
            "required": ["city"],
        },
    },
}


class Answer(BaseModel):
    """A city (an enum: a random-weight model's free text need not be valid UTF-8)."""

    city: Literal["Paris", "Rome", "Oslo"]


def _check(fn: Callable[[], bool | str]) -> str:
    try:
        result = fn()
    except Exception as exc:  # a failed check is a cell, not a crash
        return f"error: {type(exc).__name__}"
    return "yes" if result is True else (result or "no")


def _template(model: ChatLlamaCpp, family: str) -> str:
    template = model._template
    if template is None or template.fallback:
        return "none: ChatML, stops" if template is not None and template.stop else "none: ChatML"
    source = "Meta's, added" if FAMILIES[family][1] else "own"
    return f"{source}, system folded" if template.folds_system else source


def _forgery(model: ChatLlamaCpp) -> bool | str:
    texts = model._info.special_texts if model._info else ()
    ids = set()
    for text in texts:
        toks = model.llama.tokenize(text.encode(), add_bos=False, special=True)
        if len(toks) == 1:
            ids.add(toks[0])

    def count(content: str) -> collections.Counter[int]:
        messages = [SystemMessage(content), HumanMessage(content), ToolMessage(content, tool_call_id="c")]
        return collections.Counter(t for t in model.prompt_tokens(messages) if t in ids)

    return count(" ".join(texts)) == count("x") or "forged"


def _grade(scripted: Callable[..., Path], scale: GradeScale, grade: str, text: str) -> bool | str:
    model = ChatLlamaCpp(model_path=str(scripted(scale, grade, text)), n_ctx=1024, n_threads=1)
    for prefill in ("", "[Self-check. My prediction:]\n"):
        dist = model.grade_distribution(CONVERSATION, scale.labels, prefill=prefill)
        if dist[grade] < 0.99:
            return f"read {max(dist, key=dist.__getitem__)!r}"
    return True


def _kv_reuse(path: Path) -> bool | str:
    model = ChatLlamaCpp(model_path=str(path), n_ctx=1024, n_threads=1)
    prediction = PrefixSharingPredictor(model).predict(PredictionRequest(messages=tuple(CONVERSATION)))
    answer = model.invoke(CONVERSATION, temperature=0.0)
    evaluated = answer.usage_metadata["input_tokens"] - answer.usage_metadata["input_token_details"]["cache_read"]
    if prediction.grade != "great" or answer.content != REPLY:
        return "wrong grade or answer"
    return evaluated == 1 or f"{evaluated} tokens re-evaluated"


def family_row(family: str, workdir: Path, vocab_dir: str | None = None) -> dict[str, str]:
    """Run every check on ``family``'s fixtures; cells are ``yes`` or what failed."""
    like = family_vocab(family, vocab_dir)
    template = FAMILIES[family][1]
    path = write_tokenizer_gguf(workdir / f"{family}.gguf", like=like, chat_template=template)
    model = ChatLlamaCpp(model_path=str(path), n_ctx=2048, n_threads=1, seed=0)
    built: dict[tuple[str, str], Path] = {}

    def scripted(scale: GradeScale, grade: str, text: str) -> Path:
        if (grade, text) not in built:
            built[(grade, text)] = write_scripted_like(
                workdir / f"{family}-{len(built)}.gguf", like=like, reply=REPLY, grade=grade, grades=scale.labels,
                grade_text=text, chat_template=template,
            )  # fmt: skip
        return built[(grade, text)]

    def stream_matches() -> bool:
        invoked = model.invoke("Hi", max_tokens=12, temperature=0.0)
        streamed = "".join(str(c.content) for c in model.stream("Hi", max_tokens=12, temperature=0.0))
        return streamed == invoked.content

    def tool_call() -> bool:
        msg = model.bind_tools([TOOL], tool_choice="lookup").invoke("Find Paris.", max_tokens=96)
        return [c["name"] for c in msg.tool_calls] == ["lookup"] and isinstance(msg.tool_calls[0]["args"], dict)

    def structured() -> bool:
        return isinstance(model.with_structured_output(Answer).invoke("Capital?", max_tokens=96), Answer)

    paper, ten = GradeScale.paper(), GradeScale.ten_point()
    return {
        "template": _template(model, family),
        "chat": _check(
            lambda: model.invoke("Hi", max_tokens=8).response_metadata["finish_reason"] in ("stop", "length")
        ),
        "stream": _check(stream_matches),
        "tools": _check(tool_call),
        "structured output": _check(structured),
        "grade paper3": _check(lambda: _grade(scripted, paper, "great", "Great")),
        "grade 1-10": _check(lambda: _grade(scripted, ten, "10", " 10") is True and _grade(scripted, ten, "1", "1")),
        "grade custom": _check(lambda: _grade(scripted, CUSTOM, "A+", "A+")),
        "forgery blocked": _check(lambda: _forgery(model)),
        "KV reuse": _check(lambda: _kv_reuse(scripted(paper, "great", "great"))),
    }


def render(rows: dict[str, dict[str, str]]) -> str:
    """The markdown table: one row per family, one column per feature."""
    lines = ["| family | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    lines += [f"| {family} | " + " | ".join(row[c] for c in COLUMNS) + " |" for family, row in rows.items()]
    return "\n".join(lines)


def main() -> None:
    """Run every family (or ``--family``), print the table, ``--write`` the JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES))
    parser.add_argument("--write", action="store_true", help=f"store the results in {RESULTS.name}")
    args = parser.parse_args()
    if not os.environ.get("RPRA_VOCAB_DIR"):
        raise SystemExit("set RPRA_VOCAB_DIR to llama.cpp's vocab files (scripts/test.sh extracts them)")
    with tempfile.TemporaryDirectory() as tmp:
        rows = {f: family_row(f, Path(tmp)) for f in (args.family or list(FAMILIES))}
    print(render(rows))
    if args.write:
        RESULTS.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
