"""Benchmark: a 16-seed sampling sweep serially and on a local 2-worker Dask cluster.

Each task is ``sample(SamplingConfig(seed=s, backend="nest", n_neurons=5, duration_ms=T))`` with the
activation fit given (no calibration inside the tasks); the result kept per seed is the spike count
per neuron and D_KL(sampled || target). Acceptance (issue 9): Dask wall time (cluster start-up
included) <= 0.6x the serial wall time, identical per-seed results.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dask_sweep.py [--seeds 16] [--duration 20000] [--workers 2]

Writes ``benchmarks/results/dask_sweep.json``. On a busy machine the speed-up reflects the cores free.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from cortexsim.backends.sweeps import SweepTiming, run_sweep
from cortexsim.parameters import ActivationFit
from cortexsim.results import library_versions, machine_info, write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "dask_sweep.json"
FIT = ActivationFit(v_p05=-50.61, alpha=0.82)  # default parameter set on NEST (references §1)


def sampling_task(task: tuple) -> dict:
    """One seed of the sweep: (seed, duration_ms) -> spike counts and D_KL."""
    from cortexsim.protocols.sampling import SamplingConfig, sample

    seed, duration_ms = task
    result = sample(SamplingConfig(seed=seed, backend="nest", n_neurons=5, duration_ms=duration_ms), fit=FIT)
    return {"seed": seed, "spike_counts": [len(st) for st in result.spiketrains],
            "dkl_sampled_target": result.dkl_sampled_target}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20000.0, help="biological time per seed (ms)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tasks = [(seed, args.duration) for seed in range(1, args.seeds + 1)]
    serial_start = time.perf_counter()
    serial = run_sweep(sampling_task, tasks, executor="serial")
    serial_s = time.perf_counter() - serial_start
    print(f"serial: {serial_s:.1f} s", flush=True)
    timing = SweepTiming()
    dask_start = time.perf_counter()
    parallel = run_sweep(sampling_task, tasks, executor="dask", n_workers=args.workers, timing=timing)
    dask_s = time.perf_counter() - dask_start
    identical = parallel == serial
    print(f"dask ({timing.n_workers} workers): {dask_s:.1f} s (start-up {timing.startup_s:.1f} s), "
          f"ratio {dask_s / serial_s:.2f}, identical per-seed results: {identical}", flush=True)
    write_json_atomic(RESULTS, {
        "description": __doc__.split("\n\n")[1].replace("\n", " "), "seeds": [t[0] for t in tasks],
        "duration_ms": args.duration, "workers": timing.n_workers, "executor": timing.executor,
        "serial_wall_s": serial_s, "dask_wall_s": dask_s, "dask_startup_s": timing.startup_s,
        "ratio_dask_over_serial": dask_s / serial_s, "identical_results": identical,
        "per_seed": serial, "load_average_at_end": os.getloadavg(),
        "versions": library_versions(), "machine": machine_info()})
    print(f"written {RESULTS}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
