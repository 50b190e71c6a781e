"""Long judge tables (one row per model per item, with a model column) into an rpra dataset.

Published results usually come in this shape::

    question_id,model,answer,score
    1,small-7b,"...",6
    1,gpt-4,"...",9

:func:`convert_long_table` joins each item's rows (by the id column, or by the prompt
text when there is none) into the wide form that :func:`.convert.convert_table`
builds the dataset from, so both share every check (``rpra data convert --long``).
An answer, score, tokens or cost cell that holds a JSON object keyed by model names
(``{"gpt-4": "...", "small-7b": "..."}``, as an answers file joined with ``--join``
has it) is read at the row's model; a model the object lacks is not recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpra_agent.core.errors import ConfigError, DatasetError
from rpra_agent.evaluation.datasets.convert import (
    COMPOSITE_ID_HINT,
    ColumnMapping,
    ModelColumns,
    convert_table,
    item_id,
    read_table,
)
from rpra_agent.evaluation.datasets.records import EvalDataset

__all__ = ["LongMapping", "convert_long_table"]

_PARTS = ("text", "score", "tokens", "cost")


@dataclass(frozen=True)
class LongMapping:
    """Which columns of a long table make up an item and a model's response.

    Attributes:
        prompt: Column of the prompt text.
        model: Column of the model's name.
        score: Column of the judge's score (or correctness).
        response: Column of the answer text, if any.
        tokens: Column of the token count, if any.
        cost: Column of the call's cost, if any.
        id: Column of the item id, or columns joined by commas (``question_id,turn``);
            ``None``: rows with the same prompt are one item.
        category: Column of the category, if any.
        weak: The weak (small) model (default: the first model of :attr:`models`, else the first seen).
        strong: The strong (large) model (default: the next one).
        models: Keep only these models, in this order (default: every model, in order of appearance).
    """

    prompt: str
    model: str
    score: str | None
    response: str | None = None
    tokens: str | None = None
    cost: str | None = None
    id: str | None = None
    category: str | None = None
    weak: str | None = None
    strong: str | None = None
    models: tuple[str, ...] = ()


def convert_long_table(
    path: str | Path,
    mapping: LongMapping,
    *,
    name: str | None = None,
    score_range: tuple[float, float] | None = None,
    acceptable: float | None = None,
    attribution: str = "",
    rows: Iterable[tuple[int, dict[str, Any]]] | None = None,
) -> EvalDataset:
    """Build a dataset from a long CSV/JSONL table (see the module docstring).

    ``rows`` are the table's rows with their line numbers when already read (e.g. with
    side tables joined by :func:`.convert_join.join_tables`); default: read ``path``.

    Raises:
        DatasetError: naming the line of a row that repeats a (item, model) pair, or
            disagrees with the item's first row on its prompt or category.
        ConfigError: when fewer than two models remain, or ``weak``/``strong`` is not one of them.
    """
    src = Path(path)
    groups, order, models = _group(src, mapping, read_table(src) if rows is None else rows)
    chosen = mapping.models or tuple(models)
    missing = [m for m in chosen if m not in models]
    if missing:
        raise ConfigError(f"--model {missing[0]!r} has no row in {src}; the table's models are {models}")
    if len(chosen) < 2:
        raise ConfigError(f"a dataset needs two models; {src} has {list(chosen)} (column {mapping.model!r})")
    wide = ColumnMapping(
        prompt="prompt",
        models=tuple(ModelColumns(m, *(f"{m}\x00{p}" for p in _PARTS)) for m in chosen),
        id="id",
        category="category" if mapping.category else None,
        weak=mapping.weak,
        strong=mapping.strong,
    )
    rows = _wide_rows(groups, order, chosen)
    dataset = convert_table(
        src, wide, name=name, score_range=score_range, acceptable=acceptable, attribution=attribution, rows=rows
    )
    return dataset


def _group(
    src: Path, m: LongMapping, rows: Iterable[tuple[int, dict[str, Any]]]
) -> tuple[dict[str, dict[str, Any]], list[str], list[str]]:
    groups: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    models: list[str] = []
    for line, row in rows:
        where: dict[str, Any] = {"path": str(src), "line": line}
        for column in (m.prompt, m.model, m.score, m.response, m.tokens, m.cost, m.category):
            if column is not None and column not in row:
                raise DatasetError(f"no column {column!r}; the table has {sorted(row)}", field=column, **where)
        model = row[m.model]
        if model is None or str(model).strip() == "":
            raise DatasetError("empty model name", field=m.model, **where)
        model = str(model).strip()
        prompt = row[m.prompt]
        key = item_id(row, m.id, path=str(src), line=line) if m.id else str(prompt)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"line": line, "id": key, "prompt": prompt, "responses": {}}
            if m.category:
                group["category"] = row[m.category]
            order.append(key)
        elif group["prompt"] != prompt:
            raise DatasetError(f"item {key!r} has another prompt than on line {group['line']}", field=m.prompt, **where)
        elif m.category and group.get("category") != row[m.category]:
            raise DatasetError(
                f"item {key!r} has another category than on line {group['line']}", field=m.category, **where
            )
        if model in group["responses"]:
            first = group["responses"][model]["line"]
            raise DatasetError(
                f"a second row for item {key!r} and model {model!r} (first on line {first}); {COMPOSITE_ID_HINT}",
                **where,
            )
        group["responses"][model] = {
            "line": line,
            "text": _at_model(row, m.response, model),
            "score": _at_model(row, m.score, model),
            "tokens": _at_model(row, m.tokens, model),
            "cost": _at_model(row, m.cost, model),
        }
        if model not in models:
            models.append(model)
    return groups, order, models


def _at_model(row: dict[str, Any], column: str | None, model: str) -> Any:
    """The row's cell in ``column``; a JSON object keyed by model names is read at ``model`` (absent: not recorded)."""
    if column is None:
        return None
    value = row[column]
    return value.get(model) if isinstance(value, dict) else value


def _wide_rows(
    groups: dict[str, dict[str, Any]], order: list[str], models: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, Any]]]:
    for key in order:
        group = groups[key]
        row: dict[str, Any] = {"id": group["id"], "prompt": group["prompt"], "category": group.get("category")}
        for model in models:
            response = group["responses"].get(model, {})
            for part in _PARTS:
                row[f"{model}\x00{part}"] = response.get(part)
        yield group["line"], row
