"""PyNN's Brian2 backend (``pyNN.brian2``) with cortexsim's corrections, as a ``sim`` module.

Everything of ``pyNN.brian2`` is re-exported unchanged except:

``IF_cond_exp``
    Integrated with Brian2's ``exponential_euler`` method (exact for the membrane within a step at
    fixed conductances) instead of the forward Euler PyNN picks, which biases rates in the
    high-conductance state (references §7: ~24 Hz instead of ~27.5 Hz). Membrane and synaptic time
    constants, capacitance and reversal potentials that are the same for all neurons of a population
    at creation are stored once per population (Brian2 ``shared``, :data:`SHARED_WHEN_HOMOGENEOUS`),
    so Brian2 computes the synaptic decay factors once per step instead of once per neuron (measured
    on 1000 neurons: the state update ~3x faster, as fast as a native Brian2 script). Reading and
    setting them behaves as in ``pyNN.brian2`` (views, IDs, ``get(simplify=False)``, any subset):
    a set that gives neurons different values switches that parameter to per-neuron storage
    (:func:`store_per_neuron`), one that keeps it homogeneous keeps the fast storage.
``Population`` / ``PopulationView``
    Read parameters stored once per population as per-neuron values and set them for any subset.
``TsodyksMarkramSynapse``
    Event-driven Tsodyks-Markram equations written here (PyNN 0.13's Brian2 version raises
    ``TypeError`` when built, references §7); ``tau_facil = 0`` is allowed (no facilitation).
``Projection``
    Does not try to copy ``tau_syn`` from the target into Tsodyks-Markram synapses (not needed here).
``setup``
    Takes ``seed`` (int): Brian2's random number generators are seeded with it, so the same seed gives
    the same spikes (PyNN's Brian2 backend itself takes no seed).
``add_poisson_background``
    Independent Poisson input to every neuron through Brian2 ``PoissonInput`` (binomial draws per time
    step that converge to Poisson counts), with no source neurons at all.
"""

from __future__ import annotations

import warnings

# Brian2 2.9 calls pyparsing's old camelCase names; newer pyparsing warns on every equation parsed.
warnings.filterwarnings("ignore", message=r"'\w+' (argument is )?deprecated")

import brian2  # noqa: E402
import numpy as np
import pyNN.brian2 as _pynn_brian2
from pyNN.brian2 import *  # noqa: F401,F403  (the PyNN API of this backend)
from pyNN import common as _pynn_common
from pyNN.parameters import ParameterSpace as _ParameterSpace
from pyNN.parameters import simplify as _simplify
from pyNN.brian2 import simulator as _simulator
from pyNN.brian2.cells import ThresholdNeuronGroup as _ThresholdNeuronGroup
from pyNN.brian2.standardmodels.cells import IF_cond_exp as _PyNNIFCondExp
from pyNN.brian2.standardmodels.synapses import StaticSynapse as _StaticSynapse
from pyNN.standardmodels import build_translations
from pyNN.standardmodels import synapses as _abstract_synapses

__all__ = [name for name in dir(_pynn_brian2) if not name.startswith("_")] + ["add_poisson_background"]

#: Integration method used for conductance-based LIF neurons.
INTEGRATION_METHOD = "exponential_euler"
#: Number of virtual sources per PoissonInput (binomial(N, rate dt / N) -> Poisson as N grows).
POISSON_INPUT_SOURCES = 100


#: Native parameters of IF_cond_exp stored once per population when homogeneous at creation.
SHARED_WHEN_HOMOGENEOUS = ("tau_syn_e", "tau_syn_i", "tau_m", "c_m", "e_rev_e", "e_rev_i")


def _is_homogeneous(value) -> bool:
    array = np.asarray(value)
    return array.ndim == 0 or array.size == 0 or bool(np.all(array == array.flat[0]))


def _with_shared_parameters(equations: brian2.Equations, names: list[str]) -> brian2.Equations:
    """``equations`` with the parameters ``names`` flagged ``shared`` (one value per group)."""
    from brian2.equations.equations import PARAMETER, SingleEquation

    changed = []
    for eq in equations.ordered:
        if eq.type == PARAMETER and eq.varname in names and "shared" not in eq.flags:
            eq = SingleEquation(PARAMETER, eq.varname, eq.dim, var_type=eq.var_type,
                                flags=list(eq.flags) + ["shared"])
        changed.append(eq)
    return brian2.Equations(changed)


