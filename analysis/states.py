"""Spike trains -> binary sampling states -> distributions over the 2**n states.

A neuron k is in state ``z_k = 1`` for ``tau_ref`` after each of its spikes: ``z_k(t) = 1`` iff it
spiked at some ``s`` with ``t - tau_ref < s <= t``, i.e. during ``[s, s + tau_ref)``. A spike within
``tau_ref`` of the previous one renews (extends) the on-period rather than adding to it.

State indices follow :mod:`cortexsim.models.boltzmann`: ``index = sum_k z_k 2**(n-1-k)`` (neuron 0 is
the most significant bit). All times are in ms. Spike trains may be ``neo.SpikeTrain`` objects
(any time unit; converted to ms) or 1-D arrays of spike times in ms. This module imports no backend.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from cortexsim.models.boltzmann import MAX_EXACT_UNITS, states_to_indices

__all__ = [
    "spike_times_ms",
    "states_on_grid",
    "states_on_grid_from_arrays",
    "joint_distribution",
    "joint_distribution_over_time",
    "joint_distribution_in_windows",
    "discrete_samples",
    "sample_distribution",
]


def spike_times_ms(spiketrains: Iterable) -> list[np.ndarray]:
    """Sorted spike times in ms, one float array per neuron.

    Parameters
    ----------
    spiketrains : iterable of neo.SpikeTrain (any time unit) or of 1-D arrays (ms)
    """
    out = []
    for k, train in enumerate(spiketrains):
        if hasattr(train, "rescale") and hasattr(train, "units"):
            times = np.asarray(train.rescale("ms").magnitude, dtype=float)
        else:
            times = np.asarray(train, dtype=float)
        times = times.reshape(-1) if times.ndim == 0 else times
        if times.ndim != 1:
            raise ValueError(f"spiketrains[{k}] must be 1-D (spike times), got shape {times.shape}")
        if not np.all(np.isfinite(times)):
            raise ValueError(f"spiketrains[{k}] contains NaN or inf spike times")
        out.append(np.sort(times))
    return out


def _check_window(tau_ref: float, t_start: float, t_stop: float) -> None:
    if not np.isfinite(tau_ref) or tau_ref <= 0:
        raise ValueError(f"tau_ref must be > 0 ms, got {tau_ref!r}")
    if not (np.isfinite(t_start) and np.isfinite(t_stop)) or t_stop <= t_start:
        raise ValueError(f"t_stop must be > t_start (ms), got t_start={t_start!r}, t_stop={t_stop!r}")


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError("spiketrains must hold at least one neuron")
    if n > MAX_EXACT_UNITS:
        raise ValueError(f"state distributions handle at most {MAX_EXACT_UNITS} neurons, got {n}")


def states_on_grid(spiketrains, tau_ref: float, t_start: float, t_stop: float, dt: float) -> np.ndarray:
    """Binary states at the grid times ``t_start + i * dt``, ``i = 0 .. floor((t_stop - t_start) / dt) - 1``.

    ``z_k(t) = 1`` iff neuron k spiked in ``(t - tau_ref, t]``. Vectorised over all spikes (see
    :func:`states_on_grid_from_arrays`).

    Returns
    -------
    states : array (n_steps, n), uint8
    """
    times = spike_times_ms(spiketrains)
    if len(times) < 1:
        raise ValueError("spiketrains must hold at least one neuron")
    indices = np.repeat(np.arange(len(times)), [t.size for t in times])
    flat = np.concatenate(times) if times else np.zeros(0)
    return states_on_grid_from_arrays(flat, indices, len(times), tau_ref, t_start, t_stop, dt)


def states_on_grid_from_arrays(times_ms: np.ndarray, indices: np.ndarray, n: int, tau_ref: float, t_start: float,
                               t_stop: float, dt: float) -> np.ndarray:
    """:func:`states_on_grid` from spike arrays: times (ms) and neuron indices ``0 .. n - 1``.

    Each spike at ``s`` switches its neuron on at the first grid time ``t >= s`` and off at the first
    grid time with ``t - tau_ref >= s``; overlapping on-periods merge. The comparisons are those of
    ``s <= t`` and ``t - tau_ref < s`` on the grid's own float values.

    Examples
    --------
    >>> states_on_grid_from_arrays(np.array([5.0]), np.array([0]), 1, 10.0, 0.0, 20.0, 5.0)[:, 0]
    array([0, 1, 1, 0], dtype=uint8)
    """
    _check_window(tau_ref, t_start, t_stop)
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be > 0 ms, got {dt!r}")
    times_ms, indices = np.asarray(times_ms, dtype=float).reshape(-1), np.asarray(indices, dtype=np.int64).reshape(-1)
    if times_ms.shape != indices.shape:
        raise ValueError(f"times_ms and indices must have the same length, got {times_ms.size} and {indices.size}")
    if int(n) < 1:
        raise ValueError("n (number of neurons) must be >= 1")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"indices must lie in [0, {int(n) - 1}]")
    if not np.all(np.isfinite(times_ms)):
        raise ValueError("spike times must be finite (NaN or inf found)")
    n_steps = int(np.floor((t_stop - t_start) / dt * (1 + 1e-12)))
    grid = t_start + dt * np.arange(n_steps)
    on = np.searchsorted(grid, times_ms, side="left")  # first t with s <= t
    off = np.searchsorted(grid - tau_ref, times_ms, side="left")  # first t with t - tau_ref >= s
    size = (n_steps + 1) * int(n)
    # on-minus-off counts per (step, neuron) in int32 (counts < 2**31), summed over the steps in place
    changes = np.bincount(on * n + indices, minlength=size).astype(np.int32)
    changes -= np.bincount(off * n + indices, minlength=size).astype(np.int32)
    active = changes.reshape(n_steps + 1, int(n))
    np.cumsum(active, axis=0, out=active)
    return (active[:-1] > 0).view(np.uint8)


def _on_segments(s: np.ndarray, tau_ref: float) -> tuple[np.ndarray, np.ndarray]:
    """Merged on-periods ``[start, end)`` of one neuron with sorted spike times ``s``."""
    if s.size == 0:
        return s, s
    # A new on-period starts at a spike that comes at least tau_ref after the previous spike.
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] >= s[:-1] + tau_ref
    starts = s[new]
    last_in_segment = np.append(np.flatnonzero(new)[1:] - 1, s.size - 1)
    return starts, s[last_in_segment] + tau_ref


def _state_intervals(times: Sequence[np.ndarray], tau_ref: float, t_start: float, t_stop: float,
                     extra_boundaries: np.ndarray | None = None):
    """Piecewise-constant state index on [t_start, t_stop]: (boundaries (m+1,), state index (m,))."""
    n = len(times)
    event_times, event_deltas = [], []
    for k, s in enumerate(times):
        starts, ends = _on_segments(s, tau_ref)
        starts, ends = np.clip(starts, t_start, t_stop), np.clip(ends, t_start, t_stop)
        keep = ends > starts
        bit = 1 << (n - 1 - k)
        event_times += [starts[keep], ends[keep]]
        event_deltas += [np.full(keep.sum(), bit, dtype=np.int64), np.full(keep.sum(), -bit, dtype=np.int64)]
    if extra_boundaries is not None:
        event_times.append(np.asarray(extra_boundaries, dtype=float))
        event_deltas.append(np.zeros(len(extra_boundaries), dtype=np.int64))
    t = np.concatenate(event_times) if event_times else np.empty(0)
    d = np.concatenate(event_deltas) if event_deltas else np.empty(0, dtype=np.int64)
    # At equal times, 'off' events (negative) come before 'on' events, so every intermediate
    # (zero-duration) state is a valid state index.
    order = np.lexsort((d, t))
    t, d = t[order], d[order]
    boundaries = np.concatenate(([t_start], t, [t_stop]))
    state_index = np.concatenate(([0], np.cumsum(d)))
    return boundaries, state_index


def joint_distribution(spiketrains, tau_ref: float, t_start: float, t_stop: float) -> np.ndarray:
    """Exact fraction of time in ``[t_start, t_stop)`` spent in each of the 2**n states.

    Time-continuous read-out computed from event times (no time grid): every on-period
    ``[spike, last renewing spike + tau_ref)`` becomes an on- and an off-event, the state index is the
    cumulative sum of the events' bit changes, and the time between successive events is added to
    the current state with ``np.bincount``. On-periods that started before ``t_start`` (spikes in
    ``(t_start - tau_ref, t_start]``) count from ``t_start``.

    Returns
    -------
    p : array (2**n,), sums to 1
    """
    _check_window(tau_ref, t_start, t_stop)
    times = spike_times_ms(spiketrains)
    n = len(times)
    _check_n(n)
    boundaries, state_index = _state_intervals(times, tau_ref, t_start, t_stop)
    durations = np.diff(boundaries)
    p = np.bincount(state_index, weights=durations, minlength=2**n)
    return p / (t_stop - t_start)


def joint_distribution_in_windows(spiketrains, tau_ref: float, t_start: float, window: float,
                                  n_windows: int) -> np.ndarray:
    """Time-continuous joint distribution in each of ``n_windows`` consecutive windows.

    Window ``k`` is ``[t_start + k * window, t_start + (k + 1) * window)``; each row is
    :func:`joint_distribution` over it (on-periods that began in the previous window count from the
    window's start). Used to estimate the *expected* D_KL after ``window`` ms of sampling from one long
    run: the mean of the per-window D_KLs has far less spread than the D_KL of a single window.
    The mean of the rows equals the distribution over the whole span ``[t_start, t_start + n_windows * window)``.

    Parameters
    ----------
    window : float
        Window length (ms, > 0).
    n_windows : int
        Number of consecutive windows (>= 1).

    Returns
    -------
    p : array (n_windows, 2**n); every row sums to 1.
    """
    if not np.isfinite(window) or window <= 0:
        raise ValueError(f"window must be a finite duration > 0 ms, got {window}")
    if int(n_windows) != n_windows or n_windows < 1:
        raise ValueError(f"n_windows must be an integer >= 1, got {n_windows}")
    return np.array([joint_distribution(spiketrains, tau_ref, t_start + k * window, t_start + (k + 1) * window)
                     for k in range(int(n_windows))])


def joint_distribution_over_time(spiketrains, tau_ref: float, t_start: float, checkpoints) -> np.ndarray:
    """Time-continuous joint distribution over ``[t_start, c)`` for each checkpoint ``c``.

    One pass over the events: the checkpoints are inserted as extra boundaries, the time spent per
    state is accumulated per inter-checkpoint segment and summed cumulatively. Memory is
    ``len(checkpoints) * 2**n`` floats.

    Parameters
    ----------
    checkpoints : array (m,)
        Strictly increasing times (ms), all > t_start.

    Returns
    -------
    p : array (m, 2**n); row j is :func:`joint_distribution` over ``[t_start, checkpoints[j])``.
    """
    checkpoints = np.asarray(checkpoints, dtype=float)
    if checkpoints.ndim != 1 or checkpoints.size == 0:
        raise ValueError(f"checkpoints must be a non-empty 1-D array of times (ms), got shape {checkpoints.shape}")
    if not np.all(np.isfinite(checkpoints)) or checkpoints[0] <= t_start or np.any(np.diff(checkpoints) <= 0):
        raise ValueError(f"checkpoints must be finite, strictly increasing and > t_start={t_start} ms")
    t_stop = float(checkpoints[-1])
    _check_window(tau_ref, t_start, t_stop)
    times = spike_times_ms(spiketrains)
    n = len(times)
    _check_n(n)
    boundaries, state_index = _state_intervals(times, tau_ref, t_start, t_stop, extra_boundaries=checkpoints)
    durations = np.diff(boundaries)
    # Segment j collects intervals ending in (checkpoints[j-1], checkpoints[j]].
    segment = np.searchsorted(checkpoints, boundaries[1:], side="left")
    segment = np.minimum(segment, checkpoints.size - 1)
    n_states = 2**n
    per_segment = np.bincount(segment * n_states + state_index, weights=durations,
                              minlength=checkpoints.size * n_states).reshape(checkpoints.size, n_states)
    return np.cumsum(per_segment, axis=0) / (checkpoints - t_start)[:, None]


def discrete_samples(spiketrains, tau_ref: float, t_start: float, t_stop: float,
                     interval: float | None = None) -> np.ndarray:
    """States read every ``interval`` ms (default ``tau_ref``) at ``t_start, t_start + interval, ...`` < t_stop.

    Returns
    -------
    samples : array (n_samples, n), uint8
    """
    if interval is None:
        interval = tau_ref
    if not np.isfinite(interval) or interval <= 0:
        raise ValueError(f"interval must be > 0 ms, got {interval!r}")
    return states_on_grid(spiketrains, tau_ref, t_start, t_stop, interval)


def sample_distribution(samples: np.ndarray) -> np.ndarray:
    """Normalised histogram of discrete binary samples (m, n) over the 2**n state indices."""
    samples = np.asarray(samples)
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise ValueError(f"samples must be a non-empty (n_samples, n) array, got shape {samples.shape}")
    _check_n(samples.shape[1])
    counts = np.bincount(states_to_indices(samples), minlength=2 ** samples.shape[1])
    return counts / counts.sum()
