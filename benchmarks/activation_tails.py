"""The LIF activation function's tails against the logistic the calibration fits (issue 22, spiking RBM diagnosis).

The spiking MNIST RBM's free-running network leaves rarely active pixel units on 4-45x less often than Gibbs chains
at the same weights (``spiking_rbm_data_diagnosis.md`` section 9). The calibration measures p_on only where it is
at least ~0.04 (its sweep) and fits a logistic there; the weight and bias translation then assumes the logistic
everywhere. This benchmark measures p_on of uncoupled neurons (the MNIST RBM's neuron and Poisson noise on
``brian2_standalone``, :func:`cortexsim.protocols.calibration.measure_activation`) at the leak potentials where the
fitted logistic predicts p = ``TARGETS`` (down to 0.001 and up to 0.999), ``REPLICAS`` neurons per point and
``DURATION_MS`` of simulated time (0.1 Hz at p = 0.001: about 2,000 spikes per point if the logistic held), and reports the ratio of the
measured p_on (and 1 - p_on in the upper tail) to the logistic's.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/activation_tails.py

Writes ``benchmarks/results/activation_tails.json`` and ``benchmarks/results/activation_tails.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import logit

from cortexsim.analysis.plots import plot_activation_tails
from cortexsim.backends.registry import load_backend
from cortexsim.protocols.calibration import calibrate, measure_activation
from cortexsim.protocols.cd_digits import MnistTrainingConfig
from cortexsim.results import library_versions, machine_info, write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "activation_tails.json"
FIGURE = RESULTS.with_suffix(".png")
#: Probabilities the fitted logistic predicts at the measured leak potentials.
TARGETS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99, 0.997, 0.999)
REPLICAS = 20
DURATION_MS = 1_000_000.0
SEED = 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=DURATION_MS, help="simulated time per neuron (ms)")
    args = parser.parse_args(argv)
    if not args.duration > 0:
        parser.error(f"--duration must be > 0 ms, got {args.duration}")
    config = MnistTrainingConfig(seed=SEED, backend="brian2_standalone")
    calibration = config.calibration()
    fit = calibrate(calibration).fit
    targets = np.asarray(TARGETS)
    e_l = fit.v_p05 + fit.alpha * logit(targets)          # the logistic's inverse (mV)
    tic = time.perf_counter()
    p = measure_activation(load_backend(config.backend), np.repeat(e_l, REPLICAS), calibration.neuron,
                           calibration.noise, args.duration, calibration.dt_ms, SEED, progress=True,
                           label="activation tails").reshape(len(targets), REPLICAS)
    wall = time.perf_counter() - tic
    mean, err = p.mean(axis=1), p.std(axis=1, ddof=1) / np.sqrt(REPLICAS)
    lower = targets < 0.5
    ratio = np.where(lower, mean / targets, (1.0 - mean) / (1.0 - targets))
    points = [{"target_p_logistic": float(t), "e_leak_mV": float(e), "p_on": float(m), "p_on_stderr": float(s),
               "ratio_to_logistic": float(r), "ratio_of": "p_on" if t < 0.5 else "1 - p_on"}
              for t, e, m, s, r in zip(targets, e_l, mean, err, ratio)]
    plot_activation_tails(e_l, mean, err, fit, FIGURE,
                          title=f"LIF activation tails vs the logistic fit (brian2_standalone, {REPLICAS} neurons x "
                                f"{args.duration / 1000:g} s per point)")
    by_target = {f"{t:g}": float(r) for t, r in zip(targets, ratio)}
    write_json_atomic(RESULTS, {
        "benchmark": "activation_tails",
        "summary": {"ratio_p_on_at_logistic_0.001": by_target["0.001"], "ratio_p_on_at_logistic_0.01": by_target["0.01"],
                    "ratio_p_on_at_logistic_0.03": by_target["0.03"],
                    "ratio_off_at_logistic_0.99": by_target["0.99"], "ratio_off_at_logistic_0.999": by_target["0.999"],
                    "fit": fit.to_dict(), "wall_s": wall},
        "description": "p_on of uncoupled LIF neurons (the MNIST RBM's neuron and Poisson noise) at the leak potentials "
                       "where the calibration's logistic predicts target_p_logistic; ratio_to_logistic = measured / "
                       "logistic p_on in the lower half, measured / logistic (1 - p_on) in the upper half (1: the "
                       "logistic holds; < 1: a lighter tail)",
        "points": points, "replicas": REPLICAS, "duration_ms": args.duration, "seed": SEED,
        "figure": str(FIGURE.relative_to(RESULTS.parent.parent)),
        "calibration": {"backend": calibration.backend, "dt_ms": calibration.dt_ms, "n_points": calibration.n_points,
                        "duration_ms": calibration.duration_ms},
        "versions": library_versions(), "machine": machine_info()})
    for point in points:
        print(f"logistic {point['target_p_logistic']:.3f}: measured {point['p_on']:.5f} +- {point['p_on_stderr']:.5f}"
              f" (ratio of {point['ratio_of']} {point['ratio_to_logistic']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