class _ExponentialEulerThresholdNeuronGroup(_ThresholdNeuronGroup):
    def __init__(self, n, equations, **parameters):
        parameters.setdefault("method", INTEGRATION_METHOD)
        shared = [name for name in SHARED_WHEN_HOMOGENEOUS
                  if name in parameters and np.size(parameters[name]) > 0 and _is_homogeneous(parameters[name])]
        if shared:
            equations = _with_shared_parameters(brian2.Equations(str(equations)) if isinstance(equations, str)
                                                else equations, shared)
            for name in shared:
                parameters[name] = parameters[name][0] if np.ndim(parameters[name]) else parameters[name]
        super().__init__(n, equations, **parameters)


class IF_cond_exp(_PyNNIFCondExp):
    __doc__ = _PyNNIFCondExp.__doc__
    brian2_model = _ExponentialEulerThresholdNeuronGroup


class TsodyksMarkramSynapse(_abstract_synapses.TsodyksMarkramSynapse):
    """Tsodyks-Markram synapse with event-driven resource (x) and utilisation (u) variables.

    Parameters (PyNN units): weight (uS or nA), delay (ms), U (1), tau_rec (ms), tau_facil (ms;
    0 means no facilitation). On each presynaptic spike, after a gap h since the previous one:
    ``x <- 1 - (1 - x) exp(-h / tau_rec)``, ``u <- U + u (1 - U) exp(-h / tau_facil)``, the
    target conductance jumps by ``weight * u * x``, then ``x <- x (1 - u)``.
    With U = 1 and tau_rec = tau_syn this is a renewing synapse.
    """

    eqs = """weight : %(weight_units)s
             U : 1
             tau_rec : second
             tau_facil : second
             u_tm : 1
             x_tm : 1
             t_last_tm : second
          """
    pre = """
          x_tm = 1 - (1 - x_tm) * exp(-(t - t_last_tm) / tau_rec)
          u_tm = U + u_tm * (1 - U) * int(tau_facil > 0*second) * exp(-(t - t_last_tm) / (tau_facil + int(tau_facil <= 0*second) * second))
          %(syn_var)s += weight * u_tm * x_tm
          x_tm = x_tm * (1 - u_tm)
          t_last_tm = t
          """  # noqa: E501 (one Brian2 statement per line)
    post = None
    initial_conditions = {"u_tm": 0.0, "x_tm": 1.0, "t_last_tm": -1e6 * brian2.second}

    def __init__(self, **parameters):
        super().__init__(**parameters)
        self.translations = build_translations(
            ("weight", "weight"),
            ("delay", "delay", brian2.ms),
            ("U", "U"),
            ("tau_rec", "tau_rec", brian2.ms),
            ("tau_facil", "tau_facil", brian2.ms),
        )

    _get_minimum_delay = _StaticSynapse._get_minimum_delay
    _set_target_type = _StaticSynapse._set_target_type


