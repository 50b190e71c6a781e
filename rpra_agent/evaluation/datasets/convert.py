"""Convert a CSV or JSONL table of recorded answers into an rpra dataset.

A column mapping says which column holds the id, the prompt, the category, and for
each model its answer text, score, tokens and cost (``rpra data convert``).
"""

from __future__ import annotations

import csv
import gzip
import math
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rpra_agent.core.errors import ConfigError, DatasetError
from rpra_agent.evaluation.datasets.jsonline import parse_json_line
from rpra_agent.evaluation.datasets.records import EvalDataset, EvalItem, ModelResponse

__all__ = ["COMPOSITE_ID_HINT", "ColumnMapping", "ModelColumns", "convert_table", "item_id", "read_table"]

_TRUE = frozenset({"true", "yes", "correct"})
_FALSE = frozenset({"false", "no", "incorrect"})
COMPOSITE_ID_HINT = "several rows per item, e.g. one per turn, need a composite id: --id-col question_id,turn"
"""Said with a duplicate id (wide tables) or a second row for an item and model (long tables)."""
_MISSING = frozenset({"na", "n/a", "nan", "null", "none"})
"""Cells read as "not recorded", like an empty cell (pandas' and spreadsheets' missing markers)."""


@dataclass(frozen=True)
class ModelColumns:
    """Where one model's recorded response lives in the table.

    Attributes:
        name: The model's name in the dataset.
        response: Column of the answer text (``None``: not recorded).
        score: Column of the judge's score or correctness (``None``: unjudged).
        tokens: Column of the token count, if any.
        cost: Column of the call's cost, if any.
    """

    name: str
    response: str | None = None
    score: str | None = None
    tokens: str | None = None
    cost: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ModelColumns:
        """Parse ``NAME=RESPONSE_COL:SCORE_COL[:TOKENS_COL[:COST_COL]]`` (empty parts allowed)."""
        name, sep, cols = spec.partition("=")
        parts = cols.split(":")
        if not sep or not name or len(parts) > 4 or not any(parts):
            raise ConfigError(
                f"bad --model {spec!r}; write NAME=RESPONSE_COL:SCORE_COL[:TOKENS_COL[:COST_COL]], e.g. gpt4=answer:grade"
            )
        parts += [""] * (4 - len(parts))
        return cls(name, *(p or None for p in parts))


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns make up an item.

    Attributes:
        prompt: Column of the prompt text.
        models: One entry per model.
        id: Column of the item id, or columns joined by commas (``question_id,turn``);
            ``None``: the 1-based row number.
        category: Column of the category, if any.
        weak: The weak (small) model's name (default: the first model).
        strong: The strong (large) model's name (default: the second model).
    """

    prompt: str
    models: tuple[ModelColumns, ...]
    id: str | None = None
    category: str | None = None
    weak: str | None = None
    strong: str | None = None

    def pair(self) -> tuple[str, str]:
        """The (weak, strong) model names.

        Raises:
            ConfigError: when they cannot be determined or are not mapped.
        """
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ConfigError(f"a model is mapped twice: {names}")
        weak = self.weak or (names[0] if names else None)
        strong = self.strong or next((n for n in names if n != weak), None)
        if weak is None or strong is None or weak == strong:
            raise ConfigError("map at least two models with --model, and name distinct --weak and --strong")
        for role, model in (("weak", weak), ("strong", strong)):
            if model not in names:
                raise ConfigError(f"--{role} {model!r} is not one of the mapped models {names}")
        return weak, strong


def read_table(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a CSV (by extension ``.csv``/``.tsv``) or JSONL file with their line numbers.

    CSV is read strictly: a malformed quote (an unterminated one would otherwise swallow
    the rest of the file into one cell) or a row with more or fewer cells than the
    header is a :class:`DatasetError` naming the line. A byte-order mark (as
    spreadsheets write) is skipped; a ``.csv`` whose header holds no comma but a
    semicolon, tab or ``|`` (a spreadsheet's export in a locale with decimal commas) is
    read with that delimiter. A gzipped table is unpacked as it is read; its kind is the
    extension before ``.gz`` (``.csv.gz``, ``.jsonl.gz``).
    """
    last = 0
    try:
        for last, row in _table_rows(path):  # noqa: B007  (``last`` names the line an error follows)
            yield last, row
    except UnicodeDecodeError as exc:
        where = f"after line {last}" if last else "in its first lines"
        raise DatasetError(
            f"the file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} {where}); "
            "save it as UTF-8 (a spreadsheet's 'CSV UTF-8'), or convert it: iconv -f latin1 -t utf-8",
            path=str(path),
        ) from None
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        where = f" after line {last}" if last else ""
        raise DatasetError(f"cannot read the file{where}: {exc}", path=str(path)) from None


