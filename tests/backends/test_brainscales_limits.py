"""The emulated chip as a PyNN backend: every limit raises its error at creation; weights, noise,
calibration and the hardware report (small networks, short runs)."""

import numpy as np
import pytest

sim = pytest.importorskip("cortexsim.backends.brainscales")
from cortexsim.backends.brainscales import ChipLimitError, UnsupportedFeatureError  # noqa: E402

NEURON = dict(cm=0.2, tau_m=1.0, v_rest=-50.0, v_thresh=-50.0, v_reset=-50.001, tau_refrac=10.0,
              tau_syn_E=10.0, tau_syn_I=10.0, e_rev_E=0.0, e_rev_I=-100.0)


def test_neuron_count_limit():
    sim.setup(chip="bss2", seed=1)
    sim.Population(500, sim.IF_cond_exp())
    with pytest.raises(ChipLimitError, match=r"number of neurons.*requested 513 in total, allowed at most 512"):
        sim.Population(13, sim.IF_cond_exp(), label="extra")
    sim.Population(12, sim.IF_cond_exp())                     # exactly full is fine
    sim.Population(1000, sim.SpikeSourcePoisson(rate=10.0))    # sources use no neuron circuits


@pytest.mark.parametrize("chip, fan_in", [("bss2", 256), ("bss1", 224)])
def test_fan_in_limit_counts_all_projections(chip, fan_in):
    sim.setup(chip=chip, seed=1)
    target = sim.Population(2, sim.IF_cond_exp(), label="target")
    sources = sim.Population(fan_in, sim.SpikeSourcePoisson(rate=10.0))
    sim.Projection(sources, target, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.001))
    one_more = sim.Population(1, sim.SpikeSourcePoisson(rate=10.0))
    with pytest.raises(ChipLimitError, match=rf"fan-in.*requested {fan_in + 1} synapse rows, allowed at most {fan_in}"):
        sim.Projection(one_more, target, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.001),
                       receptor_type="inhibitory")


@pytest.mark.parametrize("make", [lambda: sim.IF_curr_alpha(), lambda: sim.IF_cond_alpha(),
                                  lambda: sim.Izhikevich(), lambda: sim.SpikeSourceGamma()])
def test_unsupported_cell_types(make):
    sim.setup(chip="bss2", seed=1)
    with pytest.raises(UnsupportedFeatureError, match="cell type: requested"):
        sim.Population(3, make())
    sim.Population(3, sim.EIF_cond_exp_isfa_ista())            # AdEx is on the chip
    sim.Population(3, sim.IF_curr_exp())                       # current-based synaptic input too


def test_unsupported_synapse_types_and_stp_modes():
    for chip in ("bss2", "bss1"):
        sim.setup(chip=chip, seed=1)
        cells = sim.Population(3, sim.IF_cond_exp())
        # STDP runs on bss2's correlation sensors (tests/backends/test_brainscales_stdp.py); bss1 has none
        stdp = sim.STDPMechanism(timing_dependence=sim.SpikePairRule(),
                                 weight_dependence=sim.AdditiveWeightDependence(w_max=0.01), weight=0.001)
        if chip == "bss1":
            with pytest.raises(UnsupportedFeatureError, match="synapse type: requested STDPMechanism"):
                sim.Projection(cells, cells, sim.AllToAllConnector(), stdp)
        with pytest.raises(UnsupportedFeatureError, match="depression and facilitation together"):
            sim.Projection(cells, cells, sim.AllToAllConnector(),
                           sim.TsodyksMarkramSynapse(U=0.2, tau_rec=100.0, tau_facil=50.0, weight=0.001))
        sim.Projection(cells, cells, sim.AllToAllConnector(),        # depression only: fine
                       sim.TsodyksMarkramSynapse(U=1.0, tau_rec=10.0, tau_facil=0.0, weight=0.001))


