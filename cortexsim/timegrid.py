"""Durations on the integration grid (base layer: imports nothing of the package).

Simulators advance in whole integration steps (NEST refuses a run that is not a multiple of its
resolution). :func:`steps_for` turns a duration into a number of steps: a duration on the grid (up
to rounding errors of the decimal input) gives exactly ``duration / dt`` steps; any other duration
of at least one step is rounded *up* to the next whole step, so the simulated time always covers the
requested window. :func:`grid_duration` is the simulated time that results (ms). A duration shorter
than one step is an error naming the parameter.

Examples
--------
>>> steps_for(10100.0, 0.1)
101000
>>> grid_duration(10000.0, 0.15)      # 66667 steps of 0.15 ms
10000.05
"""

from __future__ import annotations

import math
import numbers

__all__ = ["steps_for", "grid_duration", "check_duration", "GRID_TOLERANCE"]

#: Relative tolerance within which a duration counts as a whole number of steps.
GRID_TOLERANCE = 1e-6


def _finite(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def steps_for(duration_ms: float, dt_ms: float, name: str = "duration_ms") -> int:
    """Whole integration steps of ``dt_ms`` (ms) that cover ``duration_ms`` (ms).

    A duration within :data:`GRID_TOLERANCE` (relative) of a whole number of steps gives that number;
    otherwise the number of steps is rounded up.

    Raises
    ------
    ValueError
        If ``duration_ms`` is not finite or shorter than one step (the message names ``name`` and ``dt``).
    """
    if not _finite(dt_ms) or dt_ms <= 0:
        raise ValueError(f"dt must be a finite number > 0 (ms), got {dt_ms!r}")
    dt = float(dt_ms)
    if not _finite(duration_ms):
        raise ValueError(f"{name} must be a finite duration >= dt = {dt:g} ms, got {duration_ms!r}")
    ratio = float(duration_ms) / dt
    nearest = round(ratio)
    steps = nearest if abs(ratio - nearest) <= GRID_TOLERANCE * max(1.0, ratio) else math.ceil(ratio)
    if steps < 1 or ratio < 1.0 - GRID_TOLERANCE:
        raise ValueError(f"{name} must be at least one integration step (dt = {dt:g} ms), got {duration_ms:g} ms")
    return int(steps)


def grid_duration(duration_ms: float, dt_ms: float, name: str = "duration_ms") -> float:
    """The simulated time (ms) of ``duration_ms`` on the grid of ``dt_ms``: unchanged if it is a whole
    number of steps, else rounded up to the next step (see :func:`steps_for`)."""
    steps = steps_for(duration_ms, dt_ms, name)
    if abs(float(duration_ms) / dt_ms - steps) <= GRID_TOLERANCE * max(1.0, steps):
        return float(duration_ms)
    return float(round(steps * dt_ms, 12))


def check_duration(duration_ms, dt_ms: float, name: str = "duration_ms") -> float:
    """A duration (ms) of at least one step of ``dt_ms``; returns it as float (ValueError naming ``name``)."""
    steps_for(duration_ms, dt_ms, name)
    return float(duration_ms)
