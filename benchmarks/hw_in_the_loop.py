"""Benchmark: hardware-in-the-loop CD training on an emulated BrainScaleS-2 chip (issue 5, item 5).

10 random 5-neuron BMs (``random_bm(5, seed=k)``, k = 0..9) run side by side as the blocks of one
block-diagonal 50-neuron sampling network (renewing synapses, Poisson background, dt 0.1 ms) on one
emulated bss2 chip (chip seed ``--chip-seed``) with its nominal fixed-pattern noise. Reported: the
median over the 10 BMs of D_KL(sampled || target) (nats, time-continuous joint distribution) after
``--eval-ms`` (1e5 ms) of

1. ``naive``: the translation with the activation fit of the ideal software model (NEST), on the
   uncalibrated chip;
2. ``calibrated``: the same translation on the chip after its calibration (per circuit: leak,
   threshold and reset offsets; leak conductance, capacitance, synaptic time constants and synaptic
   gains, each to the chip's correction step);
3. ``in_the_loop``: after CD training with the unchanged CD protocol
   (:func:`cortexsim.protocols.cd_training.train_target`, backend ``brainscales``) starting from 2.
   on the calibrated chip: every update uses samples measured on the emulated chip;

and the noise-free software reference on NEST (same fit, same BMs): ``software_nest`` (its
translation) and ``software_trained`` (trained with the same protocol, iterations, sampling time,
schedule and seeds as 3.). Targets (issue 5): in-the-loop median <= 1.5 x the software median
(checked against the trained software result, and reported against the translation too) and
>= 3 x better than naive.

The chip is booked once with ``select_chip(chip_seed=..., calibration=...)``; the protocol's
``setup(seed=run_seed)`` calls then all land on that chip (run seeds vary, the chip does not).

Why the calibration matters: the Poisson background arrives through synapses with the chip's
per-neuron gain (25 %) and time-constant (25 %) mismatch, which shifts each neuron's mean membrane
potential, i.e. its bias, by several alpha, and a synaptic time constant away from tau_ref spoils the
renewing-synapse PSP shape. A calibration of the voltage offsets alone left the translation as bad as
the naive one (median 2.34 vs 2.10, commit 21f2727); measuring and compensating gains and time
constants too brings it to the software level, and training on the chip's own samples removes the rest.

Budget: two trainings of ``--iterations`` x ``--sampling-ms`` (default 100 x 10 s) plus five 1e5 ms
evaluations; ~25 min on 2 shared cores (see ``wall_time_s`` and the per-condition times in the JSON).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hw_in_the_loop.py [--iterations 100] [--out out/hw_in_the_loop]

Writes ``benchmarks/results/hw_in_the_loop.json``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from cortexsim.config import config_to_dict
from cortexsim.results import library_versions, machine_info, write_json_atomic
from cortexsim.backends.registry import load_backend
from cortexsim.models.boltzmann import random_bm
from cortexsim.protocols.calibration import CalibrationConfig, calibrate
from cortexsim.seeds import derive_seed
from cortexsim.protocols.cd_training import TargetTrainingConfig, _evaluate, train_target

RESULTS = Path(__file__).resolve().parent / "results" / "hw_in_the_loop.json"


def _forward(rows: list[dict]) -> np.ndarray:
    return np.array([row["dkl_sampled_target"] for row in rows])


def _backward(rows: list[dict]) -> np.ndarray:
    return np.array([row["dkl_target_sampled"] for row in rows])


def _condition(rows: list[dict], wall_s: float, **extra) -> dict:
    forward = _forward(rows)
    return {"median_dkl": float(np.median(forward)), "range_dkl": [float(forward.min()), float(forward.max())],
            "dkl_per_bm": forward.tolist(),
            "median_dkl_target_sampled": float(np.median(_backward(rows))),
            "wall_time_s": wall_s, **extra}


def _training_summary(result) -> dict:
    initial_params = np.concatenate([np.asarray(bm.b) for bm in result.initial])
    final_params = np.concatenate([np.asarray(bm.b) for bm in result.final])
    return {"history_median_dkl_per_iteration":
            np.median(np.asarray(result.history["dkl_sampled_target"]), axis=1).tolist(),
            "learning_rate": result.history["learning_rate"],
            "segment_end": result.history["segment_end"],
            "segment_median_dkl": np.median(np.asarray(result.history["segment_dkl_sampled_target"]),
                                            axis=1).tolist(),
            "bias_change_rms": float(np.sqrt(np.mean((final_params - initial_params) ** 2))),
            "timing": result.timing}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="run seed (protocol seeds are derived from it)")
    parser.add_argument("--chip-seed", type=int, default=0, help="identity of the emulated chip")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--sampling-ms", type=float, default=10000.0)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=1.0)
    parser.add_argument("--schedule-tau", type=float, default=20.0)
    parser.add_argument("--momentum", type=float, default=0.5)
    parser.add_argument("--eval-ms", type=float, default=1e5)
    parser.add_argument("--n-bms", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("out/hw_in_the_loop"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()

    start = time.perf_counter()
    targets = [random_bm(5, seed=k) for k in range(args.n_bms)]
    software_fit = calibrate(CalibrationConfig(seed=args.seed, backend="nest")).fit
    config = TargetTrainingConfig(seed=args.seed, backend="brainscales", init="translated",
                                  iterations=args.iterations, sampling_ms=args.sampling_ms,
                                  learning_rate=args.learning_rate, schedule="inverse",
                                  schedule_tau=args.schedule_tau, momentum=args.momentum,
                                  checkpoint_every=args.checkpoint_every, eval_duration_ms=args.eval_ms)
    eval_seed = derive_seed(args.seed, 1, 0)      # the protocol's seed for its initial evaluation
    conditions = {}

    chip = load_backend("brainscales")
    previous = chip.select_chip(chip="bss2", chip_seed=args.chip_seed, fixed_pattern_noise=True,
                                calibration=None)
    try:
        tic = time.perf_counter()
        rows = _evaluate(config, chip, software_fit, targets, targets, args.eval_ms, eval_seed)
        conditions["naive"] = _condition(rows, time.perf_counter() - tic,
                                         hardware_report=chip.get_hardware_report())
        print(f"naive translation on chip {args.chip_seed}: median D_KL {conditions['naive']['median_dkl']:.4f}",
              flush=True)
        chip.select_chip(calibration="auto")
        tic = time.perf_counter()
        result = train_target(config, targets=targets, fit=software_fit, out_dir=args.out / "chip", progress=True)
        training_wall = time.perf_counter() - tic
        report_trained = chip.get_hardware_report()
        booked = asdict(chip.selected_chip())
    finally:
        chip.select_chip(**asdict(previous))
    conditions["calibrated"] = _condition(result.dkl_initial, None,
                                          note="the protocol's evaluation before training (same seed as naive)")
    conditions["in_the_loop"] = _condition(result.dkl_final, training_wall,
                                           note="wall time includes calibration (if not cached), both 1e5 ms "
                                                "evaluations and training",
                                           hardware_report_final_evaluation=report_trained)
    print(f"chip: calibrated {conditions['calibrated']['median_dkl']:.4f}, in the loop "
          f"{conditions['in_the_loop']['median_dkl']:.4f}", flush=True)

    tic = time.perf_counter()
    software = train_target(replace(config, backend="nest"), targets=targets, fit=software_fit,
                            out_dir=args.out / "software", progress=True)
    software_wall = time.perf_counter() - tic
    conditions["software_nest"] = _condition(software.dkl_initial, None,
                                             note="the software protocol's evaluation before training "
                                                  "(same seed as naive)")
    conditions["software_trained"] = _condition(software.dkl_final, software_wall,
                                                note="same protocol, iterations, schedule and seeds as "
                                                     "in_the_loop, on NEST; wall time includes both evaluations")

    software_translation = conditions["software_nest"]["median_dkl"]
    software_trained = conditions["software_trained"]["median_dkl"]
    naive = conditions["naive"]["median_dkl"]
    calibrated = conditions["calibrated"]["median_dkl"]
    trained = conditions["in_the_loop"]["median_dkl"]
    report = {
        "benchmark": "hw_in_the_loop",
        "description": __doc__.split("\n\n")[1].replace("\n", " "),
        "dkl_direction": "D_KL(sampled || target), nats; time-continuous joint distribution after eval_ms",
        "eval_ms": args.eval_ms,
        "median_dkl": {name: c["median_dkl"] for name, c in conditions.items()},
        "ratios": {"in_the_loop_over_software_trained": trained / software_trained,
                   "in_the_loop_over_software_translation": trained / software_translation,
                   "naive_over_in_the_loop": naive / trained,
                   "naive_over_calibrated": naive / calibrated},
        "acceptance": {"in_the_loop_within_1.5x_of_software_trained": bool(trained <= 1.5 * software_trained),
                       "in_the_loop_within_1.5x_of_software_translation":
                           bool(trained <= 1.5 * software_translation),
                       "in_the_loop_3x_better_than_naive": bool(naive >= 3 * trained),
                       "calibration_not_worse_than_naive": bool(calibrated <= naive)},
        "conditions": conditions,
        "training": {"in_the_loop": _training_summary(result), "software": _training_summary(software)},
        "chip": booked,
        "activation_fit_software": software_fit.to_dict(),
        "config": config_to_dict(config),
        "seeds": {"run": args.seed, "chip": args.chip_seed, "target_bms": list(range(args.n_bms)),
                  "evaluation_before": eval_seed, "evaluation_after": derive_seed(args.seed, 2, 0)},
        "wall_time_s": time.perf_counter() - start,
        "versions": library_versions(),
        "machine": machine_info(),
    }
    write_json_atomic(args.results, report)
    print(f"median D_KL: software translation {software_translation:.4f}, software trained "
          f"{software_trained:.4f}, naive {naive:.4f}, calibrated {calibrated:.4f}, in the loop "
          f"{trained:.4f}; wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
