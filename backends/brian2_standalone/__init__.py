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
* :func:`compilation_count` / :func:`statistics` report compilations and run times.

Seeds: ``setup(seed=s)``; run number k of a setup uses the seed derived from (s, k), so the same
sequence of calls reproduces the same spikes.

Unsupported (raise :class:`StandaloneUnsupported` at ``run``): ``SpikeSourcePoisson``,
``SpikeSourceArray``, current sources, projections from/to PopulationViews or Assemblies, custom
Brian2 objects, run callbacks. Spikes in flight across the boundary between two ``run`` calls are
dropped (see :mod:`.runner`).

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
from itertools import chain
from pathlib import Path

import brian2
import numpy as np
from brian2.utils.logger import BrianLogger
from pyNN.brian2 import simulator as _simulator
from pyNN.brian2.projections import basic_units as _basic_units

from cortexsim.seeds import derive_seed

from .. import pynn_brian2 as _base
from ..pynn_brian2 import *  # noqa: F401,F403  (the PyNN API, with cortexsim's Brian2 corrections)
from .project import (StandaloneUnsupported, compilation_statistics, default_project_root,  # noqa: F401
                      describe_network, get_project)
from .runner import run_project, run_statistics

BrianLogger.suppress_name("unused_brian_object")  # PyNN's setup drops the previous network's objects

__all__ = list(_base.__all__) + ["StandaloneUnsupported", "compilation_count", "statistics",
                                 "set_projection_weights", "set_project_root"]

_PROJECTION_ORDER = itertools.count()
_SESSION = {"seed": None, "runs": 0, "project_root": None, "previous_target": None}


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
    description = describe_network(state.network)
    project = get_project(description, _SESSION["project_root"])
    run_project(project, description, state.network.clock, state.t, float(simtime), _run_seed())
    _SESSION["runs"] += 1
    return state.t


run_for = run


def run_until(tstop: float, callbacks=None) -> float:
    """Advance the network to time ``tstop`` (ms)."""
    if tstop > _simulator.state.t:
        return run(tstop - _simulator.state.t, callbacks)
    return _simulator.state.t


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

    def _equation_spec(self, syn) -> dict:
        """The Synapses equations as PyNN built them (needed to compile a mirror)."""
        post = self.post.populations[0] if hasattr(self.post, "populations") else self.post
        psv = post.celltype.post_synaptic_variables[self.receptor_type]
        if getattr(post.celltype, "voltage_based_synapses", False):
            units = brian2.mV
        else:
            units = brian2.uS if post.celltype.conductance_based else brian2.nA
        context = {"syn_var": psv, "weight_units": _basic_units(units)}
        return {"model": self.synapse_type.eqs % context, "on_pre": self.synapse_type.pre % context,
                "on_post": self.synapse_type.post % context if self.synapse_type.post else None,
                "multisynaptic_index": "synapse_number"}

    def _convergent_connect(self, presynaptic_indices, postsynaptic_index, location_selector=None,
                            **connection_parameters):
        """Collect connections; they are created in one ``Synapses.connect`` (PyNN connects per cell)."""
        if location_selector is not None:
            raise StandaloneUnsupported("multicompartment location selectors are not supported")
        if hasattr(self.pre, "populations") or hasattr(self.post, "populations"):
            raise StandaloneUnsupported("projections between Assemblies are not supported on brian2_standalone")
        connection_parameters.pop("dendritic_delay_fraction", None)
        (i,) = self._partition(np.asarray(presynaptic_indices))
        _, j = self._localize_index(postsynaptic_index)
        if i.size == 0:
            return
        self._pending["i"].append(np.asarray(i, dtype=np.int32))
        self._pending["j"].append(np.full(i.size, j, dtype=np.int32))
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
            # delays live in the "pre" pathway's variables, not in the Synapses group's own
            variables = syn.pre.variables if name == "delay" else syn.variables
            if name not in variables or variables[name].read_only:
                continue
            variables[name].set_value(np.concatenate(chunks).astype(variables[name].dtype))


def set_projection_weights(projection, weights: np.ndarray) -> None:
    """All weights (n_pre, n_post) in uS (or nA) of ``projection`` at once (entries without a synapse ignored).

    Used by :func:`cortexsim.backends.projection_weights.set_projection_weights`.
    """
    syn = projection._brian2_synapses[0][0]
    values = np.asarray(weights, dtype=float)[np.asarray(syn.i[:]), np.asarray(syn.j[:])]
    scale = 1e-6 if projection.post.celltype.conductance_based else 1e-9  # uS -> S, nA -> A
    syn.variables["weight"].set_value(values * scale)
