"""Compiled Brian2 C++ standalone projects for PyNN-built networks: describe, sign, compile, cache.

A network built with PyNN on Brian2 (runtime device, numpy target: nothing is compiled while it is
built) is *described* object by object: neuron groups, synapses, Poisson inputs and monitors, with
everything that ends up in generated code (equations, thresholds, resets, refractory periods,
integration methods, connectivity, delays, Poisson rates and weights, dt). The description's hash is
the project's *signature*. Every per-neuron and per-synapse value (leak potentials, weights,
membrane and synapse states ...) is not part of it: those are passed to the compiled binary as
Brian2 run arguments on every run. So a training loop that changes weights and biases reuses one
compiled project; only a change of structure compiles a new one.

The project is generated from "mirror" objects (same equations, deterministic names) created under
Brian2's ``cpp_standalone`` device. Its ``main`` reads, after the run arguments, the start time,
duration and random seed of the run from a one-neuron control group, so one binary serves runs of
any length at any point in time. Projects are cached on disk by signature (shared between processes
through a file lock) and in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import brian2
import numpy as np
from brian2.devices.device import reset_device

from .synapse_forms import REUSED_EXP, REUSED_EXP_CPP, Carried, plan_synapses, reused_exp_function

__all__ = ["StandaloneUnsupported", "CompiledProject", "Schedule", "describe_network", "get_project",
           "compilation_statistics", "default_project_root"]

#: Name of the control group (start time, duration and seed of each run).
CONTROL_NAME = "cortexsim_control"
#: Version of the project layout; bump to invalidate cached projects.
PROJECT_FORMAT = 5

_STATISTICS = {"compilations": 0, "compile_wall_s": 0.0, "loaded_from_disk": 0, "reused_in_memory": 0}
_PROJECTS: dict = {}


class StandaloneUnsupported(NotImplementedError):
    """A PyNN/Brian2 feature the ``brian2_standalone`` backend cannot compile."""


def compilation_statistics() -> dict:
    """Counters of this process: projects compiled (and their wall time), loaded from disk, reused."""
    return dict(_STATISTICS)


def default_project_root() -> Path:
    """``$CORTEXSIM_CACHE_DIR/brian2_standalone`` (default ``~/.cache/cortexsim/brian2_standalone``)."""
    root = os.environ.get("CORTEXSIM_CACHE_DIR") or Path.home() / ".cache" / "cortexsim"
    return Path(root) / "brian2_standalone"


def _hash_array(values) -> str:
    array = np.ascontiguousarray(np.asarray(values))
    return hashlib.sha256(array.tobytes() + str(array.dtype).encode()).hexdigest()[:16]


def _state_variables(obj) -> list[str]:
    """Names of the writable per-element arrays of a group (what is passed as run arguments)."""
    names = []
    for name, var in obj.variables.items():
        if (isinstance(var, brian2.core.variables.ArrayVariable) and not var.read_only
                and not name.startswith("_") and var.owner is not None and var.owner.name == obj.name
                and not (isinstance(var.size, tuple))):
            names.append(name)
    return sorted(names)


@dataclass(frozen=True)
class Schedule:
    """A per-neuron parameter of one population read from a table during the run (one launch).

    ``variable`` (Brian2 name) takes, from the start of the run, the row ``k`` of a table of ``rows``
    rows at the time ``t_start + k * grid_steps * dt``; the table's last row holds beyond its end.
    """

    group: str
    variable: str
    grid_steps: int
    rows: int


class _GroupCarrier:
    """Carried values of a neuron group, Poisson input or monitor: runtime variables of the same name."""

    def __init__(self, obj, names):
        self.obj = obj
        self.carry = [Carried(0, name, name, read_back=True) for name in names]

    def state_names(self) -> list[str]:
        return [c.compiled for c in self.carry]

    def values(self, carried: Carried) -> np.ndarray:
        return np.asarray(self.obj.variables[carried.runtime].get_value())

    def read_back(self, carried: Carried, values: np.ndarray) -> None:
        self.obj.variables[carried.runtime].set_value(values)

    def after_run(self, t_start_s: float) -> None:
        pass


def _spike_table_steps(obj) -> tuple[np.ndarray, np.ndarray]:
    """(time steps, neuron indices) of a ``SpikeGeneratorGroup``'s spikes, binned as Brian2 bins them."""
    dt = float(obj.clock.dt_)
    times = np.asarray(obj.variables["spike_time"].get_value(), dtype=float)
    indices = np.asarray(obj.variables["neuron_index"].get_value(), dtype=np.int64)
    steps = np.asarray((times + 1e-3 * dt) / dt, dtype=np.int64)  # SpikeGeneratorGroup.before_run's binning
    return steps, indices


