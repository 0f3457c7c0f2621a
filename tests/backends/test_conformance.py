"""Conformance: PyNN-style scenarios on every installed backend, compared with PyNN's own module.

Each scenario runs on every backend of ``installed_backends()`` (fixture ``backend`` in this
folder's conftest) and, where it compares, on PyNN's own module of the same simulator
(``backend.reference``: ``pyNN.nest`` for nest and the NEST-based chip, ``pyNN.brian2`` for both
Brian2 backends). Scenarios a backend cannot run are listed, with the reason, in the conftest's
``UNSUPPORTED`` table and must be refused with the backend's clear error.
"""

import numpy as np
import pytest
from pyNN.parameters import Sequence

from cortexsim.backends.noise import add_poisson_background
from cortexsim.models.lif_translation import free_membrane
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE

CELL = dict(cm=0.25, tau_m=15.0, v_rest=-65.0, v_reset=-70.0, v_thresh=-52.0, tau_refrac=3.0,
            tau_syn_E=3.0, tau_syn_I=8.0, e_rev_E=0.0, e_rev_I=-75.0)


def _setup(backend, sim, **options):
    if sim is backend.sim:
        return backend.setup(**options)
    return sim.setup(**options)


# ---------------------------------------------------------------------------------------------
# Parameters: views, IDs, subsets, Assemblies, get(simplify=False)

def _parameter_session(backend, sim) -> list:
    _setup(backend, sim, timestep=0.1)
    cells = sim.Population(4, sim.IF_cond_exp(**CELL))
    other = sim.Population(2, sim.IF_cond_exp(tau_m=[8.0, 9.0]))
    results = [cells.get("tau_m"), cells.get("tau_m", simplify=False), cells[1:3].get("cm"),
               cells[1:3].get("tau_syn_I", simplify=False), cells[2].tau_m, cells.get(["v_rest", "e_rev_I"])]
    cells[0:2].set(tau_m=12.0)
    sim.PopulationView(cells, [3]).set(tau_syn_E=4.0, v_thresh=-50.0)
    cells[2].e_rev_I = -80.0
    cells[1:3][0:1].set(cm=0.3)
    for name in ("tau_m", "tau_syn_E", "v_thresh", "e_rev_I", "cm"):
        results += [cells.get(name, simplify=False), cells[1:4].get(name)]
    assembly = cells + other
    results.append(assembly.get("tau_m"))
    assembly.set(tau_syn_I=6.0)
    results.append(cells.get("tau_syn_I"))
    sim.end()
    return results


def test_parameters_read_and_set_like_pynn(backend):
    reference = _parameter_session(backend, backend.reference)
    ours = _parameter_session(backend, backend.sim)
    assert len(ours) == len(reference)
    for k, (a, b) in enumerate(zip(ours, reference)):
        for x, y in (zip(a, b) if isinstance(b, list) else [(a, b)]):
            assert np.shape(x) == np.shape(y), f"result {k}: {x!r} vs {y!r}"
            np.testing.assert_allclose(x, y, rtol=1e-12, err_msg=f"result {k}")


# ---------------------------------------------------------------------------------------------
# Connections: which pairs, weights, delays, for the common connectors and both receptor types

def _connection_session(backend, sim) -> list:
    _setup(backend, sim, timestep=0.1)
    pre = sim.Population(6, sim.IF_cond_exp(**CELL))
    post = sim.Population(5, sim.IF_cond_exp(**CELL))
    rng = sim.NumpyRNG(seed=17)
    projections = [
        sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.004)),
        sim.Projection(pre, pre, sim.AllToAllConnector(allow_self_connections=False),
                       sim.StaticSynapse(weight=0.02), receptor_type="inhibitory"),
        sim.Projection(pre[0:5], post, sim.OneToOneConnector(), sim.StaticSynapse(weight=0.003)),
        sim.Projection(pre, post, sim.FixedProbabilityConnector(0.4, rng=rng),
                       sim.StaticSynapse(weight=0.006), receptor_type="inhibitory"),
        sim.Projection(pre, post, sim.FromListConnector([(0, 1, 0.001), (4, 2, 0.002), (5, 4, 0.005)],
                                                        column_names=["weight"]), sim.StaticSynapse()),
    ]
    projections[0].set(weight=np.arange(30).reshape(6, 5) * 1e-4 + 1e-4)
    results = []
    for projection in projections:
        weights, delays = projection.get(["weight", "delay"], format="array")
        results += [weights, delays, len(projection)]
    sim.end()
    return results


def test_connections_weights_and_delays_like_pynn(backend):
    reference = _connection_session(backend, backend.reference)
    ours = _connection_session(backend, backend.sim)
    for k, (a, b) in enumerate(zip(ours, reference)):
        np.testing.assert_allclose(a, b, rtol=1e-9, err_msg=f"result {k}")  # NaN where no connection


