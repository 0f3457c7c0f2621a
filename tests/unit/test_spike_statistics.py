"""Unit tests of cortexsim.analysis.spike_statistics (elephant wrappers, results in Hz)."""

from __future__ import annotations

import neo
import numpy as np
import pytest
import quantities as pq

from cortexsim.analysis.spike_statistics import (
    correlation_coefficients,
    cv_isi,
    fano_factors,
    firing_rates_hz,
    to_spiketrains,
)


def poisson_times(rng, rate_hz, t_stop_ms):
    return np.sort(rng.uniform(0.0, t_stop_ms, rng.poisson(rate_hz * t_stop_ms / 1000.0)))


def test_to_spiketrains():
    trains = to_spiketrains([[3.0, 1.0], []], t_stop_ms=10.0)
    assert all(isinstance(st, neo.SpikeTrain) for st in trains)
    assert trains[0].units == pq.ms and float(trains[0].t_stop) == 10.0
    np.testing.assert_array_equal(trains[0].magnitude, [1.0, 3.0])
    assert len(trains[1]) == 0
    with pytest.raises(ValueError, match="outside"):
        to_spiketrains([[11.0]], t_stop_ms=10.0)
    with pytest.raises(ValueError, match="t_stop_ms must be > t_start_ms"):
        to_spiketrains([[1.0]], t_stop_ms=0.0)


def test_firing_rates_in_hz_for_any_time_unit():
    in_ms = to_spiketrains([np.arange(10) * 100.0 + 5.0], t_stop_ms=1000.0)
    in_s = [neo.SpikeTrain(np.arange(10) * 0.1 + 0.005, units="s", t_stop=1.0 * pq.s)]
    np.testing.assert_allclose(firing_rates_hz(in_ms), [10.0])  # not 0.01 (1/ms)
    np.testing.assert_allclose(firing_rates_hz(in_s), [10.0])
    np.testing.assert_allclose(firing_rates_hz(in_ms, t_start=0.0, t_stop=500.0), [10.0])


def test_poisson_rates_cv_and_fano():
    rng = np.random.default_rng(0)
    T, rate = 20000.0, 50.0
    trains = to_spiketrains([poisson_times(rng, rate, T) for _ in range(3)], t_stop_ms=T)
    # Rate: count ~ Poisson(rate T), relative standard deviation 1 / sqrt(rate T) = 0.7 %; allow 5 sd.
    np.testing.assert_allclose(firing_rates_hz(trains), rate, rtol=5 / np.sqrt(rate * T / 1000.0))
    # CV of exponential ISIs is 1; its estimator from N ISIs has a standard deviation ~ 1 / sqrt(N).
    n_isi = rate * T / 1000.0
    np.testing.assert_allclose(cv_isi(trains), 1.0, atol=5 / np.sqrt(n_isi))
    # Fano factor of Poisson counts is 1; from M windows its standard deviation is ~ sqrt(2 / M).
    window = 100.0
    np.testing.assert_allclose(fano_factors(trains, window), 1.0, atol=5 * np.sqrt(2 / (T / window)))


def test_regular_trains():
    trains = to_spiketrains([np.arange(0.5, 1000.0, 10.0)], t_stop_ms=1000.0)
    np.testing.assert_allclose(cv_isi(trains), [0.0], atol=1e-12)
    np.testing.assert_allclose(fano_factors(trains, 50.0), [0.0], atol=1e-12)
    few = to_spiketrains([[1.0, 2.0], [], [1.0, 2.0, 4.0]], t_stop_ms=10.0)
    result = cv_isi(few)
    assert np.isnan(result[0]) and np.isnan(result[1])
    assert result[2] == pytest.approx(0.5 / 1.5)


def test_correlation_coefficients():
    rng = np.random.default_rng(1)
    T, bin_ms = 10000.0, 5.0
    a = poisson_times(rng, 40.0, T)
    b = poisson_times(rng, 40.0, T)
    trains = to_spiketrains([a, a, b, []], t_stop_ms=T)
    cc = correlation_coefficients(trains, bin_ms)
    assert cc.shape == (4, 4)
    assert cc[0, 1] == pytest.approx(1.0)
    # Independent trains: the sample correlation over M bins has a standard deviation ~ 1 / sqrt(M).
    assert abs(cc[0, 2]) < 5 / np.sqrt(T / bin_ms)
    assert np.isnan(cc[3, 0])


def test_binning_drops_spike_at_t_stop():
    trains = to_spiketrains([[1.0, 10.0], [1.0, 10.0]], t_stop_ms=10.0)
    # Two windows [0, 5), [5, 10): the spike at t_stop = 10 ms is not counted -> counts (1, 0).
    np.testing.assert_allclose(fano_factors(trains, 5.0), [0.25 / 0.5] * 2)


def test_bad_input():
    with pytest.raises(ValueError, match=r"spiketrains\[0\] must be a neo.SpikeTrain"):
        firing_rates_hz([np.array([1.0, 2.0])])
    with pytest.raises(ValueError, match="at least one"):
        cv_isi([])
    trains = to_spiketrains([[1.0]], t_stop_ms=10.0)
    with pytest.raises(ValueError, match="window_ms must be > 0"):
        fano_factors(trains, 0.0)
    with pytest.raises(ValueError, match="at least 2 full windows"):
        fano_factors(trains, 6.0)
    with pytest.raises(ValueError, match="bin_size_ms must be > 0"):
        correlation_coefficients(trains, -1.0)
    with pytest.raises(ValueError, match="longer than the window"):
        correlation_coefficients(trains, 20.0)
    with pytest.raises(ValueError, match="t_stop must be > t_start"):
        firing_rates_hz(trains, t_start=5.0, t_stop=5.0)


def test_silent_train_has_rate_zero():
    from cortexsim.analysis.spike_statistics import firing_rates_hz, to_spiketrains

    rates = firing_rates_hz(to_spiketrains([[1.0, 2.0], []], 100.0))
    np.testing.assert_allclose(rates, [20.0, 0.0])
