"""Benchmark: CD training of LIF sampling networks towards 10 random 5-neuron BMs (NEST, Poisson noise).

Acceptance (issue 4): median D_KL(sampled || target) after 1e5 ms, trained, <= half the untrained
translation's median and < 0.01; per-iteration overhead outside ``sim.run`` < 20 % of the iteration
time. The 10 BMs (``random_bm(5, seed=1..10)``, W = (A + A^T)/2, A_ij ~ N(0, 1), b ~ N(0, 1)) train
side by side as blocks of one 50-neuron network in one NEST simulation.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cd_target.py [--iterations 40] [--out out/cd_target]

Writes ``benchmarks/results/cd_target.json`` (and figures/checkpoints in ``--out``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cortexsim.config import config_to_dict
from cortexsim.results import library_versions, machine_info, write_json_atomic
from cortexsim.protocols.cd_training import TargetTrainingConfig, train_target

RESULTS = Path(__file__).resolve().parent / "results" / "cd_target.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--sampling-ms", type=float, default=20000.0)
    parser.add_argument("--learning-rate", type=float, default=1.0)
    parser.add_argument("--schedule-tau", type=float, default=20.0)
    parser.add_argument("--momentum", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=Path("out/cd_target"))
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    config = TargetTrainingConfig(seed=args.seed, backend="nest", n_neurons=5, n_targets=10,
                                  target_seeds=tuple(range(args.seed, args.seed + 10)),
                                  init="translated", iterations=args.iterations, sampling_ms=args.sampling_ms,
                                  learning_rate=args.learning_rate, schedule="inverse",
                                  schedule_tau=args.schedule_tau, momentum=args.momentum,
                                  checkpoint_every=2, eval_duration_ms=1e5)
    start = time.perf_counter()
    result = train_target(config, out_dir=args.out, resume=args.resume, progress=True)
    wall = time.perf_counter() - start
    summary = result.to_dict()
    initial = np.array([d["dkl_sampled_target"] for d in result.dkl_initial])
    final = np.array([d["dkl_sampled_target"] for d in result.dkl_final])
    report = {
        "benchmark": "cd_target",
        "summary": {"median_dkl_untrained": float(np.median(initial)), "median_dkl_trained": float(np.median(final)),
                    "overhead_fraction": result.timing["overhead_fraction"]},
        "description": "CD training on NEST of 10 random 5-neuron BMs (random_bm(5, seed=1..10)), Poisson "
                       "noise, renewing synapses; D_KL(sampled || target) after 1e5 ms, before (translation) "
                       "and after training",
        "median_dkl_untrained": float(np.median(initial)),
        "median_dkl_trained": float(np.median(final)),
        "range_dkl_untrained": [float(initial.min()), float(initial.max())],
        "range_dkl_trained": [float(final.min()), float(final.max())],
        "dkl_untrained_per_bm": initial.tolist(),
        "dkl_trained_per_bm": final.tolist(),
        "median_dkl_target_sampled_untrained": float(np.median([d["dkl_target_sampled"] for d in result.dkl_initial])),
        "median_dkl_target_sampled_trained": float(np.median([d["dkl_target_sampled"] for d in result.dkl_final])),
        "acceptance": {
            "trained_median_at_most_half_untrained": bool(np.median(final) <= 0.5 * np.median(initial)),
            "trained_median_below_0.01": bool(np.median(final) < 0.01),
            "overhead_below_20_percent": bool(result.timing["overhead_fraction"] < 0.2),
        },
        "overhead_fraction": result.timing["overhead_fraction"],
        "timing": result.timing,
        "wall_time_s": wall,
        "config": config_to_dict(config),
        "seeds": {"run": args.seed, "target_bms": list(config.target_seeds)},
        "activation_fit": result.fit.to_dict(),
        "history_segment_dkl": summary["history"]["segment_dkl_sampled_target"],
        "versions": library_versions(),
        "machine": machine_info(),
    }
    write_json_atomic(RESULTS, report)
    print(f"median D_KL untrained {report['median_dkl_untrained']:.4f}, trained {report['median_dkl_trained']:.4f}; "
          f"overhead {100 * report['overhead_fraction']:.1f} %; wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
