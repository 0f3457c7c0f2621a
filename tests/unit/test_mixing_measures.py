"""Tests of cortexsim.analysis.mixing against chains whose mixing statistics are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from cortexsim.analysis.mixing import (NO_MODE, autocorrelation, classes_visited, committed_modes,
                                       dominant_classes, dwell_times_ms, effective_sample_size,
                                       integrated_autocorrelation_time, mode_occupancy, mode_switches,
                                       mode_indicator, nearest_mode, pattern_overlap, switches_per_second)


def ar1(phi: float, n: int, seed: int) -> np.ndarray:
    """x_t = phi x_{t-1} + e_t, started in its stationary distribution."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=n)
    x = np.empty(n)
    x[0] = noise[0] / np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def two_state_chain(flip: float, n: int, seed: int) -> np.ndarray:
    """Markov chain on {0, 1} that flips with probability ``flip`` per step."""
    rng = np.random.default_rng(seed)
    flips = rng.random(n) < flip
    flips[0] = False
    return (np.cumsum(flips) % 2).astype(np.int64)


def sokal_sd(tau: float, n: int, c: float = 5.0) -> float:
    """Sokal's standard error of the windowed estimate: tau sqrt(2 (2 M + 1) / N), M ~ c tau."""
    return tau * np.sqrt(2 * (2 * c * tau + 1) / n)


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_integrated_autocorrelation_time_of_ar1(phi):
    n = 200_000
    expected = (1 + phi) / (1 - phi)  # 3 and 19 steps
    tau = integrated_autocorrelation_time(ar1(phi, n, seed=3))
    # Tolerance: 4 standard errors of Sokal's estimator (bias of the window ~exp(-c) is far below).
    assert abs(tau - expected) < 4 * sokal_sd(expected, n)


def test_integrated_autocorrelation_time_of_a_two_state_markov_chain():
    flip, n = 0.02, 400_000
    expected = (1 - flip) / flip  # rho(t) = (1 - 2 flip)^t  ->  tau = 49 steps
    tau = integrated_autocorrelation_time(two_state_chain(flip, n, seed=4).astype(float))
    assert abs(tau - expected) < 4 * sokal_sd(expected, n)


def test_independent_samples_have_tau_one_and_full_ess():
    x = np.random.default_rng(5).normal(size=50_000)
    assert integrated_autocorrelation_time(x) == pytest.approx(1.0, abs=4 * sokal_sd(1.0, x.size))
    assert effective_sample_size(x) == pytest.approx(x.size, rel=0.05)


def test_autocorrelation_of_ar1_follows_phi_to_the_t():
    rho = autocorrelation(ar1(0.8, 200_000, seed=6))
    np.testing.assert_allclose(rho[:5], 0.8 ** np.arange(5), atol=0.02)  # sd ~ 1/sqrt(N) * few


def test_constant_series_has_no_effective_samples():
    assert np.isnan(integrated_autocorrelation_time(np.ones(100)))
    assert effective_sample_size(np.ones(100)) == 0.0


def test_nearest_mode_with_distance_limit_and_ties():
    patterns = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]])
    states = np.array([[1, 1, 1, 0, 0, 0],   # mode 0
                       [1, 1, 0, 0, 0, 0],   # one unit off: still mode 0
                       [0, 1, 0, 1, 1, 1],   # one unit on: mode 1
                       [1, 1, 0, 1, 0, 0],   # two units from mode 0, four from mode 1
                       [1, 1, 1, 1, 1, 1]])  # three from each: a tie
    np.testing.assert_array_equal(nearest_mode(states, patterns, 1), [0, 0, 1, NO_MODE, NO_MODE])
    np.testing.assert_array_equal(nearest_mode(states, patterns, 2), [0, 0, 1, 0, NO_MODE])