class Projection(_pynn_brian2.Projection):
    __doc__ = _pynn_brian2.Projection.__doc__

    # PyNN 0.13 connects one post-synaptic neuron at a time and assigns every synapse's parameters
    # one by one (measured: 194 s to build a 1000-neuron network). Here the connector's calls are
    # collected and applied with one Synapses.connect and one vector assignment per parameter;
    # the synapses, their order and their values are the same. Assemblies take PyNN's path.

    def __init__(self, presynaptic_population, postsynaptic_population, *args, **kwargs):
        batched = not any(isinstance(p, _pynn_common.Assembly)
                          for p in (presynaptic_population, postsynaptic_population))
        self._pending_connections = [] if batched else None
        super().__init__(presynaptic_population, postsynaptic_population, *args, **kwargs)
        self._apply_pending_connections()

    def _convergent_connect(self, presynaptic_indices, postsynaptic_index, location_selector=None,
                            **connection_parameters):
        if self._pending_connections is None or location_selector is not None:
            return super()._convergent_connect(presynaptic_indices, postsynaptic_index, location_selector,
                                               **connection_parameters)
        connection_parameters.pop("dendritic_delay_fraction", None)
        pre = np.asarray(self._partition(presynaptic_indices)[0], dtype=int)
        _, post = self._localize_index(postsynaptic_index)
        if pre.size:
            self._pending_connections.append((pre, int(post), connection_parameters))
        return None

    def _apply_pending_connections(self) -> None:
        pending, self._pending_connections = self._pending_connections, None
        if not pending:
            return
        synapses = self._brian2_synapses[0][0]
        first = len(synapses)
        pre = np.concatenate([p for p, _, _ in pending])
        synapses.connect(i=pre, j=np.concatenate([np.full(p.size, j) for p, j, _ in pending]))
        self._n_connections += pre.size
        step = self._simulator.state.dt * brian2.ms
        initial = self.synapse_type.initial_conditions
        for name in list(pending[0][2]) + list(initial):
            pieces = []
            for p, _, parameters in pending:
                value = parameters[name] if name in parameters else initial[name]
                if name == "delay":
                    value = np.round(value / step) * step  # nearest time step, as PyNN does
                pieces.append(value * np.ones(p.size))
            dimensions = brian2.get_dimensions(pieces[0])
            values = np.concatenate([np.asarray(piece, dtype=float) for piece in pieces])
            try:
                getattr(synapses, name)[first:] = (values if dimensions.is_dimensionless
                                                   else brian2.Quantity(values, dim=dimensions))
            except TypeError as err:
                if "read-only" not in str(err):
                    raise

    def _set_tau_syn_for_tsodyks_markram(self):
        """The equations above need no tau_syn (PyNN's version of this method fails, references §7)."""


class Recorder(_pynn_brian2.recording.Recorder):
    __doc__ = _pynn_brian2.recording.Recorder.__doc__

    def _clear_simulator(self):
        """Delete recorded data; unlike PyNN 0.13, also reset the monitors' event/sample counter ``N``.

        PyNN only resizes the monitors, so the next recording is written after the old count and a
        second ``get_data(clear=True)`` fails ("spike before t_start"), which breaks training loops.
        """
        for device in self._devices.values():
            device.resize(0)
            device.variables["N"].set_value(0)
            if "count" in device.variables:
                device.variables["count"].set_value(0)


def _without_shared_flag(equations: brian2.Equations, name: str) -> brian2.Equations:
    """``equations`` with parameter ``name`` stored per neuron again (its ``shared`` flag removed)."""
    from brian2.equations.equations import PARAMETER, SingleEquation

    changed = []
    for eq in equations.ordered:
        if eq.type == PARAMETER and eq.varname == name and "shared" in eq.flags:
            eq = SingleEquation(PARAMETER, eq.varname, eq.dim, var_type=eq.var_type,
                                flags=[flag for flag in eq.flags if flag != "shared"])
        changed.append(eq)
    return brian2.Equations(changed)


def is_stored_once(group, name: str) -> bool:
    """Whether parameter ``name`` of Brian2 ``group`` is stored once for all neurons (``shared``)."""
    variable = group.variables.get(name) if name in SHARED_WHEN_HOMOGENEOUS else None
    return variable is not None and bool(variable.scalar)


def store_per_neuron(group, name: str) -> None:
    """Switch parameter ``name`` of ``group`` from one value per population to one per neuron.

    The value is kept for every neuron. Brian2 generates the state update from the group's
    equations and variables at every ``run``, so the next run integrates with per-neuron values.
    """
    old = group.variables[name]
    value = np.asarray(old.get_value()).reshape(-1)[0]
    group.equations = _without_shared_flag(group.equations, name)
    variables = group.variables
    del variables._variables[name]
    variables.indices.pop(name, None)
    variables.add_array(name, size=group.N, dimensions=old.dim, dtype=old.dtype, constant=old.constant)
    variables[name].set_value(np.full(group.N, value, dtype=old.dtype))


def _read_native(group, name: str, size: int, mask=None):
    """PyNN's reading of a native parameter, with values stored once per population broadcast per neuron."""
    value = getattr(group, name)
    if is_stored_once(group, name):
        return value * np.ones(size)  # a Quantity array with the parameter's units
    if hasattr(value, "shape") and value.shape != ():
        return value[:] if mask is None else value[mask]
    return value


