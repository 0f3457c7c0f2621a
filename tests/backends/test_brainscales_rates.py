"""The same PyNN network on pyNN.nest and on the emulated chip (noise and quantisation off) fires at
statistically equal per-neuron rates; with fixed-pattern noise on it does not (the test has power).

Tolerance: the two runs use independent random seeds, so the per-neuron spike counts n_nest and
n_chip are independent. Treating each as Poisson (variance = mean; LIF neurons with refractoriness
fire more regularly, so this overestimates the noise), z = (n_nest - n_chip) / sqrt(n_nest + n_chip)
is approximately standard normal. |z| < 4.5 for every one of 30 neurons fails by chance with
probability < 30 x 6.8e-6 = 2e-4.
"""

import numpy as np
import pytest

pytest.importorskip("pyNN.nest")
import pyNN.nest  # noqa: E402

import cortexsim.backends.brainscales as chip_sim  # noqa: E402

N_NEURONS = 30
DURATION_MS = 5000.0
Z_LIMIT = 4.5


def _spike_counts(sim, **setup_options) -> np.ndarray:
    """Build and run one network through the PyNN API of ``sim``; spike count per neuron."""
    sim.setup(timestep=0.1, min_delay=0.1, **setup_options)
    cells = sim.Population(N_NEURONS, sim.IF_cond_exp(
        cm=0.2, tau_m=10.0, tau_refrac=2.0, v_thresh=-50.0, v_reset=-60.0, tau_syn_E=5.0,
        tau_syn_I=5.0, e_rev_E=0.0, e_rev_I=-80.0, v_rest=np.linspace(-60.0, -49.0, N_NEURONS)))
    cells.initialize(v=-60.0)
    excitation = sim.Population(N_NEURONS, sim.SpikeSourcePoisson(rate=1000.0))
    inhibition = sim.Population(N_NEURONS, sim.SpikeSourcePoisson(rate=500.0))
    sim.Projection(excitation, cells, sim.OneToOneConnector(), sim.StaticSynapse(weight=0.002),
                   receptor_type="excitatory")
    sim.Projection(inhibition, cells, sim.OneToOneConnector(), sim.StaticSynapse(weight=0.004),
                   receptor_type="inhibitory")
    recurrent = sim.FixedProbabilityConnector(0.1, rng=sim.NumpyRNG(seed=5), allow_self_connections=False)
    sim.Projection(cells, cells, recurrent, sim.StaticSynapse(weight=0.001), receptor_type="excitatory")
    cells.record("spikes")
    sim.run(DURATION_MS)
    counts = np.array([len(train) for train in cells.get_data().segments[0].spiketrains])
    sim.end()
    return counts


def _z_scores(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return (first - second) / np.sqrt(np.maximum(first + second, 1))


@pytest.mark.slow
def test_ideal_chip_fires_like_nest_and_noisy_chip_does_not():
    nest_counts = _spike_counts(pyNN.nest, rng_seed=101, threads=1)
    ideal_counts = _spike_counts(chip_sim, chip="bss2", chip_seed=7, seed=202,
                                 fixed_pattern_noise=False, quantize_weights=False)
    assert nest_counts.min() > 20, nest_counts        # enough spikes for the normal approximation
    z_ideal = _z_scores(nest_counts, ideal_counts)
    assert np.all(np.abs(z_ideal) < Z_LIMIT), (nest_counts, ideal_counts, z_ideal)
    assert not np.array_equal(nest_counts, ideal_counts)    # independent noise, not a copy

    noisy_counts = _spike_counts(chip_sim, chip="bss2", chip_seed=7, seed=202)
    z_noisy = _z_scores(nest_counts, noisy_counts)
    assert np.sum(np.abs(z_noisy) >= Z_LIMIT) >= 5, z_noisy
