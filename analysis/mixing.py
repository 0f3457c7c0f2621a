"""Mixing between the modes of a distribution: mode occupancy, switches, dwell times, autocorrelation.

Pure numpy functions on state trajectories (binary states on a regular time grid, e.g. from
:func:`cortexsim.analysis.states.states_on_grid`, or samples of a Markov chain). They serve spiking
samplers and non-spiking chains alike; time enters only through the grid step ``dt_ms`` (ms), and rates
are per second of *biological* (simulated) time.

Index
-----
:func:`nearest_mode`
    Per time step, the mode a state belongs to (nearest pattern in Hamming distance) or -1.
:func:`committed_modes`
    The last mode visited at each time step (excursions between modes do not count as switches).
:func:`mode_occupancy`
    Fraction of time in each mode, in consecutive windows (mode occupancy over time).
:func:`mode_switches`, :func:`switches_per_second`
    Times of switches between modes and their rate (1/s of biological time).
:func:`dwell_times_ms`
    Durations of completed stays in a mode (ms); the first and last (censored) stays are left out.
:func:`mode_indicator`
    1 while the last mode visited is a given mode: the observable whose autocorrelation measures mixing.
:func:`integrated_autocorrelation_time`, :func:`effective_sample_size`
    Sokal's windowed estimate of the integrated autocorrelation time of a scalar series, and N / tau.
:func:`pattern_overlap`
    The scalar "which mode" observable of two complementary patterns, for the autocorrelation time.
:func:`dominant_classes`, :func:`classes_visited`
    Per window, the class whose label units were on longest (free-running classifier RBMs).

The time-averaged distribution and its D_KL to a target come from
:func:`cortexsim.analysis.states.joint_distribution` / :func:`~cortexsim.analysis.states.sample_distribution`
and :mod:`cortexsim.analysis.divergence` (not repeated here).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NO_MODE",
    "nearest_mode",
    "committed_modes",
    "mode_occupancy",
    "mode_switches",
    "switches_per_second",
    "dwell_times_ms",
    "mode_indicator",
    "autocorrelation",
    "integrated_autocorrelation_time",
    "effective_sample_size",
    "pattern_overlap",
    "dominant_classes",
    "classes_visited",
]

NO_MODE = -1
"""Label of a time step that belongs to no mode."""


def _binary_states(states, name: str = "states") -> np.ndarray:
    states = np.asarray(states)
    if states.ndim != 2 or states.shape[0] == 0 or states.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (n_steps, n_units) array, got shape {states.shape}")
    if not np.all((states == 0) | (states == 1)):
        raise ValueError(f"{name} must contain only 0 and 1")
    return states.astype(np.int8)


def _check_dt(dt_ms: float) -> float:
    if not np.isfinite(dt_ms) or dt_ms <= 0:
        raise ValueError(f"dt_ms must be a finite time step > 0 (ms), got {dt_ms!r}")
    return float(dt_ms)


def _labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array of mode labels, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers (mode index or {NO_MODE}), got dtype {labels.dtype}")
    if np.any(labels < NO_MODE):
        raise ValueError(f"labels must be >= {NO_MODE}, got min {labels.min()}")
    return labels.astype(np.int64)


def nearest_mode(states, patterns, max_distance: int | None = None) -> np.ndarray:
    """Mode of each state: the index of the nearest pattern in Hamming distance, or :data:`NO_MODE`.

    Parameters
    ----------
    states : array (n_steps, n)
        Binary states.
    patterns : array (n_modes, n)
        Binary patterns, one per mode.
    max_distance : int, optional
        A state farther than this (number of differing units) from every pattern belongs to no mode.
        Default: ``n // 4`` (a quarter of the units may differ).

    Returns
    -------
    labels : array (n_steps,) int64
        Pattern index, or :data:`NO_MODE` when no pattern is within ``max_distance`` or two patterns
        are equally near.

    Examples
    --------
    >>> nearest_mode([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], [[1, 1, 0, 0], [0, 0, 1, 1]], 1)
    array([ 0,  1, -1])
    """
    states = _binary_states(states)
    patterns = _binary_states(patterns, "patterns")
    if patterns.shape[1] != states.shape[1]:
        raise ValueError(f"patterns have {patterns.shape[1]} units but states have {states.shape[1]}")
    n = states.shape[1]
    if max_distance is None:
        max_distance = n // 4
    if int(max_distance) != max_distance or not 0 <= max_distance <= n:
        raise ValueError(f"max_distance must be an integer in [0, {n}], got {max_distance!r}")
    distance = np.abs(states[:, None, :] - patterns[None, :, :]).sum(axis=2)  # (n_steps, n_modes)
    best = np.argmin(distance, axis=1)
    nearest = distance[np.arange(distance.shape[0]), best]
    tie = (distance == nearest[:, None]).sum(axis=1) > 1
    return np.where((nearest <= max_distance) & ~tie, best, NO_MODE).astype(np.int64)


def committed_modes(labels) -> np.ndarray:
    """The last mode visited at each step: steps labelled :data:`NO_MODE` keep the previous mode.

    Steps before the first mode visit stay :data:`NO_MODE`. A switch is then a change of the
    committed mode: an excursion out of a mode and back into it is no switch (hysteresis).

    Examples
    --------
    >>> committed_modes([-1, 0, -1, 0, -1, 1, 1])
    array([-1,  0,  0,  0,  0,  1,  1])
    """
    labels = _labels(labels)
    visited = labels != NO_MODE
    last = np.where(visited, np.arange(labels.size), -1)
    np.maximum.accumulate(last, out=last)
    return np.where(last >= 0, labels[np.maximum(last, 0)], NO_MODE)


def mode_occupancy(labels, n_modes: int, window_steps: int) -> np.ndarray:
    """Fraction of steps in each mode, per window of ``window_steps`` consecutive steps.

    Returns
    -------
    occupancy : array (n_windows, n_modes + 1)
        Column ``k < n_modes`` is mode ``k``; the last column is :data:`NO_MODE` (between modes).
        Rows sum to 1. A trailing partial window is dropped.
    """
    labels = _labels(labels)
    if int(n_modes) != n_modes or n_modes < 1:
        raise ValueError(f"n_modes must be an integer >= 1, got {n_modes!r}")
    if labels.max() >= n_modes:
        raise ValueError(f"labels hold mode {labels.max()} but n_modes = {n_modes}")
    if int(window_steps) != window_steps or not 1 <= window_steps <= labels.size:
        raise ValueError(f"window_steps must be an integer in [1, {labels.size}], got {window_steps!r}")
    n_windows = labels.size // int(window_steps)
    column = np.where(labels == NO_MODE, n_modes, labels)[: n_windows * int(window_steps)]
    column = column.reshape(n_windows, int(window_steps))
    counts = np.stack([(column == k).sum(axis=1) for k in range(n_modes + 1)], axis=1)
    return counts / float(window_steps)


def mode_switches(labels) -> np.ndarray:
    """Step indices at which the committed mode changes from one mode to another.

    The first entry into a mode (from :data:`NO_MODE` at the start) is not a switch.

    Examples
    --------
    >>> mode_switches([0, 0, -1, 1, 1, -1, 1, 0])
    array([3, 7])
    """
    committed = committed_modes(labels)
    change = (committed[1:] != committed[:-1]) & (committed[:-1] != NO_MODE)
    return np.flatnonzero(change) + 1


def switches_per_second(labels, dt_ms: float) -> float:
    """Switches between modes per second of biological time: ``n_switches / (n_steps * dt_ms / 1000)``."""
    labels = _labels(labels)
    dt_ms = _check_dt(dt_ms)
    return float(mode_switches(labels).size / (labels.size * dt_ms / 1000.0))


def mode_indicator(labels, mode: int = 0) -> np.ndarray:
    """1.0 while the committed mode (:func:`committed_modes`) is ``mode``, else 0.0, from the first mode visit on.

    The slow observable of mixing between modes: a sampler stuck in one mode gives a constant series
    (no effective samples, :func:`effective_sample_size` = 0), whereas the pattern overlap of a stuck
    sampler still fluctuates within its mode and would suggest fast mixing.

    Examples
    --------
    >>> mode_indicator([-1, 0, -1, 1, 1, 0])
    array([1., 1., 0., 0., 1.])
    """
    committed = committed_modes(labels)
    visited = np.flatnonzero(committed != NO_MODE)
    if visited.size == 0:
        return np.empty(0)
    return (committed[visited[0]:] == int(mode)).astype(float)


def dwell_times_ms(labels, dt_ms: float) -> np.ndarray:
    """Durations (ms) of the completed stays in a mode, between two switches.

    A stay runs from the switch into a mode to the switch out of it (excursions between modes that
    return count to the stay). The first stay (its start is unknown) and the last (not ended) are
    censored and left out; with fewer than two switches the result is empty.
    """
    dt_ms = _check_dt(dt_ms)
    switches = mode_switches(labels)
    return np.diff(switches).astype(float) * dt_ms


def autocorrelation(x) -> np.ndarray:
    """Normalised autocorrelation ``rho(t)``, t = 0 .. N-1, of a scalar series (FFT, biased estimator).

    Returns zeros after ``rho(0) = 1`` for a constant series.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"x must be a 1-D series of at least 2 values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf")
    n = x.size
    centred = x - x.mean()
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centred, size)
    acov = np.fft.irfft(spectrum * np.conjugate(spectrum), size)[:n]
    if acov[0] <= 0:
        rho = np.zeros(n)
        rho[0] = 1.0
        return rho
    return acov / acov[0]


