"""An arithmetic evaluator on Python's ``ast``, with no ``eval``.

Only numbers, the operators ``+ - * / // % **``, parentheses, a few named constants
and a whitelist of math functions are accepted; everything else (names, attributes,
subscripts, strings, lambdas, comprehensions ...) is refused before anything runs.
Sizes are bounded: the expression's length and node count, exponents, and the
magnitude of every intermediate integer.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, Field

from tools._common import validation_message

__all__ = ["CalculatorError", "calculator", "evaluate"]

MAX_LENGTH = 500
MAX_NODES = 200
MAX_EXPONENT = 1000
MAX_INT_DIGITS = 1000

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "floor": math.floor,
    "ceil": math.ceil,
    "hypot": math.hypot,
}


class CalculatorError(ValueError):
    """The expression is not allowed, too large, or has no finite value."""


def _check_int(value: Any) -> Any:
    if isinstance(value, complex):
        raise CalculatorError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_DIGITS * 3.33:
        raise CalculatorError(f"an intermediate result has more than {MAX_INT_DIGITS} digits")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("the result is not a finite number")
    return value


def _power(base: Any, exponent: Any) -> Any:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponents are limited to +/-{MAX_EXPONENT}")
    if isinstance(base, int) and isinstance(exponent, int) and base not in (0, 1, -1):
        if abs(exponent) * math.log10(abs(base)) > MAX_INT_DIGITS:
            raise CalculatorError(f"the result would have more than {MAX_INT_DIGITS} digits")
    return base**exponent


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError(f"only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_int(_power(left, right))
        return _check_int(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords:
            raise CalculatorError("keyword arguments are not allowed")
        return _check_int(_FUNCTIONS[node.func.id](*(_eval(a) for a in node.args)))
    if isinstance(node, ast.Name):
        known = ", ".join(sorted([*_CONSTANTS, *_FUNCTIONS]))
        raise CalculatorError(f"unknown name {node.id!r}; known names: {known}")
    raise CalculatorError(f"{type(node).__name__} is not allowed in an arithmetic expression")


def evaluate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely.

    Args:
        expression: e.g. ``"2 * (3 + 4) ** 2 / sqrt(16)"``; ``^`` is read as ``**``.

    Returns:
        The value (an int when exact, else a float).

    Raises:
        CalculatorError: on anything that is not plain arithmetic, on overflow,
            division by zero, or when a size limit is exceeded.
    """
    text = expression.strip().replace("^", "**")
    if not text:
        raise CalculatorError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise CalculatorError(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not a valid expression: {exc.msg}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError(f"the expression has more than {MAX_NODES} parts")
    try:
        value = _eval(tree)
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except (OverflowError, ValueError, TypeError) as exc:
        if isinstance(exc, CalculatorError):
            raise
        raise CalculatorError(f"cannot compute: {exc}") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value  # type: ignore[no-any-return]


class _CalculatorInput(BaseModel):
    expression: str = Field(
        description="Arithmetic expression, e.g. '(17 + 5) * 3 / 2' or 'sqrt(2) ** 2'.", max_length=MAX_LENGTH
    )


def _run(expression: str) -> str:
    try:
        return str(evaluate(expression))
    except CalculatorError as exc:
        raise ToolException(f"Error: {exc}") from None


calculator = StructuredTool.from_function(
    func=_run,
    name="calculator",
    description="Evaluate an arithmetic expression exactly (numbers, + - * / // % **, parentheses, pi, e, sqrt, log, sin ...).",
    args_schema=_CalculatorInput,
    handle_tool_error=True,
    handle_validation_error=validation_message,
)
