"""Small synthetic recorded evaluations for the replay / pipeline / report tests."""

from __future__ import annotations

import random

from rpra_agent.evaluation.datasets import EvalDataset, EvalItem, ModelResponse

WEAK = "weak-7b"
STRONG = "strong-xl"


def toy_dataset(n: int = 24, *, seed: int = 0, binary: bool = False, name: str = "toy") -> EvalDataset:
    """``n`` items in three categories; the weak model is bad at ``math``, fine at ``chat``."""
    rng = random.Random(seed)
    cats = ("math", "chat", "code")
    items = []
    for i in range(n):
        cat = cats[i % 3]
        if binary:
            weak = float(rng.random() < {"math": 0.2, "chat": 0.9, "code": 0.5}[cat])
            strong = float(rng.random() < 0.9)
        else:
            weak = float({"math": rng.randint(1, 5), "chat": rng.randint(6, 10), "code": rng.randint(3, 8)}[cat])
            strong = float(rng.randint(7, 10))
        prompt = f"question {i} about {cat}?"
        items.append(
            EvalItem(
                id=f"q{i}",
                prompt=prompt,
                messages=({"role": "user", "content": prompt},),
                category=cat,
                responses={
                    WEAK: ModelResponse(text=f"weak answer {i} " + "x" * (int(weak) * 3), score=weak, tokens=10 + i),
                    STRONG: ModelResponse(text=f"strong answer {i}", score=strong, tokens=40 + i),
                },
            )
        )
    return EvalDataset(
        name=name,
        items=tuple(items),
        weak=WEAK,
        strong=STRONG,
        score_range=(0.0, 1.0) if binary else (1.0, 10.0),
        attribution="synthetic test data",
    )
