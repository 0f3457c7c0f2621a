"""Unit tests of cortexsim.analysis.divergence."""

from __future__ import annotations

import numpy as np
import pytest

from cortexsim.analysis.divergence import dkl, dkl_both, dkl_over_time


def test_dkl_known_value():
    p = np.array([0.5, 0.5])
    q = np.array([0.25, 0.75])
    expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert dkl(p, q) == pytest.approx(expected, rel=1e-12)
    assert dkl(p, p) == 0.0
    assert dkl(q, p) != pytest.approx(dkl(p, q))  # not symmetric


def test_zero_terms_and_empty_states():
    p = np.array([0.0, 0.5, 0.5])
    q = np.array([0.2, 0.4, 0.4])
    assert dkl(p, q) == pytest.approx(np.log(0.5 / 0.4), rel=1e-12)  # p = 0 contributes nothing
    assert dkl(q, p) == float("inf")  # q visits a state p never does
    eps = 1e-10
    regularised = (p + eps) / (1 + 3 * eps)
    expected = float(np.sum(q * np.log(q / regularised)))
    assert dkl(q, p, epsilon=eps) == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(dkl(q, p, epsilon=eps)) and dkl(q, p, epsilon=eps) > 4.0


def test_dkl_both_directions_named():
    sampled = np.array([0.0, 0.3, 0.7, 0.0])
    target = np.array([0.1, 0.2, 0.6, 0.1])
    result = dkl_both(sampled, target)
    assert result["dkl_sampled_target"] == pytest.approx(dkl(sampled, target))
    assert result["dkl_target_sampled"] == pytest.approx(dkl(target, sampled, epsilon=1e-10))
    assert np.isfinite(result["dkl_target_sampled"])


def test_dkl_over_time():
    target = np.array([0.25, 0.25, 0.5])
    rows = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], target])
    result = dkl_over_time(rows, target)
    assert result["dkl_sampled_target"].shape == (3,)
    assert result["dkl_sampled_target"][0] == pytest.approx(np.log(4.0))
    assert result["dkl_sampled_target"][2] == 0.0
    assert result["dkl_target_sampled"][2] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(result["dkl_sampled_target"]) < 0)


@pytest.mark.parametrize(
    "p, q, kwargs, match",
    [
        ([0.5, 0.5], [1.0], {}, "same shape"),
        ([1.5, -0.5], [0.5, 0.5], {}, "p has negative entries"),
        ([0.5, 0.5], [0.6, 0.6], {}, "q must sum to 1"),
        ([0.5, np.nan], [0.5, 0.5], {}, "p contains NaN"),
        ([[0.5, 0.5]], [0.5, 0.5], {}, "p must be a non-empty 1-D"),
        ([0.5, 0.5], [0.5, 0.5], {"epsilon": -1.0}, "epsilon must be"),
    ],
)
def test_bad_input(p, q, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dkl(np.array(p), np.array(q), **kwargs)


def test_bad_over_time_shape():
    with pytest.raises(ValueError, match=r"distributions must have shape \(m, 3\)"):
        dkl_over_time(np.ones((2, 4)) / 4, np.ones(3) / 3)


def _grid_distribution(trains, tau_ref, t0, t1, dt=0.005):
    """Joint distribution of z (z_k = 1 for tau_ref after each spike of neuron k) on a fine time grid."""
    t = np.arange(t0, t1, dt) + dt / 2
    z = np.zeros((len(trains), t.size), dtype=int)
    for k, spikes in enumerate(trains):
        for s in spikes:
            z[k, (t >= s) & (t < s + tau_ref)] = 1
    index = (z * (2 ** np.arange(len(trains))[::-1, None])).sum(axis=0)
    return np.bincount(index, minlength=2 ** len(trains)) / t.size


def test_sampling_error_fit_against_grid_states_scipy_kl_and_linregress():
    """Windows, D_KL and fit assembled independently: states on a fine grid, scipy's relative entropy,
    scipy's linear regression over 1/T. Catches windows of the wrong length or start, the D_KL direction
    swapped (target || sampled), and 1/T paired with the wrong split (the sign or size of B)."""
    from scipy.stats import entropy, linregress

    from cortexsim.analysis.divergence import sampling_error_fit

    rng = np.random.default_rng(3)
    trains = [np.sort(rng.uniform(50.0, 650.0, 40)), np.sort(rng.uniform(50.0, 650.0, 25))]
    target = np.array([0.4, 0.2, 0.3, 0.1])
    tau_ref, t0, duration = 7.0, 50.0, 600.0
    fit = sampling_error_fit(trains, target, tau_ref, t0, duration, splits=(4, 2, 1))
    expected = []
    for n in (4, 2, 1):
        w = duration / n
        expected.append(np.mean([entropy(_grid_distribution(trains, tau_ref, t0 + k * w, t0 + (k + 1) * w), target)
                                 for k in range(n)]))
    np.testing.assert_allclose(fit["dkl_mean"], expected, atol=2e-4)
    line = linregress(np.array([4, 2, 1]) / duration, expected)
    assert fit["window_ms"] == [150.0, 300.0, 600.0]
    np.testing.assert_allclose([fit["dkl_inf"], fit["bias_B_ms"]], [line.intercept, line.slope], rtol=2e-2, atol=2e-4)
    assert fit["bias_B_ms"] > 0          # shorter windows, larger error


def test_sampling_error_fit_refuses_a_single_split():
    from cortexsim.analysis.divergence import sampling_error_fit

    with pytest.raises(ValueError, match="splits"):
        sampling_error_fit([np.array([1.0])], np.full(2, 0.5), 5.0, 0.0, 100.0, splits=(2, 2))
