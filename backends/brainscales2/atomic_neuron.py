"""The configuration of one neuron circuit: BrainScaleS-2's ``AtomicNeuron``, flat and nested.

``HXNeuron`` parameters are the circuit's configuration flattened as ``<member>_<attribute>``
(``leak_v_leak``, ``threshold_enable``, ...), as in BrainScaleS-2's own PyNN package. The calibrated
cell types hand out the same configuration as nested objects (``pop.actual_hwparams[0].leak.v_leak =
1022``). :data:`PARAMETERS` is the table of both: name, default, kind and allowed range.

Kinds: ``"analog"`` (CapMem DAC value, integer 0 .. 1022), ``"bool"`` (switch), ``"digital"``
(integer with its own range: capacitor 0 .. 63, refractory counter 0 .. 255, ...).
:data:`UNSUPPORTED_SWITCHES` are circuit features the emulator does not have; switching one on raises
:class:`~cortexsim.backends.brainscales.UnsupportedFeatureError` naming it ("not supported by the
emulator").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

__all__ = ["Parameter", "PARAMETERS", "DEFAULTS", "UNSUPPORTED_SWITCHES", "AtomicNeuron", "check_codes"]


@dataclass(frozen=True)
class Parameter:
    """One configurable entry of a neuron circuit: ``member.attribute``, its kind, default and range."""

    member: str
    attribute: str
    kind: str
    default: float | bool
    low: int = 0
    high: int = 1022

    @property
    def name(self) -> str:
        return f"{self.member}_{self.attribute}"


def _analog(member, attribute, default=0):
    return Parameter(member, attribute, "analog", default, 0, 1022)


def _switch(member, attribute, default=False):
    return Parameter(member, attribute, "bool", default, 0, 1)


def _digital(member, attribute, high, default=0):
    return Parameter(member, attribute, "digital", default, 0, high)


def _synaptic_input(member):
    return [_switch(member, "enable"), _analog(member, "i_bias_tau"), _analog(member, "i_bias_coba"),
            _analog(member, "i_shift_reference"), _analog(member, "i_bias_gm"),
            _switch(member, "enable_small_capacitance", True), _switch(member, "enable_high_resistance"),
            _switch(member, "enable_coba_mode"), _analog(member, "v_rev_coba")]


#: Every configurable circuit parameter, in the order of the hardware's configuration object.
PARAMETERS: tuple[Parameter, ...] = tuple(
    _synaptic_input("excitatory_input") + _synaptic_input("inhibitory_input") + [
        _analog("leak", "v_leak"), _analog("leak", "i_bias"), _switch("leak", "enable_degeneration"),
        _switch("leak", "enable_division"), _switch("leak", "enable_multiplication"),
        _analog("reset", "v_reset"), _analog("reset", "i_bias"), _switch("reset", "enable_degeneration"),
        _switch("reset", "enable_division"), _switch("reset", "enable_multiplication"),
        _switch("threshold", "enable"), _analog("threshold", "v_threshold"),
        _switch("multicompartment", "connect_soma"), _switch("multicompartment", "connect_soma_right"),
        _switch("multicompartment", "connect_right"), _switch("multicompartment", "connect_vertical"),
        _switch("multicompartment", "enable_conductance"),
        _switch("multicompartment", "enable_conductance_division"),
        _switch("multicompartment", "enable_conductance_multiplication"), _analog("multicompartment", "i_bias_nmda"),
        _switch("constant_current", "enable"), _analog("constant_current", "i_offset"),
        _digital("constant_current", "type", 1),
        _digital("membrane_capacitance", "capacitance", 63),
        _switch("adaptation", "enable"), _switch("adaptation", "enable_pulse"), _switch("adaptation", "invert_a"),
        _switch("adaptation", "invert_b"), _analog("adaptation", "v_ref"), _analog("adaptation", "i_bias_tau"),
        _analog("adaptation", "i_bias_a"), _analog("adaptation", "i_bias_b"), _analog("adaptation", "v_leak"),
        _switch("exponential", "enable"), _analog("exponential", "v_exp"), _analog("exponential", "i_bias"),
        _switch("event_routing", "enable_bypass_excitatory"), _switch("event_routing", "enable_bypass_inhibitory"),
        _digital("event_routing", "address", 255), _switch("event_routing", "enable_post_overwrite"),
        _switch("readout", "enable_unbuffered_access"),
        _digital("refractory_period", "input_clock", 1), _digital("refractory_period", "reset_holdoff", 15),
        _digital("refractory_period", "refractory_time", 255), _switch("refractory_period", "enable_pause"),
        _switch("bayesian", "enable"), _switch("bayesian", "connect_fire_vertical"),
        _switch("bayesian", "connect_fire_to_right"), _switch("bayesian", "connect_fire_from_right"),
        _switch("bayesian", "enable_master", True), _switch("bayesian", "enable_slave"),
        _switch("bayesian", "enable_0"), _switch("bayesian", "enable_1"),
    ])

BY_NAME = {p.name: p for p in PARAMETERS}

#: Flat defaults: the "silent" neuron (all DAC values 0, threshold comparator off, inputs off).
DEFAULTS: dict = {p.name: (bool(p.default) if p.kind == "bool" else float(p.default)) for p in PARAMETERS}

#: Switches (and non-default values) of features the emulator does not have -> the feature's name.
UNSUPPORTED_SWITCHES: dict = {
    **{f"multicompartment_{a}": "multi-compartment neurons (multicompartment_* switches)"
       for a in ("connect_soma", "connect_soma_right", "connect_right", "connect_vertical", "enable_conductance")},
    "adaptation_enable": "adaptation (adaptation_enable)",
    "exponential_enable": "the exponential term (exponential_enable)",
    "event_routing_enable_bypass_excitatory": "neuron bypass mode (event_routing_enable_bypass_excitatory)",
    "event_routing_enable_bypass_inhibitory": "neuron bypass mode (event_routing_enable_bypass_inhibitory)",
    "event_routing_enable_post_overwrite": "external post pulses (event_routing_enable_post_overwrite)",
    "bayesian_enable": "Bayesian extensions (bayesian_enable)",
}


def check_codes(values: dict, feature_error) -> None:
    """Check flat parameter arrays against :data:`PARAMETERS`; raise before anything is built.

    Parameters
    ----------
    values : dict
        Parameter name -> array of values (one per neuron).
    feature_error : callable
        ``feature_error(feature)`` returns the exception to raise for an unsupported feature.

    Raises
    ------
    ValueError
        A value outside its range or not an integer (names the parameter and the range).
    """
    for name, value in values.items():
        spec = BY_NAME.get(name)
        if spec is None:
            continue
        array = np.asarray(value, dtype=float)
        if spec.kind != "bool":
            bad = (array < spec.low) | (array > spec.high) | (array != np.rint(array))
            if np.any(bad):
                raise ValueError(f"HXNeuron parameter {name} must be an integer in {spec.low} .. {spec.high}, "
                                 f"got {array[bad][0]:g}")
        if name in UNSUPPORTED_SWITCHES and np.any(array.astype(bool)):
            raise feature_error(UNSUPPORTED_SWITCHES[name])
    both = np.asarray(values.get("excitatory_input_enable_coba_mode", False), dtype=bool)
    other = np.asarray(values.get("inhibitory_input_enable_coba_mode", False), dtype=bool)
    if np.any(both != other):
        raise feature_error("mixed current- and conductance-based synaptic inputs on one neuron "
                            "(excitatory_input_enable_coba_mode != inhibitory_input_enable_coba_mode)")


class _Member:
    """One member of an :class:`AtomicNeuron` (``leak``, ``threshold``, ...): attributes by name."""

    def __init__(self, owner: "AtomicNeuron", member: str):
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_member", member)

    def __getattr__(self, attribute):
        name = f"{self._member}_{attribute}"
        if name not in BY_NAME:
            raise AttributeError(f"{self._member} has no attribute {attribute!r}")
        return self._owner._values[name]

    def __setattr__(self, attribute, value):
        name = f"{self._member}_{attribute}"
        spec = BY_NAME.get(name)
        if spec is None:
            raise AttributeError(f"{self._member} has no attribute {attribute!r}")
        if spec.kind == "bool":
            value = bool(value)
        else:
            value = int(value)
            if not spec.low <= value <= spec.high:
                raise ValueError(f"{name} must lie in {spec.low} .. {spec.high}, got {value}")
        self._owner._values[name] = value

    def __repr__(self):
        items = ", ".join(f"{p.attribute}={self._owner._values[p.name]!r}" for p in PARAMETERS
                          if p.member == self._member)
        return f"{self._member}({items})"


class AtomicNeuron:
    """Configuration of one neuron circuit with nested access (``neuron.leak.v_leak = 1022``).

    Parameters
    ----------
    values : dict, optional
        Flat parameter name -> value; missing ones take :data:`DEFAULTS`.

    Examples
    --------
    >>> neuron = AtomicNeuron({"leak_v_leak": 700})
    >>> neuron.leak.v_leak, neuron.threshold.enable
    (700, False)
    >>> neuron.leak.v_leak = 1022
    >>> neuron.as_dict()["leak_v_leak"]
    1022
    """

    MEMBERS = tuple(dict.fromkeys(p.member for p in PARAMETERS))

    def __init__(self, values: dict | None = None):
        self._values = {p.name: (bool(p.default) if p.kind == "bool" else int(p.default)) for p in PARAMETERS}
        for name, value in (values or {}).items():
            if name in BY_NAME:
                member, attribute = BY_NAME[name].member, BY_NAME[name].attribute
                setattr(getattr(self, member), attribute, value)

    def __getattr__(self, member):
        if member in AtomicNeuron.MEMBERS:
            return _Member(self, member)
        raise AttributeError(f"AtomicNeuron has no member {member!r}")

    def as_dict(self) -> dict:
        """Flat parameter name -> value."""
        return dict(self._values)

    def __eq__(self, other):
        return isinstance(other, AtomicNeuron) and self._values == other._values

    def __deepcopy__(self, memo):
        return AtomicNeuron(copy.deepcopy(self._values, memo))

    def __repr__(self):
        return "AtomicNeuron(" + ", ".join(repr(getattr(self, m)) for m in self.MEMBERS) + ")"
