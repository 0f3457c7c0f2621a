"""Populations on the emulated chip: ``pyNN.nest`` populations placed on neuron circuits.

A population of a supported neuron model takes neuron circuits in creation order. The parameters
the user sets are kept as *requested* values (what ``get()`` returns, like the configuration of a
real chip); NEST runs with the *realised* values: requested plus the circuit's fixed-pattern noise,
trial-to-trial noise and calibration correction (see :class:`~.chip_state.ChipSession`). Parameter
ranges are checked on every creation and every ``set()``.
"""

from __future__ import annotations

import numpy as np
import nest
from pyNN.nest import populations as _nest_populations
from pyNN.parameters import ParameterSpace, simplify

from . import emulator
from .errors import ChipLimitError, UnsupportedFeatureError

__all__ = ["Population", "PopulationView", "Assembly"]

_RANGE_TOLERANCE = 1e-9  # relative slack for unit-conversion round-off (e.g. nF -> pF -> nF)


def _as_list(variables) -> list:
    if isinstance(variables, str):
        return [variables]
    return list(variables)


class _ChipPopulationMixin:
    """What populations and views share: parameter store, range checks, recordable check."""

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)

    def _chip_root(self):
        return self.grandparent if hasattr(self, "parent") else self

    def _root_indices(self) -> np.ndarray:
        if hasattr(self, "parent"):
            return np.asarray(self.index_in_grandparent(np.arange(self.size)), dtype=int)
        return np.arange(self.size)

    @property
    def circuits(self) -> np.ndarray | None:
        """Neuron circuit of every cell (None for spike sources, which use no circuits)."""
        root = self._chip_root()
        if root._circuits is None:
            return None
        return root._circuits[self._root_indices()]

    def _set_parameters(self, parameter_space):
        root = self._chip_root()
        if root._circuits is None:          # spike sources: no analog parameters
            return super()._set_parameters(parameter_space)
        if "UNSUPPORTED" in parameter_space.keys():
            parameter_space.pop("UNSUPPORTED")
        parameter_space.evaluate(simplify=False)
        values = {name: np.asarray(value, dtype=float) for name, value in parameter_space.items()}
        root._update_requested(self._root_indices(), values)

    def _get_native_parameters(self, *names):
        root = self._chip_root()
        requested = getattr(root, "_requested", None)
        if not requested or not all(name in requested for name in names):
            return super()._get_native_parameters(*names)
        indices = self._root_indices()
        return ParameterSpace({name: simplify(requested[name][indices]) for name in names},
                              shape=(self.local_size,))

    def record(self, variables, to_file=None, sampling_interval=None, locations=None):
        if variables is not None:
            spec = emulator.current_chip().spec
            for variable in _as_list(variables):
                name = getattr(variable, "name", variable)
                if name not in spec.recordables:
                    raise UnsupportedFeatureError(spec.name, "recordable variable", repr(name),
                                                  f"one of {spec.recordables}")
        return super().record(variables, to_file=to_file, sampling_interval=sampling_interval,
                              locations=locations)


class Assembly(_nest_populations.Assembly):
    __doc__ = _nest_populations.Assembly.__doc__


class PopulationView(_ChipPopulationMixin, _nest_populations.PopulationView):
    __doc__ = _nest_populations.PopulationView.__doc__
    _assembly_class = Assembly


class Population(_ChipPopulationMixin, _nest_populations.Population):
    __doc__ = _nest_populations.Population.__doc__
    _assembly_class = Assembly

    def _create_cells(self):
        chip = emulator.current_chip()
        spec = chip.spec
        model = type(self.celltype).__name__
        self._circuits = None
        self._requested = {}
        if model in spec.spike_source_types:
            super()._create_cells()
            return
        if model not in spec.cell_types:
            supported = spec.cell_types + spec.spike_source_types
            raise UnsupportedFeatureError(spec.name, "cell type", model, f"one of {supported}")
        circuits = chip.allocate(self.size, self.label)
        try:
            super()._create_cells()
            native_names = self.celltype.get_native_names()
            nominal = _nest_populations.PopulationMixin._get_native_parameters(self, *native_names)
            nominal.evaluate(simplify=False)
            self._circuits = circuits
            self._update_requested(np.arange(self.size),
                                   {name: np.asarray(value, dtype=float)
                                    for name, value in nominal.items()})
        except Exception:
            chip.next_circuit -= self.size      # give the circuits back; the population does not exist
            raise
        chip.populations.append(self)

    # --- requested -> realised parameters ----------------------------------------------------------
    def _update_requested(self, indices: np.ndarray, values: dict) -> None:
        """Store new requested native values for cells ``indices`` (after the range check), realise them."""
        new = {name: array.copy() for name, array in self._requested.items()}
        for name, value in values.items():
            if name not in new:
                new[name] = np.full(self.size, np.nan)
            new[name][indices] = value
        self._check_ranges(new, indices)
        self._requested = new
        self._apply_realised(indices)

    def _check_ranges(self, native: dict, indices: np.ndarray) -> None:
        spec = emulator.current_chip().spec
        model = type(self.celltype).__name__
        ranges = spec.parameter_ranges.get(model, {})
        if not ranges:
            return
        native_space = ParameterSpace({name: values[indices] for name, values in native.items()},
                                      shape=(len(indices),))
        pynn_space = self.celltype.reverse_translate(native_space)
        pynn_space.evaluate(simplify=False)
        for name, (low, high) in ranges.items():
            if name not in pynn_space.keys():
                continue
            values = np.asarray(pynn_space[name], dtype=float)
            slack = _RANGE_TOLERANCE * max(abs(low), abs(high), 1.0)
            bad = (values < low - slack) | (values > high + slack)
            if np.any(bad):
                worst = values[bad][np.argmax(np.abs(values[bad] - (low + high) / 2))]
                unit = self.celltype.units.get(name, "")
                raise ChipLimitError(spec.name,
                                     f"parameter {name} of {model} (population {self.label!r})",
                                     f"{worst:g} {unit}".strip(), f"{low:g} .. {high:g} {unit}".strip())

    def _apply_realised(self, indices: np.ndarray | None = None) -> None:
        """Write the realised values of cells ``indices`` (all if None) into NEST."""
        chip = emulator.current_chip()
        indices = np.arange(self.size) if indices is None else np.unique(np.asarray(indices, dtype=int))
        if indices.size == 0:
            return
        requested = {name: values[indices] for name, values in self._requested.items()}
        realised = chip.realise(requested, self._circuits[indices])
        names = list(realised)
        status = [{name: float(realised[name][i]) for name in names} for i in range(indices.size)]
        nodes = self.node_collection if indices.size == self.size else self.node_collection[indices.tolist()]
        nodes.set(status)
        chip.configuration_changed = True

    def realised_parameters(self, *names: str) -> dict[str, np.ndarray]:
        """Native (NEST) values the emulated circuits actually run with, for inspection and tests."""
        names = names or tuple(self._requested)
        values = nest.GetStatus(self.node_collection, names)
        return {name: np.array([row[i] for row in values]) for i, name in enumerate(names)}
