"""BrainScaleS-2's PyNN dialect on the emulator: set-up, units, mapping, limits, recording, commands, hooks.

The mapping from hardware parameters to the emulated circuit is checked against PyNN's own NEST
module running the biological parameters computed here by hand from the documented formulas of
:mod:`cortexsim.backends.brainscales2.hardware_model` (not by calling it).
"""

import logging

import numpy as np
import pytest

pynn = pytest.importorskip("cortexsim.backends.brainscales2")
import pyNN.nest as pynn_nest  # noqa: E402
from pyNN.errors import ConnectionError as PyNNConnectionError  # noqa: E402

from cortexsim.backends.brainscales import ChipLimitError, UnsupportedFeatureError  # noqa: E402


@pytest.fixture(autouse=True)
def _end():
    yield
    pynn.end()


def test_setup_accepts_brainscales2_keywords_and_refuses_unknown_ones():
    pynn.setup(neuronPermutation=[0, 3, 6], calibration_cache=None, injected_config=pynn.InjectedConfiguration(),
               injected_readout=pynn.InjectedReadout(), enable_neuron_bypass=False, seed=3, chip_seed=2)
    with pytest.raises(KeyError, match="foo"):
        pynn.setup(foo=True)
    with pytest.raises(ValueError, match="repeat"):
        pynn.setup(neuronPermutation=[8, 8, 8])
    with pytest.raises(OverflowError):
        pynn.setup(neuronPermutation=[513])
    with pytest.raises(TypeError):
        pynn.setup(neuronPermutation=[-1])
    with pytest.raises(UnsupportedFeatureError, match="not supported by the emulator: setup\\(injected_config"):
        pynn.setup(injected_config=pynn.InjectedConfiguration(pre_realtime={"neuron": 1}))
    with pytest.raises(UnsupportedFeatureError, match="neuron bypass"):
        pynn.setup(enable_neuron_bypass=True)
    with pytest.raises(UnsupportedFeatureError, match="initial_config"):
        pynn.setup(initial_config=object())


def test_hardware_time_units_and_neuron_permutation():
    pynn.setup(neuronPermutation=[7, 4])
    pop = pynn.Population(2, pynn.cells.HXNeuron(leak_v_leak=1000, leak_i_bias=200, threshold_v_threshold=300,
                                                 threshold_enable=True, refractory_period_refractory_time=120,
                                                 membrane_capacitance_capacitance=63))
    pop.record("spikes")
    pynn.run(0.2)
    assert pynn.get_current_time() == pytest.approx(0.2)
    statistics = pynn.get_backend_statistics()
    assert statistics.chip["biological_time_ms"] == pytest.approx(200.0)     # 0.2 ms on chip = 200 ms of biology
    assert statistics.hardware_time_ms == pytest.approx(0.2)
    train = pop.get_data().segments[0].spiketrains[0]
    assert train.t_stop.magnitude == pytest.approx(0.2) and 0 < train.magnitude.max() < 0.2
    # the two neurons sit on circuits 7 and 4: their fixed-pattern noise is that of those circuits
    chip = statistics.chip
    assert chip["used_neurons"] == 2
    session = pynn.mapping._engine().get_chip()
    np.testing.assert_array_equal(session.populations[0].circuits, [7, 4])


