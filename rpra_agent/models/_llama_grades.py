"""Reading a grade distribution from one set of next-token logits."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rpra_agent.core.errors import PredictorError

__all__ = ["grade_token_map", "renormalise"]


def grade_token_map(llama: Any, labels: Sequence[str]) -> dict[int, str]:
    """Map first tokens to grade labels (the word, with/without a leading space or capital).

    Raises:
        PredictorError: When two grade words share their first token.
    """

    def first(text: str) -> int | None:
        toks = llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return int(toks[0]) if toks else None

    primary = [first(label) for label in labels]
    if None in primary or len(set(primary)) != len(labels):
        raise PredictorError(
            f"grade words {list(labels)} do not have distinct first tokens in this model's vocabulary; "
            "use grade words that start differently, or SelfPredictor(method='logprobs')",
            predictor="forward_pass",
        )
    owner: dict[int, set[str]] = {}
    for label in labels:
        for variant in (label, " " + label, label.capitalize(), " " + label.capitalize()):
            tok = first(variant)
            if tok is not None:
                owner.setdefault(tok, set()).add(label)
    return {tok: next(iter(ls)) for tok, ls in owner.items() if len(ls) == 1}


def renormalise(logits: np.ndarray, mapping: dict[int, str], labels: Sequence[str]) -> dict[str, float]:
    """Softmax over the mapped tokens, summed per label: plain floats summing to 1."""
    top = max(float(logits[t]) for t in mapping)
    mass = dict.fromkeys(labels, 0.0)
    for tok, label in mapping.items():
        mass[label] += math.exp(float(logits[tok]) - top)
    total = sum(mass.values())
    return {label: float(m / total) for label, m in mass.items()}
