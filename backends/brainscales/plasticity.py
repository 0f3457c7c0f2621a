"""STDP on the emulated chip: PyNN's ``STDPMechanism`` as a program of the plasticity processors.

BrainScaleS-2 has no STDP circuit that changes weights by itself: its synapses measure pre/post
correlation (:mod:`cortexsim.backends.correlation`) and the plasticity processors (PPUs) read the
sensors periodically and write new 6-bit weights. A projection whose synapse type is PyNN's
``STDPMechanism`` runs that way here, when it maps onto the sensors:

* ``timing_dependence``: ``SpikePairRule`` (pair-based, exponential window) with ``tau_plus ==
  tau_minus`` (one bias current sets the time constant of both sensor branches) within the
  sensors' calibration range (2 .. 30 us of hardware time, i.e. ms of biology at speed-up 1000);
* ``weight_dependence``: ``AdditiveWeightDependence`` (dw = w_max (A_plus c+ - A_minus c-)) or
  ``MultiplicativeWeightDependence`` (dw = A_plus (w_max - w) c+ - A_minus (w - w_min) c-), with
  c+ / c- the causal / acausal correlation since the last update in units of pairs at zero delay
  (sensor reading / nominal amplitude);
* no voltage dependence, delays as the chip allows (none on bss2).

Everything else (other timing or weight dependences, ``tau_plus != tau_minus``, a chip without
sensors) raises :class:`~.errors.UnsupportedFeatureError` naming what is not supported.

How it differs from ``pyNN.nest``'s STDP (which updates every synapse at every spike, all-to-all
pairs, float weights): the PPU updates every ``plasticity_period`` ms (``setup()``; default 10 ms of
biology = 10 us of hardware time); the sensors pair nearest spikes only, saturate, carry the chip's
per-synapse mismatch and read-out noise; weights are 6-bit integers at a row scale fixed by
``w_max`` (the PPU writes integers; changes smaller than half a step are lost at each update). With
spike pairs further apart than a few time constants, ideal sensors and an update period longer than
the pairing, an additive rule gives the same weight change as ``pyNN.nest`` up to the 6-bit step.
"""

from __future__ import annotations

from dataclasses import dataclass

import nest
import numpy as np

from ..correlation import TAU_RANGE_US, CorrelationSensors, SensorParameters, draw_sensor_mismatch
from .errors import ChipLimitError, UnsupportedFeatureError

__all__ = ["StdpRule", "stdp_rule", "SpikeTap", "StdpProgram", "DEFAULT_PLASTICITY_PERIOD_MS",
           "DEFAULT_STDP_SENSORS"]

#: Time between two PPU updates (biological ms) unless ``setup(plasticity_period=...)`` says otherwise.
DEFAULT_PLASTICITY_PERIOD_MS = 10.0
#: Sensors of STDP projections: calix's largest amplitude (finest resolution), the rest nominal.
DEFAULT_STDP_SENSORS = SensorParameters(amplitude=2.0)


@dataclass(frozen=True)
class StdpRule:
    """The PPU's STDP program parameters (PyNN units: weights uS or nA, tau ms)."""

    tau_ms: float
    a_plus: float
    a_minus: float
    w_min: float
    w_max: float
    multiplicative: bool


def _value(component, name: str) -> float:
    value = component.parameter_space[name].base_value
    if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
        raise UnsupportedFeatureError("bss2", f"STDP parameter {name}", f"{value!r} (not one number)",
                                      "one value for the whole projection")
    return float(value)


def stdp_rule(synapse_type, spec) -> StdpRule:
    """Check that ``synapse_type`` (an STDPMechanism) maps onto the chip's sensors; its PPU parameters.

    Raises
    ------
    UnsupportedFeatureError
        If the chip has no correlation sensors or the rule does not map onto them.
    ChipLimitError
        If the time constant lies outside the sensors' range.
    """
    name = spec.name
    if not spec.correlation_sensors:
        raise UnsupportedFeatureError(name, "synapse type", "STDPMechanism",
                                      f"one of {spec.synapse_types} (this chip has no correlation sensors "
                                      "in the emulation)")
    timing, weight = synapse_type.timing_dependence, synapse_type.weight_dependence
    if getattr(synapse_type, "voltage_dependence", None) is not None:
        raise UnsupportedFeatureError(name, "STDP voltage dependence", type(synapse_type.voltage_dependence).__name__,
                                      "None (the sensors see spike times only)")
    if type(timing).__name__ != "SpikePairRule":
        raise UnsupportedFeatureError(name, "STDP timing dependence", type(timing).__name__,
                                      "SpikePairRule (pair-based, exponential window: what the correlation "
                                      "sensors measure)")
    kind = type(weight).__name__
    if kind not in ("AdditiveWeightDependence", "MultiplicativeWeightDependence"):
        raise UnsupportedFeatureError(name, "STDP weight dependence", kind,
                                      "AdditiveWeightDependence or MultiplicativeWeightDependence")
    tau_plus, tau_minus = _value(timing, "tau_plus"), _value(timing, "tau_minus")
    if abs(tau_plus - tau_minus) > 1e-9 * max(tau_plus, 1.0):
        raise UnsupportedFeatureError(name, "STDP time constants",
                                      f"tau_plus={tau_plus:g} ms, tau_minus={tau_minus:g} ms",
                                      "tau_plus == tau_minus (one bias current sets both sensor branches)")
    low, high = (t / 1000.0 * spec.speedup for t in TAU_RANGE_US)     # hardware us -> biological ms
    if not low <= tau_plus <= high:
        raise ChipLimitError(name, "STDP time constant (correlation sensor)", f"{tau_plus:g} ms",
                             f"{low:g} .. {high:g} ms of biological time")
    w_min, w_max = _value(weight, "w_min"), _value(weight, "w_max")
    if not 0 <= w_min < w_max:
        raise ValueError(f"STDP weight range must satisfy 0 <= w_min < w_max, got w_min={w_min}, w_max={w_max}")
    return StdpRule(tau_plus, _value(timing, "A_plus"), _value(timing, "A_minus"), w_min, w_max,
                    kind == "MultiplicativeWeightDependence")


