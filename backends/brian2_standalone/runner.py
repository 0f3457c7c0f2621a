"""One run of a compiled standalone project, continuing the state of the PyNN-built Brian2 network.

Before the run every carried array (all writable per-neuron and per-synapse variables: parameters such
as leak potentials and weights, and states such as membrane potentials, conductances, refractory and
synaptic resources) is written from the network's runtime objects to files and passed as run
arguments, with the start time, duration and seed in the control group. After the run the final
values are copied back into the runtime objects and the recorded spikes and signals are appended to
the runtime monitors, so PyNN's ``get_data``, ``get`` and ``set`` work unchanged and the next
``run`` continues where this one stopped.

Not carried over: spikes in flight across the boundary between two ``run`` calls (emitted in the last
time step of one call and due in the next), so splitting one run into several calls changes
results slightly (seeded runs are reproducible for the same sequence of calls).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import brian2
import numpy as np

from .project import CompiledProject

__all__ = ["run_project"]

_RUN_STATISTICS = {"binary_runs": 0, "binary_wall_s": 0.0, "io_wall_s": 0.0}


def run_statistics() -> dict:
    """Counters of this process: binary runs, their wall time and the file input/output around them."""
    return dict(_RUN_STATISTICS)


def scratch_root(project_directory: Path) -> Path:
    """Folder for a run's argument and result files (tens of MB per run at MNIST scale, deleted after it).

    ``$CORTEXSIM_RUN_DIR`` if set; else ``/dev/shm`` where it is a writable folder (memory: the files
    never reach a disk, which on a busy machine saved 0.2 s of waiting per run of a 794 + 500 RBM);
    else the project folder.
    """
    configured = os.environ.get("CORTEXSIM_RUN_DIR")
    if configured:
        return Path(configured)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(project_directory)


def _read(path: Path, dtype: str) -> np.ndarray:
    if not path.is_file():
        return np.zeros(0, dtype=dtype)
    return np.fromfile(path, dtype=np.dtype(dtype))


def _append_monitor(monitor, files: dict, results: Path) -> None:
    """Append a run's recorded values (from ``results``) to a runtime Spike/StateMonitor."""
    t = _read(results / files["t"][0], files["t"][1])
    old = len(monitor.variables["t"].get_value())  # PyNN's clear resizes the arrays (not N) to 0
    new = old + t.size
    if t.size == 0:
        return
    monitor.resize(new)
    monitor.variables["t"].get_value()[old:new] = t
    if isinstance(monitor, brian2.SpikeMonitor):
        for var in monitor.record_variables:
            if var != "t":
                monitor.variables[var].get_value()[old:new] = _read(results / files[var][0], files[var][1])
        counts = np.bincount(monitor.variables["i"].get_value()[old:new], minlength=monitor.source.N)
        monitor.variables["count"].set_value(monitor.variables["count"].get_value() + counts[:monitor.source.N])
    else:
        n_recorded = len(monitor.record)
        for var in monitor.record_variables:
            values = _read(results / files[var][0], files[var][1]).reshape(t.size, n_recorded)
            monitor.variables[var].get_value()[old:new, :] = values
    monitor.variables["N"].set_value(new)


def run_project(project: CompiledProject, description: list[dict], clock, t_start_ms: float,
                duration_ms: float, seed: int, schedule_tables: dict | None = None) -> None:
    """Run ``project`` for ``duration_ms`` from ``t_start_ms`` and update the runtime objects.

    Parameters
    ----------
    project : CompiledProject
        Compiled for ``description`` (same structure).
    description : list of dict
        From :func:`describe_network` of the current network (holds the runtime objects).
    clock : brian2.Clock
        The network's clock (advanced to the end of the run).
    t_start_ms, duration_ms : float
        Start and length of the run (ms).
    seed : int
        Seed of Brian2's random number generator for this run.
    schedule_tables : dict, optional
        Per scheduled group (description position): its table (rows, N) in Brian2's base units
        (required for every schedule the project was compiled with).
    """
    io_start = time.perf_counter()
    schedule_tables = schedule_tables or {}
    with tempfile.TemporaryDirectory(prefix="cortexsim_run_", dir=scratch_root(project.directory)) as tmp:
        tmp = Path(tmp)
        results = tmp / "results"
        results.mkdir()
        args = [str(project.binary), "--results_dir", str(results) + "/"]
        for k, (item, carried_files) in enumerate(zip(description, project.state)):
            carrier = item["object"]
            files = {name: (cli_name, dtype) for name, cli_name, _, dtype in carried_files}
            for carried in carrier.carry:
                if not carried.pass_in:
                    continue
                cli_name, dtype = files[carried.compiled]
                values = np.ascontiguousarray(carrier.values(carried), dtype=np.dtype(dtype))
                if values.size == 0:
                    continue
                path = tmp / f"{k}_{carried.compiled}.dat"
                values.tofile(path)
                args.append(f"{cli_name}={path}")
        for position, names in project.schedules.items():
            table = np.ascontiguousarray(schedule_tables[int(position)], dtype=np.dtype(names["dtype"]))
            path = tmp / f"schedule_{position}.dat"
            table.tofile(path)
            t0 = tmp / f"schedule_{position}_t0.dat"
            np.asarray([t_start_ms * 1e-3], dtype=np.float64).tofile(t0)
            args += [f"{names['values']}={path}", f"{names['t0']}={t0}"]
        control = {"t_start": t_start_ms * 1e-3, "duration": duration_ms * 1e-3, "seed": int(seed)}
        for name, cli_name in project.control.items():
            value = control[name]
            dtype = np.int32 if name == "seed" else np.float64
            path = tmp / f"control_{name}.dat"
            np.asarray([value], dtype=dtype).tofile(path)
            args.append(f"{cli_name}={path}")
        run_start = time.perf_counter()
        completed = subprocess.run(args, cwd=project.directory, capture_output=True, text=True)
        run_wall = time.perf_counter() - run_start
        if completed.returncode != 0:
            raise RuntimeError(f"brian2_standalone binary failed (exit {completed.returncode}) in "
                               f"{project.directory}: {completed.stderr.strip() or completed.stdout.strip()}")
        for item, carried_files, monitor_files in zip(description, project.state, project.monitors):
            carrier = item["object"]
            files = {name: (result_file, dtype) for name, _, result_file, dtype in carried_files}
            for carried in carrier.carry:
                if not carried.read_back:
                    continue
                result_file, dtype = files[carried.compiled]
                values = _read(results / result_file, dtype)
                if values.size:
                    carrier.read_back(carried, values)
            carrier.after_run(t_start_ms * 1e-3)
            if monitor_files is not None:
                _append_monitor(carrier.obj, monitor_files, results)
    steps = int(round((t_start_ms + duration_ms) / float(clock.dt / brian2.ms)))
    clock.variables["timestep"].set_value(np.int64(steps))
    clock.variables["t"].set_value(steps * float(clock.dt_))
    _RUN_STATISTICS["binary_runs"] += 1
    _RUN_STATISTICS["binary_wall_s"] += run_wall
    _RUN_STATISTICS["io_wall_s"] += time.perf_counter() - io_start - run_wall
