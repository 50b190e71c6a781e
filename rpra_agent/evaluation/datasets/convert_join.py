r"""Side tables joined into a table's rows before conversion (``rpra data convert --join FILE``).

Published results often keep what makes an item in several files. arena-hard-auto's
arena-bench-v1, for one, has the judge's scores in ``judgments.csv`` (question_id,
model, score), the prompts in ``prompts.jsonl`` (question_id, category, prompt) and the
answers in ``outputs.jsonl`` (question_id and an object of every model's answer)::

    rpra data convert judgments.csv --long --join prompts.jsonl --join outputs.jsonl \
      --id-col question_id --prompt-col prompt --category-col category \
      --model-col model --response-col outputs --score-col score --score-range 1,10

:func:`join_tables` adds to every row of the main table the columns of the one row of
each side table with the same item id (the ``--id-col`` columns), and the same model
where the side table has the ``--model-col`` column too. A column the row already has
keeps the row's value. Every check is strict, so nothing is joined by guesswork: a
row with no partner in a side table, two side rows for one key, or a side table
without the id columns is a :class:`~rpra_agent.core.errors.DatasetError` naming the
file and line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpra_agent.core.errors import ConfigError, DatasetError
from rpra_agent.evaluation.datasets.convert import item_id, read_table

__all__ = ["join_tables"]


@dataclass(frozen=True)
class _Side:
    path: Path
    by_model: bool
    rows: dict[tuple[str, str], tuple[int, dict[str, Any]]]


def join_tables(
    rows: Iterable[tuple[int, dict[str, Any]]],
    joins: Sequence[str | Path],
    *,
    id_col: str | None,
    model_col: str | None = None,
    source: str = "the main table",
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The main table's rows (with their line numbers), each with its side rows' columns added.

    Args:
        rows: The main table's rows, e.g. ``read_table(path)``.
        joins: The side tables (CSV, TSV or JSONL, optionally gzipped).
        id_col: The item id column, or columns joined by commas, that every table shares.
        model_col: The model column of a long table; a side table that has it is joined
            on the item and the model.
        source: The main table's name in error messages (its path).

    Raises:
        ConfigError: on side tables without an ``id_col``.
        DatasetError: naming the file and line of a side table without the id column,
            two side rows for one key, or a main row without a partner.
    """
    if not joins:
        yield from rows
        return
    if not id_col:
        raise ConfigError("--join needs --id-col: the column(s) every table shares, e.g. --id-col question_id")
    sides = [_index(Path(p), id_col, model_col) for p in joins]
    for line, row in rows:
        item, model = item_id(row, id_col, path=source, line=line), _model(row, model_col, source, line)
        merged: dict[str, Any] = {}
        for side in sides:
            found = side.rows.get((item, model if side.by_model else ""))
            if found is None:
                what = f"item {item!r}" + (f" and model {model!r}" if side.by_model else "")
                on = id_col + (f" and {model_col}" if side.by_model else "")
                raise DatasetError(
                    f"{what} has no row in {side.path} (joined on {on}); "
                    "keep the main table's rows to those the side table covers",
                    path=source,
                    line=line,
                )
            merged.update(found[1])
        merged.update(row)
        yield line, merged


def _model(row: dict[str, Any], model_col: str | None, path: str, line: int) -> str:
    if not model_col:
        return ""
    if model_col not in row:
        raise DatasetError(f"no column {model_col!r}; the table has {sorted(row)}", path=path, line=line)
    return str(row[model_col]).strip()


def _index(path: Path, id_col: str, model_col: str | None) -> _Side:
    if not path.is_file():
        raise ConfigError(f"--join {path}: no such file")
    rows: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    by_model: bool | None = None
    for line, row in read_table(path):
        if by_model is None:
            by_model = bool(model_col) and model_col in row
        key = (
            item_id(row, id_col, path=str(path), line=line),
            _model(row, model_col, str(path), line) if by_model else "",
        )
        if key in rows:
            what = f"id {key[0]!r}" + (f" and model {key[1]!r}" if by_model else "")
            raise DatasetError(
                f"a second row for {what} (first on line {rows[key][0]}): a side table holds one row per key",
                path=str(path),
                line=line,
            )
        rows[key] = (line, row)
    if not rows:
        raise DatasetError("the side table has no rows", path=str(path))
    return _Side(path, bool(by_model), rows)
