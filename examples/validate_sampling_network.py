"""A LIF sampling network (Petrovici et al. 2016) for ``cortexsim validate``.

Ten conductance-based LIF neurons sample from a fixed random Boltzmann machine (seed 42): leak
potentials from the biases, renewing (Tsodyks-Markram U = 1) recurrent synapses from the weights,
Poisson background on every neuron. The BM-to-LIF translation uses one fixed activation-function
fit (references §1, measured on NEST with the default parameter set), so every backend simulates
exactly the same LIF network; a backend whose neurons respond differently shows up as differing
rates. Spikes and membrane potentials of all ten neurons are recorded.

    cortexsim validate examples/validate_sampling_network.py --backends nest,brian2 --repeats 5 --out out/validate_sampling

The seed of each run changes the background noise only (the network has no random connectivity).
"""

from __future__ import annotations

from cortexsim.models.boltzmann import random_bm
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit
from cortexsim.models.sampling_network import build_sampling_network

#: Simulated time per run and initial transient left out of the statistics (ms).
DURATION_MS = 3000.0
TRANSIENT_MS = 100.0

#: What defines the network: BM size and seed, activation fit (mV), recurrent synapse kind.
PARAMETERS = {
    "n_units": 10,
    "bm_seed": 42,
    "activation_fit_mV": {"v_p05": -50.61, "alpha": 0.82},
    "synapses": "renewing",
    "neuron": DEFAULT_NEURON.as_pynn(),
    "noise": DEFAULT_NOISE.to_dict(),
}


def build(sim) -> dict:
    """Create the sampling network with backend ``sim`` (``setup`` already called)."""
    bm = random_bm(PARAMETERS["n_units"], seed=PARAMETERS["bm_seed"])
    fit = ActivationFit(**PARAMETERS["activation_fit_mV"])
    network = build_sampling_network(sim, bm, fit, DEFAULT_NEURON, DEFAULT_NOISE,
                                     synapses=PARAMETERS["synapses"], label="sampling")
    network.population.record("v")
    return {"sampling": network.population}
