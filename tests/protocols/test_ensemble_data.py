"""Ensembles that learn from data (``cortexsim ensemble --task digits|mnist``) on NEST, at a tiny size.

The activation function is the measured default-set fit of references §1 (no calibration runs here).
"""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest

from cortexsim.parameters import ActivationFit

pytest.importorskip("nest")
pytest.importorskip("pyNN")

from cortexsim.models.rbm_readout import occlusion_mask  # noqa: E402
from cortexsim.protocols import ensemble_data as protocol  # noqa: E402
from cortexsim.protocols.cd_digits import load_digits_split  # noqa: E402

FIT = ActivationFit(v_p05=-50.61, alpha=0.82)
TINY = dict(seed=4, n_networks=3, n_hidden=8, in_degree=10, batch_size=10, clamp_ms=60.0, settle_ms=20.0,
            model_ms=400.0, eval_settle_ms=10.0, eval_read_ms=30.0, eval_gibbs_sweeps=5, eval_gibbs_burn_in=1,
            calibration_ms=2000.0, calibration_points=25, calibration_groups=1, membrane_probes=1)


def _spikes(network, sim, duration_ms):
    sim.run(duration_ms)
    trains = [np.asarray(st.magnitude) for st in network.spiketrains()]
    sim.end()
    return trains


def test_ensemble_mode_has_no_random_source_after_the_kick():
    """In ensemble mode the only sources are the other networks and the kick: two simulator seeds give
    the SAME spikes (no random process), the built network holds no Poisson generator, and the kick's
    spike times end within kick_ms. Poisson mode, built by the same factory, differs between seeds."""
    import nest

    from cortexsim.backends.registry import load_backend
    from cortexsim.protocols.ensemble import background_run_settings

    config = protocol.EnsembleDataConfig(**TINY)
    sim = load_backend("nest")
    n = config.n_networks * config.n_units
    rng = np.random.default_rng(0)
    W = np.zeros((n, n))
    mask = protocol._mask(config)
    W[mask > 0] = 0.0
    upper = np.triu(mask) > 0
    W[upper] = rng.normal(0.0, 0.5, upper.sum())
    W = W + W.T
    b = rng.normal(-0.5, 0.5, n)
    kick_ms = background_run_settings(config, "nest").background.kick_ms
    spikes = {}
    for mode in ("ensemble", "poisson"):
        for sim_seed in (11, 12):
            network = protocol.network_factory(sim, config, mode, FIT, config.noise, sim_seed)(sim, W, b, 0)
            models = set(nest.GetNodes().get("model"))
            if mode == "ensemble":
                # every stimulating device: only the kick's spike_generator (recorders and PyNN's parrot relay
                # of the kick are not sources)
                assert {m for m in models if m.endswith("generator")} == {"spike_generator"}, models
                kick_times = np.concatenate([np.atleast_1d(t) for t in
                                             nest.GetNodes({"model": "spike_generator"}).get("spike_times")])
                # kick times lie on [1 ms + dt, 1 ms + kick_ms] (kick_spike_times), as NEST holds them
                assert kick_times.size > 0 and kick_times.max() <= kick_ms + 1.0 + 1e-9
            else:
                assert "poisson_generator" in models
            spikes[mode, sim_seed] = _spikes(network, sim, 600.0)
    total = sum(t.size for t in spikes["ensemble", 11])
    assert total > 100   # the ensemble is active, not silent
    assert all(np.array_equal(a, c) for a, c in zip(spikes["ensemble", 11], spikes["ensemble", 12]))
    assert not all(np.array_equal(a, c) for a, c in zip(spikes["poisson", 11], spikes["poisson", 12]))


def _exact_log_likelihood(W_vh, b_v, b_h, data):
    """Mean exact log-likelihood (nats) of binary visible rows under an RBM; log Z by enumerating the
    2**n_hidden hidden states (scipy; independent of the package's code)."""
    from scipy.special import logsumexp

    free = data @ b_v + np.sum(np.logaddexp(0.0, b_h + data @ W_vh), axis=1)
    hidden = ((np.arange(2 ** len(b_h))[:, None] >> np.arange(len(b_h))[::-1]) & 1).astype(float)
    log_z = logsumexp(hidden @ b_h + np.sum(np.logaddexp(0.0, b_v + hidden @ W_vh.T), axis=1))
    return float(np.mean(free) - log_z)


