"""Cheap hand-made cues of a request and of a drafted answer (no model needed).

Each cue is a float computed with a few regular expressions; the learned predictor
standardises them and lets its classifier weigh them. Request cues describe the task
(length, numbers, code, question words, maths words). Draft cues describe the small
model's answer: its length (also relative to the request), refusals, hedging, code,
whether it states a final answer, whether the arithmetic it writes out (``a op b = c``)
is right, whether it looks cut off, and repeated lines.
"""

from __future__ import annotations

import ast
import math
import operator
import re

__all__ = ["DRAFT_CUES", "REQUEST_CUES", "arithmetic_check", "draft_cues", "request_cues"]

_REFUSAL = re.compile(
    r"\b(?:i'?m sorry|i am sorry|i apologi[sz]e|as an ai|i cannot|i can'?t|i am unable|i'?m unable|not able to"
    r"|i do not have access)\b"
)
_HEDGE = re.compile(r"\b(?:might|may|perhaps|possibly|not sure|unclear|it depends|approximately|however)\b")
_CODE_WORDS = ("```", "def ", "class ", "return ", "function", "#include", "import ", "public ", "select ")
_CODE_LINE = re.compile(r"[{};]\n")
_QUESTION = re.compile(r"\b(?:what|why|how|which|who|when|where)\b")
_MATH = re.compile(
    r"\b(?:calculate|compute|solve|prove|equation|probability|integral|derivative|sum|how many|how much)\b"
)
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*")
_ARITHMETIC = re.compile(r"(-?\d[\d,]*\.?\d*(?:\s*[-+*/x×]\s*-?\d[\d,]*\.?\d*)+)\s*=\s*\$?(-?\d[\d,]*\.?\d*)")
_SAFE_EXPR = re.compile(r"[\d.\s+\-*/()]+")
_FINAL = re.compile(r"####|answer is|final answer|\\boxed|answer:")
_HEAD = 3000
_TAIL = 600
_ENDINGS = tuple("0123456789.!?)`\"*'>]}")

REQUEST_CUES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "log_lines",
    "number_density",
    "has_code",
    "has_question_word",
    "has_math_word",
    "has_question_mark",
)
"""Names of :func:`request_cues`, in order."""

DRAFT_CUES: tuple[str, ...] = (
    "draft_log_chars",
    "draft_relative_length",
    "draft_refuses",
    "draft_hedges_per_100_words",
    "draft_has_code",
    "draft_states_final_answer",
    "draft_arithmetic_wrong",
    "draft_arithmetic_right",
    "draft_log_arithmetic_errors",
    "draft_looks_cut_off",
    "draft_repeats_lines",
    "draft_number_density",
)
"""Names of :func:`draft_cues`, in order."""


def _words(text: str) -> int:
    return len(text.split())


def _has_code(low: str) -> bool:
    return any(w in low for w in _CODE_WORDS) or bool(_CODE_LINE.search(low))


def _excerpt(text: str) -> str:
    """The head and tail of a long text (cues look at no more than this)."""
    return text if len(text) <= _HEAD + _TAIL else text[:_HEAD] + "\n" + text[-_TAIL:]


def request_cues(text: str) -> list[float]:
    """Cues of the request text (see :data:`REQUEST_CUES`)."""
    words = _words(text)
    low = _excerpt(text).lower()
    return [
        math.log1p(len(text)),
        math.log1p(words),
        math.log1p(text.count("\n")),
        len(_NUMBER.findall(low)) / (1 + _words(low)),
        float(_has_code(low)),
        float(bool(_QUESTION.search(low))),
        float(bool(_MATH.search(low))),
        float("?" in text),
    ]


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _eval_node(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval_node(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return float(_OPS[type(node.op)](_eval_node(node.left), _eval_node(node.right)))
    raise ValueError("not plain arithmetic")


def _evaluate(expression: str) -> float | None:
    """Evaluate a plain arithmetic expression (numbers and + - * / only), or None."""
    expr = expression.replace(",", "").replace("x", "*").replace("×", "*")
    if len(expr) > 200 or not _SAFE_EXPR.fullmatch(expr):
        return None
    try:
        return _eval_node(ast.parse(expr, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None


def arithmetic_check(text: str) -> tuple[int, int]:
    """Count written-out ``a op b = c`` steps that are right and wrong (1 % tolerance)."""
    right = wrong = 0
    for expression, result in _ARITHMETIC.findall(text):
        value = _evaluate(expression)
        try:
            stated = float(result.replace(",", "").rstrip("."))
        except ValueError:
            continue
        if value is None:
            continue
        if abs(value - stated) <= 1e-2 * max(1.0, abs(stated)):
            right += 1
        else:
            wrong += 1
    return right, wrong


def draft_cues(draft: str, request: str) -> list[float]:
    """Cues of the drafted answer (see :data:`DRAFT_CUES`)."""
    part = _excerpt(draft)
    low = part.lower()
    right, wrong = arithmetic_check(part)
    words = _words(part)
    lines = draft.splitlines()
    stripped = draft.rstrip()
    return [
        math.log1p(len(draft)),
        math.log1p(len(draft)) - math.log1p(len(request)),
        float(bool(_REFUSAL.search(low[:400]))),
        100.0 * len(_HEDGE.findall(low)) / (1 + words),
        float(_has_code(low)),
        float(bool(_FINAL.search(low[-_TAIL:]) or _FINAL.search(low[:_HEAD]))),
        float(wrong > 0),
        float(right > 0),
        math.log1p(wrong),
        float(bool(stripped) and not stripped.endswith(_ENDINGS)),
        float(len(set(lines)) < 0.7 * max(1, len(lines))),
        len(_NUMBER.findall(part)) / (1 + words),
    ]
