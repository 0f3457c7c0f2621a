"""A sparse current-based network in Brunel's asynchronous irregular state, written as a plain PyNN script.

Model (Brunel 2000, J Comput Neurosci 8:183, model A with exponential currents instead of delta
pulses): 400 excitatory and 100 inhibitory ``IF_curr_exp`` neurons, each with a fixed in-degree of
40 excitatory and 10 inhibitory inputs (10 %), excitatory weight 0.1 nA (a PSP of ~0.18 mV),
relative inhibition g = 5, delay 1.5 ms, and external drive from one ``SpikeSourcePoisson`` per
neuron at eta = 2 times the threshold rate (8 kHz at 0.1 nA). Inhibition dominates, so the network
fires asynchronously and irregularly.

It is written like an ordinary PyNN script, to show what ``cortexsim validate`` does with one:
``build`` calls ``sim.setup(timestep=0.1, min_delay=1.5)`` itself and uses connectors and random
distributions without a seeded ``rng``. In a validation run each ``setup`` call gets the run's seed
and ``--dt`` (a different ``timestep`` here is overridden with a warning naming both) and unseeded
RNGs get seeds derived from the run's seed, so repeats differ and the same command gives the same
numbers.

    cortexsim validate examples/validate_brunel_script.py --backends nest,brian2 --repeats 10 --out out/brunel
"""

from __future__ import annotations

#: Simulated time per run and initial transient left out of the statistics (ms).
DURATION_MS = 1200.0
TRANSIENT_MS = 200.0

#: Everything that defines the network (PyNN units: nF, ms, mV, nA, Hz).
PARAMETERS = {
    "n_excitatory": 400,
    "n_inhibitory": 100,
    "in_degree_excitatory": 40,
    "in_degree_inhibitory": 10,
    "cell": {"cm": 0.25, "tau_m": 20.0, "v_rest": -70.0, "v_reset": -60.0, "v_thresh": -50.0,
             "tau_refrac": 2.0, "tau_syn_E": 0.5, "tau_syn_I": 0.5, "i_offset": 0.0},
    "weight_excitatory_nA": 0.1,
    "relative_inhibition_g": 5.0,
    "delay_ms": 1.5,
    "external_rate_hz": 8000.0,
    "initial_v_range_mV": (-70.0, -50.0),
    "n_recorded_v": 20,
}


def build(sim) -> dict:
    """The network, built the way a PyNN script builds it (its own ``setup`` call included)."""
    p = PARAMETERS
    sim.setup(timestep=0.1, min_delay=p["delay_ms"])
    cell = sim.IF_curr_exp(**p["cell"])
    exc = sim.Population(p["n_excitatory"], cell, label="excitatory")
    inh = sim.Population(p["n_inhibitory"], cell, label="inhibitory")
    everyone = exc + inh
    everyone.initialize(v=sim.RandomDistribution("uniform", p["initial_v_range_mV"]))
    external = sim.Population(everyone.size, sim.SpikeSourcePoisson(rate=p["external_rate_hz"]), label="external")
    sim.Projection(external, everyone, sim.OneToOneConnector(),
                   sim.StaticSynapse(weight=p["weight_excitatory_nA"], delay=p["delay_ms"]), receptor_type="excitatory")
    w_exc, w_inh = p["weight_excitatory_nA"], -p["relative_inhibition_g"] * p["weight_excitatory_nA"]
    for source, in_degree, weight, receptor in ((exc, p["in_degree_excitatory"], w_exc, "excitatory"),
                                                (inh, p["in_degree_inhibitory"], w_inh, "inhibitory")):
        sim.Projection(source, everyone, sim.FixedNumberPreConnector(in_degree, rng=sim.NumpyRNG()),
                       sim.StaticSynapse(weight=weight, delay=p["delay_ms"]), receptor_type=receptor)
    for population in (exc, inh):
        population.record("spikes")
        population[:p["n_recorded_v"]].record("v")
    return {"excitatory": exc, "inhibitory": inh}
