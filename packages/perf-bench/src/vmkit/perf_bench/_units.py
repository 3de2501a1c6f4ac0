"""Units of measurement: time conversions and how to print a value with its unit."""

from __future__ import annotations

import math

__all__ = ["TIME_UNITS", "convert", "convert_time", "format_value", "is_time_unit", "readable_unit"]

TIME_UNITS: dict[str, int] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
"""Nanoseconds per unit (integers, so whole conversions are exact), for every time unit."""


def is_time_unit(unit: str) -> bool:
    """Whether ``unit`` is one of ns, us, ms, s."""
    return unit in TIME_UNITS


def convert_time(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a duration between ns, us, ms and s.

    Raises:
        ValueError: if either unit is not a time unit.
    """
    for unit in (from_unit, to_unit):
        if unit not in TIME_UNITS:
            raise ValueError(f"unknown time unit {unit!r}; use one of {', '.join(TIME_UNITS)}")
    if from_unit == to_unit:
        return float(value)
    return value * TIME_UNITS[from_unit] / TIME_UNITS[to_unit]


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` between two units: identical units, or two time units.

    Raises:
        ValueError: if the units cannot be converted into each other.
    """
    if from_unit == to_unit:
        return float(value)
    if is_time_unit(from_unit) and is_time_unit(to_unit):
        return convert_time(value, from_unit, to_unit)
    raise ValueError(f"cannot convert {from_unit!r} to {to_unit!r}")


def readable_unit(value: float, unit: str) -> str:
    """The time unit in which ``value`` (given in ``unit``) reads best; other units unchanged."""
    if not is_time_unit(unit) or value == 0 or math.isnan(value):
        return unit
    nanoseconds = abs(convert_time(value, unit, "ns"))
    for candidate in ("s", "ms", "us"):
        if nanoseconds >= TIME_UNITS[candidate]:
            return candidate
    return "ns"


def format_value(value: float, unit: str, display_unit: str | None = None) -> str:
    """Print ``value`` with four significant digits and its unit; times pick a readable unit.

    ``display_unit`` forces the unit to print in (so that several values line up).
    """
    if math.isnan(value):
        return "nan"
    shown = display_unit or readable_unit(value, unit)
    value = convert(value, unit, shown)
    text = f"{value:.4g}"
    return f"{text} {shown}" if shown else text