def test_delays():
    sim.setup(chip="bss2", seed=1, timestep=0.1)
    cells = sim.Population(3, sim.IF_cond_exp())
    with pytest.raises(UnsupportedFeatureError, match=r"synaptic delay.*requested 1 ms.*fixed minimal delay 0\.1 ms"):
        sim.Projection(cells, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.001, delay=1.0))
    projection = sim.Projection(cells, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.001))
    with pytest.raises(UnsupportedFeatureError, match="synaptic delay"):
        projection.set(delay=2.0)
    with pytest.raises(UnsupportedFeatureError, match="min_delay"):
        sim.setup(chip="bss2", seed=1, timestep=0.1, min_delay=1.0)
    sim.setup(chip="bss1", seed=1, timestep=0.1, min_delay=0.1)
    cells = sim.Population(3, sim.IF_cond_exp())
    sim.Projection(cells, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.001, delay=1.0))
    with pytest.raises(ChipLimitError, match=r"synaptic delay: requested 20 ms, allowed 0\.1 \.\. 10 ms"):
        sim.Projection(cells, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.001, delay=20.0))


def test_parameter_ranges_at_creation_and_on_set():
    sim.setup(chip="bss2", seed=1)
    with pytest.raises(ChipLimitError, match=r"parameter tau_m of IF_cond_exp.*requested 500 ms, allowed 0\.5 \.\. 100 ms"):
        sim.Population(4, sim.IF_cond_exp(tau_m=500.0))
    cells = sim.Population(4, sim.IF_cond_exp(**NEURON))
    with pytest.raises(ChipLimitError, match="parameter v_rest"):
        cells[1:3].set(v_rest=-5.0)
    assert cells.get("v_rest") == -50.0                         # the failed set changed nothing
    cells[1:3].set(v_rest=-49.0)
    np.testing.assert_array_equal(cells.get("v_rest"), [-50.0, -49.0, -49.0, -50.0])


def test_weight_range_and_clipping():
    sim.setup(chip="bss2", seed=1)
    cells = sim.Population(3, sim.IF_cond_exp())
    with pytest.raises(ChipLimitError, match=r"synaptic weight: requested 2 uS, allowed 0 \.\. 0\.98"):
        sim.Projection(cells, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.0))
    with pytest.raises(ChipLimitError, match="sign"):
        sim.Projection(cells, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=-0.01),
                       receptor_type="inhibitory")
    projection = sim.Projection(cells, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.01))
    with pytest.raises(ChipLimitError, match="synaptic weight"):
        projection.set(weight=5.0)
    sim.setup(chip="bss2", seed=1, clip_weights=True)
    cells = sim.Population(3, sim.IF_cond_exp())
    projection = sim.Projection(cells, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.0))
    assert np.all(np.array(projection.get("weight", format="list", with_address=False)) == sim.max_weight_uS(sim.CHIPS["bss2"]))
    assert sim.get_hardware_report()["quantisation"]["n_clipped"] == 9   # 3 x 3, autapses included


def test_current_sources_and_recordables_are_not_on_the_chip():
    sim.setup(chip="bss2", seed=1)
    cells = sim.Population(2, sim.IF_cond_exp())
    with pytest.raises(UnsupportedFeatureError, match="current source: requested DCSource"):
        sim.DCSource(amplitude=0.5)
    with pytest.raises(UnsupportedFeatureError, match="recordable variable"):
        cells.record("gsyn_exc")
    with pytest.raises(UnsupportedFeatureError, match="native NEST cell type"):
        sim.native_cell_type("ht_neuron")
    cells.record(["spikes", "v"])