def _assert_every_network_learned(config, start, W, b, data, min_gain_nats=2.0):
    """Each network's exact log-likelihood of the training rows rose by more than ``min_gain_nats``."""
    from cortexsim.protocols.cd_engine import block_slices

    V = config.n_visible
    for s in block_slices([config.n_units] * (len(b) // config.n_units)):
        parts = [(M[s, s][:V, V:], v[s][:V], v[s][V:]) for M, v in
                 ((start.W, start.b), (W, b))]
        before, after = (_exact_log_likelihood(*p, data) for p in parts)
        assert after - before > min_gain_nats, (before, after)


def test_noise_free_ensemble_learns_digits_and_reads_out_every_network():
    """Spiking CD in ensemble mode (no Poisson source) from a near-zero start: 8 updates must raise
    the exact log-likelihood of the training images in EVERY network. Size of the effect, as for the
    digits task: the first updates move the label biases from p = 0.5 towards 0.1 and the pixel biases
    towards the pixel means, worth several nats per network; the spiking model statistics (400 ms
    free per update) scatter each step but cannot reverse the visible-bias part. A CD sign error,
    data clamped onto the wrong units or one network's statistics given to another fail it.
    Then the evaluation's bookkeeping: with the rotation of images over networks, the clamped pixel
    units of network m must show exactly the pixels of the image scored for it."""
    from cortexsim.backends.registry import load_backend
    from cortexsim.models.boltzmann import block_diagonal
    from cortexsim.protocols.cd_digits import initial_rbm

    config = protocol.EnsembleDataConfig(**TINY, train_iterations=8, learning_rate=0.05, schedule="constant",
                                         momentum=0.0, weight_decay=0.0, checkpoint_every=8)
    data, _, test_x, test_y = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)
    start = block_diagonal([initial_rbm(config.n_hidden, np.random.default_rng(m)) for m in range(3)])
    sim = load_backend("nest")
    factory = protocol.network_factory(sim, config, "ensemble", FIT, config.noise, 21)
    state = protocol.train_networks(sim, config, factory, start.W, start.b,
                                    protocol.ensemble_training_data(data, 3, config.seed), test_x[:20], test_y[:20])
    W, b = state.trained(config.cd_settings(), protocol._mask(config))
    _assert_every_network_learned(config, start, W, b, data)
    assert len(state.history["segment_exact_accuracy"][0]) == 3
    pixels = test_x[:5]
    completion = {"random30": (pixels, occlusion_mask("random30", 5, 8, np.random.default_rng(3)))}
    readouts = protocol.evaluate_networks(sim, config, factory, W, b, test_x[:5], completion)
    for m in range(3):
        assert np.array_equal(readouts["classify"][m, :, :64] > 0.5, test_x[:5] > 0.5)
        shown = ~completion["random30"][1]
        assert np.array_equal((readouts["random30"][m, :, :64] > 0.5)[shown], (pixels > 0.5)[shown])
    scores = protocol.score_networks(readouts, test_y[:5], completion)
    assert len(scores["accuracy"]) == 3 and 0 <= scores["vote_accuracy"] <= 1


def test_cli_digits_ensemble_writes_summary_and_figures(tmp_path, monkeypatch, capsys):
    """``cortexsim ensemble --task digits`` at a tiny size: the issue's summary keys, both noise modes
    trained and scored (every network and the vote), the figures written."""
    from cortexsim.cli import main

    original = protocol.run_ensemble_data
    monkeypatch.setattr(protocol, "run_ensemble_data", lambda config, **kw: original(config, poisson_fit=FIT, **kw))
    assert main(["ensemble", "--task", "digits", "--networks", "3", "--hidden", "8", "--in-degree", "10",
                 "--train-iterations", "2", "--batch-size", "2", "--model-ms", "60", "--test-images", "6",
                 "--completion-images", "3", "--eval-read", "30", "--calibration-duration", "2000",
                 "--calibration-groups", "1", "--membrane-probes", "1", "--checkpoint-every", "1",
                 "--seed", "3", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    for key in ("ensemble_test_accuracy", "poisson_test_accuracy", "ensemble_completion_error",
                "poisson_completion_error", "ensemble_vote_test_accuracy", "ensemble_untrained_test_accuracy",
                "exact_baseline_test_accuracy"):
        assert 0.0 <= results["summary"][key] <= 1.0, key
    for condition in ("poisson_untrained", "poisson_trained", "ensemble_untrained", "ensemble_trained"):
        assert len(results["scores"][condition]["accuracy"]) == 3
        assert set(results["scores"][condition]["completion_error"]) == {"half", "quarter", "random30"}
    assert results["noise_sources"]["ensemble"] == ["background_exc", "background_inh", "kick"]
    assert len(results["training_history"]["ensemble"]["segment_exact_accuracy"]) == 2
    for name in results["files"].values():
        assert (tmp_path / name).stat().st_size > 1000
    assert "ensemble_test_accuracy: " in capsys.readouterr().out


@pytest.mark.parametrize("args, needle", [
    (["--networks", "1"], "n_networks"),
    (["--occlusions", "half,third"], "occlusions"),
    (["--hidden", "0"], "n_hidden"),
    (["--neurons", "5"], "--neurons applies to --task target"),
    (["--eval-read", "-5"], "eval_read_ms"),
])
def test_cli_refuses_bad_digits_ensemble_settings_before_running(args, needle, tmp_path, capsys):
    from cortexsim.cli import main

    assert main(["ensemble", "--task", "digits", *args, "--out", str(tmp_path / "o")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()


@pytest.mark.parametrize("backend, source", [("nest", "recorded SpikeSourcePoisson"),
                                             ("brian2_standalone", "drawn with numpy")])
def test_poisson_background_measurement_runs_on_both_routes(backend, source):
    """Poisson-mode background statistics: NEST records PyNN's SpikeSourcePoisson as before; the compiled
    route, which cannot build it, gets the same trains (number, rate R / K) drawn with numpy instead of
    refusing the run. Both report where the figures come from and the Poisson rate R / K per input
    (3000 Hz / K = 300 Hz; 2 K = 20 inputs x 2 s per target: ~12,000 spikes, 5 sigma = 4.6 %), with the
    network's free membrane measured in the same run."""
    from cortexsim.backends.registry import backend_info, load_backend
    from cortexsim.models.boltzmann import BoltzmannMachine
    from cortexsim.protocols.ensemble import background_run_settings, measure_background

    config = protocol.EnsembleDataConfig(**{**TINY, "backend": backend})
    settings = background_run_settings(config, backend)
    rng = np.random.default_rng(1)
    bms = [BoltzmannMachine(np.zeros((config.n_units,) * 2), rng.normal(-0.5, 0.3, config.n_units))
           for _ in range(config.n_networks)]
    assert backend_info(backend).capabilities.poisson_sources == (backend == "nest")
    bg = measure_background(load_backend(backend), config, settings, bms, FIT, "poisson")
    assert source in bg["inputs_source"]
    expected = config.noise.rate_exc / settings.background.in_degree
    assert np.allclose(bg["inputs"].rate_hz, expected, rtol=0.05)
    assert np.all(bg["inputs"].abs_correlation < 0.1)
    assert np.isfinite(bg["membrane"].summary()["mean_mv"]) and np.mean(bg["rates_hz"]) > 0


def test_per_network_engine_state_trains_as_the_full_matrices_on_nest(tmp_path, monkeypatch):
    """The engine state held per network (train_networks: blocks) against the same training with full (n, n)
    matrices (train_cd without blocks, everything else equal), on NEST: 3 networks, momentum and weight decay,
    4 updates in segments of 2. The block run also stops after the first segment and resumes from
    its JSON checkpoint (compact: each block's bytes). Trained weights and biases equal to 1e-12, and the
    checkpoint of the per-network state is a small fraction of the full one's."""
    from cortexsim.backends.registry import load_backend
    from cortexsim.models.boltzmann import block_diagonal
    from cortexsim.protocols import cd_engine
    from cortexsim.protocols.cd_digits import initial_rbm

    config = protocol.EnsembleDataConfig(**TINY, train_iterations=4, learning_rate=0.05, schedule="constant",
                                         momentum=0.5, weight_decay=0.001, checkpoint_every=2)
    data, _, test_x, test_y = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)
    start = block_diagonal([initial_rbm(config.n_hidden, np.random.default_rng(m)) for m in range(3)])
    training = protocol.ensemble_training_data(data, 3, config.seed)
    sim = load_backend("nest")
    factory = protocol.network_factory(sim, config, "ensemble", FIT, config.noise, 21)
    settings, mask = config.cd_settings(), protocol._mask(config)
    saved = {}

    def save(state, key):
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(state.to_dict()))
        saved[key] = path

    # per-network state, stopped after the first segment and resumed from its checkpoint
    assert protocol.train_networks(sim, config, factory, start.W, start.b, training, test_x[:5], test_y[:5],
                                   save=lambda st: save(st, "blocks"), stop_after_iteration=2) is None
    resumed = cd_engine.CDState.from_dict(json.loads(saved["blocks"].read_text()))
    assert resumed.iteration == 2 and "diagonal_blocks" in json.loads(saved["blocks"].read_text())["W"]
    blocks_state = protocol.train_networks(sim, config, factory, start.W, start.b, training, test_x[:5],
                                           test_y[:5], state=resumed)
    # full matrices: the engine without blocks (the statistics unchanged)
    real_train_cd = cd_engine.train_cd

    def dense_train_cd(*args, blocks=None, **kwargs):
        return real_train_cd(*args, blocks=None, **kwargs)

    monkeypatch.setattr(protocol, "train_cd", dense_train_cd)
    dense = cd_engine.CDState.fresh(start.W, start.b, settings, mask,
                                    rng=np.random.default_rng(protocol.derive_seed(config.seed, 13)))
    dense_state = protocol.train_networks(sim, config, factory, start.W, start.b, training, test_x[:5], test_y[:5],
                                          state=dense, save=lambda st: save(st, "dense"))
    assert isinstance(dense_state.W, np.ndarray)
    for got, want in zip(blocks_state.trained(settings, mask), dense_state.trained(settings, mask)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(blocks_state.W), dense_state.W, rtol=0, atol=1e-12)
    assert not np.allclose(dense_state.W, start.W)        # it trained
    assert saved["blocks"].stat().st_size < 0.5 * saved["dense"].stat().st_size


def _staggered_tracked_setup(tracking: str):
    """3 networks in 3 stagger groups, 8 updates in segments of 4, ``background_tracking=tracking``, on NEST:
    (config, training rows, test images, test labels, block-diagonal start, sim, ensemble-mode factory)."""
    from cortexsim.backends.registry import load_backend
    from cortexsim.models.boltzmann import block_diagonal
    from cortexsim.protocols.cd_digits import initial_rbm

    config = protocol.EnsembleDataConfig(**TINY, train_iterations=8, learning_rate=0.05, schedule="constant",
                                         momentum=0.0, weight_decay=0.0, checkpoint_every=4, stagger_groups=3,
                                         background_tracking=tracking)
    data, _, test_x, test_y = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)
    start = block_diagonal([initial_rbm(config.n_hidden, np.random.default_rng(m)) for m in range(3)])
    sim = load_backend("nest")
    return config, data, test_x, test_y, start, sim, protocol.network_factory(sim, config, "ensemble", FIT,
                                                                              config.noise, 21)


def test_staggered_tracked_training_learns_and_follows_the_source_rate(monkeypatch):
    """The fixes of session 3 on: 3 networks in 3 stagger groups, the translation following the measured
    source rate, segments of 4 updates. As the unstaggered test above, 8 updates must raise every network's
    exact log-likelihood by > 2 nats (networks read in the wrong windows, or a data phase without its clamp,
    fail it); the second segment is built with the first segment's recorded mean rate (the first with the
    calibration), and the factory then builds with the equivalent noise at that rate and the moved fit;
    with a background factor ("weights"), with the base background weights times it."""
    from cortexsim.models.ensemble import equivalent_noise
    from cortexsim.models.lif_translation import transferred_fit
    from cortexsim.protocols.ensemble import background_run_settings

    config, data, test_x, test_y, start, sim, factory = _staggered_tracked_setup("translation")
    built = []

    def recording(sim, W, b, first_iteration, **kwargs):
        built.append(kwargs)
        return factory(sim, W, b, first_iteration, **kwargs)

    state = protocol.train_networks(sim, config, recording, start.W, start.b,
                                    protocol.ensemble_training_data(data, 3, config.seed), test_x[:20], test_y[:20],
                                    mode="ensemble", calibrated_rate_hz=40.0)
    W, b = state.trained(config.cd_settings(), protocol._mask(config))
    _assert_every_network_learned(config, start, W, b, data)
    rates = state.history["mean_rate_hz"]
    assert len(rates) == 8 and all(r > 0 for r in rates)
    expected = {"source_rate_hz": pytest.approx(float(np.mean(rates[:4])))}
    assert built == [{}, expected] and state.history["segment_tracking"] == [{}, expected]
    # what the factory builds: (background, fit, translation noise)
    captured = []

    def capture(sim, settings, bms, fit, mode, noise, *args, **kwargs):
        captured.append((settings.background, fit, noise))
        raise RuntimeError("captured")

    monkeypatch.setattr(protocol, "build", capture)
    for kwargs in ({}, {"source_rate_hz": 12.5}, {"background_scale": 1.7}):
        with pytest.raises(RuntimeError, match="captured"):
            factory(sim, W, b, 0, **kwargs)
    base = background_run_settings(config, "nest").background
    assert captured[0] == (base, FIT, config.noise)
    moved_noise = equivalent_noise(base, "ensemble", config.noise, 12.5)
    assert captured[1] == (base, transferred_fit(FIT, config.neuron, config.noise, moved_noise), moved_noise)
    assert captured[2][1:] == (FIT, config.noise)
    assert captured[2][0].weight_exc == pytest.approx(1.7 * base.weight_exc)
    assert captured[2][0].weight_inh == pytest.approx(1.7 * base.weight_inh)


def test_per_neuron_tracking_moves_each_leak_by_its_own_background_and_keeps_it_through_updates():
    """``background_tracking="translation_units"``: 3 networks in 3 stagger groups, segments of 4 updates. Every
    segment records each neuron's released background weight per second; for depressing synapses (U = 1) a spike
    releases at most 1 and, at an ISI >= tau_ref, at least 1 - exp(-tau_ref / tau_rec), so the mean efficacy lies
    between those fractions of the measured mean rate (a wrong duration or a lost spike count fails). The second
    segment's network gets the leak offsets of ``unit_leak_offsets`` from the FIRST segment's efficacies, and
    keeps them after every CD update (the translated leak of its final parameters plus the offsets), which an
    update that rewrites the leaks without them fails. Training still raises every network's log-likelihood."""
    from cortexsim.models.ensemble_background import unit_leak_offsets
    from cortexsim.models.lif_translation import bm_to_lif

    config, data, test_x, test_y, start, sim, factory = _staggered_tracked_setup("translation_units")
    built, networks, leaks_at_build = [], [], []

    def recording(sim, W, b, first_iteration, **kwargs):
        built.append(kwargs)
        networks.append(factory(sim, W, b, first_iteration, **kwargs))
        leaks_at_build.append(np.array(networks[-1].e_leak))
        return networks[-1]

    state = protocol.train_networks(sim, config, recording, start.W, start.b,
                                    protocol.ensemble_training_data(data, 3, config.seed), test_x[:20], test_y[:20],
                                    mode="ensemble", calibrated_rate_hz=40.0)
    W, b = state.trained(config.cd_settings(), protocol._mask(config))
    _assert_every_network_learned(config, start, W, b, data)
    efficacies = [np.asarray(e) for e in state.history["segment_source_efficacy_hz"]]
    rates = state.history["mean_rate_hz"]
    assert len(efficacies) == 2 and all(e.shape == (3 * config.n_units,) for e in efficacies)
    least = 1.0 - np.exp(-config.neuron.tau_refrac / config.tau_rec_ms)
    for e, segment_rates in zip(efficacies, (rates[:4], rates[4:])):
        assert np.all(e >= 0) and least * np.mean(segment_rates) <= e.mean() <= np.mean(segment_rates)
    assert built[0] == {}
    assert built[1]["source_rate_hz"] == pytest.approx(float(np.mean(rates[:4])))
    np.testing.assert_array_equal(built[1]["source_efficacy_hz"], efficacies[0])
    first, second = networks
    assert first.leak_offset_mv is None
    translated = np.concatenate([bm_to_lif(bm, second.neuron, second.translation_noise, second.fit).e_leak
                                 for bm in second.bms])
    offsets = second.leak_offset_mv
    assert np.std(offsets) > 0.05                                     # mV: something to keep
    np.testing.assert_allclose(second.e_leak, translated + offsets, atol=1e-9)
    # the offsets are those of the segment's start: its translated leaks and the first segment's efficacies
    expected = unit_leak_offsets(second.neuron, second.background, second.sources_exc, second.sources_inh,
                                 leaks_at_build[1] - offsets, efficacies[0])
    np.testing.assert_allclose(offsets, expected, atol=1e-9)


# --- MNIST (14x14: 196 pixels + 10 labels per network) -------------------------------------------------------

MNIST_TINY = dict(TINY, task="mnist", n_train_images=300, n_test_images=20)


def test_digits_task_loads_the_digits_split_as_before():
    """``task="digits"`` (the default) loads exactly what the digits ensemble loaded before the task option
    (the scikit-learn split of the seed, held-out training images with ``validation_images``): same arrays, same
    dtypes; the network layout stays 64 + 10 visible units."""
    for validation in (0, 287):
        config = protocol.EnsembleDataConfig(**{**TINY, "validation_images": validation, "n_test_images": 30})
        assert (config.task, config.n_pixels, config.n_visible, config.side) == ("digits", 64, 74, 8)
        data, train_y, test_x, test_y = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)
        if validation:
            test_x, test_y, data = data[:validation, :64], train_y[:validation], data[validation:]
        got = protocol.load_task_split(config)
        for new, old in zip((got[0], got[2], got[3]), (data, test_x[:30], test_y[:30])):
            assert new.dtype == old.dtype and np.array_equal(new, old)


def test_mnist_config_lays_out_196_pixels_and_10_labels_from_mnist():
    """MNIST networks: 196 pixel + 10 label visible units, MNIST's own test images (binarised 14x14, the first
    ``n_test_images``), training rows of 206 columns whose label part is one-hot."""
    from cortexsim.models.datasets import downsample, mnist

    config = protocol.EnsembleDataConfig(**MNIST_TINY)
    assert (config.n_pixels, config.n_visible, config.n_units, config.side) == (196, 206, 214, 14)
    data, train_y, test_x, test_y = protocol.load_task_split(config)
    assert data.shape == (300, 206) and test_x.shape == (20, 196)
    np.testing.assert_array_equal(data[:, 196:], np.eye(10)[train_y])
    reference = downsample(mnist("test"), 14)
    np.testing.assert_array_equal(test_x, (reference.x[:20] > 0.5).astype(float))
    np.testing.assert_array_equal(test_y, reference.y[:20])


def test_noise_free_mnist_ensemble_learns_in_every_network():
    """Spiking CD of 3 MNIST networks (206 + 8 units each) in ensemble mode, staggered, no Poisson source: 6
    updates must raise every network's exact log-likelihood of its training rows (enumerating the 2^8 hidden
    states) by > 2 nats. Size of the effect: from zero biases the pixel biases move towards the pixel means, and
    most of the 196 pixels are off in most images (about 0.1 nat per such pixel after 6 updates of 0.05). Data
    clamped onto the digits' 74 units, or the update masked with them, leaves the pixels 74..195 and the labels
    unlearned and fails."""
    from cortexsim.backends.registry import load_backend
    from cortexsim.models.boltzmann import block_diagonal
    from cortexsim.protocols.cd_digits import initial_rbm

    config = protocol.EnsembleDataConfig(**MNIST_TINY, train_iterations=6, learning_rate=0.05, schedule="constant",
                                         momentum=0.0, weight_decay=0.0, checkpoint_every=6, stagger_groups=3)
    data, _, test_x, test_y = protocol.load_task_split(config)
    start = block_diagonal([initial_rbm(config.n_hidden, np.random.default_rng(m), n_visible=206) for m in range(3)])
    sim = load_backend("nest")
    factory = protocol.network_factory(sim, config, "ensemble", FIT, config.noise, 21)
    state = protocol.train_networks(sim, config, factory, start.W, start.b,
                                    protocol.ensemble_training_data(data, 3, config.seed), test_x, test_y)
    W, b = state.trained(config.cd_settings(), protocol._mask(config))
    _assert_every_network_learned(config, start, W, b, data)
    for m in range(3):
        # the label units 196..205 learned too: clamped one-hot (mean 0.1) in the data phase, freer (about 0.3-0.5)
        # in the model phase, so their mean bias falls by ~0.05 * 6 * 0.3; unclamped (digits' slice) it would not
        labels = b[m * config.n_units + 196:m * config.n_units + 206]
        assert np.mean(labels) < -0.04, labels


def test_mnist_readout_reads_label_units_196_to_205_and_clamps_196_pixels():
    """Hand-built MNIST networks under Poisson noise whose label unit ``196 + k_m`` is strongly on (bias +6)
    and the other label units strongly off (-6), k_m = 7, 2, 5 for networks 0, 1, 2: every network must
    classify every image as its own k_m, and the clamped pixel units must show the image scored for that
    network (classification and random-30 % completion). Reading the digits' label slice (units 64..73:
    clamped pixels here) or the digits' 64 pixels fails it."""
    from cortexsim.backends.registry import load_backend
    from cortexsim.models.rbm_readout import occlusion_mask

    config = protocol.EnsembleDataConfig(**MNIST_TINY)
    _, _, test_x, test_y = protocol.load_task_split(config)
    n, M = config.n_units, 3
    W = np.zeros((M * n, M * n))
    b = np.full(M * n, -1.0)
    chosen = (7, 2, 5)
    for m, k in enumerate(chosen):
        b[m * n + 196:m * n + 206] = -6.0
        b[m * n + 196 + k] = 6.0
    pixels = test_x[:6]
    completion = {"random30": (pixels, occlusion_mask("random30", 6, 14, np.random.default_rng(3)))}
    sim = load_backend("nest")
    factory = protocol.network_factory(sim, config, "poisson", FIT, config.noise, 22)
    readouts = protocol.evaluate_networks(sim, config, factory, W, b, test_x[:6], completion)
    assert readouts["classify"].shape == (M, 6, n)
    scores = protocol.score_networks(readouts, test_y[:6], completion, config.n_pixels)
    assert scores["predicted"] == [[k] * 6 for k in chosen]
    shown = ~completion["random30"][1]
    for m in range(M):
        assert np.array_equal(readouts["classify"][m, :, :196] > 0.5, pixels > 0.5)
        assert np.array_equal((readouts["random30"][m, :, :196] > 0.5)[shown], (pixels > 0.5)[shown])


def test_cli_mnist_ensemble_writes_summary_trained_blocks_and_figures(tmp_path, monkeypatch, capsys):
    """``cortexsim ensemble --task mnist`` at a tiny size: the task's defaults (200 hidden) overridden by the
    options, both noise modes trained and scored, trained visible-hidden blocks of 206 x 8, completion examples
    of 196 pixels, the figures written."""
    from cortexsim.cli import main

    original = protocol.run_ensemble_data
    monkeypatch.setattr(protocol, "run_ensemble_data", lambda config, **kw: original(config, poisson_fit=FIT, **kw))
    assert main(["ensemble", "--task", "mnist", "--networks", "3", "--hidden", "8", "--in-degree", "10",
                 "--train-iterations", "2", "--batch-size", "2", "--model-ms", "60", "--test-images", "6",
                 "--train-images", "200", "--completion-images", "3", "--eval-read", "30", "--occlusions", "half",
                 "--calibration-duration", "2000", "--calibration-groups", "1", "--membrane-probes", "1",
                 "--checkpoint-every", "2", "--seed", "3", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["task"] == "ensemble_mnist" and results["config"]["task"] == "mnist"
    for key in ("ensemble_test_accuracy", "poisson_test_accuracy", "ensemble_completion_error",
                "poisson_completion_error", "ensemble_vote_test_accuracy", "exact_baseline_test_accuracy"):
        assert 0.0 <= results["summary"][key] <= 1.0, key
    for mode in ("poisson", "ensemble"):
        assert len(results["scores"][f"{mode}_trained"]["accuracy"]) == 3
        assert np.shape(results["trained_parameters"][mode]["W_blocks"]) == (3, 206, 8)
        assert len(results["trained_parameters"][mode]["b"]) == 3 * 214
        assert len(results["examples"][mode]["half"][0]["completed"]) == 196
    assert results["config"]["learning_rate"] == 0.1       # the MNIST task's default (no option given)
    for name in results["files"].values():
        assert (tmp_path / name).stat().st_size > 1000


@pytest.mark.parametrize("args, needle", [
    (["--image-side", "30"], "image_side"),
    (["--validation-images", "60000"], "validation_images"),
    (["--networks", "2", "--in-degree", "300"], "(2 - 1) * 406"),     # 206 + 200 (the task's hidden units)
    (["--train-images", "-1"], "n_train_images"),
])
def test_cli_refuses_bad_mnist_ensemble_settings_before_running(args, needle, tmp_path, capsys):
    from cortexsim.cli import main

    assert main(["ensemble", "--task", "mnist", *args, "--out", str(tmp_path / "o")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()


def test_benchmark_keeps_an_interrupted_runs_checkpoint_and_resumes_it(tmp_path, monkeypatch, capsys, benchmark_script):
    """benchmarks/ensemble_data.py at a tiny size: a run killed after its first training segment keeps its
    checkpoint; a new invocation without --resume refuses to overwrite it; --resume continues it (the
    protocol continues from the checkpoint, not from scratch) to the end, writes the results and only then deletes
    the checkpoint. An earlier invocation's run of another task in the results file is kept with its keys."""
    bench = benchmark_script("ensemble_data")
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    monkeypatch.setitem(bench.SIZES, "small", dict(
        n_networks=3, n_hidden=8, in_degree=10, train_iterations=4, batch_size=2, model_ms=60.0, n_test_images=6,
        n_completion_images=3, eval_read_ms=30.0, calibration_ms=2000.0, calibration_groups=1, membrane_probes=1,
        checkpoint_every=2))
    calls = []

    class Killed(Exception):
        pass

    def run(config, **kwargs):
        calls.append(kwargs)
        stop = 2 if len(calls) == 1 else None
        out = protocol.run_ensemble_data(config, poisson_fit=FIT, stop_after_iteration=stop, **kwargs)
        if out is None:
            raise Killed()          # as if the process were killed right after the checkpoint
        return out

    monkeypatch.setattr(bench, "run_ensemble_data", run)
    args = ["--size", "small", "--seed", "3"]
    with pytest.raises(Killed):
        bench.main(args)
    checkpoint = tmp_path / "figures" / "ensemble_data_small" / "digits_depressing" / "checkpoint.json"
    saved = json.loads(checkpoint.read_text())
    assert saved["training"]["poisson"]["iteration"] == 2
    # a mark in the checkpoint's history (not read by Poisson training): a resumed run carries it, a restart not
    saved["training"]["poisson"]["history"]["mean_rate_hz"][0] = -1.0
    checkpoint.write_text(json.dumps(saved))
    with pytest.raises(SystemExit):
        bench.main(args)
    assert "--resume" in capsys.readouterr().err and len(calls) == 1
    # an earlier invocation's MNIST run in the results file: kept beside the digits run of this one
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "ensemble_data_small.json").write_text(json.dumps({
        "runs": {"mnist_depressing": {"config": {"seed": 1}}},
        "summary": {"mnist_depressing_ensemble_test_accuracy": 0.5, "ensemble_test_accuracy": 0.5,
                    "unprefixed_keys_from": "mnist_depressing"}}))
    assert bench.main(args + ["--resume"]) == 0
    assert calls[-1]["resume"] is True and "resuming from" in capsys.readouterr().out
    results = json.loads((tmp_path / "results" / "ensemble_data_small.json").read_text())
    history = results["runs"]["digits_depressing"]["training_history"]
    for mode in ("poisson", "ensemble"):
        assert history[mode]["iteration"] == [0, 1, 2, 3]
    assert history["poisson"]["mean_rate_hz"][0] == -1.0 and history["poisson"]["mean_rate_hz"][2] > 0
    assert not checkpoint.exists()
    assert set(results["runs"]) == {"mnist_depressing", "digits_depressing"}
    summary = results["summary"]
    assert summary["mnist_depressing_ensemble_test_accuracy"] == summary["ensemble_test_accuracy"] == 0.5
    assert summary["unprefixed_keys_from"] == "mnist_depressing" and "digits_depressing_ensemble_test_accuracy" in summary
    # each run's own background settings (the kept run's from its config, "all" sources from before the option)
    assert summary["digits_depressing_background_settings"] == {
        "in_degree": 10, "source_units": "all", "stagger_groups": 1, "background_tracking": "off",
        "background_synapse": "depressing"}
    assert summary["mnist_depressing_background_settings"]["source_units"] == "all"


# --- evaluation background measured under the evaluation's own clamps (eval_background="measured") ---------------

def test_evaluation_calibration_draws_training_images_and_fresh_masks_per_kind():
    """The images that set the evaluation's background are TRAINING rows (a draw from the test split fails), one
    set per read-out kind, classification clamping every pixel and each occlusion kind its own masks."""
    config = protocol.EnsembleDataConfig(**TINY, background_tracking="translation_units", eval_background="measured",
                                         eval_calibration_images=7)
    data, _, test_x, _ = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)
    out = protocol.evaluation_calibration(config, data)
    training_rows = {row.tobytes() for row in data[:, :config.n_pixels].astype(np.uint8)}
    assert list(out) == ["classify", *config.occlusions]
    pixels, visible = out["classify"]
    assert pixels.shape == (7, 64) and visible.all()
    assert all(row.astype(np.uint8).tobytes() in training_rows for row in pixels)
    assert len({row.tobytes() for row in pixels}) > 1
    for kind in config.occlusions:
        kind_pixels, kind_visible = out[kind]
        np.testing.assert_array_equal(kind_pixels, pixels)
        hidden = ~kind_visible
        assert hidden.any() and kind_visible.any()
        assert np.all(hidden.sum(axis=1) == occlusion_mask(kind, 7, 8, np.random.default_rng(0)).sum(axis=1))


@pytest.mark.parametrize("changes, needle", [
    ({"eval_background": "measured"}, "eval_background 'measured' needs background_tracking"),
    ({"eval_background": "later", "background_tracking": "translation"}, "eval_background"),
    ({"eval_calibration_images": 0}, "eval_calibration_images"),
    ({"eval_calibration_passes": 0}, "eval_calibration_passes"),
    ({"eval_groups": 4}, r"eval_groups must be in 1 \.\. n_networks \(3\)"),
    ({"eval_groups": 0}, "eval_groups"),
])
def test_bad_evaluation_background_settings_are_refused(changes, needle):
    with pytest.raises(ValueError, match=needle):
        protocol.EnsembleDataConfig(**{**TINY, **changes})


def test_measured_evaluation_background_is_measured_per_kind_in_chained_passes():
    """``evaluate_networks`` with calibration images, on NEST (3 networks, translation_units): per read-out kind,
    pass 1 is built with the factory's own source rate and NO per-neuron offsets (the training segment's are
    dropped), pass 2 with pass 1's measurement, the read-out with pass 2's (recorded in the result), and the next
    kind starts again from the factory's own rate. Each measurement is a rate of all neurons > 0 and per-neuron
    efficacies of depressing synapses between (1 - exp(-tau_ref / tau_rec)) x that rate and the Jensen bound of
    regular trains (a wrong duration, lost spikes or the static rule fail it); the read-out's networks carry
    offsets."""
    from cortexsim.backends.registry import load_backend
    from cortexsim.models.boltzmann import block_diagonal
    from cortexsim.protocols.cd_digits import initial_rbm

    config = protocol.EnsembleDataConfig(**{**TINY, "occlusions": ("half",)}, stagger_groups=3,
                                         background_tracking="translation_units", eval_background="measured",
                                         eval_calibration_images=4, eval_calibration_passes=2)
    data, _, test_x, test_y = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)
    bm = block_diagonal([initial_rbm(config.n_hidden, np.random.default_rng(m), scale=0.5) for m in range(3)])
    sim = load_backend("nest")
    base = protocol.network_factory(sim, config, "ensemble", FIT, config.noise, 21)
    built, networks = [], []

    def recording(sim, W, b, first_iteration, **kwargs):
        built.append(dict(kwargs))
        networks.append(base(sim, W, b, first_iteration, **kwargs))
        return networks[-1]

    training_offsets = list(np.full(3 * config.n_units, 25.0))
    factory = partial(recording, source_rate_hz=30.0, source_efficacy_hz=training_offsets)
    pixels = test_x[:3]
    completion = {"half": (pixels, occlusion_mask("half", 3, 8, np.random.default_rng(1)))}
    result = protocol.evaluate_networks(sim, config, factory, bm.W, bm.b, test_x[:5], completion,
                                        calibration=protocol.evaluation_calibration(config, data))
    assert result["classify"].shape == (3, 5, config.n_units) and result["half"].shape == (3, 3, config.n_units)
    assert len(built) == 6                          # per kind: 2 passes + the read-out
    least = 1.0 - np.exp(-config.neuron.tau_refrac / config.tau_rec_ms)
    duration_s = config.eval_calibration_images * (config.eval_settle_ms + config.eval_read_ms) * 1e-3
    for k, kind in enumerate(("classify", "half")):
        first, second, readout = built[3 * k:3 * k + 3]
        assert first == {"source_rate_hz": 30.0, "source_efficacy_hz": None}
        for measured in (second, readout):
            efficacy = np.asarray(measured["source_efficacy_hz"])
            assert measured["source_rate_hz"] > 0 and efficacy.shape == (3 * config.n_units,)
            rate = measured["source_rate_hz"]
            assert least * rate <= efficacy.mean() <= rate
            # depressing (U = 1): a spike after an ISI releases 1 - exp(-ISI / tau_rec), concave in the ISI, and
            # r (1 - exp(-1 / (r tau_rec))) is concave in r, so by Jensen the mean efficacy is at most that of
            # regular trains at the mean rate, plus the first spike's full release once per measurement (1 / T)
            regular = rate * (1.0 - np.exp(-1e3 / (rate * config.tau_rec_ms)))
            assert efficacy.mean() <= regular + 1.0 / duration_s       # static synapses (about the rate) fail
        assert not np.array_equal(second["source_efficacy_hz"], readout["source_efficacy_hz"])
        assert result["measured_background"][kind]["source_rate_hz"] == readout["source_rate_hz"]
        assert networks[3 * k].leak_offset_mv is None
        assert np.std(networks[3 * k + 2].leak_offset_mv) > 0.05      # mV
    assert built[1]["source_rate_hz"] != built[4]["source_rate_hz"]   # each kind its own background


def test_reevaluation_of_a_finished_run_reproduces_its_scores_from_the_results_alone(tmp_path):
    """``reevaluate_trained`` rebuilds a finished run's trained networks from its results alone (config, trained
    blocks, fits, source rate, the last tracking entry with its per-neuron offsets): both modes' re-scored
    accuracies, predictions and completion errors equal the run's (a wrong seed, fit, noise, occlusion draw,
    weight layout or lost offsets fail it). Results without the offsets (older files) are refused with the
    "training" setting and re-scored with the measured one; training settings cannot be changed."""
    config = protocol.EnsembleDataConfig(**TINY, train_iterations=2, checkpoint_every=1, n_test_images=6,
                                         n_completion_images=3, stagger_groups=3,
                                         background_tracking="translation_units")
    results = json.loads(json.dumps(protocol.run_ensemble_data(config, out_dir=tmp_path, poisson_fit=FIT)))
    again = protocol.reevaluate_trained(results)
    for mode in protocol.MODES:
        run = results["scores"][f"{mode}_trained"]
        assert again[mode]["accuracy"] == run["accuracy"] and again[mode]["predicted"] == run["predicted"]
        assert again[mode]["completion_error"] == run["completion_error"]
    old = json.loads(json.dumps(results))
    last = old["training_history"]["ensemble"]["segment_tracking"][-1]
    assert len(last.pop("source_efficacy_hz")) == 3 * config.n_units
    last["leak_offsets_from_previous_segment"] = True
    with pytest.raises(ValueError, match="eval_background='measured'"):
        protocol.reevaluate_trained(old, modes=("ensemble",))
    measured = protocol.reevaluate_trained(old, modes=("ensemble",), eval_background="measured",
                                           eval_calibration_images=3)["ensemble"]
    assert len(measured["accuracy"]) == 3 and set(measured["measured_background"]) == {"classify", *config.occlusions}
    with pytest.raises(ValueError, match="learning_rate"):
        protocol.reevaluate_trained(results, learning_rate=0.1)


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_grouped_evaluation_clamps_one_group_at_a_time_and_maps_rows_back(monkeypatch, groups):
    """``eval_groups`` G: G x n steps; the steps of group g clamp exactly network m's (m mod G == g) visible pixels
    to its rotated image, nothing of the other networks (they run free); every network's rows come from its
    group's steps, in image order (a row taken from another group's steps or the wrong rotation fails)."""
    config = protocol.EnsembleDataConfig(**TINY, eval_groups=groups)
    M, n_units, n = config.n_networks, config.n_units, 5
    rng = np.random.default_rng(3)
    pixels = (rng.random((n, 64)) < 0.4).astype(float)
    visible = rng.random((n, 64)) < 0.7
    seen = []

    def fake_readout(network, timed, clamps, config, chunk, progress, label, schedule, on_states):
        seen.extend(clamps)
        out = np.zeros((len(clamps), M * n_units))
        out[:, :] = np.arange(len(clamps))[:, None]          # each row holds its step index
        return out

    monkeypatch.setattr(protocol, "clamped_readout", fake_readout)
    per_network = protocol._readout_networks(None, None, config, pixels, visible, False, "t")
    order = protocol.image_rotation(n, M)
    assert len(seen) == groups * n
    for step, (units, values) in enumerate(seen):
        group, i = divmod(step, n)
        expected_units = np.concatenate([m * n_units + np.flatnonzero(visible[order[m, i]])
                                         for m in range(group, M, groups)])
        np.testing.assert_array_equal(units, expected_units)
        np.testing.assert_array_equal(values, np.concatenate([pixels[order[m, i]][visible[order[m, i]]]
                                                              for m in range(group, M, groups)]))
    for m in range(M):
        for i in range(n):      # image order[m, i] was read at step i of m's group
            assert np.all(per_network[m, order[m, i]] == (m % groups) * n + i)
