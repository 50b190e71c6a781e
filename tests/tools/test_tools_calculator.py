import math

import pytest
from langchain_core.messages import ToolMessage

from tools.calculator import CalculatorError, calculator, evaluate


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("2 ** 10", 1024),
        ("2 ^ 10", 1024),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("10 / 4", 2.5),
        ("-3 + +5", 2),
        ("sqrt(16) + abs(-2)", 6),
        ("max(1, 7, 3) - min(4, 2)", 5),
        ("round(2 * pi, 3)", 6.283),
        ("1.5e3", 1500),
    ],
)
def test_happy_path(expression, value):
    assert evaluate(expression) == pytest.approx(value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('true')", "not allowed"),
        ("(1).__class__", "Attribute"),
        ("[1, 2][0]", "not allowed"),
        ("'a' * 3", "only numbers"),
        ("True + 1", "only numbers"),
        ("x + 1", "unknown name 'x'"),
        ("lambda: 1", "not allowed"),
        ("9 ** 9 ** 9", "exponents are limited"),
        ("10 ** 999 * 10 ** 999", "more than 1000 digits"),
        ("7 ** 2000", "exponents are limited"),
        ("11 ** 999", "more than 1000 digits"),
        ("1 / 0", "division by zero"),
        ("sqrt(-1)", "cannot compute"),
        ("(-8) ** (1/3)", "not a real number"),
        ("1e308 * 10", "not a finite number"),
        ("round(1.5, ndigits=2)", "keyword arguments"),
        ("2 +", "not a valid expression"),
        ("", "empty"),
        ("1+" * 300 + "1", "longer than"),
        ("+".join(["1"] * 150), "more than 200 parts"),
    ],
)
def test_refusals(expression, message):
    with pytest.raises(CalculatorError, match=message):
        evaluate(expression)


def test_errors_come_back_as_tool_messages():
    ok = calculator.invoke({"type": "tool_call", "id": "1", "name": "calculator", "args": {"expression": "6*7"}})
    assert isinstance(ok, ToolMessage) and ok.content == "42" and ok.status == "success"
    bad = calculator.invoke({"type": "tool_call", "id": "2", "name": "calculator", "args": {"expression": "open('x')"}})
    assert bad.status == "error" and bad.content.startswith("Error:")
    invalid = calculator.invoke({"type": "tool_call", "id": "3", "name": "calculator", "args": {"expr": "1"}})
    assert "expression" in invalid.content and "Field required" in invalid.content


def test_results_are_exact_where_possible():
    assert evaluate("2 ** 100") == 2**100
    assert isinstance(evaluate("4 / 2"), int)
    assert math.isclose(evaluate("sin(pi / 2)"), 1.0)
