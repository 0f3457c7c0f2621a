"""Benchmark: hardware-in-the-loop CD training on an emulated BrainScaleS-2 chip (issue 5, item 5).

10 random 5-neuron BMs (``random_bm(5, seed=k)``, k = 0..9) run side by side as the blocks of one
block-diagonal 50-neuron sampling network (renewing synapses, Poisson background, dt 0.1 ms) on one
emulated bss2 chip (chip seed ``--chip-seed``) with its nominal fixed-pattern noise. Reported: the
median over the 10 BMs of D_KL(sampled || target) (nats, time-continuous joint distribution) after
``--eval-ms`` (1e5 ms) of

1. ``naive``: the translation with the activation fit of the ideal software model (NEST), on the
   uncalibrated chip;
2. ``calibrated``: the same translation on the chip after its calibration (leak, threshold and
   reset offsets compensated; time constants and synaptic gains are not);
3. ``in_the_loop``: after CD training with the unchanged CD protocol
   (:func:`cortexsim.protocols.cd_training.train_target`, backend ``brainscales``) starting from 2.
   on the calibrated chip: every update uses samples measured on the emulated chip;

and, for reference, the naive translation on noise-free software (NEST, same fit, same BMs).
Targets (issue 5): in-the-loop median <= 1.5 x the software median and >= 3 x better than naive.

The chip is booked once with ``select_chip(chip_seed=..., calibration=...)``; the protocol's
``setup(seed=run_seed)`` calls then all land on that chip (run seeds vary, the chip does not).

Why calibration alone helps little here: it compensates the voltage offsets (leak, threshold,
reset), but the Poisson background arrives through synapses with the chip's per-neuron gain (25 %)
and time-constant (25 %) mismatch, which shifts each neuron's mean membrane potential, i.e. its bias,
by several alpha; only training on the chip's own samples absorbs that.

Budget: training uses ``--iterations`` x ``--sampling-ms`` of chip time (default 30 x 10 s = 300 s),
shorter than the NEST benchmark cd_target (40 x 20 s), so that the whole benchmark (four 1e5 ms
evaluations + training) stays within ~25 min on 2 shared cores.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hw_in_the_loop.py [--iterations 30] [--out out/hw_in_the_loop]
    # longer training, reusing the (deterministic) software and naive evaluations of a previous run:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hw_in_the_loop.py --iterations 50 --schedule-tau 40 \
        --checkpoint-every 10 --reference-from benchmarks/results/hw_in_the_loop.json \
        --results benchmarks/results/hw_in_the_loop_long.json --out out/hw_in_the_loop_long

Writes ``benchmarks/results/hw_in_the_loop.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from cortexsim.config import config_to_dict
from cortexsim.results import library_versions, machine_info, write_json_atomic
from cortexsim.backends.registry import load_backend
from cortexsim.models.boltzmann import random_bm
from cortexsim.protocols.calibration import CalibrationConfig, calibrate
from cortexsim.protocols.cd_network import derived_seed
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="run seed (protocol seeds are derived from it)")
    parser.add_argument("--chip-seed", type=int, default=0, help="identity of the emulated chip")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--sampling-ms", type=float, default=10000.0)
    parser.add_argument("--checkpoint-every", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=1.0)
    parser.add_argument("--schedule-tau", type=float, default=10.0)
    parser.add_argument("--momentum", type=float, default=0.5)
    parser.add_argument("--eval-ms", type=float, default=1e5)
    parser.add_argument("--n-bms", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("out/hw_in_the_loop"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--reference-from", type=Path, default=None,
                        help="take the software and naive conditions from this earlier results file "
                             "(same seeds, chip and eval time required; both are deterministic)")
    args = parser.parse_args()

    start = time.perf_counter()
    targets = [random_bm(5, seed=k) for k in range(args.n_bms)]
    software_fit = calibrate(CalibrationConfig(seed=args.seed, backend="nest")).fit
    config = TargetTrainingConfig(seed=args.seed, backend="brainscales", init="translated",
                                  iterations=args.iterations, sampling_ms=args.sampling_ms,
                                  learning_rate=args.learning_rate, schedule="inverse",
                                  schedule_tau=args.schedule_tau, momentum=args.momentum,
                                  checkpoint_every=args.checkpoint_every, eval_duration_ms=args.eval_ms)
    eval_seed = derived_seed(args.seed, 1, 0)      # the protocol's seed for its initial evaluation
    conditions = {}

    reference = None
    if args.reference_from is not None:
        reference = json.loads(args.reference_from.read_text())
        same = (reference["seeds"]["run"] == args.seed and reference["seeds"]["chip"] == args.chip_seed
                and reference["eval_ms"] == args.eval_ms and len(reference["seeds"]["target_bms"]) == args.n_bms)
        if not same:
            raise ValueError(f"--reference-from {args.reference_from}: other seeds, chip, eval time or BMs")
        for name in ("software_nest", "naive"):
            conditions[name] = dict(reference["conditions"][name], reused_from=str(args.reference_from))
    if reference is None:
        tic = time.perf_counter()
        nest_config = replace(config, backend="nest")
        rows = _evaluate(nest_config, load_backend("nest"), software_fit, targets, targets, args.eval_ms, eval_seed)
        conditions["software_nest"] = _condition(rows, time.perf_counter() - tic)
    print(f"software (NEST) translation: median D_KL {conditions['software_nest']['median_dkl']:.4f}", flush=True)

    chip = load_backend("brainscales")
    previous = chip.select_chip(chip="bss2", chip_seed=args.chip_seed, fixed_pattern_noise=True,
                                calibration=None)
    try:
        if reference is None:
            tic = time.perf_counter()
            rows = _evaluate(config, chip, software_fit, targets, targets, args.eval_ms, eval_seed)
            conditions["naive"] = _condition(rows, time.perf_counter() - tic,
                                             hardware_report=chip.get_hardware_report())
        print(f"naive translation on chip {args.chip_seed}: median D_KL {conditions['naive']['median_dkl']:.4f}",
              flush=True)

        chip.select_chip(calibration="auto")
        tic = time.perf_counter()
        result = train_target(config, targets=targets, fit=software_fit, out_dir=args.out, progress=True)
        training_wall = time.perf_counter() - tic
        report_trained = chip.get_hardware_report()
        booked = asdict(chip.selected_chip())
    finally:
        chip.select_chip(**asdict(previous))
    conditions["calibrated"] = _condition(result.dkl_initial, None,
                                          note="the protocol's evaluation before training (same seed as naive)")
    conditions["in_the_loop"] = _condition(result.dkl_final, training_wall,
                                           note="wall time includes both 1e5 ms evaluations and training",
                                           hardware_report_final_evaluation=report_trained)
    software = conditions["software_nest"]["median_dkl"]
    naive = conditions["naive"]["median_dkl"]
    trained = conditions["in_the_loop"]["median_dkl"]
    initial_params = np.concatenate([np.asarray(bm.b) for bm in result.initial])
    final_params = np.concatenate([np.asarray(bm.b) for bm in result.final])
    report = {
        "benchmark": "hw_in_the_loop",
        "description": __doc__.split("\n\n")[1].replace("\n", " "),
        "dkl_direction": "D_KL(sampled || target), nats; time-continuous joint distribution after eval_ms",
        "eval_ms": args.eval_ms,
        "median_dkl": {name: c["median_dkl"] for name, c in conditions.items()},
        "ratios": {"in_the_loop_over_software": trained / software, "naive_over_in_the_loop": naive / trained,
                   "naive_over_calibrated": naive / conditions["calibrated"]["median_dkl"]},
        "acceptance": {"in_the_loop_within_1.5x_of_software": bool(trained <= 1.5 * software),
                       "in_the_loop_3x_better_than_naive": bool(naive >= 3 * trained)},
        "conditions": conditions,
        "training": {"history_median_dkl_per_iteration":
                     np.median(np.asarray(result.history["dkl_sampled_target"]), axis=1).tolist(),
                     "segment_end": result.history["segment_end"],
                     "segment_median_dkl": np.median(np.asarray(result.history["segment_dkl_sampled_target"]),
                                                     axis=1).tolist(),
                     "bias_change_rms": float(np.sqrt(np.mean((final_params - initial_params) ** 2))),
                     "timing": result.timing},
        "chip": booked,
        "activation_fit_software": software_fit.to_dict(),
        "config": config_to_dict(config),
        "seeds": {"run": args.seed, "chip": args.chip_seed, "target_bms": list(range(args.n_bms)),
                  "evaluation_before": eval_seed, "evaluation_after": derived_seed(args.seed, 2, 0)},
        "wall_time_s": time.perf_counter() - start,
        "versions": library_versions(),
        "machine": machine_info(),
    }
    write_json_atomic(args.results, report)
    print(f"median D_KL: software {software:.4f}, naive {naive:.4f}, calibrated "
          f"{conditions['calibrated']['median_dkl']:.4f}, in the loop {trained:.4f}; wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
