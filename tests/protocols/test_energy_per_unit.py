"""Energy per sample (sampling) and per training iteration (CD) in the results, on the chip and on NEST.

The chip figure is checked against the published power x the hardware time computed here from the
run's own settings (biological time / speed-up 1000), not against the code's bookkeeping; the NEST
figure against the definition (CPU time x 15 W per core) with the sample count from tau_ref.
"""

from __future__ import annotations

import pytest

from cortexsim.backends.energy import CHIP_POWER, DEFAULT_CPU_POWER_W_PER_CORE, HardwareTime, experiment_energy
from cortexsim.parameters import ActivationFit

pytest.importorskip("nest")
pytest.importorskip("pyNN")

FIT = ActivationFit(v_p05=-50.61, alpha=0.82)      # references §1: no calibration needed here
ASIC_W = 192e-6 / 276e-6                           # Stradmann et al. 2022: 192 uJ per 276 us


def test_experiment_energy_per_unit_by_hand():
    hardware = HardwareTime("bss2", hardware_time_s=4e-3, wall_time_s=2.0)
    chip = experiment_energy(hardware, cpu_time_s=100.0, units=8, unit_name="iteration")
    assert chip["model"] == "chip" and chip["unit"] == "iteration"
    assert chip["j_per_iteration"] == pytest.approx(ASIC_W * 4e-3 / 8)
    assert chip["system_j_per_iteration"] == pytest.approx(5.6 * 2.0 / 8)
    assert chip["prototype_j_per_iteration"] == pytest.approx(0.057 * 4e-3 / 8)
    assert chip["emulator_cpu_time_s"] == 100.0                 # kept, but not the chip's energy
    software = experiment_energy(HardwareTime(), cpu_time_s=3.0, units=6, unit_name="sample", cpu_power_w_per_core=8.0)
    assert software["model"] == "software" and software["j_per_sample"] == pytest.approx(3.0 * 8.0 / 6)
    assert experiment_energy(HardwareTime("bss1", 1.0, 1.0), 1.0, 1, "sample")["j_per_sample"] is None
    with pytest.raises(ValueError, match="units"):
        experiment_energy(hardware, 1.0, 0, "sample")
    two_chips = HardwareTime("bss1", 1.0, 1.0)
    with pytest.raises(ValueError, match="two chips"):
        two_chips.add(type("Chip", (), {"get_hardware_report": staticmethod(
            lambda: {"chip": "bss2", "hardware_time_s": 1.0, "estimated_wall_time_s": 1.0})}))
    assert CHIP_POWER["bss2"].asic_w == pytest.approx(ASIC_W)


@pytest.mark.parametrize("backend", ["brainscales", "nest"])
def test_sampling_reports_joules_per_sample(backend):
    from cortexsim.protocols.sampling import SamplingConfig, sample

    duration_ms, tau_ref_ms = 600.0, 10.0
    result = sample(SamplingConfig(seed=4, backend=backend, n_neurons=3, duration_ms=duration_ms), fit=FIT)
    energy = result.energy
    n_samples = duration_ms / tau_ref_ms                       # one state per tau_ref
    assert energy["units"] == n_samples and result.summary()["energy_j_per_sample"] == energy["j_per_sample"]
    if backend == "brainscales":
        hardware_s = duration_ms / 1000.0 / 1000.0             # speed-up 1000
        assert energy["model"] == "chip"
        assert energy["j_per_sample"] == pytest.approx(ASIC_W * hardware_s / n_samples, rel=1e-6)
    else:
        assert energy["model"] == "software" and energy["cpu_power_w_per_core"] == DEFAULT_CPU_POWER_W_PER_CORE
        assert 0 < energy["cpu_time_s"] <= 60.0
        assert energy["j_per_sample"] == pytest.approx(energy["cpu_time_s"] * DEFAULT_CPU_POWER_W_PER_CORE / n_samples)


def test_cd_training_on_the_chip_reports_joules_per_iteration_over_all_segments(tmp_path):
    """Two segments (checkpoint_every=1), each with its burn-in: the chip runs 2 x (50 + 200) ms of
    biology = 0.5 ms of hardware time; a bookkeeping that kept only the last segment gives half."""
    from cortexsim.models.boltzmann import random_bm
    from cortexsim.protocols.cd_training import TargetTrainingConfig, train_target

    config = TargetTrainingConfig(seed=6, backend="brainscales", iterations=2, sampling_ms=200.0, burn_in_ms=50.0,
                                  checkpoint_every=1, eval_duration_ms=100.0, learning_rate=0.5)
    result = train_target(config, targets=[random_bm(3, seed=2)], fit=FIT, out_dir=tmp_path)
    energy = result.energy
    assert energy["model"] == "chip" and energy["units"] == 2
    assert energy["hardware_time_s"] == pytest.approx(2 * (50.0 + 200.0) / 1e6)
    assert result.summary()["energy_j_per_iteration"] == pytest.approx(ASIC_W * 0.5e-3 / 2, rel=1e-6)
