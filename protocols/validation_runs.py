"""One validation run of a user's model on one backend: find its recorded populations, run, collect.

Used by :mod:`cortexsim.protocols.validation`; works with any PyNN backend built on ``pyNN.common``.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ModelError", "PopulationRecording", "BackendRun", "SeededSimulator", "recorded_populations",
           "collect_run", "identical_repeats"]

logger = logging.getLogger(__name__)

_AUTO_LABEL = re.compile(r"^population\d+$")


class ModelError(ValueError):
    """The model itself is unusable (records nothing, returns something that is not a population)."""


@dataclass
class PopulationRecording:
    """What one run recorded from one population: spike trains (neo, ms) and membrane potential (neo)."""

    spiketrains: list
    membrane_potential: object = None
    size: int = 0


@dataclass
class BackendRun:
    """All runs of a model on one backend.

    Attributes
    ----------
    backend : str
    status : str
        "ok", "unregistered" (name not in the registry), "missing" (cannot be loaded) or "failed"
        (raised while building or running the model).
    message : str
        Why, when the status is not "ok".
    runs : list of dict
        Per seed: population name -> PopulationRecording.
    """

    backend: str
    status: str
    message: str = ""
    runs: list = field(default_factory=list)
    traceback: str = ""
    wall_time_s: float = 0.0
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"status": self.status, "message": self.message, "n_runs": len(self.runs),
                "traceback": self.traceback, "wall_time_s": self.wall_time_s,
                "populations": sorted(self.runs[0]) if self.runs else [], "notes": list(self.notes)}


class SeededSimulator:
    """The backend module as a model sees it in one validation run: seeded, at the run's time step.

    Ordinary PyNN scripts call ``sim.setup(...)`` themselves (resetting NEST to its default seed
    and choosing their own time step) and create ``sim.NumpyRNG()`` / ``sim.RandomDistribution``
    without a seed. Here every ``setup`` call gets the run's ``seed`` and ``timestep`` (a model
    ``timestep`` that differs, or a model ``seed``/``rng_seed``, is overridden with a logged warning
    naming both values, also kept in :attr:`notes`), and RNGs created without a seed get one derived
    from the run's seed in creation order, so the same command gives the same numbers and
    different repeats differ. Everything else is the backend module itself.

    Parameters
    ----------
    sim : module
        The backend's PyNN module.
    seed : int
        The run's seed.
    dt_ms : float
        The run's integration step (ms).
    """

    def __init__(self, sim, seed: int, dt_ms: float):
        self._sim = sim
        self._seed = int(seed)
        self._dt_ms = float(dt_ms)
        self._rng_numbers = itertools.count()
        self.notes: list[str] = []

    def __getattr__(self, name):
        return getattr(self._sim, name)

    @property
    def __name__(self) -> str:
        return self._sim.__name__

    def _note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
            logger.warning(message)

    def setup(self, timestep: float | None = None, min_delay="auto", **extra_params):
        """The backend's ``setup`` with the run's seed and time step (see the class docstring)."""
        for name in ("seed", "rng_seed"):
            if name in extra_params:
                value = extra_params.pop(name)
                if value is not None and int(value) != self._seed:
                    self._note(f"the model calls setup({name}={value}); validation uses the run's seed "
                               f"{self._seed} instead (repeats must differ only by their seed)")
        if timestep is not None and not math.isclose(float(timestep), self._dt_ms, rel_tol=1e-9):
            self._note(f"the model calls setup(timestep={timestep}) but the validation runs at --dt "
                       f"{self._dt_ms} ms: using {self._dt_ms} ms on every backend")
        if min_delay not in ("auto", None) and float(min_delay) < self._dt_ms:
            self._note(f"the model's min_delay {min_delay} ms is below the time step {self._dt_ms} ms: "
                       "using 'auto'")
            min_delay = "auto"
        return self._sim.setup(timestep=self._dt_ms, min_delay=min_delay, seed=self._seed, **extra_params)

    def NumpyRNG(self, seed=None, parallel_safe=True):  # noqa: N802 (PyNN's name)
        """``sim.NumpyRNG``; without a seed, one derived from the run's seed (creation order)."""
        if seed is None:
            seed = int(np.random.SeedSequence([self._seed, next(self._rng_numbers)]).generate_state(1)[0])
        return self._sim.NumpyRNG(seed=seed, parallel_safe=parallel_safe)

    def RandomDistribution(self, distribution, parameters_pos=None, rng=None, **parameters_named):  # noqa: N802
        """``sim.RandomDistribution``; without an ``rng``, a :meth:`NumpyRNG` seeded from the run."""
        return self._sim.RandomDistribution(distribution, parameters_pos,
                                            rng=self.NumpyRNG() if rng is None else rng, **parameters_named)


