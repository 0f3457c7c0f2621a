"""Every software backend does what the models rely on: renewing synapses, seeds, Poisson noise."""

import numpy as np
import pytest

from cortexsim.backends import load_backend
from cortexsim.backends.noise import add_poisson_background
from cortexsim.models.lif_translation import free_membrane
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE

BACKENDS = ["nest", "brian2"]


def _burst_response(sim, synapse):
    """g_exc of a target after a presynaptic burst at 10, 12, 14, 16 ms and one spike at 60 ms."""
    sim.setup(timestep=0.1, seed=1)
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[10.0, 12.0, 14.0, 16.0, 60.0]))
    target = sim.Population(1, sim.IF_cond_exp(tau_syn_E=10.0, v_thresh=100.0))
    sim.Projection(source, target, sim.AllToAllConnector(), synapse, receptor_type="excitatory")
    target.record("gsyn_exc")
    sim.run(80.0)
    signal = target.get_data().segments[0].analogsignals[0]
    sim.end()
    return np.asarray(signal.times.rescale("ms")).ravel(), np.asarray(signal.rescale("uS")).ravel()


@pytest.mark.parametrize("backend", BACKENDS)
def test_renewing_synapse_resets_instead_of_adding(backend):
    sim = load_backend(backend)
    weight = 0.001
    times, g = _burst_response(sim, sim.TsodyksMarkramSynapse(U=1.0, tau_rec=10.0, tau_facil=0.0, weight=weight))
    peak_burst = g[(times > 10) & (times < 20)].max()
    peak_single = g[(times > 60) & (times < 62)].max()
    # Renewal: the burst peak equals the single-spike peak (within one step's decay, 1 %),
    # far below the 4x accumulation of static synapses.
    assert peak_burst == pytest.approx(peak_single, rel=0.02)
    assert peak_single == pytest.approx(weight, rel=0.05)
    times, g_static = _burst_response(sim, sim.StaticSynapse(weight=weight))
    assert g_static[(times > 10) & (times < 20)].max() > 2.5 * weight


def _spikes(backend, seed, duration=500.0):
    sim = load_backend(backend)
    sim.setup(timestep=0.1, seed=seed)
    params = DEFAULT_NEURON.as_pynn()
    population = sim.Population(5, sim.IF_cond_exp(**params))
    population.record("spikes")
    add_poisson_background(sim, population, DEFAULT_NOISE)
    sim.run(duration)
    trains = population.get_data("spikes").segments[0].spiketrains
    sim.end()
    return [np.asarray(st.rescale("ms")) for st in trains]


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_spikes_different_seed_different_spikes(backend):
    first, second, other = _spikes(backend, 7), _spikes(backend, 7), _spikes(backend, 8)
    assert sum(len(s) for s in first) > 50
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize("backend", BACKENDS)
def test_poisson_background_gives_the_analytic_free_membrane_mean(backend):
    """Mean free membrane potential (no spiking: threshold far away) against the HCS formula."""
    sim = load_backend(backend)
    sim.setup(timestep=0.1, seed=3)
    params = DEFAULT_NEURON.as_pynn()
    params.update(v_thresh=0.0, v_rest=-55.0)
    population = sim.Population(20, sim.IF_cond_exp(**params))
    population.initialize(v=-55.0)
    population.record("v")
    add_poisson_background(sim, population, DEFAULT_NOISE)
    duration = 2000.0
    sim.run(duration)
    v = np.asarray(population.get_data("v").segments[0].analogsignals[0].rescale("mV"))
    sim.end()
    v = v[int(50.0 / 0.1):]  # drop the first 50 ms
    mu, _, _ = free_membrane(DEFAULT_NEURON, DEFAULT_NOISE, -55.0)
    # Analytic <v> neglects conductance-voltage correlations (a bias of order 0.1 mV here); the
    # sampling error of 20 neurons x 2 s with ~3 ms autocorrelation and ~1 mV std is ~0.005 mV.
    assert abs(v.mean() - mu) < 0.3
    assert 0.2 < v.std() < 3.0


def test_brian2_batched_projection_equals_pynn_per_cell_connection():
    """cortexsim's batched Brian2 Projection builds the same synapses and values as PyNN's path."""
    import pyNN.brian2 as pynn_brian2

    from cortexsim.backends import pynn_brian2 as sim

    class PerCellProjection(sim.Projection):
        def _convergent_connect(self, *args, **kwargs):
            return pynn_brian2.Projection._convergent_connect(self, *args, **kwargs)

    results = []
    for projection_class in (sim.Projection, PerCellProjection):
        sim.setup(timestep=0.1, seed=4)
        pre = sim.Population(30, sim.IF_cond_exp())
        post = sim.Population(20, sim.IF_cond_exp())
        rng = sim.NumpyRNG(5)
        delays = sim.RandomDistribution("uniform", (0.1, 2.0), rng=rng)
        static = projection_class(pre, post, sim.FixedProbabilityConnector(0.3, rng=rng),
                                  sim.StaticSynapse(weight=0.004, delay=delays), receptor_type="excitatory")
        depressing = projection_class(post, pre, sim.FixedNumberPreConnector(5, rng=rng),
                                      sim.TsodyksMarkramSynapse(U=0.5, tau_rec=50.0, weight=0.003),
                                      receptor_type="inhibitory")
        results.append([p.get(name, format="array") for p in (static, depressing) for name in ("weight", "delay")])
        sim.end()
    for batched, per_cell in zip(*results):
        np.testing.assert_array_equal(batched, per_cell)


@pytest.mark.parametrize("backend", BACKENDS)
def test_recordings_can_be_cleared_between_runs(backend):
    """Training loops read and clear spikes every iteration (PyNN 0.13's Brian2 recorder could not)."""
    sim = load_backend(backend)
    sim.setup(timestep=0.1, seed=1)
    population = sim.Population(3, sim.IF_cond_exp(i_offset=1.0))
    population.record("spikes")
    counts = []
    for segment in range(3):
        sim.run(100.0)
        trains = population.get_data("spikes", clear=True).segments[0].spiketrains
        times = np.concatenate([np.asarray(st.rescale("ms")) for st in trains])
        assert times.size > 0 and times.min() >= 100.0 * segment and times.max() <= 100.0 * (segment + 1)
        counts.append(times.size)
    sim.end()
    assert min(counts) > 0
