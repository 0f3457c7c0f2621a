"""Populations of the BrainScaleS-2 dialect: parameters in hardware units, recording with ADC devices.

Parameters are stored as given (hardware codes, calibration targets, spike times in hardware ms) and
checked against their ranges when set; nothing reaches the emulated chip before a run (see
:mod:`.mapping`). ``record(variables, device="madc")`` chooses the read-out of analog variables:
the MADC (fast, at most one neuron per readout line: one even and one odd neuron circuit) or the CADC
(every neuron, slow, 8 bit); one analog variable per neuron.
"""

from __future__ import annotations

import numpy as np
from pyNN import common, errors
from pyNN.parameters import ParameterSpace, simplify

from . import atomic_neuron, simulator
from .recording import Recorder
from .standardmodels.cells import CalibHXNeuronCuba, HXNeuron, SpikeSourcePoissonOnChip

__all__ = ["Population", "PopulationView", "Assembly"]


def _unsupported(feature: str):
    from ..brainscales.errors import UnsupportedFeatureError
    return UnsupportedFeatureError("bss2", f"not supported by the emulator: {feature}", "it", "the emulated circuit")


def validate_parameters(celltype, values: dict) -> None:
    """Check the (native == standard) parameter arrays of one cell type; errors name the parameter."""
    if isinstance(celltype, HXNeuron):
        atomic_neuron.check_codes(values, _unsupported)
    elif isinstance(celltype, CalibHXNeuronCuba):
        full = {name: values.get(name, default) for name, default in celltype.default_parameters.items()}
        celltype.check_targets(full)
    elif isinstance(celltype, SpikeSourcePoissonOnChip):
        for name in ("rate", "seed"):
            if name in values:
                array = np.asarray(values[name], dtype=float)
                if np.any(array < 0) or not np.all(np.isfinite(array)):
                    raise ValueError(f"SpikeSourcePoissonOnChip {name} must be finite and >= 0, got {array}")
    elif "rate" in values or "duration" in values:
        for name in ("rate", "start", "duration"):
            if name in values:
                array = np.asarray(values[name], dtype=float)
                if np.any(array < 0) or np.any(np.isnan(array)):
                    raise ValueError(f"SpikeSourcePoisson {name} must be >= 0 (hardware ms or Hz), got {array}")


class _DialectMixin:
    """What populations and views share: recording with a device, calibration results."""

    def record(self, variables, to_file=None, sampling_interval=None, locations=None, *, device: str = "madc"):
        """Record ``variables`` ("spikes", "v", "exc_synin", "inh_synin"; None stops all recording).

        Parameters
        ----------
        device : {"madc", "cadc"}
            Read-out of analog variables: MADC (fast, one neuron per readout line: at most one even
            and one odd neuron circuit per run) or CADC (all neurons, slow, 8 bit).
        """
        if variables is None:
            self.recorder.reset()
        else:
            ids = self.all_cells if self._record_filter is None else self._record_filter
            self.recorder.record(variables, ids, sampling_interval, locations, device=device)
        simulator.state.changed_topology = True
        if isinstance(to_file, str):
            self.recorder.file = to_file
            simulator.state.write_on_end.append((self, variables, self.recorder.file))

    def _calibrated(self, name):
        celltype = self.celltype
        if not isinstance(celltype, CalibHXNeuronCuba):
            raise AttributeError(f"{name} exists for calibrated cell types only, not for {type(celltype).__name__}")
        return getattr(celltype, name)

    def _indices_in_root(self) -> np.ndarray:
        if hasattr(self, "parent"):
            return np.asarray(self.index_in_grandparent(np.arange(self.size)), dtype=int)
        return np.arange(self.size)

    @property
    def calib_target(self):
        """Calibration targets of the last calibration (ParameterSpace); after ``run``/PREPARE."""
        return self._calibrated("calib_target")

    @property
    def calib_hwparams(self) -> list:
        """Circuit configurations the last calibration produced, one per neuron of this population/view."""
        values = self._calibrated("calib_hwparams")
        return [values[i] for i in self._indices_in_root()]

    @property
    def actual_hwparams(self) -> tuple:
        """Circuit configurations the runs use, editable (``pop.actual_hwparams[0].leak.v_leak = 1022``)."""
        values = self._calibrated("actual_hwparams")
        return tuple(values[i] for i in self._indices_in_root())


