"""Brian2 C++ standalone mode for PyNN-built networks, as a ``sim`` module (backend ``brian2_standalone``).

The network is built with PyNN exactly as on the ``brian2`` backend (same cell types, corrected
``IF_cond_exp``/``TsodyksMarkramSynapse``, ``PoissonInput`` noise), but on Brian2's runtime device with
the numpy target, so building compiles nothing and every value stays readable and settable. Each
``run`` executes a compiled C++ project instead (see :mod:`.project` and :mod:`.runner`):

* the project is compiled once per network *structure* (equations, connectivity, delays, noise, dt,
  recording) and cached in memory and on disk;
* all per-neuron and per-synapse values (biases/leak potentials, weights, membrane and synapse states)
  go to the binary as Brian2 run arguments on every run, so changing weights and biases, calling
  ``setup`` again and rebuilding the same network, or running for another duration never recompiles;
* :func:`compilation_count` / :func:`statistics` report compilations and run times;
* synapses are compiled in source order and, where exactly equivalent, in a leaner form (renewing
  Tsodyks-Markram synapses with U = 1: one shared tau_rec, one ``exp`` per event; an excitatory and an
  inhibitory projection over the same pairs fused into one object), see :mod:`.synapse_forms`;
* :func:`run_parameter_schedule` runs phases that differ in a per-neuron parameter (clamping through
  leak potentials, then running free: a CD iteration) in ONE launch, the table passed as a run argument.

Seeds: ``setup(seed=s)``; run number k of a setup uses the seed derived from (s, k), so the same
sequence of calls reproduces the same spikes.

Unsupported (raise :class:`StandaloneUnsupported` at ``run``): ``SpikeSourcePoisson``, current
sources, projections from/to PopulationViews or Assemblies, custom Brian2 objects, run callbacks.
``SpikeSourceArray`` is compiled as a spike table (its spike times are part of the structure: other
times compile another project; made for sources that repeat in every run, such as an ensemble's seeded
kick). Spikes in flight across the boundary between two ``run`` calls are dropped (see :mod:`.runner`).

Example
-------
>>> from cortexsim.backends import load_backend
>>> sim = load_backend("brian2_standalone")
>>> sim.setup(timestep=0.1, seed=1)
>>> # build with sim.Population / sim.Projection as on any backend, then
>>> sim.run(1000.0)          # compiles on first use of this structure
>>> sim.compilation_count()
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from copy import deepcopy
from itertools import chain
from pathlib import Path

import brian2
import numpy as np
from brian2.utils.logger import BrianLogger
from pyNN.brian2 import simulator as _simulator
from pyNN.brian2.projections import basic_units as _basic_units
from pyNN.brian2.standardmodels.synapses import StaticSynapse as _StaticSynapse

from cortexsim.seeds import derive_seed

from .. import pynn_brian2 as _base
from ..pynn_brian2 import *  # noqa: F401,F403  (the PyNN API, with cortexsim's Brian2 corrections)
from .project import (Schedule, StandaloneUnsupported, compilation_statistics, default_project_root,  # noqa: F401
                      describe_network, get_project)
from .runner import run_project, run_statistics

BrianLogger.suppress_name("unused_brian_object")  # PyNN's setup drops the previous network's objects

__all__ = list(_base.__all__) + ["FromListConnector", "StandaloneUnsupported", "compilation_count", "statistics",
                                 "set_projection_weights", "set_project_root", "run_parameter_schedule"]

_PROJECTION_ORDER = itertools.count()
_SESSION = {"seed": None, "runs": 0, "project_root": None, "previous_target": None, "schedules": {}}


def set_project_root(path: str | Path | None) -> None:
    """Folder for compiled projects (None: :func:`default_project_root`)."""
    _SESSION["project_root"] = None if path is None else Path(path)


def compilation_count() -> int:
    """Number of C++ projects compiled by this process so far."""
    return compilation_statistics()["compilations"]


def statistics() -> dict:
    """Compilations, reuses, binary runs and wall times of this process (a copy)."""
    return {**compilation_statistics(), **run_statistics()}


def setup(timestep: float = 0.1, min_delay: float | str = "auto", seed: int | None = None, **extra_params):
    """Start a new network: ``pyNN.brian2.setup`` on the numpy target, plus ``seed`` (int).

    ``seed`` seeds the Python-side random numbers (connectors, random initial values) and, combined
    with the run number, every compiled run. Without a seed, runs are seeded from the clock.
    """
    if _SESSION["previous_target"] is None:
        _SESSION["previous_target"] = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"  # building runs no compiler; runs use the C++ project
    result = _base.setup(timestep=timestep, min_delay=min_delay, seed=seed, **extra_params)
    _SESSION["seed"] = None if seed is None else int(seed)
    _SESSION["runs"] = 0
    _SESSION["schedules"] = {}
    return result


def end(compatible_output: bool = True) -> None:
    """End the simulation (like ``pyNN.brian2.end``) and restore Brian2's code-generation target."""
    _base.end()
    if _SESSION["previous_target"] is not None:
        brian2.prefs.codegen.target = _SESSION["previous_target"]
        _SESSION["previous_target"] = None


