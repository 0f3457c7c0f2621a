"""The exact CD estimator's diagnosis options (``train_exact``: ``data_samples``, ``restart_sweeps``), against
independent references: scipy's logistic function for p(h | v), binomial noise for the sampled data phase, and a
"sticky" RBM whose chains keep whatever state they start in."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from cortexsim.protocols.cd_digits import train_exact

N_VISIBLE, N_HIDDEN = 6, 4
N = N_VISIBLE + N_HIDDEN


class Recorder:
    """A CD update that records the data and model moments it is given and leaves the weights unchanged."""

    def __init__(self):
        self.data, self.model = [], []

    def __call__(self, iteration, W, b, data_moments, model_moments):
        self.data.append(data_moments)
        self.model.append(model_moments)
        return W, b


def rbm(rng):
    """Asymmetric random visible-hidden weights (no visible-visible / hidden-hidden), distinct biases."""
    W = np.zeros((N, N))
    W_vh = rng.normal(0.0, 1.2, (N_VISIBLE, N_HIDDEN))
    W[:N_VISIBLE, N_VISIBLE:], W[N_VISIBLE:, :N_VISIBLE] = W_vh, W_vh.T
    b = rng.normal(0.0, 0.8, N)
    return W, b, W_vh


def test_default_data_phase_is_exactly_p_h_given_v():
    """Catches a wrong sign or a transposed weight block in p(h | v): scipy's expit of b_h + v W_vh."""
    rng = np.random.default_rng(3)
    W, b, W_vh = rbm(rng)
    data = (rng.random((1, N_VISIBLE)) < 0.5).astype(float)           # one row: every batch is that row
    record = Recorder()
    train_exact(W, b, record, data, 1, 5, np.zeros((2, N_VISIBLE)), rng, n_visible=N_VISIBLE)
    mean, _ = record.data[0]
    np.testing.assert_allclose(mean[N_VISIBLE:], expit(b[N_VISIBLE:] + data[0] @ W_vh), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(mean[:N_VISIBLE], data[0])


@pytest.mark.parametrize("k", [1, 400])
def test_sampled_data_phase_is_a_mean_of_k_binary_samples_of_p_h_given_v(k):
    """k = 1: every hidden mean over a batch of B rows is a multiple of 1 / B (binary samples, not probabilities);
    k = 400: the hidden means equal p(h | v) within 5 binomial standard errors, sqrt(p (1 - p) / (k B)) (catches
    sampling with 1 - p, or k ignored)."""
    rng = np.random.default_rng(5)
    W, b, W_vh = rbm(rng)
    data = (rng.random((1, N_VISIBLE)) < 0.5).astype(float)
    batch = 8
    record = Recorder()
    train_exact(W, b, record, data, 20, batch, np.zeros((2, N_VISIBLE)), rng, n_visible=N_VISIBLE,
                data_samples=k)
    hidden = np.array([mean[N_VISIBLE:] for mean, _ in record.data])    # 20 iterations x hidden
    p = expit(b[N_VISIBLE:] + data[0] @ W_vh)
    if k == 1:
        np.testing.assert_allclose(hidden * batch, np.round(hidden * batch), atol=1e-12)
        assert not np.allclose(hidden, p, atol=0.05)
    else:
        standard_error = np.sqrt(p * (1 - p) / (k * batch * len(hidden)))
        assert np.all(np.abs(hidden.mean(axis=0) - p) < 5 * standard_error)


def sticky_rbm(coupling: float = 40.0):
    """Every visible unit coupled to every hidden unit with ``coupling`` c, each unit's bias -c (its neighbours)
    + c / 2: its input is +c / 2 when all its neighbours are on, <= -c / 2 otherwise, so all-on stays on and
    all-off stays off (each unit with probability 1 - expit(-20) = 1 - 2e-9)."""
    W = np.zeros((N, N))
    W[:N_VISIBLE, N_VISIBLE:] = coupling
    W[N_VISIBLE:, :N_VISIBLE] = coupling
    b = np.empty(N)
    b[:N_VISIBLE] = -coupling * N_HIDDEN + coupling / 2
    b[N_VISIBLE:] = -coupling * N_VISIBLE + coupling / 2
    return W, b


def test_restarted_chains_start_from_the_batch_and_persistent_ones_do_not():
    """Data all-on, chains all-off, a sticky RBM: restarted chains (restart_sweeps) give model means ~1 for every
    sweep count, persistent chains (the default) stay at ~0. Catches restarts ignored or started elsewhere."""
    W, b = sticky_rbm()
    data = np.ones((3, N_VISIBLE))
    for sweeps, expected in ((0, 0.0), (1, 1.0), (7, 1.0)):
        record = Recorder()
        train_exact(W, b, record, data, 3, 4, np.zeros((2, N_VISIBLE)), np.random.default_rng(1),
                    n_visible=N_VISIBLE, restart_sweeps=sweeps)
        for mean, second in record.model:
            np.testing.assert_allclose(mean, expected, atol=1e-6)
            np.testing.assert_allclose(second[0, N_VISIBLE], expected, atol=1e-6)


def test_restarted_moments_average_over_the_sweeps():
    """W = 0: every sweep draws independent visible states with p = expit(b_v); 400 sweeps of 2 chains average to
    it within 5 binomial standard errors (one sweep alone would miss by ~0.35)."""
    rng = np.random.default_rng(9)
    W = np.zeros((N, N))
    b = np.linspace(-1.5, 1.5, N)
    record = Recorder()
    train_exact(W, b, record, np.ones((4, N_VISIBLE)), 1, 4, np.zeros((2, N_VISIBLE)), rng, n_visible=N_VISIBLE,
                restart_sweeps=400)
    mean, _ = record.model[0]
    p = expit(b[:N_VISIBLE])
    assert np.all(np.abs(mean[:N_VISIBLE] - p) < 5 * np.sqrt(p * (1 - p) / 800))


def test_bad_estimator_options_are_refused_with_their_names():
    W, b = sticky_rbm()
    with pytest.raises(ValueError, match="data_samples"):
        train_exact(W, b, Recorder(), np.ones((3, N_VISIBLE)), 1, 2, np.zeros((2, N_VISIBLE)),
                    np.random.default_rng(0), n_visible=N_VISIBLE, data_samples=-1)
    with pytest.raises(ValueError, match="batch_size"):
        train_exact(W, b, Recorder(), np.ones((3, N_VISIBLE)), 1, 2, np.zeros((3, N_VISIBLE)),
                    np.random.default_rng(0), n_visible=N_VISIBLE, restart_sweeps=2)
