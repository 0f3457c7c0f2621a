"""Digits task: an RBM of visible (64 pixels + 10 labels) and hidden units on scikit-learn's 8x8 digits.

Units are ordered [pixels (64) | labels (10) | hidden (n_hidden)]; weights exist only between the
visible group (pixels and labels) and the hidden group. The data are binarised at
``binarize_threshold`` and split into training and test images with the seed.

1. Pre-training (optional) with the exact sampler in numpy (:func:`train_exact`): data phase
   ``p(h | v)`` exactly, model phase persistent block-Gibbs chains.
2. Baseline: the same RBM trained further with the exact sampler, for as many updates as the spiking
   fine-tuning makes, evaluated with exact block Gibbs.
3. Spiking fine-tuning (:func:`~cortexsim.protocols.cd_digits_training.train_digits`, the CD engine with
   the statistics function :class:`ClampedStatistics`): the pre-trained RBM is translated onto a LIF
   sampling network built once per checkpoint segment. Each iteration clamps ``batch_size`` training
   images (pixels and label) one after the other for ``clamp_ms`` (data phase: hidden states after
   ``settle_ms``), then lets the network run free for ``model_ms`` (model phase); (W, b) move by the
   difference of the two phases' statistics.
4. Inference by clamping: classification (clamp the image, read the label units' time on; the most
   active label wins) and pattern completion (clamp the top half, read the bottom half; a pixel is on if
   on for more than half the read-out time), with the spiking network and with exact Gibbs sampling.
"""

from __future__ import annotations

import numpy as np

from ..analysis.states import states_on_grid
from ..models.boltzmann import BoltzmannMachine
from ..models.cd_learning import CDUpdate, block_gibbs, check_binary_data, moments_from_states
from ..models.datasets import digits, one_hot, train_test_split
from .cd_engine import Statistics, TimedSimulator

__all__ = ["N_PIXELS", "N_LABELS", "N_VISIBLE", "load_digits_split", "rbm_parts", "train_exact",
           "free_energy_accuracy", "evaluate_exact", "ClampedStatistics", "evaluate_spiking",
           "TOP_HALF"]

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
                   burn_in: int, rng: np.random.Generator, completion_pixels: np.ndarray) -> dict:
    """Classification accuracy and completion error with exact block-Gibbs sampling.

    Classification: pixels clamped, labels start at 0; the label with the highest mean sampled state
    over sweeps ``burn_in ..`` wins. Completion: top half clamped, the rest starts random; a pixel is
    predicted on if its mean sampled state exceeds 1/2.
    """
    W_vh, b_v, b_h = rbm_parts(W, b)
    clamp = np.zeros(N_VISIBLE, dtype=bool)
    clamp[:N_PIXELS] = True
    start = np.hstack([pixels, np.zeros((pixels.shape[0], N_LABELS))])
    _, v_mean, _ = block_gibbs(W_vh, b_v, b_h, start, n_sweeps, rng, clamp, record_from=burn_in)
    accuracy = float(np.mean(np.argmax(v_mean[:, N_PIXELS:], axis=1) == labels))
    clamp = np.zeros(N_VISIBLE, dtype=bool)
    clamp[TOP_HALF] = True
    start = np.hstack([completion_pixels, np.zeros((completion_pixels.shape[0], N_LABELS))])
    start[:, ~clamp] = rng.integers(0, 2, size=(start.shape[0], int((~clamp).sum())))
    _, v_mean, _ = block_gibbs(W_vh, b_v, b_h, start, n_sweeps, rng, clamp, record_from=burn_in)
    free = np.setdiff1d(np.arange(N_PIXELS), TOP_HALF)
    error = float(np.mean((v_mean[:, free] > 0.5) != (completion_pixels[:, free] > 0.5)))
    return {"accuracy": accuracy, "completion_error": error}


