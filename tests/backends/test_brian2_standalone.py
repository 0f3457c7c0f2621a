"""brian2_standalone: PyNN-built networks in Brian2's C++ standalone mode, compiled once per structure.

Every test here builds the same 5-neuron sampling network, so the whole module compiles one C++
project (the session's cache folder is fresh, see tests/conftest.py) and then only re-runs it.
"""

import numpy as np
import pytest

from cortexsim.backends import load_backend
from cortexsim.models.boltzmann import BoltzmannMachine, random_bm
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
    # a new setup of the same structure (other weights of the same signs: the same synapses), and
    # another duration, reuse the compiled project
    _counts(sim, seed=6, durations=[300.0, 700.0], bm=BoltzmannMachine(W=0.5 * BM.W, b=-BM.b))
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
    network = build_sampling_network(sim, BM, FIT, connectivity=~np.eye(5, dtype=bool))  # every pair
    weights = np.arange(25, dtype=float).reshape(5, 5) * 1e-4
    sim.set_projection_weights(network.projection_exc, weights)
    got = network.projection_exc.get("weight", format="array")
    mask = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(got[mask], weights[mask], rtol=1e-12)


def test_block_weights_equal_the_full_matrix_route(sim):
    """set_projection_block_weights (the ensembles' per-network route: a gather from the concatenated blocks)
    against set_projection_weights of the assembled block-diagonal matrix, on an all-to-all projection of
    three unequal blocks: equal weights on every synapse, 0 on the synapses between blocks (no run, no
    compilation). A block at the wrong offset, a transposed block or a stale cache fail it."""
    from cortexsim.backends.projection_weights import set_projection_block_weights

    sim.setup(timestep=0.1, seed=3)
    n, starts, sizes = 9, [0, 2, 6], [2, 4, 3]
    network = build_sampling_network(sim, random_bm(n, seed=4), FIT, connectivity=~np.eye(n, dtype=bool))
    projection = network.projection_exc
    rng = np.random.default_rng(8)
    for _ in range(2):  # the second round reuses the cached index with new values
        blocks = [rng.uniform(0.0, 1e-3, (size, size)) for size in sizes]
        full = np.zeros((n, n))
        for start, block in zip(starts, blocks):
            full[start:start + block.shape[0], start:start + block.shape[0]] = block
        sim.set_projection_weights(projection, full)
        expected = projection.get("weight", format="array")
        sim.set_projection_weights(projection, np.ones((n, n)))        # something else in between
        set_projection_block_weights(sim, projection, starts, blocks)
        got = projection.get("weight", format="array")
        off = ~np.eye(n, dtype=bool)
        np.testing.assert_array_equal(got[off], expected[off])
        assert np.any(got[off] > 0) and got[0, 5] == 0.0 and got[6, 3] == 0.0
    with pytest.raises(ValueError, match="non-overlapping"):
        set_projection_block_weights(sim, projection, [0, 1], [np.zeros((2, 2)), np.zeros((2, 2))])
    with pytest.raises(ValueError, match=">= 0"):
        set_projection_block_weights(sim, projection, [0], [-np.ones((2, 2))])


def test_unsupported_features_raise_a_clear_error(sim):
    sim.setup(timestep=0.1, seed=1)
    population = sim.Population(3, sim.IF_cond_exp())
    sources = sim.Population(3, sim.SpikeSourcePoisson(rate=10.0))
    sim.Projection(sources, population, sim.OneToOneConnector(), sim.StaticSynapse(weight=0.01))
    with pytest.raises(sim.StandaloneUnsupported, match="brian2"):
        sim.run(10.0)
    with pytest.raises(ValueError, match="simtime"):
        sim.run(-1.0)


# --- compiled forms, time keeping and schedules against independent references -------------------

def _deterministic_network(sim, n=8):
    """n neurons without noise, leak potentials around threshold, renewing exc (delay 0.5 ms) and static
    inh (delay 0.3 ms) all-to-all synapses with random weights: a network whose spike times depend on
    the delays, the synapse equations and the state carried between runs."""
    rng = np.random.default_rng(7)
    population = sim.Population(n, sim.IF_cond_exp(v_rest=rng.uniform(-56.0, -44.0, n), tau_refrac=4.0,
                                                   tau_syn_E=5.0, tau_syn_I=8.0, cm=0.2, tau_m=2.0))
    population.initialize(v=rng.uniform(-60.0, -50.5, n))
    population.record("spikes")
    all_to_all = sim.AllToAllConnector(allow_self_connections=False)
    exc = sim.Projection(population, population, all_to_all,
                         sim.TsodyksMarkramSynapse(U=1.0, tau_rec=5.0, tau_facil=0.0, delay=0.5,
                                                   weight=rng.uniform(0.0, 0.02, (n, n))),
                         receptor_type="excitatory")
    inh = sim.Projection(population, population, all_to_all,
                         sim.StaticSynapse(weight=rng.uniform(0.0, 0.02, (n, n)), delay=0.3), receptor_type="inhibitory")
    return population, exc, inh


