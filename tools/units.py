"""Unit conversion over a fixed table of exact factors.

Dimensions: length, mass, time, volume, area, speed, data size, energy and
temperature (affine: Celsius, Fahrenheit, Kelvin). Offline; no currency.
"""

from __future__ import annotations

import math

from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, Field

from tools._common import validation_message

__all__ = ["UnitError", "convert", "unit_converter"]

# unit -> (dimension, factor to the SI/base unit); names are matched case-insensitively.
_UNITS: dict[str, tuple[str, float]] = {
    # length (metre)
    "m": ("length", 1.0), "km": ("length", 1e3), "cm": ("length", 1e-2), "mm": ("length", 1e-3),
    "um": ("length", 1e-6), "nm": ("length", 1e-9), "mi": ("length", 1609.344), "yd": ("length", 0.9144),
    "ft": ("length", 0.3048), "in": ("length", 0.0254), "nmi": ("length", 1852.0),
    # mass (kilogram)
    "kg": ("mass", 1.0), "g": ("mass", 1e-3), "mg": ("mass", 1e-6), "t": ("mass", 1e3),
    "lb": ("mass", 0.45359237), "oz": ("mass", 0.028349523125), "st": ("mass", 6.35029318),
    # time (second)
    "s": ("time", 1.0), "ms": ("time", 1e-3), "min": ("time", 60.0), "h": ("time", 3600.0),
    "day": ("time", 86400.0), "week": ("time", 604800.0), "year": ("time", 31557600.0),
    # volume (litre)
    "l": ("volume", 1.0), "ml": ("volume", 1e-3), "m3": ("volume", 1e3), "gal": ("volume", 3.785411784),
    "qt": ("volume", 0.946352946), "pt": ("volume", 0.473176473), "cup": ("volume", 0.2365882365),
    "floz": ("volume", 0.0295735295625),
    # area (square metre)
    "m2": ("area", 1.0), "km2": ("area", 1e6), "cm2": ("area", 1e-4), "ha": ("area", 1e4),
    "acre": ("area", 4046.8564224), "ft2": ("area", 0.09290304), "mi2": ("area", 2589988.110336),
    # speed (metre per second)
    "m/s": ("speed", 1.0), "km/h": ("speed", 1 / 3.6), "mph": ("speed", 0.44704), "kn": ("speed", 1852 / 3600),
    # data (byte)
    "b": ("data", 1.0), "kb": ("data", 1e3), "mb": ("data", 1e6), "gb": ("data", 1e9), "tb": ("data", 1e12),
    "kib": ("data", 1024.0), "mib": ("data", 1024.0**2), "gib": ("data", 1024.0**3), "tib": ("data", 1024.0**4),
    # energy (joule)
    "j": ("energy", 1.0), "kj": ("energy", 1e3), "cal": ("energy", 4.184), "kcal": ("energy", 4184.0),
    "wh": ("energy", 3600.0), "kwh": ("energy", 3.6e6),
}  # fmt: skip
_TEMPERATURE = {"c", "f", "k"}
_ALIASES = {
    "meter": "m", "meters": "m", "metre": "m", "metres": "m", "kilometer": "km", "kilometers": "km",
    "kilometre": "km", "kilometres": "km", "centimeter": "cm", "centimeters": "cm", "millimeter": "mm",
    "millimeters": "mm", "mile": "mi", "miles": "mi", "yard": "yd", "yards": "yd", "foot": "ft", "feet": "ft",
    "inch": "in", "inches": "in", "kilogram": "kg", "kilograms": "kg", "gram": "g", "grams": "g",
    "pound": "lb", "pounds": "lb", "lbs": "lb", "ounce": "oz", "ounces": "oz", "tonne": "t", "tonnes": "t",
    "second": "s", "seconds": "s", "sec": "s", "minute": "min", "minutes": "min", "hour": "h", "hours": "h",
    "hr": "h", "days": "day", "d": "day", "weeks": "week", "years": "year", "liter": "l", "liters": "l",
    "litre": "l", "litres": "l", "milliliter": "ml", "milliliters": "ml", "gallon": "gal", "gallons": "gal",
    "cups": "cup", "kph": "km/h", "kmh": "km/h", "knot": "kn", "knots": "kn", "byte": "b", "bytes": "b",
    "joule": "j", "joules": "j", "calorie": "cal", "calories": "cal", "celsius": "c", "°c": "c",
    "fahrenheit": "f", "°f": "f", "kelvin": "k", "hectare": "ha", "hectares": "ha", "acres": "acre",
}  # fmt: skip


