"""Static against depressing background synapses on 5-unit targets (issue 22, part 5), on NEST.

The paper's setting (Dold et al. 2019) feeds the ensemble background through STATIC synapses and lets
CD absorb the background's correlations; the package defaults to DEPRESSING ones. At the budget of
benchmarks/ensemble_sampling.py (150 iterations of 1 -> 3 s) the static-background ensemble ended 5.1x
above the Poisson-driven networks (median D_KL 0.0132 vs 0.0026 after 50 s; extrapolated floor 0.0082
vs 0.0006, benchmarks/ensemble_sampling_floor.py); the source-sharing / in-degree / M screening
(benchmarks/ensemble_source_screening.py) did not close it, but the trained floor fell 7x from 60 to
150 iterations there. This script measures what training length (and the background synapse kind) do
at the screening's evaluation budget, with the Poisson-driven networks trained and evaluated
identically beside them.

Each variant ``<mode>_<synapse>_K<k>_it<n>_end<s>s`` (mode ``poisson`` or ``ensemble``; the Poisson
networks do not depend on the background synapse kind and are named ``poisson_K<k>_it<n>_end<s>s``):
the 50 networks x 5 units of the benchmark's targets (same seed), calibration of the activation
function under the variant's background (ensemble mode), CD training with the benchmark's optimizer
(eta 1 / (1 + t / 50), momentum 0.5, mean of the last half of the iterates, sampling time growing
from 1 s to ``end``), then one 20 s evaluation: median D_KL(sampled || target) after 20 s, the floor
extrapolated to infinite sampling time (windows T/4, T/2, T fitted by D_inf + B / T per network, as in
ensemble_sampling_floor.py) and the finite-sampling coefficient B (ms), a measure of the mixing time.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ensemble_static_background.py \
        ensemble_static poisson [--iterations 300] [--sampling-end 3000] [--seed 1]

Each variant is merged into benchmarks/results/ensemble_static_background.json as soon as it is done
(the file is the checkpoint); the ``summary`` holds, per budget, every variant's medians and the ratio
of each ensemble variant's median D_KL (and floor) to the Poisson networks' at the same budget and seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ensemble_source_screening import screening_config  # noqa: E402

from cortexsim.analysis.background import net_input_correlations  # noqa: E402
from cortexsim.analysis.divergence import sampling_error_fit  # noqa: E402
from cortexsim.backends.registry import load_backend  # noqa: E402
from cortexsim.config import config_to_dict  # noqa: E402
from cortexsim.models.boltzmann import joint, random_bm  # noqa: E402
from cortexsim.models.ensemble import equivalent_noise  # noqa: E402
from cortexsim.protocols.calibration import CalibrationConfig, calibrate  # noqa: E402
from cortexsim.protocols.ensemble import build, measure_background, train  # noqa: E402
from cortexsim.results import library_versions, machine_info, write_json_atomic  # noqa: E402
from cortexsim.seeds import derive_seed  # noqa: E402

OUT = HERE / "results" / "ensemble_static_background.json"
N_NETWORKS = 50
REFERENCE = {
    "source": "benchmarks/results/ensemble_sampling.json (static-background run quoted in protocols/ensemble.py) "
              "and ensemble_sampling_floor.json",
    "budget": "150 iterations of 1 -> 3 s, 50 s evaluation, seed 1",
    "static_ensemble_dkl_median": 0.0132, "poisson_dkl_median": 0.0026,
    "static_ensemble_floor": 0.0082, "poisson_floor": 0.0006,
    "static_B_ms": 234.0, "poisson_B_ms": 104.0,
    "depressing_ensemble_dkl_median": 0.0025, "depressing_B_ms": 76.0,
}


def evaluate(sim, config, settings, bms, targets, fit, mode, noise, sim_seed) -> dict:
    """One evaluation run: per network D_KL after T, its floor D_inf and B (fit over T/4, T/2, T)."""
    network = build(sim, settings, bms, fit, mode, noise, sim_seed)
    T, t0 = config.eval_duration_ms, config.burn_in_ms
    sim.run(t0 + T)
    spiketrains = network.spiketrains()
    sim.end()
    dkl_T, dkl_inf, bias = [], [], []
    for s, target in zip(network.blocks, targets):
        error_fit = sampling_error_fit(spiketrains[s], joint(target), config.neuron.tau_refrac, t0, T, splits=(4, 2, 1))
        dkl_T.append(error_fit["dkl_mean"][-1])
        dkl_inf.append(error_fit["dkl_inf"])
        bias.append(error_fit["bias_B_ms"])
    out = {"dkl_median": float(np.median(dkl_T)), "dkl_inf_median": float(np.median(dkl_inf)),
           "bias_B_ms_median": float(np.median(bias)), "dkl_per_network": dkl_T, "dkl_inf_per_network": dkl_inf,
           "bias_B_ms_per_network": bias}
    if mode == "ensemble":
        out["net_input_correlation"] = net_input_correlations(spiketrains, network.sources_exc, network.sources_inh,
                                                              config.n_neurons, t0, t0 + T)
    rates = np.array([np.sum(np.asarray(st.magnitude) >= t0) for st in spiketrains]) / T * 1e3
    out["mean_rate_hz"] = float(rates.mean())
    return out


def run_variant(name: str, in_degree: int, iterations: int, seed: int, sampling_end_ms: float) -> dict:
    """Calibrate (ensemble mode), evaluate untrained, train, evaluate trained; ``name`` is ``poisson``,
    ``ensemble_static`` or ``ensemble_depressing``."""
    match = re.fullmatch(r"poisson|ensemble_(static|depressing)", name)
    if not match:
        raise ValueError(f"variant must be poisson, ensemble_static or ensemble_depressing, got {name!r}")
    mode, synapse = ("poisson", "depressing") if name == "poisson" else ("ensemble", match.group(1))
    config = dataclasses.replace(screening_config(in_degree, "random", N_NETWORKS, iterations, seed, sampling_end_ms),
                                 background_synapse=synapse)
    tic = time.perf_counter()
    sim = load_backend(config.backend)
    settings = config.run_settings()
    targets = [random_bm(config.n_neurons, seed=derive_seed(config.seed, 10, m)) for m in range(N_NETWORKS)]
    poisson_fit = calibrate(CalibrationConfig(seed=config.seed, backend=config.backend, neuron=config.neuron,
                                              noise=config.noise, dt_ms=config.dt_ms)).fit
    extra = {}
    if mode == "ensemble":
        bg = measure_background(sim, config, settings, targets, poisson_fit, "ensemble")
        fit, source_rate = bg["fit"], float(np.mean(bg["rates_hz"]))
        noise = equivalent_noise(settings.background, "ensemble", config.noise, source_rate)
        extra = {"free_membrane": bg["membrane"].summary(), "source_rate_hz": source_rate,
                 "background_inputs": bg["inputs"].summary(), "weight_uS": settings.background.weight_exc}
    else:
        fit, noise = poisson_fit, config.noise
    untrained = evaluate(sim, config, settings, targets, targets, fit, mode, noise, derive_seed(config.seed, 5, 1))
    print(f"{name}: untrained median {untrained['dkl_median']:.4f}", flush=True)
    trained_bms, history = train(sim, settings, config.training(), targets, targets, fit, mode, noise,
                                 derive_seed(config.seed, 6, 1))
    trained = evaluate(sim, config, settings, trained_bms, targets, fit, mode, noise, derive_seed(config.seed, 7, 1))
    print(f"{name}: trained median {trained['dkl_median']:.4f}, floor {trained['dkl_inf_median']:.4f}, "
          f"B {trained['bias_B_ms_median']:.0f} ms", flush=True)
    return {"mode": mode, "background_synapse": synapse if mode == "ensemble" else None, "in_degree": in_degree,
            "iterations": iterations, "sampling_end_ms": sampling_end_ms, "seed": seed,
            "activation_fit": fit.to_dict(), **extra, "untrained": untrained, "trained": trained,
            "training_dkl_median_last10": float(np.mean(history["dkl_median"][-10:])),
            "training_wall_s": history["timing"].get("training_wall_s"),
            "config": config_to_dict(config), "wall_s": time.perf_counter() - tic}


def summary_table(variants: dict) -> dict:
    """Per variant the medians; ensemble variants also relative to the Poisson variant of the same budget."""
    rows = {}
    for key, v in variants.items():
        row = {"dkl_untrained": v["untrained"]["dkl_median"], "dkl_trained": v["trained"]["dkl_median"],
               "dkl_trained_floor": v["trained"]["dkl_inf_median"],
               "bias_B_ms": v["trained"]["bias_B_ms_median"], "wall_s": v["wall_s"]}
        budget = key.split("_K", 1)[1]
        poisson = variants.get(f"poisson_K{budget}")
        if v["mode"] == "ensemble":
            # no Poisson variant at this budget: the floor against the benchmark's Poisson floor (150 iterations;
            # the floor does not depend on the evaluation time, D_KL(T) does)
            row["ratio_floor_to_reference_poisson_floor_150_iterations"] = (row["dkl_trained_floor"]
                                                                           / REFERENCE["poisson_floor"])
        if v["mode"] == "ensemble" and poisson is not None:
            row["ratio_to_poisson"] = row["dkl_trained"] / poisson["trained"]["dkl_median"]
            row["ratio_floor_to_poisson"] = row["dkl_trained_floor"] / max(poisson["trained"]["dkl_inf_median"], 1e-12)
            row["within_1.5x_of_poisson"] = bool(row["ratio_to_poisson"] <= 1.5)
        rows[key] = row
    return rows


def screening_account() -> dict:
    """The finite-sampling coefficient B of every static-background variant of the screening
    (benchmarks/results/ensemble_source_screening.json): B = (D_KL(T) - D_inf) T per network, median."""
    screening = json.loads((HERE / "results" / "ensemble_source_screening.json").read_text())
    rows = {}
    for key, v in screening["variants"].items():
        T = v["config"]["eval_duration_ms"]
        trained = v["trained"]
        bias = (np.asarray(trained["dkl_per_network"]) - np.asarray(trained["dkl_inf_per_network"])) * T
        rows[key] = {"dkl_trained": trained["dkl_median"], "dkl_trained_floor": trained["dkl_inf_median"],
                     "bias_B_ms": float(np.median(bias)), "eval_ms": T}
    return rows


def write_summary(saved: dict) -> dict:
    """Summary: every variant run here, the screening's static variants, and the account of the limit."""
    saved["summary"] = summary_table(saved.get("variants", {}))
    screening = screening_account()
    saved["screening_static_variants"] = screening
    B = [row["bias_B_ms"] for row in screening.values()]
    poisson_B = REFERENCE["poisson_B_ms"]
    saved["summary"]["account"] = {
        "static_bias_B_ms_range_over_screening_variants": [min(B), max(B)],
        "poisson_bias_B_ms": poisson_B, "depressing_bias_B_ms": REFERENCE["depressing_B_ms"],
        "static_floor_at_60_iterations_K30": screening["K30_random_it60_end2s"]["dkl_trained_floor"],
        "static_floor_at_150_iterations_K30": screening["K30_random_it150_end3s"]["dkl_trained_floor"],
        "poisson_floor_at_150_iterations": REFERENCE["poisson_floor"],
        "static_dkl_50s_lower_bound_from_B_alone": min(B) / 50000.0,
        "criterion_1.5x_poisson_at_50s": 1.5 * REFERENCE["poisson_dkl_median"],
        "statement": (
            "D_KL after T ms of sampling is about D_inf + B / T. With static background synapses B is "
            f"{min(B):.0f}-{max(B):.0f} ms in every variant screened (K 15-30, random or disjoint sources, M 50 or "
            f"100, 60 or 150 iterations) against {poisson_B:.0f} ms under Poisson noise and "
            f"{REFERENCE['depressing_B_ms']:.0f} ms with depressing synapses: the mixing time is set by the "
            "background (source neurons fire bursts while in z = 1), not by training or connectivity. Training "
            "lowers the floor D_inf (K 30: 0.054 after 60 iterations, 0.0075 after 150), not B. So at the "
            "benchmark's 50 s evaluation the static ensemble cannot come within 1.5x of Poisson (0.0039) even "
            f"with a zero floor: B / T alone is about {min(B) / 50000.0:.4f} (smallest B screened); it needs about "
            f"{min(B) / poisson_B:.1f}x the sampling time for the same finite-sampling error.")}
    measured = []
    for key, row in saved["summary"].items():
        if key == "account":
            continue
        line = (f"{key}: D_KL after {saved['variants'][key]['config']['eval_duration_ms'] / 1e3:g} s "
                f"{row['dkl_trained']:.4f}, floor {row['dkl_trained_floor']:.4f}, B {row['bias_B_ms']:.0f} ms")
        if "ratio_to_poisson" in row:
            line += (f"; ratio to Poisson at this budget {row['ratio_to_poisson']:.2f} (D_KL), "
                     f"{row['ratio_floor_to_poisson']:.2f} (floor)")
        measured.append(line)
    saved["summary"]["account"]["measured_here"] = measured
    # partial: an ensemble variant without the Poisson networks of the same budget beside it
    saved["summary"]["partial"] = any(row.get("ratio_to_poisson") is None for key, row in saved["summary"].items()
                                      if key.startswith("ensemble_"))
    return saved


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="*", help="poisson, ensemble_static, ensemble_depressing (none: only "
                        "rewrite the summary)")
    parser.add_argument("--in-degree", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sampling-end", type=float, default=3000.0, help="sampling time of the last iteration (ms)")
    args = parser.parse_args(argv)
    if not args.variants:
        saved = json.loads(OUT.read_text()) if OUT.exists() else {"variants": {}}
        saved.update(description=__doc__.split("\n\n")[1].replace("\n", " "), reference_full_budget=REFERENCE,
                     versions=library_versions(), machine=machine_info())
        write_json_atomic(OUT, write_summary(saved))
        return 0
    for name in args.variants:
        result = run_variant(name, args.in_degree, args.iterations, args.seed, args.sampling_end)
        result["load_average_at_end"] = list(os.getloadavg())
        saved = json.loads(OUT.read_text()) if OUT.exists() else {"variants": {}}
        key = f"{name}_K{args.in_degree}_it{args.iterations}_end{args.sampling_end / 1e3:g}s_seed{args.seed}"
        saved["variants"][key] = result
        write_summary(saved)
        saved.update(description=__doc__.split("\n\n")[1].replace("\n", " "), reference_full_budget=REFERENCE,
                     versions=library_versions(), machine=machine_info(),
                     command=" ".join([Path(sys.executable).name, *sys.argv]))
        write_json_atomic(OUT, saved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