def _reference_trace():
    """The same neuron on PyNN's own NEST: IF_curr_exp with parameters computed by hand from the
    documented model (leak 700 -> 0.37 V -> -72.25 mV; threshold 400 -> 0.4697 V -> -64.77 mV;
    reset 450 -> 0.17 V -> -87.25 mV; cap 63 -> 1 nF; leak bias 102 -> 0.0998 uS -> tau_m 10.02 ms;
    tau bias 100 -> tau_syn 3.066 ms; gm 511, weight 40 -> 40/63 * 0.9 nA * 511/1022 = 0.2857 nA;
    inhibitory tau bias 300 -> 1.022 ms, gm 1022, weight -20 -> -0.2857 nA; refractory 16 -> 2 ms)."""
    cell = dict(v_rest=-100 + 75 * (700 * 0.0008 - 0.19), v_reset=-100 + 75 * (450 * 0.0008 - 0.19),
                v_thresh=-100 + 75 * 400 / 1022 * 1.2, cm=1.0, tau_m=1.0 / (102 / 1022), tau_refrac=2.0,
                tau_syn_E=0.3 * 1022 / 100, tau_syn_I=0.3 * 1022 / 300, i_offset=0.0)
    pynn_nest.setup(timestep=0.1, spike_precision="on_grid")
    cells = pynn_nest.Population(1, pynn_nest.IF_curr_exp(**cell))
    cells.initialize(v=cell["v_rest"])
    exc = pynn_nest.Population(1, pynn_nest.SpikeSourceArray(spike_times=[10.0 + 2 * k for k in range(20)]))
    inh = pynn_nest.Population(1, pynn_nest.SpikeSourceArray(spike_times=[60.0, 62.0, 64.0]))
    pynn_nest.Projection(exc, cells, pynn_nest.AllToAllConnector(),
                         pynn_nest.StaticSynapse(weight=60 / 63 * 0.9 * 900 / 1022), receptor_type="excitatory")
    pynn_nest.Projection(inh, cells, pynn_nest.AllToAllConnector(),
                         pynn_nest.StaticSynapse(weight=-20 / 63 * 0.9), receptor_type="inhibitory")
    cells.record(["v", "spikes"])
    pynn_nest.run(100.0)
    segment = cells.get_data().segments[0]
    v = segment.filter(name="v")[0].magnitude.ravel()
    return v, segment.spiketrains[0].magnitude


def test_hxneuron_maps_onto_the_documented_circuit_like_pynn_nest():
    v_nest, spikes_nest = _reference_trace()
    pynn.setup(fixed_pattern_noise=False)
    neuron = pynn.Population(1, pynn.cells.HXNeuron(
        leak_v_leak=700, leak_i_bias=102, threshold_v_threshold=400, threshold_enable=True, reset_v_reset=450,
        membrane_capacitance_capacitance=63, refractory_period_refractory_time=16,
        excitatory_input_enable=True, excitatory_input_i_bias_tau=100, excitatory_input_i_bias_gm=900,
        inhibitory_input_enable=True, inhibitory_input_i_bias_tau=300, inhibitory_input_i_bias_gm=1022))
    exc = pynn.Population(1, pynn.cells.SpikeSourceArray(spike_times=[0.010 + 0.002 * k for k in range(20)]))
    inh = pynn.Population(1, pynn.cells.SpikeSourceArray(spike_times=[0.060, 0.062, 0.064]))
    pynn.Projection(exc, neuron, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=60))
    pynn.Projection(inh, neuron, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=-20),
                    receptor_type="inhibitory")
    neuron.record(["v", "spikes"])
    pynn.run(0.1)
    segment = neuron.get_data().segments[0]
    madc = segment.irregularlysampledsignals[0].magnitude.ravel()
    expected = np.clip(np.rint((v_nest[1:] + 100) / 75 / 1.2 * 1023), 0, 1023)   # mV -> V -> 10-bit MADC
    assert len(spikes_nest) >= 2                                  # the input crosses the threshold
    np.testing.assert_allclose(segment.spiketrains[0].magnitude, spikes_nest / 1000.0, atol=1e-4)
    assert np.max(np.abs(madc - expected[:len(madc)])) <= 1.0     # ADC rounding only


def test_integer_weights_signs_delays_and_multi_synapse_connections():
    pynn.setup()
    source = pynn.Population(2, pynn.cells.SpikeSourceArray(spike_times=[0.01]))
    neuron = pynn.Population(2, pynn.cells.HXNeuron(excitatory_input_enable=True, excitatory_input_i_bias_gm=500))
    with pytest.raises(ValueError, match="integers"):
        pynn.Projection(source, neuron, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=0.5))
    with pytest.raises(PyNNConnectionError, match="negative"):
        pynn.Projection(source, neuron, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=10),
                        receptor_type="inhibitory")
    with pytest.raises(PyNNConnectionError, match="positive"):
        pynn.Projection(source, neuron, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=-10),
                        receptor_type="excitatory")
    with pytest.raises(ValueError, match="delay"):
        pynn.Projection(source, neuron, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=10, delay=1.0))
    projection = pynn.Projection(source, neuron, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=100))
    np.testing.assert_array_equal(projection.get("weight", format="array"), [[100, 100], [100, 100]])
    pynn.run(None, pynn.RunCommand.PREPARE)
    statistics = pynn.get_backend_statistics()
    assert statistics.synapses == 8 and statistics.max_synapse_rows_per_neuron == 4   # 100 = 63 + 37: two rows
    assert "MappedTopologyStatistics" in str(statistics)
    projection.set(weight=np.array([[1, 2], [3, 4]]))
    assert projection[3].weight == 4


