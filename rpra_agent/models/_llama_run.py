"""The token loop over ``llama_cpp.Llama``: generation with logprobs, and last-position logits.

Both paths keep llama.cpp's evaluated prefix: ``Llama.generate`` reuses the longest
common token prefix of the previous input, and :func:`last_logits` does the same
before evaluating, so a grade prediction and an answer whose prompts share a prefix
evaluate it once. Callers hold the model's lock.
"""

from __future__ import annotations

import codecs
import math
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rpra_agent.core.errors import RPRAError

__all__ = [
    "ContextOverflowError",
    "Delta",
    "Outcome",
    "Sampling",
    "check_fits",
    "eval_with_logits",
    "context_size",
    "holdback",
    "last_logits",
    "last_position_logits",
    "reusable_prefix",
    "stream_tokens",
]


class ContextOverflowError(RPRAError, ValueError):
    """A prompt does not fit the model's context window.

    Attributes:
        prompt_tokens: The prompt's size in tokens.
        n_ctx: The context size in tokens.
    """

    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(
            f"the prompt has {prompt_tokens} tokens but the model's context holds {n_ctx}: raise n_ctx "
            "(or kv_cache_mb), or send a shorter conversation"
        )
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


def context_size(llama: Any) -> int:
    """The usable context: llama.cpp pads small contexts (to 256), llama-cpp-python's buffers do not."""
    return min(int(llama.n_ctx()), int(llama.input_ids.shape[0]))


def check_fits(llama: Any, n_tokens: int) -> None:
    """Raise :class:`ContextOverflowError` unless ``n_tokens`` leave room for one more token."""
    if n_tokens >= context_size(llama):
        raise ContextOverflowError(n_tokens, context_size(llama))


@dataclass(frozen=True)
class Sampling:
    """Sampler settings passed to ``Llama.generate``."""

    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass
class Delta:
    """New text, with the OpenAI-format logprob entries of the tokens that produced it."""

    text: str
    logprobs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Outcome:
    """How a generation ended, its token counts and llama.cpp's timings."""

    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    timings: dict[str, float] = field(default_factory=dict)


def reusable_prefix(llama: Any, tokens: Sequence[int]) -> int:
    """How many leading ``tokens`` llama.cpp's KV cache already holds (and will reuse)."""
    if llama.n_tokens <= 0 or not tokens:
        return 0
    cached = llama.input_ids[: llama.n_tokens]
    n = min(len(cached), len(tokens))
    same = np.asarray(cached[:n]) == np.asarray(tokens[:n], dtype=cached.dtype)
    lcp = int(n if same.all() else np.argmin(same))
    return lcp - 1 if lcp == len(tokens) else lcp


def _perf(llama: Any) -> dict[str, float]:
    import llama_cpp

    data = llama_cpp.llama_perf_context(llama.ctx)
    return {
        "prompt_eval_ms": float(data.t_p_eval_ms),
        "eval_ms": float(data.t_eval_ms),
        "prompt_eval_tokens": float(data.n_p_eval),
        "eval_tokens": float(data.n_eval),
    }


def _reset_perf(llama: Any) -> None:
    import llama_cpp

    llama_cpp.llama_perf_context_reset(llama.ctx)


def eval_with_logits(llama: Any, tokens: Sequence[int], n_logits: int) -> np.ndarray:
    """Evaluate ``tokens`` after the cached ones; a copy of the logits at the last ``n_logits`` positions.

    Only those positions go through the output layer, so asking for a few more rows
    than the last costs little (the label paths of a grade read ride on the prompt's
    decode this way).
    """
    import llama_cpp

    tokens = list(tokens)
    n_past = int(llama.n_tokens)
    llama._ctx.kv_cache_seq_rm(-1, n_past, -1)
    first_wanted = len(tokens) - n_logits
    n_vocab = llama.n_vocab()
    rows: list[np.ndarray] = []
    for start in range(0, len(tokens), llama.n_batch):
        chunk = tokens[start : start + llama.n_batch]
        llama._batch.set_batch(batch=chunk, n_past=n_past, logits_all=False)
        wanted = range(max(0, first_wanted - start), len(chunk))
        for i in wanted:
            llama._batch.batch.logits[i] = True
        llama._ctx.decode(llama._batch)
        rows += [
            np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama.ctx, i), shape=(n_vocab,)).copy() for i in wanted
        ]
        llama.input_ids[n_past : n_past + len(chunk)] = chunk
        n_past += len(chunk)
        llama.n_tokens = n_past
    llama._requires_eval = False
    return np.stack(rows)


def last_position_logits(llama: Any) -> np.ndarray:
    """A view of the logits at the last evaluated position (copy it before the next eval)."""
    return _logits(llama)


def _logits(llama: Any) -> np.ndarray:
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llama.n_vocab(),))


