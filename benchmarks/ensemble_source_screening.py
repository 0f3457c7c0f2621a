"""Screening: does sharing background sources within a network cause the ensemble's D_KL floor?

Hypothesis (issue 7): with K = 30 of (M - 1) N = 245 candidate sources, two neurons of one network
share about (2K)^2 / 245 = 15 sources (about half of them excitatory for one and inhibitory for the
other), so their backgrounds are correlated -- a systematic distortion that pairwise W, b can absorb
only partly. Variants: fewer sources at matched mean conductance (K = 15, weights x2), sources
disjoint within each network (``source_sharing="disjoint"``, needs 2K <= M - 1), more networks.

Every variant runs the ensemble half of benchmarks/ensemble_sampling.py (same seed, targets, seeds of
every run, optimizer) at a SHORTER budget: the activation function is recalibrated under the
variant's background, then untrained and trained evaluations. Per variant: median D_KL(sampled ||
target) untrained and trained (over the benchmark's 50 networks), the trained D_KL extrapolated to
infinite sampling time (mean over windows of T/4, T/2, T fitted by D_inf + B / T, as in
ensemble_sampling_floor.py), the free-membrane std and activation width under the background, and
the correlation of the net background input (exc. minus inh. source counts, 5 ms bins) of neurons
of the same network vs of different networks (:func:`cortexsim.analysis.background.net_input_correlations`).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ensemble_source_screening.py VARIANT [VARIANT ...]

Variants are named ``K<k>_<random|disjoint>[_M<m>]``; each result is merged into
benchmarks/results/ensemble_source_screening.json as soon as it is done. The screening was run (and
stays pinned) with STATIC background synapses, the default before the depressing ones that
benchmarks/ensemble_background_timescales.py motivates.
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from cortexsim.analysis.background import net_input_correlations
from cortexsim.analysis.divergence import sampling_error_fit
from cortexsim.backends.registry import load_backend
from cortexsim.config import config_to_dict
from cortexsim.models.boltzmann import joint, random_bm
from cortexsim.models.ensemble import equivalent_noise
from cortexsim.protocols.calibration import CalibrationConfig, calibrate
from cortexsim.seeds import derive_seed
from cortexsim.protocols.ensemble import EnsembleConfig
from cortexsim.protocols.ensemble import build, measure_background, train
from cortexsim.results import library_versions, machine_info, write_json_atomic

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "ensemble_source_screening.json"
BENCHMARK_NETWORKS = 50  # D_KL medians are over the benchmark's 50 networks (targets of the same seed)


def screening_config(in_degree: int, sharing: str, n_networks: int, iterations: int, seed: int,
                     sampling_end_ms: float = 2000.0) -> EnsembleConfig:
    """The benchmark's settings at the screening budget (iterations, 1 s -> sampling_end_ms, 20 s evaluations)."""
    return EnsembleConfig(seed=seed, n_networks=n_networks, n_neurons=5, in_degree=in_degree, source_sharing=sharing,
                          train_iterations=iterations, sampling_ms=1000.0, sampling_end_ms=sampling_end_ms,
                          average_fraction=0.5, learning_rate=1.0, schedule="inverse", schedule_tau=50.0, momentum=0.5,
                          eval_duration_ms=20000.0, calibration_ms=10000.0, background_synapse="static")


def evaluate_with_background(sim, config, settings, bms, targets, fit, noise, sim_seed) -> dict:
    """Evaluation run: D_KL per network (full T and extrapolated) and within-network input correlation.

    Medians are over the first 50 networks (the benchmark's targets) also when M > 50."""
    ensemble = build(sim, settings, bms, fit, "ensemble", noise, sim_seed)
    T, t0 = config.eval_duration_ms, config.burn_in_ms
    sim.run(t0 + T)
    spiketrains = ensemble.spiketrains()
    sim.end()
    dkl_T, dkl_inf = [], []
    for s, target in list(zip(ensemble.blocks, targets))[:BENCHMARK_NETWORKS]:
        error_fit = sampling_error_fit(spiketrains[s], joint(target), config.neuron.tau_refrac, t0, T, splits=(4, 2, 1))
        dkl_T.append(error_fit["dkl_mean"][-1])
        dkl_inf.append(error_fit["dkl_inf"])
    correlation = net_input_correlations(spiketrains, ensemble.sources_exc, ensemble.sources_inh, config.n_neurons,
                                         t0, t0 + T)
    rates = np.array([np.sum(np.asarray(st.magnitude) >= t0) for st in spiketrains]) / T * 1e3
    return {"dkl_median": float(np.median(dkl_T)), "dkl_inf_median": float(np.median(dkl_inf)),
            "dkl_per_network": dkl_T, "dkl_inf_per_network": dkl_inf, "net_input_correlation": correlation,
            "mean_rate_hz": float(rates.mean())}


