"""Builders create only the synapses that exist (models.recurrent); NEST's one-call FromListConnector.

References: PyNN's own per-target ``FromListConnector.connect`` for the connections NEST holds; the
network with synapses on both receptors of every pair (all-to-all with zero weights, the previous
build) for the dynamics: absent and zero-weight synapses must give the same spikes.
"""

from dataclasses import replace

import nest
import numpy as np
import pytest
from pyNN.nest import FromListConnector as PyNNFromListConnector

from cortexsim.backends import load_backend
from cortexsim.backends.spikes import spike_arrays
from cortexsim.models.boltzmann import BoltzmannMachine, random_bm
from cortexsim.models.ensemble import build_ensemble
from cortexsim.models.lif_translation import bm_to_lif
from cortexsim.models.recurrent import signed_pairs
from cortexsim.models.sampling_network import build_sampling_network
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit

FIT = ActivationFit(v_p05=-50.61, alpha=0.82)
# tau_syn_E != tau_syn_I and tau_refrac != tau_syn: a receptor or tau_rec mix-up changes the spikes
NEURON = replace(DEFAULT_NEURON, tau_syn_E=10.0, tau_syn_I=8.0)


@pytest.fixture
def sim():
    module = load_backend("nest")
    yield module
    module.end()


def _connection_table(projection) -> list:
    keys = ["source", "target", "weight", "delay", "synapse_model", "U", "u", "x", "tau_rec",
            "tau_fac"]
    connections = nest.GetConnections(synapse_model=projection.nest_synapse_model,
                                      synapse_label=projection.nest_synapse_label)
    values = connections.get([k for k in keys if k in connections.get()])
    return sorted(zip(*[np.atleast_1d(values[k]).tolist() for k in values]))


@pytest.mark.parametrize("kind,receptor", [("renewing", "inhibitory"), ("static", "excitatory")])
def test_nest_from_list_connector_makes_pynns_connections(sim, kind, receptor):
    """Same NEST connections (endpoints, weight incl. sign, delay, U/u/x/tau_rec/tau_fac) as PyNN's loop;
    catches an unnegated inhibitory weight, a lost column, a wrong unit or a dropped connection."""
    rng = np.random.default_rng(3)
    rows = np.array([(i, j, rng.uniform(0.001, 0.01), 0.1 * rng.integers(1, 5))
                     for i in range(12) for j in range(12) if rng.random() < 0.4])
    tables = []
    for fast in (True, False):
        sim.setup(timestep=0.1, seed=1)
        population = sim.Population(12, sim.IF_cond_exp())
        connector = sim.FromListConnector(rows, column_names=["weight", "delay"])
        if not fast:
            connector.connect = lambda projection, c=connector: PyNNFromListConnector.connect(c, projection)
        synapse = (sim.TsodyksMarkramSynapse(U=1.0, tau_rec=7.0, tau_facil=0.0) if kind == "renewing"
                   else sim.StaticSynapse())
        projection = sim.Projection(population, population, connector, synapse, receptor_type=receptor)
        tables.append(_connection_table(projection))
        np.testing.assert_allclose(np.array(sorted(projection.get(["weight"], format="list"))),
                                   rows[np.lexsort((rows[:, 1], rows[:, 0]))][:, :3], rtol=1e-12)
    assert len(tables[0]) == len(rows)
    assert tables[0] == tables[1]


def test_signed_pairs_by_sign_or_by_mask():
    W = np.array([[0.0, 0.3, -0.2], [0.3, 0.0, 0.0], [-0.2, 0.0, 0.0]])
    pairs = signed_pairs(W)
    assert [p.tolist() for p in pairs["excitatory"]] == [[0, 1], [1, 0]]
    assert [p.tolist() for p in pairs["inhibitory"]] == [[0, 2], [2, 0]]
    mask = np.ones((3, 3), dtype=bool)
    mask[1, 2] = mask[2, 1] = False
    both = signed_pairs(W, mask)
    assert [p.tolist() for p in both["excitatory"]] == [[0, 0, 1, 2], [1, 2, 0, 0]]  # diagonal excluded
    with pytest.raises(ValueError, match="outside connectivity"):
        signed_pairs(W, ~mask)


def _spikes(sim, bm, connectivity, seed=5, duration=500.0):
    sim.setup(timestep=0.1, seed=seed)
    network = build_sampling_network(sim, bm, FIT, NEURON, DEFAULT_NOISE, connectivity=connectivity)
    sim.run(duration)
    return network, spike_arrays(network.population, clear=True)


def test_only_nonzero_synapses_and_same_spikes_as_both_receptors_everywhere(sim):
    """A sparse BM (half the weights 0): one synapse per nonzero weight, receptor by sign, and exactly
    the spikes of the network with both receptor synapses on every pair (zeros included)."""
    bm = random_bm(10, seed=4, weight_scale=0.5, bias_scale=0.5)
    W = bm.W * (np.random.default_rng(0).random(bm.W.shape) < 0.5)
    bm = BoltzmannMachine(W=np.triu(W, 1) + np.triu(W, 1).T, b=bm.b)
    sparse, (t_sparse, i_sparse) = _spikes(sim, bm, None)
    counts = sparse.recurrent.n_synapses()
    assert counts == {"excitatory": int(np.sum(bm.W > 0)), "inhibitory": int(np.sum(bm.W < 0))}
    weights = bm_to_lif(bm, NEURON, DEFAULT_NOISE, FIT).weights
    np.testing.assert_allclose(sparse.projection_inh.get("weight", format="array"),
                               np.where(weights < 0, -weights, np.nan), rtol=1e-12)
    full, (t_full, i_full) = _spikes(sim, bm, ~np.eye(10, dtype=bool))
    assert full.recurrent.n_synapses() == {"excitatory": 90, "inhibitory": 90}
    assert t_sparse.size > 100
    np.testing.assert_array_equal(t_sparse, t_full)
    np.testing.assert_array_equal(i_sparse, i_full)