def _describe_spike_table(obj) -> dict:
    """A PyNN ``SpikeSourceArray`` (Brian2 ``SpikeGeneratorGroup``) compiled as a spike table.

    The spikes become a (steps, N) 0/1 ``TimedArray`` compiled into the project and a neuron group
    without state that fires where the table holds 1: the same spikes at the same time steps as the
    generator, from any start time of a run (nothing to carry between runs). Its spike times are part
    of the signature (other spike times compile another project), so it suits spike sources that are
    the same in every run, such as the seeded kick of an ensemble.
    """
    if float(np.asarray(obj.variables["period"].get_value()).reshape(-1)[0]) != 0.0:
        raise StandaloneUnsupported(f"{obj.name}: periodic spike generators are not supported on brian2_standalone")
    steps, indices = _spike_table_steps(obj)
    if np.unique(steps * int(obj.N) + indices).size != steps.size:
        raise StandaloneUnsupported(f"{obj.name}: two spikes of one source in the same time step")
    return {"kind": "SpikeTable", "object": _GroupCarrier(obj, []), "N": int(obj.N), "dt": float(obj.clock.dt_),
            "n_steps": int(steps.max()) + 1 if steps.size else 0, "spikes": _hash_array(np.stack([steps, indices])),
            "state": []}


def describe_network(network, t_start_ms: float = 0.0, schedules: tuple = ()) -> list[dict]:
    """Describe the objects of a PyNN Brian2 ``Network`` in build order (groups first).

    ``t_start_ms`` is the time the next run starts (some synapse forms depend on the state then, see
    :mod:`.synapse_forms`); ``schedules`` are :class:`Schedule` s compiled into the project.

    Raises
    ------
    StandaloneUnsupported
        For objects or features the backend cannot compile (naming them and the alternative).
    """
    groups, synapses, inputs, monitors = [], [], [], []
    for obj in network.objects:
        if isinstance(obj, (brian2.NeuronGroup, brian2.SpikeGeneratorGroup)):
            groups.append(obj)
        elif isinstance(obj, brian2.Synapses):
            synapses.append(obj)
        elif isinstance(obj, brian2.PoissonInput):
            inputs.append(obj)
        elif isinstance(obj, (brian2.SpikeMonitor, brian2.StateMonitor)):
            monitors.append(obj)
        elif isinstance(obj, brian2.NetworkOperation) and getattr(obj.function, "__name__", "") == "update_currents":
            continue  # PyNN's current-source updater: a no-op without current sources (checked by run)
        else:
            raise StandaloneUnsupported(
                f"{type(obj).__name__} ({obj.name}) is not supported on brian2_standalone (PyNN's "
                "SpikeSourcePoisson, current sources and custom Brian2 objects need the 'brian2' backend); "
                "use add_poisson_background for Poisson input")
    # Network.objects has no reliable order: sort by creation (tags set by this backend's
    # Population and Projection) and, for inputs and monitors, by content.
    for obj in groups + synapses:
        if not hasattr(obj, "_cortexsim_order"):
            raise StandaloneUnsupported(f"{obj.name} was not created by this backend's Population or "
                                        "Projection; raw Brian2 objects are not supported")
    groups.sort(key=lambda g: g._cortexsim_order)
    synapses.sort(key=lambda g: g._cortexsim_order)
    index = {obj.name: k for k, obj in enumerate(groups)}
    inputs.sort(key=lambda p: (index.get(p._group.name, -1), p.target_var, float(p.rate / brian2.Hz),
                               str(p.weight), int(p.N)))
    monitors.sort(key=lambda m: (index.get(m.source.name, -1), type(m).__name__, tuple(m.record_variables)))
    by_group = {s.group: s for s in schedules}
    described = []
    for obj in groups:
        if isinstance(obj, brian2.SpikeGeneratorGroup):
            described.append(_describe_spike_table(obj))
            continue
        extra_events = set(obj.events) - {"spike"}
        if extra_events or len(obj.contained_objects) > 3:
            raise StandaloneUnsupported(f"neuron group {obj.name}: custom events or run_regularly "
                                        "operations are not supported on brian2_standalone")
        names = _state_variables(obj)
        schedule = by_group.get(obj.name)
        if schedule is not None and schedule.variable not in names:
            raise StandaloneUnsupported(f"{schedule.variable} of {obj.name} is not a per-neuron variable; "
                                        "only those can follow a schedule")
        described.append({
            "kind": "NeuronGroup", "object": _GroupCarrier(obj, names), "N": int(obj.N),
            "model": str(obj.equations), "threshold": obj.events.get("spike"), "reset": obj.event_codes.get("spike"),
            "refractory": repr(obj._refractory), "method": repr(obj.state_updater.method_choice),
            "dt": float(obj.clock.dt_), "state": names,
            "schedule": None if schedule is None else [schedule.variable, schedule.grid_steps, schedule.rows]})
    for obj in synapses:
        spec = getattr(obj, "_cortexsim_spec", None)
        if spec is None:
            raise StandaloneUnsupported(f"synapses {obj.name} were not created by this backend's "
                                        "Projection; raw Brian2 Synapses are not supported")
        if obj.summed_updaters:
            raise StandaloneUnsupported(f"synapses {obj.name}: summed variables are not supported")
        for group in (obj.source, obj.target):
            if group.name not in index:
                raise StandaloneUnsupported(f"synapses {obj.name} connect a PopulationView/subgroup "
                                            f"({group.name}); only whole populations are supported")
        spec["state"] = [n for n in _state_variables(obj) if n != "delay"]
    for unit in plan_synapses(synapses, t_start_ms * 1e-3):
        described.append({
            "kind": "Synapses", "object": unit, "source": index[unit.source.name], "target": index[unit.target.name],
            **unit.signature_items(), "dt": float(unit.members[0].obj.clock.dt_), "state": unit.state_names()})
    for obj in inputs:
        if obj._group.name not in index:
            raise StandaloneUnsupported(f"PoissonInput {obj.name} targets a subgroup; not supported")
        weight = obj.weight if isinstance(obj.weight, str) else repr(obj.weight)
        described.append({
            "kind": "PoissonInput", "object": _GroupCarrier(obj, []), "target": index[obj._group.name],
            "target_var": obj.target_var, "N": int(obj.N), "rate_hz": float(obj.rate / brian2.Hz),
            "weight": weight, "when": obj.when, "order": int(obj.order)})
    for obj in monitors:
        if obj.source.name not in index:
            raise StandaloneUnsupported(f"monitor {obj.name} records a subgroup; not supported")
        if isinstance(obj, brian2.SpikeMonitor):
            record = bool(obj.record)  # PyNN passes its dict of recorded IDs: truthy means "record"
        else:
            record = _hash_array(np.asarray(obj.record, dtype=int))
        entry = {"kind": type(obj).__name__, "object": _GroupCarrier(obj, []), "source": index[obj.source.name],
                 "variables": list(obj.record_variables), "record": record, "when": obj.when,
                 "dt": float(obj.clock.dt_)}
        if isinstance(obj, brian2.StateMonitor):
            entry["record_indices"] = np.asarray(obj.record, dtype=int).tolist()
        described.append(entry)
    return described


