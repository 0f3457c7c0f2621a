"""Speed at MNIST scale: the package against native scripts of the same networks, in the same run.

Parts (``--parts``, all by default), each interleaving package and native routes within every repeat:

``rbm``
    A 794-visible + 500-hidden RBM (random weights, see ``speed_at_scale_native.rbm_problem``;
    397,000 visible-hidden pairs, one renewing synapse per pair and direction, excitatory or
    inhibitory by sign: 794,000 synapses), 2 x 3 kHz Poisson noise, ``--rbm-ms`` of biological time.
    Package: ``load_backend(name)`` + ``build_sampling_network`` (which creates only the synapses W
    has); native: ``speed_at_scale_native`` (Brian2 cpp_standalone with lean, source-ordered
    synapses; PyNEST). Times: build, compile, run, spike read (arrays), whole process.
``cd``
    CD iterations of the same RBM on the fastest route (brian2_standalone): 10 clamped images x 60 ms
    + 400 ms free per iteration (MNIST training images binarised at 0.5, with their one-hot labels).
    Package: the network built for training (both receptor synapses on every visible-hidden pair,
    since weights change sign), the CD engine's ``ClampedStatistics`` (one launch per iteration),
    ``CDUpdate`` and ``set_parameters``; native: ``NativeStandaloneCD`` (one launch per iteration).
    Per iteration: wall time and its parts, after one compilation.
``ensembles``
    1000 networks x 10 neurons in Poisson mode (``sampling_speed_routes``) on NEST and
    brian2_standalone against native scripts: whole process (build + compile + run + spike read).
``build``
    Building the RBM on NEST in a fresh process, for sampling (one synapse per nonzero weight) and for
    training (bipartite mask, both receptors): wall and CPU time, peak memory after the build and
    after the first parameter setting.

Writes ``benchmarks/results/speed_at_scale.json`` with a ``summary``: ``rbm_standalone_ratio``
(package / native run time), ``rbm_cd_iteration_s`` (package, s per iteration, median),
``ens1000_standalone_ratio`` and ``ens1000_nest_ratio`` (package / native, whole process),
``build_s_rbm_nest``, ``build_peak_mb_rbm_nest``; load averages per run. The 2 cores are shared:
CPU times are reported beside wall times, and each part records how it was scheduled (nice value;
on kernels that group processes by session, "autogroup", a process's nice value counts only within
its own session, so the session's autogroup nice value is what gives a timing run its core). Wall
times are reported as measured.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/speed_at_scale.py [--parts rbm,cd,ensembles,build]

A timing run on a shared machine, in its own session with autogroup nice -5:

    setsid sh -c 'echo -5 > /proc/self/autogroup; OMP_NUM_THREADS=1 exec nice -n -5 \
        .venv/bin/python benchmarks/speed_at_scale.py --parts cd,build'
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sampling_speed_routes import median_entry, run_native_brian2, run_native_nest, run_package  # noqa: E402
from speed_at_scale_native import (FIT, CDSchedule, NativeStandaloneCD, cpu_seconds, native_nest_rbm,  # noqa: E402
                                   native_standalone_rbm, own_cpu_seconds, rbm_problem, scheduling)

from cortexsim.backends import load_backend  # noqa: E402
from cortexsim.backends.spikes import spike_arrays  # noqa: E402
from cortexsim.models.boltzmann import random_bm  # noqa: E402
from cortexsim.results import library_versions, machine_info, write_json_atomic  # noqa: E402

RESULTS = HERE / "results" / "speed_at_scale.json"
N_VISIBLE, N_HIDDEN = 794, 500


def bipartite_mask(n_visible: int, n_hidden: int) -> np.ndarray:
    mask = np.zeros((n_visible + n_hidden,) * 2, dtype=bool)
    mask[:n_visible, n_visible:] = True
    return mask | mask.T


def mnist_rows(n: int, seed: int) -> np.ndarray:
    """``n`` MNIST training images (drawn with ``seed``), binarised at 0.5, with their one-hot labels: (n, 794)."""
    from cortexsim.models.datasets import mnist

    train = mnist("train")
    rows = np.random.default_rng(seed).choice(train.x.shape[0], n, replace=False)
    return np.hstack([(train.x[rows] > 0.5).astype(float), train.targets[rows].astype(float)])


# --- RBM sampling --------------------------------------------------------------------------------

def package_rbm(backend: str, bm, duration_ms: float, seed: int) -> dict:
    """The package: build_sampling_network (only W's synapses), warm-up run (compiles), timed run, spike read."""
    from cortexsim.models.sampling_network import build_sampling_network

    sim = load_backend(backend)
    if backend == "brian2_standalone":
        sim.set_project_root(tempfile.mkdtemp(prefix="speed_at_scale_projects_"))
    stamps = {"start": time.perf_counter()}
    sim.setup(timestep=0.1, seed=seed, **({"threads": 1} if backend == "nest" else {}))
    network = build_sampling_network(sim, bm, FIT)
    stamps["built"] = time.perf_counter()
    if backend != "nest":
        sim.run(0.1)
    stamps["compiled"], cpu_start = time.perf_counter(), cpu_seconds()
    sim.run(duration_ms)
    stamps["ran"], cpu = time.perf_counter(), cpu_seconds() - cpu_start
    times, _ = spike_arrays(network.population)
    stamps["read"] = time.perf_counter()
    n_synapses = len(network.projection_exc) + len(network.projection_inh)
    sim.end()
    out = {"build_s": stamps["built"] - stamps["start"], "compile_s": stamps["compiled"] - stamps["built"],
           "run_s": stamps["ran"] - stamps["compiled"], "read_s": stamps["read"] - stamps["ran"],
           "total_s": stamps["read"] - stamps["start"], "cpu_s": cpu, "n_spikes": int(times.size),
           "n_synapses": int(n_synapses), "load_average": list(os.getloadavg())}
    return out


def part_rbm(args) -> dict:
    bm = rbm_problem(N_VISIBLE, N_HIDDEN, seed=args.seed)
    out = {}
    for backend in args.rbm_backends:
        runs = {"package": [], "native": []}
        for repeat in range(args.repeats):
            order = ("native", "package") if repeat % 2 == 0 else ("package", "native")
            for side in order:
                if side == "package":
                    result = package_rbm(backend, bm, args.rbm_ms, args.seed + repeat)
                elif backend == "brian2_standalone":
                    result = native_standalone_rbm(bm, args.rbm_ms, args.seed + repeat)
                else:
                    result = native_nest_rbm(bm, args.rbm_ms, args.seed + repeat)
                runs[side].append(result)
                print(f"rbm {backend} {side}: " + json.dumps({k: round(v, 3) for k, v in result.items()
                                                              if isinstance(v, float)}), flush=True)
        out[backend] = median_entry(runs, keys=("build_s", "compile_s", "run_s", "read_s", "total_s", "cpu_s"))
    return out


# --- CD iterations --------------------------------------------------------------------------------

def package_cd(bm, images: np.ndarray, schedule: CDSchedule, iterations: int, seed: int) -> dict:
    """CD iterations with the package on brian2_standalone: the CD engine's parts, one launch per iteration.

    The network is built for training (``connectivity`` = the bipartite mask: both receptor synapses on
    every visible-hidden pair, compiled fused); each iteration is the engine's ``ClampedStatistics``
    (10 rows clamped through leak potentials, then the free phase, as ONE parameter schedule; spikes
    as arrays), the ``CDUpdate`` and ``network.set_parameters`` (weights and leaks as run arguments
    of the next launch). The first iteration compiles; the median is over the others.
    """
    from cortexsim.models.cd_learning import CDUpdate, LearningRateSchedule, MomentumOptimizer, bipartite_mask
    from cortexsim.models.sampling_network import build_sampling_network
    from cortexsim.protocols.cd_engine import ClampedStatistics, TimedSimulator

    sim = load_backend("brian2_standalone")
    sim.set_project_root(tempfile.mkdtemp(prefix="speed_at_scale_cd_"))
    tic = time.perf_counter()
    sim.setup(timestep=0.1, seed=seed)
    mask = bipartite_mask(N_VISIBLE, N_HIDDEN)
    network = build_sampling_network(sim, bm, FIT, connectivity=mask)
    build_s = time.perf_counter() - tic
    statistics = ClampedStatistics(images, np.arange(N_VISIBLE), schedule.n_images, schedule.clamp_ms,
                                   schedule.settle_ms, schedule.readout_dt_ms, schedule.clamp_bias)
    update = CDUpdate(LearningRateSchedule(0.01, "constant"), MomentumOptimizer.create(bm.n_units), mask)
    timed, rng = TimedSimulator(sim), np.random.default_rng(seed)
    W, b = bm.W, bm.b
    timings = []
    for k in range(iterations + 1):
        compilations = sim.compilation_count()
        t0, run_before, cpu0, own0 = time.perf_counter(), timed.run_wall_s, cpu_seconds(), own_cpu_seconds()
        stats = statistics(network, timed, k, schedule.model_ms, rng)
        t1 = time.perf_counter()
        W, b = update(k, W, b, stats.data, stats.model)
        network.set_parameters(W, b)
        t2 = time.perf_counter()
        run_s = timed.run_wall_s - run_before
        timings.append({"run_s": run_s, "statistics_s": t1 - t0 - run_s, "update_and_set_s": t2 - t1,
                        "total_s": t2 - t0, "cpu_s": cpu_seconds() - cpu0, "python_cpu_s": own_cpu_seconds() - own0,
                        "load_average_1min": os.getloadavg()[0],
                        "compiled": sim.compilation_count() > compilations,
                        "model_mean_activity": stats.record["model_mean_activity"]})
    n_synapses = network.recurrent.n_synapses()
    sim.end()
    steady = [t for t in timings[1:] if not t["compiled"]]
    return {"build_s": build_s, "first_iteration_s": timings[0]["total_s"], "iterations": timings,
            "iteration_s": float(np.median([t["total_s"] for t in steady])) if steady else float("nan"),
            "iteration_cpu_s": float(np.median([t["cpu_s"] for t in steady])) if steady else float("nan"),
            "breakdown_median_s": {key: float(np.median([t[key] for t in steady])) if steady else float("nan")
                                   for key in ("run_s", "statistics_s", "update_and_set_s")},
            "compilations_after_first": sum(t["compiled"] for t in timings[1:]), "n_synapses": n_synapses,
            "load_average": list(os.getloadavg())}


def native_cd(bm, images: np.ndarray, schedule: CDSchedule, iterations: int, seed: int) -> dict:
    tic = time.perf_counter()
    cd = NativeStandaloneCD(bm, N_VISIBLE, schedule, seed)
    setup_s = time.perf_counter() - tic
    timings = []
    try:
        for k in range(iterations):
            batch = images[(k * schedule.n_images + np.arange(schedule.n_images)) % images.shape[0]]
            cpu0, own0 = cpu_seconds(), own_cpu_seconds()
            timings.append({**cd.iteration(bm, batch)["timing"]})
            timings[-1].update({"cpu_s": cpu_seconds() - cpu0, "python_cpu_s": own_cpu_seconds() - own0,
                                "load_average_1min": os.getloadavg()[0]})
    finally:
        cd.close()
    return {"build_s": cd.build_s, "compile_s": cd.compile_s, "setup_s": setup_s, "iterations": timings,
            "iteration_s": float(np.median([t["total_s"] for t in timings])),
            "iteration_cpu_s": float(np.median([t["cpu_s"] for t in timings])), "load_average": list(os.getloadavg())}


def _pooled(blocks: list[dict], key: str = "iterations") -> dict:
    """Median wall and CPU time per iteration over the steady iterations of several blocks."""
    steady = [t for block in blocks for t in block[key] if not t.get("compiled", False)]
    out = {"iteration_s": float(np.median([t["total_s"] for t in steady])),
           "iteration_cpu_s": float(np.median([t["cpu_s"] for t in steady])), "n_iterations": len(steady)}
    if steady and "python_cpu_s" in steady[0]:
        out["iteration_python_cpu_s"] = float(np.median([t["python_cpu_s"] for t in steady]))
    return out


def part_cd(args) -> dict:
    """Blocks of CD iterations, native and package alternating (N P P N ...), each block compiled anew."""
    bm = rbm_problem(N_VISIBLE, N_HIDDEN, seed=args.seed)
    images = mnist_rows(200, args.seed)
    schedule = CDSchedule()
    out = {"schedule": schedule.__dict__, "pixels_on_fraction": float(images[:, :784].mean()),
           "blocks": {"native": [], "package": []}}
    for repeat in range(args.repeats):
        order = ("native", "package") if repeat % 2 == 0 else ("package", "native")
        for side in order:
            function = native_cd if side == "native" else package_cd
            block = function(bm, images, schedule, args.cd_iterations, args.seed + repeat)
            out["blocks"][side].append(block)
            print(f"cd {side} (repeat {repeat}): {block['iteration_s']:.3f} s per iteration, "
                  f"{block['iteration_cpu_s']:.3f} s CPU", flush=True)
    for side in ("native", "package"):
        out[side] = _pooled(out["blocks"][side])
    out["package"]["breakdown_median_s"] = {
        key: float(np.median([t[key] for block in out["blocks"]["package"] for t in block["iterations"]
                              if not t["compiled"]])) for key in ("run_s", "statistics_s", "update_and_set_s")}
    out["ratio_package_over_native"] = out["package"]["iteration_s"] / out["native"]["iteration_s"]
    return out


# --- ensembles ------------------------------------------------------------------------------------

def part_ensembles(args) -> dict:
    bms = [random_bm(10, seed=args.seed * 100000 + m) for m in range(args.networks)]
    out = {}
    for backend in args.ensemble_backends:
        runs = {"package": [], "native": []}
        for repeat in range(args.repeats):
            order = ("native", "package") if repeat % 2 == 0 else ("package", "native")
            for side in order:
                if side == "package":
                    result = run_package(bms, FIT, args.ensemble_ms, backend, args.seed + repeat)
                elif backend == "nest":
                    result = run_native_nest(bms, FIT, args.ensemble_ms, 1, args.seed + repeat)
                else:
                    result = run_native_brian2(bms, FIT, args.ensemble_ms, True, args.seed + repeat)
                runs[side].append(result)
                print(f"ensembles {backend} {side}: " + json.dumps({k: round(v, 3) for k, v in result.items()
                                                                    if isinstance(v, float)}), flush=True)
        out[backend] = median_entry(runs, keys=("build_s", "compile_s", "run_s", "read_s", "total_s", "cpu_s"))
    return out


# --- NEST build -----------------------------------------------------------------------------------

def peak_rss_mb() -> float:
    """Peak resident memory (MB) of this process since it started: ``VmHWM`` of /proc/self/status.

    (``getrusage``'s ``ru_maxrss`` is not used: on Linux a process started by another one inherits the
    parent's peak at the time of the fork, here the ~1 GB of the benchmark after its other parts.)
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_worker(seed: int, mode: str) -> dict:
    """In a fresh process: build the RBM on NEST, set its parameters twice; times (wall, CPU) and peak memory.

    ``mode="sampling"``: ``build_sampling_network`` as for sampling (one synapse per nonzero weight,
    794,000); ``"training"``: with the bipartite mask (both receptors on every pair, 1,588,000).
    """
    from cortexsim.models.cd_learning import bipartite_mask
    from cortexsim.models.sampling_network import build_sampling_network

    bm = rbm_problem(N_VISIBLE, N_HIDDEN, seed=seed)
    sim = load_backend("nest")
    connectivity = bipartite_mask(N_VISIBLE, N_HIDDEN) if mode == "training" else None
    tic, cpu0 = time.perf_counter(), cpu_seconds()
    sim.setup(timestep=0.1, seed=seed, threads=1)
    network = build_sampling_network(sim, bm, FIT, connectivity=connectivity)
    built, cpu1 = time.perf_counter(), cpu_seconds()
    peak_built = peak_rss_mb()
    network.set_parameters(bm.W * 0.9, bm.b)
    first_set, cpu2 = time.perf_counter(), cpu_seconds()
    network.set_parameters(bm.W, bm.b)
    second_set = time.perf_counter()
    return {"mode": mode, "build_s": built - tic, "build_cpu_s": cpu1 - cpu0, "peak_rss_mb_after_build": peak_built,
            "first_set_parameters_s": first_set - built, "first_set_parameters_cpu_s": cpu2 - cpu1,
            "second_set_parameters_s": second_set - first_set, "build_and_first_set_s": first_set - tic,
            "n_connections": int(sum(network.recurrent.n_synapses().values())),
            "peak_rss_mb": peak_rss_mb(), "load_average": list(os.getloadavg())}


def part_build(args) -> dict:
    out = {}
    for mode in ("sampling", "training"):
        runs = []
        for _ in range(args.repeats):
            completed = subprocess.run([sys.executable, __file__, "--build-worker", str(args.seed), "--build-mode", mode],
                                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if completed.returncode != 0:
                raise RuntimeError(completed.stderr[-3000:])
            runs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
            print(f"build nest {mode}: {runs[-1]}", flush=True)
        out[mode] = {"runs": runs, **{key: float(np.median([r[key] for r in runs])) for key in
                                      ("build_s", "build_cpu_s", "first_set_parameters_s", "first_set_parameters_cpu_s",
                                       "build_and_first_set_s", "peak_rss_mb_after_build", "peak_rss_mb")}}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="rbm,cd,ensembles,build")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rbm-ms", type=float, default=1000.0)
    parser.add_argument("--rbm-backends", default="brian2_standalone,nest")
    parser.add_argument("--cd-iterations", type=int, default=5)
    parser.add_argument("--networks", type=int, default=1000)
    parser.add_argument("--ensemble-ms", type=float, default=10000.0)
    parser.add_argument("--ensemble-backends", default="brian2_standalone,nest")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--build-worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--build-mode", default="sampling", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_worker is not None:
        print(json.dumps(build_worker(args.build_worker, args.build_mode)))
        return 0
    args.rbm_backends = args.rbm_backends.split(",")
    args.ensemble_backends = args.ensemble_backends.split(",")
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    results.update({"description": __doc__.split("\n\n")[1].replace("\n", " "), "seed": args.seed,
                    "repeats": args.repeats, "versions": library_versions(), "machine": machine_info()})
    functions = {"rbm": part_rbm, "cd": part_cd, "ensembles": part_ensembles, "build": part_build}
    for part in args.parts.split(","):
        load_before = list(os.getloadavg())
        tic = time.perf_counter()
        results[part] = functions[part](args)
        results[part].update({"load_average_before": load_before, "load_average_after": list(os.getloadavg()),
                              "scheduling": scheduling(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "wall_s": time.perf_counter() - tic, "parameters": {
                                  "rbm_ms": args.rbm_ms, "cd_iterations": args.cd_iterations,
                                  "networks": args.networks, "ensemble_ms": args.ensemble_ms}})
        write_json_atomic(args.results, results)
    results["summary"] = summarise(results)
    write_json_atomic(args.results, results)
    print(json.dumps(results["summary"], indent=1))
    return 0


def summarise(results: dict) -> dict:
    summary = {}
    if "rbm" in results and "brian2_standalone" in results["rbm"]:
        entry = results["rbm"]["brian2_standalone"]
        summary["rbm_standalone_ratio"] = entry["run_s"]["ratio_package_over_native"]
        summary["rbm_standalone_cpu_ratio"] = entry["cpu_s"]["ratio_package_over_native"]
    if "rbm" in results and "nest" in results["rbm"]:
        summary["rbm_nest_ratio"] = results["rbm"]["nest"]["run_s"]["ratio_package_over_native"]
    if "cd" in results:
        summary["rbm_cd_iteration_s"] = results["cd"]["package"]["iteration_s"]
        summary["rbm_cd_iteration_native_s"] = results["cd"]["native"]["iteration_s"]
        summary["rbm_cd_iteration_cpu_s"] = results["cd"]["package"]["iteration_cpu_s"]
        summary["rbm_cd_iteration_native_cpu_s"] = results["cd"]["native"]["iteration_cpu_s"]
        if "iteration_python_cpu_s" in results["cd"]["package"]:
            summary["rbm_cd_iteration_python_cpu_s"] = results["cd"]["package"]["iteration_python_cpu_s"]
    for backend in ("brian2_standalone", "nest"):
        if "ensembles" in results and backend in results["ensembles"]:
            key = "ens1000_standalone_ratio" if backend == "brian2_standalone" else "ens1000_nest_ratio"
            summary[key] = results["ensembles"][backend]["total_s"]["ratio_package_over_native"]
    if "build" in results:
        sampling, training = results["build"]["sampling"], results["build"]["training"]
        summary["build_s_rbm_nest"] = sampling["build_s"]
        summary["build_cpu_s_rbm_nest"] = sampling["build_cpu_s"]
        summary["build_peak_mb_rbm_nest"] = sampling["peak_rss_mb_after_build"]
        summary["first_set_parameters_s_rbm_nest"] = sampling["first_set_parameters_s"]
        summary["peak_mb_rbm_nest_incl_first_set"] = sampling["peak_rss_mb"]
        summary["build_s_rbm_nest_training"] = training["build_s"]
        summary["build_peak_mb_rbm_nest_training"] = training["peak_rss_mb_after_build"]
        summary["peak_mb_rbm_nest_training_incl_first_set"] = training["peak_rss_mb"]
    summary["criteria"] = {
        "rbm_standalone_ratio <= 1.3": summary.get("rbm_standalone_ratio", np.inf) <= 1.3,
        "rbm_cd_iteration_s < 1.0": summary.get("rbm_cd_iteration_s", np.inf) < 1.0,
        "ens1000_standalone_ratio <= 1.2": summary.get("ens1000_standalone_ratio", np.inf) <= 1.2,
        "ens1000_nest_ratio <= 1.2": summary.get("ens1000_nest_ratio", np.inf) <= 1.2,
        "build_s_rbm_nest < 10": summary.get("build_s_rbm_nest", np.inf) < 10.0,
        "build_peak_mb_rbm_nest < 2048": summary.get("build_peak_mb_rbm_nest", np.inf) < 2048.0}
    summary["load_averages"] = {part: [results[part].get("load_average_before"), results[part].get("load_average_after")]
                                for part in ("rbm", "cd", "ensembles", "build") if part in results}
    summary["scheduling"] = {part: results[part].get("scheduling") for part in ("rbm", "cd", "ensembles", "build")
                             if part in results}
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
