"""The public pynn_brainscales example scripts, re-told with their own expectations, on the emulator.

Each test follows one example of BrainScaleS-2's PyNN package (external_input, calibhxneuron,
leak_over_threshold, single_neuron_demo, internal_projections, static_recording_synapse): the same
kind of network, written here, run with ``import cortexsim.backends.brainscales2 as pynn``, and
checked for what the example's comments expect, with a control condition where one exists (the
same network without the stimulus, without the projection, with other leak settings).
"""

import numpy as np
import pytest

pynn = pytest.importorskip("cortexsim.backends.brainscales2")
from cortexsim.backends.brainscales2 import hardware_model as hw  # noqa: E402

LEAK_OVER_THRESHOLD = {"threshold_v_threshold": 350, "leak_v_leak": 1022, "leak_i_bias": 320, "reset_v_reset": 400,
                       "reset_i_bias": 950, "reset_enable_multiplication": True, "threshold_enable": True,
                       "membrane_capacitance_capacitance": 63, "refractory_period_refractory_time": 95}


@pytest.fixture(autouse=True)
def _end():
    yield
    pynn.end()


def _external_input_run(with_input: bool):
    params = {"threshold_v_threshold": 400, "leak_v_leak": 650, "leak_i_bias": 420, "leak_enable_division": True,
              "reset_v_reset": 200, "reset_i_bias": 950, "reset_enable_multiplication": True,
              "threshold_enable": True, "membrane_capacitance_capacitance": 4,
              "refractory_period_refractory_time": 250, "excitatory_input_enable": True,
              "excitatory_input_i_bias_tau": 150, "excitatory_input_i_bias_gm": 200}
    pynn.setup()
    neuron = pynn.Population(1, pynn.cells.HXNeuron(**params))
    neuron.record(["spikes", "v"])
    times = [0.01, 0.03, 0.05, 0.07, 0.09, 0.11, 0.13, 0.15, 0.17, 0.19]
    inputs = pynn.Population(20, pynn.cells.SpikeSourceArray, cellparams={"spike_times": times})
    inputs[2:5].record("spikes")
    if with_input:
        pynn.Projection(inputs, neuron, pynn.AllToAllConnector(),
                        synapse_type=pynn.standardmodels.synapses.StaticSynapse(weight=63))
    pynn.run(0.2)
    spikes = neuron.get_data("spikes").segments[0].spiketrains[0]
    inputs_recorded = inputs.get_data("spikes").segments[0].spiketrains
    v = neuron.get_data("v").segments[0].irregularlysampledsignals[0]
    pynn.end()
    return spikes, inputs_recorded, v


def test_external_input_drives_the_neuron_and_comes_back_in_hardware_time():
    spikes, inputs, v = _external_input_run(with_input=True)
    silent, _, _ = _external_input_run(with_input=False)
    assert len(silent) == 0 and len(spikes) >= 5        # a leak under threshold: only the input makes it fire
    assert len(inputs) == 3 and all(len(t) == 10 for t in inputs)          # pop_input[2:5] recorded
    np.testing.assert_allclose(inputs[0].magnitude, [0.01, 0.03, 0.05, 0.07, 0.09, 0.11, 0.13, 0.15, 0.17, 0.19])
    assert str(inputs[0].units.dimensionality) == "ms" and spikes.t_stop.magnitude == pytest.approx(0.2)
    # every output spike follows an input volley within a few us (hardware time)
    lags = np.array([min(t - x for x in inputs[0].magnitude if x <= t + 1e-9) for t in spikes.magnitude])
    assert np.all((lags >= 0) & (lags < 0.01))
    assert v.times.magnitude.max() == pytest.approx(0.2, abs=1e-3) and len(v) == 2000    # MADC: every 0.1 us
    assert 0 <= v.magnitude.min() and v.magnitude.max() <= 1023


