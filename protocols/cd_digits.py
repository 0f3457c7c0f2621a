"""Digits and MNIST tasks: an RBM of visible (pixels + 10 labels) and hidden units on labelled images.

``dataset="digits"`` (:class:`DigitsTrainingConfig`): scikit-learn's 8x8 digits (64 pixels), split into
training and test images with the seed. ``dataset="mnist"`` (:class:`MnistTrainingConfig`, ``train-cd
--task mnist``): MNIST downsampled to ``image_side`` x ``image_side`` (14: 196 pixels), 60,000 training
and the 10,000 test images, spiking CD from small random weights by default (no pre-training).
Units are ordered [pixels (P) | labels (10) | hidden (n_hidden)]; weights exist only between the
visible group (pixels and labels) and the hidden group. The data are binarised at
``binarize_threshold``. ``validation_images`` holds out training images to choose hyper-parameters on.

1. Pre-training (optional) with the exact sampler in numpy (:func:`train_exact`): data phase
   ``p(h | v)`` exactly, model phase persistent block-Gibbs chains.
2. Baseline: the same RBM trained further with the exact sampler, for as many updates as the spiking
   fine-tuning makes, evaluated with exact block Gibbs.
3. Spiking fine-tuning (:func:`train_digits`, the CD engine with the statistics function
   :class:`~cortexsim.protocols.cd_engine.ClampedStatistics`): the pre-trained RBM is translated onto a LIF
   sampling network built once per checkpoint segment. Each iteration clamps ``batch_size`` training
   images (pixels and label) one after the other for ``clamp_ms`` (data phase: hidden states after
   ``settle_ms``), then lets the network run free for ``model_ms`` (model phase); (W, b) move by the
   difference of the two phases' statistics.
4. Inference by clamping: classification (clamp the image, read the label units' time on; the most
   active label wins) and pattern completion (clamp the pixels an occlusion of ``occlusions`` leaves
   visible -- half, quarter, random 30 % -- and read the hidden ones; a pixel is on if on for more than
   half the read-out time), with the spiking network and with exact Gibbs sampling.

The driver (:func:`train_digits`, :func:`run`) writes ``results.json`` with ``test_accuracy`` and
``completion_error`` (spiking network after fine-tuning), the same before fine-tuning, and
``baseline_test_accuracy`` / ``baseline_completion_error`` (exact Gibbs, same sizes, same number of
updates), ``completion_errors`` per occlusion for both, the exact free-energy accuracies, and the wall time
per CD iteration with its share outside the simulator; figures: receptive fields, confusion matrices,
completion examples, accuracy over training.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cortexsim.checks import check_choice, check_int
from cortexsim.config import config_to_dict
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from cortexsim.results import library_versions, machine_info, output_dir, write_results
from cortexsim.seeds import derive_seed
from cortexsim.timegrid import check_duration

from ..analysis import data_plots, plots
from ..analysis.states import states_on_grid, states_on_grid_from_arrays
from ..backends.spikes import spike_arrays
from ..backends.registry import backend_info, check_backend_seed, check_dt, chip_booking, load_backend
from ..models.boltzmann import BoltzmannMachine
from ..models.cd_learning import (SCHEDULE_KINDS, CDUpdate, LearningRateSchedule, MomentumOptimizer, bipartite_mask,
                                  block_gibbs, check_binary_data, moments_from_states,
                                  unit_on_probability)
from ..models.datasets import digits, downsample, mnist, one_hot, train_test_split
from ..models.rbm_readout import OCCLUSIONS, accuracy, completion_error, occlusion_mask, predicted_labels
from ..models.sampling_network import SYNAPSE_KINDS, build_replicated_network, build_sampling_network
from .calibration import CalibrationConfig, calibrate
from .cd_engine import (CDSettings, CDState, ClampedStatistics, TimedSimulator, load_checkpoint, save_checkpoint,
                        train_cd, training_energy)

__all__ = ["DigitsRBMSettings", "DigitsTrainingConfig", "MnistTrainingConfig", "DATASETS", "load_split",
           "exact_classification", "free_energy_labels", "free_energy_label_posterior", "exact_baseline",
           "image_side", "completion_masks",
           "per_iteration_wall_s", "spiking_evaluation",
           "DigitsTrainingResult", "run", "train_digits", "N_PIXELS",
           "N_LABELS", "N_VISIBLE", "TOP_HALF", "load_digits_split", "rbm_parts", "train_exact", "free_energy_accuracy",
           "evaluate_exact", "exact_completion", "clamped_readout", "evaluate_spiking", "spiking_scores", "initial_rbm",
           "pretrain_exact", "exact_baseline_weights", "rescheduled_checkpoint", "build_training_network",
           "training_network_factory", "training_statistics"]

logger = logging.getLogger(__name__)

N_PIXELS = 64
N_LABELS = 10
N_VISIBLE = N_PIXELS + N_LABELS
#: Pixel indices of the top half of an 8x8 image (rows 0-3), clamped in pattern completion.
TOP_HALF = np.arange(32)


def load_digits_split(threshold: float, test_fraction: float, seed: int):
    """Binarised digits as (train_visible (n, 74), train_labels, test_pixels (m, 64), test_labels)."""
    train, test = train_test_split(digits(binarize=True, threshold=threshold), test_fraction, seed)
    visible = np.hstack([train.x, one_hot(train.y, N_LABELS)])
    return visible, train.y, test.x, test.y


def rbm_parts(W: np.ndarray, b: np.ndarray, n_visible: int = N_VISIBLE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W_vh (n_visible, n_hidden), b_v (n_visible,), b_h (n_hidden,)) of the full (n, n) parameters.

    ``n_visible``: pixels + labels (74 for 8x8 digits, 206 for 14x14 MNIST).
    """
    return W[:n_visible, n_visible:], b[:n_visible], b[n_visible:]


