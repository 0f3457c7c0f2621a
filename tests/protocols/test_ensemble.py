"""Ensembles on NEST: determinism without Poisson sources, noise modes, in-place updates, bad input."""

from dataclasses import replace

import numpy as np
import pytest

from cortexsim.backends import load_backend
from cortexsim.models.boltzmann import BoltzmannMachine, block_diagonal, random_bm
from cortexsim.models.ensemble import EnsembleBackground, build_ensemble, matched_background
from cortexsim.parameters import DEFAULT_NOISE, ActivationFit
from cortexsim.protocols.ensemble import EnsembleConfig

nest = pytest.importorskip("nest")

FIT = ActivationFit(v_p05=-50.61, alpha=0.82)  # references §1 (default set, Poisson noise)
M, N, K = 12, 5, 10
BACKGROUND = matched_background(DEFAULT_NOISE, K, 50.0, delay_max_ms=10.0)


def node_models() -> set:
    models = nest.GetNodes().get("model")
    return {models} if isinstance(models, str) else set(models)


def run(mode: str, sim_seed: int, network_seed: int, duration_ms: float = 500.0):
    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=sim_seed)
    bms = [random_bm(N, seed=50 + m) for m in range(M)]
    ensemble = build_ensemble(sim, bms, FIT, mode=mode, background=BACKGROUND, seed=network_seed)
    sim.run(duration_ms)
    spikes = [np.asarray(st.magnitude) for st in ensemble.spiketrains()]
    models = node_models()
    sim.end()
    return spikes, models, ensemble


def test_ensemble_mode_is_deterministic_and_has_no_poisson_generator():
    first, models, ensemble = run("ensemble", sim_seed=1, network_seed=7)
    # Kernel seeds differ: nothing random is left in ensemble mode, so the spikes must not change.
    second, models_again, _ = run("ensemble", sim_seed=2, network_seed=7)
    assert not any("poisson" in name for name in models | models_again), models
    assert "spike_generator" in models  # the deterministic kick
    total = sum(s.size for s in first)
    assert total > 100, "the ensemble must be active for the comparison to mean anything"
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert ensemble.sources_exc.shape == (M * N, K)
    # Another connectivity/kick seed gives another trajectory.
    other, _, _ = run("ensemble", sim_seed=1, network_seed=8)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_poisson_and_mixture_modes_use_poisson_generators():
    _, poisson_models, poisson = run("poisson", sim_seed=1, network_seed=7, duration_ms=100.0)
    assert "poisson_generator" in poisson_models and poisson.sources_exc is None
    _, mixture_models, mixture = run("mixture", sim_seed=1, network_seed=7, duration_ms=100.0)
    assert "poisson_generator" in mixture_models and mixture.sources_exc is not None


@pytest.mark.parametrize("path", ["set_bms", "set_parameters"])
def test_set_bms_updates_weights_and_leaks_in_place(path):
    """The per-network (block) translation and write of set_bms / set_parameters against the translation of
    the whole block-diagonal BM (the dense path it replaced), read back from the simulator."""
    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=1)
    bms = [random_bm(N, seed=m) for m in range(M)]
    ensemble = build_ensemble(sim, bms, FIT, background=BACKGROUND, seed=1)
    new = [random_bm(N, seed=100 + m) for m in range(M)]
    if path == "set_bms":
        ensemble.set_bms(new)
    else:
        ensemble.set_parameters(block_diagonal(new).W, block_diagonal(new).b)
    from cortexsim.models.lif_translation import bm_to_lif
    expected = bm_to_lif(block_diagonal(new), ensemble.neuron, ensemble.translation_noise, FIT)
    assert np.array_equal(ensemble.e_leak, expected.e_leak)
    blocks = block_diagonal([BoltzmannMachine(np.ones((N, N)) - np.eye(N), np.zeros(N))] * M).W > 0
    for receptor, magnitudes in (("excitatory", expected.excitatory_weights),
                                 ("inhibitory", expected.inhibitory_weights)):
        # every weight on a synapse of its receptor (grown where the sign changed), none elsewhere
        total = sum(np.nan_to_num(p.get("weight", format="array")) for p in ensemble.recurrent.projections[receptor])
        assert np.allclose(total, magnitudes, rtol=1e-9, atol=1e-12)
        exists = ensemble.recurrent.has_synapse(receptor)
        assert not np.any(exists & ~blocks)  # block-diagonal only, no self-connections
        assert np.all(exists[magnitudes > 0])
    assert np.allclose(ensemble.population.get("v_rest"), expected.e_leak)
    with pytest.raises(ValueError, match="expected 12 BMs"):
        ensemble.set_bms(new[:-1])
    sim.end()