def test_calibhxneuron_neurons_0_and_2_fire_more_than_1_and_3():
    pynn.setup()
    pop = pynn.Population(4, pynn.cells.CalibHXNeuronCuba(v_rest=[80, 50, 70, 60], v_reset=71, v_thresh=125))
    pop.record(["spikes"])
    stimulus = pynn.Population(10, pynn.standardmodels.cells.SpikeSourcePoisson(rate=1e4, start=0, duration=10))
    pynn.Projection(stimulus, pop, pynn.AllToAllConnector(),
                    synapse_type=pynn.standardmodels.synapses.StaticSynapse(weight=63), receptor_type="excitatory")
    with pytest.raises(AttributeError, match="only available after"):
        _ = pop.calib_target
    pynn.run(None, pynn.RunCommand.PREPARE)
    np.testing.assert_array_equal(pop.calib_target["v_rest"], [80, 50, 70, 60])
    assert len(pop.calib_hwparams) == 4 and pop.calib_hwparams[0].threshold.enable is True
    # the calibration puts lower targets on lower leak codes (per circuit, after its own offset)
    leak_codes = [n.leak.v_leak for n in pop.calib_hwparams]
    assert leak_codes[1] < leak_codes[3] < leak_codes[2] < leak_codes[0]
    pop.actual_hwparams[0].leak.v_leak = 1022
    pop[1:3].actual_hwparams[1].leak.v_leak = 1022                 # the view's second neuron is neuron 2
    assert pop.actual_hwparams[2].leak.v_leak == 1022 and pop.actual_hwparams[1].leak.v_leak != 1022
    assert pop.calib_hwparams[0].leak.v_leak != 1022                # the archive keeps the calibration
    pynn.run(10)
    counts = [len(t) for t in pop.get_data("spikes").segments[0].spiketrains]
    assert min(counts[0], counts[2]) > 10 * max(counts[1], counts[3], 1)


def test_leak_over_threshold_fires_regularly_on_every_neuron():
    pynn.setup()
    pop2 = pynn.Population(2, pynn.cells.HXNeuron(**LEAK_OVER_THRESHOLD))
    pop1 = pynn.Population(1, pynn.cells.HXNeuron(**LEAK_OVER_THRESHOLD))
    pop1.record(["spikes", "v"])
    pop2.record("spikes")
    pynn.run(0.2)
    trains = list(pop2.get_data("spikes").segments[0].spiketrains) + \
        list(pop1.get_data("spikes").segments[0].spiketrains)
    v = pop1.get_data("v").segments[0].irregularlysampledsignals[0]
    refractory_ms = hw.refractory_ms(95) / hw.SPEEDUP
    for train in trains:
        isi = np.diff(train.magnitude)
        assert len(train) > 5 and np.all(isi > refractory_ms)          # fires on its own, never faster
        assert np.std(isi[1:]) / np.mean(isi[1:]) < 0.05                # regular (no noise)
    # between spikes the membrane climbs from the reset towards the leak, crossing the threshold
    reset = hw.madc_from_volts(hw.leak_volts(400))
    threshold = hw.madc_from_volts(hw.threshold_volts(350))
    assert abs(v.magnitude.min() - reset) < 60 and abs(v.magnitude.max() - threshold) < 60   # +-3 sd of the noise
    assert len(v) == 2000


