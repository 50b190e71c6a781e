"""Exact grade distributions from llama.cpp: every label's whole token sequence is scored.

A label such as ``10`` takes two tokens on most vocabularies (``1``, ``0``) and a word
such as ``great`` may be cut ``gre`` + ``at`` after a newline on SentencePiece ones, so
reading the first token's probability is wrong. Here each label has surface forms (as
written, with a leading space, capitalised; tokenized as the model would write them
right after the prompt's last character), their token sequences form a trie, and the
probability of each sequence is the product of next-token probabilities along it,
evaluated with llama.cpp's KV cache: the prompt once, with the longest inner path of the
trie appended to the same decode, then one decode per other deepest inner trie node
(its whole path at once, logits at every position), rewinding the cache between
branches and back to the prompt at the end.

A sequence that is a proper prefix of another label's (``1`` of ``10``) keeps only the
mass that does not continue into it: ``P(1) - P(10)``. The label masses are
renormalised over the label set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rpra_agent.core.errors import PredictorError

__all__ = ["LabelSequences", "inner_paths", "label_sequences", "read_grades"]

LabelSequences = dict[tuple[int, ...], str]
"""Token sequence -> the label it spells."""


def _forms(label: str) -> list[str]:
    out = [label, " " + label, label.capitalize(), " " + label.capitalize(), label.lower(), " " + label.lower()]
    return list(dict.fromkeys(out))


def _in_context(llama: Any, anchor: str, text: str) -> tuple[int, ...]:
    base = llama.tokenize(anchor.encode("utf-8"), add_bos=False, special=False)
    full = llama.tokenize((anchor + text).encode("utf-8"), add_bos=False, special=False)
    if full[: len(base)] == base and len(full) > len(base):
        return tuple(int(t) for t in full[len(base) :])
    return tuple(int(t) for t in llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def label_sequences(llama: Any, labels: Sequence[str], anchor: str = "\n") -> LabelSequences:
    """The token sequences of every label's forms, written right after ``anchor``.

    Forms whose sequence is shared by two labels are dropped.

    Raises:
        PredictorError: When two labels, as written, tokenize identically.
    """
    primary = [_in_context(llama, anchor, label) for label in labels]
    if len(set(primary)) != len(labels) or not all(primary):
        raise PredictorError(
            f"grade labels {list(labels)} do not have distinct token sequences in this model's vocabulary; "
            "use labels that are spelled differently",
            predictor="forward_pass",
        )
    owner: dict[tuple[int, ...], set[str]] = {}
    for label in labels:
        for form in _forms(label):
            seq = _in_context(llama, anchor, form)
            if seq:
                owner.setdefault(seq, set()).add(label)
    return {seq: next(iter(ls)) for seq, ls in owner.items() if len(ls) == 1}


class _Step:
    """One position's logits and their log-normaliser (a log-softmax computed only where read)."""

    def __init__(self, logits: np.ndarray) -> None:
        self.logits = logits
        top = float(logits.max())
        self.lse = top + math.log(float(np.exp(logits - np.float32(top)).sum(dtype=np.float64)))

    def __getitem__(self, token: int) -> float:
        return float(self.logits[token]) - self.lse


def inner_paths(seqs: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """The deepest inner trie nodes: each one's path is one decode of a grade read (longest first)."""
    inner = {s[:i] for s in seqs for i in range(1, len(s))}
    deepest = [p for p in inner if not any(len(q) > len(p) and q[: len(p)] == p for q in inner)]
    return sorted(deepest, key=lambda p: (-len(p), p))


def _sequence_logprobs(
    llama: Any, n_prompt: int, rows: np.ndarray, seqs: Sequence[tuple[int, ...]], first: tuple[int, ...] = ()
) -> dict:
    """Log P(seq | prompt) for each sequence; the cache holds the prompt (plus ``first``) before, the prompt after.

    ``rows`` are the logits at the prompt's last position and at each token of
    ``first`` (an inner path evaluated with the prompt); every other deepest inner
    node's path is one more decode, logits at every position.
    """
    from rpra_agent.models._llama_run import eval_with_logits

    step: dict[tuple[int, ...], _Step] = {first[:i]: _Step(rows[i]) for i in range(len(first) + 1)}
    current = first
    try:
        for path in inner_paths(seqs):
            if path == first:
                continue
            common = 0
            while common < min(len(current), len(path)) and current[common] == path[common]:
                common += 1
            if common < len(current) or llama.n_tokens != n_prompt + common:
                _rewind(llama, n_prompt + common)
            for i, row in enumerate(eval_with_logits(llama, path[common:], len(path) - common)):
                step[path[: common + i + 1]] = _Step(row)
            current = path
    finally:
        if current:
            _rewind(llama, n_prompt)
    return {s: float(sum(step[s[:i]][s[i]] for i in range(len(s)))) for s in seqs}


def _rewind(llama: Any, n: int) -> None:
    llama._ctx.kv_cache_seq_rm(-1, n, -1)
    llama.n_tokens = n
    llama._requires_eval = True  # the live logits are a label step's: generate must refresh them


def read_grades(
    llama: Any,
    n_prompt: int,
    rows: np.ndarray,
    seqs: LabelSequences,
    labels: Sequence[str],
    first: tuple[int, ...] = (),
) -> tuple[dict[str, float], int, float]:
    """The distribution over ``labels`` after a prompt of ``n_prompt`` tokens.

    ``rows`` holds the logits at the prompt's last position, then at each token of
    ``first``, the inner path evaluated together with the prompt (see :func:`inner_paths`).

    Returns:
        Plain floats summing to 1, how many extra decode calls it took, and their milliseconds.
    """
    start = time.perf_counter()
    logp = _sequence_logprobs(llama, n_prompt, rows, list(seqs), first)
    label_ms = (time.perf_counter() - start) * 1000.0
    top = max(logp.values())
    prob = {s: math.exp(lp - top) for s, lp in logp.items()}
    mass = dict.fromkeys(labels, 0.0)
    for s, p in prob.items():
        longer = [t for t in prob if len(t) > len(s) and t[: len(s)] == s]
        children = [t for t in longer if not any(len(s) < len(u) < len(t) and t[: len(u)] == u for u in longer)]
        mass[seqs[s]] += max(0.0, p - sum(prob[t] for t in children))
    total = sum(mass.values())
    if not total > 0.0:
        raise PredictorError("the grade labels have no probability mass after this prompt", predictor="forward_pass")
    steps = len([p for p in inner_paths(list(seqs)) if p != first])
    return {label: float(m / total) for label, m in mass.items()}, steps, label_ms
