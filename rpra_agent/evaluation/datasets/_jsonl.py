"""Parsing and writing the dataset JSONL format (see ``docs/DATASETS.md``).

Every check raises :class:`~rpra_agent.core.errors.DatasetError` naming the file, the
1-based line and the field, and saying how to fix it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from rpra_agent.core.errors import DatasetError
from rpra_agent.evaluation.datasets.jsonline import parse_json_line
from rpra_agent.evaluation.datasets.records import FORMAT_VERSION, EvalDataset, EvalItem, ModelResponse, render_messages

_ITEM_KEYS = frozenset({"id", "prompt", "messages", "category", "responses", "meta"})
_RESPONSE_KEYS = frozenset({"text", "score", "correct", "tokens", "cost"})
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_NUMBER_TYPES = (int, float)


class _Ctx:
    """Where we are, for error messages."""

    __slots__ = ("line", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.line = 0

    def error(self, message: str, field: str | None = None) -> DatasetError:
        return DatasetError(message, path=self.path, line=self.line or None, field=field)


def parse_lines(lines: Iterable[str], path: str) -> EvalDataset:
    """Parse a dataset from its lines (header first)."""
    ctx = _Ctx(path)
    header: dict[str, Any] | None = None
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    models: frozenset[str] = frozenset()
    lo = hi = 0.0
    for number, raw in enumerate(lines, start=1):
        ctx.line = number
        if not raw.strip():
            continue
        obj = parse_json_line(raw, path, number)
        if not isinstance(obj, dict):
            raise ctx.error(f"expected a JSON object, got {type(obj).__name__}")
        if header is None:
            header = _parse_header(obj, ctx)
            models = frozenset(header["models"])
            lo, hi = header["score_range"]
            continue
        item = _parse_item(obj, ctx, models, lo, hi)
        if item.id in seen:
            raise ctx.error(f"duplicate id {item.id!r} (first on line {seen[item.id]}); ids must be unique", "id")
        seen[item.id] = number
        items.append(item)
    if header is None:
        ctx.line = 0
        raise ctx.error('the file is empty; the first line must be a header {"rpra_dataset": {...}}')
    meta = {
        k: v for k, v in header.items() if k not in ("format", "weak", "strong", "score_range", "attribution", "name")
    }
    return EvalDataset(
        name=header["name"],
        items=tuple(items),
        weak=header["weak"],
        strong=header["strong"],
        score_range=(lo, hi),
        attribution=header["attribution"],
        metadata=meta,
    )


def _parse_header(obj: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
    head = obj.get("rpra_dataset")
    if not isinstance(head, dict):
        raise ctx.error(
            'the first line must be the header {"rpra_dataset": {"name": ..., "weak": ..., "strong": ..., '
            '"score_range": [lo, hi]}}; convert other files with `rpra data convert`',
            "rpra_dataset",
        )
    version = head.get("format", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ctx.error(
            f"unsupported format version {version!r}; this rpra_agent reads version {FORMAT_VERSION}", "format"
        )
    for key in ("weak", "strong"):
        if not isinstance(head.get(key), str) or not head[key]:
            raise ctx.error(f"the header needs {key!r}: the {key} model's name, as used in each item's responses", key)
    if head["weak"] == head["strong"]:
        raise ctx.error("weak and strong name the same model", "strong")
    rng = head.get("score_range")
    if (
        not isinstance(rng, list)
        or len(rng) != 2
        or not all(_is_number(v) for v in rng)
        or not float(rng[0]) < float(rng[1])
    ):
        raise ctx.error(f"score_range must be [lowest, highest] with lowest < highest, got {rng!r}", "score_range")
    models = head.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise ctx.error("models must be a list of model names", "models")
    acceptable = head.get("acceptable")
    if acceptable is not None and not _is_number(acceptable):
        raise ctx.error(f"acceptable must be a number on the score range, got {acceptable!r}", "acceptable")
    out = dict(head)
    out["name"] = str(head.get("name") or _stem(ctx.path))
    out["attribution"] = str(head.get("attribution") or "")
    out["models"] = list(dict.fromkeys([head["weak"], head["strong"], *models]))
    out["score_range"] = (float(rng[0]), float(rng[1]))
    return out


def _stem(path: str) -> str:
    """A file's name without its ``.gz`` and ``.jsonl`` / ``.json`` suffixes: the name of a dataset whose header has none."""
    name = PurePath(path).name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name or "dataset"


def _parse_item(obj: dict[str, Any], ctx: _Ctx, models: frozenset[str], lo: float, hi: float) -> EvalItem:
    unknown = obj.keys() - _ITEM_KEYS
    if unknown:
        raise ctx.error(f"unknown field(s) {sorted(unknown)}; an item has {sorted(_ITEM_KEYS)}", sorted(unknown)[0])
    raw_id = obj.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
        raise ctx.error("every item needs an id (a non-empty string or an integer)", "id")
    item_id = str(raw_id)
    messages = _parse_messages(obj.get("messages"), ctx)
    prompt = obj.get("prompt")
    if prompt is None and not messages:
        raise ctx.error("an item needs a prompt (text) or messages (a chat)", "prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise ctx.error(f"prompt must be a string, got {type(prompt).__name__}", "prompt")
    if not messages:
        messages = ({"role": "user", "content": prompt},)
    if prompt is None:
        prompt = render_messages(messages)
    category = obj.get("category")
    if category is not None and not isinstance(category, str):
        raise ctx.error(f"category must be a string or null, got {category!r}", "category")
    responses_obj = obj.get("responses", {})
    if not isinstance(responses_obj, dict):
        raise ctx.error("responses must be an object {model name: {text, score|correct, tokens, cost}}", "responses")
    responses: dict[str, ModelResponse] = {}
    for model, value in responses_obj.items():
        if model not in models:
            raise ctx.error(
                f"unknown model {model!r}; declare it in the header's models (known: {sorted(models)})",
                f"responses.{model}",
            )
        responses[model] = _parse_response(value, ctx, model, lo, hi)
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        raise ctx.error("meta must be an object", "meta")
    return EvalItem(item_id, prompt, messages, category, responses, meta)


def _parse_messages(value: Any, ctx: _Ctx) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise ctx.error("messages must be a non-empty list of {role, content} objects", "messages")
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict) or msg.get("role") not in _ROLES or not isinstance(msg.get("content"), str):
            raise ctx.error(
                f"message {i} must be {{'role': one of {sorted(_ROLES)}, 'content': a string}}, got {msg!r:.80}",
                f"messages[{i}]",
            )
        out.append({"role": msg["role"], "content": msg["content"]})
    return tuple(out)