def test_bad_input_raises_clear_errors():
    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=1)
    bms = [random_bm(N, seed=m) for m in range(3)]
    with pytest.raises(ValueError, match="at least M = 2"):
        build_ensemble(sim, bms[:1], FIT, mode="ensemble")
    with pytest.raises(ValueError, match=r"in_degree K = 6 needs 2K = 12"):
        build_ensemble(sim, bms, FIT, mode="mixture", background=EnsembleBackground(in_degree=6))
    with pytest.raises(ValueError, match="source_sharing='disjoint'"):  # 3 networks: disjoint needs 2K <= 2
        build_ensemble(sim, bms, FIT, background=EnsembleBackground(in_degree=2, source_sharing="disjoint"))
    with pytest.raises(ValueError, match="mode must be one of"):
        build_ensemble(sim, bms, FIT, mode="white")
    with pytest.raises(ValueError, match="same number of neurons"):
        build_ensemble(sim, [random_bm(3, seed=1), random_bm(4, seed=1)], FIT)
    build_ensemble(sim, bms[:1], FIT, mode="poisson")  # one Poisson-driven network is fine
    sim.end()
    with pytest.raises(ValueError, match="at least M = 2"):
        EnsembleConfig(seed=1, n_networks=1)
    with pytest.raises(ValueError, match="2K = 200"):
        EnsembleConfig(seed=1, n_networks=10, in_degree=100)
    with pytest.raises(ValueError, match="source_sharing='disjoint'.*use K <= 24"):
        EnsembleConfig(seed=1, n_networks=50, in_degree=25, source_sharing="disjoint")
    with pytest.raises(ValueError, match="source_sharing must be one of"):
        EnsembleConfig(seed=1, source_sharing="overlapping")


@pytest.mark.parametrize("kind", ["depressing", "static"])
def test_background_synapse_kind(kind):
    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=1)
    bms = [random_bm(N, seed=m) for m in range(M)]
    background = matched_background(DEFAULT_NOISE, K, 50.0, synapse=kind, tau_rec_ms=40.0)
    ensemble = build_ensemble(sim, bms, FIT, background=background, seed=1)
    projection = ensemble.created["background_exc"]
    assert len(projection) == M * N * K
    weights = np.asarray(projection.get("weight", format="list", with_address=False))
    assert np.allclose(weights, background.weight_exc)
    models = set(np.atleast_1d(projection.nest_connections.get("synapse_model")))
    assert len(models) == 1
    if kind == "depressing":
        assert "tsodyks" in models.pop()
        assert np.allclose(projection.get("U", format="list", with_address=False), 1.0)
        assert np.allclose(projection.get("tau_rec", format="list", with_address=False), 40.0)
        assert background.weight_exc == pytest.approx(3.0 * matched_background(DEFAULT_NOISE, K, 50.0,
                                                                                synapse="static").weight_exc)
    else:
        assert models.pop().startswith("static_synapse")
    sim.end()


def background_correlation_time(kind: str, seed: int) -> float:
    """Free-membrane correlation time (ms) under an ensemble background of 50 x 5 neurons, K = 30."""
    from cortexsim.analysis.background import membrane_statistics

    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=1)
    bms = [random_bm(N, seed=50 + m) for m in range(50)]
    background = matched_background(DEFAULT_NOISE, 30, 50.0, delay_max_ms=10.0, synapse=kind)
    ensemble = build_ensemble(sim, bms, FIT, background=background, seed=seed, membrane_probes=np.full(10, FIT.v_p05))
    sim.run(3200.0)
    v = np.asarray(ensemble.probes.get_data("v").segments[-1].analogsignals[0].magnitude)[2000::10]  # 1 ms grid
    sim.end()
    return membrane_statistics(v, dt_ms=1.0, max_lag_ms=100.0).correlation_time_ms


