"""Wall time of the package's PyNN-built sampling networks on NEST against a native PyNEST script.

The same network both ways, in the same process, interleaved: M networks of N LIF neurons
(random BMs, default parameter set, renewing synapses, the translation of the NEST calibration),
all-to-all recurrent excitatory and inhibitory projections within each network, independent
3 kHz excitatory and inhibitory Poisson input per neuron, spikes recorded, T ms of biological time.

* package: ``load_backend("nest")`` + ``build_sampling_network`` per network (PyNN populations and
  projections; noise from NEST ``poisson_generator`` without relay neurons).
* native: ``nest.Create`` / ``nest.Connect`` of exactly the same neurons, weights and noise.

Reported: build, run and total wall time and process CPU time of each, their ratios (package /
native), the load average, spike counts of
both (same statistics expected, not the same spikes). Writes ``benchmarks/results/sampling_speed.json``.

    python benchmarks/sampling_speed.py [--networks 100] [--neurons 10] [--duration 10000] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from cortexsim.backends import load_backend
from cortexsim.models.boltzmann import random_bm
from cortexsim.models.lif_translation import DEFAULT_NEURON, DEFAULT_NOISE, bm_to_lif
from cortexsim.models.sampling_network import build_sampling_network
from cortexsim.protocols.calibration import CalibrationConfig, calibrate
from cortexsim.results import library_versions, machine_info, write_json_atomic

try:
    from sampling_speed_routes import (median_entry, run_native_brian2, run_package_brian2,
                                       run_plain_pynn_nest)
except ImportError:  # imported as benchmarks.sampling_speed
    from benchmarks.sampling_speed_routes import (median_entry, run_native_brian2, run_package_brian2,
                                                  run_plain_pynn_nest)

RESULTS = Path(__file__).parent / "results" / "sampling_speed.json"


def run_package(bms, fit, duration_ms, threads, seed):
    sim = load_backend("nest")
    cpu_start = time.process_time()
    start = time.perf_counter()
    sim.setup(timestep=0.1, seed=seed, threads=threads)
    networks = [build_sampling_network(sim, bm, fit, DEFAULT_NEURON, DEFAULT_NOISE, "renewing", label=f"net{i}")
                for i, bm in enumerate(bms)]
    built = time.perf_counter()
    sim.run(duration_ms)
    ran = time.perf_counter()
    cpu = time.process_time() - cpu_start
    n_spikes = sum(len(st) for net in networks for st in net.spiketrains())
    sim.end()
    return {"build_s": built - start, "run_s": ran - built, "total_s": ran - start, "cpu_s": cpu,
            "n_spikes": n_spikes}


def run_native(bms, fit, duration_ms, threads, seed):
    import nest

    neuron = DEFAULT_NEURON
    cpu_start = time.process_time()
    start = time.perf_counter()
    nest.ResetKernel()
    nest.set(resolution=0.1, local_num_threads=threads, rng_seed=seed)
    recorder = nest.Create("spike_recorder")
    all_neurons = []
    for bm in bms:
        lif = bm_to_lif(bm, neuron, DEFAULT_NOISE, fit)
        cells = nest.Create("iaf_cond_exp", bm.n_units, params={
            "C_m": 1000.0 * neuron.cm, "g_L": 1000.0 * neuron.cm / neuron.tau_m, "E_L": lif.e_leak,
            "V_th": neuron.v_thresh, "V_reset": neuron.v_reset, "t_ref": neuron.tau_refrac,
            "tau_syn_ex": neuron.tau_syn_E, "tau_syn_in": neuron.tau_syn_I,
            "E_ex": neuron.e_rev_E, "E_in": neuron.e_rev_I, "V_m": lif.e_leak})
        ids = np.array(cells.tolist())
        pre, post = np.nonzero(~np.eye(bm.n_units, dtype=bool))
        for weights, sign, tau in ((lif.excitatory_weights, 1.0, neuron.tau_syn_E),
                                   (lif.inhibitory_weights, -1.0, neuron.tau_syn_I)):
            nest.Connect(ids[pre], ids[post], "one_to_one",
                         {"synapse_model": "tsodyks2_synapse", "weight": sign * 1000.0 * weights[pre, post],
                          "delay": np.full(pre.size, 0.1), "U": 1.0, "u": 1.0, "x": 1.0, "tau_rec": tau,
                          "tau_fac": 0.0})
        all_neurons.append(cells)
    neurons = all_neurons[0]
    for cells in all_neurons[1:]:
        neurons = neurons + cells
    for rate, weight in ((DEFAULT_NOISE.rate_exc, DEFAULT_NOISE.weight_exc),
                         (DEFAULT_NOISE.rate_inh, -DEFAULT_NOISE.weight_inh)):
        generator = nest.Create("poisson_generator", params={"rate": rate})
        nest.Connect(generator, neurons, "all_to_all", {"weight": 1000.0 * weight, "delay": 0.1})
    nest.Connect(neurons, recorder)
    built = time.perf_counter()
    nest.Simulate(duration_ms)
    ran = time.perf_counter()
    return {"build_s": built - start, "run_s": ran - built, "total_s": ran - start,
            "cpu_s": time.process_time() - cpu_start, "n_spikes": int(recorder.n_events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--neurons", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10000.0, help="biological time (ms)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats per route")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--routes", default="nest,brian2,brian2_standalone,plain_pynn_nest")
    parser.add_argument("--results", type=Path, default=RESULTS, help="output JSON file")
    args = parser.parse_args()
    routes = args.routes.split(",")
    fit = calibrate(CalibrationConfig(seed=args.seed, backend="nest"), progress=True).fit
    bms = [random_bm(args.neurons, seed=k) for k in range(args.networks)]
    results = {"description": __doc__.split("\n\n")[1].replace("\n", " "), "networks": args.networks,
               "neurons_per_network": args.neurons, "duration_ms": args.duration, "seed": args.seed,
               "bm_seeds": f"0..{args.networks - 1}", "activation_fit": fit.to_dict(),
               "noise": DEFAULT_NOISE.to_dict(), "threads": {}}
    for threads in (int(t) for t in args.threads.split(",") if "nest" in routes):
        runs = {"package": [], "native": []}
        for repeat in range(args.repeats):
            for route, function in (("native", run_native), ("package", run_package)):
                outcome = function(bms, fit, args.duration, threads, args.seed + repeat)
                runs[route].append(outcome)
                print(f"threads={threads} repeat={repeat} {route}: " +
                      ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in outcome.items()),
                      flush=True)
        entry = {"runs": runs}
        for key in ("build_s", "run_s", "total_s", "cpu_s"):
            package = float(np.median([r[key] for r in runs["package"]]))
            native = float(np.median([r[key] for r in runs["native"]]))
            entry[key] = {"package": package, "native": native, "ratio_package_over_native": package / native}
        results["threads"][str(threads)] = entry
        print(f"threads={threads}: total ratio package/native = {entry['total_s']['ratio_package_over_native']:.3f}, "
              f"run ratio = {entry['run_s']['ratio_package_over_native']:.3f}", flush=True)
    results["load_average_at_end"] = os.getloadavg()
    results["note"] = ("wall times are only comparable on an otherwise idle machine; cpu_s (process CPU "
                       "time, NEST runs in this process) is robust to other load")
    _other_routes(results, routes, bms, fit, args)
    results["versions"] = library_versions()
    results["machine"] = machine_info()
    write_json_atomic(args.results, results)
    print(f"written {args.results}")


def _report(label, outcome):
    print(f"{label}: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in outcome.items()), flush=True)


def _other_routes(results, routes, bms, fit, args) -> None:
    """Brian2 runtime and standalone (package vs native), plain PyNN on NEST, and the fastest route."""
    for backend in ("brian2", "brian2_standalone"):
        if backend not in routes:
            continue
        runs = {"native": [], "package": []}
        for repeat in range(args.repeats):
            native = run_native_brian2(bms, fit, args.duration, backend == "brian2_standalone", args.seed + repeat)
            _report(f"{backend} repeat={repeat} native", native)
            package = run_package_brian2(bms, fit, args.duration, backend, args.seed + repeat)
            _report(f"{backend} repeat={repeat} package", package)
            runs["native"].append(native)
            runs["package"].append(package)
        results[backend] = median_entry(runs)
        print(f"{backend}: run ratio package/native = {results[backend]['run_s']['ratio_package_over_native']:.3f}",
              flush=True)
    if "plain_pynn_nest" in routes:
        plain = [run_plain_pynn_nest(bms, fit, args.duration, 1, args.seed + repeat) for repeat in range(args.repeats)]
        for outcome in plain:
            _report("plain PyNN on NEST (SpikeSourcePoisson, 1 thread)", outcome)
        results["plain_pynn_nest"] = {"runs": plain, "threads": 1,
                                      "run_s": float(np.median([r["run_s"] for r in plain])),
                                      "cpu_s": float(np.median([r["cpu_s"] for r in plain])),
                                      "total_s": float(np.median([r["total_s"] for r in plain]))}
        package_runs = {f"nest ({t} threads)": e["run_s"]["package"] for t, e in results["threads"].items()}
        package_runs.update({b: results[b]["run_s"]["package"] for b in ("brian2", "brian2_standalone") if b in results})
        package_cpu = {f"nest ({t} threads)": e["cpu_s"]["package"] for t, e in results["threads"].items()
                       if "cpu_s" in e}
        package_cpu.update({b: results[b]["cpu_s"]["package"] for b in ("brian2", "brian2_standalone") if b in results})
        if package_runs:
            fastest = min(package_runs, key=package_runs.get)
            results["fastest_route"] = {
                "route": fastest, "run_s": package_runs[fastest], "package_run_s": package_runs,
                "plain_pynn_nest_run_s": results["plain_pynn_nest"]["run_s"],
                "speedup_over_plain_pynn_nest": results["plain_pynn_nest"]["run_s"] / package_runs[fastest],
                "package_cpu_s": package_cpu, "plain_pynn_nest_cpu_s": results["plain_pynn_nest"]["cpu_s"],
                "cpu_speedup_over_plain_pynn_nest": results["plain_pynn_nest"]["cpu_s"] / min(package_cpu.values()),
                "note": "run time (s), excluding build and compilation"}
            print(f"fastest package route: {fastest}, {results['fastest_route']['speedup_over_plain_pynn_nest']:.1f}x "
                  "faster than plain PyNN on NEST", flush=True)


if __name__ == "__main__":
    main()