def _synapse_state(projection):
    syn = projection._brian2_synapses[0][0]
    return {name: np.array(syn.variables[name].get_value()) for name in ("x_tm", "u_tm", "t_last_tm")}


@pytest.fixture
def runtime_numpy_brian2():
    """PyNN's runtime Brian2 (cortexsim's corrections) on the numpy target: nothing to compile."""
    import brian2

    previous = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"
    module = load_backend("brian2")
    yield module
    module.end()
    brian2.prefs.codegen.target = previous


def test_short_runs_keep_the_spikes_of_their_first_step(sim, runtime_numpy_brian2):
    """Runs of 0.1-5 ms, spikes read and cleared after each: the same spike times as runtime Brian2.
    Catches the compiled binary's first step running with the clock's stale time (spikes stamped 0.0
    or dropped, then neo's "first spike before t_start" on the next get_data)."""
    results = {}
    for name, module in (("runtime", runtime_numpy_brian2), ("standalone", sim)):
        module.setup(timestep=0.1, seed=1)
        population = module.Population(3, module.IF_cond_exp(v_rest=[-30.0, -20.0, -10.0], tau_refrac=0.5,
                                                              v_thresh=-50.0, v_reset=-60.0, tau_m=5.0))
        population.record("spikes")
        windows = []
        for duration in (2.0, 3.0, 0.1, 2.0, 5.0):
            module.run(duration)
            windows.append([np.asarray(st) for st in population.get_data("spikes", clear=True).segments[-1].spiketrains])
        results[name] = windows
    starts = np.cumsum([0.0, 2.0, 3.0, 0.1, 2.0])
    first_step = [any(len(t) and abs(t[0] - t0) < 1e-9 for t in window) for window, t0 in zip(results["runtime"], starts)]
    assert sum(first_step[1:]) >= 1  # some later run has a spike in its first time step
    for window_ref, window_got in zip(results["runtime"], results["standalone"]):
        for a, b in zip(window_ref, window_got):
            np.testing.assert_allclose(b, a, atol=1e-9)


def test_delays_and_parameter_schedule_match_runtime_brian2(sim, runtime_numpy_brian2):
    """The same deterministic recurrent network on runtime Brian2 (reference: one Brian2 network,
    ``set`` + ``run`` per phase) and on brian2_standalone (all phases in one launch): identical spike
    times and synapse states. Catches lost delays (the standalone backend once compiled every PyNN
    delay as 0), a schedule applied at the wrong time or to the wrong neurons, and synapse values
    permuted wrongly between PyNN's order and the compiled source order."""
    n = 8
    rng = np.random.default_rng(3)
    leaks = rng.uniform(-58.0, -42.0, (4, n))
    durations = [30.0, 20.0, 50.0, 40.0]
    results = {}
    for name, module in (("runtime", runtime_numpy_brian2), ("standalone", sim)):
        module.setup(timestep=0.1, seed=1)
        population, exc, _ = _deterministic_network(module, n)
        if name == "standalone":
            module.run_parameter_schedule(population, "v_rest", leaks, durations)
        else:
            for row, duration in zip(leaks, durations):
                population.set(v_rest=row)
                module.run(duration)
        trains = [np.asarray(st) for st in population.get_data("spikes").segments[-1].spiketrains]
        results[name] = (trains, _synapse_state(exc), np.asarray(population.get("v_rest")))
    (t_ref, s_ref, _), (t_got, s_got, v_got) = results["runtime"], results["standalone"]
    assert sum(len(t) for t in t_ref) > 50  # the network is active
    for a, b in zip(t_ref, t_got):
        np.testing.assert_allclose(b, a, atol=1e-9)
    for key in s_ref:
        np.testing.assert_allclose(s_got[key], s_ref[key], atol=1e-12)
    np.testing.assert_allclose(v_got, leaks[-1])


