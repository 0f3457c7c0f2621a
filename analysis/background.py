"""Statistics of the background a neuron receives: Poisson noise versus the spikes of an ensemble.

For each target neuron, its inputs are a set of spike trains (the K excitatory and K inhibitory
source neurons of an ensemble, or the Poisson trains of a Poisson background). Reported per target:
the mean firing rate of its inputs (Hz), their mean coefficient of variation of inter-spike intervals,
and the mean (signed and absolute) Pearson correlation coefficient of binned spike counts over all
pairs of its inputs (elephant, through :mod:`cortexsim.analysis.spike_statistics`). The free membrane
potential (of non-spiking probe neurons under the same background) is summarised by its mean,
standard deviation and histogram. :func:`plot_background` puts Poisson and ensemble side by side in
one figure. Works on neo spike trains and numpy arrays only; imports no backend.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import quantities as pq

from .spike_statistics import correlation_coefficients, cv_isi, firing_rates_hz

__all__ = ["InputStatistics", "input_statistics", "MembraneStatistics", "membrane_statistics",
           "net_input_correlations", "autocorrelation", "plot_background"]


@dataclass(frozen=True)
class InputStatistics:
    """Per-target statistics of the inputs (arrays of shape (n_targets,)).

    Attributes
    ----------
    rate_hz : mean firing rate of the target's inputs (Hz).
    cv : mean CV of ISIs of its inputs (inputs with fewer than 3 spikes ignored; NaN if none).
    correlation : mean signed correlation coefficient over pairs of its inputs.
    abs_correlation : mean absolute correlation coefficient over pairs of its inputs.
    bin_size_ms : bin of the spike counts used for correlations (ms).
    """

    rate_hz: np.ndarray
    cv: np.ndarray
    correlation: np.ndarray
    abs_correlation: np.ndarray
    bin_size_ms: float

    def summary(self) -> dict:
        """Means over targets: ``mean_rate_hz``, ``mean_cv``, ``mean_correlation``, ``mean_abs_correlation``."""
        return {"mean_rate_hz": float(np.nanmean(self.rate_hz)), "mean_cv": float(np.nanmean(self.cv)),
                "mean_correlation": float(np.nanmean(self.correlation)),
                "mean_abs_correlation": float(np.nanmean(self.abs_correlation)),
                "bin_size_ms": self.bin_size_ms, "n_targets": int(self.rate_hz.size)}


def input_statistics(spiketrains, sources, t_start: float, t_stop: float,
                     bin_size_ms: float = 5.0) -> InputStatistics:
    """Statistics of the inputs of each target neuron.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
        All source trains (e.g. every neuron of the ensemble).
    sources : int array (n_targets, n_inputs)
        ``sources[i]`` are the indices into ``spiketrains`` of target i's inputs (n_inputs >= 2).
    t_start, t_stop : float
        Analysis window (ms).
    bin_size_ms : float
        Bin of the spike counts for correlation coefficients (ms).

    Raises
    ------
    ValueError
        If ``sources`` is not 2-D with at least 2 columns, or holds indices outside the trains.
    """
    sources = np.asarray(sources)
    if sources.ndim != 2 or sources.shape[1] < 2 or not np.issubdtype(sources.dtype, np.integer):
        raise ValueError(f"sources must be an integer array (n_targets, n_inputs >= 2), got shape {sources.shape} "
                         f"and dtype {sources.dtype}")
    n = len(spiketrains)
    if sources.size and (sources.min() < 0 or sources.max() >= n):
        raise ValueError(f"sources must index the {n} spike trains (0..{n - 1}), got range "
                         f"[{sources.min()}, {sources.max()}]")
    used = np.unique(sources)
    trains = [spiketrains[k] for k in used]
    position = np.full(n, -1)
    position[used] = np.arange(used.size)
    rates = firing_rates_hz(trains, t_start, t_stop)
    cvs = cv_isi([st.time_slice(t_start * pq.ms, t_stop * pq.ms) for st in trains])
    corr = correlation_coefficients(trains, bin_size_ms, t_start, t_stop)
    local = position[sources]
    n_targets, n_inputs = local.shape
    upper = np.triu_indices(n_inputs, k=1)
    pair_values = corr[local[:, upper[0]], local[:, upper[1]]]  # (n_targets, n_pairs)
    with np.errstate(invalid="ignore"), _ignore_empty_mean():
        return InputStatistics(rate_hz=rates[local].mean(axis=1), cv=np.nanmean(cvs[local], axis=1),
                               correlation=np.nanmean(pair_values, axis=1),
                               abs_correlation=np.nanmean(np.abs(pair_values), axis=1), bin_size_ms=float(bin_size_ms))


@contextlib.contextmanager
def _ignore_empty_mean() -> Iterator[None]:
    """Silence numpy's "Mean of empty slice" warning (all-NaN rows give NaN, as documented)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Mean of empty slice")
        yield


