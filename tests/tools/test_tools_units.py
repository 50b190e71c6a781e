import pytest

from tools.units import UnitError, convert, unit_converter


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (10, "km", "mi", 6.2137119),
        (1, "mile", "feet", 5280),
        (100, "C", "F", 212),
        (32, "°F", "celsius", 0),
        (0, "K", "C", -273.15),
        (1, "GiB", "MB", 1073.741824),
        (2, "lbs", "kg", 0.90718474),
        (90, "minutes", "h", 1.5),
        (1, "kWh", "kJ", 3600),
        (100, "km/h", "m/s", 27.777778),
        (1, "acre", "m2", 4046.8564224),
        (1, "gallon", "l", 3.785411784),
    ],
)
def test_conversions(value, src, dst, expected):
    assert convert(value, src, dst) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "src", "dst", "message"),
    [
        (1, "kg", "m", "cannot convert mass"),
        (1, "parsec", "m", "unknown unit 'parsec'"),
        (1, "C", "m", "only temperatures"),
        (-300, "C", "K", "below absolute zero"),
        (float("inf"), "m", "km", "finite number"),
        (float("nan"), "m", "km", "finite number"),
    ],
)
def test_refusals(value, src, dst, message):
    with pytest.raises(UnitError, match=message):
        convert(value, src, dst)


def test_tool_reports_errors_as_messages():
    assert unit_converter.invoke({"value": 5, "from_unit": "km", "to_unit": "m"}) == "5 km = 5000 m"
    assert unit_converter.invoke({"value": 1, "from_unit": "kg", "to_unit": "s"}).startswith("Error: cannot convert")
    assert "value" in unit_converter.invoke({"value": "lots", "from_unit": "kg", "to_unit": "g"})


@pytest.mark.parametrize(
    ("value", "src", "dst"),
    [
        (1e308, "tb", "b"),  # issue 14: came back as "inf b"
        (-1e308, "tb", "b"),
        (1e308, "mi2", "cm2"),
        (1.7e308, "F", "C"),
        (1e308, "C", "F"),
        (10**400, "m", "km"),
    ],
)
def test_overflow_is_an_error_never_inf(value, src, dst):
    with pytest.raises(UnitError, match="overflow|too large"):
        convert(value, src, dst)
    out = unit_converter.invoke({"type": "tool_call", "id": "1", "name": "convert_units",
                                 "args": {"value": value, "from_unit": src, "to_unit": dst}})  # fmt: skip
    assert out.status == "error" and "inf" not in out.content.replace("finite", "")


def test_the_largest_finite_conversions_still_work():
    assert convert(1e308, "b", "tb") == pytest.approx(1e296)
    assert convert(1e296, "tb", "b") == pytest.approx(1e308)