def test_specialised_renewing_synapses_equal_the_general_equations(sim):
    """Renewing synapses compiled in the lean form (U = 1 folded in, shared tau_rec, one exp per event;
    the exc/inh pair fused into one object) against PyNN's general Tsodyks-Markram equations: same
    seed, same spikes and the same synapse state after two runs (noise on, so every spike counts)."""
    from cortexsim.backends.brian2_standalone import synapse_forms
    from cortexsim.backends.brian2_standalone.project import describe_network
    from pyNN.brian2 import simulator

    outcome = {}
    for specialise in (True, False):
        synapse_forms.SPECIALISE = specialise
        try:
            sim.setup(timestep=0.1, seed=11)
            # both receptor synapses on every pair (a training network): the pair compiles fused
            network = build_sampling_network(sim, random_bm(6, seed=3, weight_scale=2.0), FIT,
                                             connectivity=~np.eye(6, dtype=bool))
            sim.run(150.0)
            sim.run(250.0)
            forms = [item["form"] for item in describe_network(simulator.state.network, simulator.state.t)
                     if item["kind"] == "Synapses"]
            outcome[specialise] = ([np.asarray(st) for st in network.spiketrains()],
                                   _synapse_state(network.projection_exc), _synapse_state(network.projection_inh), forms)
        finally:
            synapse_forms.SPECIALISE = True
    lean, general = outcome[True], outcome[False]
    assert lean[3] == ["renewing"] and general[3] == ["general", "general"]  # fused vs PyNN's two objects
    assert sum(len(t) for t in general[0]) > 50
    for a, b in zip(general[0], lean[0]):
        np.testing.assert_array_equal(b, a)
    for reference, got in ((general[1], lean[1]), (general[2], lean[2])):
        for key in reference:
            np.testing.assert_array_equal(got[key], reference[key])


def test_from_list_connector_in_one_pass_equals_pynns_per_cell_loop(sim):
    """The one-pass FromListConnector against PyNN's own per-target loop (pyNN.connectors'
    class) on an unsorted list with repeated pairs, weight/delay/U columns and a renewing synapse:
    identical synapses in identical order with identical values (catches wrong sorting, unit
    translation, delay rounding or parameters attached to the wrong synapse)."""
    from pyNN.connectors import FromListConnector as PyNNFromListConnector

    rng = np.random.default_rng(5)
    rows = np.column_stack([rng.integers(0, 6, 60), rng.integers(0, 5, 60), rng.uniform(0.001, 0.01, 60),
                            rng.uniform(0.1, 2.0, 60), rng.uniform(0.2, 1.0, 60)])
    got = {}
    for name, connector_class in (("one_pass", sim.FromListConnector), ("pynn", PyNNFromListConnector)):
        sim.setup(timestep=0.1, seed=1)
        pre, post = sim.Population(6, sim.IF_cond_exp()), sim.Population(5, sim.IF_cond_exp())
        projection = sim.Projection(pre, post, connector_class(rows, column_names=["weight", "delay", "U"]),
                                    sim.TsodyksMarkramSynapse(tau_rec=30.0, tau_facil=0.0), receptor_type="inhibitory")
        syn = projection._brian2_synapses[0][0]
        got[name] = {key: np.asarray(value) for key, value in (
            ("i", syn.i[:]), ("j", syn.j[:]), ("weight", syn.weight[:]), ("delay", syn.delay[:]), ("U", syn.U[:]),
            ("tau_rec", syn.tau_rec[:]), ("x_tm", syn.x_tm[:]))}
    assert len(got["pynn"]["i"]) == 60
    for key, reference in got["pynn"].items():
        np.testing.assert_array_equal(got["one_pass"][key], reference, err_msg=key)


def test_a_new_project_root_compiles_its_own_project(sim, tmp_path):
    """Benchmarks time a compilation by pointing the backend at a fresh folder; a project compiled
    earlier in the process (in another folder) must not be reused from memory."""
    _counts(sim, seed=5, durations=[10.0])  # compiled (or loaded) in the session's folder
    before = sim.compilation_count()
    sim.set_project_root(tmp_path)
    try:
        _counts(sim, seed=5, durations=[10.0])
        assert sim.compilation_count() == before + 1
        _counts(sim, seed=6, durations=[10.0])  # same folder again: reused
        assert sim.compilation_count() == before + 1
    finally:
        sim.set_project_root(None)


