"""Unit tests of cortexsim.analysis.states: spike trains -> states -> distributions."""

from __future__ import annotations

import neo
import numpy as np
import pytest
import quantities as pq

from cortexsim.analysis.states import (
    discrete_samples,
    joint_distribution,
    joint_distribution_in_windows,
    joint_distribution_over_time,
    sample_distribution,
    spike_times_ms,
    states_on_grid,
)

TAU = 10.0


def test_single_spike():
    p = joint_distribution([np.array([2.0])], TAU, 0.0, 20.0)
    np.testing.assert_allclose(p, [0.5, 0.5])


def test_overlapping_spikes_renew_instead_of_adding():
    # on [2, 17): the second spike extends the on-period, it does not add another 10 ms.
    p = joint_distribution([np.array([2.0, 7.0])], TAU, 0.0, 20.0)
    np.testing.assert_allclose(p, [0.25, 0.75])
    # A burst: spikes 1 ms apart keep the neuron on from the first spike to the last + tau_ref.
    p = joint_distribution([np.array([0.0, 1.0, 2.0, 3.0])], TAU, 0.0, 100.0)
    np.testing.assert_allclose(p, [0.87, 0.13])


def test_spike_near_t_stop_and_before_t_start():
    np.testing.assert_allclose(joint_distribution([np.array([18.0])], TAU, 0.0, 20.0), [0.9, 0.1])
    # A spike 5 ms before the window keeps the neuron on for the first 5 ms of it.
    np.testing.assert_allclose(joint_distribution([np.array([-5.0])], TAU, 0.0, 20.0), [0.75, 0.25])
    # Spikes at or after t_stop do not count.
    np.testing.assert_allclose(joint_distribution([np.array([20.0, 30.0])], TAU, 0.0, 20.0), [1.0, 0.0])


def test_two_neurons_index_order():
    # neuron 0 on [0, 10), neuron 1 on [5, 15) in a 40 ms window.
    # [0, 5): z = 10 (index 2), [5, 10): 11 (3), [10, 15): 01 (1), [15, 40): 00 (0).
    p = joint_distribution([np.array([0.0]), np.array([5.0])], TAU, 0.0, 40.0)
    np.testing.assert_allclose(p, [25 / 40, 5 / 40, 5 / 40, 5 / 40])
    # Neuron 0 alone on: index 2 ('10', neuron 0 is the most significant bit).
    p = joint_distribution([np.array([0.0]), np.array([])], TAU, 0.0, 20.0)
    np.testing.assert_allclose(p, [0.5, 0.0, 0.5, 0.0])


def test_spike_exactly_tau_ref_after_previous_one():
    # neuron 0 on [0, 10) and [10, 20) (back to back); neuron 1 on [10, 20).
    p = joint_distribution([np.array([0.0, 10.0]), np.array([10.0])], TAU, 0.0, 40.0)
    np.testing.assert_allclose(p, [20 / 40, 0.0, 10 / 40, 10 / 40])


def poisson_trains(rng, n, rate_hz, t_stop_ms):
    return [np.sort(rng.uniform(0.0, t_stop_ms, rng.poisson(rate_hz * t_stop_ms / 1000.0))) for _ in range(n)]


def test_grid_and_event_based_agree():
    rng = np.random.default_rng(1)
    T, dt = 2000.0, 0.01
    trains = poisson_trains(rng, 3, 50.0, T)
    p_events = joint_distribution(trains, TAU, 0.0, T)
    states = states_on_grid(trains, TAU, 0.0, T, dt)
    assert states.shape == (200000, 3) and states.dtype == np.uint8
    p_grid = sample_distribution(states)
    # Sampling a piecewise-constant state on a grid misplaces each switching time by at most dt,
    # so each state's time fraction differs by at most (number of switches) * dt / T.
    n_switches = 2 * sum(len(s) for s in trains)
    assert np.max(np.abs(p_grid - p_events)) <= n_switches * dt / T
    assert np.max(np.abs(p_grid - p_events)) > 0 or n_switches == 0


def test_over_time_matches_direct_computation():
    rng = np.random.default_rng(2)
    trains = poisson_trains(rng, 4, 30.0, 1000.0)
    checkpoints = np.array([7.5, 10.0, 100.0, 333.3, 1000.0])
    over_time = joint_distribution_over_time(trains, TAU, 0.0, checkpoints)
    assert over_time.shape == (5, 16)
    for row, c in zip(over_time, checkpoints):
        np.testing.assert_allclose(row, joint_distribution(trains, TAU, 0.0, c), atol=1e-12)
        assert abs(row.sum() - 1.0) < 1e-12
    # With a t_start after some spikes.
    later = joint_distribution_over_time(trains, TAU, 50.0, checkpoints[2:])
    np.testing.assert_allclose(later[0], joint_distribution(trains, TAU, 50.0, 100.0), atol=1e-12)