def _set_stored_once(group, parameter_space, mask) -> _ParameterSpace:
    """Set the parameters of ``parameter_space`` that ``group`` stores once per population.

    ``mask`` selects the neurons the values are for (``slice(None)``: all). A value that leaves the
    population homogeneous stays stored once; any other switches the parameter to per-neuron
    storage (:func:`store_per_neuron`), so setting a subset behaves as in PyNN. Returns the other
    parameters, for PyNN's own ``_set_parameters``.
    """
    parameter_space.evaluate(simplify=False)
    others = {}
    for name, value in parameter_space.items():
        if not is_stored_once(group, name):
            others[name] = value
            continue
        current = np.asarray(group.variables[name].get_value()).reshape(-1)[0]
        proposed = np.full(group.N, current, dtype=float)
        proposed[mask] = np.asarray(value, dtype=float)
        if _is_homogeneous(proposed):
            group.variables[name].set_value(proposed[:1].reshape(()))
        else:
            store_per_neuron(group, name)
            group.variables[name].set_value(proposed)
    return _ParameterSpace(others, shape=parameter_space.shape)


class PopulationView(_pynn_brian2.PopulationView):
    __doc__ = _pynn_brian2.PopulationView.__doc__

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)

    def _get_native_parameters(self, *names):
        """PyNN's; parameters stored once per population read as this view's per-neuron values."""
        values = {name: _simplify(_read_native(self.brian2_group, name, self.size, self.mask)) for name in names}
        return _ParameterSpace(values, shape=(self.size,))

    def _set_parameters(self, parameter_space):
        """PyNN's; parameters stored once per population can be set for any subset of neurons."""
        rest = _set_stored_once(self.brian2_group, parameter_space, self.mask)
        if rest.keys():
            super()._set_parameters(rest)


class Population(_pynn_brian2.Population):
    __doc__ = _pynn_brian2.Population.__doc__
    _recorder_class = Recorder

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)

    def _get_native_parameters(self, *names):
        """PyNN's; parameters stored once per population read as per-neuron values."""
        values = {name: _read_native(self.brian2_group, name, self.size) for name in names}
        return _ParameterSpace(values, shape=(self.size,))

    def _set_parameters(self, parameter_space):
        """PyNN's; a parameter stored once per population switches to per-neuron storage when set
        to different values for different neurons (see :func:`store_per_neuron`)."""
        rest = _set_stored_once(self.brian2_group, parameter_space, slice(None))
        if rest.keys():
            super()._set_parameters(rest)


def setup(timestep: float = 0.1, min_delay: float | str = "auto", seed: int | None = None, **extra_params):
    """``pyNN.brian2.setup``, plus ``seed`` (int) seeding Brian2's random number generators."""
    result = _pynn_brian2.setup(timestep=timestep, min_delay=min_delay, **extra_params)
    brian2.seed(None if seed is None else int(seed))
    return result


def add_poisson_background(population, rate_exc: float, rate_inh: float,
                           weight_exc: float, weight_inh: float, delay: float | None = None) -> dict:
    """Give every neuron of ``population`` independent excitatory and inhibitory Poisson input.

    Parameters
    ----------
    population : Population
        Conductance-based neurons (``IF_cond_exp``).
    rate_exc, rate_inh : float
        Rates of the input trains (Hz, >= 0).
    weight_exc, weight_inh : float
        Conductance jumps (uS, >= 0; the inhibitory one is a magnitude).
    delay : float, optional
        Ignored: ``PoissonInput`` acts within the time step it is drawn in.
    """
    for name, value in (("rate_exc", rate_exc), ("rate_inh", rate_inh),
                        ("weight_exc", weight_exc), ("weight_inh", weight_inh)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    group = population.brian2_group
    if hasattr(population, "mask") and population.mask is not None and len(population) != group.N:
        raise ValueError("add_poisson_background needs a whole Population on Brian2, not a view")
    inputs = {}
    for label, variable, rate, weight in (("exc", "ge", rate_exc, weight_exc),
                                          ("inh", "gi", rate_inh, weight_inh)):
        if rate == 0 or weight == 0:
            continue
        source = brian2.PoissonInput(group, variable, N=POISSON_INPUT_SOURCES,
                                     rate=float(rate) / POISSON_INPUT_SOURCES * brian2.Hz,
                                     weight=float(weight) * brian2.uS)
        _simulator.state.network.add(source)
        inputs[label] = source
    return inputs