def test_spike_source_array_matches_runtime_brian2(sim, runtime_numpy_brian2):
    """A SpikeSourceArray (compiled as a spike table) driving neurons through delayed static synapses, run
    in two calls with input spikes in both: the same output spike times as runtime Brian2's
    SpikeGeneratorGroup. A second network with other input times compiles another project (the times are
    structure) and gives other, again equal, spikes. Catches spikes at the wrong step, a table read from
    the start of every run instead of the absolute time, and stale spike times reused from a cache."""
    def build_and_run(module, offset):
        module.setup(timestep=0.1, seed=1)
        times = [module.Sequence(np.array([1.0 + offset + 2.3 * k + 0.1 * i for k in range(12)])) for i in range(4)]
        sources = module.Population(4, module.SpikeSourceArray(spike_times=times))
        population = module.Population(4, module.IF_cond_exp(v_rest=-60.0, v_thresh=-55.0, tau_m=5.0, cm=0.2,
                                                              tau_refrac=2.0))
        population.record("spikes")
        module.Projection(sources, population, module.OneToOneConnector(),
                          module.StaticSynapse(weight=0.02, delay=1.0), receptor_type="excitatory")
        module.run(10.0)
        module.run(20.0)
        return [np.asarray(st) for st in population.get_data("spikes").segments[-1].spiketrains]

    outputs = {}
    for offset in (0.0, 0.4):
        reference, compiled = build_and_run(runtime_numpy_brian2, offset), build_and_run(sim, offset)
        assert sum(len(t) for t in reference) >= 20 and any(len(t) and t[-1] > 20.0 for t in reference)
        for a, b in zip(reference, compiled):
            np.testing.assert_allclose(b, a, atol=1e-9)
        outputs[offset] = compiled
    assert not np.allclose(outputs[0.0][0][:3], outputs[0.4][0][:3])


def _off_grid_source_response(module, timestep):
    """v of a cell driven by a SpikeSourceArray created first (off-grid times), minimal delay."""
    module.setup(timestep=timestep, min_delay=timestep, seed=1)
    times = [module.Sequence([5.0, 12.0]), module.Sequence([7.03, 18.06])]
    sources = module.Population(2, module.SpikeSourceArray(spike_times=times))
    cells = module.Population(2, module.IF_cond_exp(v_thresh=-40.0, tau_syn_E=3.0, tau_refrac=1.5))
    cells.record("v")
    module.Projection(sources, cells[0:1], module.AllToAllConnector(), module.StaticSynapse(weight=0.02),
                      receptor_type="excitatory")
    module.Projection(sources, cells[1:2], module.AllToAllConnector(),  # a delay between two 0.1 ms steps
                      module.StaticSynapse(weight=0.03, delay=0.15), receptor_type="excitatory")
    module.run(25.0)
    v = np.asarray(cells.get_data("v").segments[0].analogsignals[0].rescale("mV"))
    module.end()
    return v


def test_spike_source_array_on_a_finer_time_step_keeps_pyNN_brian2_timing(sim, runtime_numpy_brian2):
    """pyNN.brian2 leaves a SpikeSourceArray on Brian2's default clock (0.1 ms) at any time step, so its
    times are binned to 0.1 ms (7.03 ms fires at 7.0 ms), and Brian2 runs the pathway on the source's
    clock, so delays are rounded to whole 0.1 ms steps, half up (0.01 -> 0, 0.15 -> 0.2 ms). With the
    source created first, the compiled network once took the source's 0.1 ms as its own step (EPSPs 0.1 ms
    late, 0.56 mV apart at dt 0.01 ms); with the delays unrounded its EPSPs came one step (0.01 ms) late
    (0.018 mV apart) or 0.05 ms early. Same membrane as runtime Brian2 at dt 0.01 ms within 0.002 mV
    (measured: numerical differences of the two code paths ~3e-4 mV)."""
    reference = _off_grid_source_response(runtime_numpy_brian2, 0.01)
    compiled = _off_grid_source_response(sim, 0.01)
    assert compiled.shape == reference.shape and (reference.max(axis=0) > reference[0] + 1.0).all()
    assert np.abs(compiled - reference).max() < 0.002


def test_spike_source_array_refused_when_the_step_does_not_divide_the_generators(sim):
    """At dt 0.03 ms the generator's 0.1 ms steps fall between network steps: refused, naming both."""
    sim.setup(timestep=0.03, min_delay=0.03, seed=1)
    sources = sim.Population(2, sim.SpikeSourceArray(spike_times=[sim.Sequence([5.0]), sim.Sequence([6.0])]))
    cells = sim.Population(1, sim.IF_cond_exp())
    sim.Projection(sources, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.02))
    with pytest.raises(NotImplementedError, match=r"0\.1 ms.*0\.03 ms"):
        sim.run(10.0)
    sim.end()
