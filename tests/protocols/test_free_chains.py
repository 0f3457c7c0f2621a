"""Several copies of one RBM in one simulation (data copies and persistent free chains) on NEST.

References: exact moments by enumeration of the 5-unit RBM (the free chains' pooled model moments),
the batch itself (the data copies' clamped units), and the single-network route (one copy, no chains).
"""

import numpy as np
import pytest

from cortexsim.analysis.states import states_on_grid_from_arrays
from cortexsim.backends import load_backend
from cortexsim.backends.spikes import spike_arrays
from cortexsim.models.boltzmann import BoltzmannMachine, exact_moments
from cortexsim.models.cd_learning import bipartite_mask
from cortexsim.models.lif_translation import bm_to_lif
from cortexsim.models.sampling_network import build_replicated_network, build_sampling_network
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit
from cortexsim.protocols.cd_digits import MnistTrainingConfig
from cortexsim.protocols.cd_engine import ClampedStatistics, TimedSimulator

FIT = ActivationFit(v_p05=-50.61, alpha=0.82)
N_VISIBLE, N_HIDDEN = 3, 2
N = N_VISIBLE + N_HIDDEN
MASK = bipartite_mask(N_VISIBLE, N_HIDDEN)


def _bm(scale: float = 1.0) -> BoltzmannMachine:
    W = np.zeros((N, N))
    W_vh = scale * np.array([[1.2, -0.8], [-0.5, 0.9], [0.7, 0.4]])     # asymmetric: mix-ups show
    W[:N_VISIBLE, N_VISIBLE:], W[N_VISIBLE:, :N_VISIBLE] = W_vh, W_vh.T
    return BoltzmannMachine(W=W, b=np.array([-0.6, 0.4, 0.1, -0.3, 0.5]))


def _replicas(copies: int, seed: int, bm: BoltzmannMachine | None = None):
    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=seed)
    return sim, build_replicated_network(sim, bm or _bm(), FIT, copies=copies, connectivity=MASK)


def test_free_chains_pool_to_the_enumerated_moments_and_ignore_the_clamped_copy():
    """One data copy clamped to all-ones rows for 4 x 100 ms, two free chains, 100 ms model phase: the
    model moments are the free chains' over the whole iteration. Reference: exact means by enumeration;
    tolerance 0.06 (the LIF translation's own error, ~0.04 here) + 4 standard errors over iterations.
    Pooling the clamped copy in (a third of the rows, visible units at 1 for 80 % of them) would move the
    visible means by ~0.15; taking the model window of the data copy (today's route) by its start at the
    last clamped image."""
    sim, network = _replicas(3, seed=21)
    data = np.ones((6, N_VISIBLE))
    statistics = ClampedStatistics(data, np.arange(N_VISIBLE), 4, 100.0, 20.0, 1.0, 30.0, n_units=N,
                                   data_copies=1, free_chains=2)
    timed = TimedSimulator(sim)
    results = [statistics(network, timed, k, 100.0, np.random.default_rng(k)) for k in range(8)]
    sim.end()
    assert timed.t_ms == pytest.approx(8 * 500.0)
    means = np.array([r.model[0] for r in results])
    exact_mean, exact_second = exact_moments(_bm())
    standard_error = means.std(axis=0, ddof=1) / np.sqrt(len(means))
    np.testing.assert_array_less(np.abs(means.mean(axis=0) - exact_mean), 0.06 + 4 * standard_error)
    seconds = np.array([r.model[1] for r in results]).mean(axis=0)
    assert np.abs(seconds - exact_second).max() < 0.08
    # data phase: the clamped units sit at the rows, the hidden ones follow p(h | v = 1) loosely
    for r in results:
        np.testing.assert_array_equal(r.data[0][:N_VISIBLE], 1.0)
        assert r.record["model_mean_activity"] == pytest.approx(float(np.mean(r.model[0])))


def test_copies_sample_independently():
    """Three copies run free for 20 s: a strongly coupled pair (v0, h0: W = 2.4) is correlated within a
    copy, the same pair across copies is not (independent backgrounds; shared noise or coupled blocks
    would correlate them). Tolerance from the sampling noise: 4 standard errors of the mean over ten
    2-s blocks. Every copy has the same marginals."""
    sim, network = _replicas(3, seed=5, bm=_bm(2.0))
    sim.run(20000.0)
    times, indices = spike_arrays(network.population, clear=True)
    states = states_on_grid_from_arrays(times, indices, 3 * N, DEFAULT_NEURON.tau_refrac, 0.0, 20000.0, 1.0)
    sim.end()
    within, across = [], []
    for block in states.astype(float).reshape(10, 2000, 3 * N):
        corr = np.corrcoef(block.T)
        within.append(np.mean([corr[c * N + 0, c * N + 3] for c in range(3)]))
        across.append(np.mean([corr[c * N + 0, d * N + 3] for c in range(3) for d in range(3) if c != d]))
    assert np.mean(within) > 0.2
    assert abs(np.mean(across)) < 4 * np.std(across, ddof=1) / np.sqrt(len(across))
    assert abs(np.mean(across)) < np.mean(within) / 5
    per_copy = states.reshape(len(states), 3, N).mean(axis=0)
    assert np.abs(per_copy - per_copy.mean(axis=0)).max() < 0.05


