"""Background statistics on synthetic spike trains with known answers (no simulator)."""

import numpy as np
import pytest

from cortexsim.analysis.background import input_statistics, membrane_statistics, plot_background
from cortexsim.analysis.spike_statistics import to_spiketrains

T_MS = 20000.0


def poisson_trains(n, rate_hz, seed):
    rng = np.random.default_rng(seed)
    trains = []
    for _ in range(n):
        count = rng.poisson(rate_hz * T_MS * 1e-3)
        trains.append(np.sort(rng.uniform(0.0, T_MS, count)))
    return to_spiketrains(trains, T_MS)


def test_poisson_inputs_have_cv_one_rate_as_drawn_and_no_correlation():
    trains = poisson_trains(20, 50.0, seed=1)
    sources = np.array([np.arange(0, 10), np.arange(10, 20)])
    stats = input_statistics(trains, sources, 0.0, T_MS, bin_size_ms=5.0)
    # 10 trains x ~1000 ISIs per target: CV estimate std ~ 1/sqrt(10000) = 0.01; 5 sigma.
    assert np.allclose(stats.cv, 1.0, atol=0.05)
    # Mean of 10 rates of ~1000 spikes each: relative std 1/sqrt(10000) = 1 %; 5 sigma.
    assert np.allclose(stats.rate_hz, 50.0, rtol=0.05)
    # Independent trains, 4000 bins: each coefficient has std ~ 1/sqrt(4000) = 0.016; the mean over
    # 45 pairs has std 0.0024 (signed) and the mean |r| is ~ sqrt(2/pi) * 0.016 = 0.013.
    assert np.all(np.abs(stats.correlation) < 0.012)
    assert np.all(stats.abs_correlation < 0.025)
    summary = stats.summary()
    assert summary["n_targets"] == 2 and abs(summary["mean_cv"] - 1.0) < 0.05


def test_identical_inputs_have_correlation_one():
    base = poisson_trains(1, 40.0, seed=2)[0]
    trains = [base.copy() for _ in range(4)]
    stats = input_statistics(trains, np.array([[0, 1, 2, 3]]), 0.0, T_MS, bin_size_ms=5.0)
    assert stats.correlation[0] == pytest.approx(1.0, abs=1e-12)
    assert stats.abs_correlation[0] == pytest.approx(1.0, abs=1e-12)


def test_regular_trains_have_cv_zero():
    trains = to_spiketrains([np.arange(5.0, T_MS, 10.0)] * 2, T_MS)
    stats = input_statistics(trains, np.array([[0, 1]]), 0.0, T_MS)
    assert stats.cv[0] == pytest.approx(0.0, abs=1e-9)
    assert stats.rate_hz[0] == pytest.approx(100.0, rel=1e-3)


@pytest.mark.parametrize("sources", [np.array([0, 1]), np.array([[0]]), np.array([[0, 5]]), np.array([[0.0, 1.0]])])
def test_bad_sources_raise(sources):
    trains = poisson_trains(3, 10.0, seed=3)
    with pytest.raises(ValueError, match="sources"):
        input_statistics(trains, sources, 0.0, T_MS)


def test_membrane_statistics_of_gaussian_traces(tmp_path):
    rng = np.random.default_rng(4)
    v = rng.normal(-50.0, 1.0, size=(20000, 3)) + np.array([0.0, 0.5, -0.5])
    stats = membrane_statistics(v)
    # 20000 samples: std of the mean 0.007 mV, of the std 0.005 mV; 5 sigma.
    assert np.allclose(stats.mean_mv, [-50.0, -49.5, -50.5], atol=0.035)
    assert np.allclose(stats.std_mv, 1.0, atol=0.025)
    assert np.sum(stats.density * np.diff(stats.bin_edges_mv)) == pytest.approx(1.0)
    assert stats.summary()["spread_of_means_mv"] == pytest.approx(np.std([0.0, 0.5, -0.5]), abs=0.03)
    with pytest.raises(ValueError, match="v_mv"):
        membrane_statistics(np.array([[np.nan, 1.0], [1.0, 1.0]]))
    trains = poisson_trains(6, 30.0, seed=5)
    inputs = input_statistics(trains, np.array([[0, 1, 2], [3, 4, 5]]), 0.0, T_MS)
    path = plot_background({"poisson": inputs, "ensemble": inputs}, {"poisson": stats}, tmp_path / "bg.png")
    assert path.exists() and path.stat().st_size > 1000
    assert stats.summary()["correlation_time_ms"] is None  # no sampling interval given
    timed = membrane_statistics(v, dt_ms=0.5, max_lag_ms=10.0)  # white samples: acf = 1, 0, 0, ...
    assert timed.acf.size == 20 and timed.acf[0] == pytest.approx(1.0)
    assert np.all(np.abs(timed.acf[1:]) < 0.04)  # lag estimates ~ 1 / sqrt(20000) = 0.007 each; 5 sigma
    assert timed.summary()["correlation_time_ms"] == pytest.approx(0.5, abs=0.2)  # dt * (1 + sum of 19 ~0 lags)
    path = plot_background({"poisson": inputs}, {"poisson": timed, "ensemble": stats}, tmp_path / "bg_acf.png")
    assert path.exists() and path.stat().st_size > 1000


