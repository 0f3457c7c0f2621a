"""Unit tests of cortexsim.analysis.compare (synthetic spike trains, no simulator)."""

import math

import neo
import numpy as np
import pytest
import quantities as pq
from scipy import stats

from cortexsim.analysis.compare import (STATISTICS, StatisticsSettings, benjamini_hochberg_adjust, compare_groups,
                                        cross_correlograms, hedges_g, holm_adjust, population_statistics,
                                        welch_test)
from cortexsim.analysis.spike_statistics import to_spiketrains


def poisson_trains(rng, n, rate_hz, t_stop_ms):
    return to_spiketrains([np.sort(rng.uniform(0, t_stop_ms, rng.poisson(rate_hz * t_stop_ms / 1000)))
                           for _ in range(n)], t_stop_ms)


def test_holm_matches_hand_computation():
    # sorted p: .005 .01 .03 .04 -> x (4, 3, 2, 1) = .02 .03 .06 .04 -> running max .02 .03 .06 .06
    np.testing.assert_allclose(holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm_adjust([0.5, 0.9]), [1.0, 1.0])


def test_benjamini_hochberg_matches_hand_computation():
    # sorted p: .005 .01 .03 .04 -> x 4/rank = .02 .02 .04 .04 -> running min from the top: same
    np.testing.assert_allclose(benjamini_hochberg_adjust([0.01, 0.04, 0.03, 0.005]), [0.02, 0.04, 0.04, 0.02])
    with pytest.raises(ValueError, match="p_values"):
        holm_adjust([0.1, 1.5])


def test_welch_test_matches_scipy_and_degenerate_cases():
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [2.5, 3.5, 6.0, 7.0, 4.0]
    t, df, p = welch_test(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert t == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert welch_test([1.0, 1.0], [1.0, 1.0])[2] == 1.0
    assert welch_test([1.0, 1.0], [2.0, 2.0])[2] == 0.0
    with pytest.raises(ValueError, match=">= 2 values"):
        welch_test([1.0], [1.0, 2.0])


def test_hedges_g_known_value():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0])  # pooled SD 1, difference 2
    assert hedges_g(a, b) == pytest.approx(2.0 * (1 - 3 / (4 * 6 - 9)))
    assert hedges_g(b, a) == pytest.approx(-hedges_g(a, b))


def test_poisson_statistics_match_theory():
    rng = np.random.default_rng(3)
    n, rate, t_stop = 200, 20.0, 5000.0
    s = population_statistics(poisson_trains(rng, n, rate, t_stop), 0.0, t_stop)
    # mean rate of n * T = 1000 neuron-seconds: Poisson SD sqrt(rate / 1000 s) = 0.14 Hz; 5 SD
    assert s.summary["rate_hz"] == pytest.approx(rate, abs=5 * math.sqrt(rate / (n * t_stop / 1000)))
    # per-neuron CV and Fano of ~100 spikes have SD ~0.1; the mean of 200 of them ~0.007 (bias ~1 %)
    assert s.summary["cv_isi"] == pytest.approx(1.0, abs=0.05)
    assert s.summary["fano_factor"] == pytest.approx(1.0, abs=0.05)
    # independent trains: correlation coefficients of 1225 pairs average to 0 +- ~0.0015
    assert abs(s.summary["correlation"]) < 0.01
    # zero-lag CCH excess of 20 pairs x 5 lags with ~2 expected coincidences each: SD ~0.1
    assert abs(s.summary["cch_peak"]) < 0.4
    assert math.isnan(s.summary["v_mean_mv"])
    assert s.per_neuron["rate_hz"].shape == (n,)


def test_shared_spikes_raise_correlation_and_cch_peak():
    rng = np.random.default_rng(4)
    t_stop, n = 3000.0, 40
    common = np.sort(rng.uniform(0, t_stop, 60))
    trains = to_spiketrains([np.sort(np.concatenate([common, rng.uniform(0, t_stop, 30)])) for _ in range(n)], t_stop)
    s = population_statistics(trains, 0.0, t_stop, settings=StatisticsSettings(correlation_neurons=20, cch_pairs=5))
    assert s.summary["correlation"] > 0.3
    # 60 shared of 90 spikes in 3000 bins: zero-lag peak over +-2 bins = 60 / (5 * 90**2 / 3000) = 4.4
    assert s.summary["cch_peak"] > 3.0
    lags, cch = cross_correlograms(trains, [(0, 1)], 1.0, 10.0, 0.0, t_stop)
    assert lags.shape == (21,) and cch.shape == (1, 21)
    assert cch[0, 10] == cch[0].max()


