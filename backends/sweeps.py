"""Sweeps of independent simulations on Dask: one task per process, same results as a serial loop.

A sweep is a function and a list of tasks (usually frozen protocol configs that carry their own seed).
:func:`run_sweep` returns ``[function(task) for task in tasks]`` in task order, computed

* ``executor="dask"`` (default): on a local Dask cluster sized to the machine (one single-threaded
  worker *process* per core), or on an existing cluster when ``scheduler_address`` is given
  (``"tcp://host:8786"``; start one with ``dask scheduler`` and ``dask worker ADDRESS --nthreads 1``);
* ``executor="serial"``: in this process, one task after the other (the reference);
* or any ``concurrent.futures.Executor`` / ``distributed.Client`` passed in.

Each worker is a separate process running one task at a time, so simulators (NEST's kernel, PyNN's
global state, Brian2's devices) are never shared by two running tasks. Every task must seed its own
simulation (the protocols' ``seed`` field) and call ``sim.setup``: then the results do not depend on
which worker ran it, nor on the order, and equal the serial run's.

Example
-------
>>> from cortexsim.backends.sweeps import run_sweep
>>> results = run_sweep(my_task, [Config(seed=s) for s in range(16)])            # local cluster
>>> results = run_sweep(my_task, configs, scheduler_address="tcp://10.0.0.5:8786")  # a cluster
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["SweepTiming", "run_sweep", "local_cluster_size", "EXECUTORS"]

#: Executors known by name.
EXECUTORS = ("dask", "serial")

#: Environment of worker processes: one thread per numerical library (one core per worker).
WORKER_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class SweepTiming:
    """Wall times of the last sweep (s): cluster start, computation, and the number of workers."""

    executor: str = ""
    n_workers: int = 0
    startup_s: float = 0.0
    compute_s: float = 0.0
    per_task_s: list = field(default_factory=list)


def local_cluster_size() -> int:
    """Workers of the default local cluster: the CPUs this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _timed_call(function: Callable, task):
    start = time.perf_counter()
    result = function(task)
    return result, time.perf_counter() - start


def run_sweep(function: Callable, tasks: Sequence, executor="dask", scheduler_address: str | None = None,
              n_workers: int | None = None, timing: SweepTiming | None = None) -> list:
    """Run ``function(task)`` for every task; results in task order.

    Parameters
    ----------
    function : callable
        Takes one task, returns a picklable result. For Dask it must be picklable (a module-level
        function; functions of ``__main__`` are sent by value).
    tasks : sequence
        Picklable task descriptions (e.g. frozen configs with their own seeds).
    executor : {"dask", "serial"} or Executor or distributed.Client
        Where to run (see the module docstring).
    scheduler_address : str, optional
        Address of a running Dask scheduler; with ``executor="dask"`` the sweep runs on that cluster
        instead of a local one.
    n_workers : int, optional
        Worker processes of the local cluster (default :func:`local_cluster_size`), >= 1.
    timing : SweepTiming, optional
        Filled with wall times and the worker count.

    Raises
    ------
    ValueError
        For an unknown executor name or ``n_workers < 1``.
    """
    tasks = list(tasks)
    timing = timing if timing is not None else SweepTiming()
    if n_workers is not None and int(n_workers) < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    if isinstance(executor, str) and executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS} or an Executor/Client, got {executor!r}")
    if executor == "serial":
        timing.executor, timing.n_workers = "serial", 1
        start = time.perf_counter()
        outcomes = [_timed_call(function, task) for task in tasks]
        timing.compute_s = time.perf_counter() - start
    elif executor == "dask":
        outcomes = _run_on_dask(function, tasks, scheduler_address, n_workers, timing)
    else:  # a concurrent.futures.Executor or a distributed.Client
        timing.executor = type(executor).__name__
        start = time.perf_counter()
        futures = [executor.submit(_timed_call, function, task) for task in tasks]
        outcomes = [future.result() for future in futures]
        timing.compute_s = time.perf_counter() - start
    timing.per_task_s = [seconds for _, seconds in outcomes]
    return [result for result, _ in outcomes]


def _run_on_dask(function, tasks, scheduler_address, n_workers, timing) -> list:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = None
    if scheduler_address is None:
        for key, value in WORKER_ENVIRONMENT.items():
            os.environ.setdefault(key, value)  # inherited by the worker processes
        n = int(n_workers) if n_workers is not None else local_cluster_size()
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        timing.executor = f"dask local cluster ({n} worker processes x 1 thread)"
    else:
        client = Client(scheduler_address)
        timing.executor = f"dask cluster at {scheduler_address}"
    try:
        timing.n_workers = len(client.scheduler_info()["workers"])
        timing.startup_s = time.perf_counter() - start
        compute_start = time.perf_counter()
        # pure=False: equal tasks are still run (and results never shared between tasks)
        futures = client.map(_timed_call, [function] * len(tasks), tasks, pure=False)
        outcomes = client.gather(futures)
        timing.compute_s = time.perf_counter() - compute_start
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return list(outcomes)
