"""A balanced excitatory/inhibitory network of conductance-based LIF neurons, for ``cortexsim validate``.

400 excitatory and 100 inhibitory ``IF_cond_exp`` neurons (Vogels-Abbott-like parameters), random
connectivity with fixed in-degrees (80 excitatory and 20 inhibitory inputs per neuron), and
independent Poisson background on every neuron. Strong inhibition balances the suprathreshold
background, so the network fires irregularly (measured 2026-11-30, R = 5 seeds, 600 ms after a 200 ms
transient: NEST 10.4 Hz / 11.5 Hz and CV of ISIs 1.13 / 1.20 for E / I; Brian2 10.3 Hz / 11.7 Hz, CV
1.19 / 1.24; all 14 statistics agree). With R = 10 repeats of 400 ms (benchmarks/validation_dt.py,
results/validation_dt.json) the test has more power: at dt 0.1 ms one of 14 statistics differs (mean
excitatory membrane potential, -68.63 vs -67.93 mV, Hedges' g 1.5), at dt 0.01 ms all 14 agree (0.17 mV
apart): a time-step effect, not a model difference. Spikes of both populations and the membrane potential of 20
neurons per population are recorded.

The network runs in a high-conductance state: the recurrent inhibitory conductance (~20 inputs x
~11 Hz x 0.15 uS x 10 ms ~ 0.3 uS) dwarfs the leak conductance cm / tau_m = 0.01 uS, so the
membrane time constant hardly matters and the balance sets the rates. Changing tau_m by 20 % on one
backend (``--alter brian2:tau_m=1.2``) is therefore NOT a real difference here (measured: rate
10.37 vs 10.68 Hz, CV 1.13 vs 1.13, nothing flagged); the test suite shows that such an alteration is
caught on a near-threshold variant of this model, where it changes rate and CV by 70 % and 27 %.

Run it on two simulators and compare::

    cortexsim validate examples/validate_balanced_ei.py --backends nest,brian2 --repeats 5 --out out/validate_ei

The validation runner calls ``sim.setup(timestep=..., seed=...)`` and then ``build(sim, rng=...)``:
``rng`` is a ``sim.NumpyRNG`` seeded from the run's seed, so connectivity and initial potentials
change from repeat to repeat (PyNN's connectors otherwise use one fixed default seed).
"""

from __future__ import annotations

from cortexsim.backends.noise import add_poisson_background
from cortexsim.parameters import NoiseParameters

#: Simulated time per run (ms) and the initial transient left out of the statistics (ms).
DURATION_MS = 800.0
TRANSIENT_MS = 200.0

#: Everything that defines the network (PyNN units: nF, ms, mV, uS, Hz).
PARAMETERS = {
    "n_excitatory": 400,
    "n_inhibitory": 100,
    "in_degree_excitatory": 80,
    "in_degree_inhibitory": 20,
    "cell": {"cm": 0.2, "tau_m": 20.0, "v_rest": -60.0, "v_thresh": -50.0, "v_reset": -60.0,
             "tau_refrac": 5.0, "tau_syn_E": 5.0, "tau_syn_I": 10.0, "e_rev_E": 0.0, "e_rev_I": -80.0},
    "weight_excitatory_uS": 0.004,
    "weight_inhibitory_uS": 0.15,
    "delay_ms": 1.5,
    "background_rate_hz": 1500.0,
    "background_weight_uS": 0.004,
    "background_inhibitory_rate_hz": 0.0,
    "background_inhibitory_weight_uS": 0.0,
    "initial_v_range_mV": (-60.0, -50.0),
    "n_recorded_v": 20,
}


def build(sim, rng=None, parameters: dict | None = None) -> dict:
    """Create the network with backend ``sim`` (``setup`` already called); returns its populations.

    ``parameters`` replaces :data:`PARAMETERS` (e.g. a smaller network for tests).
    """
    p = PARAMETERS if parameters is None else parameters
    if rng is None:
        rng = sim.NumpyRNG(seed=1)
    cell = sim.IF_cond_exp(**p["cell"])
    exc = sim.Population(p["n_excitatory"], cell, label="excitatory")
    inh = sim.Population(p["n_inhibitory"], cell, label="inhibitory")
    for pop in (exc, inh):
        pop.initialize(v=sim.RandomDistribution("uniform", p["initial_v_range_mV"], rng=rng))
        pop.record("spikes")
        pop[:p["n_recorded_v"]].record("v")
        add_poisson_background(sim, pop, NoiseParameters(
            rate_exc=p["background_rate_hz"], rate_inh=p["background_inhibitory_rate_hz"],
            weight_exc=p["background_weight_uS"], weight_inh=p["background_inhibitory_weight_uS"]))
    for source, receptor, weight, in_degree in (
            (exc, "excitatory", p["weight_excitatory_uS"], p["in_degree_excitatory"]),
            (inh, "inhibitory", p["weight_inhibitory_uS"], p["in_degree_inhibitory"])):
        if int(in_degree) == 0:
            continue  # uncoupled variant (used by fast tests)
        connector = sim.FixedNumberPreConnector(int(in_degree), allow_self_connections=False, rng=rng)
        for target in (exc, inh):
            sim.Projection(source, target, connector,
                           sim.StaticSynapse(weight=weight, delay=p["delay_ms"]),
                           receptor_type=receptor)
    return {"excitatory": exc, "inhibitory": inh}