@pytest.mark.parametrize("chip", ["bss2", "bss1"])
def test_weights_are_quantised_on_creation_set_and_single_connection(chip):
    sim.setup(chip=chip, seed=4)
    spec = sim.CHIPS[chip]
    unit = spec.row_scale_unit_uS
    pre = sim.Population(4, sim.SpikeSourcePoisson(rate=10.0))
    post = sim.Population(5, sim.IF_cond_exp(**NEURON))
    # representable matrix: row i uses scale m_i, integers up to the maximum
    m = np.array([3, 40, 700, 1023])
    integers = np.random.default_rng(0).integers(0, spec.max_weight_int + 1, (4, 5))
    integers[:, 2] = spec.max_weight_int
    representable = integers * (m[:, None] * unit)
    projection = sim.Projection(pre, post, sim.AllToAllConnector(),
                                sim.StaticSynapse(weight=representable), receptor_type="inhibitory")
    np.testing.assert_array_equal(projection.get("weight", format="array"), representable)
    # a non-representable update is quantised row by row, exactly as quantise_rows does it
    requested = np.random.default_rng(1).uniform(0.0, 0.05, (4, 5))
    projection.set(weight=requested)
    expected, _ = sim.quantisation.quantise_rows(requested.ravel(), np.repeat(np.arange(4), 5), 4, spec)
    got = projection.get("weight", format="array")
    np.testing.assert_array_equal(got, expected.reshape(4, 5))
    assert not np.array_equal(got, requested)
    # a single connection's weight goes through the same path
    connection = projection[0]
    connection.weight = 0.0123456
    assert connection.weight != 0.0123456 and abs(connection.weight - 0.0123456) < 0.05 / spec.max_weight_int
    report = sim.get_hardware_report()
    assert report["synapses"] == 20 and report["synapse_rows"] == 4
    assert 0 < report["quantisation"]["mean_abs_error_uS"] < 0.05 / spec.max_weight_int


def test_same_seed_same_chip_and_requested_values_are_what_get_returns():
    realised = {}
    for seed in (11, 11, 12):
        sim.setup(chip="bss2", chip_seed=seed, seed=seed + 100)
        cells = sim.Population(20, sim.IF_cond_exp(**NEURON))
        assert cells.get("v_rest") == -50.0
        realised.setdefault(seed, []).append(cells.realised_parameters("E_L", "V_th", "g_L", "tau_syn_ex"))
    for name in ("E_L", "V_th", "g_L", "tau_syn_ex"):
        np.testing.assert_array_equal(realised[11][0][name], realised[11][1][name])
        assert not np.allclose(realised[11][0][name], realised[12][0][name])
    sim.setup(chip="bss2", chip_seed=11, fixed_pattern_noise=False)
    cells = sim.Population(20, sim.IF_cond_exp(**NEURON))
    np.testing.assert_array_equal(cells.realised_parameters("E_L")["E_L"], -50.0)


def test_trial_noise_changes_between_trials_fixed_pattern_stays():
    sim.setup(chip="bss2", seed=3, trial_noise=0.2, fixed_pattern_noise=False, t_flush=10.0)
    cells = sim.Population(10, sim.IF_cond_exp(**NEURON))
    sim.run(1.0)
    first = cells.realised_parameters("E_L")["E_L"]
    sim.reset()
    sim.run(1.0)
    second = cells.realised_parameters("E_L")["E_L"]
    assert not np.allclose(first, second)
    # 0.2 x 1.4 mV nominal sd; 10 neurons: the sample sd lies well within a factor 3 of 0.28 mV
    assert 0.28 / 3 < np.std(first - -50.0) < 0.28 * 3


