"""Fitting the learned predictor's head, with the featurizer's block weights tuned by inner CV.

A block weight scales one block of features (e.g. the task one-hot or the cues)
before the L2-penalised classifier sees it: a larger weight means a weaker penalty on
that block. Each candidate combination is fitted with its own inner-CV choice of
``C``; the combination with the lowest inner-CV log-loss wins. Only the training data
take part, so the held-out data of an outer cross-fit never choose the weights.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse

from rpra_agent.predictors._featurebase import Featurizer, Sample
from rpra_agent.predictors._ordinal import OrdinalLogit

__all__ = ["fit_head"]


def _candidates(featurizer: Featurizer, grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    blocks = getattr(featurizer, "blocks", None)
    if not grid or not callable(blocks) or not isinstance(getattr(featurizer, "weights", None), dict):
        return []
    present = blocks()
    axes = [(name, values) for name, values in grid.items() if name in present]
    names = [name for name, _ in axes]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*[v for _, v in axes])]


def fit_head(
    featurizer: Featurizer,
    train: Sequence[Sample],
    y: np.ndarray,
    groups: Sequence[str] | None,
    *,
    n_labels: int,
    options: Mapping[str, Any],
    grid: Mapping[str, Sequence[float]],
) -> tuple[OrdinalLogit, dict[str, Any]]:
    """Fit an :class:`OrdinalLogit` on the (fitted) featurizer's features of ``train``.

    With an empty grid or a featurizer without blocks, the featurizer's current
    weights are used. Otherwise the grid is searched and the featurizer's ``weights``
    are set to the winner.

    Returns:
        The fitted classifier and a summary of the search (empty when none ran).
    """
    candidates = _candidates(featurizer, grid)
    if len(candidates) <= 1:
        return OrdinalLogit(n_labels, **options).fit(featurizer.transform(train), y, groups=groups), {}
    tunable: Any = featurizer
    base = dict(tunable.weights)
    tunable.weights = dict.fromkeys(base, 1.0)
    try:
        unit = featurizer.transform(train)
        blocks = tunable.blocks()
    finally:
        tunable.weights = base
    best: tuple[float, dict[str, float], OrdinalLogit] | None = None
    losses: dict[str, float] = {}
    for cand in candidates:
        weights = {**base, **cand}
        cols = np.ones(unit.shape[1])
        for name, (start, end) in blocks.items():
            cols[start:end] = weights.get(name, 1.0)
        model = OrdinalLogit(n_labels, **options).fit(unit @ sparse.diags(cols), y, groups=groups)
        loss = model.cv_loss.get(repr(model.C), math.inf)
        losses[json.dumps(cand, sort_keys=True)] = round(loss, 5)
        if best is None or loss < best[0]:
            best = (loss, weights, model)
    if best is None:  # pragma: no cover - candidates is non-empty
        raise RuntimeError("no block-weight candidate was fitted")
    tunable.weights = best[1]
    return best[2], {"chosen": {k: best[1][k] for k in candidates[0]}, "cv_logloss": losses}
