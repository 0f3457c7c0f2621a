"""The emulated chip's on-chip Poisson background: generator count, rate and fan-in limits raise
errors naming the limit; weights are quantised and pass through each neuron's synaptic gain.
(The statistics of the input are checked in test_noise_statistics.py on every backend.)"""

import numpy as np
import pytest

sim = pytest.importorskip("cortexsim.backends.brainscales")
import nest  # noqa: E402

from cortexsim.backends.brainscales import ChipLimitError, UnsupportedFeatureError  # noqa: E402
from cortexsim.backends.brainscales.background import generators_needed  # noqa: E402
from cortexsim.backends.brainscales.quantisation import quantise_rows  # noqa: E402


def test_generators_needed_from_total_event_rate():
    # bss2: 125 MHz of hardware time at speed-up 1e3 = 125 kHz biological per generator
    assert generators_needed(3000.0, 41, 1e3, 125e6) == 1        # 123 kHz
    assert generators_needed(3000.0, 42, 1e3, 125e6) == 2        # 126 kHz
    assert generators_needed(3000.0, 50, 1e3, 125e6) == 2
    assert generators_needed(0.0, 50, 1e3, 125e6) == 0


def test_generator_count_limit_names_the_limit():
    sim.setup(chip="bss2", seed=1)
    large = sim.Population(100, sim.IF_cond_exp(), label="large")
    sim.add_poisson_background(large, 3000.0, 3000.0, 0.001, 0.001)          # 3 + 3 generators
    small = sim.Population(20, sim.IF_cond_exp(), label="small")
    sim.add_poisson_background(small, 3000.0, 3000.0, 0.001, 0.001)          # 1 + 1: all 8 used
    assert sim.get_hardware_report()["background"]["generators_used"] == 8
    third = sim.Population(5, sim.IF_cond_exp(), label="third")
    with pytest.raises(ChipLimitError, match=r"on-chip background generators.*requested 10 generators, "
                                             r"allowed at most 8"):
        sim.add_poisson_background(third, 100.0, 100.0, 0.001, 0.001)
    sim.add_poisson_background(third, 0.0, 0.0, 0.001, 0.001)                # no input needs no generator


def test_bss1_generators_give_ten_times_less_biological_rate():
    sim.setup(chip="bss1", seed=1, timestep=0.1, min_delay=0.1)
    cells = sim.Population(50, sim.IF_cond_exp(), label="cells")
    # 12.5 kHz biological per generator: 50 x 3 kHz needs 12 per receptor type
    with pytest.raises(ChipLimitError, match=r"on-chip background generators.*requested 24"):
        sim.add_poisson_background(cells, 3000.0, 3000.0, 0.001, 0.001)


def test_rate_per_neuron_and_input_checks():
    sim.setup(chip="bss2", seed=1)
    cells = sim.Population(2, sim.IF_cond_exp(), label="cells")
    with pytest.raises(ChipLimitError, match=r"background rate per neuron.*requested 200000 Hz, "
                                             r"allowed at most 125000 Hz"):
        sim.add_poisson_background(cells, 2e5, 0.0, 0.001, 0.001)
    with pytest.raises(ValueError, match="rate_inh must be a finite number >= 0"):
        sim.add_poisson_background(cells, 10.0, -1.0, 0.001, 0.001)
    with pytest.raises(ChipLimitError, match="background weight"):
        sim.add_poisson_background(cells, 10.0, 10.0, 10.0, 0.001)
    with pytest.raises(UnsupportedFeatureError, match="background delay"):
        sim.add_poisson_background(cells, 10.0, 10.0, 0.001, 0.001, delay=1.0)
    sources = sim.Population(2, sim.SpikeSourcePoisson(rate=10.0))
    with pytest.raises(UnsupportedFeatureError, match="background targets"):
        sim.add_poisson_background(sources, 10.0, 10.0, 0.001, 0.001)


def test_background_rows_count_in_the_fan_in():
    sim.setup(chip="bss2", seed=1)
    cells = sim.Population(1, sim.IF_cond_exp(), label="cells")
    inputs = sim.Population(255, sim.SpikeSourceArray(spike_times=[1.0]))
    sim.Projection(inputs, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.001))
    with pytest.raises(ChipLimitError, match=r"fan-in of neuron 0 of 'cells'.*requested 257 synapse rows, "
                                             r"allowed at most 256"):
        sim.add_poisson_background(cells, 10.0, 10.0, 0.001, 0.001)
    sim.add_poisson_background(cells, 10.0, 0.0, 0.001, 0.001)                # one row: 256 fits


def test_weights_are_quantised_and_pass_through_the_gain_of_each_neuron():
    sim.setup(chip="bss2", chip_seed=3, seed=1, fixed_pattern_noise=True)
    cells = sim.Population(6, sim.IF_cond_exp(), label="cells")
    created = sim.add_poisson_background(cells, 1000.0, 2000.0, 0.001, 0.002)
    chip = sim.get_chip()
    for label, _receptor, weight, sign, gain_name in (("exc", "excitatory", 0.001, 1.0, "gain_exc"),
                                                     ("inh", "inhibitory", 0.002, -1.0, "gain_inh")):
        expected = quantise_rows(np.array([weight]), np.array([0]), 1, chip.spec)[0][0]
        assert created[label]["configured_weight_uS"] == expected != weight
        connections = nest.GetConnections(created[label]["node"], cells.node_collection)
        targets = cells.id_to_index(np.asarray(connections.get("target"), dtype=int))
        nest_weights = np.asarray(connections.get("weight"), dtype=float)
        gains = chip.fixed_pattern[gain_name][cells.circuits[targets]]
        np.testing.assert_allclose(nest_weights, sign * 1000.0 * expected * gains, rtol=1e-12)
        assert np.std(gains) > 0.01                                # the chip's neurons differ
    report = sim.get_hardware_report()["background"]
    assert report["generators_used"] == 2 and report["generators_available"] == 8
    assert [s["rate_hz"] for s in report["sources"]] == [1000.0, 2000.0]
