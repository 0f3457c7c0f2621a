"""False-alarm rate of cross-simulator validation: identical models on one backend, different seeds.

Each of N validations compares two groups of R runs of the same model on the same backend (group
"A" with seeds s..s+R-1, group "B" with seeds s+R..s+2R-1, every seed used once) with exactly the
test of ``cortexsim validate`` (Welch t-tests against the run-to-run spread, Holm correction at
alpha = 0.05 over all statistics and populations). A validation "raises a false alarm" if any
statistic is flagged as differing; the target is a fraction <= 10 % (the family-wise error rate
Holm controls is 5 %).

    python benchmarks/validation_calibration.py            # 20 validations, R = 5, NEST, disjoint (200 runs,
                                                           # ~7 s each on a loaded 2-core machine: ~25 min)
    python benchmarks/validation_calibration.py --validations 4 --repeats 3   # quick look
    python benchmarks/validation_calibration.py --pool 40   # cheaper: validations drawn from 40 runs

With ``--pool M`` only M runs are simulated and each validation draws its 2R distinct runs at random
from them: every validation is still a comparison of identical models with different seeds, but the
validations share runs, so they are not independent (the estimate of the rate is unbiased, its
spread larger than binomial).

Writes benchmarks/results/validation_calibration.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cortexsim.analysis.compare import StatisticsSettings, compare_groups, population_statistics
from cortexsim.protocols.validation import load_model, run_backend
from cortexsim.results import library_versions, machine_info, write_json_atomic

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "examples" / "validate_balanced_ei.py"))
    parser.add_argument("--backend", default="nest")
    parser.add_argument("--validations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--correction", default="holm")
    parser.add_argument("--pool", type=int, default=0,
                        help="simulate only this many runs and draw each validation's runs from them (0: disjoint)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "validation_calibration.json")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    duration = float(getattr(model, "DURATION_MS", 1000.0))
    transient = float(getattr(model, "TRANSIENT_MS", 0.0))
    settings = StatisticsSettings()
    start = time.perf_counter()
    # Disjoint design: every seed used once (2 R N runs), split into validations in order.
    n_runs = args.pool if args.pool else 2 * args.repeats * args.validations
    if n_runs < 2 * args.repeats:
        raise ValueError(f"pool must hold >= 2 * repeats = {2 * args.repeats} runs, got {n_runs}")
    seeds = [args.seed + k for k in range(n_runs)]
    summaries = []
    for k, seed in enumerate(seeds):
        run = run_backend(model, args.backend, [seed], duration, 0.1)
        if run.status != "ok":
            raise RuntimeError(f"{args.backend}: {run.status}: {run.message}")
        summaries.append({pop: population_statistics(rec.spiketrains, transient, duration, rec.membrane_potential,
                                                     settings).summary for pop, rec in run.runs[0].items()})
        print(f"run {k + 1}/{n_runs} (seed {seed}) done after {time.perf_counter() - start:.0f} s", flush=True)
    validations = []
    draw = np.random.default_rng(args.seed)
    for v in range(args.validations):
        if args.pool:
            picks = draw.choice(n_runs, size=2 * args.repeats, replace=False)
        else:
            picks = np.arange(2 * args.repeats * v, 2 * args.repeats * (v + 1))
        group = [summaries[k] for k in picks]
        comparisons = compare_groups({"A": group[:args.repeats], "B": group[args.repeats:]}, args.alpha,
                                     args.correction)
        flagged = [f"{c.population}/{c.statistic}" for c in comparisons if c.verdict == "differ"]
        validations.append({"seeds_a": [seeds[k] for k in picks[:args.repeats]],
                            "seeds_b": [seeds[k] for k in picks[args.repeats:]],
                            "n_tests": sum(c.verdict in ("agree", "differ") for c in comparisons),
                            "flagged": flagged,
                            "min_p_adjusted": float(np.nanmin([c.p_adjusted for c in comparisons])),
                            "min_p_raw": float(np.nanmin([c.p_value for c in comparisons]))})
    n_alarms = sum(bool(v["flagged"]) for v in validations)
    all_raw = [v["min_p_raw"] for v in validations]
    result = {
        "benchmark": "validation_calibration",
        "question": "fraction of validations of identical models (one backend, different seeds) flagged as differing",
        "target": "false_alarm_rate <= 0.10",
        "false_alarm_rate": n_alarms / args.validations,
        "false_alarms": n_alarms,
        "validations": args.validations,
        "passes_target": n_alarms / args.validations <= 0.10,
        "parameters": {"model": Path(args.model).name, "model_parameters": getattr(model, "PARAMETERS", None),
                       "backend": args.backend, "repeats": args.repeats, "duration_ms": duration,
                       "transient_ms": transient, "dt_ms": 0.1, "alpha": args.alpha,
                       "correction": args.correction, "first_seed": args.seed, "statistics": settings,
                       "design": (f"pool of {n_runs} runs, each validation draws 2R distinct runs (validations "
                                  "share runs)") if args.pool else "disjoint: every run used by one validation",
                       "n_simulated_runs": n_runs},
        "median_of_min_raw_p": float(np.median(all_raw)),
        "details": validations,
        "wall_time_s": time.perf_counter() - start,
        "versions": library_versions(),
        "machine": machine_info(),
    }
    write_json_atomic(args.out, result)
    print(f"false alarms: {n_alarms}/{args.validations} = {result['false_alarm_rate']:.2f}; written to {args.out}")
    return result


if __name__ == "__main__":
    main()
