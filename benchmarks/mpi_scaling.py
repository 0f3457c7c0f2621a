"""Benchmark: one ensemble of sampling networks on PyNN/NEST under ``mpirun -np 1`` and ``-np 2``.

An ensemble of M sampling networks of N neurons (random BMs, static synapses, NEST Poisson noise)
plus random sparse excitatory/inhibitory connections between networks (PyNN
``FixedProbabilityConnector`` with a parallel-safe ``NumpyRNG``), T ms, spikes recorded. The driver
(this script without ``--worker``) runs ``mpirun -np P python mpi_scaling.py --worker`` for each P;
each rank writes its local spikes, the driver merges them and compares the runs spike for spike.

NEST draws its Poisson input from one random stream per *virtual process* (MPI processes x threads),
and PyNN's parallel-safe RNG makes the connectivity independent of the process count; so the runs
use a fixed number of virtual processes (default 2: ``-np 1`` with 2 threads, ``-np 2`` with 1
thread each) and must give identical spikes. Needs NEST built with MPI (``make nest-mpi``); with the
binary wheel every rank would simulate the whole network alone, which the driver detects.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mpi_scaling.py [--processes 1,2] [--networks 200]

Writes ``benchmarks/results/mpi_scaling.json`` (wall times per process count, spike counts, equality).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "mpi_scaling.json"
FIT = (-50.61, 0.82)  # activation function of the default parameter set (references §1), mV


def worker(args) -> None:
    """One MPI rank: build, run, write local spikes to ``out/rank<r>.npz``."""
    from pyNN.random import NumpyRNG

    from cortexsim.backends import load_backend
    from cortexsim.models.boltzmann import random_bm
    from cortexsim.parameters import ActivationFit
    from cortexsim.models.lif_translation import bm_to_lif
    from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE

    sim = load_backend("nest")
    start = time.perf_counter()
    sim.setup(timestep=0.1, seed=args.seed, threads=args.threads)
    fit = ActivationFit(*FIT)
    # Weights go in at connection time (FromListConnector) and synapses are static: NEST refuses lists
    # of synapse values in SetStatus under MPI, which Projection.set (build_sampling_network's set_lif)
    # and PyNN's first Connect of a Tsodyks-Markram projection use.
    populations = []
    for k in range(args.networks):
        bm = random_bm(args.neurons, seed=k)
        lif = bm_to_lif(bm, DEFAULT_NEURON, DEFAULT_NOISE, fit)
        cells = DEFAULT_NEURON.as_pynn()
        cells["v_rest"] = lif.e_leak
        population = sim.Population(args.neurons, sim.IF_cond_exp(**cells), label=f"net{k}")
        population.initialize(v=lif.e_leak)
        population.record("spikes")
        pre, post = np.nonzero(~np.eye(args.neurons, dtype=bool))
        for receptor, weights in (("excitatory", lif.excitatory_weights), ("inhibitory", lif.inhibitory_weights)):
            connections = [(int(i), int(j), float(weights[i, j]), 0.1) for i, j in zip(pre, post)]
            sim.Projection(population, population, sim.FromListConnector(connections, column_names=["weight", "delay"]),
                           sim.StaticSynapse(),
                           receptor_type=receptor)
        sim.add_poisson_background(population, DEFAULT_NOISE.rate_exc, DEFAULT_NOISE.rate_inh,
                                   DEFAULT_NOISE.weight_exc, DEFAULT_NOISE.weight_inh)
        populations.append(population)
    ensemble = populations[0]
    for population in populations[1:]:
        ensemble = ensemble + population
    rng = NumpyRNG(seed=args.seed, parallel_safe=True)
    for receptor, weight in (("excitatory", 0.0005), ("inhibitory", 0.0005)):
        sim.Projection(ensemble, ensemble, sim.FixedProbabilityConnector(0.01, rng=rng),
                       sim.StaticSynapse(weight=weight, delay=1.0), receptor_type=receptor)
    built = time.perf_counter()
    sim.run(args.duration)
    ran = time.perf_counter()
    ids, times = [], []
    for population in populations:
        for train in population.get_data("spikes", gather=False).segments[-1].spiketrains:
            ids.append(np.full(len(train), int(train.annotations["channel_id"])))  # global cell ID
            times.append(np.asarray(train.magnitude))
    rank, size = sim.rank(), sim.num_processes()
    np.savez(Path(args.out) / f"rank{rank}.npz", ids=np.concatenate(ids), times=np.concatenate(times),
             size=size, build_s=built - start, run_s=ran - built)
    sim.end()


def run_with(processes: int, args) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"mpi_np{processes}_"))
    threads = args.virtual_processes // processes
    command = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(processes), sys.executable,
               str(Path(__file__).resolve()), "--worker", "--out", str(out), "--threads", str(threads),
               "--networks", str(args.networks), "--neurons", str(args.neurons), "--duration", str(args.duration),
               "--seed", str(args.seed)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    wall = time.perf_counter() - start
    parts = [np.load(out / f"rank{r}.npz") for r in range(processes)]
    if any(int(part["size"]) != processes for part in parts):
        raise RuntimeError("NEST reports one process per rank: it was not built with MPI (run `make nest-mpi`)")
    ids = np.concatenate([p["ids"] for p in parts])
    times = np.concatenate([p["times"] for p in parts])
    order = np.lexsort((times, ids))
    shutil.rmtree(out)
    return {"processes": processes, "threads_per_process": threads, "wall_s": wall,
            "build_s": max(float(p["build_s"]) for p in parts), "run_s": max(float(p["run_s"]) for p in parts),
            "n_spikes": int(ids.size), "ids": ids[order], "times": times[order]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--out")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--virtual-processes", type=int, default=2)
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--neurons", type=int, default=10)
    parser.add_argument("--duration", type=float, default=5000.0)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    from cortexsim.results import library_versions, machine_info, write_json_atomic

    runs = [run_with(int(p), args) for p in args.processes.split(",")]
    reference = runs[0]
    same = all(np.array_equal(r["ids"], reference["ids"]) and np.array_equal(r["times"], reference["times"])
               for r in runs[1:])
    for r in runs:
        print(f"-np {r['processes']} x {r['threads_per_process']} threads: wall {r['wall_s']:.1f} s, "
              f"run {r['run_s']:.1f} s, {r['n_spikes']} spikes", flush=True)
    print(f"identical spikes: {same}")
    nest_info = subprocess.run([sys.executable, "-c", "import nest; print(nest.build_info['have_mpi'])"],
                               capture_output=True, text=True).stdout.strip().splitlines()
    write_json_atomic(RESULTS, {
        "description": __doc__.split("\n\n")[1].replace("\n", " "), "networks": args.networks,
        "neurons_per_network": args.neurons, "duration_ms": args.duration, "seed": args.seed,
        "virtual_processes": args.virtual_processes, "identical_spikes": same,
        "runs": [{k: v for k, v in r.items() if k not in ("ids", "times")} for r in runs],
        "nest_have_mpi": nest_info[-1] if nest_info else "unknown",
        "versions": library_versions(), "machine": machine_info()})
    print(f"written {RESULTS}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
