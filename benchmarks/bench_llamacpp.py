"""Grade prediction vs a 128-token answer on a tiny synthesized llama.cpp model, with and without KV reuse.

Run by hand (figures depend on the machine and its load)::

    .venv/bin/python benchmarks/bench_llamacpp.py --repeats 15

The model is a scripted GGUF (``rpra_agent.testing.gguf``) that answers with exactly
128 tokens and predicts ``great``. Two vocabularies are measured: the synthesizer's
default (one token per character, so prompts are 4-5x longer in tokens than on a real
model) and a word vocabulary (about one token per word, like a real BPE vocabulary).

Rows (medians over the repeats, milliseconds):

- answer alone: the 128-token answer with an empty KV cache.
- predict, cold: :class:`PrefixSharingPredictor` with an empty cache: one forward pass
  over the answer prompt followed by a short self-check the assistant turn starts with.
- answer after predict: the answer right after that prediction; its prompt is a token
  prefix of the prediction's, so it re-evaluates one token.
- PA overhead with reuse = predict (cold) + answer after predict - answer alone.
- PA overhead without reuse = predict (cold), the cache being reset before the answer.
- predict, conversation cached: the prediction when the conversation is already in the
  cache (e.g. after the previous answer): only the self-check is evaluated.
- zero-shot (paper prompt): :class:`ZeroShotPredictor`, whose prompt shares no prefix.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from langchain_core.messages import HumanMessage, SystemMessage

from rpra_agent.models.llamacpp import ChatLlamaCpp
from rpra_agent.predictors.prefix import PrefixSharingPredictor
from rpra_agent.core.prediction import PredictionRequest
from rpra_agent.predictors import ZeroShotPredictor
from rpra_agent.testing.gguf import scripted_pieces, write_scripted_gguf

ANSWER_TOKENS = 128
SYSTEM = (
    "You are a careful travel assistant. Answer questions about cities, their history and how to get around. "
    "Be accurate and concise, and say so when you are not sure."
)
QUESTION = (
    "I will spend three days in Paris next spring with my parents, who do not walk much. Which districts "
    "should we stay in, how do we get from the airport to the city, and which museums are worth the time?"
)
LONG_TEXT = (
    "Stay in the Marais or Saint-Germain: both are central, flat and full of small cafes. From Charles de Gaulle "
    "take the RER B train or a taxi with a fixed fare to the right or left bank. The Louvre deserves a morning, "
    "the Orsay an afternoon, and the Orangerie is small enough for a tired hour. Book tickets online, use the "
    "metro lifts where they exist, and rest in the Luxembourg gardens between visits. Evening boat trips on the "
    "Seine show the monuments without any walking at all, which your parents may enjoy most of everything."
)


def _reply() -> str:
    pieces = scripted_pieces(LONG_TEXT, grade="great")
    if len(pieces) < ANSWER_TOKENS:
        raise SystemExit("the reply text is too short for a 128-token answer")
    reply = "".join(pieces[:ANSWER_TOKENS])
    while len(scripted_pieces(reply, grade="great")) != ANSWER_TOKENS:
        reply = reply[:-1]
    return reply


def _words(predictor: PrefixSharingPredictor, request: PredictionRequest) -> list[str]:
    text = " ".join([SYSTEM, QUESTION, predictor.prefill(request), "user system assistant"])
    return sorted({w.strip(".,:;?!()[]") for w in text.split()} - {""})


def _bench(model: ChatLlamaCpp, repeats: int) -> dict[str, float]:
    conversation = [SystemMessage(SYSTEM), HumanMessage(QUESTION)]
    request = PredictionRequest(messages=tuple(conversation))
    prefix, zero = PrefixSharingPredictor(model), ZeroShotPredictor(model)

    def reset() -> None:
        with model.lock:
            model.llama.reset()

    def answer() -> None:
        reply = model.invoke(conversation)
        if reply.usage_metadata["output_tokens"] != ANSWER_TOKENS:  # type: ignore[index]
            raise SystemExit(f"expected {ANSWER_TOKENS} answer tokens, got {reply.usage_metadata}")

    model.invoke(conversation)  # warm-up
    rows: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[[], object]) -> object:
        start = time.perf_counter()
        result = fn()
        rows.setdefault(name, []).append((time.perf_counter() - start) * 1000.0)
        return result

    for _ in range(repeats):
        reset()
        timed("answer alone", answer)
        stats = model.last_stats
        rows.setdefault("  generation tok/s", []).append(ANSWER_TOKENS / (stats["timings"]["eval_ms"] / 1000.0))
        rows.setdefault("  prompt eval tok/s", []).append(
            stats["prompt_tokens"] / (stats["timings"]["prompt_eval_ms"] / 1000.0)
        )
        reset()
        prediction = timed("predict, cold", lambda: prefix.predict(request))
        timed("answer after predict", answer)
        reused = model.last_stats["cached_tokens"]
        timed("predict, conversation cached", lambda: prefix.predict(request))
        warm = model.last_stats
        reset()
        timed("zero-shot (paper prompt), cold", lambda: zero.predict(request))
        rows.setdefault("PA overhead with reuse", []).append(
            rows["predict, cold"][-1] + rows["answer after predict"][-1] - rows["answer alone"][-1]
        )
    if prediction.grade != "great":  # type: ignore[attr-defined]
        raise SystemExit(f"the scripted model should predict great, got {prediction}")
    out = {name: statistics.median(values) for name, values in rows.items()}
    out["PA overhead without reuse"] = out["predict, cold"]
    out["  answer prompt tokens"] = stats["prompt_tokens"]
    out["  answer tokens reused after predict"] = reused
    out["  self-check tokens (cached predict)"] = warm["evaluated_tokens"]
    out["  zero-shot prompt tokens"] = model.last_stats["prompt_tokens"]
    return out


def main() -> None:
    """Build the models, run both vocabularies, print the table side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads for generation and prompts")
    args = parser.parse_args()
    reply = _reply()
    with tempfile.TemporaryDirectory() as tmp:
        request = PredictionRequest(messages=(SystemMessage(SYSTEM), HumanMessage(QUESTION)))
        words = _words(PrefixSharingPredictor(None), request)  # type: ignore[arg-type]
        results = {}
        for label, vocab in (("chars vocab", ()), ("words vocab", words)):
            path = write_scripted_gguf(Path(tmp) / f"{label[:5]}.gguf", reply=reply, grade="great", words=vocab)
            model = ChatLlamaCpp(model_path=str(path), n_ctx=4096, n_threads=args.threads, seed=0, max_tokens=256)
            results[label] = _bench(model, args.repeats)
    labels = list(results)
    print(
        f"tiny scripted llama.cpp model, {ANSWER_TOKENS}-token answer, {args.threads} thread(s), "
        f"median of {args.repeats} (ms unless noted)"
    )
    print(f"{'':34}" + "".join(f"{label:>16}" for label in labels))
    for row in results[labels[0]]:
        print(f"{row:34}" + "".join(f"{results[label][row]:>16.1f}" for label in labels))
    for label in labels:
        r = results[label]
        print(
            f"{label}: prediction overhead with reuse {100 * r['PA overhead with reuse'] / r['answer alone']:.1f}% "
            f"of the answer, without reuse {100 * r['PA overhead without reuse'] / r['answer alone']:.1f}%, "
            f"with the conversation cached {100 * r['predict, conversation cached'] / r['answer alone']:.1f}% "
            f"(target < 10%)"
        )


if __name__ == "__main__":
    main()