class SpikeTap:
    """A NEST spike recorder on some nodes; :meth:`drain` returns the new spikes per node (engine ms).

    Parameters
    ----------
    node_ids : array_like of int
        NEST node IDs, in the order the spike trains are returned.
    """

    def __init__(self, node_ids):
        self.node_ids = np.asarray(node_ids, dtype=int)
        self.order = np.argsort(self.node_ids)
        self.recorder = nest.Create("spike_recorder")
        nest.Connect(nest.NodeCollection(sorted(self.node_ids.tolist())), self.recorder)
        self.size = self.node_ids.size

    def drain(self) -> list[np.ndarray]:
        """Spike times (ms) per node since the last drain."""
        events = self.recorder.get("events")
        self.recorder.set(n_events=0)
        senders = np.asarray(events["senders"], dtype=int)
        times = np.asarray(events["times"], dtype=float)
        if senders.size == 0:
            return [np.zeros(0) for _ in range(self.size)]
        index = self.order[np.searchsorted(self.node_ids, senders, sorter=self.order)]
        sort = np.lexsort((times, index))
        index, times = index[sort], times[sort]
        bounds = np.searchsorted(index, np.arange(self.size + 1))
        return [times[bounds[i]:bounds[i + 1]] for i in range(self.size)]


class StdpProgram:
    """The PPU program of one STDP projection: sensors, 6-bit weights, the update at each period.

    Parameters
    ----------
    projection : Projection
        The chip projection (its connections are static NEST synapses the program rewrites).
    rule : StdpRule
        The STDP parameters.
    sensors : SensorParameters
        The correlation sensors (their ``tau_us`` is replaced by the rule's time constant).
    chip : ChipSession
        The chip (seed of the sensor mismatch, speed-up).
    first_row : int
        Synapse row of the projection's first presynaptic cell (rows are given out in creation order).
    delay_ms : float
        Time from a presynaptic spike to its arrival at the synapse (the connection delay, ms).
    """

    def __init__(self, projection, rule: StdpRule, sensors: SensorParameters, chip, first_row: int,
                 delay_ms: float):
        self.projection, self.rule, self.delay_ms = projection, rule, float(delay_ms)
        spec = chip.spec
        tau_us = rule.tau_ms * 1000.0 / spec.speedup
        self.sensor_parameters = SensorParameters(**{**sensors.to_dict(), "tau_us": tau_us})
        rows = (first_row + np.arange(projection.pre.size)) % 256
        columns = np.asarray(projection._post_circuits) % spec.n_neurons
        mismatch = draw_sensor_mismatch(self.sensor_parameters, chip.seed, (256, spec.n_neurons))
        grid = np.ix_(rows, columns)
        tau_ms = mismatch["tau"][grid] / 1000.0 * spec.speedup
        self.sensors = CorrelationSensors(self.sensor_parameters, mismatch["amplitude"][grid], tau_ms,
                                          mismatch["saturation"][grid],
                                          np.random.default_rng([int(chip.rng_seed), 0x57D9, first_row]))
        self.pre_tap = SpikeTap(np.asarray(projection.pre.all_cells, dtype=int))
        self.post_tap = SpikeTap(np.asarray(projection.post.all_cells, dtype=int))
        self.updates = 0

    def update(self) -> None:
        """Feed the spikes since the last update to the sensors, read them, write the new weights, reset."""
        pre = [t + self.delay_ms for t in self.pre_tap.drain()]
        self.sensors.advance(pre, self.post_tap.drain())
        causal, acausal = self.sensors.read()
        self.sensors.reset()
        table = self.projection._table()
        if table["pre"].size == 0:
            return
        nominal = self.sensor_parameters.amplitude
        c_plus = causal[table["pre"], table["post"]] / nominal
        c_minus = acausal[table["pre"], table["post"]] / nominal
        self.projection._apply_stdp(table, c_plus, c_minus, self.rule)
        self.updates += 1
