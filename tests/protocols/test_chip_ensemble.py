"""The ensemble protocol on the emulated chip: no programmable delays, a NEST Poisson reference,
no on-chip generators in the ensemble runs, the chip's neuron budget (tiny sizes: structure, not quality)."""

from dataclasses import asdict

import numpy as np
import pytest

from cortexsim.models.lif_translation import ActivationFit
from cortexsim.protocols.ensemble import EnsembleConfig, run_ensemble

chip = pytest.importorskip("cortexsim.backends.brainscales")


def test_chip_settings_fixed_delays_nest_reference_and_neuron_budget():
    config = EnsembleConfig(seed=1, backend="brainscales", dt_ms=0.1)
    assert config.reference_backend == "nest"
    on_chip = config.run_settings("brainscales").background
    assert on_chip.delay_ms == on_chip.delay_max_ms == 0.1         # the chip's fixed minimal delay
    assert config.run_settings("nest").background.delay_max_ms == 10.0
    assert EnsembleConfig(seed=1, backend="brainscales", poisson_backend="brian2").reference_backend == "brian2"
    assert EnsembleConfig(seed=1).reference_backend == "nest"
    with pytest.raises(ValueError, match=r"need 755 neurons; backend 'brainscales' has at most 512"):
        EnsembleConfig(seed=1, backend="brainscales", n_networks=100)
    EnsembleConfig(seed=1, backend="brainscales", n_networks=100, calibration_points=10, calibration_groups=1,
                   membrane_probes=2)                                # 500 + 12 = 512 circuits


def test_tiny_chip_ensemble_runs_without_generators_and_reports_hardware_time():
    previous = chip.select_chip(chip="bss2", chip_seed=0, fixed_pattern_noise=True, calibration=None)
    try:
        config = EnsembleConfig(seed=2, backend="brainscales", n_networks=12, n_neurons=3, in_degree=4,
                                calibration_points=5, calibration_groups=1, membrane_probes=1, train_iterations=2,
                                sampling_ms=200.0, eval_duration_ms=500.0, calibration_ms=1000.0, burn_in_ms=50.0)
        results = run_ensemble(config, poisson_fit=ActivationFit(v_p05=-50.61, alpha=0.82))
    finally:
        chip.select_chip(**asdict(previous))
    assert results["backends"] == {"poisson": "nest", "ensemble": "brainscales"}
    hardware = results["hardware"]
    assert set(hardware) == {"background", "ensemble_untrained", "ensemble_training", "ensemble_trained"}
    for report in hardware.values():
        assert report["chip"] == "bss2" and report["background"]["generators_used"] == 0
        assert report["hardware_time_s"] == pytest.approx(report["biological_time_ms"] / 1e6)
    assert hardware["ensemble_trained"]["used_neurons"] == 36 and hardware["background"]["used_neurons"] == 42
    assert hardware["ensemble_trained"]["biological_time_ms"] == pytest.approx(550.0, abs=1.0)
    assert np.isfinite(results["dkl_ensemble_trained"]["median"])
    assert results["ensemble_background"]["delay_max_ms"] == config.dt_ms


def test_cli_places_the_ensemble_on_the_chip_and_refuses_an_over_budget_one_before_running(tmp_path, capsys):
    """``cortexsim ensemble --backend brainscales``: the probe options reach the config; 100 networks
    with the default probes (755 circuits) are refused with exit code 2, naming the budget."""
    from cortexsim.cli import COMMANDS, build_config, build_parser, main

    command = next(c for c in COMMANDS if c.name == "ensemble")
    args = build_parser().parse_args(["ensemble", "--backend", "brainscales", "--networks", "100",
                                      "--calibration-points", "10", "--calibration-groups", "1",
                                      "--membrane-probes", "2", "--out", str(tmp_path / "ok")])
    _, config = build_config(command, args)
    assert (config.backend, config.n_networks, config.calibration_points, config.calibration_groups,
            config.membrane_probes, config.reference_backend) == ("brainscales", 100, 10, 1, 2, "nest")
    assert main(["ensemble", "--backend", "brainscales", "--networks", "100", "--out", str(tmp_path / "no")]) == 2
    assert "need 755 neurons; backend 'brainscales' has at most 512" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