def _piece(llama: Any, token: int) -> bytes:
    return bytes(llama.detokenize([token]))


def _logprob_entry(llama: Any, token: int, k: int) -> dict[str, Any]:
    logits = _logits(llama).astype(np.float64)
    top = float(logits.max())
    lse = top + math.log(float(np.exp(logits - top).sum()))
    k = max(0, min(k, logits.shape[0]))
    best = np.argpartition(-logits, k - 1)[:k] if k else np.array([], dtype=int)
    best = best[np.argsort(-logits[best])]

    def item(tok: int) -> dict[str, Any]:
        raw = _piece(llama, tok)
        return {"token": raw.decode("utf-8", errors="replace"), "logprob": float(logits[tok] - lse), "bytes": list(raw)}

    return {**item(token), "top_logprobs": [item(int(t)) for t in best]}


def holdback(text: str, stop: Sequence[str]) -> int:
    """Length of the longest suffix of ``text`` that could start a stop string."""
    best = 0
    for s in stop:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


def stream_tokens(
    llama: Any,
    prompt: list[int],
    *,
    sampling: Sampling,
    grammar: str | None = None,
    lazy_grammar: bool = False,
    max_tokens: int | None = None,
    stop: Sequence[str] = (),
    top_logprobs: int | None = None,
    seed: int | None = None,
) -> Generator[Delta, None, Outcome]:
    """Generate after ``prompt``, yielding text deltas; returns the :class:`Outcome`.

    Args:
        llama: The ``llama_cpp.Llama`` (the caller holds its lock).
        prompt: Prompt tokens.
        sampling: Sampler settings.
        grammar: GBNF constraining the output.
        lazy_grammar: Drop the grammar after the first token unless that token
            starts with ``<`` (a tool call), so free text is not slowed down.
        max_tokens: Cap on generated tokens (``None``: until the context is full).
        stop: Stop strings (excluded from the text).
        top_logprobs: Attach logprobs with this many alternatives (``None``: none).
        seed: Sampler seed.
    """
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar

    n_ctx = context_size(llama)
    check_fits(llama, len(prompt))
    limit = n_ctx - len(prompt) if max_tokens is None or max_tokens <= 0 else min(max_tokens, n_ctx - len(prompt))
    cached = reusable_prefix(llama, prompt)
    if seed is not None:
        llama.set_seed(seed)
    _reset_perf(llama)
    args = {
        "temp": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k, "min_p": sampling.min_p,
        "repeat_penalty": sampling.repeat_penalty, "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
    }  # fmt: skip
    gen = llama.generate(prompt, grammar=LlamaGrammar.from_string(grammar) if grammar else None, **args)
    vocab = llama._model.vocab
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    completion: list[int] = []
    text, emitted, pending = "", 0, []
    finish = "length"
    start = time.perf_counter()
    try:
        while len(completion) < limit:
            try:
                token = next(gen)
            except StopIteration:
                finish = "stop"
                break
            entry = _logprob_entry(llama, token, top_logprobs) if top_logprobs is not None else None
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            completion.append(token)
            if lazy_grammar and grammar and len(completion) == 1 and not _piece(llama, token).startswith(b"<"):
                gen.close()
                gen = llama.generate(prompt + completion, **args)
            text += decoder.decode(_piece(llama, token))
            if entry is not None:
                pending.append(entry)
            hits = [i for i in (text.find(s, max(0, emitted - len(s))) for s in stop if s) if i >= 0]
            if hits:
                text, finish = text[: min(hits)], "stop"
                break
            safe = len(text) - holdback(text, stop)
            if safe > emitted:
                yield Delta(text[emitted:safe], pending)
                emitted, pending = safe, []
    finally:
        gen.close()
    if finish != "stop":
        text += decoder.decode(b"", final=True)
    if len(text) > emitted or pending:
        yield Delta(text[emitted:], pending)
    timings = _perf(llama)
    timings["wall_ms"] = (time.perf_counter() - start) * 1000.0
    return Outcome(finish, len(prompt), len(completion), cached, timings)


def last_logits(llama: Any, tokens: list[int], extra: Sequence[int] = ()) -> tuple[np.ndarray, int]:
    """Evaluate ``tokens`` (reusing the cached prefix), then ``extra``, in one pass.

    Returns:
        The logits at the last prompt position and at each ``extra`` token (one row
        each, copies), and how many tokens were reused from the KV cache.
    """
    if not tokens:
        raise ValueError("cannot evaluate an empty prompt")
    check_fits(llama, len(tokens) + len(extra))
    keep = reusable_prefix(llama, tokens)
    if keep > 0 and llama._ctx.kv_cache_seq_rm(-1, keep, -1):
        llama.n_tokens = keep
    else:
        keep = 0
        llama.reset()
    _reset_perf(llama)
    return eval_with_logits(llama, [*tokens[keep:], *extra], 1 + len(extra)), keep
