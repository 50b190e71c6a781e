"""The cost of each recorded call, under the one :class:`~rpra_agent.store.prices.PriceTable`."""

from __future__ import annotations

import math

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.evaluation.datasets.records import EvalDataset
from rpra_agent.store.prices import PriceTable

__all__ = ["PriceTable", "estimate_tokens", "item_costs"]


def estimate_tokens(text: str) -> int:
    """A rough token count: characters / 4, rounded up (used when none was recorded)."""
    return math.ceil(len(text) / 4)


def item_costs(dataset: EvalDataset, model: str, prices: PriceTable | None = None) -> np.ndarray:
    """The cost of ``model``'s call on every item.

    With a price for ``model`` in ``prices``: its per-call price plus its output-token
    price times the answer's tokens (the recorded count or, when none was recorded,
    an estimate from the answer's length, :func:`estimate_tokens`; recordings hold the
    answer's tokens only). Without a price: the recorded ``cost`` of each response.

    Raises:
        ConfigError: when neither a price nor a recorded cost is available, or a
            per-token price meets an item with neither tokens nor text.
    """
    out = np.empty(len(dataset.items), dtype=float)
    priced = prices is not None and model in prices
    per_token = priced and prices is not None and (prices.lookup(model) or (0.0, 0.0))[1] > 0
    for i, item in enumerate(dataset.items):
        response = item.responses.get(model)
        if not priced or prices is None:
            if response is None or response.cost is None:
                raise ConfigError(
                    f"item {item.id!r} has no recorded cost for {model!r} and the price table has no price for it; "
                    f"pass a price, e.g. --price-table '{model}=1/call'"
                )
            out[i] = response.cost
            continue
        tokens = 0
        if per_token:
            if response is not None and response.tokens is not None:
                tokens = response.tokens
            elif response is not None and response.text is not None:
                tokens = estimate_tokens(response.text)
            else:
                raise ConfigError(
                    f"item {item.id!r}: a per-token price for {model!r} needs recorded tokens or the answer text; "
                    "use a per-call price for this dataset"
                )
        cost = prices.call_cost(model, 0, tokens)
        out[i] = 0.0 if cost is None else cost
    return out