def integrated_autocorrelation_time(x, c: float = 5.0) -> float:
    """Integrated autocorrelation time ``tau = 1 + 2 sum_{t=1}^{M} rho(t)`` in steps of the series.

    The window ``M`` is Sokal's automatic choice: the smallest ``M`` with ``M >= c * tau(M)``. For an
    AR(1) series with coefficient ``phi``, ``tau = (1 + phi) / (1 - phi)``; for independent samples 1.
    The estimate is reliable when the series is much longer than ``tau`` (say 50 tau); it is
    returned in any case (a stuck chain gives a tau near the series length).

    Parameters
    ----------
    x : array (N,)
        Scalar observable of the chain, one value per step.
    c : float
        Window factor (> 0; 5 is customary).

    Returns
    -------
    tau : float
        In steps (multiply by the step to get a time). ``nan`` for a constant series.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(integrated_autocorrelation_time(rng.normal(size=20000)), 1)
    1.0
    """
    if not np.isfinite(c) or c <= 0:
        raise ValueError(f"c must be a finite number > 0, got {c!r}")
    x = np.asarray(x, dtype=float)
    if x.ndim == 1 and x.size >= 2 and np.all(x == x[0]):
        return float("nan")
    rho = autocorrelation(x)
    taus = 2.0 * np.cumsum(rho) - 1.0  # taus[M] = 1 + 2 sum_{t=1}^{M} rho(t)
    window = np.arange(taus.size) >= c * taus
    m = int(np.argmax(window)) if np.any(window) else taus.size - 1
    return float(max(taus[m], 1.0 / x.size))


