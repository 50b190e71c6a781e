"""llama.cpp costs: prediction overhead with KV reuse, multi-token grade reads, tool-grammar cost per token.

Run on any GGUF (a real model, or one of the test fixtures)::

    .venv/bin/python benchmarks/bench_llamacpp.py --model /models/qwen2.5-0.5b-instruct-q4_k_m.gguf

or, without a model, on the real-tokenizer fixtures (llama.cpp's vocab files, see
``RPRA_VOCAB_DIR`` in scripts/test.sh; random weights)::

    RPRA_VOCAB_DIR=~/.cache/rpra/vocab-0.3.36 .venv/bin/python benchmarks/bench_llamacpp.py

which measures the Qwen2 tokenizer at two sizes (64 wide, 2 layers; 512 wide, 8 layers)
and the tool-grammar cost on the 32k (Phi-3), 152k (Qwen2) and 262k (Gemma)
vocabularies. Everything runs with ``--threads`` (default 1) and reports medians.

Sections (milliseconds):

- Prediction overhead: :class:`PrefixSharingPredictor` predicts, then the model answers
  (the answer prompt is a token prefix of the prediction prompt, so the answer
  re-evaluates one token); overhead = predict + answer after predict - answer alone,
  as a share of a 128-token answer (goal <= 3 %). Both answers generate the same
  tokens, so the headline figure takes the difference of their prompt evaluation from
  llama.cpp's own timings (predict - prompt time saved), which is far less noisy than
  the difference of two wall-clock answers (also shown). A random model may end its
  answer early: the answer is then scaled to 128 tokens at its generation speed.
- Grade reads: the prediction with the conversation cached (the self-check evaluated),
  on the paper's scale and on 1-10; "label scoring" is the time spent scoring labels
  of several tokens (e.g. ``10`` = ``1``, ``0``) in "extra decodes" beyond the prompt.
  Goal: the 1-10 read <= 2x the same read without label scoring (a first-token read).
- Tool grammar: ms per generated token of a forced tool call (grammar) and of free text.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from rpra_agent.core.grades import GradeScale
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.models.llamacpp import ChatLlamaCpp
from rpra_agent.predictors.prefix import PrefixSharingPredictor
from rpra_agent.testing.gguf import FAMILIES, family_vocab, write_tokenizer_gguf

ANSWER_TOKENS = 128
SYSTEM = "You are a careful travel assistant. Answer questions about cities, their history and how to get around."
QUESTION = (
    "I will spend three days in Paris next spring with my parents, who do not walk much. Which districts "
    "should we stay in, how do we get from the airport to the city, and which museums are worth the time?"
)
TOOL = {
    "type": "function",
    "function": {
        "name": "search_city_guide",
        "description": "Search the city guide.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 64}, "topic": {"type": "string", "maxLength": 64}},
            "required": ["city", "topic"],
        },
    },
}


def _median(fn: Callable[[], Any], repeats: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def overhead(model: ChatLlamaCpp, repeats: int) -> dict[str, float]:
    """Prediction overhead with and without KV reuse, relative to a 128-token answer."""
    conversation = [SystemMessage(SYSTEM), HumanMessage(QUESTION)]
    request = PredictionRequest(messages=tuple(conversation))
    prefix = PrefixSharingPredictor(model)

    def reset() -> None:
        with model.lock:
            model.llama.reset()

    def answer() -> Any:
        return model.invoke(conversation, max_tokens=ANSWER_TOKENS, temperature=0.0)

    answer()  # warm-up
    rows: dict[str, list[float]] = {}
    tokens: list[int] = []
    for _ in range(repeats):
        reset()
        start = time.perf_counter()
        reply = answer()
        alone = (time.perf_counter() - start) * 1000.0
        n = max(1, int(reply.usage_metadata["output_tokens"]))
        tokens.append(n)
        timings = reply.response_metadata["timings"]
        per_token = float(timings["eval_ms"]) / n if timings["eval_ms"] else 0.0
        alone += per_token * (ANSWER_TOKENS - n)  # a random model may stop early
        reset()
        start = time.perf_counter()
        prefix.predict(request)
        predict = (time.perf_counter() - start) * 1000.0
        start = time.perf_counter()
        after = answer()
        after_ms = (time.perf_counter() - start) * 1000.0 + per_token * (ANSWER_TOKENS - n)
        reused = after.usage_metadata["input_tokens"] - after.usage_metadata["input_token_details"]["cache_read"]
        # The two answers generate the same tokens; only their prompt evaluation differs.
        saved = float(timings["prompt_eval_ms"]) - float(after.response_metadata["timings"]["prompt_eval_ms"])
        for key, value in (
            ("answer alone (128 tokens)", alone),
            ("predict, empty cache", predict),
            ("answer after predict", after_ms),
            ("overhead with reuse (wall clock)", predict + after_ms - alone),
            ("overhead with reuse (prompt timings)", predict - saved),
            ("answer tokens evaluated after predict", float(reused)),
        ):
            rows.setdefault(key, []).append(value)
    out = {key: statistics.median(values) for key, values in rows.items()}
    out["overhead without reuse"] = out["predict, empty cache"]
    out["answer prompt tokens"] = float(len(model.prompt_tokens(conversation)))
    out["generated tokens (median)"] = float(statistics.median(tokens))
    return out


def grade_reads(model: ChatLlamaCpp, repeats: int) -> dict[str, float]:
    """The prediction with the conversation cached (self-check evaluated), paper scale vs 1-10."""
    conversation = [SystemMessage(SYSTEM), HumanMessage(QUESTION)]
    request = PredictionRequest(messages=tuple(conversation))
    out: dict[str, float] = {}

    def conversation_cached() -> None:  # as after the previous answer: the self-check is not cached
        model.invoke(conversation, max_tokens=1)

    for name, scale in (("paper3", GradeScale.paper()), ("1-10", GradeScale.ten_point())):
        predictor = PrefixSharingPredictor(model, scale=scale)
        predictor.predict(request)  # tokenizes the label sequences once
        label_ms: list[float] = []

        def read(p: PrefixSharingPredictor = predictor, sink: list[float] = label_ms) -> None:
            p.predict(request)
            sink.append(float(model.last_stats["label_ms"]))

        out[f"read {name}"] = _median(read, repeats, conversation_cached)
        out[f"  of which label scoring {name}"] = statistics.median(label_ms)
        out[f"  extra decodes {name}"] = float(model.last_stats["label_steps"])
        out[f"  self-check tokens {name}"] = float(model.last_stats["evaluated_tokens"])
    single = out["read 1-10"] - out["  of which label scoring 1-10"]
    out["1-10 read / its first-token-only part"] = out["read 1-10"] / single
    return out


def grammar_cost(model: ChatLlamaCpp, repeats: int, n_tokens: int = 48) -> dict[str, float]:
    """ms per generated token of a forced tool call (grammar) and of free text, 1 prompt cached."""
    forced = model.bind_tools([TOOL], tool_choice="search_city_guide")

    def per_token(call: Callable[[], Any]) -> float:
        values = []
        for _ in range(repeats):
            msg = call()
            t = msg.response_metadata["timings"]
            generated = max(1, int(msg.usage_metadata["output_tokens"]))
            values.append((float(t["wall_ms"]) - float(t["prompt_eval_ms"])) / generated)
        return statistics.median(values)

    prompt = "Find museums in Paris for me."
    return {
        "with grammar ms/token": per_token(lambda: forced.invoke(prompt, max_tokens=n_tokens, temperature=0.0)),
        "without grammar ms/token": per_token(lambda: model.invoke(prompt, max_tokens=n_tokens, temperature=0.0)),
    }


def _load(path: Path | str, threads: int) -> ChatLlamaCpp:
    return ChatLlamaCpp(model_path=str(path), n_ctx=4096, n_threads=threads, seed=0, max_tokens=256)


def _print(title: str, rows: dict[str, float]) -> None:
    print(title)
    for key, value in rows.items():
        print(f"  {key:40} {value:10.2f}")


def _summary(label: str, o: dict[str, float], g: dict[str, float]) -> None:
    share = 100 * o["overhead with reuse (prompt timings)"] / o["answer alone (128 tokens)"]
    plain = 100 * o["overhead without reuse"] / o["answer alone (128 tokens)"]
    print(
        f"{label}: prediction overhead with reuse {share:.1f}% of a 128-token answer (goal <= 3%), "
        f"without reuse {plain:.1f}%; the 1-10 read (labels of several tokens) "
        f"{g['1-10 read / its first-token-only part']:.2f}x the same read without label scoring "
        "(goal <= 2x)"
    )


def main() -> None:
    """Run the sections on ``--model`` or on the real-tokenizer fixtures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", help="any GGUF file (default: build the real-tokenizer fixtures)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads for generation and prompts")
    args = parser.parse_args()
    print(f"llama.cpp, {args.threads} thread(s), medians of {args.repeats}, ms unless noted")
    if args.model:
        model = _load(args.model, args.threads)
        o, g = overhead(model, args.repeats), grade_reads(model, args.repeats)
        _print(f"{Path(args.model).name}: prediction overhead", o)
        _print(f"{Path(args.model).name}: grade reads (conversation cached)", g)
        _print(f"{Path(args.model).name}: tool grammar", grammar_cost(model, args.repeats))
        _summary(Path(args.model).name, o, g)
        return
    if not os.environ.get("RPRA_VOCAB_DIR"):
        raise SystemExit("pass --model PATH, or set RPRA_VOCAB_DIR to llama.cpp's vocab files (see scripts/test.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        qwen = family_vocab("qwen2")
        summaries = []
        for label, size in (("qwen2 64x2", {"n_embd": 64}), ("qwen2 512x8", {"n_embd": 512, "n_layers": 8})):
            path = write_tokenizer_gguf(
                Path(tmp) / f"{label.replace(' ', '-')}.gguf", like=qwen, n_ff=4 * size["n_embd"], **size
            )
            model = _load(path, args.threads)
            o, g = overhead(model, args.repeats), grade_reads(model, args.repeats)
            _print(f"{label} ({path.stat().st_size / 1e6:.0f} MB): prediction overhead", o)
            _print(f"{label}: grade reads (conversation cached)", g)
            summaries.append((label, o, g))
            del model
        for family, vocab in (("phi3", "32k"), ("qwen2", "152k"), ("gemma", "262k")):
            path = write_tokenizer_gguf(
                Path(tmp) / f"g-{family}.gguf", like=family_vocab(family), n_embd=64, chat_template=FAMILIES[family][1]
            )
            _print(
                f"tool grammar, {family} ({vocab} vocabulary, 64 wide)",
                grammar_cost(_load(path, args.threads), args.repeats),
            )
        for label, o, g in summaries:
            _summary(label, o, g)


if __name__ == "__main__":
    main()
