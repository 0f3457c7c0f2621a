"""Running a simulation on the integration grid, in chunks with a progress bar (tqdm) for long runs.

Every run goes through whole integration steps (:func:`cortexsim.checks.steps_for`): a duration on
the grid runs as given; any other duration of at least one step is rounded up to the next step, so
the simulated time covers the requested window and NEST never sees a time that is not a multiple of
its resolution.
"""

from __future__ import annotations

import logging
import time
from types import ModuleType

import numpy as np

from cortexsim.timegrid import grid_duration, steps_for

__all__ = ["run_with_progress", "run_on_grid", "time_step", "Phase"]

logger = logging.getLogger(__name__)


def time_step(sim: ModuleType) -> float:
    """The integration step of the current ``setup()`` of ``sim`` (ms)."""
    return float(sim.get_time_step())


def run_on_grid(sim: ModuleType, duration_ms: float, dt_ms: float | None = None) -> float:
    """``sim.run`` for ``duration_ms`` (ms) rounded up to whole steps of ``dt_ms``; returns the time run (ms)."""
    dt = time_step(sim) if dt_ms is None else float(dt_ms)
    duration = grid_duration(duration_ms, dt)
    sim.run(duration)
    return duration


def run_with_progress(sim: ModuleType, duration_ms: float, enabled: bool = True, label: str = "simulating",
                      chunk_ms: float | None = None, dt_ms: float | None = None) -> float:
    """Advance ``sim`` by ``duration_ms`` (ms), in chunks with a progress bar when ``enabled``.

    The chunking does not change the result: PyNN continues the same run. Every chunk is a whole
    number of integration steps (``dt_ms``, by default the simulator's), so every duration of at
    least one step runs. Without progress the whole duration runs in one call (least overhead).

    Returns
    -------
    float
        The simulated time (ms): ``duration_ms``, or the next whole step above it.

    Raises
    ------
    ValueError
        If ``duration_ms`` is not finite or shorter than one step.
    """
    dt = time_step(sim) if dt_ms is None else float(dt_ms)
    total_steps = steps_for(duration_ms, dt)
    duration = grid_duration(duration_ms, dt)
    if not enabled:
        sim.run(duration)
        return duration
    from tqdm import tqdm

    if chunk_ms is None:
        chunk_ms = max(duration / 20.0, min(duration, 1000.0))
    # Time is tracked here: asking the simulator (PyNN's get_current_time on NEST queries the whole
    # kernel status) costs more than a short chunk.
    n_chunks = int(min(total_steps, max(1, int(np.ceil(duration / chunk_ms - 1e-9)))))
    chunk_steps = np.full(n_chunks, total_steps // n_chunks, dtype=np.int64)
    chunk_steps[: total_steps % n_chunks] += 1
    if n_chunks == 1:
        chunks = [duration]
    else:
        chunks = [float(round(int(k) * dt, 12)) for k in chunk_steps]
    with tqdm(total=float(duration), desc=label, unit="ms", unit_scale=True) as bar:
        for step in chunks:
            sim.run(step)
            bar.update(step)
    return duration


class Phase:
    """Log (INFO) the start and the wall time of a long phase that has no progress bar of its own.

    Examples
    --------
    >>> with Phase("fitting", enabled=True):
    ...     fit = expensive()
    """

    def __init__(self, label: str, enabled: bool = True):
        self.label, self.enabled = label, enabled

    def __enter__(self):
        self.start = time.perf_counter()
        if self.enabled:
            logger.info("%s ...", self.label)
        return self

    def __exit__(self, *exc):
        if self.enabled and exc[0] is None:
            logger.info("%s: done in %.1f s", self.label, time.perf_counter() - self.start)
        return False