def effective_sample_size(x, c: float = 5.0) -> float:
    """Effective number of independent samples ``N / tau`` of a scalar series (see
    :func:`integrated_autocorrelation_time`); 0 for a constant series (a chain that never moved)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1 and x.size < 2:
        return 0.0
    tau = integrated_autocorrelation_time(x, c)
    if not np.isfinite(tau):
        return 0.0
    return float(x.size / tau)


def pattern_overlap(states, pattern) -> np.ndarray:
    """Overlap ``m = mean_k (2 z_k - 1)(2 xi_k - 1)`` of each state with a binary pattern, in [-1, 1].

    For two complementary patterns ``xi`` and ``1 - xi``, ``m = +1`` in one mode and ``-1`` in the
    other: the slow observable whose autocorrelation time measures mixing between them.
    """
    states = _binary_states(states)
    pattern = np.asarray(pattern)
    if pattern.shape != (states.shape[1],) or not np.all((pattern == 0) | (pattern == 1)):
        raise ValueError(f"pattern must be a binary vector of {states.shape[1]} units, got {pattern!r}")
    spins = 2.0 * states - 1.0
    return spins @ (2.0 * pattern - 1.0) / states.shape[1]


def dominant_classes(label_states, window_steps: int, min_fraction: float = 0.5) -> np.ndarray:
    """Per window, the class whose label unit was on for the largest share of the window.

    Parameters
    ----------
    label_states : array (n_steps, n_classes)
        Binary states of the label units (one per class) on a regular grid.
    window_steps : int
        Steps per window (a trailing partial window is dropped).
    min_fraction : float
        The winning label unit must be on for at least this share of the window (in (0, 1]);
        otherwise the window shows no class (:data:`NO_MODE`). Ties give :data:`NO_MODE`.

    Returns
    -------
    classes : array (n_windows,) int64

    Examples
    --------
    >>> dominant_classes([[1, 0], [1, 0], [0, 0], [0, 1], [1, 1], [1, 1]], window_steps=2)
    array([ 0,  1, -1])
    """
    states = _binary_states(label_states, "label_states")
    if int(window_steps) != window_steps or not 1 <= window_steps <= states.shape[0]:
        raise ValueError(f"window_steps must be an integer in [1, {states.shape[0]}], got {window_steps!r}")
    if not np.isfinite(min_fraction) or not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must lie in (0, 1], got {min_fraction!r}")
    window_steps = int(window_steps)
    n_windows = states.shape[0] // window_steps
    on = states[: n_windows * window_steps].reshape(n_windows, window_steps, -1).mean(axis=1)
    best = np.argmax(on, axis=1)
    top = on[np.arange(n_windows), best]
    tie = (on == top[:, None]).sum(axis=1) > 1
    return np.where((top >= min_fraction) & ~tie, best, NO_MODE).astype(np.int64)


def classes_visited(classes) -> np.ndarray:
    """Sorted distinct classes in a sequence of class labels (:data:`NO_MODE` left out)."""
    classes = _labels(classes)
    return np.unique(classes[classes != NO_MODE])