@dataclass(frozen=True)
class MembraneStatistics:
    """Free membrane potential of probe neurons (mV): per-probe mean and std, pooled histogram and,
    if the sampling interval was given, the mean autocorrelation ``acf`` (lags ``0, dt_ms, ...``) and
    its integral ``correlation_time_ms`` (:func:`autocorrelation`)."""

    mean_mv: np.ndarray
    std_mv: np.ndarray
    bin_edges_mv: np.ndarray
    density: np.ndarray
    acf: np.ndarray | None = None
    dt_ms: float | None = None
    correlation_time_ms: float | None = None

    def summary(self) -> dict:
        """Means over probes of the per-probe mean and std, the spread of the per-probe means (mV) and
        the correlation time (ms, None if not measured)."""
        return {"mean_mv": float(np.mean(self.mean_mv)), "std_mv": float(np.mean(self.std_mv)),
                "spread_of_means_mv": float(np.std(self.mean_mv)), "n_probes": int(self.mean_mv.size),
                "correlation_time_ms": self.correlation_time_ms}


def membrane_statistics(v_mv, bin_edges_mv=None, dt_ms: float | None = None,
                        max_lag_ms: float = 100.0) -> MembraneStatistics:
    """Statistics of membrane-potential traces ``v_mv`` (n_samples, n_probes) in mV.

    ``bin_edges_mv`` default: 80 bins over the pooled range. The density integrates to 1. With the
    sampling interval ``dt_ms`` (ms), also the autocorrelation up to ``max_lag_ms`` and the
    correlation time (needs more samples than lags).
    """
    v = np.asarray(v_mv, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2 or v.shape[0] < 2:
        raise ValueError(f"v_mv must be (n_samples >= 2, n_probes), got shape {np.shape(v_mv)}")
    if not np.all(np.isfinite(v)):
        raise ValueError("v_mv contains NaN or inf")
    if bin_edges_mv is None:
        bin_edges_mv = np.linspace(v.min(), v.max() + 1e-9, 81)
    density, edges = np.histogram(v.reshape(-1), bins=bin_edges_mv, density=True)
    acf, tau = None, None
    if dt_ms is not None:
        acf, tau = autocorrelation(v.T, int(round(max_lag_ms / dt_ms)), dt_ms)
    return MembraneStatistics(v.mean(axis=0), v.std(axis=0), np.asarray(edges), density, acf,
                              None if dt_ms is None else float(dt_ms), tau)


def autocorrelation(signals, max_lag: int, dt_ms: float = 1.0) -> tuple[np.ndarray, float]:
    """Mean normalised autocorrelation of sampled signals and its integral (the correlation time).

    Parameters
    ----------
    signals : array (n_signals, n_samples)
        Regularly sampled signals, e.g. free membrane potentials (mV) or binary states z(t), one row
        each; constant rows (a silent neuron) are skipped.
    max_lag : int
        Number of lags returned and integrated (0 .. max_lag - 1 samples), < n_samples.
    dt_ms : float
        Sampling interval (ms).

    Returns
    -------
    acf : array (max_lag,)
        Mean over signals of ``C(k) / C(0)`` (mean-subtracted, biased estimator, via FFT).
    tau_ms : float
        ``dt * sum_k acf(k)`` over the lags: the integrated correlation time (ms). For an AR(1)
        process with coefficient rho it tends to ``dt / (1 - rho)``.
    """
    x = np.atleast_2d(np.asarray(signals, dtype=float))
    if x.ndim != 2 or not 0 < int(max_lag) < x.shape[1]:
        raise ValueError(f"signals must be (n_signals, n_samples) with n_samples > max_lag = {max_lag}, got {x.shape}")
    if not np.isfinite(dt_ms) or dt_ms <= 0:
        raise ValueError(f"dt_ms must be > 0, got {dt_ms!r}")
    x = x[np.std(x, axis=1) > 0]
    if x.shape[0] == 0:
        raise ValueError("all signals are constant: no autocorrelation to measure")
    x = x - x.mean(axis=1, keepdims=True)
    n = x.shape[1]
    spectrum = np.fft.rfft(x, 2 * n, axis=1)
    c = np.fft.irfft(spectrum * np.conj(spectrum), 2 * n, axis=1)[:, :int(max_lag)]
    acf = np.mean(c / c[:, :1], axis=0)
    return acf, float(dt_ms * np.sum(acf))


def net_input_correlations(spiketrains, sources_exc, sources_inh, group_size: int, t_start: float, t_stop: float,
                           bin_size_ms: float = 5.0) -> dict:
    """Correlation of the net background input of neurons in the same group (network) vs different groups.

    The net input of target i is the binned count of its excitatory sources' spikes minus that of
    its inhibitory sources' spikes (equal weights per receptor type; with the default reversal
    potentials, +-50 mV from the free membrane, both drive the membrane equally hard). Targets
    ``g * group_size .. (g + 1) * group_size - 1`` form group g.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
        All source trains; ``sources_exc``/``sources_inh`` (n_targets, K) index into it.
    group_size : int
        Targets per group (N, neurons per network), >= 2, dividing n_targets.
    t_start, t_stop, bin_size_ms : float
        Window and count bin (ms).

    Returns
    -------
    dict with ``within_mean``/``within_mean_abs`` (Pearson r over the pairs of targets in the same
    group), ``between_mean``/``between_mean_abs`` (pairs in different groups) and the pair counts.
    Targets with a constant net input are left out (NaN r).
    """
    exc, inh = np.asarray(sources_exc), np.asarray(sources_inh)
    if exc.ndim != 2 or exc.shape[0] != inh.shape[0] or not np.issubdtype(exc.dtype, np.integer) \
            or not np.issubdtype(inh.dtype, np.integer):
        raise ValueError(f"sources_exc and sources_inh must be integer arrays (n_targets, K) with the same number of "
                         f"targets, got shapes {exc.shape} and {inh.shape}")
    n_targets = exc.shape[0]
    if int(group_size) != group_size or group_size < 2 or n_targets % int(group_size):
        raise ValueError(f"group_size must be an integer >= 2 dividing n_targets = {n_targets}, got {group_size!r}")
    if not (np.isfinite(bin_size_ms) and bin_size_ms > 0 and t_stop - t_start >= 2 * bin_size_ms):
        raise ValueError(f"bin_size_ms must be > 0 with at least 2 bins in [t_start, t_stop], got {bin_size_ms!r}")
    edges = t_start + bin_size_ms * np.arange(int(np.floor((t_stop - t_start) / bin_size_ms + 1e-9)) + 1)
    counts = np.array([np.histogram(np.asarray(st.rescale("ms").magnitude), bins=edges)[0] for st in spiketrains],
                      dtype=float)
    net = counts[exc].sum(axis=1) - counts[inh].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(net)
    group = np.arange(n_targets) // int(group_size)
    upper = np.triu(np.ones((n_targets, n_targets), dtype=bool), k=1)
    same = upper & (group[:, None] == group[None, :])
    other = upper & ~same
    result = {}
    for name, mask in (("within", same), ("between", other)):
        values = r[mask]
        values = values[np.isfinite(values)]
        result[f"{name}_mean"] = float(np.mean(values)) if values.size else float("nan")
        result[f"{name}_mean_abs"] = float(np.mean(np.abs(values))) if values.size else float("nan")
        result[f"{name}_pairs"] = int(values.size)
    result["bin_size_ms"] = float(bin_size_ms)
    return result


def plot_background(inputs: Mapping[str, InputStatistics], membranes: Mapping[str, MembraneStatistics],
                    path: str | Path, title: str | None = None) -> Path:
    """One figure: input rates, CVs, absolute correlations (histograms over targets), free-membrane densities and
    (if measured) free-membrane autocorrelations.

    ``inputs`` and ``membranes`` map a label (e.g. "poisson", "ensemble") to the statistics.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with_acf = any(stats.acf is not None for stats in membranes.values())
    fig = Figure(figsize=(16.0 if with_acf else 11.0, 7.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3 if with_acf else 2).ravel()
    if with_acf:
        axes = axes[[0, 1, 3, 4, 2, 5]]
        axes[5].set_visible(False)
    panels = (("rate_hz", "mean input rate per target (Hz)"), ("cv", "mean CV of input ISIs per target"),
              ("abs_correlation", "mean |correlation| of input pairs per target"))
    for ax, (name, label) in zip(axes[:3], panels):
        values = {key: np.asarray(getattr(stats, name), dtype=float) for key, stats in inputs.items()}
        finite = np.concatenate([v[np.isfinite(v)] for v in values.values()] or [np.zeros(1)])
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        bins = np.linspace(lo, hi + 1e-9 + 1e-6 * abs(hi), 30)
        for key, v in values.items():
            v = v[np.isfinite(v)]
            ax.hist(v, bins=bins, alpha=0.6, label=f"{key} (mean {np.mean(v) if v.size else np.nan:.3g})")
        ax.set_xlabel(label)
        ax.set_ylabel("targets")
        ax.legend(fontsize=8)
    ax = axes[3]
    for key, stats in membranes.items():
        centres = 0.5 * (stats.bin_edges_mv[1:] + stats.bin_edges_mv[:-1])
        ax.plot(centres, stats.density, label=f"{key}: mean {np.mean(stats.mean_mv):.2f} mV, "
                                              f"std {np.mean(stats.std_mv):.2f} mV")
    ax.set_xlabel("free membrane potential (mV)")
    ax.set_ylabel("density (1/mV)")
    ax.legend(fontsize=8)
    if with_acf:
        ax = axes[4]
        for key, stats in membranes.items():
            if stats.acf is not None:
                ax.plot(np.arange(stats.acf.size) * stats.dt_ms, stats.acf,
                        label=f"{key}: correlation time {stats.correlation_time_ms:.1f} ms")
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlabel("lag (ms)")
        ax.set_ylabel("autocorrelation of the free membrane")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