# ---------------------------------------------------------------------------------------------
# Dynamics: membrane response to timed excitatory and inhibitory input spikes

#: Time step (ms) of the dynamics comparisons. The Brian2 backends integrate IF_cond_exp with
#: exponential Euler where pyNN.brian2 uses forward Euler (README: deviations); forward Euler's
#: error is first order in dt (measured, membrane response below: 0.22 mV at 0.1 ms, 0.022 mV at
#: 0.01 ms), so Brian2 backends are compared at 0.01 ms.
DT_MS = {"brian2": 0.01, "brian2_standalone": 0.01}

#: Largest difference (mV) of the membrane potential from the reference module's. NEST-based
#: backends run the same NEST model: identical. Brian2 at 0.01 ms: measured 0.022 mV (membrane
#: response) and 0.20 mV (delayed transmission, where the driver's spikes move by up to 0.05 ms);
#: a 20 % weight error changes the membrane response by 3.5 mV, a 3 ms delay lost by 7.0 mV (measured).
V_TOLERANCE_MV = {"nest": 1e-9, "brainscales": 1e-9, "brian2": 0.05, "brian2_standalone": 0.05}


def _spike_response(backend, sim):
    _setup(backend, sim, timestep=DT_MS.get(backend.name, 0.1), min_delay=0.1)
    sources = sim.Population(3, sim.SpikeSourceArray(spike_times=[Sequence([5.0, 25.0, 26.0]),
                                                                  Sequence([10.0, 40.0]),
                                                                  Sequence([60.0, 61.0, 62.0])]))
    cells = sim.Population(2, sim.IF_cond_exp(**dict(CELL, v_thresh=-40.0)))
    cells.initialize(v=-65.0)
    cells.record(["v", "spikes"])
    sim.Projection(sources[0:2], cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.02),
                   receptor_type="excitatory")  # default delay: the minimum (the chip has no other)
    sim.Projection(sources[2:3], cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.05),
                   receptor_type="inhibitory")
    sim.run(100.0)
    v = np.asarray(cells.get_data("v").segments[0].analogsignals[0].rescale("mV"))
    sim.end()
    return v


def test_membrane_response_to_input_spikes_like_pynn(backend, request):
    reason = backend.known_deviation("spike_response")
    if reason is not None:
        request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    with backend.check_supported("spike_response"):
        ours = _spike_response(backend, backend.sim)
    if not backend.supports("spike_response"):
        return
    reference = _spike_response(backend, backend.reference)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= V_TOLERANCE_MV[backend.name]
    assert ours[:, 0].max() > -62.0 and ours[:, 0].min() < -65.5  # both inputs act (EPSP, IPSP)


def _delayed_transmission(backend, sim):
    """A DC-driven cell excites two cells through 3 ms (and 0.5 ms) delays; their v is recorded."""
    _setup(backend, sim, timestep=DT_MS.get(backend.name, 0.1), min_delay=0.1)
    driver = sim.Population(1, sim.IF_cond_exp(**dict(CELL, i_offset=0.6)))
    cells = sim.Population(2, sim.IF_cond_exp(**dict(CELL, v_thresh=-40.0)))
    cells.initialize(v=-65.0)
    driver.initialize(v=-65.0)
    cells.record("v")
    driver.record("spikes")
    sim.Projection(driver, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=[[0.02, 0.01]], delay=3.0))
    sim.Projection(driver, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.03, delay=0.5),
                   receptor_type="inhibitory")
    sim.run(60.0)
    v = np.asarray(cells.get_data("v").segments[0].analogsignals[0].rescale("mV"))
    spikes = np.asarray(driver.get_data("spikes").segments[0].spiketrains[0].rescale("ms"))
    sim.end()
    return v, spikes


def test_delayed_transmission_like_pynn(backend):
    with backend.check_supported("delayed_transmission"):
        ours, our_spikes = _delayed_transmission(backend, backend.sim)
    if not backend.supports("delayed_transmission"):
        return
    reference, reference_spikes = _delayed_transmission(backend, backend.reference)
    assert our_spikes.size >= 2 and ours.shape == reference.shape
    # The driver's spike times move by up to 0.05 ms between integration methods (Brian2, measured).
    np.testing.assert_allclose(our_spikes, reference_spikes, atol=0.06 if backend.name.startswith("brian2") else 0)
    tolerance = 0.3 if backend.name.startswith("brian2") else V_TOLERANCE_MV[backend.name]
    assert np.abs(ours - reference).max() <= tolerance  # a lost 3 ms delay: 7.0 mV (measured)


# ---------------------------------------------------------------------------------------------
# A parameter of a subset changed between two runs (analytic membrane charge)

