"""Small synthetic training data for the learned-predictor tests."""

from __future__ import annotations

import random

from rpra_agent.evaluation.datasets import EvalDataset, EvalItem, ModelResponse
from rpra_agent.predictors.features import Sample

WEAK = "small-7b"
STRONG = "large-xl"

_MATH = ["integral", "derivative", "prove", "equation", "probability", "matrix"]
_CHAT = ["poem", "story", "email", "greeting", "slogan", "haiku"]


def make_samples(n: int = 60, *, seed: int = 0) -> tuple[list[Sample], list[float]]:
    """Maths requests the small model fails (score 2-4), writing it handles (8-10)."""
    rng = random.Random(seed)
    samples, scores = [], []
    for i in range(n):
        math = i % 2 == 0
        word = rng.choice(_MATH if math else _CHAT)
        task = "math" if math else "writing"
        draft = f"The answer is {rng.randint(1, 99)}." if math else f"Here is a lovely {word} for you."
        samples.append(Sample(request=f"Please help with this {word} number {i}", draft=draft, task=task))
        scores.append(float(rng.randint(2, 4) if math else rng.randint(8, 10)))
    return samples, scores


def make_dataset(n: int = 60, *, seed: int = 0, name: str = "synthetic", turns: bool = False) -> EvalDataset:
    """An :class:`EvalDataset` over :func:`make_samples`; with ``turns`` every item gets a second turn."""
    samples, scores = make_samples(n, seed=seed)
    rng = random.Random(seed + 1)
    items = []
    for i, (s, score) in enumerate(zip(samples, scores, strict=True)):
        first = {"role": "user", "content": s.request}
        convs = [((first,), score)]
        if turns:
            convs.append(
                ((first, {"role": "assistant", "content": "..."}, {"role": "user", "content": "Shorter."}), score)
            )
        for t, (messages, sc) in enumerate(convs):
            items.append(
                EvalItem(
                    id=f"q{i}-t{t + 1}",
                    prompt=s.request,
                    messages=messages,
                    category=s.task,
                    responses={
                        WEAK: ModelResponse(text=s.draft, score=sc),
                        STRONG: ModelResponse(text="strong", score=float(rng.randint(8, 10))),
                    },
                )
            )
    return EvalDataset(
        name=name, items=tuple(items), weak=WEAK, strong=STRONG, score_range=(1.0, 10.0), attribution="synthetic"
    )
