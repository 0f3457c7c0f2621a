"""Spikes as arrays (backends.spikes) and phase schedules (backends.schedules) on NEST and Brian2.

References: PyNN's own ``get_data`` (neo) for the spike arrays; explicit ``population.set`` + ``run``
for schedules.
"""

import numpy as np
import pytest

from cortexsim.backends import load_backend
from cortexsim.backends.schedules import run_parameter_schedule
from cortexsim.backends.spikes import spike_arrays, spike_times_per_neuron
from cortexsim.models.boltzmann import random_bm
from cortexsim.parameters import ActivationFit
from cortexsim.models.sampling_network import build_sampling_network

FIT = ActivationFit(v_p05=-50.61, alpha=0.82)


@pytest.fixture
def nest_sim():
    sim = load_backend("nest")
    yield sim
    sim.end()


def test_spike_arrays_equal_neo_spike_trains_and_clear_like_get_data(nest_sim):
    """Two windows, cleared in between: each equals get_data's trains (times and neurons); catches
    wrong ID -> index mapping, a missing clear (spikes counted twice) or a clear that loses spikes."""
    sim = nest_sim
    sim.setup(timestep=0.1, seed=4)
    network = build_sampling_network(sim, random_bm(7, seed=2), FIT)
    reference, arrays = [], []
    for _ in range(2):
        sim.run(150.0)
        times, indices = spike_arrays(network.population)
        arrays.append(spike_times_per_neuron(times, indices, 7))
        reference.append([np.asarray(st.rescale("ms")) for st in network.spiketrains(clear=True)])
    assert sum(len(t) for t in reference[1]) > 20
    for got_window, ref_window in zip(arrays, reference):
        for got, ref in zip(got_window, ref_window):
            np.testing.assert_array_equal(got, ref)
    assert all(t.min() >= 150.0 for t in arrays[1] if len(t))  # second window starts after the clear
    sim.run(50.0)
    times, indices = spike_arrays(network.population, clear=True)
    assert np.all(np.diff(times) >= 0) and np.all(times >= 300.0)
    sim.run(50.0)
    times, _ = spike_arrays(network.population, clear=True)
    assert np.all(times >= 350.0)


def test_spike_arrays_of_a_population_without_spike_recording_raise(nest_sim):
    nest_sim.setup(timestep=0.1)
    population = nest_sim.Population(2, nest_sim.IF_cond_exp())
    with pytest.raises(ValueError, match="record"):
        spike_arrays(population)


def test_spike_times_per_neuron_checks_and_splits():
    trains = spike_times_per_neuron(np.array([3.0, 1.0, 2.0, 5.0]), np.array([2, 0, 2, 0]), 4)
    assert [t.tolist() for t in trains] == [[1.0, 5.0], [], [2.0, 3.0], []]
    with pytest.raises(ValueError, match="indices"):
        spike_times_per_neuron(np.array([1.0]), np.array([4]), 4)


def test_schedule_on_nest_equals_set_and_run_per_phase(nest_sim):
    """PyNN's portable route (NEST has no one-launch schedule): same seed, same spikes as explicit
    set + run, and the parameter ends at the last phase's values."""
    sim = nest_sim
    leaks = np.array([[-45.0] * 4 + [-56.0] * 2, [-56.0] * 4 + [-45.0] * 2])
    outcome = []
    for use_schedule in (True, False):
        sim.setup(timestep=0.1, seed=9)
        network = build_sampling_network(sim, random_bm(6, seed=5), FIT)
        if use_schedule:
            run_parameter_schedule(sim, network.population, "v_rest", leaks, [100.0, 100.0])
        else:
            for row in leaks:
                network.population.set(v_rest=row)
                sim.run(100.0)
        outcome.append((spike_arrays(network.population), np.asarray(network.population.get("v_rest"))))
    (times, indices), v_rest = outcome[0]
    np.testing.assert_array_equal(times, outcome[1][0][0])
    np.testing.assert_array_equal(indices, outcome[1][0][1])
    np.testing.assert_allclose(v_rest, leaks[-1])
    # the clamp works: in phase 1 units 0-3 are driven (p_on high), in phase 2 units 4-5
    first = np.bincount(indices[times < 100.0], minlength=6)
    second = np.bincount(indices[times >= 100.0], minlength=6)
    assert first[:4].min() > first[4:].max() and second[4:].min() > second[:4].max()


@pytest.mark.parametrize("values, durations, match", [
    (np.zeros((2, 5)), [10.0, 10.0], "shape"),
    (np.zeros((2, 6)), [10.0], "shape"),
    (np.full((1, 6), np.nan), [10.0], "finite"),
    (np.zeros((1, 6)), [0.0], "durations_ms"),
    (np.zeros((0, 6)), [], "at least one"),
])
def test_schedule_rejects_bad_input_before_running(nest_sim, values, durations, match):
    nest_sim.setup(timestep=0.1)
    population = nest_sim.Population(6, nest_sim.IF_cond_exp())
    with pytest.raises(ValueError, match=match):
        run_parameter_schedule(nest_sim, population, "v_rest", values, durations)
