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

from cortexsim.analysis.plots import plot_error_curves
from cortexsim.models.microcircuit.urbanczik import UrbanczikConfig, UrbanczikNeuronParams, error_fall_ratio
from cortexsim.models.microcircuit.urbanczik_brian2 import run_brian2_urbanczik
from cortexsim.models.microcircuit.urbanczik_nest import run_nest_urbanczik
from cortexsim.protocols.urbanczik import error_curves
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


def pool(curves: np.ndarray) -> dict:
    """Statistics over seeds (rows) of per-repetition error curves (mV)."""
    first, tail = curves[:, 0], curves[:, -TAIL:].mean(axis=1)
    ratios = first / tail
    mean_curve = curves.mean(axis=0)
    return {"n_seeds": int(curves.shape[0]), "mean_curve_mV": mean_curve,
            "first_mV_mean": float(first.mean()), "first_mV_sd": float(first.std(ddof=1)) if first.size > 1 else None,
            f"last{TAIL}_mV_mean": float(tail.mean()),
            f"last{TAIL}_mV_sd": float(tail.std(ddof=1)) if tail.size > 1 else None,
            "fall_ratio_per_seed": ratios, "fall_ratio_mean": float(ratios.mean()),
            "fall_ratio_of_mean_curve": error_fall_ratio(mean_curve, TAIL),
            "fraction_of_seeds_halving": float(np.mean(ratios >= 2.0)),
            "all_seeds_halve": bool(np.all(ratios >= 2.0))}


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """Difference of the seed means (first repetition, last-10 plateau) with Welch standard errors."""
    out = {}
    for key, fa, fb in (("first", a[:, 0], b[:, 0]),
                        (f"last{TAIL}", a[:, -TAIL:].mean(axis=1), b[:, -TAIL:].mean(axis=1))):
        diff = float(fa.mean() - fb.mean())
        se = float(np.sqrt(fa.var(ddof=1) / fa.size + fb.var(ddof=1) / fb.size)) if min(fa.size, fb.size) > 1 else None
        out[key] = {"difference_mV": diff, "standard_error_mV": se, "z": diff / se if se else None}
    return out


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
    pooled = {name: pool(np.array(curves)) for name, curves in by_simulator.items()}
    check = plasticity_off_check(args.seeds[0])
    print(f"plasticity off: max |NEST - Brian2| error difference {check['max_abs_difference_mV']:.2e} mV")

    comparison = compare(*[np.array(c) for c in by_simulator.values()]) if len(by_simulator) == 2 else None

    figures = HERE / "figures"
    figures.mkdir(exist_ok=True)
    figure = figures / "urbanczik_error_curves.png"
    plot_error_curves(error_curves(results), figure, reference=REFERENCE)
    out = {"benchmark": "urbanczik_nest",
           "criterion": f"RMS(V_w* - U_M) of repetition 1 / mean over the last {TAIL} repetitions >= 2 "
                        "on NEST and on Brian2",
           "passed_every_seed": all(p["all_seeds_halve"] for p in pooled.values()),
           "passed_on_mean_curve": all(p["fall_ratio_of_mean_curve"] >= 2.0 for p in pooled.values()),
           "reference": REFERENCE, "per_run": rows, "per_simulator": pooled,
           "nest_minus_brian2": comparison,
           "plasticity_off_agreement": check,
           "config": UrbanczikConfig(seed=args.seeds[0], n_repetitions=args.repetitions),
           "seeds": args.seeds, "params": params, "figure": str(figure.relative_to(HERE.parent)),
           "nest_threads": 1, "load_average": os.getloadavg(),
           "versions": library_versions(), "machine": machine_info()}
    write_json_atomic(HERE / "results" / "urbanczik.json", out)
    for name, p in pooled.items():
        print(f"{name}: ratio of mean curve {p['fall_ratio_of_mean_curve']:.2f}, per seed mean "
              f"{p['fall_ratio_mean']:.2f}, seeds halving {p['fraction_of_seeds_halving']:.0%}")
    print(f"NEST - Brian2: {comparison}")
    print(f"passed (every seed): {out['passed_every_seed']}; (mean curve): {out['passed_on_mean_curve']}; "
          f"wrote benchmarks/results/urbanczik.json and {out['figure']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