def _full_states(visible: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    return np.hstack([visible, hidden])


def train_exact(W: np.ndarray, b: np.ndarray, update: CDUpdate, data: np.ndarray, iterations: int,
                batch_size: int, chains: np.ndarray, rng: np.random.Generator, first_iteration: int = 0,
                curve_every: int = 0, curve_data: tuple | None = None, n_visible: int = N_VISIBLE,
                data_samples: int = 0, restart_sweeps: int = 0):
    """Exact-sampler CD (persistent chains) on an RBM; returns (W, b, chains, curve).

    Data phase: ``p(h | v)`` of a mini-batch of ``batch_size`` rows of ``data`` (n, pixels + 10); model
    phase: one block-Gibbs sweep of the persistent ``chains`` (c, 74). The update is ``update``
    (:class:`cortexsim.models.cd_learning.CDUpdate` with the bipartite mask), the same as the spiking
    engine's. ``curve`` lists (iteration, exact test accuracy) every ``curve_every`` iterations when
    ``curve_data = (test_pixels, test_labels)`` is given. ``n_visible``: pixels + labels (74 for 8x8 digits).

    Two diagnosis options make the estimator behave like a spiking one (defaults 0: the exact estimator above,
    bit for bit): ``data_samples`` k > 0 replaces ``p(h | v)`` in the data phase by the mean of k binary samples
    of it per image (a clamped spiking network reads a few refractory periods per image); ``restart_sweeps``
    s > 0 restarts the c chains every iteration from the mini-batch's LAST c images and averages the model
    moments over s sweeps (CD-s started at the data, as a free phase that follows the last clamped image)
    instead of one sweep of persistent chains.
    """
    data = check_binary_data(data, n_visible, "training data")
    check_int(data_samples, "data_samples", minimum=0)
    check_int(restart_sweeps, "restart_sweeps", minimum=0)
    if restart_sweeps and len(chains) > batch_size:
        raise ValueError(f"restart_sweeps needs at most batch_size ({batch_size}) chains, got {len(chains)}")
    curve = []
    for iteration in range(first_iteration, first_iteration + iterations):
        W_vh, b_v, b_h = rbm_parts(W, b, n_visible)
        batch = data[rng.integers(0, data.shape[0], batch_size)]
        p_h = unit_on_probability(b_h + batch @ W_vh)
        if data_samples:
            p_h = (rng.random((data_samples,) + p_h.shape) < p_h).mean(axis=0)
        data_moments = moments_from_states(_full_states(batch, p_h))
        if restart_sweeps:
            chains = batch[len(batch) - len(chains):].copy()
        sweeps = []
        for _ in range(max(restart_sweeps, 1)):
            chains, _, _ = block_gibbs(W_vh, b_v, b_h, chains, 1, rng)
            sweeps.append(_full_states(chains, unit_on_probability(b_h + chains @ W_vh)))
        model_moments = moments_from_states(np.vstack(sweeps))
        W, b = update(iteration, W, b, data_moments, model_moments)
        if curve_every and curve_data is not None and (iteration + 1) % curve_every == 0:
            curve.append((iteration + 1, free_energy_accuracy(W, b, *curve_data)))
    return W, b, chains, curve


def free_energy_accuracy(W: np.ndarray, b: np.ndarray, pixels: np.ndarray, labels: np.ndarray) -> float:
    """Exact classification accuracy: argmax over one-hot labels y of ``-F(pixels, y)`` (free energy)."""
    return float(np.mean(free_energy_labels(W, b, pixels) == labels))


def free_energy_labels(W: np.ndarray, b: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Exact classification: per image (rows of ``pixels``, (m, P)) the label y maximising ``-F(pixels, y)``.

    Examples
    --------
    >>> W = np.zeros((12, 12)); b = np.zeros(12); b[2 + 1] = 1.0    # 2 pixels, 10 labels; label 1 favoured
    >>> free_energy_labels(W, b, np.zeros((3, 2))).tolist()
    [1, 1, 1]
    """
    return np.argmax(_label_scores(W, b, pixels), axis=1)


def free_energy_label_posterior(W: np.ndarray, b: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Exact label posterior p(y | pixels) of the RBM (W, b) with one-hot labels, (m, 10): softmax of ``-F``.

    Units ordered [pixels | 10 labels | hidden]; the hidden units are summed out (``F`` the free energy).

    Examples
    --------
    >>> W = np.zeros((12, 12)); b = np.zeros(12); b[2 + 1] = np.log(2.0)    # label 1 twice as likely as each other
    >>> round(float(free_energy_label_posterior(W, b, np.zeros((1, 2)))[0, 1]), 4)   # 2 / 11
    0.1818
    """
    scores = _label_scores(W, b, pixels)
    scores -= scores.max(axis=1, keepdims=True)
    p = np.exp(scores)
    return p / p.sum(axis=1, keepdims=True)


def _label_scores(W: np.ndarray, b: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """``-F(pixels, y)`` per image and label, (m, 10)."""
    n_pixels = pixels.shape[1]
    W_vh, b_v, b_h = rbm_parts(W, b, n_pixels + N_LABELS)
    pixel_input = b_h + pixels @ W_vh[:n_pixels]          # shared by all labels: one matrix product
    pixel_bias = pixels @ b_v[:n_pixels]
    return np.stack([pixel_bias + b_v[n_pixels + k] + np.logaddexp(0.0, pixel_input + W_vh[n_pixels + k]).sum(axis=1)
                     for k in range(N_LABELS)], axis=1)


def evaluate_exact(W: np.ndarray, b: np.ndarray, pixels: np.ndarray, labels: np.ndarray, n_sweeps: int,
                   burn_in: int, rng: np.random.Generator, completion_pixels: np.ndarray,
                   occluded: np.ndarray | None = None) -> dict:
    """Classification accuracy and completion error with exact block-Gibbs sampling.

    Classification: pixels clamped, labels start at 0; the label with the highest mean sampled state
    over sweeps ``burn_in ..`` wins. Completion: the pixels not ``occluded`` (bool (m, 64); default the
    bottom half, :func:`cortexsim.models.rbm_readout.occlusion_mask` ``"half"``) clamped, the rest starts
    random; a pixel is predicted on if its mean sampled state exceeds 1/2. Images of any size P
    (``pixels`` (m, P), P a square; 64 for 8x8 digits).
    """
    accuracy = float(np.mean(exact_classification(W, b, pixels, n_sweeps, burn_in, rng) == labels))
    hidden = _occluded(occluded, *completion_pixels.shape)
    completed = exact_completion(W, b, completion_pixels, hidden, n_sweeps, burn_in, rng)
    return {"accuracy": accuracy, "completion_error": completion_error(completed, completion_pixels, hidden)}


def exact_classification(W: np.ndarray, b: np.ndarray, pixels: np.ndarray, n_sweeps: int, burn_in: int,
                         rng: np.random.Generator) -> np.ndarray:
    """Predicted labels by exact block Gibbs: ``pixels`` (m, P) clamped, labels start at 0, the label unit
    with the highest mean sampled state over sweeps ``burn_in ..`` wins (ties: the lowest label).

    Examples
    --------
    >>> W = np.zeros((12, 12)); b = np.zeros(12); b[2:] = -20.0; b[2 + 7] = 20.0   # 2 pixels: label 7 always on
    >>> exact_classification(W, b, np.zeros((2, 2)), 10, 2, np.random.default_rng(0)).tolist()
    [7, 7]
    """
    n_pixels = pixels.shape[1]
    W_vh, b_v, b_h = rbm_parts(W, b, n_pixels + N_LABELS)
    clamp = np.zeros(n_pixels + N_LABELS, dtype=bool)
    clamp[:n_pixels] = True
    start = np.hstack([pixels, np.zeros((pixels.shape[0], N_LABELS))])
    _, v_mean, _ = block_gibbs(W_vh, b_v, b_h, start, n_sweeps, rng, clamp, record_from=burn_in)
    return predicted_labels(v_mean[:, n_pixels:])


def image_side(n_pixels: int) -> int:
    """Side of a square image of ``n_pixels`` pixels (ValueError if not a square)."""
    side = int(round(np.sqrt(n_pixels)))
    if side * side != n_pixels:
        raise ValueError(f"images must be square; got {n_pixels} pixels per image")
    return side


def _occluded(occluded: np.ndarray | None, n_images: int, n_pixels: int = N_PIXELS) -> np.ndarray:
    """The given occlusion mask, or the bottom half of every image."""
    return (occlusion_mask("half", n_images, image_side(n_pixels)) if occluded is None
            else np.asarray(occluded, dtype=bool))


def exact_completion(W: np.ndarray, b: np.ndarray, pixels: np.ndarray, occluded: np.ndarray, n_sweeps: int,
                     burn_in: int, rng: np.random.Generator) -> np.ndarray:
    """Mean block-Gibbs pixel states (m, P) with the pixels not ``occluded`` (bool (m, P)) clamped.

    The hidden pixels and the labels start random (uniform 0/1); means over sweeps ``burn_in ..``.
    """
    n_pixels = pixels.shape[1]
    W_vh, b_v, b_h = rbm_parts(W, b, n_pixels + N_LABELS)
    occluded = np.asarray(occluded, dtype=bool)
    clamp = np.hstack([~occluded, np.zeros((occluded.shape[0], N_LABELS), dtype=bool)])
    start = np.hstack([pixels, np.zeros((pixels.shape[0], N_LABELS))])
    if np.all(clamp == clamp[:1]):      # one mask for all images: one draw over its free columns
        clamp = clamp[0]
        start[:, ~clamp] = rng.integers(0, 2, size=(start.shape[0], int((~clamp).sum())))
    else:
        start = np.where(clamp, start, rng.integers(0, 2, size=start.shape))
    _, v_mean, _ = block_gibbs(W_vh, b_v, b_h, start, n_sweeps, rng, clamp, record_from=burn_in)
    return v_mean[:, :n_pixels]


def clamped_readout(network, timed: TimedSimulator, clamps, config, chunk: int = 50, progress: bool = False,
                    label: str = "evaluation", schedule: bool = False, on_states=None) -> np.ndarray:
    """Fraction of read-out time every neuron of ``network`` is on, per clamp of ``clamps``.

    ``clamps`` is a sequence of ``(units, values)`` (indices into the network's population and their
    0/1 values). Each is clamped in turn for ``config.eval_settle_ms + config.eval_read_ms`` (through the
    network's ``clamp``); the read-out window is the last ``eval_read_ms``, read on a grid of
    ``config.readout_dt_ms``. Returns (len(clamps), population size) on-fractions; the network's leak
    potentials are restored after. With ``progress``, a progress bar counts the clamps.

    With ``schedule``, each chunk of ``chunk`` clamps runs as ONE parameter schedule of leak potentials
    (:meth:`TimedSimulator.run_schedule`: one launch of the compiled binary on ``brian2_standalone``,
    ``population.set`` + ``run`` per clamp elsewhere) and spikes are read as arrays; the last chunk is
    padded with repeats of its last clamp (read-outs discarded) so that every launch has one shape and
    the project compiles once.

    ``on_states`` (optional) is called with every chunk's 0/1 states of all neurons on the read-out grid
    (steps, population size), consecutive chunks continuing each other in time (padding of the last
    scheduled chunk included): e.g. :class:`~cortexsim.models.ensemble_background.SourceEfficacy` ``.add``.
    """
    if schedule:
        return _scheduled_readout(network, timed, list(clamps), config, chunk, progress, label, on_states)
    tau_ref = network.neuron.tau_refrac
    dt = config.readout_dt_ms
    clamps = list(clamps)
    out = np.empty((len(clamps), network.population.size))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(clamps), desc=label, unit="image")
    for start in range(0, len(clamps), chunk):
        windows = []
        t_begin = timed.t_ms
        for units, values in clamps[start:start + chunk]:
            network.clamp(units, values, config.clamp_bias)
            t0, t1 = timed.run(config.eval_settle_ms + config.eval_read_ms)
            windows.append((t0 + config.eval_settle_ms, t1))
        states = states_on_grid(network.spiketrains(clear=True), tau_ref, t_begin, timed.t_ms, dt)
        if on_states is not None:
            on_states(states)
        out[start:start + len(windows)] = _window_means(states, windows, t_begin, dt)
        if bar is not None:
            bar.update(len(windows))
    if bar is not None:
        bar.close()
    network.release()
    return out


def _window_means(states: np.ndarray, windows: list, t_begin: float, dt: float) -> np.ndarray:
    """Mean of the state rows (a grid of ``dt`` ms from ``t_begin``) in each ``(t0, t1)`` window (ms)."""
    return np.array([states[int(round((t0 - t_begin) / dt)):int(round((t1 - t_begin) / dt))].mean(axis=0)
                     for t0, t1 in windows])


def _scheduled_readout(network, timed: TimedSimulator, clamps: list, config, chunk: int, progress: bool,
                       label: str, on_states=None) -> np.ndarray:
    """:func:`clamped_readout` with one parameter schedule per chunk of clamps."""
    dt, tau_ref = config.readout_dt_ms, network.neuron.tau_refrac
    per_clamp = config.eval_settle_ms + config.eval_read_ms
    out = np.empty((len(clamps), network.population.size))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(clamps), desc=label, unit="image")
    for start in range(0, len(clamps), chunk):
        block = clamps[start:start + chunk]
        padded = block + [block[-1]] * (chunk - len(block))
        leaks = np.vstack([network.clamp_schedule(units, [values], config.clamp_bias)[0] for units, values in padded])
        t_begin = timed.t_ms
        phases = timed.run_schedule(network.population, "v_rest", leaks, [per_clamp] * len(padded))
        times, indices = spike_arrays(network.population, clear=True)
        states = states_on_grid_from_arrays(times, indices, network.population.size, tau_ref, t_begin, timed.t_ms, dt)
        if on_states is not None:
            on_states(states)
        windows = [(t0 + config.eval_settle_ms, t1) for t0, t1 in phases[:len(block)]]
        out[start:start + len(block)] = _window_means(states, windows, t_begin, dt)
        if bar is not None:
            bar.update(len(block))
    if bar is not None:
        bar.close()
    network.release()
    return out


def evaluate_spiking(network, timed: TimedSimulator, pixels: np.ndarray, clamp_pixels: np.ndarray,
                     config, chunk: int = 50, progress: bool = False, label: str = "evaluation",
                     schedule: bool = False) -> np.ndarray:
    """Fraction of read-out time each unit is on, per image, with ``clamp_pixels`` clamped.

    ``clamp_pixels``: pixel indices clamped in every image, or a bool array (m, 64) of the pixels
    clamped per image. Each image is clamped for ``eval_settle_ms + eval_read_ms``; the read-out window
    is the last ``eval_read_ms`` (:func:`clamped_readout`). Returns (m, n) on-fractions.
    """
    clamp = np.asarray(clamp_pixels)
    if clamp.dtype == bool:
        clamps = [(np.flatnonzero(row), image[row]) for image, row in zip(pixels, clamp)]
    else:
        clamps = [(clamp, image[clamp]) for image in pixels]
    return clamped_readout(network, timed, clamps, config, chunk, progress, label, schedule)


def spiking_scores(on_fraction_classify: np.ndarray, labels: np.ndarray, on_fraction_complete: np.ndarray,
                   completion_pixels: np.ndarray, occluded: np.ndarray | None = None) -> dict:
    """Accuracy and completion error from the spiking read-outs of :func:`evaluate_spiking`
    (``occluded``: the hidden pixels, bool (m, 64); default the bottom half)."""
    n_pixels = completion_pixels.shape[1]
    occluded = _occluded(occluded, *completion_pixels.shape)
    return {"accuracy": accuracy(predicted_labels(on_fraction_classify[:, n_pixels:n_pixels + N_LABELS]), labels),
            "completion_error": completion_error(on_fraction_complete[:, :n_pixels], completion_pixels, occluded)}


def initial_rbm(n_hidden: int, rng: np.random.Generator, scale: float = 0.01,
                n_visible: int = N_VISIBLE) -> BoltzmannMachine:
    """Small random visible-hidden weights (N(0, scale^2)), zero biases (``n_visible``: pixels + labels)."""
    n = n_visible + n_hidden
    W = np.zeros((n, n))
    W_vh = rng.normal(0.0, scale, size=(n_visible, n_hidden))
    W[:n_visible, n_visible:] = W_vh
    W[n_visible:, :n_visible] = W_vh.T
    return BoltzmannMachine(W, np.zeros(n))



@dataclass(frozen=True)
class DigitsRBMSettings:
    """Settings every task shares that trains digit RBMs by spiking CD (times in ms; rates dimensionless).

    The digits task (:class:`DigitsTrainingConfig`) and the ensembles on data
    (:class:`cortexsim.protocols.ensemble_data.EnsembleDataConfig`) extend it with their own settings;
    :meth:`check_rbm_settings` holds the checks they share (each error names the parameter and its range).

    Attributes
    ----------
    seed : int
        Seed (required): data split, initial weights, mini-batches, Gibbs chains, simulator seeds.
    backend : str
        Registered backend name.
    n_hidden : int
        Hidden units (>= 1); a network has 74 + n_hidden neurons.
    binarize_threshold : float
        Pixel threshold in (0, 1) (pixels are scaled to [0, 1]).
    test_fraction : float
        Share of held-out images, in (0, 1) (0.2: 359 test images).
    pretrain_iterations, pretrain_learning_rate, pretrain_schedule_tau, pretrain_batch_size : int, float, float, int
        Exact-sampler pre-training (0 iterations: the spiking network starts from small random weights,
        and the spiking figure owes nothing to exact sampling).
    batch_size : int
        Training images clamped per iteration (spiking and exact baseline).
    learning_rate, schedule, schedule_tau, momentum, weight_decay
        CD optimizer (eta0; "constant" or "inverse"; tau in iterations; momentum in [0, 1); L2 penalty);
        pre-training uses the same except rate and tau.
    gibbs_chains : int
        Persistent chains of the exact sampler's model phase.
    clamp_ms, settle_ms, model_ms : float
        Clamp time per training image, its discarded start, free-running time per iteration (ms).
    clamp_bias : float
        Bias magnitude that clamps a unit (BM units, > 0).
    readout_dt_ms : float
        Grid on which spiking states are read (ms).
    eval_settle_ms, eval_read_ms : float
        Per test image: settling time and read-out time of the spiking inference (ms).
    eval_gibbs_sweeps, eval_gibbs_burn_in : int
        Exact inference: sweeps and discarded sweeps per test image.
    n_test_images : int
        Test images classified (the first ones of the test split); 0: all.
    n_completion_images : int
        Test images used for pattern completion (the first ones of the test split), >= 1.
    checkpoint_every : int
        CD iterations per training segment (fresh simulation, checkpoint at its end).
    dt_ms, synapses, neuron, noise
        Simulation step (ms), recurrent synapse kind, neuron and noise parameters (PyNN units).

    Examples
    --------
    >>> DigitsTrainingConfig(seed=1, n_hidden=20).model_ms
    400.0
    """

    seed: int
    backend: str = "nest"
    n_hidden: int = 100
    binarize_threshold: float = 0.5
    test_fraction: float = 0.2
    pretrain_iterations: int = 10000
    pretrain_learning_rate: float = 0.05
    pretrain_schedule_tau: float = 1000.0
    pretrain_batch_size: int = 20
    batch_size: int = 10
    learning_rate: float = 0.005
    schedule: str = "inverse"
    schedule_tau: float = 100.0
    momentum: float = 0.5
    weight_decay: float = 0.001
    gibbs_chains: int = 20
    clamp_ms: float = 60.0
    settle_ms: float = 20.0
    model_ms: float = 400.0
    clamp_bias: float = 40.0
    readout_dt_ms: float = 1.0
    eval_settle_ms: float = 20.0
    eval_read_ms: float = 200.0
    eval_gibbs_sweeps: int = 50
    eval_gibbs_burn_in: int = 5
    n_test_images: int = 0
    n_completion_images: int = 100
    checkpoint_every: int = 25
    dt_ms: float = 0.1
    synapses: str = "renewing"
    neuron: NeuronParameters = DEFAULT_NEURON
    noise: NoiseParameters = DEFAULT_NOISE

    def check_rbm_settings(self) -> None:
        """The checks of the shared settings (before anything runs); raises ValueError naming the parameter."""
        backend_info(self.backend)
        check_backend_seed(self.backend, self.seed)
        check_dt(self.backend, self.dt_ms)
        check_choice(self.synapses, "synapses", SYNAPSE_KINDS)
        check_choice(self.schedule, "schedule", SCHEDULE_KINDS)
        LearningRateSchedule(self.pretrain_learning_rate, self.schedule, self.pretrain_schedule_tau)
        for name in ("n_hidden", "batch_size", "pretrain_batch_size", "gibbs_chains", "eval_gibbs_sweeps",
                     "n_completion_images", "checkpoint_every"):
            check_int(getattr(self, name), name, minimum=1)
        for name in ("n_test_images", "pretrain_iterations"):
            check_int(getattr(self, name), name, minimum=0)
        for name in ("binarize_threshold", "test_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in (0, 1), got {getattr(self, name)!r}")
        if not 0 <= self.eval_gibbs_burn_in < self.eval_gibbs_sweeps:
            raise ValueError(f"eval_gibbs_burn_in must lie in [0, eval_gibbs_sweeps), got {self.eval_gibbs_burn_in}")
        for name in ("clamp_ms", "model_ms", "eval_read_ms"):      # whole steps of dt: every valid duration runs
            check_duration(getattr(self, name), self.dt_ms, name)
        for name in ("clamp_bias", "readout_dt_ms"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")
        if not 0 <= self.settle_ms < self.clamp_ms:
            raise ValueError(f"settle_ms must lie in [0, clamp_ms) ms, got {self.settle_ms!r}")
        if not np.isfinite(self.eval_settle_ms) or self.eval_settle_ms < 0:
            raise ValueError(f"eval_settle_ms must be a finite number >= 0 (ms), got {self.eval_settle_ms!r}")

    def calibration(self) -> CalibrationConfig:
        return CalibrationConfig(seed=self.seed, backend=self.backend, neuron=self.neuron,
                                 noise=self.noise, dt_ms=self.dt_ms)


#: Data sets of the task: scikit-learn's 8x8 digits, MNIST (downsampled to ``image_side``).
DATASETS = ("digits", "mnist")


@dataclass(frozen=True)
class DigitsTrainingConfig(DigitsRBMSettings):
    """Settings of the digits task: the shared digit-RBM settings (:class:`DigitsRBMSettings`) plus its
    length, the data set and the evaluation.

    Attributes
    ----------
    iterations : int
        Spiking CD updates (fine-tuning after any pre-training); the exact baseline makes as many.
    dataset : str
        "digits" (scikit-learn 8x8, split by ``test_fraction``) or "mnist" (60,000 training / 10,000
        test images, downsampled to ``image_side`` and binarised at ``binarize_threshold``).
    image_side : int
        MNIST only: side of the downsampled images, in [2, 28] (14: 196 pixels).
    n_train_images : int
        Training images used (a seeded subset of the training split); 0: all.
    validation_images : int
        >= 1: hold out this many training images and evaluate on them instead of the test set (for
        choosing hyper-parameters); 0: evaluate on the test set.
    occlusions : tuple of str
        Pattern-completion occlusions, each of "half", "quarter", "random30" at most once
        (:func:`cortexsim.models.rbm_readout.occlusion_mask`).
    eval_chunk : int
        Test images per launch of the spiking evaluation (one parameter schedule), >= 1.
    average_fraction : float
        In [0, 1): the trained parameters (spiking run and exact baseline alike) are the mean of the
        iterates over this last fraction of the updates (Polyak-Ruppert averaging); 0: the last iterate.
    data_copies : int
        Spiking CD: copies of the RBM clamped in the data phase, >= 1, dividing ``batch_size`` (the batch is
        split among them: the data phase takes ``batch_size / data_copies`` clamps of ``clamp_ms``).
    free_chains : int
        Spiking CD: persistent free-running copies of the RBM in the same simulation (same weights,
        independent noise, never clamped), >= 0, whose states over the whole iteration give the model
        moments (pooled over the chains). 0 (default): today's route, the model moments from the clamped
        network's free run of ``model_ms`` after the data phase. See
        :class:`~cortexsim.protocols.cd_engine.ClampedStatistics`.

    Examples
    --------
    >>> DigitsTrainingConfig(seed=1, iterations=50).cd_settings().iterations
    50
    """

    iterations: int = 200
    dataset: str = "digits"
    image_side: int = 14
    n_train_images: int = 0
    validation_images: int = 0
    occlusions: tuple = OCCLUSIONS
    eval_chunk: int = 50
    average_fraction: float = 0.0
    data_copies: int = 1
    free_chains: int = 0

    def __post_init__(self):
        self.check_rbm_settings()
        check_int(self.data_copies, "data_copies", minimum=1)
        check_int(self.free_chains, "free_chains", minimum=0)
        if self.batch_size % self.data_copies:
            raise ValueError(f"data_copies must divide batch_size ({self.batch_size}), got {self.data_copies}")
        check_choice(self.dataset, "dataset", DATASETS)
        check_int(self.image_side, "image_side", minimum=2)
        if self.image_side > 28:
            raise ValueError(f"image_side must lie in [2, 28] (MNIST is 28x28), got {self.image_side}")
        check_int(self.n_train_images, "n_train_images", minimum=0)
        check_int(self.validation_images, "validation_images", minimum=0)
        check_int(self.eval_chunk, "eval_chunk", minimum=1)
        occlusions = (self.occlusions,) if isinstance(self.occlusions, str) else tuple(self.occlusions)
        object.__setattr__(self, "occlusions", occlusions)
        if not occlusions or len(set(occlusions)) != len(occlusions) or not set(occlusions) <= set(OCCLUSIONS):
            raise ValueError(f"occlusions must name each kind of {OCCLUSIONS} at most once, got {occlusions!r}")
        self.cd_settings()  # iterations, optimizer, checkpoint_every

    @property
    def n_pixels(self) -> int:
        """Pixels per image (64 for digits, ``image_side**2`` for MNIST)."""
        return N_PIXELS if self.dataset == "digits" else self.image_side ** 2

    @property
    def copies(self) -> int:
        """Copies of the RBM in a training simulation (``data_copies + free_chains``)."""
        return self.data_copies + self.free_chains

    def cd_settings(self) -> CDSettings:
        """How the CD engine fine-tunes (one iteration: batch_size clamped images, then model_ms free)."""
        return CDSettings(iterations=self.iterations, sampling_ms=self.model_ms, learning_rate=self.learning_rate,
                          schedule=self.schedule, schedule_tau=self.schedule_tau, momentum=self.momentum,
                          weight_decay=self.weight_decay, dt_ms=self.dt_ms, checkpoint_every=self.checkpoint_every,
                          average_fraction=self.average_fraction)


@dataclass(frozen=True)
class MnistTrainingConfig(DigitsTrainingConfig):
    """The MNIST task (``cortexsim train-cd --task mnist``): :class:`DigitsTrainingConfig` with MNIST defaults.

    14x14 binarised MNIST (196 pixels) + 10 label units, 500 hidden units, trained by spiking CD from
    small random weights (no exact pre-training); schedule chosen with the exact model on a validation
    split (``benchmarks/spiking_rbm_data.py``). Evaluation: the whole 10,000-image test set.

    Examples
    --------
    >>> config = MnistTrainingConfig(seed=1, n_hidden=20, n_train_images=100, n_test_images=10, iterations=5)
    >>> config.n_pixels, config.pretrain_iterations
    (196, 0)
    """

    dataset: str = "mnist"
    n_hidden: int = 500
    pretrain_iterations: int = 0
    iterations: int = 10000
    learning_rate: float = 0.1
    schedule_tau: float = 2000.0
    eval_read_ms: float = 100.0
    checkpoint_every: int = 100


def load_split(config: DigitsTrainingConfig):
    """Training rows and evaluation images of ``config``'s data set.

    Returns ``(train_visible (n, P + 10), train_labels, eval_pixels (m, P), eval_labels)``: binarised
    pixels and one-hot labels; the evaluation images are the test split (its first ``n_test_images``,
    0: all) or, with ``validation_images``, that many held-out training images.
    """
    if config.dataset == "digits":
        train, test = train_test_split(digits(binarize=True, threshold=config.binarize_threshold),
                                       config.test_fraction, config.seed)
        train_x, train_y, test_x, test_y = train.x, train.y, test.x, test.y
    else:
        train, test = (downsample(mnist(split), config.image_side) for split in ("train", "test"))
        order = np.random.default_rng(derive_seed(config.seed, 17)).permutation(len(train.y))
        train_x = (train.x[order] > config.binarize_threshold).astype(float)
        train_y = train.y[order]
        test_x, test_y = (test.x > config.binarize_threshold).astype(float), test.y
    if config.validation_images:
        if config.validation_images >= len(train_y):
            raise ValueError(f"validation_images must be < the {len(train_y)} training images, "
                             f"got {config.validation_images}")
        test_x, test_y = train_x[:config.validation_images], train_y[:config.validation_images]
        train_x, train_y = train_x[config.validation_images:], train_y[config.validation_images:]
    if config.n_train_images:
        train_x, train_y = train_x[:config.n_train_images], train_y[:config.n_train_images]
    if config.n_test_images:
        test_x, test_y = test_x[:config.n_test_images], test_y[:config.n_test_images]
    return np.hstack([train_x, one_hot(train_y, N_LABELS)]), train_y, test_x, test_y


@dataclass
class DigitsTrainingResult:
    """Outcome of :func:`train_digits`."""

    config: DigitsTrainingConfig
    scores: dict
    history: dict
    timing: dict
    fit: ActivationFit
    final: BoltzmannMachine
    files: dict = field(default_factory=dict)
    energy: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Headline figures: test accuracy and completion error, spiking (before/after fine-tuning) and
        the exact-Gibbs baseline; wall time per CD iteration and its share outside the simulator; energy
        per training iteration (J, :func:`cortexsim.protocols.cd_engine.training_energy`)."""
        s = self.scores
        return {"test_accuracy": s["spiking_after"]["accuracy"],
                "test_accuracy_before_finetuning": s["spiking_before"].get("accuracy"),
                "baseline_test_accuracy": s["baseline"]["accuracy"],
                "completion_error": s["spiking_after"]["completion_error"],
                "baseline_completion_error": s["baseline"]["completion_error"],
                "completion_errors": s["spiking_after"].get("completion_errors"),
                "baseline_completion_errors": s["baseline"].get("completion_errors"),
                "iteration_wall_s": per_iteration_wall_s(self.timing),
                "outside_simulator_fraction": self.timing.get("overhead_fraction"),
                "iterations": self.config.iterations, "backend": self.config.backend, "dataset": self.config.dataset,
                "energy_j_per_iteration": self.energy.get("j_per_iteration"), "energy_model": self.energy.get("model")}

    def to_dict(self) -> dict:
        """Everything, as ``results.json`` holds it."""
        s = self.scores
        return {"task": self.config.dataset,
                "test_accuracy": s["spiking_after"]["accuracy"],
                "completion_error": s["spiking_after"]["completion_error"],
                "completion_errors": s["spiking_after"].get("completion_errors"),
                "test_accuracy_before_finetuning": s["spiking_before"].get("accuracy"),
                "completion_error_before_finetuning": s["spiking_before"].get("completion_error"),
                "baseline_test_accuracy": s["baseline"]["accuracy"],
                "baseline_free_energy_accuracy": s["baseline"].get("free_energy_accuracy"),
                "spiking_free_energy_accuracy": s["spiking_after"].get("free_energy_accuracy"),
                "baseline_completion_error": s["baseline"]["completion_error"],
                "baseline_completion_errors": s["baseline"].get("completion_errors"),
                "pretrained_exact": s["pretrained_exact"],
                "n_test_images": len(s["spiking_after"].get("predicted", [])) or None,
                "completion_error_definition": "fraction of wrong hidden pixels, the visible ones clamped "
                                               "(completion_error: the first of config.occlusions)",
                "iteration_wall_s": per_iteration_wall_s(self.timing),
                "config": config_to_dict(self.config), "activation_fit": self.fit.to_dict(),
                "history": self.history, "timing": self.timing, "energy": self.energy, "versions": library_versions(),
                "machine": machine_info(), "files": self.files}


def per_iteration_wall_s(timing: dict) -> float | None:
    """Wall time of the training loop per CD iteration (s; network builds and compilation included).

    Examples
    --------
    >>> per_iteration_wall_s({"training_wall_s": 30.0, "iterations_timed": 20})
    1.5
    """
    n = timing.get("iterations_timed", 0)
    return float(timing["training_wall_s"]) / n if n else None


def pretrain_exact(config: DigitsTrainingConfig, data, test_x, test_y):
    """The exact-sampler pre-training of the digits task (pure numpy, deterministic in the seed).

    Returns ``(W, b, chains, rng, curve)``: the pre-trained parameters, the persistent chains and the
    generator (the baseline continues with both), and (iteration, exact test accuracy) pairs. Also used
    by :mod:`cortexsim.protocols.mixing` (the digits RBM it runs free). The visible layer has as many
    units as ``data`` has columns (pixels + 10 labels).
    """
    n_visible = np.shape(data)[1]
    rng = np.random.default_rng(derive_seed(config.seed, 11))
    start = initial_rbm(config.n_hidden, rng, n_visible=n_visible)
    W, b = np.array(start.W), np.array(start.b)
    chains = data[rng.integers(0, data.shape[0], config.gibbs_chains)].copy()
    mask = bipartite_mask(n_visible, config.n_hidden)
    pretrain = CDUpdate(LearningRateSchedule(config.pretrain_learning_rate, config.schedule,
                                             config.pretrain_schedule_tau),
                        MomentumOptimizer.create(W.shape[0], config.momentum, config.weight_decay), mask)
    curve = []
    if config.pretrain_iterations:
        W, b, chains, curve = train_exact(W, b, pretrain, data, config.pretrain_iterations,
                                          config.pretrain_batch_size, chains, rng,
                                          curve_every=max(1, config.pretrain_iterations // 20),
                                          curve_data=(test_x, test_y), n_visible=n_visible)
    return W, b, chains, rng, curve


def completion_masks(config: DigitsTrainingConfig, completion_pixels: np.ndarray) -> dict:
    """Occlusion mask (bool (m, P)) per kind of ``config.occlusions``; random30 drawn from the seed."""
    rng = np.random.default_rng(derive_seed(config.seed, 16))
    side = image_side(completion_pixels.shape[1])
    return {kind: occlusion_mask(kind, completion_pixels.shape[0], side, rng) for kind in config.occlusions}


def _scores(predicted, labels, completed: dict, truth, masks: dict, n_examples: int = 4, **extra) -> dict:
    """Accuracy, completion error per occlusion (the first one also as ``completion_error``), predicted
    labels and a few completion examples."""
    errors = {kind: completion_error(completed[kind], truth, masks[kind]) for kind in masks}
    examples = {kind: [{"truth": truth[i].tolist(), "occluded": masks[kind][i].tolist(),
                        "completed": np.asarray(completed[kind][i], dtype=float).round(3).tolist()}
                       for i in range(min(n_examples, len(truth)))] for kind in masks}
    return {"accuracy": accuracy(np.asarray(predicted), labels), "completion_error": errors[next(iter(masks))],
            "completion_errors": errors, "predicted": np.asarray(predicted).tolist(), "examples": examples, **extra}


def _exact_scores(config: DigitsTrainingConfig, W, b, test_x, test_y, rng: np.random.Generator) -> dict:
    """Exact block-Gibbs classification (label read-out) and completion per occlusion, plus the
    free-energy accuracy."""
    predicted = exact_classification(W, b, test_x, config.eval_gibbs_sweeps, config.eval_gibbs_burn_in, rng)
    truth = test_x[:config.n_completion_images]
    masks = completion_masks(config, truth)
    completed = {kind: exact_completion(W, b, truth, mask, config.eval_gibbs_sweeps, config.eval_gibbs_burn_in, rng)
                 for kind, mask in masks.items()}
    return _scores(predicted, test_y, completed, truth, masks,
                   free_energy_accuracy=free_energy_accuracy(W, b, test_x, test_y))


def _baseline_training(config: DigitsTrainingConfig, data, test_x, test_y):
    """Exact pre-training and the exact baseline's CD (pure numpy, deterministic in the seed): the pre-trained
    (W, b) and curve, the baseline's trained (W, b) (iterate average or last iterate) and curve, and the wall
    time of the baseline's training (s)."""
    W, b, chains, rng, curve = pretrain_exact(config, data, test_x, test_y)
    mask = bipartite_mask(data.shape[1], config.n_hidden)
    pre_W, pre_b = W.copy(), b.copy()
    tic = time.perf_counter()
    update = config.cd_settings().update(mask, W.shape[0])
    _, _, _, base_curve = train_exact(W, b, update, data, config.iterations, config.batch_size, chains, rng,
                                      curve_every=config.checkpoint_every, curve_data=(test_x, test_y),
                                      n_visible=data.shape[1])
    base_W, base_b = update.result()    # the iterate average (config.average_fraction) or the last iterate
    return pre_W, pre_b, curve, base_W, base_b, base_curve, time.perf_counter() - tic


def _prepare(config: DigitsTrainingConfig, data, test_x, test_y) -> dict:
    """Exact pre-training and the exact baseline (pure numpy, deterministic in the seed)."""
    pre_W, pre_b, curve, base_W, base_b, base_curve, train_s = _baseline_training(config, data, test_x, test_y)
    eval_rng = np.random.default_rng(derive_seed(config.seed, 12))
    pretrained = _exact_scores(config, pre_W, pre_b, test_x, test_y, eval_rng) if config.pretrain_iterations else None
    tic = time.perf_counter()
    baseline = _exact_scores(config, base_W, base_b, test_x, test_y, eval_rng)
    baseline["wall_s"] = train_s + time.perf_counter() - tic
    return {"W": pre_W.tolist(), "b": pre_b.tolist(), "pretrained_exact": pretrained, "baseline": baseline,
            "pretrain_curve": curve, "baseline_curve": base_curve, "baseline_W_vh": rbm_parts(
                base_W, base_b, data.shape[1])[0].round(4).tolist()}


def exact_baseline_weights(config: DigitsTrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    """The trained (W, b) of :func:`exact_baseline` (its checkpoint keeps only the rounded visible-hidden
    weights), recomputed: the same deterministic pre-training and CD, no scoring.

    Examples
    --------
    >>> config = DigitsTrainingConfig(seed=1, n_hidden=4, pretrain_iterations=0, iterations=4, checkpoint_every=2,
    ...                               n_test_images=5)
    >>> exact_baseline_weights(config)[0].shape
    (78, 78)
    """
    data, _, test_x, test_y = load_split(config)
    return _baseline_training(config, data, test_x, test_y)[3:5]


def exact_baseline(config: DigitsTrainingConfig) -> dict:
    """The exact part of :func:`train_digits` alone (pure numpy): optional pre-training, then the exact-Gibbs CD
    baseline (same architecture, number of updates and schedule as the spiking run), scored on the evaluation
    images (test set, or ``validation_images`` held-out training images). Returns the ``prepared`` dict of the
    checkpoint: ``baseline`` (``accuracy`` (label read-out), ``free_energy_accuracy``, ``completion_errors``
    per occlusion, ``wall_s``), ``baseline_curve`` ((iteration, free-energy accuracy) per ``checkpoint_every``).

    Examples
    --------
    >>> config = DigitsTrainingConfig(seed=1, n_hidden=10, pretrain_iterations=0, iterations=20,
    ...                               n_completion_images=5, checkpoint_every=10)
    >>> 0.0 <= exact_baseline(config)["baseline"]["accuracy"] <= 1.0     # doctest: +SKIP
    True
    """
    data, _, test_x, test_y = load_split(config)
    return _prepare(config, data, test_x, test_y)


def spiking_evaluation(config: DigitsTrainingConfig, sim, fit: ActivationFit, W: np.ndarray, b: np.ndarray,
                       test_x: np.ndarray, test_y: np.ndarray, seed: int, progress: bool = False,
                       label: str = "", complete: bool = True) -> dict:
    """Spiking classification (label read-out, test images clamped) and completion per occlusion of the RBM
    (W, b) on backend module ``sim`` (a fresh network, set up with ``seed``).

    Returns ``accuracy``, ``predicted`` labels, ``completion_error`` (first occlusion), ``completion_errors``,
    ``examples``, ``free_energy_accuracy`` (exact read-out of the same weights), ``wall_s``, ``simulated_ms``.
    With ``complete=False`` only the classification runs (no completion keys): a part of a test set whose
    completion another part does. The classification comes first either way, so with the same ``seed`` its
    predictions do not depend on ``complete``.

    Examples
    --------
    >>> scores = spiking_evaluation(config, sim, fit, W, b, test_x, test_y, seed=15)   # doctest: +SKIP
    >>> scores["accuracy"], scores["completion_errors"]["half"]                        # doctest: +SKIP
    """
    truth = test_x[:config.n_completion_images if complete else 0]
    masks = completion_masks(config, truth) if complete else {}
    if progress:
        per_image = config.eval_settle_ms + config.eval_read_ms
        logger.info(f"spiking evaluation {label}: {len(test_x)} images (classification) + "
                    f"{len(truth)} x {len(masks)} (completion), {per_image:g} ms each")
    tic = time.perf_counter()
    n_pixels = test_x.shape[1]
    sim.setup(timestep=config.dt_ms, seed=seed)
    network = build_sampling_network(sim, BoltzmannMachine(W, b), fit, config.neuron, config.noise, config.synapses,
                                     connectivity=bipartite_mask(n_pixels + N_LABELS, config.n_hidden))
    timed = TimedSimulator(sim)
    classify = evaluate_spiking(network, timed, test_x, np.arange(n_pixels), config,
                                min(config.eval_chunk, len(test_x)), progress, f"classification {label}".strip(),
                                schedule=True)
    completed = {kind: evaluate_spiking(network, timed, truth, ~mask, config, min(config.eval_chunk, len(truth)),
                                        progress, f"completion {kind} {label}".strip(), schedule=True)[:, :n_pixels]
                 for kind, mask in masks.items()}
    sim.end()
    predicted = predicted_labels(classify[:, n_pixels:n_pixels + N_LABELS])
    if not complete:
        return {"accuracy": accuracy(predicted, test_y), "predicted": np.asarray(predicted).tolist(),
                "free_energy_accuracy": free_energy_accuracy(W, b, test_x, test_y),
                "wall_s": time.perf_counter() - tic, "simulated_ms": timed.t_ms}
    return _scores(predicted, test_y, completed, truth, masks, free_energy_accuracy=free_energy_accuracy(
        W, b, test_x, test_y), wall_s=time.perf_counter() - tic, simulated_ms=timed.t_ms)


def build_training_network(sim, config: DigitsTrainingConfig, fit: ActivationFit, W: np.ndarray, b: np.ndarray):
    """The spiking network of one training segment (``sim.setup`` already called): the RBM (W, b) as one
    sampling network, or ``config.copies`` copies of it in one simulation
    (:func:`cortexsim.models.sampling_network.build_replicated_network`); both receptors on every
    visible-hidden pair (trained weights may change sign)."""
    n_visible = config.n_pixels + N_LABELS
    mask = bipartite_mask(n_visible, config.n_hidden)
    if config.copies == 1:
        return build_sampling_network(sim, BoltzmannMachine(W, b), fit, config.neuron, config.noise, config.synapses,
                                      connectivity=mask)
    return build_replicated_network(sim, BoltzmannMachine(W, b), fit, config.copies, config.neuron, config.noise,
                                    config.synapses, connectivity=mask)


def training_network_factory(config: DigitsTrainingConfig, fit: ActivationFit):
    """The CD engine's network factory of the digits/MNIST task: ``build(sim, W, b, first_iteration)``
    sets up the simulator with a seed derived from ``config.seed`` and ``first_iteration`` and calls
    :func:`build_training_network`."""

    def build(sim, W, b, first_iteration):
        sim.setup(timestep=config.dt_ms, seed=derive_seed(config.seed, 0, first_iteration))
        return build_training_network(sim, config, fit, W, b)

    return build


def training_statistics(config: DigitsTrainingConfig, data: np.ndarray, on_segment=None) -> ClampedStatistics:
    """The CD engine's statistics function of the digits/MNIST task (clamped data phase, free model phase;
    ``config.data_copies`` and ``config.free_chains``, see :class:`ClampedStatistics`)."""
    n_visible = config.n_pixels + N_LABELS
    return ClampedStatistics(data, np.arange(n_visible), config.batch_size, config.clamp_ms, config.settle_ms,
                             config.readout_dt_ms, config.clamp_bias, on_segment=on_segment,
                             n_units=None if config.copies == 1 else n_visible + config.n_hidden,
                             data_copies=config.data_copies, free_chains=config.free_chains)


def _state_template(config: DigitsTrainingConfig) -> dict:
    """What every checkpoint of ``config`` holds (kinds and sizes of the values; None: not checked)."""
    n_visible = config.n_pixels + N_LABELS
    n = n_visible + config.n_hidden
    zeros = np.zeros((n, n))
    cd = CDState.fresh(zeros, np.zeros(n), config.cd_settings(), bipartite_mask(n_visible, config.n_hidden),
                       rng=np.random.default_rng(0))
    return {"task": config.dataset, "config": None, "spiking_before": None, "cd": cd.to_dict(),
            "prepared": {"W": zeros.tolist(), "b": [0.0] * n, "pretrained_exact": None, "baseline": None,
                         "pretrain_curve": None, "baseline_curve": None, "baseline_W_vh": None}}


def run(config: DigitsTrainingConfig, out_dir: str | Path | None = None, progress: bool = False,
        resume: bool = False) -> DigitsTrainingResult:
    """The protocol behind ``cortexsim train-cd --task digits|mnist`` (:func:`train_digits`)."""
    return train_digits(config, out_dir=out_dir, resume=resume, progress=progress)


def rescheduled_checkpoint(state: dict, config: DigitsTrainingConfig, prepared: dict) -> dict:
    """The checkpoint ``state`` of an unfinished run, as the checkpoint of the same run with
    ``config.iterations`` updates (resumed by :func:`train_digits` with ``resume=True``).

    Allowed only where nothing done so far depends on the total number of updates: the settings differ in
    ``iterations`` alone (a setting missing from the checkpoint's config is accepted at its default: it was
    added to the code after the checkpoint was written, and its default is the behaviour before); the engine
    checks the schedule, the segments and the averaging (:meth:`CDState.rescheduled`). The task's seeds do not
    derive from the total (network of a segment: seed and first iteration; data draws: the engine's generator,
    seed 13; data order: seed 17; evaluations: seeds 12, 14, 15, 16). The exact part depends on the total (the
    baseline has as many updates as the spiking run): ``prepared`` is the one of ``config``
    (:func:`exact_baseline`); it must start from the same weights and its accuracy curve must equal the
    checkpoint's at the updates both have (the exact run's first updates do not depend on the total either).

    Parameters
    ----------
    state : dict
        The checkpoint (``checkpoint.json`` of :func:`train_digits`) of a run not finished.
    config : DigitsTrainingConfig
        The run to continue as.
    prepared : dict
        ``exact_baseline(config)``.

    Returns
    -------
    dict
        The new checkpoint (``rescheduled_from`` records the old total and the updates done); ValueError
        naming the reason if the change is not allowed.

    Examples
    --------
    Continue a run stopped after 2,000 of 10,000 updates as a 5,000-update run::

        state = read_json("out/run/checkpoint.json")
        config = dataclasses.replace(old_config, iterations=5000)
        write_json_atomic("out/run5000/checkpoint.json",
                          rescheduled_checkpoint(state, config, exact_baseline(config)))
    """
    if state.get("task") != config.dataset:
        raise ValueError(f"the checkpoint is of the {state.get('task')!r} task, not {config.dataset!r}")
    if "spiking_after" in state:
        raise ValueError("the checkpoint's run has finished (spiking_after): nothing to reschedule")
    new, old = config_to_dict(config), state["config"]
    defaults = config_to_dict(type(config)(seed=config.seed))
    differ = sorted(k for k in set(new) | set(old) if k != "iterations" and old.get(k, defaults.get(k)) != new.get(k))
    if differ:
        raise ValueError(f"only iterations may change when a run is rescheduled; also changed: {differ}")
    old_settings = dataclasses.replace(config, iterations=int(old["iterations"])).cd_settings()
    cd = CDState.from_dict(state["cd"]).rescheduled(old_settings, config.cd_settings())
    if not (np.array_equal(prepared["W"], state["prepared"]["W"]) and np.array_equal(prepared["b"],
                                                                                      state["prepared"]["b"])):
        raise ValueError("prepared starts from other weights than the checkpoint (not exact_baseline(config)?)")
    mine, theirs = dict(map(tuple, prepared["baseline_curve"])), dict(map(tuple, state["prepared"]["baseline_curve"]))
    if any(mine[k] != theirs[k] for k in set(mine) & set(theirs)):
        raise ValueError("prepared's exact run differs from the checkpoint's at the updates both made")
    return {"task": config.dataset, "config": new, "prepared": prepared, "spiking_before": state["spiking_before"],
            "cd": cd.to_dict(), "rescheduled_from": {"iterations": int(old["iterations"]), "at_update": cd.iteration}}


def train_digits(config: DigitsTrainingConfig, fit: ActivationFit | None = None, out_dir: str | Path | None = None,
                 resume: bool = False, progress: bool = False,
                 stop_after_iteration: int | None = None) -> DigitsTrainingResult | None:
    """Run the digits or MNIST task (see module docstring); returns None if stopped early by ``stop_after_iteration``.

    Resumable: with ``out_dir``, a checkpoint is written after the exact part, after each training
    segment of ``checkpoint_every`` iterations, and after the spiking evaluation; ``resume`` continues
    from it (same settings required).
    """
    if resume and out_dir is None:
        raise ValueError("resume needs out_dir (the folder holding checkpoint.json)")
    settings = config.cd_settings()
    n_visible = config.n_pixels + N_LABELS
    mask = bipartite_mask(n_visible, config.n_hidden)
    state = load_checkpoint(out_dir, config.dataset, config_to_dict(config), _state_template(config)) if resume \
        else None
    data, _, test_x, test_y = load_split(config)
    if fit is None:     # after the checkpoint is checked: the calibration may simulate
        fit = calibrate(config.calibration(), progress=progress).fit
    sim = load_backend(config.backend)
    save_state = (lambda: save_checkpoint(output_dir(out_dir), state)) if out_dir else (lambda: None)
    if state is None:
        if progress:
            logger.info(f"exact sampler (numpy): {config.pretrain_iterations} pre-training and {config.iterations} "
                        "baseline updates")
        prepared = _prepare(config, data, test_x, test_y)
        cd = CDState.fresh(prepared["W"], prepared["b"], settings, mask,
                           rng=np.random.default_rng(derive_seed(config.seed, 13)))
        state = {"task": config.dataset, "config": config_to_dict(config), "prepared": prepared,
                 "spiking_before": None, "cd": cd.to_dict()}
        save_state()
    if state["spiking_before"] is None:
        if config.pretrain_iterations:
            state["spiking_before"] = spiking_evaluation(config, sim, fit, np.asarray(state["prepared"]["W"]),
                                                    np.asarray(state["prepared"]["b"]), test_x, test_y,
                                                    derive_seed(config.seed, 14), progress, "before fine-tuning")
        else:   # random initial weights: nothing to evaluate
            state["spiking_before"] = {"skipped": "no exact pre-training: spiking CD starts from random weights"}
        save_state()
    cd = CDState.from_dict(state["cd"])

    build = training_network_factory(config, fit)

    def save(cd):
        state["cd"] = cd.to_dict()
        save_state()

    statistics = training_statistics(config, data, on_segment=lambda W, b: {"segment_exact_accuracy":
                                                                           free_energy_accuracy(W, b, test_x, test_y)})
    if not train_cd(build, statistics, settings, cd, sim, mask, save=save if out_dir else None, progress=progress,
                    label=f"CD {config.dataset} on {config.backend}", stop_after_iteration=stop_after_iteration):
        return None
    W, b = cd.trained(settings, mask)
    after = state.get("spiking_after")
    if after is None:
        after = spiking_evaluation(config, sim, fit, W, b, test_x, test_y, derive_seed(config.seed, 15), progress,
                              "after training")
        state["spiking_after"] = after
        save_state()
    prepared = state["prepared"]
    scores = {"spiking_before": state["spiking_before"], "spiking_after": after,
              "baseline": prepared["baseline"], "pretrained_exact": prepared["pretrained_exact"]}
    history = dict(cd.history, pretrain_curve=prepared["pretrain_curve"], baseline_curve=prepared["baseline_curve"])
    timing = dict(cd.timing, evaluation_wall_s=after.get("wall_s"), baseline_wall_s=prepared["baseline"].get("wall_s"))
    result = DigitsTrainingResult(config, scores, history, timing, fit, BoltzmannMachine(W, b),
                                  energy=training_energy(cd.timing) or {})
    if out_dir is not None:
        _write_outputs(result, output_dir(out_dir), np.asarray(prepared["baseline_W_vh"]), chip_booking(sim))
    return result


def _write_outputs(result: DigitsTrainingResult, out: Path, baseline_W_vh: np.ndarray | None = None,
                   chip: dict | None = None) -> None:
    h, config, scores = result.history, result.config, result.scores
    n_pixels = config.n_pixels
    side = image_side(n_pixels)
    files = {"gradient_norm": plots.plot_learning_curve(
        h["iteration"], {"|CD update direction| (spiking)": np.asarray(h["gradient_norm"])},
        out / "gradient_norm.png", ylabel="norm of <.>_data - <.>_model", logy=True)}
    if h["pretrain_curve"]:
        curve = np.asarray(h["pretrain_curve"], dtype=float)
        files["pretrain_accuracy"] = plots.plot_learning_curve(
            curve[:, 0], {"exact free-energy test accuracy": curve[:, 1]}, out / "pretrain_accuracy.png",
            ylabel="test accuracy", title="exact-sampler pre-training")
    if h["segment_end"]:
        curves = {"spiking CD (exact free-energy read-out)": np.asarray(h["segment_exact_accuracy"])}
        base = np.asarray(h["baseline_curve"], dtype=float).reshape(-1, 2)
        if len(base) == len(h["segment_end"]):
            curves["exact-Gibbs CD baseline"] = base[:, 1]
        files["accuracy_over_training"] = plots.plot_learning_curve(
            h["segment_end"], curves, out / "accuracy_over_training.png", ylabel="accuracy (evaluation images)")
    W_vh = rbm_parts(np.asarray(result.final.W), np.asarray(result.final.b), n_pixels + N_LABELS)[0]
    files["receptive_fields"] = data_plots.plot_receptive_fields(
        W_vh[:n_pixels], side, out / "receptive_fields.png", title="spiking CD: pixel -> hidden weights")
    if baseline_W_vh is not None and baseline_W_vh.ndim == 2:
        files["receptive_fields_baseline"] = data_plots.plot_receptive_fields(
            baseline_W_vh[:n_pixels], side, out / "receptive_fields_baseline.png",
            title="exact-Gibbs CD: pixel -> hidden weights")
    for name, block in (("spiking", scores["spiking_after"]), ("baseline", scores["baseline"])):
        if block.get("predicted"):
            labels = _evaluation_labels(config, len(block["predicted"]))
            counts = data_plots.confusion_matrix(labels, np.asarray(block["predicted"]), N_LABELS)
            files[f"confusion_{name}"] = data_plots.plot_confusion_matrix(
                counts, out / f"confusion_{name}.png", title=f"{name}: accuracy {block['accuracy']:.3f}")
        if block.get("examples"):
            files[f"completion_{name}"] = data_plots.plot_completion_examples(
                block["examples"], side, out / f"completion_{name}.png", title=f"pattern completion ({name})")
    result.files = {name: Path(path).name for name, path in files.items()}
    write_results(out, result.to_dict(), result.config, chip)


def _evaluation_labels(config: DigitsTrainingConfig, n: int) -> np.ndarray:
    """Labels of the first ``n`` evaluation images of ``config`` (for the confusion matrices)."""
    return load_split(config)[3][:n]
