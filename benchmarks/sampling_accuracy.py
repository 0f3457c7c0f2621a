"""Sampling accuracy of LIF networks on NEST and Brian2 (foundation issue, references §1).

10 random 5-neuron BMs (``random_bm(5, seed=k)``, k = 0..9: W = (A + A^T)/2, A_ij ~ N(0, 1), zero
diagonal, b ~ N(0, 1)), default parameter set, calibrated activation function per backend.
For each backend and synapse kind (renewing, static) the 10 networks run side by side as one
population (a block-diagonal BM: no connections between networks, independent Poisson noise) for
1e5 ms; D_KL in both directions is read at 1e3, 1e4 and 1e5 ms from the same run (from t = 0).
A single 1e4-ms read-out is a noisy estimate of the D_KL one gets after 1e4 ms of sampling (its
spread between windows is as large as the criterion's margin), so the run is also cut into
consecutive windows of each checkpoint's length (ten of 1e4 ms, a hundred of 1e3 ms) and the mean
D_KL over the windows is reported per network (``*_window_mean``): the expected D_KL at that
sampling duration. Both read-outs are in the results.

Writes ``benchmarks/results/sampling_accuracy.json``.

    python benchmarks/sampling_accuracy.py [--duration 100000] [--backends nest,brian2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cortexsim.analysis.divergence import dkl_over_time
from cortexsim.analysis.states import joint_distribution_in_windows, joint_distribution_over_time
from cortexsim.backends import load_backend
from cortexsim.models.boltzmann import block_diagonal, block_offsets, joint, random_bm
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE
from cortexsim.models.sampling_network import build_sampling_network
from cortexsim.protocols.calibration import CalibrationConfig, calibrate
from cortexsim.protocols.progress import run_with_progress
from cortexsim.results import library_versions, machine_info, write_json_atomic

RESULTS = Path(__file__).parent / "results" / "sampling_accuracy.json"


def window_means(trains, target, checkpoints, duration_ms: float) -> dict[str, np.ndarray]:
    """Mean D_KL over the consecutive windows of each checkpoint's length that tile the run."""
    means = {"dkl_sampled_target_window_mean": [], "dkl_target_sampled_window_mean": []}
    for window in checkpoints:
        n_windows = int(round(duration_ms / window))
        per_window = dkl_over_time(joint_distribution_in_windows(trains, DEFAULT_NEURON.tau_refrac, 0.0,
                                                                 float(window), n_windows), target)
        for key, values in per_window.items():
            means[f"{key}_window_mean"].append(float(np.mean(values)))
            if key == "dkl_sampled_target" and window == 1e4:
                means["dkl_sampled_target_per_1e4ms_window"] = np.asarray(values)
    return {k: np.array(v) for k, v in means.items()}