def run_variant(name: str, iterations: int, seed: int, sampling_end_ms: float = 2000.0) -> dict:
    match = re.fullmatch(r"K(\d+)_(random|disjoint)(?:_M(\d+))?", name)
    if not match:
        raise ValueError(f"variant must look like K30_random or K15_disjoint_M100, got {name!r}")
    K, sharing, M = int(match.group(1)), match.group(2), int(match.group(3) or 50)
    config = screening_config(K, sharing, M, iterations, seed, sampling_end_ms)
    tic = time.perf_counter()
    sim = load_backend(config.backend)
    settings = config.run_settings()
    targets = [random_bm(config.n_neurons, seed=derive_seed(config.seed, 10, m)) for m in range(M)]
    poisson_fit = calibrate(CalibrationConfig(seed=config.seed, backend=config.backend, neuron=config.neuron,
                                              noise=config.noise, dt_ms=config.dt_ms)).fit
    bg = measure_background(sim, config, settings, targets, poisson_fit, "ensemble")
    fit, source_rate = bg["fit"], float(np.mean(bg["rates_hz"]))
    noise = equivalent_noise(settings.background, "ensemble", config.noise, source_rate)
    print(f"{name}: ensemble fit v_p05 {fit.v_p05:.2f} mV, alpha {fit.alpha:.3f} mV, free-membrane std "
          f"{bg['membrane'].summary()['std_mv']:.2f} mV, rate {source_rate:.1f} Hz", flush=True)
    untrained = evaluate_with_background(sim, config, settings, targets, targets, fit, noise,
                                         derive_seed(config.seed, 5, 1))
    print(f"{name}: untrained median {untrained['dkl_median']:.4f}, within-network r "
          f"{untrained['net_input_correlation']['within_mean']:.4f}", flush=True)
    trained_bms, history = train(sim, settings, config.training(), targets, targets, fit, "ensemble", noise,
                                 derive_seed(config.seed, 6, 1))
    trained = evaluate_with_background(sim, config, settings, trained_bms, targets, fit, noise,
                                       derive_seed(config.seed, 7, 1))
    print(f"{name}: trained median {trained['dkl_median']:.4f} (extrapolated {trained['dkl_inf_median']:.4f}), "
          f"within-network r {trained['net_input_correlation']['within_mean']:.4f} "
          f"|r| {trained['net_input_correlation']['within_mean_abs']:.4f}", flush=True)
    return {"in_degree": K, "source_sharing": sharing, "n_networks": M,
            "weight_uS": settings.background.weight_exc,
            "activation_fit": fit.to_dict(), "activation_alpha_per_source_set": bg["group_alpha"].tolist(),
            "v_p05_sd_across_source_sets_mv": float(np.std(bg["group_v_p05"])),
            "free_membrane": bg["membrane"].summary(), "source_rate_hz": source_rate,
            "untrained": untrained, "trained": trained,
            "training_dkl_median_last10": float(np.mean(history["dkl_median"][-10:])),
            "config": config_to_dict(config), "wall_s": time.perf_counter() - tic}


def summary_table(variants: dict) -> dict:
    """One row per variant; ``per_network_ratio_to_baseline``: median over networks of trained D_KL relative
    to K30_random at the same budget, with the paired Wilcoxon p-value."""
    from scipy.stats import wilcoxon

    rows = {}
    for key, v in variants.items():
        budget = key.split("_it", 1)[1]
        within = v["trained"]["net_input_correlation"]
        row = {"dkl_untrained": v["untrained"]["dkl_median"], "dkl_trained": v["trained"]["dkl_median"],
               "dkl_trained_extrapolated": v["trained"]["dkl_inf_median"],
               "within_network_r": within["within_mean"], "within_network_abs_r": within["within_mean_abs"],
               "between_network_abs_r": within["between_mean_abs"],
               "free_membrane_std_mv": v["free_membrane"]["std_mv"],
               "activation_alpha_mv": v["activation_fit"]["alpha"], "source_rate_hz": v["source_rate_hz"]}
        base = variants.get(f"K30_random_it{budget}")
        if base is not None and base is not v:
            a, b = (np.asarray(x["trained"]["dkl_per_network"]) for x in (base, v))
            row["per_network_ratio_to_baseline"] = float(np.median(b / a))
            row["paired_wilcoxon_p"] = float(wilcoxon(a, b).pvalue)
        rows[key] = row
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sampling-end", type=float, default=2000.0, help="sampling time of the last iteration (ms)")
    args = parser.parse_args(argv)
    for name in args.variants:
        result = run_variant(name, args.iterations, args.seed, args.sampling_end)
        result["load_average_at_end"] = list(os.getloadavg())
        saved = json.loads(OUT.read_text()) if OUT.exists() else {"variants": {}}
        saved["variants"][f"{name}_it{args.iterations}_end{args.sampling_end / 1e3:g}s"] = result
        saved["summary"] = summary_table(saved["variants"])
        saved.update(description=__doc__.split("\n\n")[1].replace("\n", " "), versions=library_versions(),
                     machine=machine_info(), command=" ".join([Path(sys.executable).name, *sys.argv]))
        write_json_atomic(OUT, saved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
