"""Price tables: what one call of each model costs, per call and per 1k tokens."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.evaluation.datasets import EvalDataset

__all__ = ["ModelPrice", "PriceTable", "estimate_tokens", "item_costs"]


@dataclass(frozen=True)
class ModelPrice:
    """The price of one model.

    Attributes:
        per_call: Fixed price of each call.
        per_1k_tokens: Price per 1,000 tokens of the call (as recorded in
            ``ModelResponse.tokens``, or estimated from the answer's length).
    """

    per_call: float = 0.0
    per_1k_tokens: float = 0.0

    def __post_init__(self) -> None:
        for name in ("per_call", "per_1k_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a non-negative number, got {value!r}")


@dataclass(frozen=True)
class PriceTable:
    """Prices by model name.

    Attributes:
        prices: The price of each model.
    """

    prices: Mapping[str, ModelPrice] = field(default_factory=dict)

    def __contains__(self, model: object) -> bool:
        return model in self.prices

    def price(self, model: str) -> ModelPrice:
        """The price of ``model``.

        Raises:
            ConfigError: if the table has no price for it.
        """
        try:
            return self.prices[model]
        except KeyError:
            raise ConfigError(
                f"no price for model {model!r}; add one, e.g. --price '{model}=0.01/1k' or '{model}=0.002/call'"
            ) from None

    @classmethod
    def parse(cls, specs: Iterable[str]) -> PriceTable:
        """Build a table from ``MODEL=AMOUNT/call`` and ``MODEL=AMOUNT/1k`` strings.

        Several specs for one model add up (``m=0.001/call`` and ``m=0.01/1k``).
        """
        per_call: dict[str, float] = {}
        per_1k: dict[str, float] = {}
        for spec in specs:
            model, sep, rest = spec.rpartition("=")
            amount, slash, unit = rest.partition("/")
            try:
                value = float(amount)
            except ValueError:
                value = float("nan")
            if not sep or not model or not slash or unit not in ("call", "1k") or not math.isfinite(value):
                raise ConfigError(f"bad price {spec!r}; write MODEL=AMOUNT/call or MODEL=AMOUNT/1k (per 1,000 tokens)")
            target = per_call if unit == "call" else per_1k
            target[model] = target.get(model, 0.0) + value
        models = dict.fromkeys([*per_call, *per_1k])
        return cls({m: ModelPrice(per_call.get(m, 0.0), per_1k.get(m, 0.0)) for m in models})

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> PriceTable:
        """Build from ``{model: {"per_call": x, "per_1k_tokens": y}}``."""
        return cls(
            {m: ModelPrice(float(p.get("per_call", 0.0)), float(p.get("per_1k_tokens", 0.0))) for m, p in data.items()}
        )

    def to_dict(self) -> dict[str, dict[str, float]]:
        """A JSON-serialisable form."""
        return {m: {"per_call": p.per_call, "per_1k_tokens": p.per_1k_tokens} for m, p in self.prices.items()}


def estimate_tokens(text: str) -> int:
    """A rough token count: characters / 4, rounded up (used when none was recorded)."""
    return math.ceil(len(text) / 4)


def item_costs(dataset: EvalDataset, model: str, prices: PriceTable | None = None) -> np.ndarray:
    """The cost of ``model``'s call on every item.

    With a price for ``model`` in ``prices``: ``per_call + per_1k_tokens * tokens / 1000``,
    where ``tokens`` is the recorded count or, when none was recorded, an estimate
    from the answer's length (:func:`estimate_tokens`). Without a price: the recorded
    ``cost`` of each response.

    Raises:
        ConfigError: when neither a price nor a recorded cost is available, or a
            per-token price meets an item with neither tokens nor text.
    """
    out = np.empty(len(dataset.items), dtype=float)
    price = prices.price(model) if prices is not None and model in prices else None
    for i, item in enumerate(dataset.items):
        response = item.responses.get(model)
        if price is None:
            if response is None or response.cost is None:
                raise ConfigError(
                    f"item {item.id!r} has no recorded cost for {model!r} and the price table has no price for it; "
                    f"pass a price, e.g. --price '{model}=1/call'"
                )
            out[i] = response.cost
            continue
        tokens = 0
        if price.per_1k_tokens:
            if response is not None and response.tokens is not None:
                tokens = response.tokens
            elif response is not None and response.text is not None:
                tokens = estimate_tokens(response.text)
            else:
                raise ConfigError(
                    f"item {item.id!r}: a per-token price for {model!r} needs recorded tokens or the answer text; "
                    "use a per-call price for this dataset"
                )
        out[i] = price.per_call + price.per_1k_tokens * tokens / 1000.0
    return out