def run_backend(backend: str, synapses: str, bms, fit, duration_ms: float, checkpoints, seed: int) -> dict:
    """Run all BMs as one population and return per-network D_KL curves at ``checkpoints``."""
    sim = load_backend(backend)
    sim.setup(timestep=0.1, seed=seed)
    network = build_sampling_network(sim, block_diagonal(bms), fit, DEFAULT_NEURON, DEFAULT_NOISE, synapses)
    start = time.perf_counter()
    run_with_progress(sim, duration_ms, label=f"{backend}/{synapses}")
    wall = time.perf_counter() - start
    spiketrains = network.spiketrains()
    sim.end()
    curves = {"dkl_sampled_target": [], "dkl_target_sampled": []}
    window_curves = {"dkl_sampled_target_window_mean": [], "dkl_target_sampled_window_mean": []}
    for bm, offset in zip(bms, block_offsets(bms)):
        trains = spiketrains[offset:offset + bm.n_units]
        over_time = joint_distribution_over_time(trains, DEFAULT_NEURON.tau_refrac, 0.0, checkpoints)
        for key, values in dkl_over_time(over_time, joint(bm)).items():
            curves[key].append(np.asarray(values))
        for key, values in window_means(trains, joint(bm), checkpoints, duration_ms).items():
            window_curves.setdefault(key, []).append(values)
    single_windows = np.array(window_curves.pop("dkl_sampled_target_per_1e4ms_window", []))
    curves.update(window_curves)
    summary = {"run_wall_time_s": wall, "per_network": {k: np.array(v) for k, v in curves.items()}}
    if single_windows.size:
        # How much a single 1e4-ms read-out scatters: the median over networks in each window.
        summary["dkl_sampled_target_1e4ms_median_per_window"] = np.median(single_windows, axis=0)
    for key, values in curves.items():
        values = np.array(values)  # (networks, checkpoints)
        summary[key] = {
            f"{t:g}ms": {"median": float(np.median(values[:, i])), "min": float(values[:, i].min()),
                         "max": float(values[:, i].max()),
                         "quartiles": [float(q) for q in np.percentile(values[:, i], [25, 75])]}
            for i, t in enumerate(checkpoints)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=1e5, help="simulated time (ms)")
    parser.add_argument("--backends", default="nest,brian2")
    parser.add_argument("--seed", type=int, default=2024, help="simulation seed")
    args = parser.parse_args()
    bm_seeds = list(range(10))
    bms = [random_bm(5, seed=k) for k in bm_seeds]
    checkpoints = np.array([t for t in (1e3, 1e4, 1e5) if t <= args.duration] or [args.duration])
    results = {"description": __doc__.split("\n\n")[1].replace("\n", " "), "duration_ms": args.duration,
               "bm_seeds": bm_seeds, "simulation_seed": args.seed, "dt_ms": 0.1,
               "neuron": DEFAULT_NEURON.to_dict(), "noise": DEFAULT_NOISE.to_dict(),
               "checkpoints_ms": checkpoints, "backends": {}}
    for backend in args.backends.split(","):
        calibration = calibrate(CalibrationConfig(seed=args.seed, backend=backend), progress=True)
        entry = {"activation_fit": calibration.fit.to_dict(), "calibration_from_cache": calibration.from_cache}
        for synapses in ("renewing", "static"):
            entry[synapses] = run_backend(backend, synapses, bms, calibration.fit, args.duration, checkpoints,
                                          args.seed)
            print(backend, synapses, {k: entry[synapses][k] for k in ("dkl_sampled_target",)}, flush=True)
        last = f"{checkpoints[-1]:g}ms"
        entry["static_over_renewing_at_end"] = (entry["static"]["dkl_sampled_target"][last]["median"]
                                                / entry["renewing"]["dkl_sampled_target"][last]["median"])
        results["backends"][backend] = entry
    fits = [results["backends"][b]["activation_fit"] for b in results["backends"]]
    if len(fits) == 2:
        results["calibration_agreement"] = {
            "delta_v_p05_mv": abs(fits[0]["v_p05"] - fits[1]["v_p05"]),
            "relative_delta_alpha": abs(fits[0]["alpha"] - fits[1]["alpha"]) / fits[0]["alpha"]}
    results["criteria"] = {}
    for backend, entry in results["backends"].items():
        renewing = entry["renewing"]
        medians = {key: {t: v["median"] for t, v in renewing[key].items()}
                   for key in ("dkl_sampled_target", "dkl_sampled_target_window_mean")}
        results["criteria"][backend] = {
            "expected_dkl_at_1e4ms_le_0.03": medians["dkl_sampled_target_window_mean"].get("10000ms", np.inf) <= 0.03,
            "first_window_dkl_at_1e4ms_le_0.03": medians["dkl_sampled_target"].get("10000ms", np.inf) <= 0.03,
            "dkl_at_1e5ms_le_0.02": medians["dkl_sampled_target"].get("100000ms", np.inf) <= 0.02,
            "static_at_least_3x_worse_at_end": entry["static_over_renewing_at_end"] >= 3.0}
    results["versions"] = library_versions()
    results["machine"] = machine_info()
    write_json_atomic(RESULTS, results)
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
