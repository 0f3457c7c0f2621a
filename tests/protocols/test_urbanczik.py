"""Urbanczik & Senn (2014) learning: NEST's pp_cond_exp_mc_urbanczik against the Brian2 equations.

Short runs (well under a minute together); the full 100-repetition comparison is
benchmarks/urbanczik_nest.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from cortexsim.models.microcircuit.urbanczik import (UrbanczikConfig, UrbanczikNeuronParams, dendritic_prediction,
                                                     h, matching_potential, phi,
                                                     prediction_error_per_repetition, repetition_noise)

nest = pytest.importorskip("nest")
brian2 = pytest.importorskip("brian2")

from cortexsim.models.microcircuit.urbanczik_brian2 import run_brian2_urbanczik  # noqa: E402
from cortexsim.models.microcircuit.urbanczik_nest import run_nest_urbanczik  # noqa: E402

SEED = 11


def test_h_is_15_times_log_derivative_of_phi():
    params = UrbanczikNeuronParams()
    u = np.linspace(-80.0, -30.0, 11)
    eps = 1e-5
    log_derivative = (np.log(phi(u + eps, params)) - np.log(phi(u - eps, params))) / (2 * eps)
    np.testing.assert_allclose(h(u, params), 15.0 * log_derivative, rtol=1e-6)


def test_prediction_equals_matching_potential_makes_zero_error():
    params = UrbanczikNeuronParams()
    config = UrbanczikConfig(seed=0, n_repetitions=2, idle_before=1, idle_after=0, pattern_ms=1.0)
    t = np.round(np.arange(1, 31) * config.dt, 10)                 # end-of-step stamps, 3 repetitions
    g_e, g_i = np.full(t.size, 200.0), np.full(t.size, 500.0)
    u_m = matching_potential(g_e, g_i, params)
    v_w = (u_m * (params.g_L_soma + params.g_D) - params.g_L_soma * params.E_L) / params.g_D
    np.testing.assert_allclose(dendritic_prediction(v_w, params), u_m)
    rms, mean_abs = prediction_error_per_repetition(t, v_w, g_e, g_i, config, params)
    assert rms.shape == (2,) and np.all(rms < 1e-9) and np.all(mean_abs < 1e-9)
    shift = 2.1                                                      # mV on the dendrite
    rms, _ = prediction_error_per_repetition(t, v_w + shift, g_e, g_i, config, params)
    np.testing.assert_allclose(rms, shift * params.g_D / (params.g_L_soma + params.g_D), rtol=1e-9)


@pytest.mark.parametrize("field, value", [("seed", -1), ("n_repetitions", 1), ("pattern_ms", 200.05),
                                          ("g_exc_amplitude", 500.0), ("input_rate", 0.0)])
def test_bad_config_raises_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        UrbanczikConfig(**{"seed": 0, field: value})


def test_plasticity_off_nest_and_brian2_give_the_same_error_curve():
    # With eta = 0 the dendrite sees the same deterministic input on both simulators, so V_w agrees to
    # ~1e-7 mV (measured); the error curves then differ only through the teacher conductance (NEST
    # jumps once per step, Brian2 relaxes continuously): measured 5e-4 to 3e-3 mV. Tolerance 0.02 mV,
    # far below the ~10 mV error itself and the ~0.3 mV an integration or timing mistake produces.
    config = UrbanczikConfig(seed=SEED, n_repetitions=2, idle_before=1, idle_after=0)
    params = UrbanczikNeuronParams(eta=0.0)
    on_nest = run_nest_urbanczik(config, params)
    on_brian2 = run_brian2_urbanczik(config, params, codegen_target="numpy")
    assert np.all(on_nest.errors_rms > 3.0)
    np.testing.assert_allclose(on_brian2.errors_rms, on_nest.errors_rms, atol=0.02, rtol=0)
    np.testing.assert_allclose(on_brian2.final_weights, params.w_init)


@pytest.mark.parametrize("simulator", ["nest", "brian2"])
def test_dendritic_prediction_error_falls_while_learning(simulator):
    config = UrbanczikConfig(seed=SEED, n_repetitions=12, idle_before=1, idle_after=0)
    previous_target = brian2.prefs.codegen.target
    if simulator == "nest":
        result = run_nest_urbanczik(config)
    else:
        result = run_brian2_urbanczik(config, codegen_target="numpy")
        assert brian2.prefs.codegen.target == previous_target      # process-wide preference restored
    errors = result.errors_rms
    # Per-repetition errors scatter with s.d. sigma (stochastic somatic spikes drive the weights);
    # sigma is estimated from successive differences, which the downward trend only inflates
    # (conservative). first - mean(last 3) has s.d. sigma * sqrt(1 + 1/3) without learning; require
    # a drop of more than 3 such s.d. (a chance pass has probability < 0.2 %).
    sigma = repetition_noise(errors)
    drop = errors[0] - np.mean(errors[-3:])
    assert drop > 3.0 * sigma * np.sqrt(1 + 1 / 3), (errors, sigma)
    assert result.n_output_spikes > 0
    assert not np.allclose(result.final_weights, result.params.w_init)