class ClampedStatistics:
    """Statistics function of the digits task: one clamped data phase and one free model phase.

    Per iteration: ``batch_size`` training rows drawn with the engine's generator are clamped one after
    the other for ``clamp_ms`` each (data phase; states read after ``settle_ms``, clamped units take
    their clamped values), then the network runs free for ``model_ms`` (model phase). Records
    ``model_mean_activity`` per iteration and, per segment, ``segment_exact_accuracy`` (free-energy
    test accuracy of the current parameters).
    """

    def __init__(self, data: np.ndarray, config, test_pixels: np.ndarray | None = None,
                 test_labels: np.ndarray | None = None):
        self.data = check_binary_data(data, N_VISIBLE, "training data")
        self.config = config
        self.test = (test_pixels, test_labels)

    def __call__(self, network, timed: TimedSimulator, iteration: int, duration_ms: float,
                 rng: np.random.Generator) -> Statistics:
        config = self.config
        batch = self.data[rng.integers(0, self.data.shape[0], config.batch_size)]
        tau_ref = network.neuron.tau_refrac
        visible = np.arange(N_VISIBLE)
        windows = []
        t_begin = timed.t_ms
        for row in batch:
            network.clamp(visible, row, config.clamp_bias)
            windows.append(timed.run(config.clamp_ms))
        network.release()
        model_window = timed.run(duration_ms)
        spiketrains = network.spiketrains(clear=True)
        dt = config.readout_dt_ms
        states = states_on_grid(spiketrains, tau_ref, t_begin, timed.t_ms, dt)
        data_rows = []
        for row, (t0, t1) in zip(batch, windows):
            first, last = int(round((t0 + config.settle_ms - t_begin) / dt)), int(round((t1 - t_begin) / dt))
            block = states[first:last].astype(float)
            block[:, :N_VISIBLE] = row  # the data: clamped units take their clamped values
            data_rows.append(block)
        first = int(round((model_window[0] - t_begin) / dt))
        model = moments_from_states(states[first:])
        return Statistics(moments_from_states(np.vstack(data_rows)), model,
                          {"model_mean_activity": float(np.mean(model[0]))})

    def end_segment(self, W: np.ndarray, b: np.ndarray) -> dict:
        if self.test[0] is None:
            return {}
        return {"segment_exact_accuracy": free_energy_accuracy(W, b, *self.test)}


def evaluate_spiking(network, timed: TimedSimulator, pixels: np.ndarray, clamp_pixels: np.ndarray,
                     config, chunk: int = 50) -> np.ndarray:
    """Fraction of read-out time each unit is on, per image, with ``clamp_pixels`` clamped.

    Each image is clamped for ``eval_settle_ms + eval_read_ms``; the read-out window is the last
    ``eval_read_ms``. Returns (m, n) on-fractions; the network's leak potentials are restored after.
    """
    tau_ref = network.neuron.tau_refrac
    dt = config.readout_dt_ms
    out = np.empty((pixels.shape[0], network.n_neurons))
    for start in range(0, pixels.shape[0], chunk):
        windows = []
        t_begin = timed.t_ms
        for image in pixels[start:start + chunk]:
            network.clamp(clamp_pixels, image[clamp_pixels], config.clamp_bias)
            t0, t1 = timed.run(config.eval_settle_ms + config.eval_read_ms)
            windows.append((t0 + config.eval_settle_ms, t1))
        states = states_on_grid(network.spiketrains(clear=True), tau_ref, t_begin, timed.t_ms, dt)
        for k, (t0, t1) in enumerate(windows):
            first, last = int(round((t0 - t_begin) / dt)), int(round((t1 - t_begin) / dt))
            out[start + k] = states[first:last].mean(axis=0)
    network.release()
    return out


def spiking_scores(on_fraction_classify: np.ndarray, labels: np.ndarray, on_fraction_complete: np.ndarray,
                   completion_pixels: np.ndarray) -> dict:
    """Accuracy and completion error from the spiking read-outs of :func:`evaluate_spiking`."""
    accuracy = float(np.mean(np.argmax(on_fraction_classify[:, N_PIXELS:N_VISIBLE], axis=1) == labels))
    free = np.setdiff1d(np.arange(N_PIXELS), TOP_HALF)
    error = float(np.mean((on_fraction_complete[:, free] > 0.5) != (completion_pixels[:, free] > 0.5)))
    return {"accuracy": accuracy, "completion_error": error}


def initial_rbm(n_hidden: int, rng: np.random.Generator, scale: float = 0.01) -> BoltzmannMachine:
    """Small random visible-hidden weights (N(0, scale^2)), zero biases."""
    n = N_VISIBLE + n_hidden
    W = np.zeros((n, n))
    W_vh = rng.normal(0.0, scale, size=(N_VISIBLE, n_hidden))
    W[:N_VISIBLE, N_VISIBLE:] = W_vh
    W[N_VISIBLE:, :N_VISIBLE] = W_vh.T
    return BoltzmannMachine(W, np.zeros(n))
