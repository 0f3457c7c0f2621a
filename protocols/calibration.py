"""Activation-function calibration: p_on of uncoupled LIF neurons against their leak potential.

Each neuron of one population gets a different leak potential E_l and the same Poisson background;
``p_on = n_spikes * tau_ref / T`` is the fraction of time it spends in state z = 1. A logistic
``p_on = 1 / (1 + exp(-(E_l - v_p05) / alpha))`` is fitted to the points with 0.05 < p_on < 0.95
(references §1). A coarse sweep first finds the transition; the fine sweep then places ``n_points``
leak potentials across it.

Results are cached in a JSON file keyed by everything that changes the answer (backend, neuron and
noise parameters, dt, sweep settings, and the device if the backend has a ``device_identity()``, such
as an emulated chip): a changed key recalibrates, an unchanged one reuses.
"""

from __future__ import annotations

import logging
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cortexsim.config import config_to_dict
from cortexsim.results import library_versions, output_dir, read_json, write_json_atomic, write_results
from cortexsim.seeds import derive_seed

from ..backends.noise import add_poisson_background
from ..analysis.plots import plot_activation_function
from ..backends.registry import check_dt, chip_booking, load_backend
from ..models.lif_translation import fit_activation, free_membrane
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters

__all__ = ["CalibrationConfig", "CalibrationResult", "run", "calibrate", "default_cache_path",
           "measure_activation"]

logger = logging.getLogger(__name__)


def default_cache_path() -> Path:
    """``$CORTEXSIM_CACHE_DIR/calibration.json``, by default ``~/.cache/cortexsim/calibration.json``."""
    root = os.environ.get("CORTEXSIM_CACHE_DIR") or Path.home() / ".cache" / "cortexsim"
    return Path(root) / "calibration.json"