def _table_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    suffixes = [x.lower() for x in path.suffixes]
    kind = suffixes[-2] if suffixes[-1:] == [".gz"] and len(suffixes) > 1 else (suffixes or [""])[-1]
    if kind in (".csv", ".tsv"):
        yield from _csv_rows(path, "\t" if kind == ".tsv" else None)
        return
    with _open_text(path, newline=None) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            obj = parse_json_line(line, str(path), number)
            if not isinstance(obj, dict):
                raise DatasetError("each line must be a JSON object", path=str(path), line=number)
            yield number, obj


def _open_text(path: Path, *, newline: str | None) -> IO[str]:
    """``path`` as UTF-8 text (a byte-order mark skipped), through gzip when it starts with gzip's magic bytes."""
    with path.open("rb") as fh:
        packed = fh.read(2) == b"\x1f\x8b"
    if packed:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline=newline)
    return path.open(encoding="utf-8-sig", newline=newline)


def _delimiter(header: str) -> str:
    """``,`` unless the header line holds none and one of ``;``, tab or ``|`` instead."""
    if "," in header:
        return ","
    counts = {d: header.count(d) for d in (";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(path: Path, delimiter: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a CSV file; ``delimiter`` ``None`` chooses it from the header line."""
    with _open_text(path, newline="") as fh:
        if delimiter is None:
            delimiter = _delimiter(fh.readline())
            fh.seek(0)
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                return
            if len(set(header)) != len(header):
                raise DatasetError(f"the header repeats a column: {header}", path=str(path), line=1)
            start = reader.line_num + 1
            for cells in reader:
                if not any(c.strip() for c in cells):
                    start = reader.line_num + 1
                    continue
                if len(cells) != len(header):
                    raise DatasetError(
                        f"the row has {len(cells)} cells but the header has {len(header)} columns "
                        "(a stray delimiter, or a quote that is not closed?)",
                        path=str(path),
                        line=start,
                    )
                yield start, dict(zip(header, cells, strict=True))
                start = reader.line_num + 1
        except csv.Error as exc:
            raise DatasetError(
                f"malformed CSV ({exc}); quote a cell holding the delimiter, a quote or a line break as "
                '"..." and double the quotes inside it',
                path=str(path),
                line=start,
            ) from None


def item_id(row: dict[str, Any], spec: str, *, path: str, line: int) -> str:
    """The item id of a row: the ``spec`` column, or several joined by ``-`` (``question_id,turn``).

    A column whose name is ``spec`` itself wins over splitting it at commas, so a header
    that holds a comma still works.

    Raises:
        DatasetError: on a missing column or an empty id part.
    """
    columns = [spec] if spec in row else [c.strip() for c in spec.split(",")]
    parts = []
    for column in columns:
        value = _cell(row, column, (path, line))
        if value is None:
            raise DatasetError("empty id", path=path, line=line, field=column)
        parts.append(str(value).strip() if len(columns) > 1 else str(value))
    return "-".join(parts)


def _cell(row: dict[str, Any], column: str, where: tuple[str, int]) -> Any:
    if column not in row:
        raise DatasetError(
            f"no column {column!r}; the table has {sorted(row)}", path=where[0], line=where[1], field=column
        )
    value = _scalar(row[column], column, where)
    return None if value is None or (isinstance(value, str) and value.strip() == "") else value


def _scalar(value: Any, column: str, where: tuple[str, int]) -> Any:
    """``value``, unless it is a JSON object or list, which no cell may be (it would be read as its repr)."""
    if isinstance(value, dict | list):
        kind = "object" if isinstance(value, dict) else "list"
        hint = (
            "; in a long table (--long), an object keyed by model names is read at each row's model"
            if kind == "object"
            else ""
        )
        raise DatasetError(
            f"the cell holds a JSON {kind}, not a text or a number{hint}", path=where[0], line=where[1], field=column
        )
    return value


def _number(value: Any, column: str, where: tuple[str, int], *, boolean: bool) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _MISSING):
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if boolean and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return 1.0 if value.strip().lower() in _TRUE else 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        hint = ""
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+,\d+", value.strip()):
            hint = " (a decimal comma, or a thousands separator? write the number with a point and no separator)"
        raise DatasetError(f"not a number: {value!r}{hint}", path=where[0], line=where[1], field=column)
    return number


def _text(row: dict[str, Any], column: str, where: tuple[str, int]) -> str | None:
    """An answer text: an empty answer stays ``""`` (only a JSON ``null`` means "not recorded")."""
    if column not in row:
        _cell(row, column, where)  # raises: no such column
    value = _scalar(row[column], column, where)
    return None if value is None else str(value)


def _response(row: dict[str, Any], cols: ModelColumns, where: tuple[str, int]) -> ModelResponse:
    text = _text(row, cols.response, where) if cols.response else None
    score = _number(_cell(row, cols.score, where), cols.score, where, boolean=True) if cols.score else None
    tokens = _number(_cell(row, cols.tokens, where), cols.tokens, where, boolean=False) if cols.tokens else None
    cost = _number(_cell(row, cols.cost, where), cols.cost, where, boolean=False) if cols.cost else None
    if tokens is not None and (tokens < 0 or not tokens.is_integer()):
        raise DatasetError(
            f"tokens must be a non-negative integer, got {tokens}", path=where[0], line=where[1], field=cols.tokens
        )
    return ModelResponse(None if text is None else str(text), score, None if tokens is None else int(tokens), cost)


def convert_table(
    path: str | Path,
    mapping: ColumnMapping,
    *,
    name: str | None = None,
    score_range: tuple[float, float] | None = None,
    acceptable: float | None = None,
    attribution: str = "",
    rows: Iterable[tuple[int, dict[str, Any]]] | None = None,
) -> EvalDataset:
    """Build a dataset from a CSV/JSONL table (one row per item, a column group per model).

    Args:
        path: The table.
        mapping: Which columns hold what.
        name: Dataset name (default: the file's stem).
        score_range: ``(lo, hi)`` of the judge's scale; default ``(0, 1)`` when every
            score lies in [0, 1] (kept as they are: 0.37 stays 0.37), else required.
        acceptable: The lowest acceptable score, if known.
        attribution: Source and licence of the data.
        rows: The table's rows with their line numbers, when already read (the long
            format's rows joined per item); default: read ``path``.

    Raises:
        DatasetError: naming the row (line) and column of a bad cell.
        ConfigError: on a bad mapping.
    """
    src = Path(path)
    weak, strong = mapping.pair()
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    for index, (line, row) in enumerate(read_table(src) if rows is None else rows, start=1):
        where = (str(src), line)
        key = item_id(row, mapping.id, path=str(src), line=line) if mapping.id else str(index)
        if key in seen:
            raise DatasetError(
                f"duplicate id {key!r} (first on line {seen[key]}); {COMPOSITE_ID_HINT}",
                path=str(src),
                line=line,
                field=mapping.id,
            )
        seen[key] = line
        prompt = _cell(row, mapping.prompt, where)
        if prompt is None:
            raise DatasetError("empty prompt", path=str(src), line=line, field=mapping.prompt)
        category = _cell(row, mapping.category, where) if mapping.category else None
        responses = {m.name: _response(row, m, where) for m in mapping.models}
        messages = ({"role": "user", "content": str(prompt)},)
        items.append(EvalItem(key, str(prompt), messages, None if category is None else str(category), responses))
    if not items:
        raise DatasetError("the table has no rows", path=str(src))
    rng = score_range or _infer_range([r.score for it in items for r in it.responses.values()], str(src))
    meta: dict[str, Any] = {"models": [m.name for m in mapping.models], "converted_from": src.name}
    if acceptable is not None:
        meta["acceptable"] = float(acceptable)
    dataset = EvalDataset(
        name or src.name.split(".")[0], tuple(items), weak, strong, (float(rng[0]), float(rng[1])), attribution, meta
    )
    _check_range(dataset, str(src))
    return dataset


def _infer_range(scores: Sequence[float | None], path: str) -> tuple[float, float]:
    """``(0, 1)`` when every score lies in [0, 1] (correctness or a probability-like score).

    Any other range cannot be read off the scores (a 1-10 judge whose answers never
    got a 1 or a 10 would be misread as 2-9, and every figure normalised by it), so it
    must be given.

    Raises:
        DatasetError: asking for ``--score-range`` and saying what the scores span.
    """
    known = [s for s in scores if s is not None]
    if not known or all(0.0 <= s <= 1.0 for s in known):
        return (0.0, 1.0)
    lo, hi = min(known), max(known)
    raise DatasetError(
        f"the scores span {lo:g} to {hi:g}, and the judge's scale cannot be inferred from them: pass it with "
        f"--score-range LO,HI (e.g. --score-range 1,10 for a 1-10 judge)",
        path=path,
    )


def _check_range(dataset: EvalDataset, path: str) -> None:
    lo, hi = dataset.score_range
    for item in dataset.items:
        for model, response in item.responses.items():
            if response.score is not None and not lo <= response.score <= hi:
                raise DatasetError(
                    f"item {item.id!r}: score {response.score} is outside the score range [{lo}, {hi}]",
                    path=path,
                    field=f"{model}.score",
                )