def test_backend_statistics_need_setup_and_placement():
    pynn.end()
    with pytest.raises(RuntimeError, match="setup"):
        pynn.get_backend_statistics()
    pynn.setup()
    pop1 = pynn.Population(1, pynn.cells.HXNeuron())
    pop2 = pynn.Population(1, pynn.cells.HXNeuron())
    pynn.Projection(pop1, pop2, pynn.AllToAllConnector())
    with pytest.raises(RuntimeError, match="placed"):
        pynn.get_backend_statistics()
    pynn.run(None, pynn.RunCommand.PREPARE)
    assert pynn.get_backend_statistics().neurons == 2


def test_parameter_ranges_and_features_the_emulator_does_not_have():
    pynn.setup()
    with pytest.raises(ValueError, match=r"leak_v_leak must be an integer in 0 \.\. 1022"):
        pynn.Population(1, pynn.cells.HXNeuron(leak_v_leak=1023))
    with pytest.raises(ValueError, match="capacitance must be an integer in 0 .. 63"):
        pynn.Population(1, pynn.cells.HXNeuron(membrane_capacitance_capacitance=64))
    pop = pynn.Population(3, pynn.cells.HXNeuron())
    with pytest.raises(ValueError, match="leak_i_bias"):
        pop[1:2].set(leak_i_bias=2000)
    assert pop.get("leak_i_bias") == 0
    pop[0:2].set(leak_i_bias=150)
    np.testing.assert_array_equal(pop.get("leak_i_bias"), [150, 150, 0])
    assert pop[0].leak_i_bias == 150
    for feature, kwargs in (("adaptation", {"adaptation_enable": True}),
                            ("exponential term", {"exponential_enable": True}),
                            ("multi-compartment", {"multicompartment_connect_right": True})):
        with pytest.raises(UnsupportedFeatureError, match=f"not supported by the emulator: .*{feature}"):
            pynn.Population(1, pynn.cells.HXNeuron(**kwargs))
    with pytest.raises(ValueError, match=r"tau_m must lie in \[0.5, 60.0\] \(us\), got 100"):
        pynn.Population(1, pynn.cells.CalibHXNeuronCuba(tau_m=100))

    class CppRule(pynn.PlasticityRule):
        def generate_kernel(self):
            return "void PLASTICITY_RULE_KERNEL() {}"

    rule = CppRule(timer=pynn.Timer(start=0.01, period=0.01, num_periods=2))
    neuron = pynn.Population(1, pynn.cells.HXNeuron())
    pynn.Projection(pop, neuron, pynn.AllToAllConnector(), pynn.synapses.PlasticSynapse(weight=1, plasticity_rule=rule))
    with pytest.raises(UnsupportedFeatureError, match="PPU C\\+\\+ plasticity kernels"):
        pynn.run(0.05)


def test_calibrated_technical_parameters_must_be_global():
    pynn.setup(fixed_pattern_noise=False)
    pop = pynn.Population(3, pynn.cells.CalibHXNeuronCuba())
    pop.set(synapse_dac_bias=[400, 500, 500])
    with pytest.raises(RuntimeError, match="synapse_dac_bias"):
        pynn.run(0.001)
    pynn.reset()
    pop.set(synapse_dac_bias=400)
    pynn.run(0.001)


def _resting_cadc(cell_type, **setup):
    pynn.setup(**setup)
    pop = pynn.Population(16, cell_type)
    pop.record("v", device="cadc")
    pynn.run(0.05)
    signals = pop.get_data("v").segments[0].irregularlysampledsignals
    return np.array([np.mean(s.magnitude[-10:]) for s in signals]), pop


