"""Latent Equilibrium on a small MNIST subset: LE learns at tau / 20, the original dynamics do not."""

import json

import pytest

from cortexsim.cli import main
from cortexsim.protocols.lagrangian_images import ImageLagrangianConfig, run_lagrangian_images


def test_le_learns_in_real_time_where_the_original_dynamics_cannot(tmp_path):
    common = dict(task="mnist", seed=1, epochs=1, n_train=1500, n_test=500, validation=True, lr=0.01)
    le = run_lagrangian_images(ImageLagrangianConfig(dynamics="latent_equilibrium", **common), tmp_path / "le")
    original = run_lagrangian_images(ImageLagrangianConfig(dynamics="original", **common))
    # measured (deterministic): LE 0.82 real-time; original 0.12 (its membranes move by ~5 % of the
    # input within tau / 20)
    assert le.test_accuracy > 0.6 and original.test_accuracy < 0.3
    saved = json.loads((tmp_path / "le" / "results.json").read_text())
    assert saved["summary"]["test_accuracy"] == le.test_accuracy and saved["config"]["t_pres_ms"] == 0.5
    assert (tmp_path / "le" / "learning_curve.png").stat().st_size > 1000


def test_cli_runs_image_tasks_and_names_bad_options(tmp_path, capsys):
    code = main(["lagrangian", "--task", "mnist", "--seed", "1", "--epochs", "1", "--n-train", "64", "--n-test",
                 "64", "--dynamics", "backprop", "--out", str(tmp_path)])
    assert code == 0 and "test_accuracy" in json.loads((tmp_path / "results.json").read_text())
    assert main(["lagrangian", "--task", "bars", "--seed", "1", "--out", str(tmp_path / "b")]) == 2
    assert "--t-pres is required" in capsys.readouterr().err
    with pytest.raises(ValueError, match="layer_lr_factors"):
        ImageLagrangianConfig(task="mnist", seed=0, layer_lr_factors=(1.0,))
