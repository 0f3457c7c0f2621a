"""Short real-time training runs of the Lagrangian protocol (Bars task, ~5 s)."""

import json

import numpy as np
import pytest

from cortexsim.cli import main
from cortexsim.protocols.lagrangian import LagrangianConfig, run_lagrangian


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="task"):
        LagrangianConfig(task="mnist", t_pres=1.0, seed=0)
    with pytest.raises(ValueError, match="t_pres"):
        LagrangianConfig(task="bars", t_pres=0.0, seed=0)
    with pytest.raises(ValueError, match="lr_decay"):
        LagrangianConfig(task="bars", t_pres=1.0, seed=0, lr_decay=1.5)
    with pytest.raises(ValueError, match="hidden_lr_factor"):
        LagrangianConfig(task="bars", t_pres=1.0, seed=0, hidden_lr_factor=0.0)
    with pytest.raises(ValueError, match="error_iterations"):
        LagrangianConfig(task="bars", t_pres=1.0, seed=0, error_iterations=0).parameters()
    params = LagrangianConfig(task="yinyang", t_pres=2.0, seed=0, hidden_lr_factor=10.0, error_iterations=3,
                              error_relaxation=0.7).parameters()
    assert params.eta_layer_factors == (10.0, 1.0) and params.error_iterations == 3
    cfg = LagrangianConfig(task="bars", t_pres=30.0, seed=0, dt_max=1.0, min_steps=10)
    assert cfg.n_steps == 30 and cfg.dt == pytest.approx(1.0)


def test_latent_equilibrium_learns_bars_at_a_tenth_of_tau_while_original_dynamics_cannot():
    common = dict(task="bars", t_pres=1.0, seed=0, n_seeds=2, lr=0.3, epochs=100, eval_every=100,
                  min_steps=4, tau=10.0)
    le = run_lagrangian(LagrangianConfig(dynamics="latent_equilibrium", **common))
    orig = run_lagrangian(LagrangianConfig(dynamics="original", **common))
    # Deterministic runs (fixed seeds).  48 test images: chance 1/3 with binomial sd ~0.07, so 0.9
    # and 0.5 lie far on either side of chance.  LE measured 1.0 for both seeds (lr chosen for the
    # benchmark, not for this test); the original dynamics cannot follow a 1 ms input with tau = 10 ms.
    assert min(le.realtime_test_accuracy) >= 0.9
    assert min(le.settled_test_accuracy) >= 0.9
    assert max(orig.realtime_test_accuracy) <= 0.5


def test_cli_writes_results(tmp_path):
    out = tmp_path / "run"
    assert main(["lagrangian", "--task", "bars", "--t-pres", "0.5", "--seed", "3",
                 "--n-seeds", "1", "--epochs", "2", "--out", str(out)]) == 0
    payload = json.loads((out / "results.json").read_text())
    assert payload["config"]["seed"] == 3 and payload["config"]["t_pres"] == 0.5
    assert payload["versions"]["numpy"] == np.__version__
    assert (out / "learning_curve.png").stat().st_size > 1000
    assert len(payload["realtime_test_accuracy"]) == 1
