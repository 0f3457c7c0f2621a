"""One validation run of a user's model on one backend: find its recorded populations, run, collect.

Used by :mod:`cortexsim.protocols.validation`; works with any PyNN backend built on ``pyNN.common``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ModelError", "PopulationRecording", "BackendRun", "recorded_populations", "collect_run"]

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

    def to_dict(self) -> dict:
        return {"status": self.status, "message": self.message, "n_runs": len(self.runs),
                "traceback": self.traceback, "wall_time_s": self.wall_time_s,
                "populations": sorted(self.runs[0]) if self.runs else []}


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
