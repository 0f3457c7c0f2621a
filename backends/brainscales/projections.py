"""Projections on the emulated chip: ``pyNN.nest`` projections whose synapses live in synapse rows.

Checked when a projection is created: synapse type, receptor type, short-term-plasticity mode,
delays, fan-in (synapses onto one neuron, all projections together) and weight sign and range.
``STDPMechanism`` projections (bss2) hold static NEST synapses whose weights the chip's plasticity
processors rewrite from the correlation sensors (:mod:`.plasticity`), at a row scale fixed by w_max.
Weights are then written as the chip holds them: n-bit integers times a per-row scale (one row = one
presynaptic cell of this projection), multiplied in NEST by the target circuit's synaptic-gain
mismatch. Every later weight write (``set(weight=...)``, ``connection.weight = ...``) is quantised the
same way; ``get('weight')`` returns the configured (quantised) weights. Weights onto
conductance-based cells are conductances (uS, magnitudes for both receptor types); onto
current-based cells (``IF_curr_exp``) currents in nA, negative for the inhibitory receptor as PyNN
requires, with their own range (:func:`~.chips.max_weight`).
"""

from __future__ import annotations

import nest
import numpy as np
from pyNN.nest import projections as _nest_projections
from pyNN.nest.standardmodels.synapses import StaticSynapse, STDPMechanism
from pyNN.space import Space

from . import emulator
from ..chips import max_weight, weight_unit
from .errors import ChipLimitError, UnsupportedFeatureError
from .plasticity import DEFAULT_STDP_SENSORS, StdpProgram, stdp_rule
from .quantisation import check_weight_range, quantise_rows, snap_to_rows
from .standardmodels import TsodyksMarkramSynapse

__all__ = ["Projection"]


def _values(connections, names: list[str]) -> dict[str, np.ndarray]:
    """Attributes of a NEST SynapseCollection as arrays (one entry per connection)."""
    if len(connections) == 0:
        return {name: np.array([]) for name in names}
    raw = connections.get(names)
    return {name: np.atleast_1d(np.asarray(raw[name], dtype=float)) for name in names}


def _circuits_of(cells) -> np.ndarray:
    """Neuron circuit of every cell of a Population, PopulationView or Assembly."""
    if hasattr(cells, "populations"):       # Assembly
        return np.concatenate([_circuits_of(p) for p in cells.populations])
    return cells.circuits


