"""How fast does the background fluctuate, and how fast do the networks mix, under each noise source?

The static-synapse ensemble of session 2 mixed 2.3x more slowly than Poisson-driven networks
(benchmarks/results/ensemble_sampling_floor.json, bias term B), which alone keeps its trained D_KL at
a finite sampling time above Poisson's. The cause is the sources' own state persistence: a sampling
neuron in state z = 1 refires every tau_ref, so each source delivers bursts, and the background
carries the slow switching of the other networks' states. Depressing background synapses (Tsodyks-
Markram, U = 1) deliver mostly the first spike of a burst. This script measures, for the same 50
networks of 5 neurons (the targets of benchmarks/ensemble_sampling.py, translated with the Poisson
activation function, untrained), under Poisson noise, the static ensemble background (K = 30,
0.002 uS) and depressing backgrounds (K = 30, tau_rec 20 / 40 / 80 ms, weights from
:func:`cortexsim.models.ensemble.matched_background`):

- the free membrane potential of 20 non-spiking probes at v_p05 (sources drawn from the ensemble):
  mean, standard deviation, normalised autocorrelation at 5 / 10 / 20 / 50 ms and its integral;
- the networks' own neurons: mean rate and the autocorrelation of their states z(t) (1 ms grid)
  and its integral, the time scale on which the samples decorrelate.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ensemble_background_timescales.py

Writes benchmarks/results/ensemble_background_timescales.json.
"""

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from cortexsim.analysis.background import autocorrelation
from cortexsim.analysis.states import states_on_grid
from cortexsim.backends.registry import load_backend
from cortexsim.models.boltzmann import random_bm
from cortexsim.models.ensemble import equivalent_noise
from cortexsim.protocols.calibration import CalibrationConfig, calibrate
from cortexsim.seeds import derive_seed
from cortexsim.protocols.ensemble import EnsembleConfig
from cortexsim.protocols.ensemble import build
from cortexsim.results import library_versions, machine_info, write_json_atomic

ROOT = Path(__file__).resolve().parent
SEED, DURATION_MS, BURN_IN_MS, N_PROBES, MAX_LAG_MS = 1, 10000.0, 1000.0, 20, 300

VARIANTS = {  # name -> (mode, background synapse kind, tau_rec in ms)
    "poisson": ("poisson", "static", 40.0),
    "ensemble_static": ("ensemble", "static", 40.0),
    "ensemble_depressing_20ms": ("ensemble", "depressing", 20.0),
    "ensemble_depressing_40ms": ("ensemble", "depressing", 40.0),
    "ensemble_depressing_80ms": ("ensemble", "depressing", 80.0),
}


def measure(sim, config: EnsembleConfig, fit, mode: str) -> dict:
    settings = config.run_settings()
    targets = [random_bm(config.n_neurons, seed=derive_seed(config.seed, 10, m)) for m in range(config.n_networks)]
    noise = equivalent_noise(settings.background, mode, config.noise)
    ensemble = build(sim, settings, targets, fit, mode, noise, derive_seed(config.seed, 4, 1),
                     membrane_probes=np.full(N_PROBES, fit.v_p05))
    tic = time.perf_counter()
    sim.run(BURN_IN_MS + DURATION_MS)
    wall = time.perf_counter() - tic
    spiketrains = ensemble.spiketrains()
    v = np.asarray(ensemble.probes.get_data("v").segments[-1].analogsignals[0].magnitude).T
    sim.end()
    step = int(round(1.0 / config.dt_ms))
    v = v[:, int(round(BURN_IN_MS / config.dt_ms))::step]  # 1 ms grid
    z = states_on_grid(spiketrains, config.neuron.tau_refrac, BURN_IN_MS, BURN_IN_MS + DURATION_MS, 1.0).T
    acf_v, tau_v = autocorrelation(v, MAX_LAG_MS)
    acf_z, tau_z = autocorrelation(z, MAX_LAG_MS)
    rates = np.array([np.sum(np.asarray(st.magnitude) >= BURN_IN_MS) for st in spiketrains]) / DURATION_MS * 1e3
    lags = [5, 10, 20, 50, 100]
    return {"free_membrane": {"mean_mv": float(v.mean()), "std_mv": float(v.std(axis=1).mean()),
                              "spread_of_means_mv": float(v.mean(axis=1).std()),
                              "acf_at_lag_ms": {str(k): float(acf_v[k]) for k in lags}, "correlation_time_ms": tau_v},
            "states": {"mean_rate_hz": float(rates.mean()), "silent_or_saturated_fraction":
                       float(np.mean((rates < 1.0) | (rates > 95.0))),
                       "acf_at_lag_ms": {str(k): float(acf_z[k]) for k in lags}, "correlation_time_ms": tau_z},
            "run_wall_s": wall}


def main() -> int:
    sim = load_backend("nest")
    base = EnsembleConfig(seed=SEED)
    fit = calibrate(CalibrationConfig(seed=SEED, backend="nest", neuron=base.neuron, noise=base.noise,
                                      dt_ms=base.dt_ms)).fit
    results = {}
    for name, (mode, synapse, tau_rec) in VARIANTS.items():
        config = replace(base, background_synapse=synapse, tau_rec_ms=tau_rec)
        results[name] = measure(sim, config, fit, mode)
        results[name]["background"] = config.run_settings().background.to_dict() if mode == "ensemble" else None
        r = results[name]
        print(f"{name:26s} free membrane std {r['free_membrane']['std_mv']:.2f} mV, correlation time "
              f"{r['free_membrane']['correlation_time_ms']:5.1f} ms | states: rate {r['states']['mean_rate_hz']:5.1f} Hz, "
              f"correlation time {r['states']['correlation_time_ms']:5.1f} ms", flush=True)
    write_json_atomic(ROOT / "results" / "ensemble_background_timescales.json", {
        "description": __doc__.split("\n\n")[1].replace("\n", " "), "variants": results,
        "parameters": {"seed": SEED, "duration_ms": DURATION_MS, "burn_in_ms": BURN_IN_MS, "membrane_probes": N_PROBES,
                       "max_lag_ms": MAX_LAG_MS, "n_networks": base.n_networks, "n_neurons": base.n_neurons,
                       "in_degree": base.in_degree, "activation_fit": {"v_p05": fit.v_p05, "alpha": fit.alpha},
                       "translation": "Poisson activation function, untrained targets"},
        "correlation_time": "dt * sum of the mean normalised autocorrelation over lags 0-299 ms (1 ms grid)",
        "versions": library_versions(), "machine": machine_info(), "load_average_at_end": list(os.getloadavg()),
        "command": " ".join([Path(sys.executable).name, *sys.argv])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