class Assembly(common.Assembly):
    _simulator = simulator


class PopulationView(_DialectMixin, common.PopulationView):
    __doc__ = common.PopulationView.__doc__
    _assembly_class = Assembly
    _simulator = simulator

    def _get_parameters(self, *names):
        return self._get_native_parameters(*names)

    def _get_native_parameters(self, *names):
        values = {}
        indices = self._indices_in_root()
        for name in names:
            value = self.grandparent._parameters[name]
            if isinstance(value, np.ndarray) and value.ndim > 0:
                value = value[indices]
            values[name] = simplify(value)
        return ParameterSpace(values, shape=(self.size,))

    def _set_parameters(self, parameter_space):
        parameter_space.evaluate(simplify=False)
        root = self.grandparent
        new = {name: np.array(root._parameters[name], copy=True) for name in parameter_space.keys()}
        indices = self._indices_in_root()
        for name, value in parameter_space.items():
            new[name][indices] = value
        root._update_parameters(new)

    def _set_initial_value_array(self, variable, initial_values):
        pass

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)


class Population(_DialectMixin, common.Population):
    __doc__ = common.Population.__doc__
    _simulator = simulator
    _recorder_class = Recorder
    _assembly_class = Assembly

    def __init__(self, size, cellclass, cellparams=None, structure=None, initial_values=None, label=None):
        if not simulator.state.active:
            raise RuntimeError("call cortexsim.backends.brainscales2.setup() before creating a Population")
        super().__init__(size, cellclass, cellparams, structure, initial_values or {}, label)
        simulator.state.populations.append(self)
        simulator.state.changed_topology = True
        rule = getattr(self.celltype, "plasticity_rule", None)
        if rule is not None:
            rule._add_population(self)

    def _create_cells(self):
        ids = np.arange(simulator.state.id_counter, simulator.state.id_counter + self.size)
        self.all_cells = np.array([simulator.ID(i) for i in ids], dtype=simulator.ID)
        self._mask_local = np.ones(self.size, dtype=bool)
        parameter_space = self.celltype.native_parameters
        parameter_space.shape = (self.size,)
        parameter_space.evaluate(simplify=False)
        values = parameter_space.as_dict()
        validate_parameters(self.celltype, values)
        self._parameters = values
        for cell in self.all_cells:
            cell.parent = self
        simulator.state.id_counter += self.size

    def _update_parameters(self, new: dict) -> None:
        merged = dict(self._parameters)
        merged.update(new)
        validate_parameters(self.celltype, merged)
        self._parameters = merged

    def _set_initial_value_array(self, variable, initial_values):
        pass

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)

    def _get_parameters(self, *names):
        return self._get_native_parameters(*names)

    def _get_native_parameters(self, *names):
        return ParameterSpace({name: simplify(self._parameters[name]) for name in names}, shape=(self.size,))

    def _set_parameters(self, parameter_space):
        parameter_space.evaluate(simplify=False)
        self._update_parameters({name: np.asarray(value) for name, value in parameter_space.items()})

    @property
    def conductance_based(self) -> bool:
        return bool(getattr(self.celltype, "conductance_based", False))

    def parameter_arrays(self) -> dict:
        """All parameters as arrays of length ``size`` (hardware units)."""
        out = {}
        for name, value in self._parameters.items():
            array = np.asarray(value)
            if array.ndim == 0 or array.shape[0] != self.size:
                array = np.array([value] * self.size, dtype=object) if array.dtype == object \
                    else np.broadcast_to(array, (self.size,)).copy()
            out[name] = array
        return out


def check_population_view(cells) -> None:
    """ConnectionError for Assemblies (not supported by the dialect's projections)."""
    if isinstance(cells, common.Assembly):
        raise errors.ConnectionError("projections from or onto an Assembly are not supported by "
                                     "cortexsim.backends.brainscales2; use one Projection per Population")
