"""Cost of an ensemble against its size: wall time per biological second for M = 10, 100, 1000 on NEST.

Ensemble mode (no Poisson source), N = 10 neurons per network (so that M = 10 can supply 2K = 60
distinct sources from other networks), K = 30 excitatory + 30 inhibitory background sources per
neuron (the default background: depressing synapses and their weights), random targets W, b ~ N(0, 1)
translated with the default Poisson activation fit of references §1. Each (M, threads) point runs in its own process: build, 200 ms
warm-up (kick included), then a timed run; ``--repeats`` rounds, each running every size, so that a
change of load hits all sizes alike. Reported per point: wall and CPU time (process, all threads) per
biological second, and the load average before and after; the growth slopes come from the medians.
The machine's 2 cores are shared with other engineers: compare sizes only within one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ensemble_scaling.py

Writes benchmarks/results/ensemble_scaling.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
N_NEURONS, IN_DEGREE, WARM_UP_MS = 10, 30, 200.0


def _cpu_seconds() -> float:
    """CPU time (s) of this process, all threads."""
    times = os.times()
    return times.user + times.system


def single(M: int, threads: int, duration_ms: float, seed: int) -> dict:
    from cortexsim.backends import load_backend
    from cortexsim.models.boltzmann import random_bm
    from cortexsim.models.ensemble import build_ensemble, matched_background
    from cortexsim.parameters import DEFAULT_NOISE, ActivationFit
    from speed_at_scale_native import peak_rss_mb  # VmHWM: ru_maxrss would include the parent's peak at the fork

    load_before = os.getloadavg()
    sim = load_backend("nest")
    tic = time.perf_counter()
    sim.setup(timestep=0.1, seed=seed, threads=threads)
    bms = [random_bm(N_NEURONS, seed=seed * 100000 + m) for m in range(M)]
    ensemble = build_ensemble(sim, bms, ActivationFit(v_p05=-50.61, alpha=0.82), mode="ensemble",
                              background=matched_background(DEFAULT_NOISE, IN_DEGREE, 50.0), seed=seed)
    build_s = time.perf_counter() - tic
    tic = time.perf_counter()
    sim.run(WARM_UP_MS)
    warm_s = time.perf_counter() - tic
    ensemble.spiketrains(clear=True)
    tic, cpu_tic = time.perf_counter(), _cpu_seconds()
    sim.run(duration_ms)
    run_s, cpu_s = time.perf_counter() - tic, _cpu_seconds() - cpu_tic
    counts = np.array([len(st) for st in ensemble.spiketrains()])
    sim.end()
    return {"n_networks": M, "threads": threads, "n_neurons_total": M * N_NEURONS,
            "background": ensemble.background.to_dict(),
            "background_synapses": 2 * IN_DEGREE * M * N_NEURONS, "duration_ms": duration_ms,
            "build_s": build_s, "warm_up_s": warm_s, "run_s": run_s,
            "wall_s_per_bio_s": run_s / (duration_ms * 1e-3), "cpu_s": cpu_s,
            "cpu_s_per_bio_s": cpu_s / (duration_ms * 1e-3), "mean_rate_hz": float(counts.mean() / duration_ms * 1e3),
            "peak_rss_mb": peak_rss_mb(),
            "load_average_before": list(load_before), "load_average_after": list(os.getloadavg())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--single", nargs=2, type=int, metavar=("M", "THREADS"), help="one point (internal)")
    parser.add_argument("--duration", type=float, default=1000.0, help="timed biological time (ms)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0, help="wall-time limit per point (s)")
    parser.add_argument("--repeats", type=int, default=2, help="repeats, sizes interleaved within each")
    parser.add_argument("--note", default="", help="remark on this run, stored in the JSON (e.g. reduced sizes)")
    args = parser.parse_args(argv)
    if args.single:
        print("RESULT " + json.dumps(single(args.single[0], args.single[1], args.duration, args.seed)))
        return 0
    from cortexsim.results import library_versions, machine_info, write_json_atomic

    points = []
    for repeat in range(args.repeats):  # sizes interleaved within each repeat: load changes hit all sizes
        for M in args.sizes:
            for threads in args.threads:
                command = [sys.executable, __file__, "--single", str(M), str(threads), "--duration",
                           str(args.duration), "--seed", str(args.seed)]
                try:
                    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout,
                                          env={**os.environ, "OMP_NUM_THREADS": "1"})
                except subprocess.TimeoutExpired:
                    points.append({"n_networks": M, "threads": threads, "repeat": repeat,
                                   "error": f"not finished within {args.timeout:g} s (stopped)",
                                   "load_average_at_stop": list(os.getloadavg())})
                    print("timeout", M, threads, flush=True)
                    continue
                lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
                if done.returncode != 0 or not lines:
                    points.append({"n_networks": M, "threads": threads, "repeat": repeat, "error": done.stderr[-2000:]})
                else:
                    points.append({**json.loads(lines[0][len("RESULT "):]), "repeat": repeat})
                print(points[-1].get("wall_s_per_bio_s", "error"), M, threads, flush=True)
    growth, medians = {}, {}
    for threads in args.threads:
        for M in args.sizes:
            ok = [p for p in points if p["threads"] == threads and p["n_networks"] == M and "run_s" in p]
            if ok:
                medians[f"M{M}_{threads}_threads"] = {
                    key: float(np.median([p[key] for p in ok])) for key in ("wall_s_per_bio_s", "cpu_s_per_bio_s")}
        sizes = [M for M in args.sizes if f"M{M}_{threads}_threads" in medians]
        if len(sizes) >= 2:
            for key in ("wall_s_per_bio_s", "cpu_s_per_bio_s"):
                values = [medians[f"M{M}_{threads}_threads"][key] for M in sizes]
                growth[f"{threads}_threads_loglog_slope_{key.split('_')[0]}"] = float(
                    np.polyfit(np.log(sizes), np.log(values), 1)[0])
    loads = [p.get("load_average_before", [np.nan])[0] for p in points] + \
        [p.get("load_average_after", [np.nan])[0] for p in points]
    summary = {"medians": medians, "cost_growth": growth,
               "load_average_1min_range": [float(np.nanmin(loads)), float(np.nanmax(loads))]}
    for key, value in medians.items():
        if key.startswith(f"M{max(args.sizes)}_"):
            summary[f"{key}_wall_s_per_bio_s"] = value["wall_s_per_bio_s"]
            summary[f"{key}_cpu_s_per_bio_s"] = value["cpu_s_per_bio_s"]
    write_json_atomic(ROOT / "results" / "ensemble_scaling.json", {
        "description": __doc__.split("\n\n")[1].replace("\n", " "),
        "n_neurons_per_network": N_NEURONS, "in_degree": IN_DEGREE, "warm_up_ms": WARM_UP_MS,
        "summary": summary, "points": points, "cost_growth": growth,
        "growth_definition": ("slope of log(s per biological s) against log(M), from the medians over repeats; "
                              "wall: elapsed time of the timed run, cpu: CPU time of the process (all threads) "
                              "during it, which a busy machine inflates less"),
        "seed": args.seed, "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "duration_ms": args.duration, "sizes": args.sizes, "threads": args.threads, "repeats": args.repeats,
        "peak_rss_mb_definition": "VmHWM of the point's own process (not ru_maxrss, which includes the parent's "
                                  "peak at the fork)",
        "scheduling_note": f"parent process nice {os.nice(0)}; points inherit it; the machine is shared "
                           "(load averages recorded per point), CPU times are recorded beside wall times",
        **({"run_note": args.note} if args.note else {}),
        "versions": library_versions(), "machine": machine_info()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
