"""Poisson background input as a backend strategy.

A backend module may provide its own ``add_poisson_background(population, rate_exc, rate_inh,
weight_exc, weight_inh)`` (NEST: ``poisson_generator`` without relays; Brian2: ``PoissonInput``).
Any other PyNN module gets PyNN's portable route: one ``SpikeSourcePoisson`` per neuron and receptor
type, connected one-to-one.
"""

from __future__ import annotations

from types import ModuleType

from cortexsim.parameters import NoiseParameters

__all__ = ["add_poisson_background"]


def add_poisson_background(sim: ModuleType, population, noise: NoiseParameters) -> dict:
    """Give each neuron of ``population`` independent excitatory and inhibitory Poisson input.

    Parameters
    ----------
    sim : module
        The PyNN backend module the population was built with.
    population : Population
        Conductance-based neurons.
    noise : NoiseParameters
        Rates (Hz) and weights (uS) of the excitatory and inhibitory sources.

    Returns
    -------
    dict
        Backend objects created, by receptor (``"exc"``, ``"inh"``).
    """
    native = getattr(sim, "add_poisson_background", None)
    if native is not None:
        return native(population, noise.rate_exc, noise.rate_inh, noise.weight_exc, noise.weight_inh)
    created = {}
    for label, receptor, rate, weight in (("exc", "excitatory", noise.rate_exc, noise.weight_exc),
                                          ("inh", "inhibitory", noise.rate_inh, noise.weight_inh)):
        if rate == 0 or weight == 0:
            continue
        sources = sim.Population(population.size, sim.SpikeSourcePoisson(rate=rate),
                                 label=f"{population.label}_noise_{label}")
        projection = sim.Projection(sources, population, sim.OneToOneConnector(),
                                    sim.StaticSynapse(weight=weight), receptor_type=receptor)
        created[label] = (sources, projection)
    return created
