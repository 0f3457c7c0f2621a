"""Plasticity kernels on the emulated BrainScaleS-2 chip: weights, correlation sensors, rate counters, reward.

Small networks in hardware units: two played-in presynaptic sources onto two neuron circuits (no
fixed-pattern noise, ideal sensors unless a test says otherwise), a "teacher" source that makes the
neurons fire at chosen times. Expected values are computed by hand from the recorded spike times.
"""

import math

import numpy as np
import pytest

import cortexsim.backends.brainscales2 as pynn
from cortexsim.backends.correlation import SensorParameters

# Neuron circuits that fire once per teacher spike (leak -65, threshold -55 mV of biology, tau_m 20 us)
NEURON = dict(leak_v_leak=821, leak_i_bias=100, leak_enable_division=True, threshold_v_threshold=511,
              threshold_enable=True, reset_v_reset=737, refractory_period_refractory_time=16,
              membrane_capacitance_capacitance=15, excitatory_input_enable=True, excitatory_input_i_bias_tau=153,
              excitatory_input_i_bias_gm=1022)
STEP = 1e-4          # emulation step (hardware ms); a played-in spike reaches the synapses two steps later
TAU_US, AMPLITUDE = 5.0, 2.0


def network(rule, pre_times, teacher_times, weight=0, sensors=None, record=True):
    pynn.setup(fixed_pattern_noise=False,
               correlation_sensors=sensors or SensorParameters.ideal(amplitude=AMPLITUDE, tau_us=TAU_US))
    post = pynn.Population(2, pynn.cells.HXNeuron(plasticity_rule=rule, **NEURON))
    if record:
        post.record("spikes")
    pre = pynn.Population(2, pynn.cells.SpikeSourceArray(spike_times=pre_times))
    teacher = pynn.Population(1, pynn.cells.SpikeSourceArray(spike_times=teacher_times))
    projection = pynn.Projection(pre, post, pynn.AllToAllConnector(),
                                 pynn.synapses.PlasticSynapse(weight=weight, plasticity_rule=rule))
    pynn.Projection(teacher, post, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=63 * 4))
    return pre, post, projection


def hand_correlation(pre, post, t_end):
    """Nearest-spike pairs (seen at the synapse: pre + 2 steps), amplitude x exp(-dt / tau), up to t_end."""
    pre = [t + 2 * STEP for t in pre]
    post = [t for t in post if t <= t_end]
    tau = TAU_US * 1e-3
    causal = sum(AMPLITUDE * math.exp(-(t - max(p for p in pre if p < t)) / tau) for t in post
                 if any(p < t for p in pre))
    acausal = sum(AMPLITUDE * math.exp(-(p - max(t for t in post if t < p)) / tau) for p in pre
                  if p <= t_end and any(t < p for t in post))
    return causal, acausal


@pytest.fixture(autouse=True)
def _end():
    yield
    pynn.end()


def test_a_kernel_that_zeroes_weights_zeroes_them_and_silences_the_input():
    def zero(context):
        rows = context.synapses(0)
        rows.set_weights(np.zeros(rows.shape))

    rule = pynn.PlasticityRule(pynn.Timer(start=0.1, period=1.0, num_periods=1), python_kernel=zero)
    pynn.setup(fixed_pattern_noise=False)
    post = pynn.Population(1, pynn.cells.HXNeuron(**NEURON))
    post.record("spikes")
    source = pynn.Population(4, pynn.cells.SpikeSourceArray(spike_times=list(np.arange(0.005, 0.2, 0.01))))
    projection = pynn.Projection(source, post, pynn.AllToAllConnector(),
                                 pynn.synapses.PlasticSynapse(weight=63, plasticity_rule=rule))
    pynn.run(0.2)
    spikes = post.get_data("spikes").segments[0].spiketrains[0].magnitude
    assert np.count_nonzero(spikes < 0.1) >= 5                 # four full synapses drive it before the event
    assert np.count_nonzero(spikes > 0.1 + 0.005) == 0          # silent afterwards
    np.testing.assert_array_equal(projection.get("weight", format="array"), np.zeros((4, 1)))
    assert rule.statistics == {"events": 1, "weights_written": 4, "weights_clipped": 0}