@dataclass(frozen=True)
class CalibrationConfig:
    """Settings of an activation-function calibration.

    Attributes
    ----------
    seed : int
        Seed of the simulation (required).
    backend : str
        Registered backend name.
    neuron : NeuronParameters
        Neuron parameters (PyNN units; v_rest is swept).
    noise : NoiseParameters
        Poisson background (Hz, uS).
    dt_ms : float
        Integration step (ms).
    n_points : int
        Leak potentials in the fine sweep (>= 5).
    duration_ms : float
        Simulated time of the fine sweep (ms); every point runs in parallel.
    coarse_points : int
        Leak potentials in the coarse sweep.
    coarse_duration_ms : float
        Simulated time of the coarse sweep (ms).
    coarse_half_width_mv : float
        The coarse sweep covers the analytic guess +- this (mV).
    use_cache : bool
        Reuse a cached fit with the same settings (and store new fits); False measures anew.
    """

    seed: int
    backend: str = "nest"
    neuron: NeuronParameters = DEFAULT_NEURON
    noise: NoiseParameters = DEFAULT_NOISE
    dt_ms: float = 0.1
    n_points: int = 60
    duration_ms: float = 30000.0
    coarse_points: int = 41
    coarse_duration_ms: float = 1000.0
    coarse_half_width_mv: float = 20.0
    use_cache: bool = True

    def __post_init__(self):
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        check_dt(self.backend, self.dt_ms)
        if int(self.n_points) < 5:
            raise ValueError(f"n_points must be >= 5, got {self.n_points}")
        if int(self.coarse_points) < 5:
            raise ValueError(f"coarse_points must be >= 5, got {self.coarse_points}")
        for name in ("duration_ms", "coarse_duration_ms", "coarse_half_width_mv"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value}")

    def cache_key(self) -> str:
        """Hash of every setting that changes the calibration (the seed does not)."""
        settings = config_to_dict(self)
        settings.pop("seed")
        settings.pop("use_cache")
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CalibrationResult:
    """Outcome of a calibration: the fit and the measured points (E_l in mV, p_on)."""

    config: CalibrationConfig
    fit: ActivationFit
    e_leak: np.ndarray
    p_on: np.ndarray
    from_cache: bool
    wall_time_s: float
    versions: dict = field(default_factory=dict)

    files: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Everything, as ``results.json`` holds it."""
        return {"config": config_to_dict(self.config), "v_p05": self.fit.v_p05, "alpha": self.fit.alpha,
                "e_leak": self.e_leak, "p_on": self.p_on, "from_cache": self.from_cache,
                "wall_time_s": self.wall_time_s, "versions": self.versions, "files": self.files}

    def summary(self) -> dict:
        """Headline figures: the fit (mV) and where it came from."""
        return {"backend": self.config.backend, "v_p05_mV": self.fit.v_p05, "alpha_mV": self.fit.alpha,
                "from_cache": self.from_cache}


def measure_activation(sim, e_leak: np.ndarray, neuron: NeuronParameters, noise: NoiseParameters,
                       duration_ms: float, dt_ms: float, seed: int) -> np.ndarray:
    """p_on of uncoupled neurons with leak potentials ``e_leak`` (mV) after ``duration_ms`` (ms)."""
    sim.setup(timestep=dt_ms, seed=seed)
    params = neuron.as_pynn()
    params["v_rest"] = np.asarray(e_leak, dtype=float)
    population = sim.Population(len(e_leak), sim.IF_cond_exp(**params), label="calibration")
    population.initialize(v=np.asarray(e_leak, dtype=float))
    population.record("spikes")
    add_poisson_background(sim, population, noise)
    sim.run(duration_ms)
    spiketrains = population.get_data("spikes").segments[-1].spiketrains
    counts = np.array([len(st) for st in spiketrains], dtype=float)
    sim.end()
    return counts * neuron.tau_refrac / duration_ms


def _analytic_guess(neuron: NeuronParameters, noise: NoiseParameters) -> float:
    """Leak potential at which the free mean membrane potential sits at threshold (mV)."""
    mu_low, _, _ = free_membrane(neuron, noise, 0.0)
    mu_high, _, _ = free_membrane(neuron, noise, 1.0)
    slope = mu_high - mu_low  # d mu / d E_l = g_l / g_tot
    return float((neuron.v_thresh - mu_low) / slope)


def _load_cache(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = read_json(path)
    except ValueError:
        return {}  # a corrupt cache only costs a recalibration
    return data if isinstance(data, dict) else {}


def run(config: CalibrationConfig, out_dir: str | os.PathLike | None = None,
        progress: bool = False) -> CalibrationResult:
    """Calibrate (``config.use_cache``) and, with ``out_dir``, write ``results.json`` and the fit's figure.

    The protocol behind ``cortexsim calibrate``; :func:`calibrate` is the function other protocols call.
    """
    result = calibrate(config, use_cache=config.use_cache, progress=progress)
    if out_dir is not None:
        out = output_dir(out_dir)
        figure = plot_activation_function(result.e_leak, result.p_on, result.fit, out / "activation_function.png")
        result.files = {"activation_function": Path(figure).name}
        write_results(out, result.to_dict(), config, chip_booking(load_backend(config.backend)))
    return result


def calibrate(config: CalibrationConfig, cache_path: str | os.PathLike | None = None,
              use_cache: bool = True, progress: bool = False) -> CalibrationResult:
    """Measure and fit the activation function on ``config.backend`` (or reuse the cached fit).

    Parameters
    ----------
    config : CalibrationConfig
        What to calibrate.
    cache_path : path, optional
        Cache file; :func:`default_cache_path` by default.
    use_cache : bool
        Reuse a cached fit with the same key (and store new fits).
    progress : bool
        Print what is being measured.
    """
    cache_path = Path(cache_path) if cache_path is not None else default_cache_path()
    sim = load_backend(config.backend)
    key = f"{config.backend}:{config.cache_key()}"
    device = getattr(sim, "device_identity", None)   # backends whose device changes the answer (a chip)
    if device is not None:
        key += f":{device()}"
    if use_cache:
        entry = _load_cache(cache_path).get(key)
        if entry is not None:
            return CalibrationResult(config, ActivationFit(entry["v_p05"], entry["alpha"]),
                                     np.asarray(entry["e_leak"]), np.asarray(entry["p_on"]), True,
                                     0.0, entry.get("versions", {}))
    start = time.perf_counter()
    guess = _analytic_guess(config.neuron, config.noise)
    coarse_e = np.linspace(guess - config.coarse_half_width_mv, guess + config.coarse_half_width_mv,
                           config.coarse_points)
    if progress:
        logger.info(f"calibration on {config.backend}: coarse sweep of {config.coarse_points} leak potentials "
              f"over {config.coarse_duration_ms:g} ms")
    coarse_p = measure_activation(sim, coarse_e, config.neuron, config.noise, config.coarse_duration_ms,
                                  config.dt_ms, derive_seed(config.seed, 1))
    low = coarse_e[coarse_p <= 0.02]
    high = coarse_e[coarse_p >= 0.98]
    if low.size == 0 or high.size == 0:
        raise RuntimeError(f"calibration on {config.backend}: p_on stays within "
                           f"[{coarse_p.min():.3f}, {coarse_p.max():.3f}] for E_l in "
                           f"[{coarse_e[0]:.1f}, {coarse_e[-1]:.1f}] mV; widen coarse_half_width_mv")
    fine_e = np.linspace(low.max(), high.min(), config.n_points)
    if progress:
        logger.info(f"calibration on {config.backend}: fine sweep of {config.n_points} leak potentials in "
              f"[{fine_e[0]:.2f}, {fine_e[-1]:.2f}] mV over {config.duration_ms:g} ms")
    fine_p = measure_activation(sim, fine_e, config.neuron, config.noise, config.duration_ms,
                                config.dt_ms, derive_seed(config.seed, 2))
    fit = fit_activation(fine_e, fine_p)
    result = CalibrationResult(config, fit, fine_e, fine_p, False, time.perf_counter() - start,
                               library_versions())
    if use_cache:
        cache = _load_cache(cache_path)
        cache[key] = {**result.to_dict(), "from_cache": True}
        write_json_atomic(cache_path, cache)
    return result
