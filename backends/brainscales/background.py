"""Poisson background from the chip's on-chip generators (the backend's noise strategy).

``add_poisson_background(population, rate_exc, rate_inh, weight_exc, weight_inh)`` is what
:func:`cortexsim.backends.noise.add_poisson_background` calls on this backend. On the chip the
background comes from on-chip Poisson generators (BrainScaleS-2: ``SpikeSourcePoissonOnChip``), not
from spike trains played in from outside, so it needs no relay cells and no input bandwidth. Their
limits are data of the chip (:class:`~.chips.ChipSpec`): how many generators there are
(``background_generators``) and the largest total event rate one generator can emit in hardware time
(``background_max_event_rate_hz``). Each receptor type needs its own generators (a shared generator
would make the excitatory and inhibitory trains identical); a population whose background needs more
than one generator's rate is spread over several. Each neuron receives one synapse row per receptor
type (counted in its fan-in), the weight is quantised like any synaptic weight and passes through
the neuron's synaptic gain (fixed-pattern noise, calibration), as on the chip.

The emulation draws the trains with one NEST ``poisson_generator`` per receptor type connected
straight to the neurons (NEST draws an independent train for every target): per neuron the same
statistics as the generators it stands for.
"""

from __future__ import annotations

import math

import nest
import numpy as np

from . import emulator
from .errors import ChipLimitError, UnsupportedFeatureError
from .quantisation import check_weight_range, quantise_rows

__all__ = ["add_poisson_background", "generators_needed"]


def generators_needed(rate_hz: float, n_neurons: int, speedup: float, max_event_rate_hz: float) -> int:
    """On-chip generators needed to give ``n_neurons`` neurons ``rate_hz`` each (biological Hz).

    One generator emits at most ``max_event_rate_hz`` events per second of hardware time, i.e.
    ``max_event_rate_hz / speedup`` per biological second, shared by the neurons it drives.
    """
    if rate_hz <= 0 or n_neurons <= 0:
        return 0
    return math.ceil(rate_hz * n_neurons * speedup / max_event_rate_hz * (1.0 - 1e-12))


def _check_inputs(rate_exc, rate_inh, weight_exc, weight_inh) -> None:
    for name, value in (("rate_exc", rate_exc), ("rate_inh", rate_inh),
                        ("weight_exc", weight_exc), ("weight_inh", weight_inh)):
        if not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_delay(delay) -> float:
    spec = emulator.current_chip().spec
    fixed = emulator.state.min_delay
    if delay is None:
        return fixed
    delay = float(delay)
    if not spec.delays_allowed and abs(delay - fixed) > 1e-9:
        raise UnsupportedFeatureError(spec.name, "background delay (the chip has no configurable delays)",
                                      f"{delay:g} ms", f"only the fixed minimal delay {fixed:g} ms")
    if spec.delays_allowed:
        low, high = max(spec.delay_range_ms[0], fixed), spec.delay_range_ms[1]
        if not low - 1e-9 <= delay <= high + 1e-9:
            raise ChipLimitError(spec.name, "background delay", f"{delay:g} ms", f"{low:g} .. {high:g} ms")
    return delay