def test_pair_stdp_kernel_matches_the_hand_computed_correlation_trace():
    """A pair-based STDP kernel: w += round(a_plus x causal - a_minus x acausal) from the sensors, at 0.08 ms."""
    seen = {}
    a_plus, a_minus = 1.5, 1.0

    def stdp(context):
        rows = context.synapses(0)
        causal, acausal = rows.correlation(reset=True)
        seen["causal"], seen["acausal"] = causal, acausal
        rows.set_weights(rows.weights + a_plus * causal - a_minus * acausal)

    rule = pynn.PlasticityRule(pynn.Timer(start=0.08, period=1.0, num_periods=1), python_kernel=stdp)
    pre_times = [[0.010, 0.030, 0.050], [0.0405, 0.0715]]
    _, post, projection = network(rule, pre_times, [0.012, 0.034, 0.045, 0.07], weight=20)
    pynn.run(0.1)
    trains = post.get_data("spikes").segments[0].spiketrains
    for j, train in enumerate(trains):
        assert len(train) == 4                                   # one spike per teacher spike
        for i in range(2):
            causal, acausal = hand_correlation(pre_times[i], train.magnitude.tolist(), 0.08)
            assert seen["causal"][i, j] == round(causal)
            assert seen["acausal"][i, j] == round(acausal)
            assert projection.get("weight", format="array")[i, j] == \
                20 + round(a_plus * round(causal) - a_minus * round(acausal))
    # the asymmetric inputs give distinguishable numbers (a mix-up of branches or rows would show)
    assert seen["causal"][0, 0] != seen["acausal"][0, 0] and seen["causal"][0, 0] != seen["causal"][1, 0]


def test_correlation_and_rate_counters_restart_after_a_reset():
    counts, corr = [], []

    def read(context):
        counts.append(context.rate_counters(0, reset=True))
        corr.append(context.synapses(0).correlation(reset=True)[0])

    rule = pynn.PlasticityRule(pynn.Timer(start=0.05, period=0.04, num_periods=2), python_kernel=read)
    pre_times = [[0.01, 0.06], []]
    _, post, _ = network(rule, pre_times, [0.012, 0.02, 0.062])
    pynn.run(0.1)
    spikes = post.get_data("spikes").segments[0].spiketrains[0].magnitude
    np.testing.assert_array_equal(counts[0], [np.count_nonzero(spikes < 0.05)] * 2)
    np.testing.assert_array_equal(counts[1], [np.count_nonzero((spikes > 0.05) & (spikes < 0.09))] * 2)
    assert counts[0][0] == 2 and counts[1][0] == 1
    before, _ = hand_correlation(pre_times[0], spikes.tolist(), 0.05)
    both, _ = hand_correlation(pre_times[0], spikes.tolist(), 0.09)
    assert corr[0][0, 0] == round(before)
    assert corr[1][0, 0] == round(both - before) > 0            # only the pairs after the reset
    assert corr[1][1, 0] == 0                                   # the silent input row


@pytest.mark.parametrize("reward, direction", [(1.0, 1), (-1.0, -1), (0.0, 0)])
def test_rewards_move_weights_in_the_right_direction(reward, direction):
    """R-STDP kernel: w += 0.5 x reward x causal; the reward is what the experiment wrote into the rule."""
    def rstdp(context):
        rows = context.synapses(0)
        causal, _ = rows.correlation(reset=True)
        rows.set_weights(rows.weights + 0.5 * context.reward * causal)

    rule = pynn.PlasticityRule(pynn.Timer(start=0.09, period=1.0, num_periods=1), python_kernel=rstdp)
    rule.reward = reward
    _, _, projection = network(rule, [np.arange(0.01, 0.09, 0.01).tolist(), []],
                               (np.arange(0.01, 0.09, 0.01) + 0.002).tolist(), weight=30, record=False)
    pynn.run(0.1)
    weights = projection.get("weight", format="array")
    assert np.all(np.sign(weights[0] - 30) == direction)       # the correlated row moved with the reward
    if direction:
        assert np.all(np.abs(weights[0] - 30) >= 3)
    np.testing.assert_array_equal(weights[1], [30, 30])        # the silent row did not move


