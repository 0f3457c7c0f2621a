"""Unit tests of cortexsim.models.lif_translation (pure numpy/scipy, fast)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cortexsim.models.boltzmann import random_bm
from cortexsim.models.lif_translation import (RENEWING_TSODYKS_MARKRAM, LIFNetworkParameters, bm_to_lif, fit_activation,
                                              free_membrane, lif_to_bm, psp_integral_kernel, weight_factors)
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, DOLD_NEURON, DOLD_NOISE, ActivationFit

FIT = ActivationFit(v_p05=-50.61, alpha=0.82)
DOLD_FIT = ActivationFit(v_p05=-37.70, alpha=2.77)


def test_default_parameter_sets_match_references():
    assert DEFAULT_NEURON.as_pynn() == {
        "cm": 0.2, "tau_m": 1.0, "v_rest": -50.0, "e_rev_E": 0.0, "e_rev_I": -100.0, "v_thresh": -50.0,
        "v_reset": -50.001, "tau_refrac": 10.0, "tau_syn_E": 10.0, "tau_syn_I": 10.0, "i_offset": 0.0,
    }
    assert DEFAULT_NEURON.g_l == pytest.approx(0.2)
    assert DOLD_NEURON.g_l == pytest.approx(0.1)
    assert (DEFAULT_NOISE.rate_exc, DEFAULT_NOISE.rate_inh, DEFAULT_NOISE.weight_exc, DEFAULT_NOISE.weight_inh) == \
        (3000.0, 3000.0, 0.001, 0.001)
    assert (DOLD_NOISE.rate_exc, DOLD_NOISE.weight_inh) == (2000.0, 0.0035)


def test_free_membrane_default_values():
    # g_exc = g_inh = 0.001 uS * 3 /ms * 10 ms = 0.03 uS; g_l = 0.2 uS.
    mu, g_tot, tau_eff = free_membrane(DEFAULT_NEURON, DEFAULT_NOISE, -50.0)
    assert g_tot == pytest.approx(0.26)
    assert tau_eff == pytest.approx(0.2 / 0.26)
    assert mu == pytest.approx((0.0 * 0.03 - 100.0 * 0.03 - 50.0 * 0.2) / 0.26)
    e_l = np.array([-55.0, -50.0, -45.0])
    mu_arr, g_arr, tau_arr = free_membrane(DEFAULT_NEURON, DEFAULT_NOISE, e_l)
    assert mu_arr.shape == g_arr.shape == tau_arr.shape == (3,)
    assert mu_arr[1] == pytest.approx(mu)
    np.testing.assert_allclose(np.diff(mu_arr), 5.0 * 0.2 / 0.26)


def test_activation_fit_logistic():
    fit = ActivationFit(v_p05=-50.0, alpha=2.0)
    assert fit.p_on(-50.0) == pytest.approx(0.5)
    assert fit.p_on(-48.0) == pytest.approx(1.0 / (1.0 + np.exp(-1.0)))
    assert ActivationFit.from_dict(fit.to_dict()) == fit


def test_fit_activation_recovers_exact_logistic():
    e_l = np.linspace(-56.0, -45.0, 60)
    p = 1.0 / (1.0 + np.exp(-(e_l + 50.61) / 0.82))
    fit = fit_activation(e_l, p)
    assert fit.v_p05 == pytest.approx(-50.61, abs=1e-8)
    assert fit.alpha == pytest.approx(0.82, rel=1e-8)
    assert fit.n_points == int(np.sum((p > 0.05) & (p < 0.95)))


def test_fit_activation_with_counting_noise_within_standard_errors():
    rng = np.random.default_rng(4)
    e_l = np.linspace(-55.0, -46.0, 120)
    p_true = 1.0 / (1.0 + np.exp(-(e_l + 50.61) / 0.82))
    n_windows = 2000  # e.g. 2e4 ms / 10 ms: binomial noise on p_on
    p = rng.binomial(n_windows, p_true) / n_windows
    fit = fit_activation(e_l, p)
    # The fitted values must lie within 5 of their own standard errors of the truth.
    assert abs(fit.v_p05 + 50.61) < 5 * fit.v_p05_stderr
    assert abs(fit.alpha - 0.82) < 5 * fit.alpha_stderr
    assert fit.alpha_stderr < 0.05  # and the errors are small enough to mean something


def test_fit_activation_bad_input():
    e_l = np.linspace(-60, -40, 10)
    with pytest.raises(ValueError, match="at least 3 points"):
        fit_activation(e_l, (e_l > -50).astype(float))
    with pytest.raises(ValueError, match="equal length"):
        fit_activation(e_l, np.zeros(9))
    with pytest.raises(ValueError, match=r"p_on must lie in \[0, 1\]"):
        fit_activation(e_l, np.full(10, 1.5))
    with pytest.raises(ValueError, match="p_min < p_max"):
        fit_activation(e_l, np.full(10, 0.5), p_min=0.9, p_max=0.1)
    with pytest.raises(ValueError, match="finite"):
        fit_activation(e_l, np.full(10, np.nan))


@pytest.mark.parametrize("tau_eff", [0.5, 0.77, 3.0, 10.0 * (1 + 1e-9), 10.0, 10.0 * (1 - 1e-7), 10.0 * (1 + 1e-4)])
def test_psp_integral_kernel_matches_quadrature(tau_eff):
    tau_syn, T = 10.0, 10.0
    t = np.linspace(0.0, T, 200001)
    if abs(tau_syn - tau_eff) < 1e-12:
        integrand = t * np.exp(-t / tau_syn)
    else:
        integrand = tau_syn * tau_eff / (tau_syn - tau_eff) * (np.exp(-t / tau_syn) - np.exp(-t / tau_eff))
    expected = np.trapezoid(integrand, t)
    assert psp_integral_kernel(tau_syn, tau_eff, T) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("neuron, noise, fit", [(DEFAULT_NEURON, DEFAULT_NOISE, FIT), (DOLD_NEURON, DOLD_NOISE, DOLD_FIT)])
def test_weight_factors_match_integrated_membrane_equation(neuron, noise, fit):
    """Independent check: integrate C du/dt = -g_tot u + w e^{-t/tau_syn} (E - mu) numerically."""
    e_leak = np.array([fit.v_p05 - 2.0, fit.v_p05 + 1.0])
    f_exc, f_inh = weight_factors(neuron, noise, fit, e_leak)
    mu, g_tot, _ = free_membrane(neuron, noise, e_leak)
    T = neuron.tau_refrac
    for i in range(2):
        for f, tau_syn, drive in [(f_exc[i], neuron.tau_syn_E, neuron.e_rev_E - mu[i]),
                                  (f_inh[i], neuron.tau_syn_I, mu[i] - neuron.e_rev_I)]:
            def rhs(t, y):
                du = (-g_tot[i] * y[0] + f * np.exp(-t / tau_syn) * drive) / neuron.cm  # noqa: B023
                return [du, y[0]]  # y[1] accumulates the integral of u
            sol = solve_ivp(rhs, (0.0, T), [0.0, 0.0], rtol=1e-10, atol=1e-12)
            psp_integral = sol.y[1, -1]
            rectangle = fit.alpha * 1.0 * neuron.g_l / g_tot[i] * T
            assert psp_integral == pytest.approx(rectangle, rel=1e-6)


def test_bm_to_lif_signs_and_biases():
    bm = random_bm(5, seed=2)
    lif = bm_to_lif(bm, DEFAULT_NEURON, DEFAULT_NOISE, FIT)
    np.testing.assert_allclose(lif.e_leak, FIT.v_p05 + FIT.alpha * bm.b)
    np.testing.assert_array_equal(np.sign(lif.weights), np.sign(bm.W.T))
    f_exc, f_inh = weight_factors(DEFAULT_NEURON, DEFAULT_NOISE, FIT, lif.e_leak)
    i, j = np.argwhere(bm.W > 0)[0]
    assert lif.weights[j, i] == pytest.approx(bm.W[i, j] * f_exc[i])
    i, j = np.argwhere(bm.W < 0)[0]
    assert lif.weights[j, i] == pytest.approx(bm.W[i, j] * f_inh[i])
    np.testing.assert_array_equal(lif.excitatory_weights - lif.inhibitory_weights, lif.weights)
    # The per-target factors make the LIF weight matrix asymmetric, as they must.
    assert not np.allclose(lif.weights, lif.weights.T)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("neuron, noise, fit", [(DEFAULT_NEURON, DEFAULT_NOISE, FIT), (DOLD_NEURON, DOLD_NOISE, DOLD_FIT)])
def test_round_trip_identity(seed, neuron, noise, fit):
    bm = random_bm(6, seed=seed)
    back = lif_to_bm(bm_to_lif(bm, neuron, noise, fit), neuron, noise, fit)
    scale = np.max(np.abs(bm.W))
    assert np.max(np.abs(back.W - bm.W)) <= 1e-10 * scale
    np.testing.assert_allclose(back.b, bm.b, rtol=1e-10, atol=1e-10 * np.max(np.abs(bm.b)))
    lif = bm_to_lif(bm, neuron, noise, fit)
    lif_again = bm_to_lif(lif_to_bm(lif, neuron, noise, fit), neuron, noise, fit)
    np.testing.assert_allclose(lif_again.weights, lif.weights, rtol=1e-10, atol=1e-10 * np.max(np.abs(lif.weights)))
    np.testing.assert_allclose(lif_again.e_leak, lif.e_leak, rtol=1e-10)


def test_lif_to_bm_rejects_non_bm_networks():
    lif = LIFNetworkParameters(e_leak=[-50.0, -51.0], weights=[[0.0, 0.01], [0.003, 0.0]])
    with pytest.raises(ValueError, match="do not correspond to a Boltzmann machine: W must be symmetric"):
        lif_to_bm(lif, DEFAULT_NEURON, DEFAULT_NOISE, FIT)


def test_renewing_synapse_parameters_reset_conductance():
    params = RENEWING_TSODYKS_MARKRAM(DEFAULT_NEURON)
    assert params == {"U": 1.0, "tau_rec": 10.0, "tau_facil": 0.0}
    assert RENEWING_TSODYKS_MARKRAM(DEFAULT_NEURON, "inhibitory")["tau_rec"] == DEFAULT_NEURON.tau_syn_I
    # Tsodyks-Markram resources x recover with tau_rec; with U = 1 each spike releases all of x.
    w, tau_syn, dt = 1.0, DEFAULT_NEURON.tau_syn_E, 2.0
    x, g = 1.0, 0.0
    for _ in range(4):  # a burst of 4 spikes at 2 ms intervals
        g += w * params["U"] * x
        x -= params["U"] * x
        assert g == pytest.approx(w)  # renewed to w, not summed
        g *= np.exp(-dt / tau_syn)
        x = 1.0 - (1.0 - x) * np.exp(-dt / params["tau_rec"])
    with pytest.raises(ValueError, match="receptor"):
        RENEWING_TSODYKS_MARKRAM(DEFAULT_NEURON, "gaba")


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "change, match",
    [
        ({"cm": 0.0}, "cm must be > 0"),
        ({"tau_m": -1.0}, "tau_m must be > 0"),
        ({"tau_refrac": 0.0}, "tau_refrac must be > 0"),
        ({"tau_syn_E": 0.0}, "tau_syn_E must be > 0"),
        ({"tau_syn_I": -2.0}, "tau_syn_I must be > 0"),
        ({"v_reset": -49.0}, "v_reset must be < v_thresh"),
        ({"e_rev_I": 10.0}, "e_rev_I must be < e_rev_E"),
        ({"v_rest": float("nan")}, "v_rest must be a finite number"),
    ],
)
def test_bad_neuron_parameters(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(DEFAULT_NEURON, **change)


@pytest.mark.parametrize("field_name", ["rate_exc", "rate_inh", "weight_exc", "weight_inh"])
def test_bad_noise_parameters(field_name):
    with pytest.raises(ValueError, match=f"{field_name} must be >= 0"):
        dataclasses.replace(DEFAULT_NOISE, **{field_name: -1.0})
    with pytest.raises(ValueError, match=f"{field_name} must be a finite"):
        dataclasses.replace(DEFAULT_NOISE, **{field_name: float("inf")})


def test_bad_activation_fit_and_network_parameters():
    with pytest.raises(ValueError, match="alpha must be > 0"):
        ActivationFit(v_p05=-50.0, alpha=0.0)
    with pytest.raises(ValueError, match="v_p05 must be a finite"):
        ActivationFit(v_p05=float("nan"), alpha=1.0)
    with pytest.raises(ValueError, match=r"weights must have shape \(n_pre, n_post\) = \(2, 2\)"):
        LIFNetworkParameters(e_leak=[-50.0, -51.0], weights=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="zero diagonal"):
        LIFNetworkParameters(e_leak=[-50.0, -51.0], weights=[[0.1, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="e_leak contains NaN"):
        LIFNetworkParameters(e_leak=[-50.0, np.nan], weights=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="e_leak must be a 1-D"):
        LIFNetworkParameters(e_leak=np.zeros((2, 2)), weights=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="mean membrane potentials .* must lie strictly between"):
        weight_factors(DEFAULT_NEURON, DEFAULT_NOISE, FIT, np.array([100.0]))
