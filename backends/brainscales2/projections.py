"""Projections of the BrainScaleS-2 dialect: connections with integer weights and no delays.

A connection's weight is an integer whose sign follows the receptor (positive: excitatory receptor
or conductance-based neuron; negative: inhibitory receptor of a current-based neuron). Its magnitude
is realised by ``ceil(|w| / 63)`` hardware synapses of at most 63 each; every one of them occupies a
synapse row of the target neuron (fan-in, at most 256 rows per neuron, checked when the run places
the network). Delays must be 0. Non-integer weights are refused, never rounded silently.
"""

from __future__ import annotations

import numpy as np
from pyNN import common, errors
from pyNN.space import Space

from . import simulator
from .plasticity_rules import PlasticityRuleHandle
from .populations import check_population_view
from .standardmodels.synapses import StaticSynapse

__all__ = ["Projection", "Connection"]


def _check_weight(projection, weight) -> int:
    value = float(weight)
    if not np.isfinite(value) or value != round(value):
        raise ValueError(f"weights are integers on BrainScaleS-2 (0 .. 63 per synapse, sign by receptor type), "
                         f"got {weight!r}")
    value = int(round(value))
    conductance_based = bool(getattr(projection.post, "conductance_based", False))
    inhibitory = projection.receptor_type == "inhibitory"
    if (value < 0 and (conductance_based or not inhibitory)) or (value > 0 and inhibitory and not conductance_based):
        raise errors.ConnectionError(
            "Weights must be positive for conductance-based and/or excitatory synapses and negative for "
            f"inhibitory synapses onto current-based neurons; got {value} for receptor {projection.receptor_type!r}")
    return value


class Connection(common.Connection):
    """One connection: pre/post indices, an integer ``weight``, ``delay`` 0."""

    def __init__(self, projection, pre, post, weight, delay):
        self.projection = projection
        self.presynaptic_index = int(pre)
        self.postsynaptic_index = int(post)
        self._weight = _check_weight(projection, weight)
        self._set_delay(delay)

    def _get_weight(self) -> int:
        return self._weight

    def _set_weight(self, value) -> None:
        self._weight = _check_weight(self.projection, value)
        self.projection._weights_changed = True

    def _get_delay(self) -> float:
        return 0.0

    def _set_delay(self, value) -> None:
        if value is not None and float(value) != 0.0:
            raise ValueError(f"Setting the delay unequal 0 is not supported: the chip has no programmable "
                             f"delays (requested {value} ms)")

    weight = property(_get_weight, _set_weight)
    delay = property(_get_delay, _set_delay)

    def as_tuple(self, *attribute_names):
        return tuple(getattr(self, name) for name in attribute_names)


class Projection(common.Projection):
    __doc__ = common.Projection.__doc__
    _simulator = simulator
    _static_synapse_class = StaticSynapse

    def __init__(self, presynaptic_neurons, postsynaptic_neurons, connector, synapse_type=None, source=None,
                 receptor_type=None, space=None, label=None):
        if not simulator.state.active:
            raise RuntimeError("call cortexsim.backends.brainscales2.setup() before creating a Projection")
        check_population_view(presynaptic_neurons)
        check_population_view(postsynaptic_neurons)
        if getattr(postsynaptic_neurons.celltype, "receptor_types", ()) == ():
            raise errors.ConnectionError("the postsynaptic cells of a projection must be neurons on the chip")
        super().__init__(presynaptic_neurons, postsynaptic_neurons, connector, synapse_type, source,
                         receptor_type, Space() if space is None else space, label)
        self.connections = []
        self._weights_changed = True
        connector.connect(self)
        self.connections.sort(key=lambda c: (c.presynaptic_index, c.postsynaptic_index))
        simulator.state.projections.append(self)
        simulator.state.changed_topology = True
        rule = getattr(self.synapse_type, "plasticity_rule", None)
        if rule is not None:
            rule._add_projection(self)

    def __len__(self):
        return len(self.connections)

    def __getitem__(self, i):
        return self.connections[i]

    def _convergent_connect(self, presynaptic_indices, postsynaptic_index, location_selector=None,
                            **connection_parameters):
        if location_selector is not None:
            from ..brainscales.errors import UnsupportedFeatureError
            raise UnsupportedFeatureError("bss2", "not supported by the emulator: connection locations of "
                                          "multi-compartment neurons", repr(location_selector), "None")
        pre_indices = np.atleast_1d(np.asarray(presynaptic_indices, dtype=int))
        n = pre_indices.size
        weights = np.broadcast_to(np.asarray(connection_parameters.get("weight", 0), dtype=float), (n,))
        delays = np.broadcast_to(np.asarray(connection_parameters.get("delay", 0.0), dtype=float), (n,))
        for pre, weight, delay in zip(pre_indices.tolist(), weights.tolist(), delays.tolist()):
            self.connections.append(Connection(self, pre, postsynaptic_index, weight, delay))
        simulator.state.changed_topology = True

    def _set_attributes(self, parameter_space):
        parameter_space.evaluate(simplify=False)
        for name, value in parameter_space.items():
            if name not in ("weight", "delay"):
                raise errors.NonExistentParameterError(name, type(self.synapse_type).__name__, ["weight", "delay"])
            array = np.broadcast_to(np.asarray(value, dtype=float), self.shape)
            for connection in self.connections:
                entry = array[connection.presynaptic_index, connection.postsynaptic_index]
                if not np.isnan(entry):
                    setattr(connection, name, entry)

    def get_data(self, observable: str) -> list:
        """Recorded data of a plasticity-rule observable: one list per run of timed entries.

        Raises
        ------
        RuntimeError
            If the synapse type has no plasticity rule, the rule has no such observable, or no run
            has happened yet.
        """
        if not isinstance(self.synapse_type, PlasticityRuleHandle) or self.synapse_type.plasticity_rule is None:
            raise RuntimeError("this projection's synapse type has no plasticity rule, hence no observables")
        rule = self.synapse_type.plasticity_rule
        if observable not in rule.observables:
            raise RuntimeError(f"the plasticity rule has no observable {observable!r}; "
                               f"it has {sorted(rule.observables)}")
        return rule._data_of(observable, self)

    def integer_weights(self) -> np.ndarray:
        """Signed integer weights of all connections (in ``connections`` order)."""
        return np.array([c.weight for c in self.connections], dtype=int)