def test_calibration_brings_every_circuit_to_its_target_and_fixed_pattern_noise_shows_without():
    target = dict(v_rest=100, v_reset=70, v_thresh=180, tau_m=10.0, tau_syn_E=5.0, tau_syn_I=7.0)
    calibrated, pop = _resting_cadc(pynn.cells.CalibHXNeuronCuba(**target), chip_seed=0)
    codes = pop.calib_hwparams[0].as_dict()
    pynn.end()
    # the same codes on every circuit (what the first circuit needed): each circuit's own offsets show
    raw, _ = _resting_cadc(pynn.cells.HXNeuron(**{k: v for k, v in codes.items()}), chip_seed=0)
    # CADC units (3.75 mV); leak offsets are 1.4 mV of biology = 18.7 mV on chip = 5 CADC units sd
    assert np.max(np.abs(calibrated - 100)) <= 1.0
    assert np.std(raw) > 2.5
    assert len(calibrated) == 16 and len(pop.calib_hwparams) == 16


def test_madc_limit_cadc_for_many_and_synaptic_input_readout():
    pynn.setup()
    pop = pynn.Population(4, pynn.cells.CalibHXNeuronCuba())
    pop[0:1].record("v")
    pop[2:3].record("v")                       # circuits 0 and 2: both even, one MADC line
    with pytest.raises(ChipLimitError, match="MADC"):
        pynn.run(0.01)
    pop.record(None)
    with pytest.raises(ValueError, match="one analog variable"):
        pop[0:1].record(["v", "exc_synin"])
    with pytest.raises(UnsupportedFeatureError, match="pads"):
        pop[0:1].record("v", device="pad_0")
    with pytest.raises(ValueError, match="not supported"):
        pop[0:1].record("v", device="scope")
    pynn.reset()
    pop.record("v", device="cadc")
    source = pynn.Population(5, pynn.cells.SpikeSourceArray(spike_times=[0.005, 0.006]))
    pynn.Projection(source, pop, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=63))
    pynn.run(0.02)
    signals = pop.get_data("v").segments[-1].irregularlysampledsignals
    assert len(signals) == 4 and all(s.annotations["device"] == "cadc" for s in signals)
    assert all(len(s) == 20 and s.magnitude.max() <= 255 for s in signals)      # 1 us per sample, 8 bit
    pynn.reset()
    pop.record(None)
    pop[0:1].record("exc_synin")                       # the input line is pulled down by the input
    pynn.run(0.02)
    line = pop[0:1].get_data().segments[-1].irregularlysampledsignals[0].magnitude.ravel()
    assert np.mean(line[:40]) - np.min(line) > 20 and np.max(line) - np.mean(line[:40]) < 10


def test_append_and_execute_run_snippets_with_their_own_configuration():
    pynn.setup(fixed_pattern_noise=False)
    pop = pynn.Population(1, pynn.cells.HXNeuron(leak_v_leak=500, leak_i_bias=500))
    pop.record("v")
    with pytest.raises(ValueError, match="No experiment scheduled"):
        pynn.run(None, pynn.RunCommand.EXECUTE)
    with pytest.raises(ValueError, match="no time"):
        pynn.run(None, pynn.RunCommand.APPEND)
    pynn.run(0.05, pynn.RunCommand.APPEND)
    pop.set(leak_v_leak=800)
    pynn.run(0.05, pynn.RunCommand.APPEND)
    pop.set(leak_v_leak=600)
    pynn.run(None, pynn.RunCommand.EXECUTE)
    assert pop.get("leak_v_leak") == 600          # the current configuration is kept
    signals = pop.get_data("v").segments[0].irregularlysampledsignals
    assert len(signals) == 2 and signals[1].times.magnitude.min() >= 0.05
    levels = [s.magnitude[-1, 0] for s in signals]
    assert levels[1] > levels[0] + 200                 # 300 codes x 0.8 mV = 240 mV = 204 MADC units


