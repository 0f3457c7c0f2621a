"""Runs in phases that differ in one per-neuron parameter (e.g. clamping through leak potentials).

A CD iteration clamps one image after another (each a pattern of leak potentials) and then runs
free: phases of one run that differ only in a parameter of the neurons. On a backend that launches
a compiled program per ``run`` (``brian2_standalone``), every phase costs a launch; such a backend
provides ``run_parameter_schedule(population, name, values, durations_ms)`` and runs all phases in
one launch. Any other PyNN backend gets PyNN's portable route: ``population.set`` + ``sim.run`` per
phase.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

__all__ = ["run_parameter_schedule"]


def run_parameter_schedule(sim: ModuleType, population, name: str, values, durations_ms) -> None:
    """Run ``len(durations_ms)`` phases; in phase k the parameter ``name`` of ``population`` is ``values[k]``.

    Same as ``for v, d in zip(values, durations_ms): population.set(**{name: v}); sim.run(d)``; a
    backend's own route may in addition deliver spikes in flight across phase boundaries (see the
    backend). Afterwards the parameter holds the last phase's values.

    Parameters
    ----------
    sim : module
        The PyNN backend module of ``population``.
    population : Population
        Neurons whose parameter changes.
    name : str
        PyNN parameter name (e.g. ``"v_rest"``, mV).
    values : array (n_phases, population.size)
        Values per phase, PyNN units.
    durations_ms : array (n_phases,)
        Phase lengths (ms), each > 0.

    Raises
    ------
    ValueError
        Wrong shapes, non-finite values or durations <= 0 (before anything runs).

    Examples
    --------
    >>> leaks = np.tile(network.lif.e_leak, (3, 1)); leaks[0, :10] = -40.0   # clamp 10 units on
    >>> run_parameter_schedule(sim, network.population, "v_rest", leaks, [60.0, 60.0, 400.0])
    """
    values = np.asarray(values, dtype=float)
    durations = np.asarray(durations_ms, dtype=float).reshape(-1)
    if durations.size == 0:
        raise ValueError("durations_ms must hold at least one phase")
    if values.shape != (durations.size, population.size):
        raise ValueError(f"values must have shape (n_phases, population size) = ({durations.size}, "
                         f"{population.size}), got {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"values of {name!r} must be finite")
    if not np.all(np.isfinite(durations)) or np.any(durations <= 0):
        raise ValueError(f"durations_ms must be finite and > 0 (ms), got {durations}")
    native = getattr(sim, "run_parameter_schedule", None)
    if native is not None:
        native(population, name, values, durations)
        return
    for row, duration in zip(values, durations):
        population.set(**{name: row})
        sim.run(float(duration))
