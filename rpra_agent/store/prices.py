"""The one price table: estimated cost of a model call from its tokens (and a fixed per-call price).

Used by ``rpra stats`` (the decision log's legs) and by ``rpra eval`` (recorded calls).
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpra_agent.core.errors import ConfigError

__all__ = ["LOCAL_PRICES", "PriceTable"]

#: Local models (llama.cpp GGUF files) cost nothing per token.
LOCAL_PRICES: dict[str, tuple[float, float]] = {"*.gguf": (0.0, 0.0), "gguf:*": (0.0, 0.0)}


@dataclass(frozen=True)
class PriceTable:
    """Prices in currency units per **million** tokens, ``(input, output)``, by model, plus per-call prices.

    Keys are model identifiers or shell-style patterns (``gpt-4o*``, ``*.gguf``); an
    exact key wins over a pattern, then the longest matching pattern. There are no
    built-in prices for hosted models (they change): give yours with
    :meth:`from_file` or ``rpra stats --price MODEL=IN,OUT``.

    Attributes:
        prices: ``{model_or_pattern: (input_per_million, output_per_million)}``.
        currency: Label for display.
        per_call: ``{model_or_pattern: price}`` charged once per call, on top of the tokens.
    """

    prices: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(LOCAL_PRICES))
    currency: str = "USD"
    per_call: Mapping[str, float] = field(default_factory=dict)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and (self.lookup(model) is not None or self._call_price(model) is not None)

    def _call_price(self, model: str) -> float | None:
        if model in self.per_call:
            return self.per_call[model]
        matches = [p for p in self.per_call if any(c in p for c in "*?[") and fnmatch.fnmatchcase(model, p)]
        return self.per_call[max(matches, key=len)] if matches else None

    def call_cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """The per-call price plus the tokens' cost, or ``None`` when the model has neither price."""
        call = self._call_price(model)
        price = self.lookup(model)
        if call is None and price is None:
            return None
        tokens = 0.0 if price is None else (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000
        return (call or 0.0) + tokens

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
        return PriceTable({**self.prices, **extra}, self.currency, dict(self.per_call))

    @classmethod
    def parse(cls, specs: Iterable[str], *, local: bool = False) -> PriceTable:
        """Build a table from ``MODEL=AMOUNT/call``, ``MODEL=AMOUNT/1k`` and ``MODEL=IN,OUT`` strings.

        ``/1k`` is per 1,000 tokens, in and out alike; ``IN,OUT`` is per million tokens.
        Several specs for one model add up (``m=0.001/call`` and ``m=0.01/1k``).

        Args:
            specs: The price strings.
            local: Start from :data:`LOCAL_PRICES` (GGUF models are free).

        Raises:
            ConfigError: when a string is not of one of those forms.
        """
        tokens: dict[str, tuple[float, float]] = dict(LOCAL_PRICES) if local else {}
        calls: dict[str, float] = {}
        for spec in specs:
            model, sep, rest = spec.rpartition("=")
            amount, slash, unit = rest.partition("/")
            if "," in rest and not slash:
                name, pair = cls.parse_option(spec)
                old = tokens.get(name, (0.0, 0.0))
                tokens[name] = (old[0] + pair[0], old[1] + pair[1])
                continue
            try:
                value = float(amount)
            except ValueError:
                value = float("nan")
            if not sep or not model or not slash or unit not in ("call", "1k") or not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"bad price {spec!r}; write MODEL=AMOUNT/call, MODEL=AMOUNT/1k (per 1,000 tokens) "
                    "or MODEL=IN,OUT (per million tokens)"
                )
            if unit == "call":
                calls[model] = calls.get(model, 0.0) + value
            else:
                old = tokens.get(model, (0.0, 0.0))
                tokens[model] = (old[0] + value * 1000, old[1] + value * 1000)
        return cls(tokens, per_call=calls)

    def to_dict(self) -> dict[str, Any]:
        """A JSON form :meth:`from_dict` reads back: ``{model: {"input", "output", "per_call"}}``."""
        out: dict[str, Any] = {"currency": self.currency}
        for model in dict.fromkeys([*self.prices, *self.per_call]):
            entry: dict[str, float] = {}
            if model in self.prices:
                entry.update(input=self.prices[model][0], output=self.prices[model][1])
            if model in self.per_call:
                entry["per_call"] = self.per_call[model]
            out[model] = entry
        return out

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
        """Load a JSON price table (see :meth:`from_dict`) from ``path``.

        Raises:
            ConfigError: on an unreadable file or a malformed entry.
        """
        try:
            data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the price table {path}: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "price table") -> PriceTable:
        """Build from ``{"model": {"input": 2.5, "output": 10.0, "per_call": 0.001}, ...}``.

        An entry may also be an ``[input, output]`` pair (per million tokens) or
        ``{"per_1k_tokens": x, "per_call": y}``. A top-level ``"currency"`` string is
        used as the label. GGUF models are free unless priced.

        Raises:
            ConfigError: on a malformed entry.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the price table must be a JSON object of model -> price")
        data = dict(data)
        currency = str(data.pop("currency", "USD"))
        prices: dict[str, tuple[float, float]] = dict(LOCAL_PRICES)
        calls: dict[str, float] = {}
        for model, entry in data.items():
            try:
                if isinstance(entry, dict):
                    unknown = set(entry) - {"input", "output", "per_call", "per_1k_tokens"}
                    if unknown:
                        raise ValueError(f"unknown keys {sorted(unknown)}")
                    if "per_1k_tokens" in entry:
                        per_m = float(entry["per_1k_tokens"]) * 1000
                        prices[model] = (per_m, per_m)
                    elif "input" in entry or "output" in entry:
                        prices[model] = (float(entry["input"]), float(entry["output"]))
                    if "per_call" in entry:
                        calls[model] = float(entry["per_call"])
                else:
                    prices[model] = (float(entry[0]), float(entry[1]))
                values = [*prices.get(model, ()), calls.get(model, 0.0)]
                if not all(math.isfinite(v) and v >= 0 for v in values):
                    raise ValueError("prices must be finite and non-negative")
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f'{source}: price of {model!r} must be {{"input": X, "output": Y}} per million tokens, '
                    f'[X, Y], or {{"per_1k_tokens": X, "per_call": Y}} ({exc})'
                ) from None
        return cls(prices, currency, calls)