def test_weights_crossing_zero_with_a_mask_and_by_growth(sim):
    """With a mask, sign flips only move weight between the pair's two synapses (no growth, spikes equal
    to a network built with the new weights in the same state); without one, missing synapses are
    grown once and every weight is where it belongs; outside the mask is an error."""
    bm = random_bm(8, seed=6, weight_scale=0.5, bias_scale=0.5)
    flipped = BoltzmannMachine(W=-bm.W, b=bm.b)
    lif_flipped = bm_to_lif(flipped, NEURON, DEFAULT_NOISE, FIT)
    # mask: build with bm, switch to -W before running == build with -W
    sim.setup(timestep=0.1, seed=2)
    masked = build_sampling_network(sim, bm, FIT, NEURON, connectivity=~np.eye(8, dtype=bool))
    masked.set_bm(flipped)
    sim.run(300.0)
    times_switched, ids_switched = spike_arrays(masked.population)
    sim.setup(timestep=0.1, seed=2)
    direct = build_sampling_network(sim, flipped, FIT, NEURON, connectivity=~np.eye(8, dtype=bool))
    sim.run(300.0)
    times_direct, ids_direct = spike_arrays(direct.population)
    assert times_direct.size > 30
    np.testing.assert_array_equal(times_switched, times_direct)
    np.testing.assert_array_equal(ids_switched, ids_direct)
    # growth: every excitatory synapse must become inhibitory and vice versa
    sim.setup(timestep=0.1, seed=2)
    grown = build_sampling_network(sim, bm, FIT, NEURON)
    before = grown.recurrent.n_synapses()
    sim.run(50.0)
    grown.set_bm(flipped)
    after = grown.recurrent.n_synapses()
    assert after["excitatory"] == before["excitatory"] + int(np.sum(lif_flipped.weights > 0))
    assert len(grown.recurrent.projections["inhibitory"]) == 2
    sim.run(50.0)  # NEST re-sorts connections here; the weights must still be on the right pairs
    grown.set_bm(flipped)
    for receptor, expected in (("excitatory", lif_flipped.excitatory_weights),
                               ("inhibitory", lif_flipped.inhibitory_weights)):
        total = sum(np.nan_to_num(p.get("weight", format="array")) for p in grown.recurrent.projections[receptor])
        np.testing.assert_allclose(total, expected * ~np.eye(8, dtype=bool), rtol=1e-12, atol=0)
    # a mask forbids weights outside it, before anything changes
    sim.setup(timestep=0.1, seed=2)
    mask = np.zeros((8, 8), dtype=bool)
    mask[:4, 4:] = True
    rbm_W = np.where(mask | mask.T, bm.W, 0.0)
    rbm = build_sampling_network(sim, BoltzmannMachine(W=rbm_W, b=bm.b), FIT, NEURON, connectivity=mask | mask.T)
    with pytest.raises(ValueError, match="outside the network's connectivity"):
        rbm.set_bm(bm)


def test_ensemble_builds_only_nonzero_synapses_with_the_same_spikes(sim):
    """Poisson-mode ensemble of 3 networks: nonzero synapses only, spikes equal to the build with both
    receptors on every within-network pair; a per-network mask grows nothing when signs flip."""
    bms = [random_bm(5, seed=s, weight_scale=0.5, bias_scale=0.5) for s in range(3)]
    bms[1] = BoltzmannMachine(W=np.where(np.abs(bms[1].W) > 0.25, bms[1].W, 0.0), b=bms[1].b)
    results = []
    for connectivity in (None, ~np.eye(5, dtype=bool)):
        sim.setup(timestep=0.1, seed=8)
        ensemble = build_ensemble(sim, bms, FIT, mode="poisson", seed=1, connectivity=connectivity)
        sim.run(200.0)
        results.append((ensemble.recurrent.n_synapses(), spike_arrays(ensemble.population)))
        if connectivity is not None:
            ensemble.set_bms([BoltzmannMachine(W=-bm.W, b=bm.b) for bm in bms])
            assert ensemble.recurrent.n_synapses() == {"excitatory": 60, "inhibitory": 60}
    n_exc = sum(int(np.sum(bm.W > 0)) for bm in bms)
    assert results[0][0] == {"excitatory": n_exc, "inhibitory": sum(int(np.sum(bm.W < 0)) for bm in bms)}
    assert n_exc < 60
    assert results[0][1][0].size > 30
    np.testing.assert_array_equal(results[0][1][0], results[1][1][0])
    np.testing.assert_array_equal(results[0][1][1], results[1][1][1])
