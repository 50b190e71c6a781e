"""The calculator and unit converter under fuzzed input: a finite answer or a clear error, fast.

Hypothesis builds expressions from huge and tiny literals (``10**999``, ``1e308``,
``1e999``), every operator and every function with any number of arguments. Whatever
comes out is either a finite number within the 1,000-digit cap or a ``CalculatorError``
(never ``inf``/``nan``, never another exception), within a bounded time. The time is
the calling thread's CPU time: the calculator computes in that thread, so a hostile input
shows there, while a shared machine that deschedules the process for a second does not. The same for
unit conversions over every unit pair and extreme values. Memory is checked in
``test_fuzz_tools_memory.py``.
"""

import math
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from tools.calculator import _FUNCTIONS, MAX_INT_DIGITS, CalculatorError, evaluate
from tools.units import _ALIASES, _TEMPERATURE, _UNITS, UnitError, convert

LITERALS = ["0", "1", "-1", "2", "7", "10", "0.5", "1e308", "1e-308", "1e999", "10**999", "9**999", "2**1000",
            "999", "-10**999", "pi", "e", "1e16", "(10**999)", "0.1"]  # fmt: skip
OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "^"]
BOUND_S = 0.5


def expressions():
    leaf = st.sampled_from(LITERALS)

    def extend(children):
        binary = st.tuples(children, st.sampled_from(OPERATORS), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        unary = children.map(lambda c: f"-{c}")
        call = st.tuples(st.sampled_from(sorted(_FUNCTIONS)), st.lists(children, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        )
        return st.one_of(binary, unary, call)

    return st.recursive(leaf, extend, max_leaves=8)


@settings(max_examples=600, deadline=None)
@given(expression=expressions())
def test_calculator_answers_finitely_or_refuses_quickly(expression):
    started = time.thread_time()
    try:
        value = evaluate(expression)
    except CalculatorError as exc:
        assert str(exc)
    else:
        assert isinstance(value, int | float) and not isinstance(value, bool)
        assert math.isfinite(value) if isinstance(value, float) else abs(value) < 10**MAX_INT_DIGITS
    assert time.thread_time() - started < BOUND_S, expression


UNITS = sorted([*_UNITS, *_TEMPERATURE, *_ALIASES, "parsec", "", " KM ", "°C"])


@settings(max_examples=400, deadline=None)
@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(10**400), max_value=10**400)
    ),
    src=st.sampled_from(UNITS),
    dst=st.sampled_from(UNITS),
)
def test_units_convert_finitely_or_refuse(value, src, dst):
    try:
        result = convert(value, src, dst)
    except UnitError as exc:
        assert str(exc)
    else:
        assert math.isfinite(result)
