"""Urbanczik-Senn dendritic-prediction learning on NEST and Brian2 (the issue-3 cross-check).

    cortexsim urbanczik --simulator nest|brian2|both --seed N [--repetitions R] --out DIR

The model and both simulator versions live in :mod:`cortexsim.models.microcircuit.urbanczik`
(``urbanczik_nest``, ``urbanczik_brian2``); this protocol runs them and writes ``results.json``
(error curves in mV per repetition, summaries, versions) and ``urbanczik_error_curves.png``.
"""

from __future__ import annotations

from pathlib import Path

from cortexsim.results import library_versions, machine_info, output_dir, write_json_atomic

from ..models.microcircuit.urbanczik import UrbanczikConfig, UrbanczikNeuronParams, plot_error_curves

__all__ = ["run_urbanczik"]

SIMULATORS = ("nest", "brian2")


def run_urbanczik(config: UrbanczikConfig, simulators=SIMULATORS, out_dir: str | Path | None = None,
                  params: UrbanczikNeuronParams | None = None) -> list:
    """Run the learning protocol on each simulator in ``simulators``; write outputs to ``out_dir``."""
    unknown = [name for name in simulators if name not in SIMULATORS]
    if unknown:
        raise ValueError(f"simulators must be among {SIMULATORS}, got {unknown}")
    params = params or UrbanczikNeuronParams()
    results = []
    if "nest" in simulators:
        from ..models.microcircuit.urbanczik_nest import run_nest_urbanczik
        results.append(run_nest_urbanczik(config, params))
    if "brian2" in simulators:
        from ..models.microcircuit.urbanczik_brian2 import run_brian2_urbanczik
        results.append(run_brian2_urbanczik(config, params))
    if out_dir is not None:
        out = output_dir(out_dir)
        plot_error_curves(results, out / "urbanczik_error_curves.png")
        write_json_atomic(out / "results.json", {
            "config": config, "params": params, "summaries": [r.summary() for r in results],
            "errors_rms_mV": {r.simulator: r.errors_rms for r in results},
            "versions": library_versions(), "machine": machine_info()})
    return results
