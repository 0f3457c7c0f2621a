"""Short runs of the microcircuit protocol (output files, learning signals, CLI registration)."""

import json

import numpy as np
import pytest

from cortexsim.cli import build_parser
from cortexsim.protocols.microcircuit import MicrocircuitConfig, run_microcircuit, teacher_student_data


def test_sps_task_reduces_apical_potentials_and_writes_results(tmp_path):
    cfg = MicrocircuitConfig(seed=3, task="sps", epochs=4, n_train=500, n_test=50)
    result = run_microcircuit(cfg, tmp_path)
    assert result.final["apical_norm_reduction"] > 5      # measured 9.2x after 2000 patterns (deterministic)
    assert result.final["analytic_sps_max_abs_apical"] < 1e-6
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["seed"] == 3 and len(saved["curve"]) == 5
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000


def test_teacher_task_with_full_dynamics_learns():
    cfg = MicrocircuitConfig(seed=1, task="teacher", dynamics="full", epochs=1, n_train=60, n_test=200,
                             pattern_duration=20.0, eta_up=(2e-3, 4e-4), eta_ip=(1e-3,), eta_pi=(5e-4,))
    result = run_microcircuit(cfg)
    assert result.curve[-1]["test_loss"] < 0.9 * result.curve[0]["test_loss"]   # measured 2.45 -> 1.38 (deterministic)


def test_teacher_data_is_deterministic_and_nonlinear():
    a, teacher = teacher_student_data(200, seed=5)
    b, _ = teacher_student_data(200, seed=5)
    np.testing.assert_array_equal(a.targets, b.targets)
    hidden_u = teacher.forward(a.x)[0][1]
    assert 0.2 < np.mean(hidden_u > 3.0) < 0.8            # potentials on both sides of the knee


def test_cli_registration_and_bad_config():
    args = build_parser().parse_args(["microcircuit", "--task", "digits", "--seed", "2", "--out", "x"])
    assert args.task == "digits" and args.seed == 2 and args.command_entry.name == "microcircuit"
    with pytest.raises(ValueError, match="task"):
        MicrocircuitConfig(seed=0, task="cifar")


def test_bias_scale_spreads_first_layer_biases():
    from cortexsim.models.microcircuit.parameters import effective_network
    from cortexsim.protocols.microcircuit import _initial_weights

    with pytest.raises(ValueError, match="bias_scale"):
        MicrocircuitConfig(seed=0, bias_scale=-1.0)
    for scale in (0.0, 4.0):
        cfg = MicrocircuitConfig(seed=0, task="yinyang", bias_scale=scale).resolved()
        params = cfg.params()
        net = effective_network(_initial_weights(cfg, params), params)
        # 120 draws of N(0, scale^2): the sample std lies within scale * (1 +- 4 / sqrt(2 * 120)) (4 sigma)
        assert abs(np.std(net.biases[0]) - scale) <= 4 * scale / np.sqrt(240) + 1e-12
        np.testing.assert_allclose(net.biases[1], 0.0, atol=1e-12)
