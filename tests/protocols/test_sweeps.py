"""Dask sweeps: the same seeded simulations on a local 2-worker cluster and serially give equal results."""

import sys

import cloudpickle
import numpy as np
import pytest

from cortexsim.backends.sweeps import SweepTiming, run_sweep

# Worker processes cannot import this test module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def noisy_population_counts(seed: int) -> list:
    """Spike counts of 20 uncoupled LIF neurons with Poisson background, 300 ms on NEST (seeded)."""
    from cortexsim.backends import load_backend
    from cortexsim.backends.noise import add_poisson_background
    from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE

    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=seed)
    parameters = DEFAULT_NEURON.as_pynn()
    parameters["v_rest"] = np.linspace(-53.0, -48.0, 20)
    population = sim.Population(20, sim.IF_cond_exp(**parameters))
    population.record("spikes")
    add_poisson_background(sim, population, DEFAULT_NOISE)
    sim.run(300.0)
    counts = [len(st) for st in population.get_data("spikes").segments[-1].spiketrains]
    sim.end()
    return counts


def test_run_sweep_rejects_bad_arguments():
    with pytest.raises(ValueError, match="executor"):
        run_sweep(abs, [1], executor="threads")
    with pytest.raises(ValueError, match="n_workers"):
        run_sweep(abs, [1], executor="dask", n_workers=0)


def test_serial_sweep_keeps_task_order():
    assert run_sweep(abs, [-3, 2, -1], executor="serial") == [3, 2, 1]


@pytest.mark.slow
def test_dask_local_cluster_gives_the_serial_results():
    seeds = [11, 12, 13, 14]
    serial = run_sweep(noisy_population_counts, seeds, executor="serial")
    timing = SweepTiming()
    parallel = run_sweep(noisy_population_counts, seeds, executor="dask", n_workers=2, timing=timing)
    assert timing.n_workers == 2
    assert parallel == serial  # same seeds, same spikes, whichever worker ran them
    # and the seeds matter (otherwise the equality above would prove nothing)
    assert serial[0] != serial[1]
    assert sum(serial[0]) > 0
