"""The mixing protocol on NEST: short runs of the bistable target and a small digits-layout RBM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cortexsim.models.boltzmann import BoltzmannMachine
from cortexsim.parameters import ActivationFit
from cortexsim.protocols.cd_digits import N_LABELS, N_PIXELS, N_VISIBLE
from cortexsim.protocols.mixing import MixingConfig, run

#: Activation function of the default parameter set on NEST (references §1, measured): given, so the
#: test does not calibrate; the comparisons below are between mechanisms on the same translation.
FIT = ActivationFit(v_p05=-50.61, alpha=0.82)


def test_depressing_synapses_switch_modes_more_often_than_renewing_ones(tmp_path):
    # n = 6, J = 0.6: barrier 10.8. Renewing synapses switch ~0.2 /s (development seeds), the depressing
    # ones (U 0.2, tau_rec 500 ms, 0.6 x the analytic factor) ~5 /s: in 8 s about 2 vs 40 switches; the
    # assertion (at least 4x, and > 10 switches) leaves room for Poisson spread on both sides (~5 sd).
    config = MixingConfig(seed=3, duration_ms=8000.0, n_units=6, coupling=0.6, U=0.2, tau_rec_ms=500.0,
                          weight_factor_scale=0.6, tempering_replicas=4)
    result = run(config, out_dir=tmp_path, fit=FIT)
    renewing, depressing = result.mechanisms["renewing"], result.mechanisms["depressing"]
    assert depressing["n_switches"] > 10
    assert depressing["n_switches"] >= 4 * max(renewing["n_switches"], 1)
    # The depressing network shares its time between the two modes; both modes are equally probable.
    share = np.asarray(depressing["time_in_modes"])
    assert abs(share[0] / share.sum() - 0.5) < 0.2
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["summary"]["switches_per_s_stp"] == pytest.approx(depressing["n_switches"] / 8.0)
    for name in ("trajectory.png", "dwell_times.png", "dkl_over_time.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert result.tempering["ess_per_cpu_s"] > 0 and min(result.tempering["swap_acceptance"]) > 0


def test_digits_target_reads_classes_from_the_label_units(tmp_path):
    """A digits-layout RBM whose label unit 3 (only) is strongly on: the read-out names class 3 alone."""
    n_hidden = 4
    n = N_VISIBLE + n_hidden
    W = np.zeros((n, n))
    b = np.full(n, -4.0)
    b[N_PIXELS + 3] = 4.0
    config = MixingConfig(seed=2, target="digits", duration_ms=1500.0, class_window_ms=100.0,
                          mechanisms=("renewing",))
    result = run(config, out_dir=tmp_path, fit=FIT, bm=BoltzmannMachine(W, b))
    renewing = result.mechanisms["renewing"]
    assert renewing["classes_visited"] == [3]
    assert renewing["windows_with_a_class"] > 0.8
    assert len(renewing["rates_hz"]) == n and N_LABELS == 10
    assert (tmp_path / "classes.png").exists()


@pytest.mark.parametrize("changes, message", [
    ({"target": "trimodal"}, "target"),
    ({"U": 0.0}, "U must lie in"),
    ({"tau_rec_ms": -1.0}, "tau_rec_ms"),
    ({"mechanisms": ("renewing", "static")}, "mechanisms"),
    ({"n_units": 7}, "even"),
    ({"mode_max_distance": 3}, "mode_max_distance"),
    ({"readout_dt_ms": 20.0}, "readout_dt_ms"),
    ({"state_window_ms": 9.0}, "state_window_ms"),
    ({"cd_average_fraction": 1.0}, "cd_average_fraction"),
])
def test_bad_settings_are_refused_before_anything_runs(changes, message):
    with pytest.raises(ValueError, match=message):
        MixingConfig(seed=1, **changes)


def test_cli_refuses_bad_depression_parameters_before_running(tmp_path, capsys):
    from cortexsim.cli import main

    assert main(["mixing", "--U", "1.5", "--out", str(tmp_path / "o")]) == 2
    assert "U must lie in (0, 1]" in capsys.readouterr().err
    assert main(["mixing", "--target", "digits", "--weight-correction", "cd", "--out", str(tmp_path / "o")]) == 2
    assert "bistable" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()


def test_cli_runs_a_short_bistable_comparison(tmp_path):
    from cortexsim.cli import main

    out = tmp_path / "run"
    assert main(["mixing", "--target", "bistable", "--duration", "2000", "--units", "4", "--coupling", "0.8",
                 "--tempering-replicas", "3", "--seed", "5", "--out", str(out), "-q"]) == 0
    written = json.loads((out / "results.json").read_text())
    assert set(written["mechanisms"]) == {"renewing", "depressing"}
    assert written["config"]["U"] == 0.1 and written["config"]["duration_ms"] == 2000.0
    assert {"switches_per_s_stp", "switches_per_s_renewing", "dkl_stp"} <= set(written["summary"])


def test_cd_fit_strengthens_couplings_that_the_weight_correction_left_too_weak():
    """The CD engine fits the depressing network: with 0.3 x the analytic factor the couplings act too
    weakly (modes too shallow, groups too independent), so the fit must grow both the excitatory
    within-group and the inhibitory between-group weights of the BM it hands to the network."""
    from cortexsim.models.short_term_depression import depression_weight_factor
    from cortexsim.protocols.mixing import cd_fit_depressing

    config = MixingConfig(seed=4, n_units=4, coupling=0.6, weight_correction="cd", cd_iterations=3,
                          cd_sampling_ms=3000.0, cd_learning_rate=2.0)
    from cortexsim.models.multimodal import bistable_bm

    target = bistable_bm(4, 0.6)
    factor = 0.15 * depression_weight_factor(config.depression, config.neuron.tau_refrac, config.neuron.tau_syn_E)
    fitted, history = cd_fit_depressing(config, target.bm, FIT, factor)
    assert len(history["iteration"]) == 3
    within, between = (0, 1), (0, 2)  # units 0, 1 form pattern A; unit 2 belongs to pattern B
    assert fitted.W[within] > target.bm.W[within] + 0.1
    assert fitted.W[between] < target.bm.W[between] - 0.1


@pytest.mark.parametrize("backend", ["nest", "brian2", "brainscales"])
def test_default_state_window_is_the_neurons_dead_time(backend):
    """A neuron driven far above threshold fires as soon as it may: every interval is its dead time
    (NEST and the emulated chip on NEST: tau_refrac + dt; Brian2: tau_refrac), which the default state
    window must equal, or a unit that should stay on reads as off for one step per period (~1 %) or on
    while it could fire. The chip without fixed-pattern noise (its tau_refrac spread is not the point)."""
    from cortexsim.backends import load_backend
    from cortexsim.parameters import DEFAULT_NEURON

    config = MixingConfig(seed=1, dt_ms=0.1, backend=backend)
    sim = load_backend(backend)
    previous = sim.select_chip(fixed_pattern_noise=False, calibration=None) if backend == "brainscales" else None
    sim.setup(timestep=config.dt_ms, seed=5)
    parameters = DEFAULT_NEURON.as_pynn()
    parameters["v_rest"] = -30.0
    population = sim.Population(1, sim.IF_cond_exp(**parameters))
    population.record("spikes")
    sim.run(300.0)
    isi = np.diff(np.asarray(population.get_data("spikes").segments[-1].spiketrains[0].magnitude))
    sim.end()
    if previous is not None:
        sim.select_chip(**{name: getattr(previous, name) for name in previous.__dataclass_fields__})
    assert isi.size > 20
    np.testing.assert_allclose(isi, config.state_window_ms, atol=1e-6)