class UnitError(ValueError):
    """Unknown units, incompatible dimensions, or a value that cannot be converted."""


def _canonical(unit: str) -> str:
    key = unit.strip().lower().replace(" ", "").replace("²", "2").replace("³", "3")
    key = _ALIASES.get(key, key)
    if key not in _UNITS and key not in _TEMPERATURE:
        raise UnitError(f"unknown unit {unit!r}; known units: {', '.join(sorted([*_UNITS, *_TEMPERATURE]))}")
    return key


def _to_kelvin(value: float, unit: str) -> float:
    return {"c": value + 273.15, "f": (value - 32.0) * 5.0 / 9.0 + 273.15, "k": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"c": value - 273.15, "f": (value - 273.15) * 9.0 / 5.0 + 32.0, "k": value}[unit]


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` from one unit to another.

    Args:
        value: A finite number.
        from_unit: e.g. ``"km"``, ``"miles"``, ``"°F"``.
        to_unit: A unit of the same dimension.

    Returns:
        The converted value.

    Raises:
        UnitError: on an unknown unit, incompatible dimensions, a non-finite value,
            a result beyond the float range (never ``inf``) or a temperature below
            absolute zero.
    """
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(_float(value)):
        raise UnitError(f"the value must be a finite number, not {value!r}")
    src, dst = _canonical(from_unit), _canonical(to_unit)
    if src in _TEMPERATURE or dst in _TEMPERATURE:
        if not (src in _TEMPERATURE and dst in _TEMPERATURE):
            raise UnitError(
                f"cannot convert between {from_unit!r} and {to_unit!r}: only temperatures convert to temperatures"
            )
        kelvin = _to_kelvin(_float(value), src)
        if kelvin < 0:
            raise UnitError(f"{value} {from_unit} is below absolute zero")
        return _finite(_from_kelvin(kelvin, dst), value, from_unit, to_unit)
    (src_dim, src_factor), (dst_dim, dst_factor) = _UNITS[src], _UNITS[dst]
    if src_dim != dst_dim:
        raise UnitError(f"cannot convert {src_dim} ({from_unit!r}) to {dst_dim} ({to_unit!r})")
    return _finite(_float(value) * src_factor / dst_factor, value, from_unit, to_unit)


def _float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond the float range
        raise UnitError("the value is too large (floats reach about 1.8e308)") from None


def _finite(result: float, value: float, from_unit: str, to_unit: str) -> float:
    """``result``, unless the conversion overflowed (an error, never ``inf``)."""
    if not math.isfinite(result):
        raise UnitError(f"overflow: {value:g} {from_unit} is beyond the float range in {to_unit} (about 1.8e308)")
    return result


class _ConvertInput(BaseModel):
    value: float = Field(description="The amount to convert.")
    from_unit: str = Field(description="Unit of the amount, e.g. 'km', 'lb', 'F', 'GiB'.", max_length=32)
    to_unit: str = Field(description="Unit to convert to (same dimension).", max_length=32)


def _run(value: float, from_unit: str, to_unit: str) -> str:
    try:
        result = convert(value, from_unit, to_unit)
    except UnitError as exc:
        raise ToolException(f"Error: {exc}") from None
    return f"{value:g} {from_unit} = {result:.6g} {to_unit}"


unit_converter = StructuredTool.from_function(
    func=_run,
    name="convert_units",
    description="Convert an amount between units of length, mass, time, volume, area, speed, data size, energy or temperature.",
    args_schema=_ConvertInput,
    handle_tool_error=True,
    handle_validation_error=validation_message,
)
