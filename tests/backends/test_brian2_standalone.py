"""brian2_standalone: PyNN-built networks in Brian2's C++ standalone mode, compiled once per structure.

Every test here builds the same 5-neuron sampling network, so the whole module compiles one C++
project (the session's cache folder is fresh, see tests/conftest.py) and then only re-runs it.
"""

import numpy as np
import pytest

from cortexsim.backends import load_backend
from cortexsim.models.boltzmann import random_bm
from cortexsim.parameters import ActivationFit
from cortexsim.models.sampling_network import build_sampling_network

pytestmark = pytest.mark.slow

FIT = ActivationFit(v_p05=-50.61, alpha=0.82)  # default parameter set (references §1)
BM = random_bm(5, seed=1)


@pytest.fixture(scope="module")
def sim():
    module = load_backend("brian2_standalone")
    yield module
    module.end()


def _counts(sim, seed, durations, bm=BM):
    sim.setup(timestep=0.1, seed=seed)
    network = build_sampling_network(sim, bm, FIT)
    for duration in durations:
        sim.run(duration)
    counts = np.array([len(st) for st in network.spiketrains()])
    return counts, network


def test_compiles_once_and_reruns_with_new_parameters_durations_and_setups(sim):
    before = sim.compilation_count()
    counts, network = _counts(sim, seed=5, durations=[1000.0])
    compiled = sim.compilation_count() - before
    assert compiled in (0, 1)  # 0 only if another test of this session compiled the structure
    # new biases through run arguments: strongly negative biases silence the network ...
    network.set_parameters(np.zeros((5, 5)), np.full(5, -6.0))
    sim.run(500.0)
    silent = np.array([len(st) for st in network.spiketrains(clear=True)]) - counts
    # ... strongly positive ones make every neuron fire at close to 1/tau_ref (100 Hz)
    network.set_parameters(np.zeros((5, 5)), np.full(5, 6.0))
    sim.run(500.0)
    busy = np.array([len(st) for st in network.spiketrains(clear=True)])
    # p_on = sigma(+-6) = 0.0025 / 0.9975: expected counts 0.12 / 49.9 per neuron in 500 ms
    assert silent.sum() <= 5
    assert np.all(busy >= 40)
    # a new setup of the same structure, and another duration, reuse the compiled project
    _counts(sim, seed=6, durations=[300.0, 700.0], bm=random_bm(5, seed=2))
    assert sim.compilation_count() - before == compiled
    assert sim.statistics()["binary_runs"] >= 5


def test_same_seed_same_spikes_other_seed_other_spikes(sim):
    first, _ = _counts(sim, seed=21, durations=[800.0])
    again, net = _counts(sim, seed=21, durations=[800.0])
    times_again = [np.asarray(st) for st in net.spiketrains()]
    other, net_other = _counts(sim, seed=22, durations=[800.0])
    np.testing.assert_array_equal(first, again)
    assert first.sum() > 20  # ~30-60 Hz per neuron: hundreds of spikes expected
    assert not all(np.array_equal(a, np.asarray(b)) for a, b in zip(times_again, net_other.spiketrains()))


def test_state_continues_across_runs(sim):
    """Two runs of 1000 ms continue time and state: spike times rise monotonically past 1000 ms,
    and the rate of the second second equals that of the first within Poisson noise."""
    counts_one, network = _counts(sim, seed=31, durations=[1000.0])
    sim.run(1000.0)
    trains = network.spiketrains()
    total = np.array([len(st) for st in trains])
    second = total - counts_one
    assert all(np.all(np.diff(np.asarray(st)) > 0) for st in trains)
    assert max(float(st.max()) for st in trains if len(st)) > 1000.0
    # counts of two windows of a stationary process: |a - b| < 4.5 sqrt(a + b) (Poisson-like, z < 4.5)
    assert abs(second.sum() - counts_one.sum()) < 4.5 * np.sqrt(second.sum() + counts_one.sum())


def test_weights_are_set_in_one_call(sim):
    sim.setup(timestep=0.1, seed=3)
    network = build_sampling_network(sim, BM, FIT)
    weights = np.arange(25, dtype=float).reshape(5, 5) * 1e-4
    sim.set_projection_weights(network.projection_exc, weights)
    got = network.projection_exc.get("weight", format="array")
    mask = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(got[mask], weights[mask], rtol=1e-12)


def test_unsupported_features_raise_a_clear_error(sim):
    sim.setup(timestep=0.1, seed=1)
    population = sim.Population(3, sim.IF_cond_exp())
    sources = sim.Population(3, sim.SpikeSourcePoisson(rate=10.0))
    sim.Projection(sources, population, sim.OneToOneConnector(), sim.StaticSynapse(weight=0.01))
    with pytest.raises(sim.StandaloneUnsupported, match="brian2"):
        sim.run(10.0)
    with pytest.raises(ValueError, match="simtime"):
        sim.run(-1.0)