class Projection(_nest_projections.Projection):
    __doc__ = _nest_projections.Projection.__doc__
    _static_synapse_class = StaticSynapse

    def __init__(self, presynaptic_population, postsynaptic_population, connector,
                 synapse_type=None, source=None, receptor_type=None, space=Space(), label=None):  # noqa: B008 (PyNN's signature)
        chip = emulator.current_chip()
        spec = chip.spec
        synapse_type = synapse_type or self._static_synapse_class()
        model = type(synapse_type).__name__
        self._stdp_rule = None
        self._stdp_scale_int = None
        if isinstance(synapse_type, STDPMechanism):
            # the PPU runs it (see .plasticity): NEST only holds static synapses whose weights it rewrites
            self._stdp_rule = stdp_rule(synapse_type, spec)
            synapse_type = self._static_synapse_for(synapse_type, postsynaptic_population, receptor_type)
            model = type(synapse_type).__name__
        if model not in spec.synapse_types or not isinstance(synapse_type, (StaticSynapse,
                                                                            TsodyksMarkramSynapse)):
            raise UnsupportedFeatureError(spec.name, "synapse type", model, f"one of {spec.synapse_types}")
        if receptor_type not in (None, "default") and receptor_type not in spec.receptor_types:
            raise UnsupportedFeatureError(spec.name, "receptor type", repr(receptor_type),
                                          f"one of {spec.receptor_types}")
        post_circuits = _circuits_of(postsynaptic_population)
        if post_circuits is None:
            raise UnsupportedFeatureError(spec.name, "postsynaptic cells", "spike sources",
                                          "neurons on the chip")
        self._post_circuits = post_circuits
        self._conductance_based = bool(postsynaptic_population.conductance_based)
        inhibitory = receptor_type == "inhibitory"
        # NEST: negative weights are inhibitory for both kinds; PyNN users give current-based
        # inhibitory weights as negative numbers and conductances as magnitudes.
        self._nest_sign = -1.0 if inhibitory else 1.0
        self._user_sign = -1.0 if (inhibitory and not self._conductance_based) else 1.0
        self._check_homogeneous_parameters(synapse_type)
        self._row_scale_int = None
        self._weight_record = (np.array([]), np.array([]))
        self._n_clipped = 0
        super().__init__(presynaptic_population, postsynaptic_population, connector, synapse_type,
                         source, receptor_type, space, label)
        self._row_scale_int = np.ones(self.pre.size, dtype=int)
        self._check_and_configure()
        chip.projections.append(self)
        if self._stdp_rule is not None:
            if not hasattr(self.pre, "all_cells") or not hasattr(self.post, "all_cells"):
                raise UnsupportedFeatureError(spec.name, "STDP projection endpoints", "an Assembly",
                                              "a Population or PopulationView")
            program = StdpProgram(self, self._stdp_rule, chip.sensor_parameters or DEFAULT_STDP_SENSORS, chip,
                                  chip.next_sensor_row, emulator.state.min_delay)
            chip.next_sensor_row += self.pre.size
            chip.ppu_programs.append(program)

    def _static_synapse_for(self, stdp, post, receptor_type) -> StaticSynapse:
        """The static synapse NEST runs for an STDP projection, and the fixed row scale that fits w_max."""
        chip = emulator.current_chip()
        conductance_based = bool(getattr(post, "conductance_based", True))
        unit, unit_name = weight_unit(chip.spec, conductance_based)
        rule = self._stdp_rule
        if rule.w_max > max_weight(chip.spec, conductance_based):
            raise ChipLimitError(chip.spec.name, "STDP w_max", f"{rule.w_max:g} {unit_name}",
                                 f"at most {max_weight(chip.spec, conductance_based):g} {unit_name}")
        self._stdp_scale_int = int(np.clip(np.ceil(rule.w_max / (unit * chip.spec.max_weight_int) * (1 - 1e-12)),
                                           1, chip.spec.max_row_scale_int))
        values = {name: stdp.parameter_space[name].base_value for name in ("weight", "delay")
                  if name in stdp.parameter_space.keys() and stdp.parameter_space[name].base_value is not None}
        return StaticSynapse(**values)

    def _apply_stdp(self, table: dict, c_plus: np.ndarray, c_minus: np.ndarray, rule) -> None:
        """The PPU's weight update of one period (c+ / c-: causal / acausal pairs at zero delay)."""
        chip = emulator.current_chip()
        w = self._configured_weights(table)
        if rule.multiplicative:
            dw = rule.a_plus * (rule.w_max - w) * c_plus - rule.a_minus * (w - rule.w_min) * c_minus
        else:
            dw = rule.w_max * (rule.a_plus * c_plus - rule.a_minus * c_minus)
        if chip.quantize_weights:
            unit, _ = weight_unit(chip.spec, self._conductance_based)
            step = self._stdp_scale_int * unit
            lowest = np.ceil(rule.w_min / step - 1e-9)
            highest = min(np.floor(rule.w_max / step + 1e-9), chip.spec.max_weight_int)
            new = np.clip(np.rint(w / step) + np.rint(dw / step), lowest, highest) * step
        else:
            new = np.clip(w + dw, rule.w_min, rule.w_max)
        self._write_weights(table, new)

    @property
    def nest_connections(self):
        # Always fresh: NEST renumbers connections of a synapse model when another projection adds
        # some, and pyNN.nest's one global "stale" flag only refreshes the first projection that asks.
        if len(self._sources) == 0:
            return []
        return nest.GetConnections(nest.NodeCollection(sorted(self._sources)),
                                   synapse_model=self.nest_synapse_model,
                                   synapse_label=self.nest_synapse_label)

    # --- checks at creation ------------------------------------------------------------------------
    def _table(self, extra: tuple = ()) -> dict[str, np.ndarray]:
        connections = self.nest_connections
        names = ["source", "target", "weight"] + list(extra)
        table = _values(connections, names) if len(connections) else {n: np.array([]) for n in names}
        table["connections"] = connections
        table["pre"] = np.asarray(self.pre.id_to_index(table["source"].astype(int)), dtype=int) \
            if table["source"].size else np.array([], dtype=int)
        table["post"] = np.asarray(self.post.id_to_index(table["target"].astype(int)), dtype=int) \
            if table["target"].size else np.array([], dtype=int)
        return table

    def _check_homogeneous_parameters(self, synapse_type) -> None:
        """Check single-valued weight, delay and STP parameters before anything reaches NEST."""
        chip = emulator.current_chip()
        values = {}
        for name in ("weight", "delay", "tau_rec", "tau_facil"):
            if name in synapse_type.parameter_space.keys():
                base = synapse_type.parameter_space[name].base_value
                if isinstance(base, (int, float, np.number)) and not isinstance(base, bool):
                    values[name] = float(base)
        magnitude = self._user_sign * values.get("weight", 0.0)
        # a wrongly signed current-based weight is left to PyNN's own check (its ConnectionError
        # names the rule); conductances are magnitudes, a negative one gets the chip's sign error
        if "weight" in values and (magnitude >= 0 or self._conductance_based):
            check_weight_range(np.array([magnitude]), chip.spec, chip.clip_weights,
                               conductance_based=self._conductance_based)
        if "delay" in values:
            self._check_delays([values["delay"]])
        if "tau_rec" in values and "tau_facil" in values:
            self._check_stp(np.array([values["tau_rec"]]), np.array([values["tau_facil"]]))

    def _convergent_connect(self, presynaptic_indices, postsynaptic_index, location_selector=None,
                            **connection_parameters):
        if "delay" in connection_parameters:      # before NEST sees it (NEST rejects delays > max_delay)
            self._check_delays(np.atleast_1d(connection_parameters["delay"]))
        super()._convergent_connect(presynaptic_indices, postsynaptic_index, location_selector,
                                    **connection_parameters)

    def _check_and_configure(self) -> None:
        emulator.current_chip()  # raises if setup() has not been called
        extra = ("delay",)
        if isinstance(self.synapse_type, TsodyksMarkramSynapse):
            extra += ("tau_rec", "tau_fac")
        table = self._table(extra)
        if table["pre"].size == 0:
            return
        self._check_delays(table["delay"])
        if "tau_rec" in table:
            self._check_stp(table["tau_rec"], table["tau_fac"])
        self._check_fan_in(table["post"])
        self._write_weights(table, self._nest_sign * table["weight"] / 1000.0)

    def _check_delays(self, delays) -> None:
        spec = emulator.current_chip().spec
        delays = np.asarray(delays, dtype=float)
        if delays.size == 0:
            return
        if not spec.delays_allowed:
            fixed = emulator.state.min_delay
            off = np.abs(delays - fixed) > 1e-9
            if np.any(off):
                raise UnsupportedFeatureError(spec.name, "synaptic delay (the chip has no configurable "
                                              "delays)", f"{delays[off][0]:g} ms",
                                              f"only the fixed minimal delay {fixed:g} ms "
                                              "(leave the delay unset)")
            return
        low, high = spec.delay_range_ms
        low = max(low, emulator.state.min_delay)
        bad = (delays < low - 1e-9) | (delays > high + 1e-9)
        if np.any(bad):
            raise ChipLimitError(spec.name, "synaptic delay", f"{delays[bad][0]:g} ms", f"{low:g} .. {high:g} ms")

    def _check_stp(self, tau_rec, tau_facil) -> None:
        spec = emulator.current_chip().spec
        if not spec.stp_exclusive:
            return
        both = (np.asarray(tau_facil) > 0) & (np.asarray(tau_rec) > emulator.state.dt)
        if np.any(both):
            i = int(np.argmax(both))
            raise UnsupportedFeatureError(
                spec.name, "short-term plasticity mode",
                f"depression and facilitation together (tau_rec={tau_rec[i]:g} ms, tau_facil={tau_facil[i]:g} ms)",
                "depression (tau_facil = 0) or facilitation (tau_rec <= time step), not both")

    def _check_fan_in(self, post_indices: np.ndarray) -> None:
        chip = emulator.current_chip()
        spec = chip.spec
        circuits = self._post_circuits[post_indices]
        new_fan_in = chip.fan_in + np.bincount(circuits, minlength=spec.n_neurons)
        if np.any(new_fan_in > spec.max_fan_in):
            circuit = int(np.argmax(new_fan_in))
            position = int(np.flatnonzero(self._post_circuits == circuit)[0])
            raise ChipLimitError(spec.name, f"fan-in of neuron {position} of {self.post.label!r}",
                                 f"{new_fan_in[circuit]} synapse rows",
                                 f"at most {spec.max_fan_in}")
        chip.fan_in = new_fan_in

    # --- weights -----------------------------------------------------------------------------------
    def _write_weights(self, table: dict, requested: np.ndarray) -> None:
        """Quantise ``requested`` (one magnitude per connection of ``table``, uS or nA) and write it to NEST."""
        chip = emulator.current_chip()
        spec = chip.spec
        weights, n_clipped = check_weight_range(requested, spec, chip.clip_weights,
                                                conductance_based=self._conductance_based)
        if chip.quantize_weights and self._stdp_scale_int is not None:
            # STDP rows keep the scale that fits w_max: the PPU writes integers at a fixed row scale
            self._row_scale_int = np.full(self.pre.size, self._stdp_scale_int, dtype=int)
            configured = snap_to_rows(weights, table["pre"], self._row_scale_int, spec, self._conductance_based)
        elif chip.quantize_weights:
            configured, self._row_scale_int = quantise_rows(weights, table["pre"], self.pre.size, spec,
                                                            self._conductance_based)
        else:
            configured = weights
        gain = chip.synaptic_gain(self.receptor_type, self._post_circuits[table["post"]])
        table["connections"].set(weight=(self._nest_sign * 1000.0 * configured * gain).tolist())
        self._weight_record = (np.asarray(requested, dtype=float), configured)
        self._n_clipped = n_clipped
        chip.configuration_changed = True

    def _configured_weights(self, table: dict) -> np.ndarray:
        """The configured weight magnitudes (uS or nA) of the connections in ``table``, from NEST's realised ones."""
        chip = emulator.current_chip()
        gain = chip.synaptic_gain(self.receptor_type, self._post_circuits[table["post"]])
        weights = self._nest_sign * table["weight"] / 1000.0 / gain
        if chip.quantize_weights and weights.size:
            weights = snap_to_rows(weights, table["pre"], self._row_scale_int, chip.spec, self._conductance_based)
        return weights

    def _set_attributes(self, parameter_space):
        if "delay" in parameter_space.keys():
            delay = parameter_space["delay"]
            delay.shape = (self.pre.size, self.post.size)
            table = self._table()
            self._check_delays(np.asarray(delay.evaluate(simplify=False))[table["pre"], table["post"]]
                               if table["pre"].size else [])
            parameter_space["delay"] = delay
        if "weight" in parameter_space.keys():
            weight = parameter_space.pop("weight")
            weight.shape = (self.pre.size, self.post.size)
            matrix = np.broadcast_to(np.asarray(weight.evaluate(simplify=False), dtype=float),
                                     (self.pre.size, self.post.size))
            table = self._table()
            if table["pre"].size:
                new = self._user_sign * matrix[table["pre"], table["post"]] / 1000.0  # native nS/pA -> magnitude
                current = self._configured_weights(table)
                requested = np.where(np.isnan(new), self._requested_or(current), new)
                self._write_weights(table, requested)
        if len(parameter_space.keys()):
            if isinstance(self.synapse_type, TsodyksMarkramSynapse):
                self._check_set_stp(parameter_space)
            super()._set_attributes(parameter_space)

    def _requested_or(self, current: np.ndarray) -> np.ndarray:
        requested, _ = self._weight_record
        return requested if requested.shape == current.shape else current

    def _check_set_stp(self, parameter_space) -> None:
        table = self._table(("tau_rec", "tau_fac"))
        values = {}
        for native in ("tau_rec", "tau_fac"):
            if native in parameter_space.keys():
                lazy = parameter_space[native]
                lazy.shape = (self.pre.size, self.post.size)
                values[native] = np.broadcast_to(np.asarray(lazy.evaluate(simplify=False), dtype=float),
                                                 (self.pre.size, self.post.size))[table["pre"], table["post"]]
                parameter_space[native] = lazy
            else:
                values[native] = table[native]
        self._check_stp(values["tau_rec"], values["tau_fac"])

    def _get_attributes_as_list(self, names):
        values = super()._get_attributes_as_list(names)
        if "weight" in names and values:
            column = names.index("weight")
            weights = self._user_sign * self._configured_weights(self._table())
            values = [row[:column] + (float(w),) + row[column + 1:] for row, w in zip(values, weights)]
        return values

    def _get_attributes_as_arrays(self, names, multiple_synapses="sum"):
        arrays = super()._get_attributes_as_arrays(names, multiple_synapses)
        for position, name in enumerate(names):
            if name.rstrip("s") != "weight":
                continue
            table = self._table()
            weights = self._user_sign * self._configured_weights(table)
            combine = self.MULTI_SYNAPSE_OPERATIONS[multiple_synapses]
            matrix = np.full((self.pre.size, self.post.size), np.nan)
            for i, j, w in zip(table["pre"], table["post"], weights):
                matrix[i, j] = w if np.isnan(matrix[i, j]) else combine(matrix[i, j], w)
            arrays[position] = matrix
        return arrays

    # --- single connections ------------------------------------------------------------------------
    def __getitem__(self, i):
        if isinstance(i, int):
            if i < len(self):
                return emulator.Connection(self, i)
            raise IndexError("%d > %d" % (i, len(self) - 1))
        if isinstance(i, slice):
            return [emulator.Connection(self, j) for j in range(*i.indices(len(self)))]
        raise TypeError(f"index must be an int or a slice, got {type(i).__name__}")

    @property
    def connections(self):
        """Iterator over the connections of this projection, as chip-aware Connection objects."""
        return (emulator.Connection(self, i) for i in range(len(self)))

    def _connection_weight(self, index: int) -> float:
        return float(self._user_sign * self._configured_weights(self._table())[index])

    def _set_connection_weight(self, index: int, weight: float) -> None:
        table = self._table()
        requested = self._requested_or(self._configured_weights(table)).copy()
        requested[index] = self._user_sign * float(weight)
        self._write_weights(table, requested)

    # --- report ------------------------------------------------------------------------------------
    def quantisation_summary(self) -> dict:
        """Requested vs configured weights of the last write: counts and errors (in ``unit``: uS or nA;
        clipped weights excluded)."""
        requested, configured = self._weight_record
        kept = requested <= max_weight(emulator.current_chip().spec, self._conductance_based)
        error = np.abs(configured - requested)[kept]
        pre = self._table()["pre"] if requested.size else np.array([], dtype=int)
        return {"unit": "uS" if self._conductance_based else "nA",
                "n_weights": int(requested.size), "n_clipped": int(self._n_clipped),
                "abs_error_sum": float(error.sum()), "abs_error_max": float(error.max(initial=0.0)),
                "requested_sum": float(requested[kept].sum()), "n_rows": int(np.unique(pre).size)}