def test_one_copy_reproduces_the_single_network_route():
    """data_copies = 1, free_chains = 0 on a one-copy replicated network: the same moments, bit for bit,
    as the single network (same seed) with the plain statistics."""
    rng = np.random.default_rng(3)
    data = (rng.random((5, N_VISIBLE)) < 0.5).astype(float)
    out = []
    for replicated in (False, True):
        sim = load_backend("nest")
        sim.setup(timestep=0.1, seed=9)
        if replicated:
            network = build_replicated_network(sim, _bm(), FIT, copies=1, connectivity=MASK)
            statistics = ClampedStatistics(data, np.arange(N_VISIBLE), 3, 40.0, 10.0, 1.0, 30.0, n_units=N)
        else:
            network = build_sampling_network(sim, _bm(), FIT, connectivity=MASK)
            statistics = ClampedStatistics(data, np.arange(N_VISIBLE), 3, 40.0, 10.0, 1.0, 30.0)
        timed = TimedSimulator(sim)
        out.append([statistics(network, timed, k, 200.0, np.random.default_rng(5 + k)) for k in range(2)])
        sim.end()
    for got, expected in zip(*out):
        for part in ("data", "model"):
            for a, b in zip(getattr(got, part), getattr(expected, part)):
                np.testing.assert_array_equal(a, b)


def test_data_copies_split_the_batch_and_parameters_reach_every_copy():
    """Two data copies (batch 4: two clamps each) and one free chain: the data moments of the clamped
    units are exactly the batch's (every row clamped once, on one copy); the free chain is not clamped;
    set_parameters writes the new leak potentials into all three copies."""
    rows = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=float)
    sim, network = _replicas(3, seed=8)
    statistics = ClampedStatistics(rows, np.arange(N_VISIBLE), 4, 60.0, 10.0, 1.0, 30.0, n_units=N,
                                   data_copies=2, free_chains=1)
    rng = np.random.default_rng(1)
    draw = np.random.default_rng(1).integers(0, 4, 4)
    timed = TimedSimulator(sim)
    result = statistics(network, timed, 0, 300.0, rng)
    assert timed.t_ms == pytest.approx(2 * 60.0 + 300.0)
    batch = rows[draw]
    np.testing.assert_allclose(result.data[0][:N_VISIBLE], batch.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(result.data[1][:N_VISIBLE, :N_VISIBLE], batch.T @ batch / 4, atol=1e-12)
    assert 0.1 < result.model[0][0] < 0.8     # the free chain's v0 (p = 0.39 exactly) is not clamped
    W2, b2 = _bm(0.5).W, np.array([0.3, -0.2, 0.6, 0.1, -0.4])
    network.set_parameters(W2, b2)
    expected = bm_to_lif(BoltzmannMachine(W=W2, b=b2), DEFAULT_NEURON, DEFAULT_NOISE, FIT).e_leak
    np.testing.assert_allclose(np.asarray(network.population.get("v_rest")), np.tile(expected, 3))
    sim.end()


@pytest.mark.parametrize("kwargs, message", [({"data_copies": 3}, "data_copies must divide batch_size"),
                                             ({"free_chains": -1}, "free_chains"),
                                             ({"data_copies": 0}, "data_copies"),
                                             ({"free_chains": 2, "n_units": None}, "n_units"),
                                             ({"free_chains": 1, "n_units": 2}, "visible")])
def test_bad_copies_are_refused(kwargs, message):
    options = {"n_units": N, **kwargs}
    with pytest.raises(ValueError, match=message):
        ClampedStatistics(np.ones((2, N_VISIBLE)), np.arange(N_VISIBLE), 4, 60.0, 10.0, 1.0, 30.0, **options)


@pytest.mark.parametrize("kwargs, message", [({"free_chains": -1}, "free_chains"), ({"data_copies": 3}, "data_copies"),
                                             ({"free_chains": 1.5}, "free_chains")])
def test_config_refuses_bad_copies(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MnistTrainingConfig(seed=1, **kwargs)