def _run_seed() -> int:
    base = _SESSION["seed"]
    if base is None:
        return int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))
    return derive_seed(base, _SESSION["runs"])


def run(simtime: float, callbacks=None) -> float:
    """Advance the network by ``simtime`` (ms) with the compiled project; returns the time (ms)."""
    if callbacks:
        raise StandaloneUnsupported("run callbacks are not supported on brian2_standalone")
    if not np.isfinite(simtime) or simtime < 0:
        raise ValueError(f"simtime must be a finite number >= 0 (ms), got {simtime}")
    return _run(float(simtime), {})


def _run(simtime: float, tables: dict) -> float:
    """One launch of the compiled project; ``tables``: schedule tables by group name (others held constant)."""
    state = _simulator.state
    if state.current_sources:
        raise StandaloneUnsupported("current sources are not supported on brian2_standalone; use the "
                                    "'brian2' backend or set the neurons' i_offset")
    for recorder in state.recorders:
        recorder._finalize()
    if not state.running:
        state.network.store("before-first-run")
        state.running = True
    if simtime == 0:
        return state.t
    schedules = tuple(_SESSION["schedules"].values())
    description = describe_network(state.network, state.t, schedules)
    project = get_project(description, _SESSION["project_root"])
    by_position = {}
    for position, item in enumerate(description):
        if item["kind"] == "NeuronGroup" and item["schedule"] is not None:
            group = item["object"].obj
            schedule = _SESSION["schedules"][group.name]
            table = tables.get(group.name)
            if table is None:  # hold the current values (an ordinary run of a project with a schedule)
                current = np.asarray(group.variables[schedule.variable].get_value(), dtype=float)
                table = np.broadcast_to(current, (schedule.rows, current.size))
            by_position[position] = table
    run_project(project, description, state.network.clock, state.t, simtime, _run_seed(), by_position)
    _SESSION["runs"] += 1
    return state.t