def _parse_response(value: Any, ctx: _Ctx, model: str, lo: float, hi: float) -> ModelResponse:
    # Fast path for a well-formed response (MMLU has 28k of them); anything unusual is
    # checked field by field below, with a precise error.
    if type(value) is dict and value.keys() <= _RESPONSE_KEYS and "correct" not in value:
        text, score, tokens, cost = value.get("text"), value.get("score"), value.get("tokens"), value.get("cost")
        if (
            (text is None or type(text) is str)
            and (score is None or (type(score) in _NUMBER_TYPES and lo <= score <= hi))
            and (tokens is None or (type(tokens) is int and tokens >= 0))
            and (cost is None or (type(cost) in _NUMBER_TYPES and 0 <= cost < math.inf))
        ):
            return ModelResponse(
                text, None if score is None else float(score), tokens, None if cost is None else float(cost)
            )
    return _parse_response_checked(value, ctx, f"responses.{model}", lo, hi)


def _parse_response_checked(value: Any, ctx: _Ctx, where: str, lo: float, hi: float) -> ModelResponse:
    if isinstance(value, str):  # shorthand: just the answer text
        return ModelResponse(text=value)
    if not isinstance(value, dict):
        raise ctx.error("a response must be an object {text, score|correct, tokens, cost}", where)
    unknown = value.keys() - _RESPONSE_KEYS
    if unknown:
        raise ctx.error(
            f"unknown field(s) {sorted(unknown)}; a response has {sorted(_RESPONSE_KEYS)}",
            f"{where}.{sorted(unknown)[0]}",
        )
    text = value.get("text")
    if text is not None and not isinstance(text, str):
        raise ctx.error("text must be a string or null", f"{where}.text")
    score = _parse_score(value, ctx, where, lo, hi)
    tokens = value.get("tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0):
        raise ctx.error(f"tokens must be a non-negative integer, got {tokens!r}", f"{where}.tokens")
    cost = value.get("cost")
    if cost is not None and (not _is_number(cost) or cost < 0):
        raise ctx.error(f"cost must be a non-negative number, got {cost!r}", f"{where}.cost")
    return ModelResponse(text=text, score=score, tokens=tokens, cost=None if cost is None else float(cost))


def _parse_score(value: dict[str, Any], ctx: _Ctx, where: str, lo: float, hi: float) -> float | None:
    score, correct = value.get("score"), value.get("correct")
    if score is not None and correct is not None:
        raise ctx.error("give either score or correct, not both", f"{where}.correct")
    if correct is not None:
        if correct not in (True, False, 0, 1):
            raise ctx.error(f"correct must be true/false (or 1/0), got {correct!r}", f"{where}.correct")
        score = 1.0 if correct else 0.0
        if not lo <= score <= hi:
            raise ctx.error(f"correct needs a score_range that contains 0 and 1, not [{lo}, {hi}]", f"{where}.correct")
        return score
    if score is None:
        return None
    if isinstance(score, bool):
        raise ctx.error(
            f"score must be a number, got {str(score).lower()}: write 1/0, or use correct: true/false instead",
            f"{where}.score",
        )
    if not _is_number(score):
        raise ctx.error(f"score must be a number, got {score!r}", f"{where}.score")
    if not lo - 1e-9 <= score <= hi + 1e-9:
        raise ctx.error(f"score {score} is outside the header's score_range [{lo}, {hi}]", f"{where}.score")
    return float(score)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def item_to_json(item: EvalItem) -> dict[str, Any]:
    """The JSON object of one item (fields that are empty are left out)."""
    out: dict[str, Any] = {"id": item.id}
    single_user = len(item.messages) == 1 and item.messages[0].get("role") == "user"
    if single_user and item.messages[0].get("content") == item.prompt:
        out["prompt"] = item.prompt
    else:
        out["messages"] = [dict(m) for m in item.messages]
        if item.prompt != render_messages(item.messages):
            out["prompt"] = item.prompt
    if item.category is not None:
        out["category"] = item.category
    if item.responses:
        out["responses"] = {name: _response_to_json(r) for name, r in item.responses.items()}
    if item.metadata:
        out["meta"] = dict(item.metadata)
    return out


def _response_to_json(response: ModelResponse) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if response.text is not None:
        out["text"] = response.text
    if response.score is not None:
        score = float(response.score)
        out["score"] = int(score) if score.is_integer() else score
    if response.tokens is not None:
        out["tokens"] = int(response.tokens)
    if response.cost is not None:
        out["cost"] = float(response.cost)
    return out
