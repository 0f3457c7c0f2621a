"""Digits task: an RBM of visible (64 pixels + 10 labels) and hidden units on scikit-learn's 8x8 digits.

Units are ordered [pixels (64) | labels (10) | hidden (n_hidden)]; weights exist only between the
visible group (pixels and labels) and the hidden group. The data are binarised at
``binarize_threshold`` and split into training and test images with the seed.

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
   active label wins) and pattern completion (clamp the top half, read the bottom half; a pixel is on if
   on for more than half the read-out time), with the spiking network and with exact Gibbs sampling.

The driver (:func:`train_digits`, :func:`run`) writes ``results.json`` with ``test_accuracy`` and
``completion_error`` (spiking network after fine-tuning), the same before fine-tuning, and
``baseline_test_accuracy`` / ``baseline_completion_error`` (exact Gibbs, same sizes, same number of
updates).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cortexsim.checks import check_choice, check_int
from cortexsim.config import config_to_dict
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from cortexsim.results import library_versions, machine_info, output_dir, write_results
from cortexsim.seeds import derive_seed
from cortexsim.timegrid import check_duration

from ..analysis import plots
from ..analysis.states import states_on_grid
from ..backends.registry import backend_info, check_backend_seed, check_dt, chip_booking, load_backend
from ..models.boltzmann import BoltzmannMachine
from ..models.cd_learning import (SCHEDULE_KINDS, CDUpdate, LearningRateSchedule, MomentumOptimizer, bipartite_mask,
                                  block_gibbs, check_binary_data, moments_from_states)
from ..models.datasets import digits, one_hot, train_test_split
from ..models.rbm_readout import accuracy, completion_error, occlusion_mask, predicted_labels
from ..models.sampling_network import SYNAPSE_KINDS, build_sampling_network
from .calibration import CalibrationConfig, calibrate
from .cd_engine import (CDSettings, CDState, ClampedStatistics, TimedSimulator, load_checkpoint, save_checkpoint,
                        train_cd, training_energy)

__all__ = ["DigitsRBMSettings", "DigitsTrainingConfig", "DigitsTrainingResult", "run", "train_digits", "N_PIXELS",
           "N_LABELS", "N_VISIBLE", "TOP_HALF", "load_digits_split", "rbm_parts", "train_exact", "free_energy_accuracy",
           "evaluate_exact", "exact_completion", "clamped_readout", "evaluate_spiking", "spiking_scores", "initial_rbm",
           "pretrain_exact"]

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


def rbm_parts(W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W_vh (74, n_hidden), b_v (74,), b_h (n_hidden,)) of the full (n, n) parameters."""
    return W[:N_VISIBLE, N_VISIBLE:], b[:N_VISIBLE], b[N_VISIBLE:]


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _full_states(visible: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    return np.hstack([visible, hidden])


def train_exact(W: np.ndarray, b: np.ndarray, update: CDUpdate, data: np.ndarray, iterations: int,
                batch_size: int, chains: np.ndarray, rng: np.random.Generator, first_iteration: int = 0,
                curve_every: int = 0, curve_data: tuple | None = None):
    """Exact-sampler CD (persistent chains) on an RBM; returns (W, b, chains, curve).

    Data phase: ``p(h | v)`` of a mini-batch of ``batch_size`` rows of ``data`` (n, 74); model
    phase: one block-Gibbs sweep of the persistent ``chains`` (c, 74). The update is ``update``
    (:class:`cortexsim.models.cd_learning.CDUpdate` with the bipartite mask), the same as the spiking
    engine's. ``curve`` lists (iteration, exact test accuracy) every ``curve_every`` iterations when
    ``curve_data = (test_pixels, test_labels)`` is given.
    """
    data = check_binary_data(data, N_VISIBLE, "training data")
    curve = []
    for iteration in range(first_iteration, first_iteration + iterations):
        W_vh, b_v, b_h = rbm_parts(W, b)
        batch = data[rng.integers(0, data.shape[0], batch_size)]
        data_moments = moments_from_states(_full_states(batch, _sigmoid(b_h + batch @ W_vh)))
        chains, _, _ = block_gibbs(W_vh, b_v, b_h, chains, 1, rng)
        model_moments = moments_from_states(_full_states(chains, _sigmoid(b_h + chains @ W_vh)))
        W, b = update(iteration, W, b, data_moments, model_moments)
        if curve_every and curve_data is not None and (iteration + 1) % curve_every == 0:
            curve.append((iteration + 1, free_energy_accuracy(W, b, *curve_data)))
    return W, b, chains, curve


def free_energy_accuracy(W: np.ndarray, b: np.ndarray, pixels: np.ndarray, labels: np.ndarray) -> float:
    """Exact classification accuracy: argmax over one-hot labels y of ``-F(pixels, y)`` (free energy)."""
    W_vh, b_v, b_h = rbm_parts(W, b)
    scores = []
    for k in range(N_LABELS):
        v = np.hstack([pixels, np.tile(one_hot(np.array([k]), N_LABELS), (pixels.shape[0], 1))])
        scores.append(v @ b_v + np.logaddexp(0.0, b_h + v @ W_vh).sum(axis=1))
    return float(np.mean(np.argmax(scores, axis=0) == labels))


def evaluate_exact(W: np.ndarray, b: np.ndarray, pixels: np.ndarray, labels: np.ndarray, n_sweeps: int,
                   burn_in: int, rng: np.random.Generator, completion_pixels: np.ndarray,
                   occluded: np.ndarray | None = None) -> dict:
    """Classification accuracy and completion error with exact block-Gibbs sampling.

    Classification: pixels clamped, labels start at 0; the label with the highest mean sampled state
    over sweeps ``burn_in ..`` wins. Completion: the pixels not ``occluded`` (bool (m, 64); default the
    bottom half, :func:`cortexsim.models.rbm_readout.occlusion_mask` ``"half"``) clamped, the rest starts
    random; a pixel is predicted on if its mean sampled state exceeds 1/2.
    """
    W_vh, b_v, b_h = rbm_parts(W, b)
    clamp = np.zeros(N_VISIBLE, dtype=bool)
    clamp[:N_PIXELS] = True
    start = np.hstack([pixels, np.zeros((pixels.shape[0], N_LABELS))])
    _, v_mean, _ = block_gibbs(W_vh, b_v, b_h, start, n_sweeps, rng, clamp, record_from=burn_in)
    accuracy = float(np.mean(predicted_labels(v_mean[:, N_PIXELS:]) == labels))
    completed = exact_completion(W, b, completion_pixels, _occluded(occluded, completion_pixels.shape[0]),
                                 n_sweeps, burn_in, rng)
    return {"accuracy": accuracy, "completion_error": completion_error(
        completed, completion_pixels, _occluded(occluded, completion_pixels.shape[0]))}


def _occluded(occluded: np.ndarray | None, n_images: int) -> np.ndarray:
    """The given occlusion mask, or the bottom half of every image."""
    return occlusion_mask("half", n_images, 8) if occluded is None else np.asarray(occluded, dtype=bool)


def exact_completion(W: np.ndarray, b: np.ndarray, pixels: np.ndarray, occluded: np.ndarray, n_sweeps: int,
                     burn_in: int, rng: np.random.Generator) -> np.ndarray:
    """Mean block-Gibbs pixel states (m, 64) with the pixels not ``occluded`` (bool (m, 64)) clamped.

    The hidden pixels and the labels start random (uniform 0/1); means over sweeps ``burn_in ..``.
    """
    W_vh, b_v, b_h = rbm_parts(W, b)
    occluded = np.asarray(occluded, dtype=bool)
    clamp = np.hstack([~occluded, np.zeros((occluded.shape[0], N_LABELS), dtype=bool)])
    start = np.hstack([pixels, np.zeros((pixels.shape[0], N_LABELS))])
    if np.all(clamp == clamp[:1]):      # one mask for all images: one draw over its free columns
        clamp = clamp[0]
        start[:, ~clamp] = rng.integers(0, 2, size=(start.shape[0], int((~clamp).sum())))
    else:
        start = np.where(clamp, start, rng.integers(0, 2, size=start.shape))
    _, v_mean, _ = block_gibbs(W_vh, b_v, b_h, start, n_sweeps, rng, clamp, record_from=burn_in)
    return v_mean[:, :N_PIXELS]


def clamped_readout(network, timed: TimedSimulator, clamps, config, chunk: int = 50, progress: bool = False,
                    label: str = "evaluation") -> np.ndarray:
    """Fraction of read-out time every neuron of ``network`` is on, per clamp of ``clamps``.

    ``clamps`` is a sequence of ``(units, values)`` (indices into the network's population and their
    0/1 values). Each is clamped in turn for ``config.eval_settle_ms + config.eval_read_ms`` (through the
    network's ``clamp``); the read-out window is the last ``eval_read_ms``, read on a grid of
    ``config.readout_dt_ms``. Returns (len(clamps), population size) on-fractions; the network's leak
    potentials are restored after. With ``progress``, a progress bar counts the clamps.
    """
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
        for k, (t0, t1) in enumerate(windows):
            first, last = int(round((t0 - t_begin) / dt)), int(round((t1 - t_begin) / dt))
            out[start + k] = states[first:last].mean(axis=0)
        if bar is not None:
            bar.update(len(windows))
    if bar is not None:
        bar.close()
    network.release()
    return out


def evaluate_spiking(network, timed: TimedSimulator, pixels: np.ndarray, clamp_pixels: np.ndarray,
                     config, chunk: int = 50, progress: bool = False, label: str = "evaluation") -> np.ndarray:
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
    return clamped_readout(network, timed, clamps, config, chunk, progress, label)


def spiking_scores(on_fraction_classify: np.ndarray, labels: np.ndarray, on_fraction_complete: np.ndarray,
                   completion_pixels: np.ndarray, occluded: np.ndarray | None = None) -> dict:
    """Accuracy and completion error from the spiking read-outs of :func:`evaluate_spiking`
    (``occluded``: the hidden pixels, bool (m, 64); default the bottom half)."""
    occluded = _occluded(occluded, completion_pixels.shape[0])
    return {"accuracy": accuracy(predicted_labels(on_fraction_classify[:, N_PIXELS:N_VISIBLE]), labels),
            "completion_error": completion_error(on_fraction_complete[:, :N_PIXELS], completion_pixels, occluded)}


def initial_rbm(n_hidden: int, rng: np.random.Generator, scale: float = 0.01) -> BoltzmannMachine:
    """Small random visible-hidden weights (N(0, scale^2)), zero biases."""
    n = N_VISIBLE + n_hidden
    W = np.zeros((n, n))
    W_vh = rng.normal(0.0, scale, size=(N_VISIBLE, n_hidden))
    W[:N_VISIBLE, N_VISIBLE:] = W_vh
    W[N_VISIBLE:, :N_VISIBLE] = W_vh.T
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


@dataclass(frozen=True)
class DigitsTrainingConfig(DigitsRBMSettings):
    """Settings of the digits task: the shared digit-RBM settings (:class:`DigitsRBMSettings`) plus its length.

    Attributes
    ----------
    iterations : int
        Spiking fine-tuning updates; the exact baseline makes as many further updates.

    Examples
    --------
    >>> DigitsTrainingConfig(seed=1, iterations=50).cd_settings().iterations
    50
    """

    iterations: int = 200

    def __post_init__(self):
        self.check_rbm_settings()
        self.cd_settings()  # iterations, optimizer, checkpoint_every

    def cd_settings(self) -> CDSettings:
        """How the CD engine fine-tunes (one iteration: batch_size clamped images, then model_ms free)."""
        return CDSettings(iterations=self.iterations, sampling_ms=self.model_ms, learning_rate=self.learning_rate,
                          schedule=self.schedule, schedule_tau=self.schedule_tau, momentum=self.momentum,
                          weight_decay=self.weight_decay, dt_ms=self.dt_ms, checkpoint_every=self.checkpoint_every)


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
        the exact-Gibbs baseline; energy per training iteration (J,
        :func:`cortexsim.protocols.cd_engine.training_energy`)."""
        s = self.scores
        return {"test_accuracy": s["spiking_after"]["accuracy"],
                "test_accuracy_before_finetuning": s["spiking_before"]["accuracy"],
                "baseline_test_accuracy": s["baseline"]["accuracy"],
                "completion_error": s["spiking_after"]["completion_error"],
                "baseline_completion_error": s["baseline"]["completion_error"],
                "iterations": self.config.iterations, "backend": self.config.backend,
                "energy_j_per_iteration": self.energy.get("j_per_iteration"), "energy_model": self.energy.get("model")}

    def to_dict(self) -> dict:
        """Everything, as ``results.json`` holds it."""
        s = self.scores
        return {"task": "digits",
                "test_accuracy": s["spiking_after"]["accuracy"],
                "completion_error": s["spiking_after"]["completion_error"],
                "test_accuracy_before_finetuning": s["spiking_before"]["accuracy"],
                "completion_error_before_finetuning": s["spiking_before"]["completion_error"],
                "baseline_test_accuracy": s["baseline"]["accuracy"],
                "baseline_completion_error": s["baseline"]["completion_error"],
                "pretrained_exact": s["pretrained_exact"],
                "completion_error_definition": "fraction of wrong pixels in the bottom half, top half clamped",
                "config": config_to_dict(self.config), "activation_fit": self.fit.to_dict(),
                "history": self.history, "timing": self.timing, "energy": self.energy, "versions": library_versions(),
                "machine": machine_info(), "files": self.files}


def pretrain_exact(config: DigitsTrainingConfig, data, test_x, test_y):
    """The exact-sampler pre-training of the digits task (pure numpy, deterministic in the seed).

    Returns ``(W, b, chains, rng, curve)``: the pre-trained parameters, the persistent chains and the
    generator (the baseline continues with both), and (iteration, exact test accuracy) pairs. Also used
    by :mod:`cortexsim.protocols.mixing` (the digits RBM it runs free).
    """
    rng = np.random.default_rng(derive_seed(config.seed, 11))
    start = initial_rbm(config.n_hidden, rng)
    W, b = np.array(start.W), np.array(start.b)
    chains = data[rng.integers(0, data.shape[0], config.gibbs_chains)].copy()
    mask = bipartite_mask(N_VISIBLE, config.n_hidden)
    pretrain = CDUpdate(LearningRateSchedule(config.pretrain_learning_rate, config.schedule,
                                             config.pretrain_schedule_tau),
                        MomentumOptimizer.create(W.shape[0], config.momentum, config.weight_decay), mask)
    curve = []
    if config.pretrain_iterations:
        W, b, chains, curve = train_exact(W, b, pretrain, data, config.pretrain_iterations,
                                          config.pretrain_batch_size, chains, rng,
                                          curve_every=max(1, config.pretrain_iterations // 20),
                                          curve_data=(test_x, test_y))
    return W, b, chains, rng, curve


def _prepare(config: DigitsTrainingConfig, data, test_x, test_y) -> dict:
    """Exact pre-training and the exact baseline (pure numpy, deterministic in the seed)."""
    W, b, chains, rng, curve = pretrain_exact(config, data, test_x, test_y)
    mask = bipartite_mask(N_VISIBLE, config.n_hidden)
    pre_W, pre_b = W.copy(), b.copy()
    eval_rng = np.random.default_rng(derive_seed(config.seed, 12))
    completion = test_x[:config.n_completion_images]
    pretrained = evaluate_exact(W, b, test_x, test_y, config.eval_gibbs_sweeps, config.eval_gibbs_burn_in,
                                eval_rng, completion)
    base_W, base_b, _, base_curve = train_exact(W, b, config.cd_settings().update(mask, W.shape[0]), data,
                                                config.iterations,
                                                config.batch_size, chains, rng,
                                                curve_every=config.checkpoint_every, curve_data=(test_x, test_y))
    baseline = evaluate_exact(base_W, base_b, test_x, test_y, config.eval_gibbs_sweeps, config.eval_gibbs_burn_in,
                              eval_rng, completion)
    return {"W": pre_W.tolist(), "b": pre_b.tolist(), "pretrained_exact": pretrained, "baseline": baseline,
            "pretrain_curve": curve, "baseline_curve": base_curve}


def _spiking_eval(config, sim, fit, W, b, test_x, test_y, seed, progress=False, label="") -> dict:
    if progress:
        per_image = config.eval_settle_ms + config.eval_read_ms
        logger.info(f"spiking evaluation {label}: {len(test_x)} images (classification) + "
              f"{min(len(test_x), config.n_completion_images)} (completion), {per_image:g} ms each")
    sim.setup(timestep=config.dt_ms, seed=seed)
    network = build_sampling_network(sim, BoltzmannMachine(W, b), fit, config.neuron, config.noise, config.synapses)
    timed = TimedSimulator(sim)
    classify = evaluate_spiking(network, timed, test_x, np.arange(N_PIXELS), config, progress=progress,
                                label=f"classification {label}".strip())
    completion = test_x[:config.n_completion_images]
    complete = evaluate_spiking(network, timed, completion, TOP_HALF, config, progress=progress,
                                label=f"completion {label}".strip())
    sim.end()
    return spiking_scores(classify, test_y, complete, completion)


def _state_template(config: DigitsTrainingConfig) -> dict:
    """What every checkpoint of ``config`` holds (kinds and sizes of the values; None: not checked)."""
    n = N_VISIBLE + config.n_hidden
    zeros = np.zeros((n, n))
    cd = CDState.fresh(zeros, np.zeros(n), config.cd_settings(), bipartite_mask(N_VISIBLE, config.n_hidden),
                       rng=np.random.default_rng(0))
    return {"task": "digits", "config": None, "spiking_before": None, "cd": cd.to_dict(),
            "prepared": {"W": zeros.tolist(), "b": [0.0] * n, "pretrained_exact": None, "baseline": None,
                         "pretrain_curve": None, "baseline_curve": None}}


def run(config: DigitsTrainingConfig, out_dir: str | Path | None = None, progress: bool = False,
        resume: bool = False) -> DigitsTrainingResult:
    """The protocol behind ``cortexsim train-cd --task digits`` (:func:`train_digits`)."""
    return train_digits(config, out_dir=out_dir, resume=resume, progress=progress)


def train_digits(config: DigitsTrainingConfig, fit: ActivationFit | None = None, out_dir: str | Path | None = None,
                 resume: bool = False, progress: bool = False,
                 stop_after_iteration: int | None = None) -> DigitsTrainingResult | None:
    """Run the digits task (see module docstring); returns None if stopped early by ``stop_after_iteration``."""
    if resume and out_dir is None:
        raise ValueError("resume needs out_dir (the folder holding checkpoint.json)")
    settings = config.cd_settings()
    mask = bipartite_mask(N_VISIBLE, config.n_hidden)
    state = load_checkpoint(out_dir, "digits", config_to_dict(config), _state_template(config)) if resume else None
    if fit is None:     # after the checkpoint is checked: the calibration may simulate
        fit = calibrate(config.calibration(), progress=progress).fit
    data, _, test_x, test_y = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)
    if config.n_test_images:
        test_x, test_y = test_x[:config.n_test_images], test_y[:config.n_test_images]
    sim = load_backend(config.backend)
    if state is None:
        if progress:
            logger.info(f"exact sampler (numpy): {config.pretrain_iterations} pre-training and {config.iterations} "
                        "baseline updates")
        prepared = _prepare(config, data, test_x, test_y)
        cd = CDState.fresh(prepared["W"], prepared["b"], settings, mask,
                           rng=np.random.default_rng(derive_seed(config.seed, 13)))
        state = {"task": "digits", "config": config_to_dict(config), "prepared": prepared, "spiking_before": None,
                 "cd": cd.to_dict()}
    save = (lambda cd: save_checkpoint(output_dir(out_dir), {**state, "cd": cd.to_dict()})) if out_dir else None
    if state["spiking_before"] is None:
        state["spiking_before"] = _spiking_eval(config, sim, fit, np.asarray(state["prepared"]["W"]),
                                                np.asarray(state["prepared"]["b"]), test_x, test_y,
                                                derive_seed(config.seed, 14), progress, "before fine-tuning")
        if out_dir is not None:
            save_checkpoint(output_dir(out_dir), state)
    cd = CDState.from_dict(state["cd"])

    def build(sim, W, b, first_iteration):
        sim.setup(timestep=config.dt_ms, seed=derive_seed(config.seed, 0, first_iteration))
        return build_sampling_network(sim, BoltzmannMachine(W, b), fit, config.neuron, config.noise, config.synapses,
                                      connectivity=mask)  # both receptors where a trained weight may change sign

    statistics = ClampedStatistics(data, np.arange(N_VISIBLE), config.batch_size, config.clamp_ms, config.settle_ms,
                                   config.readout_dt_ms, config.clamp_bias,
                                   on_segment=lambda W, b: {"segment_exact_accuracy":
                                                            free_energy_accuracy(W, b, test_x, test_y)})
    if not train_cd(build, statistics, settings, cd, sim, mask, save=save, progress=progress,
                    label=f"CD digits on {config.backend}", stop_after_iteration=stop_after_iteration):
        return None
    W, b = cd.trained(settings, mask)
    after = _spiking_eval(config, sim, fit, W, b, test_x, test_y, derive_seed(config.seed, 15), progress,
                          "after fine-tuning")
    prepared = state["prepared"]
    scores = {"spiking_before": state["spiking_before"], "spiking_after": after,
              "baseline": prepared["baseline"], "pretrained_exact": prepared["pretrained_exact"]}
    history = dict(cd.history, pretrain_curve=prepared["pretrain_curve"], baseline_curve=prepared["baseline_curve"])
    result = DigitsTrainingResult(config, scores, history, dict(cd.timing), fit, BoltzmannMachine(W, b),
                                  energy=training_energy(cd.timing) or {})
    if out_dir is not None:
        _write_outputs(result, output_dir(out_dir), chip_booking(sim))
    return result


def _write_outputs(result: DigitsTrainingResult, out: Path, chip: dict | None = None) -> None:
    h = result.history
    files = {"gradient_norm": plots.plot_learning_curve(
        h["iteration"], {"|CD update direction| (spiking)": np.asarray(h["gradient_norm"])},
        out / "gradient_norm.png", ylabel="norm of <.>_data - <.>_model", logy=True)}
    if h["pretrain_curve"]:
        curve = np.asarray(h["pretrain_curve"], dtype=float)
        files["pretrain_accuracy"] = plots.plot_learning_curve(
            curve[:, 0], {"exact free-energy test accuracy": curve[:, 1]}, out / "pretrain_accuracy.png",
            ylabel="test accuracy", title="exact-sampler pre-training")
    if h["segment_end"]:
        files["finetune_accuracy"] = plots.plot_learning_curve(
            h["segment_end"],
            {"spiking fine-tuning (exact free-energy read-out)": np.asarray(h["segment_exact_accuracy"])},
            out / "finetune_accuracy.png", ylabel="test accuracy")
    result.files = {name: Path(path).name for name, path in files.items()}
    write_results(out, result.to_dict(), result.config, chip)