def identical_repeats(summaries: list) -> bool:
    """Whether >= 2 per-repeat summaries ({population: {statistic: value}}) are all the same."""
    if len(summaries) < 2:
        return False

    def flat(summary):
        return [(pop, stat, None if value is None or (isinstance(value, float) and math.isnan(value)) else value)
                for pop, stats in sorted(summary.items()) for stat, value in sorted(stats.items())]

    first = flat(summaries[0])
    return all(flat(other) == first for other in summaries[1:])


def _is_population(obj) -> bool:
    return hasattr(obj, "record") and hasattr(obj, "get_data") and hasattr(obj, "size")


def _returned_populations(returned) -> list | None:
    """(name or None, population) pairs from what ``build`` returned; None if nothing usable."""
    if returned is None:
        return None
    if _is_population(returned):
        pairs = [(None, returned)]
    elif isinstance(returned, dict):
        pairs = [(str(k), v) for k, v in returned.items() if _is_population(v)]
    elif isinstance(returned, (list, tuple)):
        pairs = [(None, p) for p in returned if _is_population(p)]
    elif hasattr(returned, "__dict__"):
        pairs = [(name, value) for name, value in vars(returned).items() if _is_population(value)]
    else:
        pairs = []
    return pairs or None


def _name_populations(pairs: list) -> dict:
    """Names that are the same on every backend and run: given names, user labels, else population<k>.

    PyNN's automatic labels ("population7") count every population ever created in the process,
    so they are replaced by the position among unnamed populations.
    """
    named, auto = {}, 0
    for name, pop in pairs:
        if name is None:
            label = pop.label or ""
            if _AUTO_LABEL.match(label) or not label or label in named:
                name, auto = f"population{auto}", auto + 1
            else:
                name = label
        named[name] = pop
    return named


def _recorded_variables(population) -> set[str]:
    recorder = getattr(population, "recorder", None)
    if recorder is None:
        return set()
    return {getattr(variable, "name", variable) for variable, ids in recorder.recorded.items() if ids}


def recorded_populations(sim, returned, model_name: str) -> dict:
    """Name -> population for every population with a recorded variable.

    Names come from what ``build`` returned (dict keys or labels); otherwise from the simulator's
    recorders, using labels where the user set them and ``population<k>`` in creation order otherwise.
    """
    pairs = _returned_populations(returned)
    if pairs is None:
        state = sim.Population._simulator.state
        found = [r.population for r in getattr(state, "recorders", ()) if _recorded_variables(r.population)]
        found.sort(key=lambda p: int(p.first_id))
        pairs = [(None, pop) for pop in found]
    pops = _name_populations(pairs)
    recorded = {name: pop for name, pop in pops.items() if _recorded_variables(pop)}
    if not recorded:
        raise ModelError(f"model {model_name}: build(sim) records nothing; call population.record('spikes') "
                         "(and optionally population.record('v')) on the populations to compare")
    return recorded


def _apply_alterations(populations: dict, alterations) -> None:
    for alteration in alterations:
        changed = 0
        for pop in populations.values():
            if alteration.parameter in pop.celltype.get_parameter_names():
                value = np.asarray(pop.get(alteration.parameter, gather=True), dtype=float)
                pop.set(**{alteration.parameter: value * alteration.factor})
                changed += 1
        if not changed:
            raise ModelError(f"alteration {alteration.parameter}*{alteration.factor}: no recorded population "
                             f"has a parameter {alteration.parameter!r}")


def collect_run(sim, returned, duration_ms: float, alterations, model_name: str) -> dict:
    """Apply alterations, run for ``duration_ms`` (ms) and return name -> PopulationRecording."""
    populations = recorded_populations(sim, returned, model_name)
    _apply_alterations(populations, alterations)
    sim.run(duration_ms)
    out = {}
    for name, pop in populations.items():
        variables = _recorded_variables(pop)
        segment = pop.get_data([v for v in ("spikes", "v") if v in variables]).segments[-1]
        trains = list(segment.spiketrains) if "spikes" in variables else []
        if trains and "source_index" in trains[0].annotations:
            trains.sort(key=lambda st: st.annotations["source_index"])
        vm = next((sig for sig in segment.analogsignals if sig.name == "v"), None)
        if not trains and vm is None:
            raise ModelError(f"model {model_name}: population {name!r} records only {sorted(variables)}; "
                             "validation compares 'spikes' and 'v'")
        out[name] = PopulationRecording(trains, vm, int(pop.size))
    return out
