"""Re-score a finished data-ensemble run's trained networks with another evaluation setting (issue 22).

The ensemble's evaluation clamps every network at once, so its background differs from the staggered
training's; with ``--eval-background measured`` the trained ensemble's source rate and per-neuron leak offsets
are measured under the evaluation's own clamps on TRAINING images
(:func:`cortexsim.protocols.ensemble_data.measured_background`) instead of taken from the last training
segment. The networks, test images, occlusions and simulator seeds are the run's
(:func:`cortexsim.protocols.ensemble_data.reevaluate_trained`); training is not repeated.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ensemble_data_reevaluate.py \\
        --results benchmarks/results/ensemble_data_dev.json --output ensemble_data_reevaluated_dev

Writes ``benchmarks/results/<output>.json``: ``summary`` with the re-scored medians over networks
(``<mode>_test_accuracy``, ``<mode>_completion_error``, the votes), the run's own figures
(``run_<key>``), the gap to the Poisson networks (re-scored if ``poisson`` is among ``--modes``, else the run's)
and the completion-error ratio; plus the scores, the measured backgrounds, settings, timing, versions, machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from cortexsim.backends.registry import load_backend
from cortexsim.config import config_from_dict
from cortexsim.models.boltzmann import BoltzmannMachine
from cortexsim.models.ensemble import equivalent_noise
from cortexsim.models.lif_translation import transferred_fit
from cortexsim.parameters import ActivationFit
from cortexsim.protocols.calibration import CalibrationConfig, calibrate
from cortexsim.protocols.cd_engine import block_slices
from cortexsim.protocols.ensemble import background_run_settings, measure_background
from cortexsim.protocols.ensemble_data import (EVAL_BACKGROUNDS, MODES, EnsembleDataConfig, _trained_parameters,
                                               reevaluate_trained)
from cortexsim.results import library_versions, machine_info, write_json_atomic

ROOT = Path(__file__).resolve().parent


def replicated(run: dict, replicas: int) -> dict:
    """``run`` with every trained network ``replicas`` times (network m of copy r at position r M + m): the
    config's ``n_networks`` times ``replicas``, trained blocks and biases tiled, the rest unchanged. A diagnosis
    of the ensemble's size at fixed weights: each network's background then comes from R M - 1 networks."""
    run = json.loads(json.dumps(run))
    run["config"]["n_networks"] *= replicas
    for trained in run["trained_parameters"].values():
        trained["W_blocks"] = trained["W_blocks"] * replicas
        trained["b"] = trained["b"] * replicas
    return run


def refitted(run: dict) -> tuple[dict, dict]:
    """``run`` with the ensemble's activation fit and mean source rate measured again, with the run's calibration
    settings (:func:`cortexsim.protocols.ensemble.measure_background`, the BMs translated with the Poisson fit as
    in the run), on the TRAINED ensemble networks instead of the initial ones; and a record of old and new."""
    config = config_from_dict(EnsembleDataConfig, run["config"])
    W, b = _trained_parameters(run["trained_parameters"]["ensemble"], config)
    bms = [BoltzmannMachine(W[s, s], b[s]) for s in block_slices([config.n_units] * config.n_networks)]
    poisson_fit = ActivationFit.from_dict(run["activation_fit"]["poisson"])
    sim = load_backend(config.backend)
    measured = measure_background(sim, config, background_run_settings(config, config.backend), bms, poisson_fit,
                                  "ensemble")
    run = json.loads(json.dumps(run))
    record = {"initial_fit": run["activation_fit"]["ensemble"], "initial_source_rate_hz": run["ensemble_source_rate_hz"],
              "trained_fit": measured["fit"].to_dict(), "trained_source_rate_hz": measured["source_rate_hz"]}
    run["activation_fit"]["ensemble"] = record["trained_fit"]
    run["ensemble_source_rate_hz"] = record["trained_source_rate_hz"]
    return run, record


def poisson_equivalent(run: dict) -> tuple[dict, dict]:
    """``run`` whose "poisson" networks are the ENSEMBLE's trained ones under independent Poisson noise equal to
    the ensemble background's equivalent noise at the last training segment's source rate
    (:func:`cortexsim.models.ensemble_background.equivalent_noise`: same mean conductance, same event weight),
    translated with the activation function calibrated under that noise
    (:func:`cortexsim.protocols.calibration.calibrate`; the ensemble's fit moved there by
    :func:`~cortexsim.models.lif_translation.transferred_fit` is recorded beside: it does not follow the
    fluctuations' size), without per-neuron offsets (every neuron gets the same background); and a record."""
    config = config_from_dict(EnsembleDataConfig, run["config"])
    background = background_run_settings(config, config.backend).background
    rate = float(run["training_history"]["ensemble"]["segment_tracking"][-1]["source_rate_hz"])
    calibration_noise = equivalent_noise(background, "ensemble", config.noise, float(run["ensemble_source_rate_hz"]))
    noise = equivalent_noise(background, "ensemble", config.noise, rate)
    fit = ActivationFit.from_dict(run["activation_fit"]["ensemble"])
    moved = transferred_fit(fit, config.neuron, calibration_noise, noise)
    measured = calibrate(CalibrationConfig(seed=config.seed, backend=config.backend, neuron=config.neuron, noise=noise,
                                           dt_ms=config.dt_ms)).fit
    run = json.loads(json.dumps(run))
    run["config"]["noise"] = dataclasses.asdict(noise)
    run["activation_fit"]["poisson"] = measured.to_dict()
    run["trained_parameters"]["poisson"] = run["trained_parameters"]["ensemble"]
    run["training_history"]["poisson"] = {}
    return run, {"noise": dataclasses.asdict(noise), "ensemble_fit_moved": moved.to_dict(),
                 "fit_calibrated_under_it": measured.to_dict(), "source_rate_hz": rate}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", required=True, help="a benchmarks/results/ensemble_data*.json file")
    parser.add_argument("--run", default="digits_depressing", help="which of its runs (default digits_depressing)")
    parser.add_argument("--modes", default="ensemble", help="comma-separated: poisson,ensemble (default ensemble)")
    parser.add_argument("--eval-background", default="measured", choices=EVAL_BACKGROUNDS)
    parser.add_argument("--calibration-images", type=int, default=None,
                        help="training images per read-out kind (default: EnsembleDataConfig's)")
    parser.add_argument("--passes", type=int, default=None, help="measurements per kind (default: the config's)")
    parser.add_argument("--eval-groups", type=int, default=None,
                        help="read the networks in G groups, the others free (EnsembleDataConfig.eval_groups)")
    parser.add_argument("--eval-read", type=float, default=None, help="read-out window per image (ms; default: the run's)")
    parser.add_argument("--keep-label-readout", action="store_true",
                        help="also store the label units' on-fractions in classification (M x n x 10 per mode)")
    parser.add_argument("--replicas", type=int, default=1,
                        help="diagnosis: every trained network R times in one ensemble of R M networks (independent "
                             "copies, each the others' background; default 1: the run's ensemble)")
    parser.add_argument("--refit", action="store_true",
                        help="diagnosis: measure the ensemble's activation function and source rate again under the "
                             "TRAINED networks' background (the run measured them with the initial weights) and "
                             "translate with them")
    parser.add_argument("--in-degree", type=int, default=None,
                        help="diagnosis (with --refit): K background sources per receptor instead of the run's, the "
                             "background weights matched to the same mean conductance")
    parser.add_argument("--poisson-equivalent", action="store_true",
                        help="diagnosis: read the ENSEMBLE's trained networks under independent Poisson noise with "
                             "the ensemble background's mean conductance and event size (its equivalent noise at the "
                             "last training segment's rate), translated with a fit calibrated under it; scored as "
                             "'poisson'")
    parser.add_argument("--output", required=True, help="name of the results file (benchmarks/results/NAME.json)")
    args = parser.parse_args(argv)
    path = Path(args.results)
    if not path.is_file():
        parser.error(f"--results: no file {path}")
    runs = json.loads(path.read_text()).get("runs", {})
    if args.run not in runs:
        parser.error(f"--run: {path} has runs {sorted(runs)}, not {args.run!r}")
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes: choose from {list(MODES)}, got {modes}")
    out = ROOT / "results" / f"{args.output}.json"
    if out.resolve() == path.resolve():
        parser.error("--output must not overwrite the run's own results file")
    run = runs[args.run]
    if args.replicas < 1:
        parser.error(f"--replicas must be >= 1, got {args.replicas}")
    if args.replicas > 1:
        run = replicated(run, args.replicas)
    refit_record = None
    if args.in_degree is not None:
        if not args.refit:
            parser.error("--in-degree changes the background: the activation function must be measured again (--refit)")
        run = json.loads(json.dumps(run))
        run["config"]["in_degree"] = args.in_degree
        config_from_dict(EnsembleDataConfig, run["config"])        # checked before anything runs
    if args.refit:
        run, refit_record = refitted(run)
    if args.poisson_equivalent:
        if modes != ["poisson"]:
            parser.error("--poisson-equivalent scores the ensemble's networks as mode 'poisson': use --modes poisson")
        run, refit_record = poisson_equivalent(run)
    changes = {"eval_background": args.eval_background}
    if args.calibration_images is not None:
        changes["eval_calibration_images"] = args.calibration_images
    if args.passes is not None:
        changes["eval_calibration_passes"] = args.passes
    if args.eval_groups is not None:
        changes["eval_groups"] = args.eval_groups
    if args.eval_read is not None:
        changes["eval_read_ms"] = args.eval_read
    tic = time.perf_counter()
    scores = reevaluate_trained(run, modes=modes, progress=True, keep_label_readout=args.keep_label_readout,
                                **changes)
    wall_s = time.perf_counter() - tic
    own = run["summary"]
    summary = {"results": str(path), "run": args.run, "replicas": args.replicas, "refit": refit_record,
               "in_degree": run["config"]["in_degree"],
               "poisson_equivalent": bool(args.poisson_equivalent), **changes}
    for mode in MODES:
        for key in ("test_accuracy", "completion_error", "vote_test_accuracy"):
            summary[f"run_{mode}_{key}"] = own[f"{mode}_{key}"]
    for mode, s in scores.items():
        summary[f"{mode}_test_accuracy"] = float(np.median(s["accuracy"]))
        summary[f"{mode}_completion_error"] = float(np.median(s["mean_completion_error"]))
        summary[f"{mode}_vote_test_accuracy"] = float(s["vote_accuracy"])
    poisson = "" if "poisson" in scores else "run_"
    if "ensemble" in scores:
        summary["accuracy_gap_points"] = 100 * (summary[f"{poisson}poisson_test_accuracy"]
                                                - summary["ensemble_test_accuracy"])
        summary["completion_error_ratio"] = (summary["ensemble_completion_error"]
                                             / summary[f"{poisson}poisson_completion_error"])
        summary["gap_against"] = f"{poisson}poisson_test_accuracy"
    summary["wall_time_s"] = wall_s
    write_json_atomic(out, {
        "benchmark": "ensemble_data_reevaluate", "summary": summary,
        "scores": {mode: {k: v for k, v in s.items() if k != "examples"} for mode, s in scores.items()},
        "run_config": run["config"], "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "versions": library_versions(), "machine": machine_info()})
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
