"""NEST cross-check of Urbanczik & Senn (2014) Fig. 1B: NEST's model against the same rule in Brian2.

For every seed the same frozen input pattern and teacher drive one neuron on NEST
(``pp_cond_exp_mc_urbanczik`` + ``urbanczik_synapse``, 1 thread) and on Brian2 (the equations of
``cortexsim.models.microcircuit.urbanczik_brian2``); the error is the RMS of ``V_w* - U_M`` per
repetition of the teaching period. Criterion (issue 3): the error falls by at least half, i.e.
first repetition / mean of the last 10 repetitions >= 2, on both simulators.
Reference (references section 5): NEST's own example, 6.3 s wall, 9.3 mV (first repetition) -> 4.2 mV
(last). Also checks that, with plasticity off, both simulators give the same error curve.

Writes benchmarks/results/urbanczik.json and benchmarks/figures/urbanczik_error_curves.png.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/urbanczik_nest.py [--seeds 1 2 3] [--repetitions 100]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from cortexsim.models.microcircuit.urbanczik import (UrbanczikConfig, UrbanczikNeuronParams, error_fall_ratio,
                                                     plot_error_curves)
from cortexsim.models.microcircuit.urbanczik_brian2 import run_brian2_urbanczik
from cortexsim.models.microcircuit.urbanczik_nest import run_nest_urbanczik
from cortexsim.results import library_versions, machine_info, write_json_atomic

HERE = Path(__file__).resolve().parent
REFERENCE = {"first_mV": 9.3, "last_mV": 4.2, "repetitions": 100, "wall_s": 6.3,
             "label": "NEST example (references section 5)"}
TAIL = 10


def plasticity_off_check(seed: int) -> dict:
    """Both simulators with eta = 0: the dendrite sees identical input, so the errors must agree."""
    config = UrbanczikConfig(seed=seed, n_repetitions=3, idle_before=1, idle_after=0)
    params = UrbanczikNeuronParams(eta=0.0)
    nest_run = run_nest_urbanczik(config, params)
    brian_run = run_brian2_urbanczik(config, params)
    return {"seed": seed, "repetitions": 3, "nest_errors_mV": nest_run.errors_rms,
            "brian2_errors_mV": brian_run.errors_rms,
            "max_abs_difference_mV": float(np.max(np.abs(nest_run.errors_rms - brian_run.errors_rms)))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repetitions", type=int, default=100)
    args = parser.parse_args(argv)

    params = UrbanczikNeuronParams()
    results, rows = [], []
    for seed in args.seeds:
        config = UrbanczikConfig(seed=seed, n_repetitions=args.repetitions)
        for runner in (run_nest_urbanczik, run_brian2_urbanczik):
            start = time.perf_counter()
            res = runner(config, params)
            results.append(res)
            row = res.summary(TAIL)
            row["passes_halving"] = bool(row[f"fall_ratio_first_over_last{TAIL}"] >= 2.0)
            rows.append(row)
            print(f"{res.simulator:16s} seed {seed}: {res.errors_rms[0]:.2f} mV -> "
                  f"{np.mean(res.errors_rms[-TAIL:]):.2f} mV (last {TAIL} mean), ratio "
                  f"{row[f'fall_ratio_first_over_last{TAIL}']:.2f}, wall {res.wall_s:.1f} s "
                  f"({time.perf_counter() - start:.1f} s with analysis)", flush=True)

    by_simulator: dict[str, list] = {}
    for res in results:
        by_simulator.setdefault(res.simulator, []).append(res.errors_rms)
    pooled = {}
    for name, curves in by_simulator.items():
        mean_curve = np.mean(curves, axis=0)
        pooled[name] = {"mean_curve_mV": mean_curve, "first_mV": float(mean_curve[0]),
                        f"mean_last{TAIL}_mV": float(np.mean(mean_curve[-TAIL:])),
                        f"fall_ratio_first_over_last{TAIL}": error_fall_ratio(mean_curve, TAIL),
                        "all_seeds_halve": all(error_fall_ratio(c, TAIL) >= 2.0 for c in curves)}
    check = plasticity_off_check(args.seeds[0])
    print(f"plasticity off: max |NEST - Brian2| error difference {check['max_abs_difference_mV']:.2e} mV")

    figures = HERE / "figures"
    figures.mkdir(exist_ok=True)
    figure = figures / "urbanczik_error_curves.png"
    plot_error_curves(results, figure, reference=REFERENCE)
    out = {"benchmark": "urbanczik_nest",
           "criterion": f"RMS(V_w* - U_M) of repetition 1 / mean over the last {TAIL} repetitions >= 2 "
                        "on NEST and on Brian2",
           "passed": all(p["all_seeds_halve"] for p in pooled.values()),
           "reference": REFERENCE, "per_run": rows, "per_simulator": pooled,
           "plasticity_off_agreement": check,
           "config": UrbanczikConfig(seed=args.seeds[0], n_repetitions=args.repetitions),
           "seeds": args.seeds, "params": params, "figure": str(figure.relative_to(HERE.parent)),
           "nest_threads": 1, "load_average": os.getloadavg(),
           "versions": library_versions(), "machine": machine_info()}
    write_json_atomic(HERE / "results" / "urbanczik.json", out)
    print(f"passed: {out['passed']}; wrote benchmarks/results/urbanczik.json and {out['figure']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
