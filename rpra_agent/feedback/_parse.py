"""Strict parsing of a judge's reply: a grade is read, never guessed."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage
from pydantic import BaseModel

from rpra_agent.core.grades import GradeScale
from rpra_agent.feedback.rubric import Rubric

__all__ = ["Malformed", "ParsedGrade", "parse_judge_reply"]

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
MAX_RATIONALE = 400


class Malformed(ValueError):  # noqa: N818 - internal signal, never escapes the judge
    """The judge's reply is not a usable set of grades (the judge retries)."""


@dataclass(frozen=True)
class ParsedGrade:
    """One response's grade as read from the judge."""

    grade: str
    rationale: str
    weakest: str | None


def _text_json(text: str) -> Any:
    cleaned = _FENCE.sub("", text.strip())
    try:
        return json.loads(cleaned, strict=False)
    except json.JSONDecodeError:
        pass
    start, end = cleaned.find("{"), cleaned.rfind("}")
    if start < 0 or end <= start:
        raise Malformed("the reply holds no JSON object")
    try:
        return json.loads(cleaned[start : end + 1], strict=False)
    except json.JSONDecodeError as exc:
        raise Malformed(f"the reply is not valid JSON ({exc.msg})") from None


def _payload(reply: Any) -> Any:
    """The JSON-like payload of a reply: structured output, tool call or text."""
    if isinstance(reply, Mapping) and "raw" in reply and "parsed" in reply:
        if reply.get("parsed") is not None:
            return _payload(reply["parsed"])
        return _payload(reply["raw"])
    if isinstance(reply, AIMessage):
        if reply.tool_calls:
            return reply.tool_calls[0]["args"]
        return _text_json(reply.text if isinstance(reply.text, str) else str(reply.content))
    if isinstance(reply, BaseModel):
        return reply.model_dump()
    if isinstance(reply, str):
        return _text_json(reply)
    return reply


def _entries(payload: Any, n: int) -> list[Any]:
    if isinstance(payload, Mapping) and "verdicts" in payload:
        entries = payload["verdicts"]
    elif isinstance(payload, list):
        entries = payload
    elif isinstance(payload, Mapping) and "grade" in payload and n == 1:
        entries = [payload]
    else:
        raise Malformed("the reply has no 'verdicts' list")
    if not isinstance(entries, list) or len(entries) != n:
        got = len(entries) if isinstance(entries, list) else type(entries).__name__
        raise Malformed(f"expected {n} verdicts, got {got}")
    return entries


def _position(entry: Mapping[str, Any], default: int, n: int) -> int:
    raw = entry.get("response", default)
    try:
        pos = int(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: json.loads reads Infinity
        raise Malformed(f"response number {raw!r} is not an integer") from None
    if not 1 <= pos <= n:
        raise Malformed(f"response number {pos} is out of range 1..{n}")
    return pos


def parse_judge_reply(reply: Any, scale: GradeScale, rubric: Rubric, n: int) -> list[ParsedGrade]:
    """Read ``n`` grades from a judge reply, in response order.

    Accepts a structured-output result (``include_raw`` dict or pydantic object), a
    message with a tool call, or text holding a JSON object (code fences allowed).
    A grade must name one of the scale's labels exactly (case and surrounding
    punctuation aside); anything else raises :class:`Malformed`.
    """
    entries = _entries(_payload(reply), n)
    out: dict[int, ParsedGrade] = {}
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, Mapping):
            raise Malformed(f"verdict {i} is not an object")
        pos = _position(entry, i, n)
        if pos in out:
            raise Malformed(f"response {pos} was graded twice")
        grade_raw = entry.get("grade")
        if isinstance(grade_raw, float) and grade_raw.is_integer():
            grade_raw = int(grade_raw)
        if grade_raw is None or isinstance(grade_raw, bool | float):
            raise Malformed(f"verdict {i} has no valid grade")
        grade = scale.parse_label(str(grade_raw))
        if grade is None:
            raise Malformed(f"grade {str(grade_raw)[:30]!r} is not one of {scale.labels}")
        weakest = str(entry.get("weakest") or "").strip().lower()
        rationale = " ".join(str(entry.get("rationale") or "").split())[:MAX_RATIONALE]
        out[pos] = ParsedGrade(grade, rationale, weakest if weakest in rubric.criteria else None)
    return [out[i] for i in range(1, n + 1)]
