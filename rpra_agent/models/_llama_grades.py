"""Exact grade distributions from llama.cpp: every label's whole token sequence is scored.

A label such as ``10`` takes two tokens on most vocabularies (``1``, ``0``) and a word
such as ``great`` may be cut ``gre`` + ``at`` after a newline on SentencePiece ones, so
reading the first token's probability is wrong. Here each label has surface forms (as
written, with a leading space, capitalised; tokenized as the model would write them
right after the prompt's last character), their token sequences form a trie, and the
probability of each sequence is the product of next-token probabilities along it,
evaluated with llama.cpp's KV cache: the prompt once, then one single-token step per
inner trie node, rewinding the cache between branches and back to the prompt at the end.

A sequence that is a proper prefix of another label's (``1`` of ``10``) keeps only the
mass that does not continue into it: ``P(1) - P(10)``. The label masses are
renormalised over the label set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rpra_agent.core.errors import PredictorError

__all__ = ["LabelSequences", "label_sequences", "read_grades"]

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


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    top = float(z.max())
    return z - (top + math.log(float(np.exp(z - top).sum())))


def _sequence_logprobs(llama: Any, n_prompt: int, root: np.ndarray, seqs: Sequence[tuple[int, ...]]) -> dict:
    """Log P(seq | prompt) for each sequence; the cache holds exactly the prompt before and after."""
    from rpra_agent.models._llama_run import last_position_logits

    inner = sorted({s[:i] for s in seqs for i in range(1, len(s))})
    step: dict[tuple[int, ...], np.ndarray] = {(): _log_softmax(root)}
    current: tuple[int, ...] = ()
    try:
        for node in inner:
            common = 0
            while common < min(len(current), len(node)) and current[common] == node[common]:
                common += 1
            if common < len(current):
                _rewind(llama, n_prompt + common)
            llama.eval(list(node[common:]))
            step[node] = _log_softmax(last_position_logits(llama))
            current = node
    finally:
        if current:
            _rewind(llama, n_prompt)
    return {s: float(sum(step[s[:i]][s[i]] for i in range(len(s)))) for s in seqs}


def _rewind(llama: Any, n: int) -> None:
    llama._ctx.kv_cache_seq_rm(-1, n, -1)
    llama.n_tokens = n
    llama._requires_eval = True  # the live logits are a label step's: generate must refresh them


def read_grades(
    llama: Any, n_prompt: int, root: np.ndarray, seqs: LabelSequences, labels: Sequence[str]
) -> tuple[dict[str, float], int]:
    """The distribution over ``labels`` after a prompt of ``n_prompt`` tokens whose last logits are ``root``.

    Returns:
        Plain floats summing to 1, and how many extra single-token steps it took.
    """
    logp = _sequence_logprobs(llama, n_prompt, root, list(seqs))
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
    steps = len({s[:i] for s in seqs for i in range(1, len(s))})
    return {label: float(m / total) for label, m in mass.items()}, steps