def add_poisson_background(population, rate_exc: float, rate_inh: float,
                           weight_exc: float, weight_inh: float, delay: float | None = None) -> dict:
    """Give every neuron of ``population`` independent excitatory and inhibitory Poisson input.

    Parameters
    ----------
    population : Population or PopulationView
        Neurons on the chip (not spike sources).
    rate_exc, rate_inh : float
        Rate of each neuron's excitatory and inhibitory input train (biological Hz, >= 0).
    weight_exc, weight_inh : float
        Conductance jumps (uS, >= 0; the inhibitory one is a magnitude), or current jumps (nA,
        magnitudes) for current-based neurons, quantised like every synaptic weight of the chip.
    delay : float, optional
        Delay (ms); the minimal delay by default (the only one on a chip without delays).

    Returns
    -------
    dict
        Per receptor (``"exc"``, ``"inh"``): a dict with the emulating NEST node, the requested and
        configured weight (uS), the rate (Hz) and the number of on-chip generators used.

    Raises
    ------
    ChipLimitError
        Too few generators left for the requested rates (the error names the generator count
        and the largest event rate per generator), or a neuron's fan-in would exceed the chip's
        synapse rows, or a weight is out of range.
    """
    _check_inputs(rate_exc, rate_inh, weight_exc, weight_inh)
    chip = emulator.current_chip()
    spec = chip.spec
    circuits = getattr(population, "circuits", None)
    if circuits is None:
        raise UnsupportedFeatureError(spec.name, "background targets", "spike sources", "neurons on the chip")
    delay = _check_delay(delay)
    label = getattr(population, "label", None)
    conductance_based = bool(getattr(population, "conductance_based", True))
    plan = []
    for name, receptor, rate, weight in (("exc", "excitatory", rate_exc, weight_exc),
                                         ("inh", "inhibitory", rate_inh, weight_inh)):
        if rate == 0 or weight == 0:
            continue
        per_neuron_limit = spec.background_max_event_rate_hz / spec.speedup
        if rate > per_neuron_limit:
            raise ChipLimitError(spec.name, "background rate per neuron (one generator's largest "
                                 f"event rate {spec.background_max_event_rate_hz:g} Hz of hardware time "
                                 f"/ speed-up {spec.speedup:g})", f"{rate:g} Hz", f"at most {per_neuron_limit:g} Hz")
        n_generators = generators_needed(rate, len(circuits), spec.speedup, spec.background_max_event_rate_hz)
        plan.append((name, receptor, float(rate), float(weight), n_generators))
    used = sum(entry["generators"] for entry in chip.background)
    requested = used + sum(entry[4] for entry in plan)
    if requested > spec.background_generators:
        detail = ", ".join(f"{name}: {rate:g} Hz x {len(circuits)} neurons -> {n} generator(s)"
                           for name, _, rate, _, n in plan)
        raise ChipLimitError(spec.name, f"on-chip background generators (population {label!r}; {detail}; "
                             f"each emits at most {spec.background_max_event_rate_hz:g} events/s of "
                             f"hardware time = {spec.background_max_event_rate_hz / spec.speedup:g} Hz "
                             f"biological; {used} already in use)",
                             f"{requested} generators", f"at most {spec.background_generators}")
    new_fan_in = chip.fan_in + len(plan) * np.bincount(circuits, minlength=spec.n_neurons)
    if np.any(new_fan_in > spec.max_fan_in):
        circuit = int(np.argmax(new_fan_in))
        position = int(np.flatnonzero(circuits == circuit)[0])
        raise ChipLimitError(spec.name, f"fan-in of neuron {position} of {label!r} (with its background rows)",
                             f"{new_fan_in[circuit]} synapse rows", f"at most {spec.max_fan_in}")
    created = {}
    targets = population.node_collection
    for name, receptor, rate, weight, n_generators in plan:
        requested_w, _ = check_weight_range(np.array([weight]), spec, chip.clip_weights, "background weight",
                                            conductance_based)
        configured = (quantise_rows(requested_w, np.array([0]), 1, spec, conductance_based)[0]
                      if chip.quantize_weights else requested_w)[0]
        sign = 1.0 if receptor == "excitatory" else -1.0        # NEST: negative = inhibitory
        gain = chip.synaptic_gain(receptor, circuits)
        generator = nest.Create("poisson_generator", params={"rate": rate})
        nest.Connect(generator, targets, "all_to_all", {"synapse_model": "static_synapse", "delay": delay})
        connections = nest.GetConnections(generator, targets)
        order = np.atleast_1d(population.id_to_index(np.atleast_1d(np.asarray(connections.get("target"), dtype=int))))
        connections.set(weight=(sign * 1000.0 * configured * gain[order]).tolist())
        entry = {"population": label, "receptor": receptor, "rate_hz": rate, "weight_uS": weight,
                 "configured_weight_uS": float(configured), "weight_unit": "uS" if conductance_based else "nA",
                 "generators": n_generators,
                 "neurons": int(len(circuits)),
                 "hardware_event_rate_hz": rate * len(circuits) * spec.speedup}
        chip.background.append(entry)
        created[name] = dict(entry, node=generator)
    chip.fan_in = new_fan_in
    chip.configuration_changed = True
    return created