def test_depressing_background_fluctuates_faster_than_static():
    """The reason for the default: static synapses pass on the sources' bursts (a slow background)."""
    taus = {kind: background_correlation_time(kind, seed=7) for kind in ("static", "depressing")}
    # benchmarks/ensemble_background_timescales.py (same size): 35 ms static vs 3.0 ms depressing;
    # per-probe values at this size over connectivity seeds 1-6 were 0.4-4.9 ms depressing. Each
    # acf lag has a sampling error ~ 1/sqrt(10 probes x 3000 samples) = 0.006, i.e. well under 1 ms
    # on the 100-lag integral for white lags: a factor 3 leaves a wide margin.
    assert taus["static"] > 3.0 * taus["depressing"], taus


def test_deterministic_ensemble_resumes_bit_identically_from_its_checkpoint(tmp_path):
    """CD training of a deterministic ensemble in segments: stopped after the first checkpoint and resumed
    from the JSON file, it ends with exactly the parameters of the uninterrupted run."""
    import json

    from cortexsim.protocols.cd_engine import CDSettings, CDState
    from cortexsim.protocols.ensemble import RunSettings, train
    from cortexsim.parameters import DEFAULT_NEURON

    sim = load_backend("nest")
    settings = RunSettings(dt_ms=0.1, burn_in_ms=50.0, network_seed=7, background=BACKGROUND,
                           neuron=DEFAULT_NEURON, noise=DEFAULT_NOISE)
    training = CDSettings(iterations=4, sampling_ms=200.0, sampling_end_ms=300.0, learning_rate=1.0,
                          schedule="inverse", schedule_tau=10.0, momentum=0.5, dt_ms=0.1, average_fraction=0.5,
                          checkpoint_every=2, burn_in_ms=50.0)
    targets = [random_bm(N, seed=50 + m) for m in range(M)]
    starts = [random_bm(N, seed=80 + m, weight_scale=0.3, bias_scale=0.3) for m in range(M)]
    whole, history = train(sim, settings, training, targets, starts, FIT, "ensemble", DEFAULT_NOISE, sim_seed=3)
    path = tmp_path / "checkpoint.json"
    stopped, _ = train(sim, settings, training, targets, starts, FIT, "ensemble", DEFAULT_NOISE, sim_seed=3,
                       save=lambda state: path.write_text(json.dumps(state.to_dict())), stop_after_iteration=2)
    assert stopped is None
    state = CDState.from_dict(json.loads(path.read_text()))
    assert state.iteration == 2
    resumed, resumed_history = train(sim, settings, training, targets, state, FIT, "ensemble", DEFAULT_NOISE,
                                     sim_seed=3)
    for a, b in zip(whole, resumed):
        assert np.array_equal(a.W, b.W) and np.array_equal(a.b, b.b)
    assert history["dkl_sampled_target"] == resumed_history["dkl_sampled_target"]
    assert history["sampling_ms"] == [200.0, 233.3, 266.7, 300.0]
    assert not np.array_equal(whole[0].W, starts[0].W)  # training changed the parameters


