"""The digits task generalised to a data-set option (``train-cd --task mnist``): exact read-outs against
enumeration, the spiking label read-out on hand-built weights (both clamping routes), the MNIST split,
bad input, and a tiny end-to-end run.

The activation function is the measured default-set fit of references §1 (v_p05 = -50.61 mV,
alpha = 0.82 mV), so no calibration runs here.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cortexsim.cli import main
from cortexsim.parameters import ActivationFit
from cortexsim.results import read_json
from cortexsim.protocols.cd_digits import (N_LABELS, DigitsTrainingConfig, MnistTrainingConfig, completion_masks,
                                           exact_classification, free_energy_label_posterior,
                                           free_energy_labels, load_split)

FIT = ActivationFit(v_p05=-50.61, alpha=0.82)
N_PIX = 4      # 2x2 images


def _rbm(n_pixels: int, n_hidden: int, W_vh: np.ndarray, b_v: np.ndarray, b_h: np.ndarray):
    n_v = n_pixels + N_LABELS
    n = n_v + n_hidden
    W = np.zeros((n, n))
    W[:n_v, n_v:] = W_vh
    W[n_v:, :n_v] = W_vh.T
    return W, np.concatenate([b_v, b_h])


def _random_rbm(rng, n_hidden=3, scale=1.5):
    n_v = N_PIX + N_LABELS
    return _rbm(N_PIX, n_hidden, rng.normal(0, scale, (n_v, n_hidden)), rng.normal(0, 1.0, n_v),
                rng.normal(0, 1.0, n_hidden))


def test_free_energy_labels_match_enumeration_over_hidden_states():
    """argmax_y sum_h exp(-E(pixels, y, h)) and the normalised posterior, enumerating the 2^3 hidden states (no
    closed form used)."""
    rng = np.random.default_rng(5)
    W, b = _random_rbm(rng)
    n_v = N_PIX + N_LABELS
    W_vh, b_v, b_h = W[:n_v, n_v:], b[:n_v], b[n_v:]
    pixels = rng.integers(0, 2, (12, N_PIX)).astype(float)
    hidden = np.array(list(itertools.product([0, 1], repeat=3)), dtype=float)
    expected = []
    for image in pixels:
        log_z = []
        for k in range(N_LABELS):
            v = np.concatenate([image, np.eye(N_LABELS)[k]])
            log_z.append(np.log(np.exp(v @ b_v + hidden @ b_h + hidden @ (v @ W_vh)).sum()))
        expected.append(np.exp(np.array(log_z) - np.logaddexp.reduce(log_z)))
    assert free_energy_labels(W, b, pixels).tolist() == [int(np.argmax(p)) for p in expected]
    # the posterior over one-hot labels itself (a missing hidden bias or label bias shifts it)
    np.testing.assert_allclose(free_energy_label_posterior(W, b, pixels), np.array(expected), rtol=1e-10)


def test_exact_label_readout_matches_enumerated_label_marginals():
    """Gibbs label read-out (pixels clamped, labels free binary units) vs p(label_k = 1 | pixels) by
    enumerating all 2^10 label x 2^2 hidden states. Images are kept only where the two largest
    marginals differ by > 0.15: with 4000 recorded sweeps the standard error of a mean state is
    <= 0.5 / sqrt(4000 / 10) = 0.025 even for an autocorrelation of 10 sweeps, so 0.15 is 6 SE."""
    rng = np.random.default_rng(11)
    n_v = N_PIX + N_LABELS
    W_vh = rng.normal(0, 0.5, (n_v, 2))       # asymmetric noise on a structure: pixel 0 -> h0 -> label 2,
    W_vh[0, 0] += 4.0                           # pixel 1 -> h1 -> label 5
    W_vh[1, 1] += 4.0
    W_vh[N_PIX + 2, 0] += 4.0
    W_vh[N_PIX + 5, 1] += 4.0
    W, b = _rbm(N_PIX, 2, W_vh, np.concatenate([np.zeros(N_PIX), rng.normal(-1.0, 0.5, N_LABELS)]),
                np.array([-3.0, -3.0]))
    labels = np.array(list(itertools.product([0, 1], repeat=N_LABELS)), dtype=float)
    hidden = np.array(list(itertools.product([0, 1], repeat=2)), dtype=float)
    images = np.array(list(itertools.product([0, 1], repeat=N_PIX)), dtype=float)
    kept, expected = [], []
    for image in images:
        # E = -(v b_v + h b_h + v W h); sum over h in closed form is NOT used: enumerate both.
        v = np.hstack([np.tile(image, (len(labels), 1)), labels])
        energy = -(v @ b[:n_v])[:, None] - (hidden @ b[n_v:])[None, :] - v @ W_vh @ hidden.T
        p = np.exp(-energy - (-energy).max())
        p_labels = p.sum(axis=1) / p.sum()
        marginal = p_labels @ labels
        top = np.sort(marginal)[-2:]
        if top[1] - top[0] > 0.15:
            kept.append(image)
            expected.append(int(np.argmax(marginal)))
    assert len(kept) >= 4 and len(set(expected)) >= 2    # the check can fail: several images, several labels
    predicted = exact_classification(W, b, np.array(kept), 4100, 100, np.random.default_rng(0))
    assert predicted.tolist() == expected


def _hand_built_network(sim):
    """4 pixels, 10 labels, 2 hidden: pixel 0 -> hidden 0 -> label 3, pixel 1 -> hidden 1 -> label 7."""
    from cortexsim.models.boltzmann import BoltzmannMachine
    from cortexsim.models.cd_learning import bipartite_mask
    from cortexsim.models.sampling_network import build_sampling_network

    n_v = N_PIX + N_LABELS
    W_vh = np.zeros((n_v, 2))
    W_vh[0, 0] = W_vh[1, 1] = 8.0
    W_vh[N_PIX + 3, 0] = W_vh[N_PIX + 7, 1] = 8.0
    W, b = _rbm(N_PIX, 2, W_vh, np.concatenate([np.zeros(N_PIX), np.full(N_LABELS, -4.0)]), np.full(2, -4.0))
    sim.setup(timestep=0.1, seed=7)
    return build_sampling_network(sim, BoltzmannMachine(W, b), FIT, connectivity=bipartite_mask(n_v, 2))


@pytest.mark.parametrize("schedule", [False, True])
def test_spiking_label_readout_on_hand_built_weights(schedule):
    """Image (1,0,0,0) drives label 3 (on ~ sigmoid(4) = 0.98 of the time), (0,1,0,0) label 7; every other
    label has bias -4 (on 0.02 of the time) whichever hidden unit is on. Both clamping routes
    (one run per image, one parameter schedule per chunk) must read these labels out."""
    pytest.importorskip("nest")
    from cortexsim.backends.registry import load_backend
    from cortexsim.protocols.cd_digits import evaluate_spiking
    from cortexsim.protocols.cd_engine import TimedSimulator

    sim = load_backend("nest")
    network = _hand_built_network(sim)
    config = DigitsTrainingConfig(seed=1, eval_settle_ms=20.0, eval_read_ms=300.0)
    images = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]], dtype=float)
    on = evaluate_spiking(network, TimedSimulator(sim), images, np.arange(N_PIX), config, chunk=2, schedule=schedule)
    sim.end()
    labels = on[:, N_PIX:N_PIX + N_LABELS]
    assert np.argmax(labels, axis=1).tolist() == [3, 7, 3]
    # the winning label is on most of the time, the clamped pixels sit at their values
    assert labels[[0, 1, 2], [3, 7, 3]].min() > 0.7
    assert np.allclose(on[:, :N_PIX].round(), images)


def test_spiking_evaluation_without_completion_classifies_as_the_whole_evaluation():
    """``complete=False`` (one part of a split test set): the same predictions as the full evaluation with the
    same seed (classification runs first), the hand-built labels (3, 7) read out, the free-energy accuracy of
    the same images, and no completion figures. Fails if the flag changes which images are classified or how,
    or if completion still runs (its keys, its simulated time)."""
    pytest.importorskip("nest")
    from cortexsim.backends.registry import load_backend
    from cortexsim.protocols.cd_digits import spiking_evaluation

    # pixel 0 -> hidden 0 -> label 3, pixel 1 -> hidden 1 -> label 7, with a weak label-hidden loop (a hidden
    # unit needs its pixel: -8 + 4 < 0), so no label state outlives its image
    n_v = N_PIX + N_LABELS
    W_vh = np.zeros((n_v, 2))
    W_vh[0, 0] = W_vh[1, 1] = 12.0
    W_vh[N_PIX + 3, 0] = W_vh[N_PIX + 7, 1] = 4.0
    W, b = _rbm(N_PIX, 2, W_vh, np.concatenate([np.zeros(N_PIX), np.full(N_LABELS, -2.0)]), np.full(2, -8.0))
    config = DigitsTrainingConfig(seed=1, eval_settle_ms=20.0, eval_read_ms=150.0, n_completion_images=2,
                                  occlusions=("half",), eval_chunk=2, n_hidden=2)
    images = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=float)
    labels = np.array([3, 7, 3, 0])
    sim = load_backend("nest")
    whole = spiking_evaluation(config, sim, FIT, W, b, images, labels, seed=11)
    part = spiking_evaluation(config, sim, FIT, W, b, images, labels, seed=11, complete=False)
    assert part["predicted"] == whole["predicted"] == [3, 7, 3, 7]
    assert part["accuracy"] == whole["accuracy"] == 0.75
    assert part["free_energy_accuracy"] == whole["free_energy_accuracy"]
    assert "completion_errors" not in part and "completion_errors" in whole
    assert part["simulated_ms"] == pytest.approx(4 * 170.0)
    assert whole["simulated_ms"] == pytest.approx((4 + 2) * 170.0)


def test_mnist_split_is_binarised_14x14_with_disjoint_validation():
    pytest.importorskip("pyNN")
    from cortexsim.models.datasets import downsample, mnist

    config = MnistTrainingConfig(seed=3, n_hidden=10, validation_images=50, n_train_images=200, n_test_images=30)
    train, train_y, test_x, test_y = load_split(config)
    assert train.shape == (200, 196 + N_LABELS) and test_x.shape == (30, 196)
    assert set(np.unique(train)) <= {0.0, 1.0}
    assert np.array_equal(train[:, 196:].argmax(axis=1), train_y) and np.all(train[:, 196:].sum(axis=1) == 1)
    full = MnistTrainingConfig(seed=3, n_hidden=10, n_train_images=250, n_test_images=30)
    all_train, _, real_test, real_y = load_split(full)
    # validation = the first 50 of the seeded order, training = the next ones: disjoint, nothing lost
    assert np.array_equal(all_train[:30, :196], test_x) and np.array_equal(all_train[50:250], train)
    reference = downsample(mnist("test"), 14)
    assert np.array_equal(real_test, (reference.x[:30] > 0.5).astype(float))
    assert np.array_equal(real_y, reference.y[:30])


def test_completion_masks_follow_the_occlusion_kinds_and_the_seed():
    config = MnistTrainingConfig(seed=3, n_hidden=10)
    pixels = np.zeros((6, 196))
    masks = completion_masks(config, pixels)
    assert list(masks) == ["half", "quarter", "random30"]
    assert masks["half"].sum(axis=1).tolist() == [98] * 6          # rows 7..13 of 14
    assert masks["quarter"].sum(axis=1).tolist() == [49] * 6       # a 7x7 corner
    assert masks["random30"].sum(axis=1).tolist() == [round(0.3 * 196)] * 6
    assert len({tuple(row) for row in masks["random30"]}) == 6    # drawn per image
    again = completion_masks(MnistTrainingConfig(seed=3, n_hidden=10), pixels)["random30"]
    other = completion_masks(MnistTrainingConfig(seed=4, n_hidden=10), pixels)["random30"]
    assert np.array_equal(again, masks["random30"]) and not np.array_equal(other, masks["random30"])


@pytest.mark.parametrize("kwargs, needle", [
    ({"dataset": "cifar"}, "dataset"),
    ({"image_side": 30}, "image_side"),
    ({"image_side": 1}, "image_side"),
    ({"n_train_images": -1}, "n_train_images"),
    ({"validation_images": -5}, "validation_images"),
    ({"occlusions": ("half", "half")}, "occlusions"),
    ({"occlusions": ("corner",)}, "occlusions"),
    ({"eval_chunk": 0}, "eval_chunk"),
])
def test_bad_settings_are_refused_naming_the_parameter(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        MnistTrainingConfig(seed=1, **kwargs)


def test_too_many_validation_images_are_refused_before_training():
    pytest.importorskip("pyNN")
    with pytest.raises(ValueError, match="validation_images"):
        load_split(DigitsTrainingConfig(seed=1, validation_images=5000))     # digits has 1,438 training images


def test_cli_mnist_options_reach_the_config_and_bad_values_are_refused(tmp_path, monkeypatch, capsys):
    import cortexsim.protocols.cd_digits as digits

    seen = {}

    def train_digits(config, **kwargs):
        seen["config"] = config
        raise KeyboardInterrupt

    monkeypatch.setattr(digits, "train_digits", train_digits)
    main(["train-cd", "--task", "mnist", "--n-hidden", "30", "--n-train", "100", "--n-test", "20",
          "--iterations", "3", "--occlusions", "half,random30", "--average-fraction", "0.4",
          "--free-chains", "4", "--data-copies", "2", "--model-ms", "100", "--out", str(tmp_path / "m")])
    c = seen["config"]
    assert (c.free_chains, c.data_copies, c.copies, c.model_ms) == (4, 2, 6, 100.0)
    assert (c.dataset, c.n_hidden, c.n_train_images, c.n_test_images, c.iterations, c.occlusions) == \
        ("mnist", 30, 100, 20, 3, ("half", "random30"))
    assert c.average_fraction == 0.4 and c.cd_settings().average_fraction == 0.4
    assert c.pretrain_iterations == 0          # MNIST default: spiking CD from random weights
    for argv, needle in ((["--n-train", "-3"], "n_train_images"), (["--n-hidden", "0"], "n_hidden"),
                         (["--occlusions", "half,top"], "occlusions"), (["--average-fraction", "1"], "average_fraction"),
                         (["--free-chains", "-1"], "free_chains"), (["--data-copies", "3"], "data_copies")):
        code = main(["train-cd", "--task", "mnist", *argv, "--out", str(tmp_path / "bad")])
        assert code == 2 and needle in capsys.readouterr().err


def test_tiny_mnist_run_end_to_end_on_nest(tmp_path):
    """A few updates of a 206 + 8 unit RBM; the exact baseline and the spiking scores are internally
    consistent (accuracy = share of predicted labels equal to the truth, errors per occlusion)."""
    pytest.importorskip("nest")
    from cortexsim.protocols.cd_digits import train_digits

    config = MnistTrainingConfig(seed=2, n_hidden=8, n_train_images=100, n_test_images=20, iterations=4,
                                 checkpoint_every=2, n_completion_images=3, eval_read_ms=20.0, eval_settle_ms=10.0)
    result = train_digits(config, fit=FIT, out_dir=tmp_path)
    after, base = result.scores["spiking_after"], result.scores["baseline"]
    _, _, _, test_y = load_split(config)
    for block in (after, base):
        assert block["accuracy"] == pytest.approx(np.mean(np.array(block["predicted"]) == test_y))
        assert set(block["completion_errors"]) == {"half", "quarter", "random30"}
        assert block["completion_error"] == block["completion_errors"]["half"]
    assert result.history["segment_end"] == [2, 4] and len(result.history["baseline_curve"]) == 2
    summary = result.summary()
    assert summary["iteration_wall_s"] == pytest.approx(result.timing["training_wall_s"] / 4)
    assert 0.0 <= summary["outside_simulator_fraction"] < 1.0
    for name in ("receptive_fields", "confusion_spiking", "completion_spiking", "accuracy_over_training"):
        assert (tmp_path / result.files[name]).is_file()


def test_free_chains_train_and_resume_bit_identically_on_nest(tmp_path):
    """Digits RBM, two data copies and two free chains (four copies in one simulation): a run interrupted after one
    segment and resumed reaches the same weights after two segments as the uninterrupted one (the copies'
    network is rebuilt per segment from the seed); the weights moved, and the recorded model activity is
    the chains' (not 0 or 1)."""
    pytest.importorskip("nest")
    from cortexsim.protocols.cd_digits import train_digits

    config = DigitsTrainingConfig(seed=2, n_hidden=8, pretrain_iterations=0, n_test_images=10, iterations=6,
                                  checkpoint_every=2, n_completion_images=2, batch_size=4, data_copies=2,
                                  free_chains=2, model_ms=50.0, occlusions=("half",))
    assert train_digits(config, fit=FIT, out_dir=tmp_path / "whole", stop_after_iteration=4) is None
    assert train_digits(config, fit=FIT, out_dir=tmp_path / "cut", stop_after_iteration=2) is None
    assert train_digits(config, fit=FIT, out_dir=tmp_path / "cut", resume=True, stop_after_iteration=4) is None
    whole, cut = (read_json(tmp_path / name / "checkpoint.json") for name in ("whole", "cut"))
    assert whole["cd"]["iteration"] == cut["cd"]["iteration"] == 4
    np.testing.assert_array_equal(np.asarray(cut["cd"]["W"]), np.asarray(whole["cd"]["W"]))
    assert not np.array_equal(np.asarray(whole["cd"]["W"]), np.asarray(whole["prepared"]["W"]))
    activity = whole["cd"]["history"]["model_mean_activity"]
    assert len(activity) == 4 and all(0.02 < a < 0.98 for a in activity)


