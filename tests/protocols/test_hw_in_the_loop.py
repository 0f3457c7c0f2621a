"""Hardware-in-the-loop CD training: the unchanged CD protocol on the emulated BrainScaleS chip.

One short run of :func:`train_target` with ``backend="brainscales"`` on a booked, uncalibrated bss2
chip (two 5-neuron targets, 6 iterations of 2 s). Checked: every ``setup()`` of the protocol
(evaluations and training segments) lands on the same chip while the run seeds differ; the bias
updates follow the chip's own fixed-pattern offsets (so they come from samples measured on this chip);
D_KL(sampled || target) falls by far more than its estimation noise.
"""

from __future__ import annotations

import numpy as np
import pytest

import cortexsim.backends.brainscales as chip_sim
from cortexsim.models.boltzmann import random_bm
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit
from cortexsim.protocols.cd_training import TargetTrainingConfig, train_target

#: Activation fit of the ideal software neuron (references §1, measured on NEST: v_p05 -50.61 mV,
#: alpha 0.82 mV): the "naive" translation that ignores the chip.
SOFTWARE_FIT = ActivationFit(-50.61, 0.82)
CHIP_SEED = 4
SAMPLING_MS, EVAL_MS = 2000.0, 5000.0


def _bias_shift_of_circuits(pattern: dict, circuits: np.ndarray) -> np.ndarray:
    """Bias shift (BM units) that fixed-pattern noise gives neurons at E_l = v_p05 on ``circuits``."""
    neuron, noise = DEFAULT_NEURON, DEFAULT_NOISE
    g_exc = noise.weight_exc * noise.rate_exc * 1e-3 * neuron.tau_syn_E        # uS
    g_inh = noise.weight_inh * noise.rate_inh * 1e-3 * neuron.tau_syn_I
    g_leak = neuron.cm / neuron.tau_m

    def mean_potential(g_e, g_i, g_l, e_l):
        return (neuron.e_rev_E * g_e + neuron.e_rev_I * g_i + e_l * g_l) / (g_e + g_i + g_l)

    e_leak = SOFTWARE_FIT.v_p05
    real = mean_potential(g_exc * pattern["gain_exc"][circuits] * pattern["tau_syn_ex"][circuits],
                          g_inh * pattern["gain_inh"][circuits] * pattern["tau_syn_in"][circuits],
                          g_leak * pattern["g_L"][circuits], e_leak + pattern["E_L"][circuits])
    shift_mv = real - mean_potential(g_exc, g_inh, g_leak, e_leak) - pattern["V_th"][circuits]
    return shift_mv * (g_exc + g_inh + g_leak) / g_leak / SOFTWARE_FIT.alpha


@pytest.fixture
def booked_chip():
    previous = chip_sim.select_chip(chip="bss2", chip_seed=CHIP_SEED, fixed_pattern_noise=True, calibration=None)
    yield
    chip_sim.select_chip(**{name: getattr(previous, name) for name in previous.__dataclass_fields__})


def test_cd_protocol_trains_on_the_emulated_chip(booked_chip, monkeypatch):
    sessions = []
    original_setup = chip_sim.setup

    def recording_setup(*args, **kwargs):
        result = original_setup(*args, **kwargs)
        chip = chip_sim.get_chip()
        sessions.append((chip.seed, chip.rng_seed, {k: v.copy() for k, v in chip.fixed_pattern.items()}))
        return result

    monkeypatch.setattr(chip_sim, "setup", recording_setup)
    targets = [random_bm(5, seed=k) for k in (0, 1)]
    config = TargetTrainingConfig(seed=2, backend="brainscales", iterations=6, sampling_ms=SAMPLING_MS,
                                  checkpoint_every=3, eval_duration_ms=EVAL_MS, learning_rate=1.0,
                                  schedule="inverse", schedule_tau=20.0, momentum=0.5)
    result = train_target(config, targets=targets, fit=SOFTWARE_FIT)

    # one chip throughout (initial evaluation, 2 training segments, final evaluation), varying run seeds
    assert len(sessions) == 4
    assert {seed for seed, _, _ in sessions} == {CHIP_SEED}
    assert len({run_seed for _, run_seed, _ in sessions}) == 4
    for _, _, pattern in sessions[1:]:
        for name, values in pattern.items():
            np.testing.assert_array_equal(values, sessions[0][2][name])

    # The updates come from this chip's samples. The sampling network's 10 neurons sit on circuits
    # 0..9; an uncalibrated circuit's deviations shift its bias (BM units) by the shift of the free
    # mean membrane potential (leak offset, leak conductance, and the background's synaptic gain and
    # time constant) minus its threshold offset, in units of alpha * g_l / g_tot (references §1).
    # Training must move each bias against that shift. With 10 neurons, a correlation above 0.8 would
    # arise by chance (updates unrelated to the chip) with probability ~0.3 % (one-sided t-test, 8 dof).
    chip_bias_shift = _bias_shift_of_circuits(sessions[0][2], np.arange(10))
    bias_change = (np.concatenate([bm.b for bm in result.final])
                   - np.concatenate([bm.b for bm in result.initial]))
    assert np.all(np.abs(bias_change) > 0)
    correlation = np.corrcoef(bias_change, -chip_bias_shift)[0, 1]
    assert correlation > 0.8, (correlation, bias_change, chip_bias_shift)

    # D_KL falls beyond noise: after EVAL_MS = 5000 ms a 5-unit joint has ~EVAL_MS / tau_ref = 500
    # effective samples, so the estimate's bias is ~ (2**5 - 1) / (2 * 500) = 0.03 nats; the naive
    # translation on the uncalibrated chip starts at D_KL ~ 1-3 nats.
    before = np.median([row["dkl_sampled_target"] for row in result.dkl_initial])
    after = np.median([row["dkl_sampled_target"] for row in result.dkl_final])
    assert after < 0.5 * before and before - after > 10 * 0.03, (before, after)