def test_windows_tile_the_whole_run():
    rng = np.random.default_rng(5)
    trains = poisson_trains(rng, 3, 40.0, 1000.0)
    windows = joint_distribution_in_windows(trains, TAU, 0.0, 250.0, 4)
    assert windows.shape == (4, 8)
    np.testing.assert_allclose(windows.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(windows[2], joint_distribution(trains, TAU, 500.0, 750.0), atol=1e-12)
    # Equal windows that tile [0, 1000) average to the distribution over the whole run.
    np.testing.assert_allclose(windows.mean(axis=0), joint_distribution(trains, TAU, 0.0, 1000.0), atol=1e-12)
    with pytest.raises(ValueError, match="window"):
        joint_distribution_in_windows(trains, TAU, 0.0, 0.0, 4)
    with pytest.raises(ValueError, match="n_windows"):
        joint_distribution_in_windows(trains, TAU, 0.0, 250.0, 0)


def test_neo_input_in_seconds():
    train_s = neo.SpikeTrain([0.002, 0.007], units="s", t_stop=0.02 * pq.s)
    train_ms = neo.SpikeTrain([15.0], units="ms", t_stop=20.0 * pq.ms)
    times = spike_times_ms([train_s, train_ms])
    np.testing.assert_allclose(times[0], [2.0, 7.0])
    p_neo = joint_distribution([train_s, train_ms], TAU, 0.0, 20.0)
    p_arr = joint_distribution([np.array([2.0, 7.0]), np.array([15.0])], TAU, 0.0, 20.0)
    np.testing.assert_allclose(p_neo, p_arr)
    # neuron 0 on [2, 17), neuron 1 on [15, 20): 00 for 2 ms, 10 for 13, 11 for 2, 01 for 3.
    np.testing.assert_allclose(p_neo, [2 / 20, 3 / 20, 13 / 20, 2 / 20])


def test_states_on_grid_and_discrete_samples():
    trains = [np.array([2.0, 7.0]), np.array([15.0])]
    grid = states_on_grid(trains, TAU, 0.0, 20.0, 5.0)  # times 0, 5, 10, 15
    np.testing.assert_array_equal(grid, [[0, 0], [1, 0], [1, 0], [1, 1]])
    samples = discrete_samples(trains, TAU, 0.0, 30.0)  # every tau_ref: 0, 10, 20
    np.testing.assert_array_equal(samples, [[0, 0], [1, 0], [0, 1]])
    np.testing.assert_allclose(sample_distribution(samples), [1 / 3, 1 / 3, 1 / 3, 0.0])
    samples = discrete_samples(trains, TAU, 0.0, 20.0, interval=2.5)
    assert samples.shape == (8, 2)
    # z = 1 exactly at the spike time and until (not including) spike + tau_ref.
    np.testing.assert_array_equal(states_on_grid([np.array([5.0])], TAU, 0.0, 20.0, 5.0)[:, 0], [0, 1, 1, 0])


def test_unsorted_input_is_accepted():
    p1 = joint_distribution([np.array([7.0, 2.0])], TAU, 0.0, 20.0)
    np.testing.assert_allclose(p1, [0.25, 0.75])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: joint_distribution([np.array([1.0])], TAU, 10.0, 10.0), "t_stop must be > t_start"),
        (lambda: joint_distribution([np.array([1.0])], 0.0, 0.0, 10.0), "tau_ref must be > 0"),
        (lambda: joint_distribution([np.array([1.0])] * 21, TAU, 0.0, 10.0), "at most 20 neurons, got 21"),
        (lambda: joint_distribution([], TAU, 0.0, 10.0), "at least one neuron"),
        (lambda: joint_distribution([np.array([np.nan])], TAU, 0.0, 10.0), r"spiketrains\[0\] contains NaN"),
        (lambda: states_on_grid([np.array([1.0])], TAU, 0.0, 10.0, 0.0), "dt must be > 0"),
        (lambda: discrete_samples([np.array([1.0])], TAU, 0.0, 10.0, interval=-1.0), "interval must be > 0"),
        (lambda: joint_distribution_over_time([np.array([1.0])], TAU, 0.0, [5.0, 5.0]), "strictly increasing"),
        (lambda: joint_distribution_over_time([np.array([1.0])], TAU, 10.0, [5.0]), "> t_start"),
        (lambda: sample_distribution(np.zeros((0, 2))), "non-empty"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_states_on_grid_equals_the_definition_by_brute_force():
    """z_k(t) = 1 iff a spike in (t - tau_ref, t], checked point by point against the vectorised code;
    spikes on grid points, before t_start, at/after t_stop and bursts included (catches off-by-one
    on/off steps and merged on-periods counted wrong)."""
    from cortexsim.analysis.states import states_on_grid_from_arrays

    rng = np.random.default_rng(11)
    trains = [np.sort(np.concatenate([rng.uniform(-15.0, 130.0, 25), np.round(rng.uniform(0, 120, 8), 1),
                                      [20.0, 21.0, 22.0], [120.0]])) for _ in range(5)]
    t_start, t_stop, dt = 3.0, 120.0, 0.5
    grid = t_start + dt * np.arange(int(np.floor((t_stop - t_start) / dt)))
    expected = np.array([[np.any((s > t - TAU) & (s <= t)) for s in trains] for t in grid], dtype=np.uint8)
    np.testing.assert_array_equal(states_on_grid(trains, TAU, t_start, t_stop, dt), expected)
    times = np.concatenate(trains)
    indices = np.repeat(np.arange(5), [len(s) for s in trains])
    order = rng.permutation(times.size)  # any order of the arrays
    np.testing.assert_array_equal(
        states_on_grid_from_arrays(times[order], indices[order], 5, TAU, t_start, t_stop, dt), expected)
    with pytest.raises(ValueError, match="indices"):
        states_on_grid_from_arrays(np.array([1.0]), np.array([5]), 5, TAU, 0.0, 10.0, 1.0)