def test_sampling_network_update_path_sets_what_pynn_reads_back():
    """set_parameters (the one in-place path, fast route on NEST) against PyNN's own Projection.get.

    Regression: NEST re-sorts connections at the first Simulate after connections were created, so a
    connection index read at build time put later weights on the wrong synapses (7 neurons: errors of
    several nS). Updates before and after runs, and after more connections were added, must all land.
    """
    from cortexsim.models.lif_translation import bm_to_lif
    from cortexsim.models.sampling_network import build_sampling_network

    n = 7
    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=1)
    off = ~np.eye(n, dtype=bool)
    # both receptor synapses on every pair (a training network): every weight is readable on both projections
    network = build_sampling_network(sim, random_bm(n, seed=1), FIT, connectivity=off)

    def check(bm):
        expected = bm_to_lif(bm, network.neuron, network.noise, FIT)
        for projection, weights in ((network.projection_exc, expected.excitatory_weights),
                                    (network.projection_inh, expected.inhibitory_weights)):
            got = projection.get("weight", format="array")
            np.testing.assert_allclose(got[off], weights[off], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(network.population.get("v_rest"), expected.e_leak, rtol=1e-12)
        assert np.any(expected.excitatory_weights[off] > 0) and np.any(expected.inhibitory_weights[off] > 0)
        return expected

    check(network.bm)                               # build: written before the first Simulate
    for seed in (2, 3):
        sim.run(50.0)
        new = random_bm(n, seed=seed)
        network.set_parameters(new.W, new.b)
        expected = check(new)
    extra = sim.Population(n, sim.SpikeSourcePoisson(rate=5.0))     # connections created after a run
    sim.Projection(extra, network.population, sim.OneToOneConnector(), sim.StaticSynapse(weight=0.001))
    new = random_bm(n, seed=4)
    network.set_parameters(new.W, new.b)
    sim.run(50.0)
    check(new)
    network.set_parameters(new.W + 0.1 * off, new.b)
    expected = check(random_bm(n, seed=4).__class__(new.W + 0.1 * off, new.b))
    network.clamp(np.array([0, 3]), np.array([1.0, 0.0]), 40.0)
    v_rest = network.population.get("v_rest")
    assert v_rest[0] == pytest.approx(FIT.v_p05 + 40 * FIT.alpha) and v_rest[3] == pytest.approx(FIT.v_p05 - 40 * FIT.alpha)
    network.release()
    np.testing.assert_allclose(network.population.get("v_rest"), expected.e_leak, rtol=1e-12)
    sim.end()


def test_ensemble_clamps_and_releases_like_a_sampling_network():
    """Data tasks clamp units of an ensemble through the same leak-potential route (ClampedStatistics)."""
    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=1)
    bms = [random_bm(N, seed=m) for m in range(M)]
    ensemble = build_ensemble(sim, bms, FIT, background=BACKGROUND, seed=1)
    free = np.asarray(ensemble.population.get("v_rest"), dtype=float)
    units = np.array([0, N + 2, 3 * N + 4])
    ensemble.clamp(units, np.array([1.0, 0.0, 1.0]), 40.0)
    clamped = np.asarray(ensemble.population.get("v_rest"), dtype=float)
    expected = free.copy()
    expected[units] = FIT.v_p05 + FIT.alpha * 40.0 * np.array([1.0, -1.0, 1.0])
    np.testing.assert_allclose(clamped, expected)
    ensemble.release()
    np.testing.assert_allclose(ensemble.population.get("v_rest"), free)
    sim.end()


def test_hidden_source_units_drive_every_background_and_probe_and_set_the_source_rate():
    """``first_source_unit``: the built projections (read back from PyNN) connect only units past it, the probes
    draw from the same pool, and the measured source rate is those units' mean rate, not all neurons'."""
    from cortexsim.protocols.ensemble import background_run_settings, measure_background
    config = EnsembleConfig(seed=3, n_networks=8, n_neurons=5, in_degree=4, calibration_ms=400.0,
                            calibration_points=7, calibration_groups=2, membrane_probes=2)
    settings = background_run_settings(config, "nest")
    hidden = replace(settings, background=replace(settings.background, first_source_unit=2))
    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=1)
    bms = [random_bm(5, seed=m) for m in range(8)]
    ensemble = build_ensemble(sim, bms, FIT, background=hidden.background, seed=2,
                              activation_probes=np.full((2, 3), FIT.v_p05))
    for name in ("background_exc", "background_inh", "probe_exc", "probe_inh"):
        pre = np.array([int(c[0]) for c in ensemble.created[name].get("weight", format="list")])
        assert pre.size and np.all(pre % 5 >= 2), name       # pre-synaptic: units 2, 3, 4 of a network only
    sim.end()
    bg = measure_background(sim, config, hidden, bms, FIT, "ensemble")
    rates = np.asarray(bg["rates_hz"]).reshape(8, 5)
    assert bg["source_rate_hz"] == pytest.approx(rates[:, 2:].mean())
    assert abs(rates[:, 2:].mean() - rates.mean()) > 1e-6    # the choice matters for these networks
