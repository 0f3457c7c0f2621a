"""Acceptance benchmark of issue 7: ensembles of sampling networks as each other's noise, on NEST.

M = 50 networks of 5 neurons (random targets), K = 30 excitatory + 30 inhibitory background sources
per neuron through the default depressing synapses (benchmarks/ensemble_background_timescales.py
shows why). Each network is CD-trained under ensemble noise and, separately, under Poisson noise with
the same settings; D_KL(sampled || target) per network is measured before and after training.
Criteria: median D_KL of the trained ensemble within 1.5x of the trained Poisson networks, and at
least 2x below the untrained ensemble.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ensemble_sampling.py [--quick]

Writes benchmarks/results/ensemble_sampling.json (seed 1; other seeds: ensemble_sampling_seed<N>.json)
and figures to benchmarks/figures/ensemble_sampling/ (seed 1 only).
"""

import argparse
import os
import sys
from pathlib import Path

from cortexsim.protocols.ensemble import EnsembleConfig, run_ensemble
from cortexsim.results import write_json_atomic

ROOT = Path(__file__).resolve().parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="short smoke run (not the acceptance run)")
    args = parser.parse_args(argv)
    if args.quick:
        config = EnsembleConfig(seed=args.seed, n_networks=50, train_iterations=5, sampling_ms=500.0,
                                eval_duration_ms=5000.0, calibration_ms=5000.0)
    else:
        # Both noise modes are trained with exactly these settings: sampling time growing from 1 s to
        # 3 s per iteration and the parameters averaged over the last half of the iterations (the
        # ensemble's gradient estimates are noisier than Poisson ones; see the module docstring).
        config = EnsembleConfig(seed=args.seed, n_networks=50, n_neurons=5, in_degree=30, train_iterations=150,
                                sampling_ms=1000.0, sampling_end_ms=3000.0, average_fraction=0.5,
                                learning_rate=1.0, schedule="inverse", schedule_tau=50.0, momentum=0.5,
                                eval_duration_ms=50000.0, calibration_ms=20000.0)
    out = ROOT / "figures" / ("ensemble_sampling" if args.seed == 1 else f"ensemble_sampling_seed{args.seed}")
    results = run_ensemble(config, out_dir=out, progress=True)
    results["load_average_at_end"] = list(os.getloadavg())
    results["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    results["figures_folder"] = str(out.relative_to(ROOT.parent))
    (out / "results.json").unlink(missing_ok=True)  # the benchmark's JSON is the one in results/
    (out / "config.json").unlink(missing_ok=True)
    (out / "checkpoint.json").unlink(missing_ok=True)
    results["summary"] = {key: results[key]["median"] for key in ("dkl_poisson_untrained", "dkl_poisson_trained",
                                                                  "dkl_ensemble_untrained", "dkl_ensemble_trained")}
    results["summary"]["ratio_ensemble_trained_to_poisson_trained"] = results["ratio_ensemble_trained_to_poisson_trained"]
    name = "ensemble_sampling" + ("_quick" if args.quick else "") + ("" if args.seed == 1 else f"_seed{args.seed}") + ".json"
    write_json_atomic(ROOT / "results" / name, results)
    for key in ("dkl_poisson_untrained", "dkl_poisson_trained", "dkl_ensemble_untrained", "dkl_ensemble_trained"):
        q = results[key]
        print(f"{key}: median {q['median']:.4f} ({q['q25']:.4f}-{q['q75']:.4f})")
    print("criteria:", results["criteria"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