def test_empty_and_sparse_trains_give_zero_rate_and_nan_cv():
    trains = to_spiketrains([[], [10.0, 20.0], [5.0, 50.0, 90.0, 140.0]], 200.0)
    s = population_statistics(trains, 0.0, 200.0)
    np.testing.assert_allclose(s.per_neuron["rate_hz"], [0.0, 10.0, 20.0])
    assert np.isnan(s.per_neuron["cv_isi"][:2]).all() and np.isfinite(s.per_neuron["cv_isi"][2])


def test_membrane_potential_statistics():
    t = np.arange(0, 1000, 0.1)
    v = np.column_stack([-65 + 2 * np.sin(t / 10), -60 + 0 * t])
    signal = neo.AnalogSignal(v, units="mV", sampling_period=0.1 * pq.ms, t_start=0 * pq.ms)
    s = population_statistics([], 0.0, 1000.0, membrane_potential=signal)
    assert s.summary["v_mean_mv"] == pytest.approx(-62.5, abs=0.05)
    assert s.summary["v_std_mv"] == pytest.approx(2 / math.sqrt(2) / 2, abs=0.02)
    assert math.isnan(s.summary["rate_hz"])


def _summaries(rng, mean, sd, runs, population="exc"):
    return [{population: {"rate_hz": rng.normal(mean, sd), "cv_isi": rng.normal(1.0, 0.02)}} for _ in range(runs)]


def test_compare_groups_flags_real_difference_only():
    rng = np.random.default_rng(5)
    same = compare_groups({"nest": _summaries(rng, 10, 0.3, 5), "brian2": _summaries(rng, 10, 0.3, 5)})
    assert {c.statistic for c in same} == {"rate_hz", "cv_isi"}
    assert all(c.verdict == "agree" for c in same)
    shifted = compare_groups({"nest": _summaries(rng, 10, 0.3, 5), "brian2": _summaries(rng, 13, 0.3, 5)})
    rate = next(c for c in shifted if c.statistic == "rate_hz")
    assert rate.verdict == "differ" and rate.hedges_g > 3 and rate.difference > 0
    assert abs(rate.difference) > rate.tolerance > 0
    assert next(c for c in shifted if c.statistic == "cv_isi").verdict == "agree"


def test_compare_groups_untested_and_three_groups():
    runs = [{"p": {"rate_hz": 1.0, "cv_isi": math.nan}}, {"p": {"rate_hz": 1.1, "cv_isi": math.nan}}]
    out = compare_groups({"a": runs, "b": runs, "c": runs})
    assert len(out) == 3  # rate for (a,b), (a,c), (b,c); cv never measured -> skipped
    runs_one_cv = [{"p": {"rate_hz": 1.0, "cv_isi": 1.0}}, {"p": {"rate_hz": 1.1, "cv_isi": math.nan}}]
    cv = [c for c in compare_groups({"a": runs_one_cv, "b": runs_one_cv}) if c.statistic == "cv_isi"][0]
    assert cv.verdict == "untested" and "fewer than 2" in cv.reason


def test_false_alarm_rate_of_null_comparisons():
    # 300 null validations of 2 populations x 7 statistics with R = 5: Holm keeps the family-wise
    # error at <= 5 %; binomial SD of the measured fraction sqrt(.05 * .95 / 300) = 1.3 %, so 10 %
    # is > 3.8 SD above the nominal level.
    rng = np.random.default_rng(6)
    alarms = 0
    for _ in range(300):
        groups = {g: [{p: {s: rng.normal(5.0, 1.0) for s in STATISTICS} for p in ("e", "i")} for _ in range(5)]
                  for g in ("a", "b")}
        alarms += any(c.verdict == "differ" for c in compare_groups(groups))
    assert alarms / 300 <= 0.10


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="alpha"):
        compare_groups({"a": [], "b": []}, alpha=1.5)
    with pytest.raises(ValueError, match="correction"):
        compare_groups({"a": [], "b": []}, correction="bonferonni")
    with pytest.raises(ValueError, match=">= 2 groups"):
        compare_groups({"a": []})
    with pytest.raises(ValueError, match="fano_window_ms"):
        StatisticsSettings(fano_window_ms=0)
    with pytest.raises(ValueError, match="t_stop_ms"):
        population_statistics(to_spiketrains([[1.0]], 10.0), 5.0, 5.0)
    with pytest.raises(ValueError, match="neo.SpikeTrain"):
        population_statistics([np.array([1.0])], 0.0, 10.0)
