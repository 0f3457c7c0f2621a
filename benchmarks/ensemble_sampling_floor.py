"""How much of the trained D_KL of benchmarks/ensemble_sampling.py is finite-sampling bias?

D_KL(sampled || target) after T ms of sampling is biased upwards by about B / T (fewer effective
samples -> more spread-out histogram); B grows with the autocorrelation time of the sampler, so the
slower-mixing ensemble pays more at the same T. This script re-runs the benchmark's two trained
evaluations (same parameters, fits, seeds, burn-in and duration, read from
benchmarks/results/ensemble_sampling.json) and splits each run into windows: the mean D_KL over the
4 windows of T/4 and the 2 windows of T/2, and the full-T value, fitted per network by
D(T) = D_inf + B / T (least squares in 1 / T), give D_inf, the D_KL extrapolated to infinite
sampling time, and B.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ensemble_sampling_floor.py

Writes benchmarks/results/ensemble_sampling_floor.json.
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from cortexsim.analysis.divergence import sampling_error_fit
from cortexsim.backends.registry import load_backend
from cortexsim.config import config_from_dict
from cortexsim.models.boltzmann import BoltzmannMachine, joint
from cortexsim.models.ensemble import equivalent_noise
from cortexsim.parameters import ActivationFit
from cortexsim.seeds import derive_seed
from cortexsim.protocols.ensemble import EnsembleConfig, quartiles
from cortexsim.protocols.ensemble import build
from cortexsim.results import library_versions, machine_info, write_json_atomic

ROOT = Path(__file__).resolve().parent


def main() -> int:
    saved = json.loads((ROOT / "results" / "ensemble_sampling.json").read_text())
    config = config_from_dict(EnsembleConfig, saved["config"])
    settings = config.run_settings()
    targets = [BoltzmannMachine.from_dict(d) for d in saved["targets"]]
    fits = {mode: ActivationFit(v_p05=saved["activation_fit"][mode]["v_p05"], alpha=saved["activation_fit"][mode]["alpha"])
            for mode in ("poisson", "ensemble")}
    noises = {"poisson": config.noise,
              "ensemble": equivalent_noise(settings.background, "ensemble", config.noise, saved["ensemble_source_rate_hz"])}
    sim = load_backend(config.backend)
    T, t0 = config.eval_duration_ms, config.burn_in_ms
    inverse_T = np.array([4.0, 2.0, 1.0]) / T
    results = {}
    for index, mode in enumerate(("poisson", "ensemble")):
        tic = time.perf_counter()
        bms = [BoltzmannMachine.from_dict(d) for d in saved["final_parameters"][mode]]
        ensemble = build(sim, settings, bms, fits[mode], mode, noises[mode], derive_seed(config.seed, 7, index))
        sim.run(t0 + T)
        spiketrains = ensemble.spiketrains()
        sim.end()
        per_network = {"dkl_T": [], "dkl_half_mean": [], "dkl_quarter_mean": [], "dkl_inf": [], "bias_B_ms": []}
        for s, target in zip(ensemble.blocks, targets):
            error_fit = sampling_error_fit(spiketrains[s], joint(target), config.neuron.tau_refrac, t0, T, splits=(4, 2, 1))
            for key, value in zip(("dkl_quarter_mean", "dkl_half_mean", "dkl_T", "dkl_inf", "bias_B_ms"),
                                  (*error_fit["dkl_mean"], error_fit["dkl_inf"], error_fit["bias_B_ms"])):
                per_network[key].append(float(value))
        results[mode] = {"summary": {key: quartiles(v) for key, v in per_network.items()},
                         "per_network": per_network, "wall_s": time.perf_counter() - tic}
        print(f"{mode} trained: D_KL(T={T:g} ms) median {np.median(per_network['dkl_T']):.4f} "
              f"(benchmark: {saved['dkl_' + mode + '_trained']['median']:.4f}); extrapolated to infinite T: median "
              f"{np.median(per_network['dkl_inf']):.4f}; B median {np.median(per_network['bias_B_ms']):.1f} ms", flush=True)
    ratio_inf = results["ensemble"]["summary"]["dkl_inf"]["median"] / results["poisson"]["summary"]["dkl_inf"]["median"]
    print(f"ratio of extrapolated medians (ensemble / Poisson): {ratio_inf:.2f}")
    write_json_atomic(ROOT / "results" / "ensemble_sampling_floor.json", {
        "description": __doc__.split("\n\n")[1].replace("\n", " "),
        "windows_ms": (1.0 / inverse_T).tolist(), "fit": "per network: D(T) = D_inf + B / T, least squares over the 3 window lengths",
        **results, "ratio_dkl_inf_ensemble_to_poisson": ratio_inf,
        "source": "benchmarks/results/ensemble_sampling.json (final_parameters, activation_fit, config)",
        "config": saved["config"], "versions": library_versions(), "machine": machine_info(),
        "load_average_at_end": list(os.getloadavg()), "command": " ".join([Path(sys.executable).name, *sys.argv])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
