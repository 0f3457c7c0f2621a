"""What the plasticity processors read on the emulated chip: correlation sensors and rate counters.

A :class:`PlasticityState` belongs to one placed network (:class:`~.mapping.Mapping`). For every
plasticity rule it listens to the spikes of the populations the rule needs (the pre- and
postsynaptic cells of its projections, its own populations) with NEST spike recorders and, whenever
the run loop pauses for a timer event (:meth:`collect`), feeds the new spikes

* into the correlation sensors of every synapse of the rule's projections
  (:class:`~cortexsim.backends.correlation.CorrelationSensors`; the model, its numbers
  and their sources are documented there), and
* into the rate counters of the rule's populations (spikes per neuron since the last reset,
  saturating at 255).

Sensor imperfections belong to the chip: per-synapse amplitudes, time constants and saturation
levels are drawn from the chip seed for the whole synapse array (256 rows x 512 columns); a
projection's synapse ``(row, column)`` is (its presynaptic cell's row, its postsynaptic neuron's
circuit). Rows are given to the presynaptic cells of the plastic projections in placement order
(*assumption*: the emulator has no row allocation of its own). Read-out noise is drawn from the run
seed. The pre-synaptic spike reaches the synapse one emulation step after it is emitted (the
engine's fixed delay), which is when the sensor sees it.
"""

from __future__ import annotations

import numpy as np

from ..brainscales.plasticity import SpikeTap
from ..correlation import CorrelationSensors, SensorParameters, draw_sensor_mismatch
from . import hardware_model as hw
from .plasticity_rules import RATE_COUNTER_MAX

__all__ = ["PlasticityState", "network_rules", "SYNAPSE_ROWS", "SYNAPSE_COLUMNS"]

#: Synapse array of one chip: rows (presynaptic inputs per hemisphere) x columns (neuron circuits).
SYNAPSE_ROWS, SYNAPSE_COLUMNS = 256, 512


def _root(cells):
    return getattr(cells, "grandparent", cells)


def _root_indices(cells, n: int) -> np.ndarray:
    indices = np.arange(n)
    if hasattr(cells, "parent"):
        return np.asarray(cells.index_in_grandparent(indices), dtype=int)
    return indices


def network_rules(state) -> list:
    """The distinct plasticity rules of the network's projections and populations, in creation order."""
    rules = []
    for owner in list(state.projections) + list(state.populations):
        kind = getattr(owner, "synapse_type", None) or owner.celltype
        rule = getattr(kind, "plasticity_rule", None)
        if rule is not None and rule not in rules:
            rules.append(rule)
    return rules


class PlasticityState:
    """Sensors and counters of one placed network (see the module docstring).

    Parameters
    ----------
    mapping : Mapping
        The placed network (its engine populations and circuits).
    rules : list of PlasticityRule
        The rules of the network.
    parameters : SensorParameters
        The correlation sensors' calibration targets and imperfections.
    """

    def __init__(self, mapping, rules: list, parameters: SensorParameters):
        self.mapping = mapping
        self.parameters = parameters
        self.delay_ms = mapping.options.timestep_ms * hw.SPEEDUP            # engine ms
        self.taps = {}              # id(root population) -> SpikeTap
        self.sensors = {}           # id(projection) -> CorrelationSensors
        self.counters = {}          # id(root population) -> counts (n,)
        self._spikes = {}           # id(root population) -> trains drained at the last collect
        self.rng = np.random.default_rng([int(mapping.options.seed), 0xC022])
        projections = [p for rule in rules for p in rule._projections]
        populations = [p for rule in rules for p in rule._populations]
        for cells in [c for p in projections for c in (p.pre, p.post)] + populations:
            root = _root(cells)
            if id(root) not in self.taps:
                self.taps[id(root)] = SpikeTap(mapping.populations[id(root)].node_collection.tolist())
        for population in populations:
            self.counters.setdefault(id(_root(population)), np.zeros(_root(population).size, dtype=int))
        self._place_sensors(projections)

    def _place_sensors(self, projections: list) -> None:
        if not projections:
            return
        mismatch = draw_sensor_mismatch(self.parameters, self.mapping.options.chip_seed,
                                        (SYNAPSE_ROWS, SYNAPSE_COLUMNS))
        next_row = 0
        tau_engine_per_us = 1e-3 * hw.SPEEDUP          # 1 us of hardware time in engine ms
        for projection in projections:
            if id(projection) in self.sensors:
                continue
            n_pre, n_post = projection.pre.size, projection.post.size
            rows = (next_row + np.arange(n_pre)) % SYNAPSE_ROWS
            next_row += n_pre
            post_root = _root(projection.post)
            columns = self.mapping.circuits[id(post_root)][_root_indices(projection.post, n_post)] % SYNAPSE_COLUMNS
            grid = np.ix_(rows, columns)
            self.sensors[id(projection)] = CorrelationSensors(
                self.parameters, mismatch["amplitude"][grid], mismatch["tau"][grid] * tau_engine_per_us,
                mismatch["saturation"][grid], self.rng)

    def collect(self) -> None:
        """Drain every spike recorder into the sensors and rate counters (call when the run pauses)."""
        if not self.taps:
            return
        spikes = {key: tap.drain() for key, tap in self.taps.items()}
        for key, counts in self.counters.items():
            counts += np.array([t.size for t in spikes[key]], dtype=int)
            np.minimum(counts, RATE_COUNTER_MAX, out=counts)
        for rule_projection_id, sensors in self.sensors.items():
            projection = self._projection(rule_projection_id)
            pre_trains = spikes[id(_root(projection.pre))]
            post_trains = spikes[id(_root(projection.post))]
            pre = [pre_trains[i] + self.delay_ms for i in _root_indices(projection.pre, projection.pre.size)]
            post = [post_trains[j] for j in _root_indices(projection.post, projection.post.size)]
            sensors.advance(pre, post)

    def _projection(self, key: int):
        for projection in self.mapping.state.projections:
            if id(projection) == key:
                return projection
        raise KeyError("projection of a correlation sensor is gone")

    def _sensors_of(self, projection) -> CorrelationSensors:
        try:
            return self.sensors[id(projection)]
        except KeyError:
            raise RuntimeError("this projection's synapse type carries no plasticity rule: its correlation "
                               "sensors are not read out") from None

    def read_correlation(self, projection) -> tuple[np.ndarray, np.ndarray]:
        """CADC read of the causal and acausal sensors of ``projection`` (n_pre, n_post), integer LSB."""
        return self._sensors_of(projection).read()

    def reset_correlation(self, projection, rows=None) -> None:
        self._sensors_of(projection).reset(rows)

    def rate_counters(self, population, reset: bool) -> np.ndarray:
        """Spikes per neuron of ``population`` since the last reset (saturating at 255)."""
        root = _root(population)
        if id(root) not in self.counters:
            raise RuntimeError("rate counters are read for the populations of a rule only (give the cell type "
                               "the plasticity rule)")
        counts = self.counters[id(root)]
        indices = _root_indices(population, population.size)
        values = counts[indices].copy()
        if reset:
            counts[indices] = 0
        return values