def test_calibration_compensates_offsets_gains_and_time_constants_and_is_cached(tmp_path):
    path = tmp_path / "chip.json"
    sim.setup(chip="bss2", chip_seed=21, calibration=path)
    chip = sim.get_chip()
    assert chip.calibration_source.startswith("measured") and path.exists()
    for name in ("E_L", "V_th", "V_reset"):
        before = np.std(chip.fixed_pattern[name])
        after = np.std(chip.fixed_pattern[name] - chip.calibration[name])
        # the residual is limited by the 0.12 mV correction step (uniform: sd 0.035 mV) and the
        # threshold read-out (half a 0.01 ms sample step); nominal offsets are 1.4 - 7 mV
        assert after < 0.1 < before
    for name in ("g_L", "C_m", "tau_syn_ex", "tau_syn_in", "gain_exc", "gain_inh"):
        before = np.std(chip.fixed_pattern[name])
        after = np.std(chip.fixed_pattern[name] / chip.calibration[name])
        # nominal relative deviations 10 - 25 %; the residual is the 1 % correction step (uniform:
        # sd 0.29 %) plus the fit error of the membrane-trace measurement (< 0.1 % sd measured)
        assert after < 0.01 < 0.05 < before, (name, after, before)
    cells = sim.Population(20, sim.IF_cond_exp(tau_syn_E=10.0, tau_syn_I=10.0, cm=0.2, tau_m=1.0))
    realised = cells.realised_parameters("tau_syn_ex", "tau_syn_in", "g_L", "C_m")
    for name, nominal in (("tau_syn_ex", 10.0), ("tau_syn_in", 10.0), ("g_L", 200.0), ("C_m", 200.0)):
        # half a 1 % correction step plus the measurement error (< 2 % worst case measured)
        np.testing.assert_allclose(realised[name], nominal, rtol=0.025, err_msg=name)
    sim.setup(chip="bss2", chip_seed=21, calibration=path)
    assert sim.get_chip().calibration_source.startswith("loaded")
    with pytest.raises(ValueError, match="belongs to chip"):
        sim.setup(chip="bss2", chip_seed=22, calibration=path)


@pytest.mark.parametrize("chip, speedup", [("bss2", 1e3), ("bss1", 1e4)])
def test_hardware_report(chip, speedup):
    sim.setup(chip=chip, seed=1)
    cells = sim.Population(8, sim.IF_cond_exp(**NEURON))
    noise = sim.Population(8, sim.SpikeSourcePoisson(rate=1000.0))
    sim.Projection(noise, cells, sim.OneToOneConnector(), sim.StaticSynapse(weight=0.001))
    sim.run(200.0)
    sim.run(50.0)
    report = sim.get_hardware_report()
    spec = sim.CHIPS[chip]
    assert report["biological_time_ms"] == pytest.approx(250.0)
    assert report["hardware_time_s"] == pytest.approx(0.25 / speedup)
    assert report["n_runs"] == 2 and report["n_configurations"] == 1
    assert report["estimated_wall_time_s"] == pytest.approx(
        spec.configuration_overhead_s + 2 * spec.run_overhead_s + 0.25 / speedup)
    assert report["used_neurons"] == 8 and report["synapse_rows"] == 8 and report["max_fan_in_used"] == 1


def test_run_seed_does_not_change_the_chip_and_select_chip_books_one():
    """Protocols call setup(seed=run_seed) per run: the chip (fixed-pattern noise) must stay the same."""
    def realised_leak(**options):
        sim.setup(**options)
        return sim.Population(5, sim.IF_cond_exp(**NEURON)).realised_parameters("E_L")["E_L"]

    default_chip = realised_leak(seed=1)
    np.testing.assert_array_equal(default_chip, realised_leak(seed=2))
    assert sim.get_chip().seed == sim.DEFAULT_CHIP_SEED and sim.get_chip().rng_seed == 2
    previous = sim.select_chip(chip_seed=9)
    try:
        booked = realised_leak(seed=3)
        np.testing.assert_array_equal(booked, realised_leak(seed=4))
        np.testing.assert_array_equal(booked, realised_leak(seed=4, chip_seed=9))
        assert not np.allclose(booked, default_chip)
        with pytest.raises(ValueError, match="unknown options"):
            sim.select_chip(chipseed=1)
        with pytest.raises(ValueError, match="chip_seed"):
            sim.select_chip(chip_seed=-1)
    finally:
        sim.select_chip()
    assert previous == sim.ChipSelection() == sim.selected_chip()
    np.testing.assert_array_equal(default_chip, realised_leak(seed=5))
