"""One JSON line of a dataset, prompts or table file, parsed without surprises.

Bad input becomes a :class:`~rpra_agent.core.errors.DatasetError` naming the file and
line, never a ``RecursionError`` or a crash: nesting deeper than :data:`MAX_DEPTH`,
integers longer than :data:`MAX_INT_DIGITS` digits, ``NaN``/``Infinity`` and lines
longer than :data:`MAX_LINE_CHARS` are refused before or while parsing.
"""

from __future__ import annotations

import json
from typing import Any

from rpra_agent.core.errors import DatasetError

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "MAX_LINE_CHARS", "parse_json_line"]

#: Deepest nesting of arrays/objects accepted (a dataset item needs about 4).
MAX_DEPTH = 64
#: Longest integer literal accepted (a score or token count needs a handful).
MAX_INT_DIGITS = 30
#: Longest line accepted (64 MiB of text).
MAX_LINE_CHARS = 64 * 2**20


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def _depth(raw: str) -> int:
    """The deepest bracket nesting outside strings (a cheap scan before parsing)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json_line(raw: str, path: str, line: int, *, what: str = "each line must be one JSON object") -> Any:
    """``raw`` parsed as JSON.

    Raises:
        DatasetError: with ``path`` and ``line`` on invalid, too deep or too large JSON.
    """
    if len(raw) > MAX_LINE_CHARS:
        raise DatasetError(f"the line has {len(raw):,} characters (at most {MAX_LINE_CHARS:,})", path=path, line=line)
    if raw.count("[") + raw.count("{") > MAX_DEPTH and _depth(raw) > MAX_DEPTH:  # scan only when it could be
        raise DatasetError(f"JSON nested deeper than {MAX_DEPTH} levels; {what}", path=path, line=line)
    try:
        return json.loads(raw, parse_int=_int, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON ({exc.msg} at column {exc.colno}); {what}", path=path, line=line) from None
    except (ValueError, RecursionError, OverflowError) as exc:
        raise DatasetError(f"not usable JSON ({exc}); {what}", path=path, line=line) from None
