"""Thin wrappers over elephant: firing rates (Hz), CV of ISIs, Fano factors, correlation coefficients.

Inputs are ``list[neo.SpikeTrain]`` (any time unit; everything is converted to ms first, so
elephant sees consistent units); results are plain numpy arrays in Hz or dimensionless. Two
elephant habits handled here (references §7): rates come back in 1/(time unit of the data), i.e.
1/ms for PyNN data -> rescaled to Hz; ``BinnedSpikeTrain`` keeps only full bins and drops spikes at
(or after) the end of the last full bin, including spikes exactly at ``t_stop``.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator, Sequence

import neo
import numpy as np
import quantities as pq
from elephant.conversion import BinnedSpikeTrain
from elephant.spike_train_correlation import correlation_coefficient
from elephant.statistics import cv, isi, mean_firing_rate

__all__ = ["to_spiketrains", "firing_rates_hz", "cv_isi", "fano_factors", "correlation_coefficients"]


@contextlib.contextmanager
def _quiet_elephant() -> Iterator[None]:
    """Silence the deprecation noise elephant 1.2 triggers in quantities 0.16 (``copy=False``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The 'copy' argument in Quantity is deprecated")
        yield


def to_spiketrains(times_ms_list: Sequence, t_stop_ms: float, t_start_ms: float = 0.0) -> list[neo.SpikeTrain]:
    """Build ``neo.SpikeTrain`` objects in ms from arrays of spike times (ms), sorted.

    Raises
    ------
    ValueError
        If ``t_stop_ms <= t_start_ms`` or a spike lies outside ``[t_start_ms, t_stop_ms]``.
    """
    if not t_stop_ms > t_start_ms:
        raise ValueError(f"t_stop_ms must be > t_start_ms, got t_start_ms={t_start_ms}, t_stop_ms={t_stop_ms}")
    trains = []
    for k, times in enumerate(times_ms_list):
        times = np.sort(np.asarray(times, dtype=float).reshape(-1))
        if times.size and (times[0] < t_start_ms or times[-1] > t_stop_ms):
            raise ValueError(f"times_ms_list[{k}] has spikes outside [t_start_ms, t_stop_ms] = "
                             f"[{t_start_ms}, {t_stop_ms}] ms")
        trains.append(neo.SpikeTrain(times, units="ms", t_start=t_start_ms * pq.ms, t_stop=t_stop_ms * pq.ms))
    return trains


def _in_ms(spiketrains) -> list[neo.SpikeTrain]:
    out = []
    for k, train in enumerate(spiketrains):
        if not isinstance(train, neo.SpikeTrain):
            raise ValueError(f"spiketrains[{k}] must be a neo.SpikeTrain, got {type(train).__name__}; "
                             "use to_spiketrains() to convert arrays of spike times in ms")
        out.append(train.rescale("ms"))
    if not out:
        raise ValueError("spiketrains must hold at least one neo.SpikeTrain")
    return out


def _window(trains: list[neo.SpikeTrain], t_start: float | None, t_stop: float | None) -> tuple[float, float]:
    """Common window in ms: defaults to the latest t_start and the earliest t_stop of the trains."""
    start = max(float(st.t_start.magnitude) for st in trains) if t_start is None else float(t_start)
    stop = min(float(st.t_stop.magnitude) for st in trains) if t_stop is None else float(t_stop)
    if not stop > start:
        raise ValueError(f"t_stop must be > t_start (ms), got t_start={start}, t_stop={stop}")
    return start, stop


def firing_rates_hz(spiketrains, t_start: float | None = None, t_stop: float | None = None) -> np.ndarray:
    """Mean firing rate of each train in Hz over ``[t_start, t_stop]`` (ms; defaults: each train's own).

    elephant's ``mean_firing_rate`` counts spikes with ``t_start <= t <= t_stop`` (both ends included).
    A train without spikes has rate 0 Hz (elephant rejects empty trains).
    """
    trains = _in_ms(spiketrains)
    rates = []
    for st in trains:
        start = st.t_start if t_start is None else t_start * pq.ms
        stop = st.t_stop if t_stop is None else t_stop * pq.ms
        if not stop > start:
            raise ValueError(f"t_stop must be > t_start (ms), got t_start={float(start)}, t_stop={float(stop)}")
        if len(st) == 0:
            rates.append(0.0)
            continue
        with _quiet_elephant():
            rate = mean_firing_rate(st, t_start=start, t_stop=stop)
        rates.append(float(rate.rescale(pq.Hz).magnitude))
    return np.array(rates)


def cv_isi(spiketrains) -> np.ndarray:
    """Coefficient of variation (std / mean, ddof = 0) of the inter-spike intervals of each train.

    NaN for trains with fewer than 3 spikes (fewer than 2 intervals).
    """
    trains = _in_ms(spiketrains)
    out = np.full(len(trains), np.nan)
    for k, st in enumerate(trains):
        if len(st) >= 3:
            with _quiet_elephant():
                out[k] = float(cv(np.asarray(isi(st).magnitude)))
    return out


def fano_factors(spiketrains, window_ms: float, t_start: float | None = None,
                 t_stop: float | None = None) -> np.ndarray:
    """Fano factor (variance / mean of spike counts, ddof = 0) of each train over consecutive windows.

    Spike counts come from elephant's ``BinnedSpikeTrain`` with bins of ``window_ms`` over the common
    window (ms); only full windows are used. NaN for trains with no spike in any window.
    """
    if not np.isfinite(window_ms) or window_ms <= 0:
        raise ValueError(f"window_ms must be > 0, got {window_ms!r}")
    counts = _binned_counts(spiketrains, window_ms, t_start, t_stop).astype(float)
    if counts.shape[1] < 2:
        raise ValueError(f"fano_factors needs at least 2 full windows of {window_ms} ms, got {counts.shape[1]}")
    mean = counts.mean(axis=1)
    var = counts.var(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, var / np.where(mean > 0, mean, 1.0), np.nan)


def _binned(spiketrains, bin_size_ms: float, t_start: float | None, t_stop: float | None) -> BinnedSpikeTrain:
    if not np.isfinite(bin_size_ms) or bin_size_ms <= 0:
        raise ValueError(f"bin_size_ms must be > 0, got {bin_size_ms!r}")
    trains = _in_ms(spiketrains)
    start, stop = _window(trains, t_start, t_stop)
    n_bins = int(np.floor((stop - start) / bin_size_ms * (1 + 1e-12)))
    if n_bins < 1:
        raise ValueError(f"bin_size_ms={bin_size_ms} is longer than the window [{start}, {stop}] ms")
    stop = start + n_bins * bin_size_ms
    # Restrict each train to the window so elephant sees consistent t_start / t_stop.
    clipped = [st.time_slice(start * pq.ms, stop * pq.ms) for st in trains]
    clipped = [neo.SpikeTrain(st.magnitude, units="ms", t_start=start * pq.ms, t_stop=stop * pq.ms) for st in clipped]
    with _quiet_elephant():
        warnings.filterwarnings("ignore", message="Binning discarded")
        return BinnedSpikeTrain(clipped, bin_size=bin_size_ms * pq.ms, t_start=start * pq.ms, t_stop=stop * pq.ms)


def _binned_counts(spiketrains, bin_size_ms, t_start, t_stop) -> np.ndarray:
    binned = _binned(spiketrains, bin_size_ms, t_start, t_stop)
    with _quiet_elephant():
        return binned.to_array()


def correlation_coefficients(spiketrains, bin_size_ms: float, t_start: float | None = None,
                             t_stop: float | None = None) -> np.ndarray:
    """Pearson correlation coefficients (n, n) of the binned spike counts (elephant).

    Bins of ``bin_size_ms`` over the common window (ms; defaults: latest t_start, earliest t_stop),
    full bins only. Entries involving a train with constant counts (e.g. no spikes) are NaN.
    """
    binned = _binned(spiketrains, bin_size_ms, t_start, t_stop)
    with _quiet_elephant():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(correlation_coefficient(binned), dtype=float)