def test_subset_parameter_change_between_runs_acts_on_those_neurons(backend):
    """tau_m of neuron 0 goes 10 -> 30 ms at 20 ms; i_offset charges v towards v_rest + i tau / cm."""
    sim = backend.sim
    backend.setup(timestep=0.1)
    cells = sim.Population(3, sim.IF_cond_exp(tau_m=10.0, cm=0.2, v_rest=-65.0, v_thresh=-20.0,
                                              i_offset=[0.02, 0.03, 0.04]))  # v stays below -62 mV
    cells.initialize(v=-65.0)
    cells.record("v")
    sim.run(20.0)
    cells[0].tau_m = 30.0
    sim.run(40.0)
    signal = cells.get_data("v").segments[0].analogsignals[0]
    times, v = np.asarray(signal.times.rescale("ms")), np.asarray(signal.rescale("mV"))
    expected = np.empty_like(v)
    for k, current in enumerate((0.02, 0.03, 0.04)):
        expected[:, k] = -65.0 + current * 10.0 / 0.2 * (1 - np.exp(-times / 10.0))
    v_20, v_inf = expected[times == 20.0, 0][0], -65.0 + 0.02 * 30.0 / 0.2
    late = times > 20.0
    expected[late, 0] = v_inf + (v_20 - v_inf) * np.exp(-(times[late] - 20.0) / 30.0)
    # NEST applies a change one min_delay (0.1 ms) late (PyNN simulates that much ahead on the
    # first run): <= 0.1 ms x 0.3 mV/ms here. A population-wide or lost change is off by > 0.4 mV.
    np.testing.assert_allclose(v, expected, atol=0.04)


# ---------------------------------------------------------------------------------------------
# reset(): like PyNN (NEST-based: only with t_flush; then the second segment repeats the first)

def _reset_session(backend, sim, **setup_options):
    _setup(backend, sim, timestep=0.1, **setup_options)
    cells = sim.Population(2, sim.IF_cond_exp(**dict(CELL, i_offset=0.5)))
    cells.record("spikes")
    sim.run(50.0)
    try:
        sim.reset()
    except ValueError as error:
        sim.end()
        return "refused", str(error)[:40]
    sim.run(50.0)
    segments = cells.get_data("spikes").segments
    sim.end()
    return "reset", [[np.asarray(st).tolist() for st in segment.spiketrains] for segment in segments]


@pytest.mark.filterwarnings("ignore:Full reset functionality")
def test_reset_like_pynn(backend):
    reference = backend.reference
    if hasattr(reference, "simulator") and hasattr(reference.simulator.state, "t_flush"):
        reference.simulator.state.t_flush = -1  # pyNN.nest's fresh-process default (it keeps old values)
    assert _reset_session(backend, backend.sim)[0] == _reset_session(backend, reference)[0]  # NEST: refused
    ours = _reset_session(backend, backend.sim, t_flush=100.0)
    theirs = _reset_session(backend, reference, t_flush=100.0)
    assert ours[0] == theirs[0] == "reset"
    assert len(ours[1]) == 2 and len(ours[1][0][0]) > 1
    # Brian2 restores the whole state (the second segment repeats the first); NEST keeps internal
    # state such as the refractory countdown (PyNN warns): each backend as its reference does.
    assert (ours[1][1] == ours[1][0]) == (theirs[1][1] == theirs[1][0])
    assert [[len(st) for st in segment] for segment in ours[1]] == [[len(st) for st in seg] for seg in theirs[1]]
    if V_TOLERANCE_MV.get(backend.name, 1.0) < 1e-6:  # same NEST model underneath: the same spike times
        assert ours == theirs


# ---------------------------------------------------------------------------------------------
# What the models rely on: renewing synapses, seeds, Poisson background, clearing recordings

def _burst_response(backend, synapse_factory):
    """g_exc of a target after a presynaptic burst at 10, 12, 14, 16 ms and one spike at 60 ms."""
    sim = backend.sim
    backend.setup(timestep=0.1, seed=1)
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[10.0, 12.0, 14.0, 16.0, 60.0]))
    target = sim.Population(1, sim.IF_cond_exp(tau_syn_E=10.0, v_thresh=100.0))
    sim.Projection(source, target, sim.AllToAllConnector(), synapse_factory(sim), receptor_type="excitatory")
    target.record("gsyn_exc")
    sim.run(80.0)
    signal = target.get_data().segments[0].analogsignals[0]
    sim.end()
    return np.asarray(signal.times.rescale("ms")).ravel(), np.asarray(signal.rescale("uS")).ravel()