def test_python_plasticity_kernel_changes_weights_at_its_timer_events():
    """The hook the plasticity issue builds on: a Python rule silences a synapse at t = 0.05 ms."""

    class Silence(pynn.PlasticityRule):
        def execute(self, context):
            weights = context.weights(0)
            context.set_weights(0, np.zeros_like(weights))
            context.record("weights", context.projections[0], weights.tolist())

    pynn.setup(fixed_pattern_noise=False)
    rule = Silence(timer=pynn.Timer(start=0.05, period=1.0, num_periods=1), observables={"weights"})
    source = pynn.Population(1, pynn.cells.SpikeSourceArray(spike_times=np.arange(0.002, 0.1, 0.004)))
    neuron = pynn.Population(1, pynn.cells.CalibHXNeuronCuba())
    neuron.record("spikes")
    projection = pynn.Projection(source, neuron, pynn.AllToAllConnector(),
                                 pynn.synapses.PlasticSynapse(weight=63 * 4, plasticity_rule=rule))
    pynn.run(0.1)
    spikes = neuron.get_data().segments[0].spiketrains[0].magnitude
    assert np.sum(spikes < 0.05) >= 3 and np.sum(spikes > 0.06) == 0
    assert projection.get("weight", format="list", with_address=False) == [0]
    recorded = projection.get_data("weights")[0]
    assert recorded[0].data == [252] and recorded[0].time == 0.05 * 125_000


def test_logger_module(caplog):
    pynn.logger.default_config(level=pynn.logger.LogLevel.INFO)
    log = pynn.logger.get("test_logger")
    quiet = pynn.logger.get("hxcomm")
    pynn.logger.set_loglevel(quiet, pynn.logger.LogLevel.WARN)
    with caplog.at_level(logging.INFO, logger="cortexsim.brainscales2"):
        log.INFO("Number of spikes: ", 12)
        quiet.INFO("not shown")
        log.TRACE("not shown either")
    messages = [r.getMessage() for r in caplog.records]
    assert "Number of spikes: 12" in messages and "not shown" not in messages
    assert pynn.logger.get_loglevel(quiet) == pynn.logger.LogLevel.WARN
    pynn.logger.reset()


def test_calibrated_coba_neurons_are_silent_alone_fire_with_input_and_feel_their_reversal_potentials():
    pynn.setup()
    pop = pynn.Population(3, pynn.cells.CalibHXNeuronCoba())
    pop.record("spikes")
    pop[0:1].record("v")
    pynn.run(1.0)
    assert sum(len(t) for t in pop.get_data("spikes").segments[0].spiketrains) == 0
    rest = pop[0:1].get_data("v").segments[0].irregularlysampledsignals[0].magnitude[-100:].mean()
    pynn.reset()
    inhibition = pynn.Population(5, pynn.cells.SpikeSourceArray(spike_times=[0.5]))
    pynn.Projection(inhibition, pop, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=63),
                    receptor_type="inhibitory")          # conductance-based: a positive weight
    drive = pynn.Population(10, pynn.cells.SpikeSourcePoisson(rate=1e5, start=0, duration=0.4))
    pynn.Projection(drive, pop, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=63))
    pynn.run(1.0)
    segment = pop.get_data().segments[-1]
    assert all(len(t) > 0 for t in segment.spiketrains)
    v = segment.irregularlysampledsignals[0]
    after_inhibition = v.magnitude[(v.times.magnitude > 0.5) & (v.times.magnitude < 0.52)].min()
    assert after_inhibition < rest - 5          # pulled towards e_rev_I (CADC 30), below the resting level


def test_on_chip_poisson_sources_use_background_generators_within_their_clock():
    pynn.setup(fixed_pattern_noise=False)
    neuron = pynn.Population(1, pynn.cells.CalibHXNeuronCuba())
    neuron.record("spikes")
    sources = pynn.Population(4, pynn.cells.SpikeSourcePoissonOnChip(rate=2e5, seed=3))
    sources.record("spikes")
    pynn.Projection(sources, neuron, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=63))
    pynn.run(2.0)
    counts = [len(t) for t in sources.get_data().segments[0].spiketrains]
    # 2e5 Hz of hardware time for 2 ms: 400 events per source (Poisson: sd 20)
    assert all(abs(c - 400) < 100 for c in counts)
    assert len(neuron.get_data().segments[0].spiketrains[0]) > 0
    assert pynn.get_backend_statistics().background_spike_sources == 1
    pynn.end()
    pynn.setup()
    pynn.Population(1000, pynn.cells.SpikeSourcePoissonOnChip(rate=2e5, seed=3))
    with pytest.raises(ValueError, match="cannot be realised"):
        pynn.run(0.01)
