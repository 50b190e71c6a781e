"""An arithmetic evaluator on Python's ``ast``, with no ``eval``.

Only numbers, the operators ``+ - * / // % **``, parentheses, a few named constants
and a whitelist of math functions are accepted; everything else (names, attributes,
subscripts, strings, lambdas, comprehensions ...) is refused before anything runs.
Time and memory are bounded: the expression's length and node count, every
literal, argument and intermediate result (at most 1,000 digits; a float overflow is an
error, never ``inf``/``nan``), every function's arguments (``round``'s ndigits,
exponents, ``factorial``'s n are checked *before* computing, so ``round(7, -10**999)``
is refused at once), and the whole evaluation has a time budget.
"""

from __future__ import annotations

import ast
import math
import operator
import time
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
MAX_ARGS = 50
#: Wall-clock budget of one evaluation; every step is also bounded on its own.
TIME_BUDGET_S = 1.0
_INT_LIMIT = 10**MAX_INT_DIGITS  # the smallest integer with more than MAX_INT_DIGITS digits


class CalculatorError(ValueError):
    """The expression is not allowed, too large, or has no finite value."""


def _number(value: Any, what: str = "the result") -> int | float:
    """``value`` if it is a finite real number within the digit cap, else a CalculatorError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, complex):
            raise CalculatorError(f"{what} is not a real number")
        raise CalculatorError(f"{what} is not a number")
    if isinstance(value, int) and not -_INT_LIMIT < value < _INT_LIMIT:
        raise CalculatorError(f"overflow: {what} has more than {MAX_INT_DIGITS} digits")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError(f"overflow: {what} is not a finite number (floats reach about 1.8e308)")
    return value


def _power(base: int | float, exponent: int | float) -> int | float:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponents are limited to +/-{MAX_EXPONENT}")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and base not in (0, 1, -1):
        if exponent * math.log10(abs(base)) > MAX_INT_DIGITS + 1:  # checked exactly by _number afterwards
            raise CalculatorError(f"overflow: the result would have more than {MAX_INT_DIGITS} digits")
    return base**exponent  # type: ignore[no-any-return]


def _round(x: int | float, ndigits: int | float | None = None) -> int | float:
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int):
        raise CalculatorError("round's second argument (ndigits) must be a whole number")
    if abs(ndigits) > MAX_INT_DIGITS:
        raise CalculatorError(f"round's ndigits is limited to +/-{MAX_INT_DIGITS}")
    return round(x, ndigits)


def _factorial(n: int | float) -> int:
    if not isinstance(n, int) or n < 0:
        raise CalculatorError("factorial needs a whole number >= 0")
    if n > 1 and math.lgamma(n + 1) / math.log(10) > MAX_INT_DIGITS + 1:
        raise CalculatorError(f"overflow: factorial({n}) has more than {MAX_INT_DIGITS} digits")
    return math.factorial(n)


def _floats(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` over floats: an integer too large for a float is an overflow error."""

    def call(*args: int | float) -> Any:
        try:
            converted = [float(a) for a in args]
        except OverflowError:
            raise CalculatorError("overflow: a number is too large for a float (about 1.8e308)") from None
        return fn(*converted)

    return call


def _log(x: int | float, base: int | float | None = None) -> float:  # math.log takes big integers exactly
    if x <= 0 or (base is not None and (base <= 0 or base == 1)):
        raise CalculatorError("log needs x > 0 and a base > 0 other than 1")
    return math.log(x) if base is None else math.log(x, base)


# name -> (function, fewest arguments, most arguments)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (lambda *a: min(a), 1, MAX_ARGS),
    "max": (lambda *a: max(a), 1, MAX_ARGS),
    "sqrt": (_floats(math.sqrt), 1, 1),
    "exp": (_floats(math.exp), 1, 1),
    "log": (_log, 1, 2),
    "log10": (lambda x: _log(x, 10), 1, 1),
    "log2": (lambda x: _log(x, 2), 1, 1),
    "sin": (_floats(math.sin), 1, 1),
    "cos": (_floats(math.cos), 1, 1),
    "tan": (_floats(math.tan), 1, 1),
    "asin": (_floats(math.asin), 1, 1),
    "acos": (_floats(math.acos), 1, 1),
    "atan": (_floats(math.atan), 1, 1),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "hypot": (_floats(math.hypot), 1, MAX_ARGS),
    "factorial": (_factorial, 1, 1),
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _eval(node: ast.AST, deadline: float) -> int | float:
    if time.monotonic() > deadline:
        raise CalculatorError(f"the expression took longer than {TIME_BUDGET_S:g} s")
    if isinstance(node, ast.Expression):
        return _eval(node.body, deadline)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError(f"only numbers are allowed, not {node.value!r}")
        return _number(node.value, "a number in the expression")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, deadline), _eval(node.right, deadline)
        return _number(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _number(_UNARY[type(node.op)](_eval(node.operand, deadline)))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords:
            raise CalculatorError("keyword arguments are not allowed")
        fn, fewest, most = _FUNCTIONS[node.func.id]
        if not fewest <= len(node.args) <= most:
            count = str(fewest) if fewest == most else f"{fewest} to {most}"
            raise CalculatorError(f"{node.func.id} takes {count} argument(s), not {len(node.args)}")
        args = [_eval(a, deadline) for a in node.args]
        return _number(fn(*args), f"{node.func.id}(...)")
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
    except (RecursionError, MemoryError, ValueError):
        raise CalculatorError("the expression is nested too deeply or too large") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError(f"the expression has more than {MAX_NODES} parts")
    try:
        value = _eval(tree, time.monotonic() + TIME_BUDGET_S)
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError as exc:
        raise CalculatorError(
            f"overflow: {exc} (floats reach about 1.8e308, integers {MAX_INT_DIGITS} digits)"
        ) from None
    except (ValueError, TypeError) as exc:
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
    description=(
        "Evaluate an arithmetic expression exactly (numbers, + - * / // % **, parentheses, pi, e, sqrt, log, sin, "
        "round, factorial ...)."
    ),
    args_schema=_CalculatorInput,
    handle_tool_error=True,
    handle_validation_error=validation_message,
)
