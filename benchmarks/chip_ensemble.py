"""Acceptance benchmark of issue 19, part 3: noise-free ensembles on ONE emulated BrainScaleS-2 chip.

M = 100 random 5-neuron Boltzmann machines run as one ensemble on one emulated bss2 chip (500 of its
512 neuron circuits; the other 12 are the probes of the background measurement): every neuron's
background is K = 30 excitatory + 30 inhibitory depressing synapses from neurons of other networks,
all with the chip's fixed minimal delay (no programmable delays), and nothing else: the only input
from outside is a 20 ms kick at the start (spikes played in; no on-chip Poisson generator runs, the
hardware report shows zero generators in use). The chip has its nominal fixed-pattern noise (chip
seed ``--chip-seed``) and is calibrated (``calibration="auto"``: offsets, leak conductance,
capacitance, synaptic time constants and gains to the chip's correction steps); the networks are
then CD-trained in the loop: every update uses samples measured on the emulated chip.

Size (sized to run in about an hour on a shared, loaded 2-core machine; the NEST ensemble benchmark
``ensemble_sampling.py`` trains longer): 80 CD iterations with sampling growing 0.5 -> 1.5 s, eta
1 / (1 + t / 50), momentum 0.5, mean of the last 40 iterates; 20 s evaluations, 10 s background
measurements. Both noise modes get the same settings. The shorter evaluation raises every D_KL by its
finite-sampling term (about B / T with B ~ 0.1 s: ~0.005 at 20 s).

Reference, from the same script: the same 100 target BMs as Poisson-driven networks on NEST (each
neuron its own 3 kHz excitatory and inhibitory Poisson sources), trained with the same CD settings.
Reported (``summary``): medians over networks of D_KL(sampled || target) (nats, time-continuous
joint distribution over ``--eval-ms``): ``dkl_untrained_chip``, ``dkl_trained_chip``,
``dkl_poisson_nest`` (trained) and ``dkl_poisson_nest_untrained``; hardware time of the chip runs
and the nominal speed-up (1e3). Criteria (issue 19): trained chip within 1.5x of the NEST
Poisson-trained networks, and at least 5x better than the untrained chip ensemble.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/chip_ensemble.py [--quick]

Writes benchmarks/results/chip_ensemble.json (``--quick``: chip_ensemble_quick.json) and figures to
benchmarks/figures/chip_ensemble/.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path


from cortexsim.backends import load_backend
from cortexsim.protocols.ensemble import EnsembleConfig, run_ensemble
from cortexsim.results import write_json_atomic

ROOT = Path(__file__).resolve().parent


def _config(args) -> EnsembleConfig:
    common = dict(seed=args.seed, backend="brainscales", poisson_backend="nest", n_networks=args.networks,
                  n_neurons=5, in_degree=30, calibration_points=10, calibration_groups=1, membrane_probes=2)
    if args.quick:
        return EnsembleConfig(**common, train_iterations=args.iterations or 10, sampling_ms=500.0,
                              eval_duration_ms=args.eval_ms or 5000.0, calibration_ms=5000.0)
    return EnsembleConfig(**common, train_iterations=args.iterations or 80, sampling_ms=500.0, sampling_end_ms=1500.0,
                          average_fraction=0.5, learning_rate=1.0, schedule="inverse", schedule_tau=50.0,
                          momentum=0.5, eval_duration_ms=args.eval_ms or 20000.0, calibration_ms=10000.0)


def _portable(value, cache: str):
    """``value`` with the local cache folder written as ``$CORTEXSIM_CACHE_DIR`` (no machine paths in results)."""
    if isinstance(value, dict):
        return {key: _portable(item, cache) for key, item in value.items()}
    if isinstance(value, list):
        return [_portable(item, cache) for item in value]
    return value.replace(cache, "$CORTEXSIM_CACHE_DIR") if isinstance(value, str) else value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chip-seed", type=int, default=0)
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=None, help="CD iterations (default 80; quick 10)")
    parser.add_argument("--eval-ms", type=float, default=None, help="evaluation time (ms; default 20000; quick 5000)")
    parser.add_argument("--quick", action="store_true", help="short smoke run (not the acceptance run)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")   # the protocol's progress
    chip = load_backend("brainscales")
    previous = chip.select_chip(chip="bss2", chip_seed=args.chip_seed, fixed_pattern_noise=True, calibration="auto")
    config = _config(args)
    out = ROOT / "figures" / ("chip_ensemble_quick" if args.quick else "chip_ensemble")
    tic = time.perf_counter()
    try:
        results = run_ensemble(config, out_dir=out, progress=True)
    finally:
        chip.select_chip(**asdict(previous))
    hardware = results["hardware"]
    trained, untrained = results["dkl_ensemble_trained"]["median"], results["dkl_ensemble_untrained"]["median"]
    reference = results["dkl_poisson_trained"]["median"]
    ratio, improvement = trained / reference, untrained / trained
    summary = {
        "dkl_trained_chip": trained,
        "dkl_untrained_chip": untrained,
        "dkl_poisson_nest": reference,
        "dkl_poisson_nest_untrained": results["dkl_poisson_untrained"]["median"],
        "dkl_statistic": "median over networks of D_KL(sampled || target), nats, time-continuous joint "
                         f"distribution over {config.eval_duration_ms:g} ms of biological time",
        "ratio_trained_chip_to_poisson_nest": ratio,
        "improvement_untrained_to_trained_chip": improvement,
        "criteria": {"trained_chip_within_1.5x_of_poisson_nest": bool(ratio <= 1.5),
                     "trained_chip_at_least_5x_better_than_untrained_chip": bool(improvement >= 5.0)},
        "networks": config.n_networks, "neurons_per_network": config.n_neurons,
        "chip_neurons_used": max(r["used_neurons"] for r in hardware.values()),
        "max_fan_in_used": max(r["max_fan_in_used"] for r in hardware.values()),
        "generators_in_use": max(r["background"]["generators_used"] for r in hardware.values()),
        "background_delay_ms": results["ensemble_background"]["delay_ms"],
        "background_delay_max_ms": results["ensemble_background"]["delay_max_ms"],
        "hardware_time_s": float(sum(r["hardware_time_s"] for r in hardware.values())),
        "biological_time_s": float(sum(r["biological_time_ms"] for r in hardware.values()) / 1e3),
        "nominal_speedup": hardware["ensemble_trained"]["speedup"],
        "chip_seed": args.chip_seed,
        "calibration": hardware["ensemble_trained"]["fixed_pattern_noise"]["calibration"],
    }
    results = {"benchmark": "chip_ensemble", "description": __doc__.split("\n\n")[0], "summary": summary,
               **results, "wall_time_s": time.perf_counter() - tic, "load_average_at_end": list(os.getloadavg()),
               "command": " ".join([Path(sys.executable).name, *sys.argv])}
    for name in ("results.json", "config.json", "checkpoint.json"):
        (out / name).unlink(missing_ok=True)          # the benchmark's JSON is the one in results/
    cache = os.environ.get("CORTEXSIM_CACHE_DIR", str(Path.home() / ".cache" / "cortexsim"))
    results = _portable(results, cache)
    write_json_atomic(ROOT / "results" / ("chip_ensemble_quick.json" if args.quick else "chip_ensemble.json"), results)
    for key in ("dkl_untrained_chip", "dkl_trained_chip", "dkl_poisson_nest"):
        print(f"{key}: {summary[key]:.4f}")
    print(f"ratio {ratio:.2f} (<= 1.5), improvement {improvement:.1f}x (>= 5); generators in use "
          f"{summary['generators_in_use']}; hardware time {summary['hardware_time_s']:.3f} s "
          f"for {summary['biological_time_s']:.0f} s of biology")
    print("criteria:", summary["criteria"])
    return 0 if all(summary["criteria"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