def run_parameter_schedule(population, name: str, values, durations_ms) -> float:
    """Run phases with different values of one per-neuron parameter in ONE launch of the binary.

    Equivalent to ``for v, d in zip(values, durations_ms): population.set(**{name: v}); sim.run(d)``
    except that spikes in flight at the phase boundaries are delivered (separate ``run`` calls drop
    them, see :mod:`.runner`) and the whole schedule costs one launch. The values are passed as a
    run argument (a table on the grid of the phase boundaries), so a training loop that changes them
    every iteration compiles once per schedule *shape* (number of neurons, grid, total length).
    Afterwards the parameter holds the last phase's values. Later ordinary runs of the same setup
    reuse the project with a constant table.

    Parameters
    ----------
    population : Population
        A whole population of this backend.
    name : str
        PyNN parameter name, per neuron (e.g. ``"v_rest"`` for clamping through leak potentials).
    values : array (n_phases, population.size)
        Parameter values per phase, PyNN units (mV for ``v_rest``).
    durations_ms : array (n_phases,)
        Phase lengths (ms), each > 0 and a whole number of time steps.

    Returns
    -------
    float
        The simulation time (ms) at the end.

    Raises
    ------
    ValueError
        Wrong shapes, non-finite values, durations that are not positive whole numbers of steps.
    StandaloneUnsupported
        If ``name`` is not a per-neuron variable of the population's Brian2 group.
    """
    values = np.asarray(values, dtype=float)
    durations = np.asarray(durations_ms, dtype=float).reshape(-1)
    if values.ndim != 2 or values.shape != (durations.size, population.size):
        raise ValueError(f"values must have shape (n_phases, population size) = ({durations.size}, "
                         f"{population.size}), got {values.shape}")
    if durations.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("values must be finite and there must be at least one phase")
    if name not in population.celltype.translations:
        raise ValueError(f"{name!r} is not a parameter of {type(population.celltype).__name__}; known: "
                         f"{sorted(population.celltype.translations)}")
    dt = float(_simulator.state.dt)
    steps = np.rint(durations / dt).astype(np.int64)
    if not np.all(np.isfinite(durations)) or np.any(steps < 1) or not np.allclose(steps * dt, durations, atol=1e-9):
        raise ValueError(f"durations_ms must be > 0 and whole numbers of time steps ({dt} ms), got {durations}")
    group = population.brian2_group
    translation = population.celltype.translations[name]
    native = np.stack([np.asarray(translation["forward_transform"](**{name: row})) for row in values])
    brian_name = translation["translated_name"]
    start_step = int(round(_simulator.state.t / dt))
    grid = int(np.gcd.reduce(np.append(steps, start_step)))
    rows = int(steps.sum() // grid)
    _SESSION["schedules"][group.name] = Schedule(group.name, brian_name, grid, rows)
    table = np.repeat(native, steps // grid, axis=0)
    t = _run(float(steps.sum() * dt), {group.name: table})
    population.set(**{name: values[-1]})
    return t


run_for = run


def run_until(tstop: float, callbacks=None) -> float:
    """Advance the network to time ``tstop`` (ms); a time in the past raises ValueError, as in PyNN."""
    now = _simulator.state.t
    if tstop - now < -_simulator.state.dt / 2.0:  # PyNN's tolerance for floating-point error
        raise ValueError(f"run_until: time {tstop} ms is in the past (current time {now} ms)")
    if tstop > now:
        return run(tstop - now, callbacks)
    return now


class Population(_base.Population):
    __doc__ = _base.Population.__doc__

    def _create_cells(self):
        super()._create_cells()
        self.brian2_group._cortexsim_order = int(self.all_cells[0])  # creation order (PyNN IDs)


class Projection(_base.Projection):
    __doc__ = _base.Projection.__doc__

    def __init__(self, presynaptic_population, postsynaptic_population, connector, synapse_type=None,
                 source=None, receptor_type=None, space=None, label=None):
        self._pending = defaultdict(list)
        extra = {} if space is None else {"space": space}
        super().__init__(presynaptic_population, postsynaptic_population, connector, synapse_type,
                         source, receptor_type, label=label, **extra)
        self._flush_connections()
        for row in self._brian2_synapses.values():
            for syn in row.values():
                syn._cortexsim_spec = self._equation_spec(syn)
                syn._cortexsim_order = next(_PROJECTION_ORDER)

    #: synapse types whose equations the compiled project may specialise (see :mod:`.synapse_forms`)
    _FORMS = ((_base.TsodyksMarkramSynapse, "tsodyks_markram"), (_StaticSynapse, "static"))

    def _equation_spec(self, syn) -> dict:
        """The Synapses equations as PyNN built them (needed to compile a mirror)."""
        post = self.post.populations[0] if hasattr(self.post, "populations") else self.post
        psv = post.celltype.post_synaptic_variables[self.receptor_type]
        if getattr(post.celltype, "voltage_based_synapses", False):
            units = brian2.mV
        else:
            units = brian2.uS if post.celltype.conductance_based else brian2.nA
        context = {"syn_var": psv, "weight_units": _basic_units(units)}
        form = next((name for cls, name in self._FORMS if type(self.synapse_type) is cls), None)
        return {"model": self.synapse_type.eqs % context, "on_pre": self.synapse_type.pre % context,
                "on_post": self.synapse_type.post % context if self.synapse_type.post else None,
                "multisynaptic_index": "synapse_number", "synapse_form": form, "target_var": psv,
                "weight_units": context["weight_units"]}

    def _convergent_connect(self, presynaptic_indices, postsynaptic_index, location_selector=None,
                            **connection_parameters):
        """Collect connections; they are created in one ``Synapses.connect`` (PyNN connects per cell)."""
        if location_selector is not None:
            raise StandaloneUnsupported("multicompartment location selectors are not supported")
        if hasattr(self.pre, "populations") or hasattr(self.post, "populations"):
            raise StandaloneUnsupported("projections between Assemblies are not supported on brian2_standalone")
        (i,) = self._partition(np.asarray(presynaptic_indices))
        _, j = self._localize_index(postsynaptic_index)
        self._collect(np.asarray(i), np.full(np.size(i), j), connection_parameters)

    def _collect(self, i: np.ndarray, j: np.ndarray, connection_parameters: dict) -> None:
        """Queue connections ``i[k] -> j[k]`` (population indices) with their native parameters."""
        connection_parameters = dict(connection_parameters)
        connection_parameters.pop("dendritic_delay_fraction", None)
        if i.size == 0:
            return
        self._pending["i"].append(np.asarray(i, dtype=np.int32))
        self._pending["j"].append(np.asarray(j, dtype=np.int32))
        for name, value in chain(connection_parameters.items(), self.synapse_type.initial_conditions.items()):
            if name == "delay":
                step = float(self._simulator.state.dt) * 1e-3  # s; values arrive as Brian2 quantities (SI)
                value = np.round(np.asarray(value, dtype=float) / step) * step  # nearest step, like PyNN
            self._pending[name].append(np.broadcast_to(np.asarray(value, dtype=float), i.shape))

    def _flush_connections(self) -> None:
        pending, self._pending = self._pending, defaultdict(list)
        if not pending.get("i"):
            return
        syn = self._brian2_synapses[0][0]
        i, j = np.concatenate(pending.pop("i")), np.concatenate(pending.pop("j"))
        syn.connect(i=i, j=j)
        self._n_connections += i.size
        for name, chunks in pending.items():
            # the delays belong to the presynaptic pathway, not to the Synapses' own variables
            variables = syn.pre.variables if name == "delay" else syn.variables
            if name not in variables or variables[name].read_only and name != "delay":
                continue
            variables[name].set_value(np.concatenate(chunks).astype(variables[name].dtype))


class FromListConnector(_base.FromListConnector):
    __doc__ = _base.FromListConnector.__doc__

    def connect(self, projection):
        """PyNN's ``FromListConnector.connect`` for all target cells at once where that is equivalent.

        PyNN 0.13 loops over the target cells and, for each, copies and translates the synapse
        parameters (measured: 20 s for the 180,000 synapses of 1000 10-neuron networks). Here the
        same steps run once on whole arrays: the list sorted by target with the same ``np.argsort``
        call, the parameter space copied, updated from the columns, translated (PyNN's translations
        of standard synapse types are element-wise) and evaluated, then the connections collected
        exactly as :meth:`Projection._convergent_connect` collects them. Used when the projection is
        this backend's, between whole Populations, with a standard synapse type and no location
        selector; otherwise PyNN's loop.
        """
        from pyNN.standardmodels import StandardSynapseType

        if not (isinstance(projection, Projection) and self.location_selector is None
                and isinstance(projection.synapse_type, StandardSynapseType)
                and not any(hasattr(p, "populations") or hasattr(p, "parent")
                            for p in (projection.pre, projection.post))):
            return super().connect(projection)
        names = projection.synapse_type.get_parameter_names()
        for name in self.column_names:
            if name not in names:
                raise ValueError("%s is not a valid parameter for %s" % (name, type(projection.synapse_type).__name__))
        if self.conn_list.size == 0:
            return None
        if np.any(self.conn_list[:, 0] >= projection.pre.size):
            from pyNN import errors

            raise errors.ConnectionError("source index out of range")
        conn = self.conn_list[np.argsort(self.conn_list[:, 1])]  # PyNN's order (same sort call)
        targets = conn[:, 1].astype(int)
        keep = (targets >= 0) & (targets < projection.post.size)  # PyNN connects only existing (local) cells
        conn, targets = conn[keep], targets[keep]
        parameters = deepcopy(projection.synapse_type.parameter_space)
        parameters.shape = (targets.size,)
        for column, name in enumerate(self.column_names, 2):
            parameters.update(**{name: conn[:, column]})
        parameters = projection.synapse_type.translate(parameters)
        parameters.evaluate()
        projection._collect(conn[:, 0].astype(int), targets, dict(parameters.items()))
        return None


def set_projection_weights(projection, weights: np.ndarray) -> None:
    """All weights (n_pre, n_post) in uS (or nA) of ``projection`` at once (entries without a synapse ignored).

    Used by :func:`cortexsim.backends.projection_weights.set_projection_weights`.
    """
    syn = projection._brian2_synapses[0][0]
    weights = np.asarray(weights, dtype=float)
    cache = getattr(syn, "_cortexsim_flat_index", None)
    if cache is None or cache[0] != (len(syn), weights.shape):  # synapses are only ever added
        i, j = np.asarray(syn.i[:], dtype=np.int64), np.asarray(syn.j[:], dtype=np.int64)
        cache = ((len(syn), weights.shape), np.ravel_multi_index((i, j), weights.shape))
        syn._cortexsim_flat_index = cache
    scale = 1e-6 if projection.post.celltype.conductance_based else 1e-9  # uS -> S, nA -> A
    syn.variables["weight"].set_value(np.take(weights, cache[1]) * scale)


def set_projection_block_weights(projection, starts, blocks) -> None:
    """All weights of a projection of a population onto itself from its diagonal blocks (uS or nA; the
    connections between blocks get 0).

    Used by :func:`cortexsim.backends.projection_weights.set_projection_block_weights` (which checks
    the blocks): one gather from the concatenated blocks, no (n, n) matrix.
    """
    syn = projection._brian2_synapses[0][0]
    sizes = tuple(int(np.shape(block)[0]) for block in blocks)
    key = (len(syn), tuple(int(x) for x in starts), sizes)
    cache = getattr(syn, "_cortexsim_block_index", None)
    if cache is None or cache[0] != key:  # synapses are only ever added
        i, j = np.asarray(syn.i[:], dtype=np.int64), np.asarray(syn.j[:], dtype=np.int64)
        starts_arr, sizes_arr = np.asarray(key[1], dtype=np.int64), np.asarray(sizes, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes_arr ** 2)])
        block_i = np.searchsorted(starts_arr, i, side="right") - 1
        block_j = np.searchsorted(starts_arr, j, side="right") - 1
        inside = (block_i >= 0) & (block_i == block_j)
        inside &= i < starts_arr[np.maximum(block_i, 0)] + sizes_arr[np.maximum(block_i, 0)]
        b = np.maximum(block_i, 0)
        local = offsets[b] + (i - starts_arr[b]) * sizes_arr[b] + (j - starts_arr[b])
        index = np.where(inside, local, offsets[-1])   # outside every block: the appended 0
        cache = (key, index)
        syn._cortexsim_block_index = cache
    flat = np.concatenate([np.asarray(block, dtype=float).reshape(-1) for block in blocks] + [np.zeros(1)])
    scale = 1e-6 if projection.post.celltype.conductance_based else 1e-9  # uS -> S, nA -> A
    syn.variables["weight"].set_value(np.take(flat, cache[1]) * scale)
