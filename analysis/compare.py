"""Statistical comparison of spiking activity between simulators (or any groups of runs).

Two steps:

1. :func:`population_statistics` summarises one population of one run (elephant underneath): mean
   firing rate (Hz), mean CV of inter-spike intervals, mean Fano factor of spike counts, mean
   pairwise correlation coefficient of binned spike counts, the zero-lag peak of the normalised
   cross-correlogram of sample pairs, and the time mean and standard deviation (mV) of the membrane
   potential where it was recorded.
2. :func:`compare_groups` tests, statistic by statistic, whether two groups of R runs each (one
   group per backend, runs differing only in their seed) differ by more than the run-to-run spread:
   Welch's t-test on the R summary values per group, so the tolerance comes from the data, with a
   Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) correction over every test
   made. Each comparison carries an effect size (Hedges' g) and a verdict "agree" / "differ"
   ("untested" where a group has fewer than 2 finite values).

Nothing here imports a simulator: inputs are ``neo.SpikeTrain`` / ``neo.AnalogSignal`` objects.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import neo
import numpy as np
import quantities as pq
from scipy import stats as scipy_stats

from elephant.statistics import cv, fanofactor, isi, mean_firing_rate

from cortexsim.analysis.hypothesis_tests import benjamini_hochberg_adjust, hedges_g, holm_adjust, welch_test
from cortexsim.analysis.spike_statistics import _quiet_elephant, correlation_coefficients, to_spiketrains

__all__ = ["STATISTICS", "CORRECTIONS", "StatisticsSettings", "PopulationStatistics", "StatisticComparison",
           "population_statistics", "cross_correlograms", "holm_adjust", "benjamini_hochberg_adjust",
           "welch_test", "hedges_g", "compare_groups"]

#: Statistic name -> (label, unit) of the per-run summaries :func:`population_statistics` returns.
STATISTICS: dict[str, tuple[str, str]] = {
    "rate_hz": ("mean firing rate", "Hz"),
    "cv_isi": ("mean CV of ISIs", "1"),
    "fano_factor": ("mean Fano factor", "1"),
    "correlation": ("mean pairwise correlation coefficient", "1"),
    "cch_peak": ("zero-lag excess of the normalised cross-correlogram", "1"),
    "v_mean_mv": ("mean membrane potential", "mV"),
    "v_std_mv": ("standard deviation of the membrane potential", "mV"),
}

#: Multiple-comparison corrections :func:`compare_groups` offers.
CORRECTIONS = ("holm", "benjamini-hochberg")


@dataclass(frozen=True)
class StatisticsSettings:
    """How the per-population statistics are computed.

    Attributes
    ----------
    fano_window_ms : float
        Counting window of the Fano factor (ms), > 0.
    correlation_bin_ms : float
        Bin of the spike counts whose correlation coefficients are taken (ms), > 0.
    correlation_neurons : int
        Neurons (drawn once, the same in every run) whose pairwise correlations are averaged, >= 2.
    cch_pairs : int
        Neuron pairs whose cross-correlograms are computed, >= 1.
    cch_bin_ms : float
        Bin of the cross-correlograms (ms), > 0.
    cch_max_lag_ms : float
        Largest lag of the cross-correlograms (ms), >= cch_bin_ms.
    cch_peak_half_width_ms : float
        The zero-lag peak averages the normalised correlogram over lags within +- this (ms), >= 0.
    sample_seed : int
        Seed that picks the neurons and pairs (so every backend and run uses the same ones).
    """

    fano_window_ms: float = 50.0
    correlation_bin_ms: float = 5.0
    correlation_neurons: int = 50
    cch_pairs: int = 20
    cch_bin_ms: float = 1.0
    cch_max_lag_ms: float = 50.0
    cch_peak_half_width_ms: float = 2.0
    sample_seed: int = 0

    def __post_init__(self):
        for name in ("fano_window_ms", "correlation_bin_ms", "cch_bin_ms", "cch_max_lag_ms"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0 (ms), got {value!r}")
        if not self.cch_max_lag_ms >= self.cch_bin_ms:
            raise ValueError(f"cch_max_lag_ms must be >= cch_bin_ms ({self.cch_bin_ms} ms), got {self.cch_max_lag_ms}")
        if not np.isfinite(self.cch_peak_half_width_ms) or self.cch_peak_half_width_ms < 0:
            raise ValueError(f"cch_peak_half_width_ms must be >= 0 (ms), got {self.cch_peak_half_width_ms!r}")
        if int(self.correlation_neurons) < 2:
            raise ValueError(f"correlation_neurons must be >= 2, got {self.correlation_neurons}")
        if int(self.cch_pairs) < 1:
            raise ValueError(f"cch_pairs must be >= 1, got {self.cch_pairs}")


@dataclass
class PopulationStatistics:
    """Statistics of one population in one run.

    Attributes
    ----------
    summary : dict
        Statistic name (see :data:`STATISTICS`) -> value of this run (NaN where undefined).
    per_neuron : dict
        "rate_hz", "cv_isi", "fano_factor" (one value per neuron), "correlation" (one per pair),
        and "v_mean_mv", "v_std_mv" (one per recorded neuron, where recorded).
    cch_lags_ms : array
        Lags of the cross-correlograms (ms).
    cch_mean : array
        Normalised cross-correlogram averaged over the sample pairs (1 = independent trains).
    """

    summary: dict
    per_neuron: dict = field(default_factory=dict)
    cch_lags_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cch_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _spike_times_ms(spiketrains, t_start_ms: float, t_stop_ms: float) -> list[np.ndarray]:
    """Sorted spike times (ms) of each train within [t_start_ms, t_stop_ms], as plain arrays."""
    factors: dict[str, float] = {}
    out = []
    for k, train in enumerate(spiketrains):
        if not isinstance(train, neo.SpikeTrain):
            raise ValueError(f"spiketrains[{k}] must be a neo.SpikeTrain, got {type(train).__name__}")
        unit = train.units.dimensionality.string
        if unit not in factors:  # one quantities conversion per unit, not per train (it is slow)
            factors[unit] = float(pq.Quantity(1.0, unit).rescale("ms").magnitude)
        t = np.sort(np.asarray(train.magnitude, dtype=float) * factors[unit])
        out.append(t[(t >= t_start_ms) & (t <= t_stop_ms)])
    return out


def _rates_hz(times: list[np.ndarray], t_start_ms: float, t_stop_ms: float) -> np.ndarray:
    """elephant's mean firing rate of each train (Hz); 0 Hz for empty trains (elephant refuses those)."""
    with _quiet_elephant():
        return np.array([1000.0 * float(mean_firing_rate(t, t_start=t_start_ms, t_stop=t_stop_ms)) if t.size
                         else 0.0 for t in times])


