"""A configurable price table: estimated cost of a model call from its tokens."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpra_agent.core.errors import ConfigError

__all__ = ["LOCAL_PRICES", "PriceTable"]

#: Local models (llama.cpp GGUF files) cost nothing per token.
LOCAL_PRICES: dict[str, tuple[float, float]] = {"*.gguf": (0.0, 0.0), "gguf:*": (0.0, 0.0)}


@dataclass(frozen=True)
class PriceTable:
    """Prices in currency units per **million** tokens, ``(input, output)``, by model.

    Keys are model identifiers or shell-style patterns (``gpt-4o*``, ``*.gguf``); an
    exact key wins over a pattern, then the longest matching pattern. There are no
    built-in prices for hosted models (they change): give yours with
    :meth:`from_file` or ``rpra stats --price MODEL=IN,OUT``.

    Attributes:
        prices: ``{model_or_pattern: (input_per_million, output_per_million)}``.
        currency: Label for display.
    """

    prices: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(LOCAL_PRICES))
    currency: str = "USD"

    def lookup(self, model: str) -> tuple[float, float] | None:
        """The ``(input, output)`` price per million tokens of ``model``, or ``None`` when unknown."""
        if model in self.prices:
            return self.prices[model]
        matches = [p for p in self.prices if any(c in p for c in "*?[") and fnmatch.fnmatchcase(model, p)]
        return self.prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """Estimated cost of the tokens, or ``None`` when the model has no price (and used tokens)."""
        if not input_tokens and not output_tokens:
            return 0.0
        price = self.lookup(model)
        if price is None:
            return None
        return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000

    def with_prices(self, extra: Mapping[str, tuple[float, float]]) -> PriceTable:
        """A copy with more (or overriding) prices."""
        return PriceTable({**self.prices, **extra}, self.currency)

    @staticmethod
    def parse_option(text: str) -> tuple[str, tuple[float, float]]:
        """Parse ``MODEL=IN,OUT`` (per million tokens), as ``rpra stats --price`` takes it.

        Raises:
            ConfigError: when the text is not of that form.
        """
        model, sep, value = text.rpartition("=")
        parts = value.split(",")
        try:
            if not sep or not model or len(parts) != 2:
                raise ValueError
            return model.strip(), (float(parts[0]), float(parts[1]))
        except ValueError:
            raise ConfigError(
                f"bad price {text!r}: expected MODEL=INPUT,OUTPUT per million tokens, e.g. gpt-4o=2.5,10"
            ) from None

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """Load ``{"model": {"input": 2.5, "output": 10.0}, ...}`` (or ``[in, out]`` pairs) from JSON.

        A top-level ``"currency"`` string is used as the label.

        Raises:
            ConfigError: on an unreadable file or a malformed entry.
        """
        try:
            data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the price table {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the price table must be a JSON object of model -> price")
        currency = str(data.pop("currency", "USD"))
        prices: dict[str, tuple[float, float]] = dict(LOCAL_PRICES)
        for model, entry in data.items():
            try:
                if isinstance(entry, dict):
                    prices[model] = (float(entry["input"]), float(entry["output"]))
                else:
                    prices[model] = (float(entry[0]), float(entry[1]))
            except (KeyError, IndexError, TypeError, ValueError):
                raise ConfigError(
                    f'{path}: price of {model!r} must be {{"input": X, "output": Y}} or [X, Y] per million tokens'
                ) from None
        return cls(prices, currency)