def test_exact_baseline_is_the_iterate_average_of_its_last_updates():
    """With ``average_fraction`` 0.5 the baseline's weights are the mean of the last half of the iterates,
    recomputed here update by update with an optimizer that keeps no average (fails if the baseline keeps
    the last iterate, or averages another window)."""
    from cortexsim.models.cd_learning import CDUpdate, LearningRateSchedule, MomentumOptimizer, bipartite_mask
    from cortexsim.protocols.cd_digits import (exact_baseline, exact_baseline_weights, pretrain_exact, rbm_parts,
                                               train_exact)

    config = DigitsTrainingConfig(seed=3, n_hidden=6, pretrain_iterations=0, iterations=6, average_fraction=0.5,
                                  learning_rate=0.5, schedule="constant", momentum=0.3, checkpoint_every=3,
                                  n_test_images=20, n_completion_images=3, eval_gibbs_sweeps=3, eval_gibbs_burn_in=1)
    prepared = exact_baseline(config)
    data, _, test_x, test_y = load_split(config)
    W, b, chains, rng, _ = pretrain_exact(config, data, test_x, test_y)
    n_v = data.shape[1]
    update = CDUpdate(LearningRateSchedule(0.5, "constant", 100.0),
                      MomentumOptimizer.create(W.shape[0], 0.3, config.weight_decay), bipartite_mask(n_v, 6))
    iterates = []
    for i in range(6):
        W, b, chains, _ = train_exact(W, b, update, data, 1, config.batch_size, chains, rng, first_iteration=i,
                                      n_visible=n_v)
        iterates.append(rbm_parts(W, b, n_v)[0])
    expected = np.mean(iterates[3:], axis=0)
    got = np.asarray(prepared["baseline_W_vh"])
    np.testing.assert_allclose(got, expected, atol=6e-5)          # baseline_W_vh is rounded to 4 decimals
    W_full, b_full = exact_baseline_weights(config)                  # the same weights, unrounded
    np.testing.assert_allclose(rbm_parts(W_full, b_full, n_v)[0], expected, rtol=0, atol=1e-12)
    assert np.abs(iterates[-1] - expected).max() > 1e-2            # the average is not the last iterate
    assert np.abs(np.mean(iterates[2:], axis=0) - expected).max() > 1e-3     # nor another window's mean


