"""Argument checks shared by every config: one wording for every error, raised before any simulation.

Each check returns the value converted (``float`` or ``int``) and raises :class:`ValueError` whose
message names the parameter, the allowed range with its unit, and the value given, e.g.
``sampling_ms must be a finite number > 0 (ms), got -5.0``. Nothing is clipped or rounded silently.

Config dataclasses call them in ``__post_init__``, so a config that exists is a valid one; the CLI
builds the config before it starts a simulation.

Examples
--------
>>> check_positive(10.0, "duration_ms", "ms")
10.0
>>> check_int(3, "iterations", minimum=1)
3
>>> check_choice("static", "synapses", ("renewing", "static"))
'static'
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_finite", "check_positive", "check_non_negative", "check_range", "check_int", "check_choice",
           "check_fraction"]


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""


def _number(value, name: str, requirement: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be {requirement}{_unit(unit)}, got {value!r}")
    return float(value)


def check_finite(value, name: str, unit: str = "") -> float:
    """``value`` as a float; ValueError unless it is a finite real number."""
    return _number(value, name, "a finite number", unit)


def check_positive(value, name: str, unit: str = "") -> float:
    """``value`` as a float; ValueError unless it is finite and > 0."""
    number = _number(value, name, "a finite number > 0", unit)
    if number <= 0:
        raise ValueError(f"{name} must be a finite number > 0{_unit(unit)}, got {value!r}")
    return number


def check_non_negative(value, name: str, unit: str = "") -> float:
    """``value`` as a float; ValueError unless it is finite and >= 0."""
    number = _number(value, name, "a finite number >= 0", unit)
    if number < 0:
        raise ValueError(f"{name} must be a finite number >= 0{_unit(unit)}, got {value!r}")
    return number


def check_range(value, name: str, low: float, high: float, unit: str = "", *, low_open: bool = False,
                high_open: bool = False) -> float:
    """``value`` as a float; ValueError unless it lies in the interval from ``low`` to ``high``.

    ``low_open``/``high_open`` exclude the ends; the message writes the interval as ``[low, high)`` etc.
    """
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    number = _number(value, name, f"a finite number in {interval}", unit)
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if below or above:
        raise ValueError(f"{name} must lie in {interval}{_unit(unit)}, got {value!r}")
    return number


def check_fraction(value, name: str, *, include_one: bool = False) -> float:
    """``value`` as a float in [0, 1) (or [0, 1] with ``include_one``)."""
    return check_range(value, name, 0.0, 1.0, high_open=not include_one)


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int; ValueError unless it is an integer (also ``3.0``) within the bounds."""
    whole = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and math.isfinite(value)
                                                    and float(value).is_integer())
    in_bounds = whole and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if isinstance(value, bool) or not in_bounds:
        if minimum is not None and maximum is not None:
            bounds = f" in [{minimum}, {maximum}]"
        elif minimum is not None:
            bounds = f" >= {minimum}"
        elif maximum is not None:
            bounds = f" <= {maximum}"
        else:
            bounds = ""
        raise ValueError(f"{name} must be an integer{bounds}, got {value!r}")
    return int(value)


def check_choice(value, name: str, choices) -> str:
    """``value`` unchanged; ValueError listing ``choices`` unless it is one of them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value