def test_net_input_correlation_is_one_for_shared_sources_and_near_zero_for_disjoint_ones():
    from cortexsim.analysis.background import net_input_correlations

    trains = poisson_trains(40, 50.0, seed=5)
    # Group 0: targets 0 and 1 have the same sources (r = 1); group 1: targets 2 and 3 have disjoint,
    # independent sources. Between-group pairs share nothing either.
    exc = np.array([np.arange(0, 5), np.arange(0, 5), np.arange(10, 15), np.arange(20, 25)])
    inh = np.array([np.arange(5, 10), np.arange(5, 10), np.arange(15, 20), np.arange(25, 30)])
    result = net_input_correlations(trains, exc, inh, 2, 0.0, T_MS, bin_size_ms=5.0)
    # within: mean of r = 1 and r ~ 0 (std 1/sqrt(4000) = 0.016 per pair): 0.5 +- 0.008; 5 sigma.
    assert abs(result["within_mean"] - 0.5) < 0.04 and result["within_pairs"] == 2
    # between: 4 pairs of independent sums, each r with std 0.016; mean |r| < 5 sigma.
    assert result["between_mean_abs"] < 0.08 and result["between_pairs"] == 4
    swapped = net_input_correlations(trains, np.array([exc[0], inh[0], exc[2], exc[3]]),
                                     np.array([inh[0], exc[0], inh[2], inh[3]]), 2, 0.0, T_MS)
    assert swapped["within_mean"] == pytest.approx(-0.5, abs=0.04)  # exc of one = inh of the other: r = -1
    with pytest.raises(ValueError, match="group_size"):
        net_input_correlations(trains, exc, inh, 3, 0.0, T_MS)


def test_autocorrelation_of_ar1_and_white_noise():
    from cortexsim.analysis.background import autocorrelation
    rng = np.random.default_rng(4)
    rho, n = 0.9, 200_000
    noise = rng.normal(size=(2, n))
    x = np.empty_like(noise)
    x[:, 0] = noise[:, 0]
    for k in range(1, n):
        x[:, k] = rho * x[:, k - 1] + noise[:, k]
    acf, tau = autocorrelation(x, 200, dt_ms=0.5)
    assert acf[0] == pytest.approx(1.0)
    # The estimate's standard error at small lags is ~ sqrt((1 + rho^2) / (1 - rho^2) / n) ~ 0.01 per signal.
    assert np.allclose(acf[:20], rho ** np.arange(20), atol=0.03)
    assert tau == pytest.approx(0.5 / (1 - rho), rel=0.1)  # 5 ms; sum of ~200 lags, error ~ few %
    white, tau_white = autocorrelation(rng.normal(size=(3, 50_000)), 50)
    assert abs(tau_white - 1.0) < 0.1 and np.all(np.abs(white[1:]) < 0.03)  # lag noise ~ 1 / sqrt(5e4) = 0.0045
    constant = np.vstack([np.ones(1000), rng.normal(size=1000)])
    assert autocorrelation(constant, 10)[0][0] == pytest.approx(1.0)  # the constant row is skipped
    with pytest.raises(ValueError, match="max_lag"):
        autocorrelation(x[:, :100], 200)
    with pytest.raises(ValueError, match="constant"):
        autocorrelation(np.ones((2, 100)), 10)


def test_poisson_reference_trains_are_grid_poisson_trains_of_the_asked_rate():
    """The numpy Poisson reference of measure_background (backends that cannot record SpikeSourcePoisson):
    rate as asked, CV of a Bernoulli process on the dt grid (sqrt(1 - rate dt) = 0.9975 here), no
    correlation, spike times on the grid, reproducible per seed and different between seeds."""
    from cortexsim.protocols.ensemble import poisson_reference_trains

    trains = poisson_reference_trains(20, 50.0, T_MS, 0.1, seed=5)
    assert len(trains) == 20 and all(float(st.t_stop) == T_MS for st in trains)
    stats = input_statistics(trains, np.arange(20).reshape(2, 10), 0.0, T_MS, bin_size_ms=5.0)
    # as test_poisson_inputs_have_cv_one_rate_as_drawn_and_no_correlation (same sizes): 5 sigma
    assert np.allclose(stats.rate_hz, 50.0, rtol=0.05)
    assert np.allclose(stats.cv, np.sqrt(1 - 50.0 * 1e-4), atol=0.05)
    assert np.all(stats.abs_correlation < 0.025)
    times = np.concatenate([np.asarray(st.magnitude) for st in trains])
    assert np.allclose(times / 0.1, np.round(times / 0.1), atol=1e-6) and times.min() > 0
    again = poisson_reference_trains(20, 50.0, T_MS, 0.1, seed=5)
    other = poisson_reference_trains(20, 50.0, T_MS, 0.1, seed=6)
    assert all(np.array_equal(a.magnitude, c.magnitude) for a, c in zip(trains, again))
    assert not np.array_equal(trains[0].magnitude, other[0].magnitude)
    assert not np.array_equal(trains[0].magnitude, trains[1].magnitude)   # independent trains, not copies


@pytest.mark.parametrize("kwargs, needle", [(dict(n_trains=0), "n_trains"), (dict(rate_hz=-1.0), "rate_hz"),
                                            (dict(t_stop_ms=0.0), "t_stop_ms")])
def test_poisson_reference_trains_refuse_bad_input(kwargs, needle):
    from cortexsim.protocols.ensemble import poisson_reference_trains

    args = dict(n_trains=2, rate_hz=10.0, t_stop_ms=100.0, dt_ms=0.1, seed=1)
    with pytest.raises(ValueError, match=needle):
        poisson_reference_trains(**{**args, **kwargs})