def test_spiking_run_rescheduled_to_fewer_updates_equals_that_run_from_scratch_on_nest(tmp_path):
    """Digits RBM on NEST: 2 updates of a 10-update run (averaging from 5), continued as a 6-update run
    (averaging from 3), ends with the weights, iterate average and history of the 6-update run from scratch;
    a 10-update run stopped after 4 updates (one already in the 6-update average) is refused, and so is a
    changed setting besides iterations."""
    pytest.importorskip("nest")
    import dataclasses

    from cortexsim.protocols.cd_digits import exact_baseline, rescheduled_checkpoint, train_digits
    from cortexsim.results import write_json_atomic

    short = DigitsTrainingConfig(seed=4, n_hidden=6, pretrain_iterations=0, n_test_images=10, iterations=6,
                                 checkpoint_every=2, n_completion_images=2, batch_size=3, model_ms=40.0,
                                 clamp_ms=30.0, average_fraction=0.5, occlusions=("half",), eval_read_ms=20.0,
                                 eval_settle_ms=10.0)
    long = dataclasses.replace(short, iterations=10)
    train_digits(short, fit=FIT, out_dir=tmp_path / "scratch")
    assert train_digits(long, fit=FIT, out_dir=tmp_path / "long", stop_after_iteration=2) is None
    state = read_json(tmp_path / "long" / "checkpoint.json")
    prepared = exact_baseline(short)
    write_json_atomic(tmp_path / "moved" / "checkpoint.json", rescheduled_checkpoint(state, short, prepared))
    train_digits(short, fit=FIT, out_dir=tmp_path / "moved", resume=True)
    scratch, moved = (read_json(tmp_path / name / "checkpoint.json") for name in ("scratch", "moved"))
    assert scratch["cd"]["iteration"] == moved["cd"]["iteration"] == 6
    np.testing.assert_array_equal(np.asarray(moved["cd"]["W"]), np.asarray(scratch["cd"]["W"]))
    assert moved["cd"]["update"] == scratch["cd"]["update"]          # optimizer and average (from update 3)
    assert moved["cd"]["history"]["model_mean_activity"] == scratch["cd"]["history"]["model_mean_activity"]
    assert moved["prepared"]["baseline"]["accuracy"] == scratch["prepared"]["baseline"]["accuracy"]
    assert moved["spiking_after"]["predicted"] == scratch["spiking_after"]["predicted"]
    assert train_digits(long, fit=FIT, out_dir=tmp_path / "long", resume=True, stop_after_iteration=4) is None
    with pytest.raises(ValueError, match="averaged"):
        rescheduled_checkpoint(read_json(tmp_path / "long" / "checkpoint.json"), short, prepared)
    with pytest.raises(ValueError, match="model_ms"):
        rescheduled_checkpoint(state, dataclasses.replace(short, model_ms=50.0), prepared)