def _cvs(times: list[np.ndarray]) -> np.ndarray:
    """elephant's CV of the inter-spike intervals of each train (NaN below 3 spikes)."""
    with _quiet_elephant():
        return np.array([float(cv(isi(t))) if t.size >= 3 else np.nan for t in times])


def _fano_factors(times: list[np.ndarray], window_ms: float, t_start_ms: float, t_stop_ms: float) -> np.ndarray:
    """elephant's Fano factor of each train's spike counts in consecutive full windows of ``window_ms``.

    NaN where fewer than 2 windows fit or a train has no spike in them.
    """
    n_windows = int(np.floor((t_stop_ms - t_start_ms) / window_ms * (1 + 1e-12)))
    if n_windows < 2:
        return np.full(len(times), np.nan)
    edges = t_start_ms + window_ms * np.arange(n_windows + 1)
    out = np.full(len(times), np.nan)
    with _quiet_elephant():
        for k, t in enumerate(times):
            t = t[t < edges[-1]]
            if t.size:
                out[k] = float(fanofactor(np.split(t, np.searchsorted(t, edges[1:-1], side="right"))))
    return out


def cross_correlograms(spiketrains, pairs: Sequence[tuple[int, int]], bin_ms: float, max_lag_ms: float,
                       t_start_ms: float, t_stop_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised cross-correlograms of neuron pairs (elephant ``cross_correlation_histogram``).

    Each correlogram counts coincidences of binned spikes at every lag and is divided by the count
    expected for independent trains with the same spike counts, ``n_i n_j (B - |k|) / B**2`` for
    ``B`` bins and lag ``k`` bins, so 1 means "independent". Pairs where a train is empty give NaN.

    Returns
    -------
    lags_ms : array (n_lags,)
    normalised : array (n_pairs, n_lags)
    """
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import cross_correlation_histogram

    times = _spike_times_ms(spiketrains, t_start_ms, t_stop_ms)
    n_bins = int(np.floor((t_stop_ms - t_start_ms) / bin_ms * (1 + 1e-12)))
    max_lag_bins = int(round(max_lag_ms / bin_ms))
    if n_bins < 2 * max_lag_bins + 1:
        raise ValueError(f"max_lag_ms={max_lag_ms} is too long for a window of {t_stop_ms - t_start_ms} ms")
    stop = t_start_ms + n_bins * bin_ms
    lags = np.arange(-max_lag_bins, max_lag_bins + 1)
    out = np.full((len(pairs), lags.size), np.nan)
    for row, (i, j) in enumerate(pairs):
        a, b = times[i][times[i] < stop], times[j][times[j] < stop]
        if a.size == 0 or b.size == 0:
            continue
        with _quiet_elephant():
            binned = [BinnedSpikeTrain(neo.SpikeTrain(t, units="ms", t_start=t_start_ms * pq.ms, t_stop=stop * pq.ms),
                                       bin_size=bin_ms * pq.ms) for t in (a, b)]
            cch, cch_lags = cross_correlation_histogram(binned[0], binned[1],
                                                        window=[-max_lag_bins, max_lag_bins])
        counts = np.asarray(cch.magnitude, dtype=float).reshape(-1)
        expected = len(a) * len(b) * (n_bins - np.abs(cch_lags)) / n_bins ** 2
        out[row] = counts / expected
    return lags * bin_ms, out


def _sample_pairs(n: int, settings: StatisticsSettings) -> tuple[np.ndarray, list[tuple[int, int]]]:
    rng = np.random.default_rng(settings.sample_seed)
    chosen = np.sort(rng.choice(n, size=min(n, int(settings.correlation_neurons)), replace=False))
    all_pairs = [(int(i), int(j)) for i, j in itertools.combinations(range(n), 2)] if n <= 200 else None
    n_pairs = min(int(settings.cch_pairs), n * (n - 1) // 2)
    if all_pairs is not None:
        picks = rng.choice(len(all_pairs), size=n_pairs, replace=False)
        pairs = [all_pairs[k] for k in np.sort(picks)]
    else:
        pairs = []
        while len(pairs) < n_pairs:
            i, j = sorted(int(x) for x in rng.choice(n, size=2, replace=False))
            if (i, j) not in pairs:
                pairs.append((i, j))
    return chosen, pairs


def population_statistics(spiketrains, t_start_ms: float, t_stop_ms: float,
                          membrane_potential: neo.AnalogSignal | None = None,
                          settings: StatisticsSettings = StatisticsSettings()) -> PopulationStatistics:
    """Statistics of one population within ``[t_start_ms, t_stop_ms]`` (see :data:`STATISTICS`).

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
        One train per neuron, in neuron order (so neuron k is the same neuron in every run).
    t_start_ms, t_stop_ms : float
        Analysis window (ms); spikes outside it are ignored (e.g. an initial transient).
    membrane_potential : neo.AnalogSignal, optional
        Recorded membrane potentials (one channel per recorded neuron).
    settings : StatisticsSettings
        Windows, bins and sample sizes.
    """
    if not (np.isfinite(t_start_ms) and np.isfinite(t_stop_ms) and t_stop_ms > t_start_ms):
        raise ValueError(f"t_stop_ms must be > t_start_ms, got [{t_start_ms}, {t_stop_ms}] ms")
    if len(spiketrains) == 0 and membrane_potential is None:
        raise ValueError("population_statistics needs spike trains or a membrane potential")
    summary = {name: math.nan for name in STATISTICS}
    per_neuron: dict[str, np.ndarray] = {}
    lags, cch_mean = np.zeros(0), np.zeros(0)
    if len(spiketrains):
        times = _spike_times_ms(spiketrains, t_start_ms, t_stop_ms)
        n = len(times)
        per_neuron["rate_hz"] = _rates_hz(times, t_start_ms, t_stop_ms)
        per_neuron["cv_isi"] = _cvs(times)
        per_neuron["fano_factor"] = _fano_factors(times, settings.fano_window_ms, t_start_ms, t_stop_ms)
        if n >= 2:
            chosen, pairs = _sample_pairs(n, settings)
            corr = correlation_coefficients(to_spiketrains([times[k] for k in chosen], t_stop_ms, t_start_ms),
                                            settings.correlation_bin_ms, t_start_ms, t_stop_ms)
            per_neuron["correlation"] = corr[np.triu_indices(len(chosen), k=1)]
            lags, cchs = cross_correlograms(spiketrains, pairs, settings.cch_bin_ms,
                                            min(settings.cch_max_lag_ms, (t_stop_ms - t_start_ms) / 2.5),
                                            t_start_ms, t_stop_ms)
            valid = np.isfinite(cchs).all(axis=1)
            if valid.any():
                cch_mean = cchs[valid].mean(axis=0)
                central = np.abs(lags) <= settings.cch_peak_half_width_ms + 1e-9
                summary["cch_peak"] = float(cch_mean[central].mean() - 1.0)
            else:
                cch_mean = np.full(lags.size, np.nan)
        summary["rate_hz"] = float(per_neuron["rate_hz"].mean())
        for name in ("cv_isi", "fano_factor", "correlation"):
            values = per_neuron.get(name, np.zeros(0))
            if np.isfinite(values).any():
                summary[name] = float(np.nanmean(values))
    if membrane_potential is not None:
        signal = membrane_potential.time_slice(t_start_ms * pq.ms, t_stop_ms * pq.ms).rescale("mV")
        v = np.asarray(signal.magnitude, dtype=float)
        if v.ndim != 2 or v.shape[0] < 2:
            raise ValueError(f"membrane_potential needs >= 2 samples in [{t_start_ms}, {t_stop_ms}] ms, "
                             f"got shape {v.shape}")
        per_neuron["v_mean_mv"] = v.mean(axis=0)
        per_neuron["v_std_mv"] = v.std(axis=0)
        summary["v_mean_mv"] = float(per_neuron["v_mean_mv"].mean())
        summary["v_std_mv"] = float(per_neuron["v_std_mv"].mean())
    return PopulationStatistics(summary, per_neuron, lags, cch_mean)


@dataclass
class StatisticComparison:
    """One statistic of one population, compared between groups ``a`` and ``b`` (R runs each).

    ``difference`` = mean_b - mean_a; ``tolerance`` is the half-width of the Bonferroni-level
    (1 - alpha/m) confidence interval of the difference from the run-to-run spread (Welch), so a
    difference beyond it is flagged under either correction.
    """

    population: str
    statistic: str
    group_a: str
    group_b: str
    values_a: list
    values_b: list
    mean_a: float
    mean_b: float
    sd_a: float
    sd_b: float
    difference: float
    relative_difference: float
    hedges_g: float
    t: float
    df: float
    p_value: float
    p_adjusted: float = math.nan
    tolerance: float = math.nan
    verdict: str = "untested"
    reason: str = ""


def _finite(values) -> np.ndarray:
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def compare_groups(summaries: Mapping[str, Sequence[Mapping[str, Mapping[str, float]]]], alpha: float = 0.05,
                   correction: str = "holm") -> list[StatisticComparison]:
    """Compare every statistic of every population between every pair of groups.

    Parameters
    ----------
    summaries : mapping
        Group name (e.g. backend) -> list over runs of {population: {statistic: value}}.
    alpha : float
        Family-wise error rate (Holm) or false discovery rate (Benjamini-Hochberg), in (0, 1).
    correction : {"holm", "benjamini-hochberg"}
        Multiple-comparison correction over all tests made.

    Returns
    -------
    list of StatisticComparison, in population, statistic, group-pair order.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    if len(summaries) < 2:
        raise ValueError(f"compare_groups needs >= 2 groups, got {len(summaries)}")
    populations: list[str] = []
    for runs in summaries.values():
        for run in runs:
            populations.extend(p for p in run if p not in populations)
    comparisons = []
    for population in populations:
        for statistic in STATISTICS:
            for group_a, group_b in itertools.combinations(summaries, 2):
                a = _finite(run.get(population, {}).get(statistic, np.nan) for run in summaries[group_a])
                b = _finite(run.get(population, {}).get(statistic, np.nan) for run in summaries[group_b])
                if a.size == 0 and b.size == 0:
                    continue  # not measured at all (e.g. membrane potential not recorded)
                mean_a = float(a.mean()) if a.size else math.nan
                mean_b = float(b.mean()) if b.size else math.nan
                common = dict(population=population, statistic=statistic, group_a=group_a, group_b=group_b,
                              values_a=a.tolist(), values_b=b.tolist(), mean_a=mean_a, mean_b=mean_b,
                              sd_a=float(a.std(ddof=1)) if a.size > 1 else math.nan,
                              sd_b=float(b.std(ddof=1)) if b.size > 1 else math.nan,
                              difference=mean_b - mean_a,
                              relative_difference=(mean_b - mean_a) / abs(mean_a) if mean_a else math.nan)
                if a.size < 2 or b.size < 2:
                    comparisons.append(StatisticComparison(**common, hedges_g=math.nan, t=math.nan, df=math.nan,
                                                           p_value=math.nan, reason=f"fewer than 2 finite values "
                                                           f"({a.size} in {group_a}, {b.size} in {group_b})"))
                    continue
                t, df, p = welch_test(a, b)
                comparisons.append(StatisticComparison(**common, hedges_g=hedges_g(a, b), t=t, df=df, p_value=p))
    tested = [c for c in comparisons if np.isfinite(c.p_value)]
    if tested:
        p = np.array([c.p_value for c in tested])
        adjusted = holm_adjust(p) if correction == "holm" else benjamini_hochberg_adjust(p)
        level = alpha / len(tested)
        for c, p_adj in zip(tested, adjusted):
            c.p_adjusted = float(p_adj)
            c.verdict = "differ" if p_adj < alpha else "agree"
            if math.isfinite(c.df):
                se = math.sqrt(c.sd_a ** 2 / len(c.values_a) + c.sd_b ** 2 / len(c.values_b))
                c.tolerance = float(scipy_stats.t.ppf(1 - level / 2, c.df) * se)
            else:
                c.tolerance = 0.0
    return comparisons