def test_kernel_output_is_rounded_and_clipped_to_six_bits():
    def write(context):
        rows = context.synapses(0)
        rows.set_weights(np.array([[7.6, 70.0], [-5.0, 31.2]]))

    rule = pynn.PlasticityRule(pynn.Timer(start=0.01, period=1.0, num_periods=1), python_kernel=write)
    _, _, projection = network(rule, [[], []], [], weight=10, record=False)
    pynn.run(0.02)
    np.testing.assert_array_equal(projection.get("weight", format="array"), [[8, 63], [0, 31]])
    assert rule.statistics["weights_clipped"] == 2 and rule.statistics["weights_written"] == 4


def test_a_cpp_kernel_is_refused_with_the_python_alternative_named():
    class CppRule(pynn.PlasticityRule):
        def generate_kernel(self):
            return "void PLASTICITY_RULE_KERNEL(...) {}"

    rule = CppRule(timer=pynn.Timer(start=0.01, period=0.01, num_periods=2))
    network(rule, [[], []], [], record=False)
    with pytest.raises(pynn.UnsupportedFeatureError, match="not supported by the emulator.*give python_kernel"):
        pynn.run(0.05)


def test_bad_rewards_and_kernels_are_refused_before_any_run():
    rule = pynn.PlasticityRule(pynn.Timer(start=0.01, period=0.01, num_periods=1))
    with pytest.raises(ValueError, match="reward"):
        rule.reward = float("nan")
    with pytest.raises(ValueError, match="reward"):
        rule.reward = np.ones((2, 2))
    rule.reward = [1, 2]
    assert isinstance(rule.reward, np.ndarray)
    with pytest.raises(TypeError, match="python_kernel"):
        pynn.PlasticityRule(pynn.Timer(start=0, period=1, num_periods=1), python_kernel=3)


def test_static_recording_synapse_records_correlation_per_connection():
    pynn.setup(fixed_pattern_noise=False,
               correlation_sensors=SensorParameters.ideal(amplitude=AMPLITUDE, tau_us=TAU_US))
    post = pynn.Population(1, pynn.cells.HXNeuron(**NEURON))
    post.record("spikes")
    pre = pynn.Population(2, pynn.cells.SpikeSourceArray(spike_times=[[0.010, 0.020], [0.030]]))
    teacher = pynn.Population(1, pynn.cells.SpikeSourceArray(spike_times=[0.011, 0.025]))
    synapse = pynn.synapses.StaticRecordingSynapse(timer=pynn.Timer(start=0.05, period=1.0, num_periods=1),
                                                   weight=0, observables={"correlation_causal", "weights"})
    projection = pynn.Projection(pre, post, pynn.AllToAllConnector(), synapse)
    pynn.Projection(teacher, post, pynn.AllToAllConnector(), pynn.synapses.StaticSynapse(weight=63 * 4))
    pynn.run(0.06)
    spikes = post.get_data("spikes").segments[0].spiketrains[0].magnitude.tolist()
    expected = [round(hand_correlation(times, spikes, 0.05)[0]) for times in ([0.010, 0.020], [0.030])]
    assert projection.get_data("correlation_causal")[0][0].data == expected
    assert expected[0] > 0 and expected[1] == 0                 # the second input only fires after the posts
    assert projection.get_data("weights")[0][0].data == [[0], [0]]


def test_the_sensor_sees_a_presynaptic_spike_when_it_reaches_the_synapse():
    """Pairs 1 us apart with tau = 2 us: the two emulation steps of relay and delay (0.2 us) are visible."""
    seen = {}

    def read(context):
        seen["causal"] = context.synapses(0).correlation()[0]

    rule = pynn.PlasticityRule(pynn.Timer(start=0.1, period=1.0, num_periods=1), python_kernel=read)
    pre = (0.0100 + 0.0100 * np.arange(9)).tolist()
    sensors = SensorParameters.ideal(amplitude=AMPLITUDE, tau_us=2.0)
    _, post, _ = network(rule, [pre, []], [t + 0.0005 for t in pre], sensors=sensors)
    pynn.run(0.11)
    spikes = post.get_data("spikes").segments[0].spiketrains[0].magnitude
    assert len(spikes) == 9

    def expected(delay):
        return round(sum(AMPLITUDE * math.exp(-(t - max(p + delay for p in pre if p + delay < t)) / 0.002)
                         for t in spikes))

    assert seen["causal"][0, 0] == expected(2 * STEP) != expected(0.0)
