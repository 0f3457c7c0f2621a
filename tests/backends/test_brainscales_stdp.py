"""PyNN's STDPMechanism on the emulated bss2 chip: the plasticity processors' program on the correlation sensors.

One presynaptic source pairs with a postsynaptic neuron that a "teacher" source makes fire 8 ms
after every presynaptic spike (pairs 100 ms apart, far beyond tau = 20 ms).
"""

import math

import numpy as np
import pytest

import cortexsim.backends.brainscales as sim
import cortexsim.backends.pynn_nest as nest_sim
from cortexsim.backends.brainscales import ChipLimitError, UnsupportedFeatureError
from cortexsim.backends.correlation import SensorParameters

PRE = list(np.arange(10.0, 1000.0, 100.0)) + [995.0]     # the last one lets NEST apply the last facilitation
TEACHER = list(np.arange(10.0, 1000.0, 100.0) + 5.0)
W0, W_MAX, A_PLUS, A_MINUS, TAU = 0.004, 0.01, 0.05, 0.02, 20.0


def pairing_experiment(backend, weight_dependence=None, **chip_options):
    backend.setup(timestep=0.1, **chip_options)
    pre = backend.Population(1, backend.SpikeSourceArray(spike_times=PRE))
    teacher = backend.Population(1, backend.SpikeSourceArray(spike_times=TEACHER))
    post = backend.Population(1, backend.IF_cond_exp())
    post.record("spikes")
    stdp = backend.STDPMechanism(
        timing_dependence=backend.SpikePairRule(tau_plus=TAU, tau_minus=TAU, A_plus=A_PLUS, A_minus=A_MINUS),
        weight_dependence=weight_dependence or backend.AdditiveWeightDependence(w_min=0.0, w_max=W_MAX),
        weight=W0, delay=0.1)
    projection = backend.Projection(pre, post, backend.AllToAllConnector(), stdp)
    backend.Projection(teacher, post, backend.AllToAllConnector(), backend.StaticSynapse(weight=0.12, delay=0.1))
    backend.run(1000.0)
    weight = float(projection.get("weight", format="array")[0, 0])
    spikes = post.get_data().segments[0].spiketrains[0].magnitude
    backend.end()
    return weight, spikes


def ideal_chip(**changes):
    options = dict(correlation_sensors=SensorParameters.ideal(amplitude=2.0), fixed_pattern_noise=False,
                   plasticity_period=1000.0)
    options.update(changes)
    return options


def test_additive_stdp_on_the_chip_matches_the_hand_computed_correlation_trace():
    """One PPU update at the end: dw = w_max (A+ c+ - A- c-), c = round(2 LSB x trace) / 2, 6-bit steps."""
    weight, spikes = pairing_experiment(sim, **ideal_chip())
    assert len(spikes) == 10
    arrival = [t + 0.2 for t in PRE]           # relay + synaptic delay: the synapse sees the spike 0.2 ms later
    causal = sum(math.exp(-(t - max(p for p in arrival if p < t)) / TAU) for t in spikes)
    acausal = sum(math.exp(-(p - max(t for t in spikes if t < p)) / TAU) for p in arrival if p > spikes[0])
    c_plus, c_minus = round(2 * causal) / 2, round(2 * acausal) / 2
    step = math.ceil(W_MAX / (63 * 2.0 ** -16)) * 2.0 ** -16           # the row scale that fits w_max
    expected = (round(W0 / step) + round(W_MAX * (A_PLUS * c_plus - A_MINUS * c_minus) / step)) * step
    assert weight == pytest.approx(expected, abs=1e-12)
    assert c_plus > 6 and weight > W0                                    # a real potentiation was measured