def signature(description: list[dict]) -> str:
    """Hash of everything in ``description`` that ends up in generated code."""
    plain = [{k: v for k, v in item.items() if k not in ("object",)} for item in description]
    text = json.dumps({"format": PROJECT_FORMAT, "brian2": brian2.__version__, "objects": plain,
                       "functions": REUSED_EXP_CPP},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class CompiledProject:
    """A compiled standalone project and the names of its arrays.

    Attributes
    ----------
    directory : Path
        Project folder (``main`` binary, ``static_arrays/``).
    signature : str
        Structural signature it was compiled for.
    state : list of list
        Per described object (same order): ``[[variable, cli_name, result_file, dtype], ...]`` of
        the arrays carried from run to run.
    monitors : list
        Per described object: ``None`` or ``{variable: [result_file, dtype]}`` of monitors.
    control : dict
        ``{"t_start"|"duration"|"seed": cli_name}`` of the control group.
    compile_wall_s : float
        Wall time of the compilation (0 if loaded from the cache).
    schedules : dict
        Per scheduled group (description position, as a string): CLI names of its table
        (``"values"``), of its start time (``"t0"``) and the table's dtype.
    """

    directory: Path
    signature: str
    state: list
    monitors: list
    control: dict
    compile_wall_s: float = 0.0
    schedules: dict = None

    @property
    def binary(self) -> Path:
        return self.directory / "main"

    def to_dict(self) -> dict:
        return {"signature": self.signature, "state": self.state, "monitors": self.monitors,
                "control": self.control, "compile_wall_s": self.compile_wall_s, "schedules": self.schedules or {},
                "format": PROJECT_FORMAT}

    @classmethod
    def load(cls, directory: Path) -> "CompiledProject | None":
        meta = directory / "cortexsim_project.json"
        if not meta.is_file() or not (directory / "main").is_file():
            return None
        data = json.loads(meta.read_text())
        if data.get("format") != PROJECT_FORMAT:
            return None
        return cls(directory, data["signature"], data["state"], data["monitors"], data["control"],
                   data["compile_wall_s"], data.get("schedules", {}))


def simulation_dt(description: list[dict]) -> float:
    """The time step (s) of the compiled network: that of its neuron groups and synapses.

    A spike table keeps the step of its generator (:func:`_steps_per_generator_step`); monitors keep theirs.
    """
    steps = [item["dt"] for item in description if item["kind"] in ("NeuronGroup", "Synapses")]
    if not steps:
        steps = [item["dt"] for item in description] or [1e-4]
    return min(steps)


def _steps_per_generator_step(generator_dt: float, clock_dt: float, name: str) -> int:
    """How many network steps one step of a spike generator spans (an integer, else unsupported)."""
    ratio = generator_dt / clock_dt
    if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6 * ratio:
        raise StandaloneUnsupported(f"{name}: the spike generator's time step ({generator_dt * 1e3:g} ms) is not a "
                                    f"whole multiple of the network's ({clock_dt * 1e3:g} ms); use the 'brian2' "
                                    "backend or a time step that divides it")
    return int(round(ratio))


def _pathway_delays(delays_s, source_dt: float | None):
    """Delays (s) as a pathway on a source clock of step ``source_dt`` (s) applies them (None: unchanged).

    Examples
    --------
    >>> float(_pathway_delays(0.15e-3, 1e-4)), float(_pathway_delays(0.04e-3, 1e-4))
    (0.0002, 0.0)
    """
    if source_dt is None:
        return delays_s
    return np.floor(np.asarray(delays_s, dtype=float) / source_dt + 0.5) * source_dt


def _mirror(description: list[dict], clock) -> tuple[list, dict]:
    """Create standalone copies of the described objects (deterministic names cs<k>).

    Returns the mirrors and, per scheduled group (by position), its ``TimedArray``.
    """
    mirrors, tables = [], {}
    for k, item in enumerate(description):
        name = f"cs{k}"
        kind = item["kind"]
        obj = item["object"]
        if kind == "SpikeTable":
            steps, indices = _spike_table_steps(obj.obj)
            values = np.zeros((item["n_steps"] + 1, item["N"]))  # last row 0: the table holds it after the end
            values[steps, indices] = 1.0
            table = brian2.TimedArray(values, dt=item["dt"] * brian2.second, name=f"cortexsim_spikes_{k}")
            # The generator's own clock (Brian2's default clock, 0.1 ms, in pyNN.brian2) may be coarser than
            # the network's: a spike binned to generator step s fires once, at time s * generator dt.
            per_step = _steps_per_generator_step(item["dt"], float(clock.dt_), obj.obj.name)
            threshold = f"{table.name}(t, i) > 0.5"
            if per_step > 1:
                threshold += f" and (timestep(t, dt) % {per_step}) == 0"
            mirror = brian2.NeuronGroup(item["N"], "", threshold=threshold, reset="", clock=clock,
                                        name=name, namespace={table.name: table})
        elif kind == "NeuronGroup":
            group = obj.obj
            # NeuronGroup adds lastspike/not_refractory itself when refractory is set
            model = brian2.Equations([eq for eq in group.equations.ordered
                                      if eq.varname not in ("lastspike", "not_refractory")])
            namespace = {}
            if item["schedule"] is not None:
                variable, grid_steps, rows = item["schedule"]
                model = model + brian2.Equations("cortexsim_t0 : second (shared, constant)")
                var = group.variables[variable]
                table = brian2.TimedArray(np.zeros((rows, item["N"])) * brian2.Quantity(1, dim=var.dim),
                                          dt=grid_steps * item["dt"] * brian2.second, name=f"cortexsim_schedule_{k}")
                namespace[table.name] = table
                tables[k] = table
            mirror = brian2.NeuronGroup(item["N"], model=model, threshold=item["threshold"],
                                        reset=item["reset"], refractory=group._refractory,
                                        method=group.state_updater.method_choice, clock=clock, name=name,
                                        namespace=namespace)
            if item["schedule"] is not None:
                mirror.run_regularly(f"{variable} = {table.name}(t - cortexsim_t0, i)",
                                     dt=grid_steps * item["dt"] * brian2.second, when="start",
                                     name=f"cortexsim_schedule_update_{k}")
        elif kind == "Synapses":
            unit = obj
            extra = {}
            if unit.form == "general":
                extra["multisynaptic_index"] = unit.members[0].obj._cortexsim_spec.get("multisynaptic_index")
            # Brian2 runs a pathway on its source's clock: from a spike generator on a coarser clock (see the
            # spike tables above) the delays are rounded to whole generator steps, half up, as its spike queue does.
            source = description[item["source"]]
            delay_step = source["dt"] if source["kind"] == "SpikeTable" and source["dt"] > float(clock.dt_) else None
            if unit.delay is not None:
                extra["delay"] = _pathway_delays(unit.delay, delay_step) * brian2.second
            if REUSED_EXP in unit.on_pre:
                extra["namespace"] = {REUSED_EXP: reused_exp_function()}
            mirror = brian2.Synapses(mirrors[item["source"]], mirrors[item["target"]], model=unit.model,
                                     on_pre=unit.on_pre, on_post=unit.on_post, clock=clock, name=name, **extra)
            if unit.n_synapses:
                mirror.connect(i=unit.i, j=unit.j)  # source order (see synapse_forms)
                if unit.delay is None:
                    mirror.delay = _pathway_delays(unit.delays, delay_step) * brian2.second
        elif kind == "PoissonInput":
            source = obj.obj
            mirror = brian2.PoissonInput(mirrors[item["target"]], item["target_var"], item["N"],
                                         item["rate_hz"] * brian2.Hz, source.weight, when=item["when"],
                                         order=item["order"])
        elif kind == "SpikeMonitor":
            mirror = brian2.SpikeMonitor(mirrors[item["source"]], record=item["record"], when=item["when"],
                                         name=name)
        else:  # StateMonitor
            mirror = brian2.StateMonitor(mirrors[item["source"]], item["variables"], record=item["record_indices"],
                                         when=item["when"], dt=item["dt"] * brian2.second, name=name)
        mirrors.append(mirror)
    return mirrors, tables


def _compile(description: list[dict], sig: str, directory: Path) -> CompiledProject:
    """Generate and compile the project for ``description`` in ``directory``."""
    start = time.perf_counter()
    previous_make_args = brian2.prefs.devices.cpp_standalone.extra_make_args_unix
    brian2.set_device("cpp_standalone", directory=str(directory), build_on_run=False)
    device = brian2.get_device()
    try:
        brian2.prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]
        dt = simulation_dt(description)
        clock = brian2.Clock(dt * brian2.second, name="cortexsim_clock")
        control = brian2.NeuronGroup(1, "t_start : second\nduration : second\nseed : integer",
                                     clock=clock, name=CONTROL_NAME)
        mirrors, tables = _mirror(description, clock)
        network = brian2.Network(control, *mirrors)
        network.run(dt * brian2.second, namespace={})
        array = {name: device.get_array_name(control.variables[name]) for name in ("t_start", "duration", "seed")}
        clocks = sorted({obj.clock for obj in network.sorted_objects}, key=lambda c: c.name)
        for func, args in device.main_queue:
            if func == "run_network" and args[0] is network:
                lines = args[1]
                position = next(k for k, line in enumerate(lines) if line.startswith(f"{network.name}.run("))
                # Network::run sets every clock's time step but not its time t, which the first step of
                # the run reads (lastspike, t_last, monitors): set both here.
                clock_lines = []
                for c in clocks:
                    t_name, step_name = (device.get_array_name(c.variables[v]) for v in ("t", "timestep"))
                    dt_name = device.get_array_name(c.variables["dt"])
                    clock_lines += [f"{c.name}.set_interval({array['t_start']}[0], "
                                    f"{array['t_start']}[0] + {array['duration']}[0]);",
                                    f"{t_name}[0] = {step_name}[0] * {dt_name}[0];"]
                lines[position:position + 1] = [
                    "for (int _i=0; _i<1; _i++) "
                    f"brian::_random_generators[_i].seed((unsigned long) {array['seed']}[0] + _i);",
                    f"{network.name}.t = {array['t_start']}[0];", *clock_lines,
                    f"{network.name}.run({array['duration']}[0], NULL, 10.0);"]
        device.build(directory=str(directory), compile=True, run=False, with_output=False)
        state, monitors, schedules = [], [], {}
        for k, (item, mirror) in enumerate(zip(description, mirrors)):
            names = item.get("state", [])
            state.append([[name, f"{mirror.name}.{name}", device.get_array_filename(mirror.variables[name]),
                           np.dtype(mirror.variables[name].dtype).str] for name in names])
            if item["kind"] in ("SpikeMonitor", "StateMonitor"):
                recorded = list(mirror.record_variables) + ["t"]
                monitors.append({var: [device.get_array_filename(mirror.variables[var]),
                                       np.dtype(mirror.variables[var].dtype).str] for var in recorded})
            else:
                monitors.append(None)
            if k in tables:
                schedules[str(k)] = {"values": f"{tables[k].name}.values", "t0": f"{mirror.name}.cortexsim_t0",
                                     "dtype": np.dtype(tables[k].values.dtype).str}
        control_names = {name: f"{CONTROL_NAME}.{name}" for name in ("t_start", "duration", "seed")}
    finally:
        brian2.prefs.devices.cpp_standalone.extra_make_args_unix = previous_make_args
        device.reinit()
        reset_device()
    project = CompiledProject(directory, sig, state, monitors, control_names, time.perf_counter() - start,
                              schedules)
    (directory / "cortexsim_project.json").write_text(json.dumps(project.to_dict()))
    _STATISTICS["compilations"] += 1
    _STATISTICS["compile_wall_s"] += project.compile_wall_s
    return project


def get_project(description: list[dict], root: Path | None = None) -> CompiledProject:
    """The compiled project for ``description``: from memory, from the disk cache, or compiled now."""
    from brian2.utils.filelock import FileLock

    sig = signature(description)
    root = Path(root) if root is not None else default_project_root()
    directory = root / sig
    project = _PROJECTS.get(directory)  # by folder: a new project root compiles (or loads) its own copy
    if project is not None and project.binary.is_file():
        _STATISTICS["reused_in_memory"] += 1
        return project
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        project = CompiledProject.load(directory)
        if project is not None:
            _STATISTICS["loaded_from_disk"] += 1
        else:
            project = _compile(description, sig, directory)
    _PROJECTS[directory] = project
    return project