def test_switches_ignore_excursions_that_return():
    labels = np.array([-1, 0, 0, -1, 0, 0, -1, -1, 1, 1, 0, -1, 0])
    np.testing.assert_array_equal(committed_modes(labels), [-1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(mode_switches(labels), [8, 10])
    # 2 switches in 13 steps of 2 ms = 26 ms
    assert switches_per_second(labels, 2.0) == pytest.approx(2 / 0.026)
    # one completed stay (in mode 1, from step 8 to step 10)
    np.testing.assert_allclose(dwell_times_ms(labels, 2.0), [4.0])


def test_switch_rate_and_dwell_times_of_a_markov_chain():
    flip, n, dt = 0.01, 300_000, 0.5
    labels = two_state_chain(flip, n, seed=7)
    # expected switches: flip * (n - 1); Poisson-like count, sd = sqrt(count)
    expected_rate = flip / (dt / 1000.0)
    count = flip * n
    assert switches_per_second(labels, dt) == pytest.approx(expected_rate, rel=4 / np.sqrt(count))
    dwell = dwell_times_ms(labels, dt)
    # Geometric stays: mean 1/flip steps, sd ~ 1/flip; the mean of K of them has sd mean/sqrt(K).
    mean = dt / flip
    assert dwell.mean() == pytest.approx(mean, rel=4 / np.sqrt(dwell.size))
    # Memoryless: P(stay > mean) = (1 - flip)^(1/flip) ~ exp(-1)
    assert np.mean(dwell > mean) == pytest.approx(np.exp(-1), abs=4 * np.sqrt(0.25 / dwell.size))


def test_mode_occupancy_per_window():
    labels = np.array([0, 0, 1, -1, 1, 1, 1, 1, 0])
    occupancy = mode_occupancy(labels, 2, 4)  # last partial window dropped
    np.testing.assert_allclose(occupancy, [[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="n_modes"):
        mode_occupancy(labels, 1, 4)


def test_pattern_overlap_is_plus_and_minus_one_in_the_modes():
    pattern = np.array([1, 1, 0, 0])
    states = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]])
    np.testing.assert_allclose(pattern_overlap(states, pattern), [1.0, -1.0, 0.5])


def test_dominant_classes_and_classes_visited():
    label_states = np.zeros((12, 3), dtype=int)
    label_states[0:4, 2] = 1          # window 0: class 2
    label_states[4:5, 0] = 1          # window 1: class 0 on 1/4 only -> no class
    label_states[8:12, 1] = 1         # window 2: class 1 ...
    label_states[8:12, 0] = 1         # ... tied with class 0 -> no class
    np.testing.assert_array_equal(dominant_classes(label_states, 4), [2, NO_MODE, NO_MODE])
    np.testing.assert_array_equal(dominant_classes(label_states, 4, min_fraction=0.25), [2, 0, NO_MODE])
    np.testing.assert_array_equal(classes_visited([2, -1, 0, 2]), [0, 2])


@pytest.mark.parametrize("call, message", [
    (lambda: switches_per_second([0, 1], 0.0), "dt_ms"),
    (lambda: nearest_mode([[0, 2]], [[0, 1]]), "only 0 and 1"),
    (lambda: nearest_mode([[0, 1]], [[0, 1, 1]]), "patterns have 3 units"),
    (lambda: integrated_autocorrelation_time([1.0, np.nan]), "NaN"),
    (lambda: dominant_classes([[1, 0]], 1, min_fraction=0.0), "min_fraction"),
    (lambda: committed_modes([0.5, 1.0]), "integers"),
])
def test_bad_input_names_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_mode_indicator_gives_no_effective_samples_to_a_stuck_sampler():
    # Within-mode flicker (one unit off now and then) must not count as mixing between modes.
    rng = np.random.default_rng(8)
    patterns = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]])
    states = np.tile(patterns[0], (5000, 1))
    flicker = rng.random(5000) < 0.3
    states[flicker, rng.integers(0, 3, flicker.sum())] = 0
    labels = nearest_mode(states, patterns, 1)
    assert effective_sample_size(pattern_overlap(states, patterns[0])) > 1000  # the overlap would suggest mixing
    assert effective_sample_size(mode_indicator(labels, 0)) == 0.0
    # A two-state Markov chain: the indicator is the chain itself, tau = (1 - p) / p.
    chain = two_state_chain(0.05, 100_000, seed=9)
    indicator = mode_indicator(chain, 0)
    assert integrated_autocorrelation_time(indicator) == pytest.approx(19.0, abs=4 * sokal_sd(19.0, indicator.size))