def test_renewing_synapse_resets_instead_of_adding(backend):
    weight = 0.001
    renewing = lambda sim: sim.TsodyksMarkramSynapse(U=1.0, tau_rec=10.0, tau_facil=0.0, weight=weight)  # noqa: E731
    with backend.check_supported("renewing_synapse"):
        times, g = _burst_response(backend, renewing)
    if not backend.supports("renewing_synapse"):
        return
    peak_burst = g[(times > 10) & (times < 20)].max()
    peak_single = g[(times > 60) & (times < 62)].max()
    # Renewal: the burst peak equals the single-spike peak (within one step's decay, 1 %),
    # far below the 4x accumulation of static synapses.
    assert peak_burst == pytest.approx(peak_single, rel=0.02)
    assert peak_single == pytest.approx(weight, rel=0.05)
    times, g_static = _burst_response(backend, lambda sim: sim.StaticSynapse(weight=weight))
    assert g_static[(times > 10) & (times < 20)].max() > 2.5 * weight


def _background_spikes(backend, seed, duration=500.0):
    sim = backend.sim
    backend.setup(timestep=0.1, seed=seed)
    population = sim.Population(5, sim.IF_cond_exp(**DEFAULT_NEURON.as_pynn()))
    population.record("spikes")
    add_poisson_background(sim, population, DEFAULT_NOISE)
    sim.run(duration)
    trains = population.get_data("spikes").segments[0].spiketrains
    sim.end()
    return [np.asarray(st.rescale("ms")) for st in trains]


def test_same_seed_same_spikes_different_seed_different_spikes(backend):
    first, second, other = (_background_spikes(backend, s) for s in (7, 7, 8))
    assert sum(len(s) for s in first) > 50
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def _poisson_source_spikes(backend, seed):
    sim = backend.sim
    backend.setup(timestep=0.1, seed=seed)
    sources = sim.Population(4, sim.SpikeSourcePoisson(rate=50.0))
    sources.record("spikes")
    sim.run(400.0)
    trains = sources.get_data("spikes").segments[0].spiketrains
    sim.end()
    return [np.asarray(st.rescale("ms")) for st in trains]


def test_spike_source_poisson_follows_the_seed(backend):
    """User models with SpikeSourcePoisson: setup(seed=...) makes them reproducible, too."""
    with backend.check_supported("poisson_sources_seeded"):
        first = _poisson_source_spikes(backend, 3)
    if not backend.supports("poisson_sources_seeded"):
        return
    second, other = _poisson_source_spikes(backend, 3), _poisson_source_spikes(backend, 4)
    assert sum(len(s) for s in first) > 40  # 4 x 50 Hz x 0.4 s = 80 expected
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_poisson_background_gives_the_analytic_free_membrane_mean(backend):
    """Mean free membrane potential (no spiking: threshold far away) against the HCS formula."""
    sim = backend.sim
    backend.setup(timestep=0.1, seed=3)
    params = DEFAULT_NEURON.as_pynn()
    params.update(v_thresh=-20.0, v_rest=-55.0)  # ~30 standard deviations above the mean
    population = sim.Population(20, sim.IF_cond_exp(**params))
    population.initialize(v=-55.0)
    population.record("v")
    add_poisson_background(sim, population, DEFAULT_NOISE)
    sim.run(2000.0)
    v = np.asarray(population.get_data("v").segments[0].analogsignals[0].rescale("mV"))
    sim.end()
    v = v[int(50.0 / 0.1):]  # drop the first 50 ms
    mu, _, _ = free_membrane(DEFAULT_NEURON, DEFAULT_NOISE, -55.0)
    # Analytic <v> neglects conductance-voltage correlations (a bias of order 0.1 mV here); the
    # sampling error of 20 neurons x 2 s with ~3 ms autocorrelation and ~1 mV std is ~0.005 mV.
    assert abs(v.mean() - mu) < 0.3
    assert 0.2 < v.std() < 3.0


def _run_until_session(sim) -> list:
    sim.setup(timestep=0.1)
    sim.Population(1, sim.IF_cond_exp())
    times = [sim.run_until(12.7), sim.run_until(12.7), sim.run_until(30.0)]
    try:
        sim.run_until(20.0)
        times.append("no error")
    except ValueError:
        times.append("ValueError")
    sim.end()
    return [round(float(t), 9) if not isinstance(t, str) else t for t in times]


def test_run_until_like_pynn(backend):
    """run_until advances to the time, stays at the same time, and refuses a time in the past.

    Catches: a backend that silently ignores ``run_until`` into the past (PyNN raises ValueError;
    PyNN 0.13 scenario ``test_run_until``).
    """
    assert _run_until_session(backend.sim) == _run_until_session(backend.reference)


def test_recordings_can_be_cleared_between_runs(backend):
    """Training loops read and clear spikes every iteration (PyNN 0.13's Brian2 recorder could not)."""
    sim = backend.sim
    backend.setup(timestep=0.1, seed=1)
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