def test_single_neuron_demo_silent_spiking_fixed_pattern_and_psps():
    # 1. a silent neuron sits at its leak potential
    pynn.setup()
    pop = pynn.Population(1, pynn.cells.HXNeuron(leak_v_leak=700, leak_i_bias=1022))
    pop.record(["v"])
    pynn.run(0.2)
    v = pop.get_data("v").segments[-1].irregularlysampledsignals[0].magnitude
    expected = hw.madc_from_volts(hw.leak_volts(700))
    assert np.std(v[len(v) // 2:]) < 1.0 and abs(np.mean(v) - expected) < 60
    pynn.end()
    # 3. ten leak-over-threshold neurons, one at a time through the MADC: different traces
    pynn.setup()
    pop = pynn.Population(10, pynn.cells.HXNeuron(leak_v_leak=1000, leak_i_bias=200, threshold_v_threshold=300,
                                                  reset_v_reset=400, membrane_capacitance_capacitance=63,
                                                  refractory_period_refractory_time=120, threshold_enable=True,
                                                  reset_i_bias=1022, reset_enable_multiplication=True))
    means = []
    for neuron in range(len(pop)):
        view = pynn.PopulationView(pop, [neuron])
        view.record(["v"])
        pynn.run(0.1)
        means.append(np.mean(view.get_data("v").segments[-1].irregularlysampledsignals[0].magnitude))
        pynn.reset()
        pop.record(None)
    assert len(pop.get_data().segments) == 10
    assert np.std(means) > 3.0            # fixed-pattern noise: every circuit its own trace
    pynn.end()
    # same chip seed, same circuits: the demo is reproducible; another chip differs
    def means_on(chip_seed):
        pynn.setup(chip_seed=chip_seed)
        p = pynn.Population(3, pynn.cells.HXNeuron(leak_v_leak=700, leak_i_bias=1022))
        p[0:1].record("v")
        pynn.run(0.05)
        value = np.mean(p.get_data("v").segments[0].irregularlysampledsignals[0].magnitude)
        pynn.end()
        return value
    assert means_on(0) == means_on(0) != means_on(1)
    # 4. external stimulation: excitatory PSPs up, the inhibitory one down
    pynn.setup()
    neuron = pynn.Population(1, pynn.cells.HXNeuron(
        leak_v_leak=400, leak_i_bias=200, threshold_v_threshold=400, reset_v_reset=300,
        membrane_capacitance_capacitance=63, refractory_period_refractory_time=120, threshold_enable=True,
        reset_i_bias=1022, reset_enable_multiplication=True, excitatory_input_enable=True,
        inhibitory_input_enable=True, excitatory_input_i_bias_gm=1022, inhibitory_input_i_bias_gm=1022,
        excitatory_input_i_bias_tau=200, inhibitory_input_i_bias_tau=200,
        excitatory_input_i_shift_reference=300, inhibitory_input_i_shift_reference=300))
    neuron.record(["v", "spikes"])
    exc = pynn.Population(1, pynn.cells.SpikeSourceArray(spike_times=[0.01, 0.05, 0.07, 0.08]))
    inh = pynn.Population(1, pynn.cells.SpikeSourceArray(spike_times=[0.03]))
    pynn.Projection(exc, neuron, pynn.AllToAllConnector(), synapse_type=pynn.synapses.StaticSynapse(weight=63),
                    receptor_type="excitatory")
    pynn.Projection(inh, neuron, pynn.AllToAllConnector(), synapse_type=pynn.synapses.StaticSynapse(weight=-63),
                    receptor_type="inhibitory")
    pynn.run(0.1)
    signal = neuron.get_data("v").segments[-1].irregularlysampledsignals[0]
    t, v = signal.times.magnitude, signal.magnitude.ravel()
    baseline = np.mean(v[t < 0.01])
    assert np.max(v[(t > 0.01) & (t < 0.02)]) - baseline > 5        # excitatory PSP (MADC units)
    assert baseline - np.min(v[(t > 0.03) & (t < 0.045)]) > 5       # inhibitory PSP
    assert np.max(v[(t > 0.07) & (t < 0.1)]) > np.max(v[(t > 0.01) & (t < 0.02)])   # the two close ones sum


def _internal_projections(weight):
    lot = {"threshold_v_threshold": 400, "leak_v_leak": 1022, "leak_i_bias": 420, "leak_enable_division": True,
           "reset_v_reset": 50, "reset_i_bias": 950, "reset_enable_multiplication": True, "threshold_enable": True,
           "membrane_capacitance_capacitance": 10, "refractory_period_refractory_time": 95}
    target = dict(lot, leak_v_leak=650, reset_v_reset=650, excitatory_input_enable=True,
                  excitatory_input_i_bias_tau=150, excitatory_input_i_bias_gm=200)
    pynn.setup()
    pop1 = pynn.Population(1, pynn.standardmodels.cells.HXNeuron(**target))
    pop2 = pynn.Population(100, pynn.standardmodels.cells.HXNeuron(**lot))
    pop1.record(["spikes", "v"])
    pop2.record("spikes")
    pynn.Projection(pop2, pop1, pynn.AllToAllConnector(),
                    synapse_type=pynn.standardmodels.synapses.StaticSynapse(weight=weight))
    pynn.run(0.2)
    n1 = len(pop1.get_data("spikes").segments[0].spiketrains[0])
    n2 = sum(len(t) for t in pop2.get_data("spikes").segments[0].spiketrains)
    statistics = pynn.get_backend_statistics()
    pynn.end()
    return n1, n2, statistics


def test_internal_projections_on_chip_neurons_drive_a_neuron_under_threshold():
    n1, n2, statistics = _internal_projections(63)
    n1_without, n2_without, _ = _internal_projections(0)
    assert n2 > 100 * 5 and n2_without == n2          # every leak-over-threshold neuron fires, input-independent
    assert n1 > 5 and n1_without == 0                 # the target fires only through the on-chip projection
    assert statistics.neurons == 101 and statistics.synapses == 100 and statistics.external_spike_sources == 0


def test_static_recording_synapse_records_the_weight_at_the_timer_event():
    pynn.setup()
    neuron = pynn.Population(1, pynn.cells.HXNeuron())
    neuron.record(["spikes", "v"])
    source = pynn.Population(1, pynn.cells.SpikeSourceArray, cellparams={"spike_times": np.arange(0, 10, 0.01)})
    timer = pynn.Timer(start=5, period=10, num_periods=1)
    synapse = pynn.standardmodels.synapses.StaticRecordingSynapse(timer=timer, weight=63, observables={"weights"})
    projection = pynn.Projection(source, neuron, pynn.AllToAllConnector(), synapse_type=synapse)
    with pytest.raises(RuntimeError, match="only available after"):
        projection.get_data("weights")
    pynn.run(10)
    weights = projection.get_data("weights")[0]
    assert len(weights) == 1 and 4 * 125 * 1000 <= weights[0].time <= 6 * 125 * 1000
    assert len(weights[0].data) == 1 and weights[0].data[0] == [63]