def test_additive_stdp_on_the_chip_agrees_with_pynn_nest_within_the_chips_resolution():
    chip_weight, chip_spikes = pairing_experiment(sim, **ideal_chip(plasticity_period=500.0))
    nest_weight, nest_spikes = pairing_experiment(nest_sim)
    assert len(chip_spikes) == len(nest_spikes) == 10                # one post spike per pair on both
    step = math.ceil(W_MAX / (63 * 2.0 ** -16)) * 2.0 ** -16
    # tolerance: the initial weight's quantisation (half a step), and per update (two updates of five
    # pairs) the sensor read-out (half an LSB of 2 per pair: w_max A+ / 4) plus the rounding of the
    # change to a step (half a step); NEST pairs all spikes, the sensors the nearest ones only, which
    # differ by exp(-92 / 20) per pair here
    tolerance = 0.5 * step + 2 * (W_MAX * A_PLUS / 4 + 0.5 * step)
    assert abs((chip_weight - W0) - (nest_weight - W0)) <= tolerance
    assert nest_weight - W0 > 4 * tolerance / 3                          # the change is larger than the error


def test_multiplicative_stdp_saturates_towards_w_max_and_stays_inside_the_range():
    weight, _ = pairing_experiment(sim, sim.MultiplicativeWeightDependence(w_min=0.0, w_max=W_MAX),
                                   **ideal_chip(plasticity_period=10.0))
    assert W0 < weight <= W_MAX


@pytest.mark.parametrize("make, match", [
    (lambda: sim.STDPMechanism(timing_dependence=sim.SpikePairRule(tau_plus=20.0, tau_minus=10.0),
                               weight_dependence=sim.AdditiveWeightDependence(w_max=0.01)),
     "tau_plus == tau_minus"),
    (lambda: sim.STDPMechanism(timing_dependence=sim.SpikePairRule(),
                               weight_dependence=sim.GutigWeightDependence(w_max=0.01)),
     "STDP weight dependence: requested GutigWeightDependence"),
])
def test_stdp_that_does_not_map_onto_the_sensors_is_refused_by_name(make, match):
    sim.setup(seed=1)
    cells = sim.Population(2, sim.IF_cond_exp())
    with pytest.raises(UnsupportedFeatureError, match=match):
        sim.Projection(cells, cells, sim.AllToAllConnector(), make())
    sim.end()


def test_stdp_time_constant_outside_the_sensor_range_is_a_chip_limit():
    sim.setup(seed=1)
    cells = sim.Population(2, sim.IF_cond_exp())
    stdp = sim.STDPMechanism(timing_dependence=sim.SpikePairRule(tau_plus=50.0, tau_minus=50.0),
                             weight_dependence=sim.AdditiveWeightDependence(w_max=0.01))
    with pytest.raises(ChipLimitError, match="2 .. 30 ms"):
        sim.Projection(cells, cells, sim.AllToAllConnector(), stdp)
    with pytest.raises(ValueError, match="plasticity_period"):
        sim.setup(plasticity_period=0.0)
    sim.end()


def test_hardware_report_carries_the_energy_model_and_the_ppu_updates():
    sim.setup(seed=1, plasticity_period=100.0)
    cells = sim.Population(2, sim.IF_cond_exp())
    stdp = sim.STDPMechanism(timing_dependence=sim.SpikePairRule(tau_plus=20.0, tau_minus=20.0),
                             weight_dependence=sim.AdditiveWeightDependence(w_max=0.01), weight=0.002)
    sim.Projection(cells, cells, sim.AllToAllConnector(allow_self_connections=False), stdp)
    sim.run(1000.0)
    report = sim.get_hardware_report()
    sim.end()
    assert report["hardware_time_s"] == pytest.approx(1e-3)          # 1 s of biology at speed-up 1000
    assert report["energy"]["asic_j"] == pytest.approx(192e-6 / 276e-6 * 1e-3)
    assert report["energy"]["system_j"] == pytest.approx(5.6 * report["estimated_wall_time_s"])
    assert report["plasticity"] == {"stdp_projections": 1, "period_ms": 100.0, "updates": 10}
