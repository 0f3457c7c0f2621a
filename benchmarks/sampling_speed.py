"""Run time of the package's sampling networks on each backend against native scripts and plain PyNN.

The same network on every route, in the same process, routes interleaved within each repeat: M
networks of N LIF neurons (random BMs, default parameter set, renewing synapses, the translation of the
NEST calibration) built as ONE block-diagonal network (one population, within-network excitatory and
inhibitory projections), independent 3 kHz excitatory and inhibitory Poisson input per neuron, spikes
recorded, T ms of biological time.

Routes (see ``sampling_speed_routes``): the package (``build_ensemble`` in Poisson mode) on ``nest``
(1 and 2 threads), ``brian2`` and ``brian2_standalone``; native PyNEST, native Brian2 runtime and
native Brian2 ``cpp_standalone`` scripts of the same network; plain PyNN on NEST with PyNN's own
``SpikeSourcePoisson`` (1 thread). Reported per route: build, compile (Brian2; reported apart), run and
total wall time, CPU time of the timed run (process + threads + compiled binaries), load average,
spike count; medians over repeats, package/native ratios of wall and CPU run time, the fastest package
route against plain PyNN, and the acceptance criteria of issue 9.

    python benchmarks/sampling_speed.py [--networks 100] [--neurons 10] [--duration 10000] [--threads 1,2]
        [--repeats 2] [--routes nest,brian2,brian2_standalone,plain_pynn_nest]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from cortexsim.models.boltzmann import random_bm
from cortexsim.parameters import DEFAULT_NOISE
from cortexsim.protocols.calibration import CalibrationConfig, calibrate
from cortexsim.results import library_versions, machine_info, write_json_atomic

try:
    from sampling_speed_routes import (median_entry, run_native_brian2, run_native_nest, run_package,
                                       run_plain_pynn_nest)
except ImportError:  # imported as benchmarks.sampling_speed
    from benchmarks.sampling_speed_routes import (median_entry, run_native_brian2, run_native_nest, run_package,
                                                  run_plain_pynn_nest)

RESULTS = Path(__file__).parent / "results" / "sampling_speed.json"
#: Acceptance of issue 9: package run time / native run time at most this, per simulator.
MAX_RATIO = {"nest": 1.2, "brian2": 1.3, "brian2_standalone": 1.3}
MIN_SPEEDUP_OVER_PLAIN_PYNN = 10.0


def _schedule(routes, threads):
    """(group, side, function, kwargs) of one repeat, routes interleaved."""
    plan = []
    if "nest" in routes:
        for t in threads:
            plan.append((f"nest_{t}", "native", run_native_nest, {"threads": t}))
            plan.append((f"nest_{t}", "package", run_package, {"backend": "nest", "threads": t}))
    for backend in ("brian2", "brian2_standalone"):
        if backend in routes:
            plan.append((backend, "native", run_native_brian2, {"standalone": backend == "brian2_standalone"}))
            plan.append((backend, "package", run_package, {"backend": backend}))
    if "plain_pynn_nest" in routes:
        plan.append(("plain_pynn_nest", "plain", run_plain_pynn_nest, {"threads": 1}))
    return plan


def _report(label, outcome):
    print(f"{label}: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in outcome.items()), flush=True)


def _summarise(results: dict, runs: dict) -> None:
    """Medians, ratios, fastest route and the acceptance criteria into ``results``."""
    package_run, package_cpu, criteria = {}, {}, {}
    for group, sides in runs.items():
        if group == "plain_pynn_nest":
            plain = sides["plain"]
            results[group] = {"runs": plain, "threads": 1,
                              **{k: float(np.median([r[k] for r in plain])) for k in ("build_s", "run_s", "cpu_s",
                                                                                      "total_s")}}
            continue
        entry = median_entry(sides)
        simulator = "nest" if group.startswith("nest_") else group
        route = f"nest ({group.split('_')[1]} threads)" if simulator == "nest" else group
        if simulator == "nest":
            results["threads"][group.split("_")[1]] = entry
        else:
            results[group] = entry
        package_run[route], package_cpu[route] = entry["run_s"]["package"], entry["cpu_s"]["package"]
        criteria[f"{route} <= {MAX_RATIO[simulator]}x native"] = {
            "wall_run_ratio": entry["run_s"]["ratio_package_over_native"],
            "cpu_run_ratio": entry["cpu_s"]["ratio_package_over_native"],
            "wall_total_ratio": entry["total_s"]["ratio_package_over_native"],
            "passed_wall": entry["run_s"]["ratio_package_over_native"] <= MAX_RATIO[simulator],
            "passed_cpu": entry["cpu_s"]["ratio_package_over_native"] <= MAX_RATIO[simulator]}
    if "plain_pynn_nest" in results and package_run:
        plain = results["plain_pynn_nest"]
        fastest = min(package_run, key=package_run.get)
        fastest_cpu = min(package_cpu, key=package_cpu.get)
        results["fastest_route"] = {
            "route": fastest, "run_s": package_run[fastest], "package_run_s": package_run,
            "plain_pynn_nest_run_s": plain["run_s"], "speedup_over_plain_pynn_nest": plain["run_s"] / package_run[fastest],
            "route_by_cpu": fastest_cpu, "package_cpu_s": package_cpu, "plain_pynn_nest_cpu_s": plain["cpu_s"],
            "cpu_speedup_over_plain_pynn_nest": plain["cpu_s"] / package_cpu[fastest_cpu],
            "note": "run time (s) of the timed run, excluding build and compilation; medians over repeats"}
        criteria[f"fastest route >= {MIN_SPEEDUP_OVER_PLAIN_PYNN}x plain PyNN on NEST (1 thread)"] = {
            "wall_speedup": results["fastest_route"]["speedup_over_plain_pynn_nest"],
            "cpu_speedup": results["fastest_route"]["cpu_speedup_over_plain_pynn_nest"],
            "passed_wall": results["fastest_route"]["speedup_over_plain_pynn_nest"] >= MIN_SPEEDUP_OVER_PLAIN_PYNN,
            "passed_cpu": results["fastest_route"]["cpu_speedup_over_plain_pynn_nest"] >= MIN_SPEEDUP_OVER_PLAIN_PYNN}
    results["criteria"] = criteria
    summary = {}
    for group, entry in [*((f"nest_{t}_threads", e) for t, e in results["threads"].items()),
                         *((g, results[g]) for g in ("brian2", "brian2_standalone") if g in results)]:
        summary[f"{group}_run_ratio_wall"] = entry["run_s"]["ratio_package_over_native"]
        summary[f"{group}_run_ratio_cpu"] = entry["cpu_s"]["ratio_package_over_native"]
        summary[f"{group}_total_ratio_wall"] = entry["total_s"]["ratio_package_over_native"]
    if "brian2_standalone" in results:
        entry = results["brian2_standalone"]
        summary["brian2_standalone_compile_ratio_wall"] = entry["compile_s"]["ratio_package_over_native"]
        summary["brian2_standalone_compile_s"] = {k: entry["compile_s"][k] for k in ("package", "native")}
        counts = [0] + [r.get("compilations_so_far", 0) for r in entry["runs"]["package"]]
        summary["brian2_standalone_compilations_per_package_run"] = [b - a for a, b in zip(counts, counts[1:])]
    if "fastest_route" in results:
        summary["fastest_route"] = results["fastest_route"]["route"]
        summary["speedup_over_plain_pynn_nest_wall"] = results["fastest_route"]["speedup_over_plain_pynn_nest"]
        summary["speedup_over_plain_pynn_nest_cpu"] = results["fastest_route"]["cpu_speedup_over_plain_pynn_nest"]
    results["summary"] = summary


def _keep_earlier_nest_entries(results: dict, path: Path) -> None:
    """NEST thread counts measured in an earlier run of ``path`` but not in this one are kept, marked."""
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    earlier = {threads: entry for threads, entry in old.get("nest_threads_from_earlier_run", {}).items()
               if threads not in results["threads"]}
    for threads, entry in old.get("threads", {}).items():
        if threads not in results["threads"]:
            earlier[threads] = {**entry, "load_average_at_end": old.get("load_average_at_end"),
                                "structure": old.get("structure", "one build_sampling_network (population) per network"),
                                "note": "from an earlier run of this benchmark (not re-run in this run)"}
    if earlier:
        results["nest_threads_from_earlier_run"] = earlier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--neurons", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10000.0, help="biological time (ms)")
    parser.add_argument("--threads", default="1,2", help="NEST thread counts (comma separated)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats of every route")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--routes", default="nest,brian2,brian2_standalone,plain_pynn_nest")
    parser.add_argument("--results", type=Path, default=RESULTS, help="output JSON file")
    parser.add_argument("--note", default="", help="remark on this run, stored in the JSON (e.g. reduced sizes)")
    args = parser.parse_args()
    routes = args.routes.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    load_at_start = list(os.getloadavg())
    fit = calibrate(CalibrationConfig(seed=args.seed, backend="nest"), progress=True).fit
    bms = [random_bm(args.neurons, seed=k) for k in range(args.networks)]
    results = {"description": __doc__.split("\n\n")[1].replace("\n", " "), "networks": args.networks,
               "neurons_per_network": args.neurons, "duration_ms": args.duration, "seed": args.seed,
               "repeats": args.repeats, "bm_seeds": f"0..{args.networks - 1}", "activation_fit": fit.to_dict(),
               "noise": DEFAULT_NOISE.to_dict(), "structure": "one block-diagonal network (one population) per route",
               "load_average_at_start": load_at_start, "threads": {}}
    runs: dict = {}
    for repeat in range(args.repeats):
        for group, side, function, kwargs in _schedule(routes, threads):
            outcome = function(bms, fit, args.duration, seed=args.seed + repeat, **kwargs)
            runs.setdefault(group, {}).setdefault(side, []).append(outcome)
            _report(f"repeat={repeat} {group} {side}", outcome)
    _summarise(results, runs)
    for name, criterion in results["criteria"].items():
        print(f"{name}: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in criterion.items()), flush=True)
    results["load_average_at_end"] = list(os.getloadavg())
    loads = [r["load_average"][0] for sides in runs.values() for side in sides.values() for r in side]
    results["summary"]["load_average_1min_range"] = [min(loads + [load_at_start[0]]), max(loads)]
    results["command"] = " ".join(["python", *sys.argv])
    if args.note:
        results["run_note"] = args.note
    results["note"] = ("every route starts anew in each repeat: brian2_standalone (package and native) compiles "
                       "into a fresh project folder every time (compile_s compares compilation with compilation; "
                       "for the package it is the warm-up run of 0.1 ms, compilation plus one launch); "
                       "the machine (2 cores) is shared with other jobs: wall times are inflated by their load "
                       "(load averages recorded per run); cpu_s is the CPU time of the timed run (process, all "
                       "threads and the compiled binaries it waited for) and is less sensitive to load")
    _keep_earlier_nest_entries(results, args.results)
    results["versions"] = library_versions()
    results["machine"] = machine_info()
    write_json_atomic(args.results, results)
    print(f"written {args.results}")


if __name__ == "__main__":
    main()
