"""Urbanczik-Senn dendritic-prediction learning on NEST and Brian2 (the issue-3 cross-check).

    cortexsim urbanczik --backends nest,brian2 --seed N [--repetitions R] --out DIR

The model and both simulator versions live in :mod:`cortexsim.models.microcircuit.urbanczik`
(``urbanczik_nest``, ``urbanczik_brian2``); this protocol runs them and writes ``results.json``
(error curves in mV per repetition, summaries, versions) and ``urbanczik_error_curves.png``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cortexsim.results import library_versions, machine_info, output_dir, write_results

from ..analysis.plots import plot_error_curves
from ..models.microcircuit.urbanczik import UrbanczikConfig, UrbanczikNeuronParams

__all__ = ["UrbanczikRunConfig", "UrbanczikRunResult", "run", "run_urbanczik", "error_curves", "SIMULATORS"]

#: The simulators the model is written for (natively, not through PyNN).
SIMULATORS = ("nest", "brian2")


@dataclass(frozen=True)
class UrbanczikRunConfig(UrbanczikConfig):
    """The learning protocol (:class:`~cortexsim.models.microcircuit.urbanczik.UrbanczikConfig`) and where it runs.

    Attributes
    ----------
    backends : tuple of str
        Simulators to run the model on, each of ("nest", "brian2") (native models, not PyNN).
    """

    backends: tuple = SIMULATORS

    def __post_init__(self):
        super().__post_init__()
        backends = (self.backends,) if isinstance(self.backends, str) else tuple(self.backends)
        unknown = [name for name in backends if name not in SIMULATORS]
        if unknown or not backends:
            raise ValueError(f"backends must be a non-empty selection of {SIMULATORS}, got {list(backends)}")
        object.__setattr__(self, "backends", backends)


@dataclass
class UrbanczikRunResult:
    """The runs of one protocol (one :class:`~cortexsim.models.microcircuit.urbanczik.UrbanczikResult` per
    simulator)."""

    config: UrbanczikRunConfig
    params: UrbanczikNeuronParams
    runs: list
    files: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Headline figures: first and last RMS prediction error (mV) per simulator."""
        out = {}
        for run in self.runs:
            out[f"{run.simulator}_error_first_mV"] = float(run.errors_rms[0])
            out[f"{run.simulator}_error_last_mV"] = float(run.errors_rms[-1])
        return out

    def to_dict(self) -> dict:
        """Everything, as ``results.json`` holds it."""
        return {"config": self.config, "params": self.params, "summaries": [r.summary() for r in self.runs],
                "errors_rms_mV": {r.simulator: r.errors_rms for r in self.runs},
                "versions": library_versions(), "machine": machine_info(), "files": self.files}


def error_curves(results: list) -> dict:
    """Error curves (mV) of runs grouped by simulator, as :func:`cortexsim.analysis.plots.plot_error_curves` takes."""
    curves: dict[str, list[np.ndarray]] = {}
    for result in results:
        curves.setdefault(result.simulator, []).append(result.errors_rms)
    return curves


def run(config: UrbanczikRunConfig, out_dir: str | Path | None = None, progress: bool = False,
        params: UrbanczikNeuronParams | None = None) -> UrbanczikRunResult:
    """Run the learning protocol on each of ``config.backends``; write outputs to ``out_dir``."""
    params = params or UrbanczikNeuronParams()
    runs = []
    if "nest" in config.backends:
        from ..models.microcircuit.urbanczik_nest import run_nest_urbanczik
        runs.append(run_nest_urbanczik(config, params))
    if "brian2" in config.backends:
        from ..models.microcircuit.urbanczik_brian2 import run_brian2_urbanczik
        runs.append(run_brian2_urbanczik(config, params))
    result = UrbanczikRunResult(config, params, runs)
    if out_dir is not None:
        out = output_dir(out_dir)
        figure = plot_error_curves(error_curves(runs), out / "urbanczik_error_curves.png")
        result.files = {"error_curves": Path(figure).name}
        write_results(out, result.to_dict(), config)
    return result


def run_urbanczik(config: UrbanczikConfig, simulators=SIMULATORS, out_dir: str | Path | None = None,
                  params: UrbanczikNeuronParams | None = None) -> list:
    """:func:`run` for a model config and a list of simulators; returns the per-simulator results."""
    unknown = [name for name in simulators if name not in SIMULATORS]
    if unknown:
        raise ValueError(f"simulators must be among {SIMULATORS}, got {unknown}")
    fields = {name: getattr(config, name) for name in config.__dataclass_fields__}
    return run(UrbanczikRunConfig(**fields, backends=tuple(simulators)), out_dir, params=params).runs
