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

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cortexsim.config import config_to_dict
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from cortexsim.results import file_lock, library_versions, output_dir, read_json, write_json_atomic, write_results
from cortexsim.seeds import derive_seed

from ..analysis.plots import plot_activation_function
from ..backends.noise import add_poisson_background
from ..backends.registry import check_backend_seed, check_dt, chip_booking, load_backend
from ..models.lif_translation import fit_activation, free_membrane
from .progress import run_with_progress

__all__ = ["CalibrationConfig", "CalibrationResult", "run", "calibrate", "default_cache_path",
           "measure_activation", "activation_fit_problem", "store_cache_entry"]

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
        Reuse a cached fit with the same settings (and store new fits); False measures anew and
        replaces the cached entry (``cortexsim calibrate --no-cache``).
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
        check_backend_seed(self.backend, self.seed)
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
                       duration_ms: float, dt_ms: float, seed: int, progress: bool = False,
                       label: str = "calibration") -> np.ndarray:
    """p_on of uncoupled neurons with leak potentials ``e_leak`` (mV) after ``duration_ms`` (ms)."""
    sim.setup(timestep=dt_ms, seed=seed)
    params = neuron.as_pynn()
    params["v_rest"] = np.asarray(e_leak, dtype=float)
    population = sim.Population(len(e_leak), sim.IF_cond_exp(**params), label="calibration")
    population.initialize(v=np.asarray(e_leak, dtype=float))
    population.record("spikes")
    add_poisson_background(sim, population, noise)
    duration_ms = run_with_progress(sim, duration_ms, enabled=progress, label=label, dt_ms=dt_ms)
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
        logger.warning("calibration cache %s is not valid JSON; it is replaced by the next measurement", path)
        return {}  # a corrupt file only costs a recalibration
    return data if isinstance(data, dict) else {}


def _refresh_hint(config: CalibrationConfig) -> str:
    return (f"re-measure and replace it with `cortexsim calibrate --backend {config.backend} --dt {config.dt_ms:g} "
            f"--no-cache` (with the same --parameter-set and chip options), or delete the file")


def _entry_fit(entry, cache_path: Path, key: str, config: CalibrationConfig) -> ActivationFit:
    """The fit stored in a cache entry; ValueError naming the cache file and the entry if it is unusable."""
    where = f"calibration cache {cache_path}, entry {key!r}"
    try:
        v_p05, alpha = float(entry["v_p05"]), float(entry["alpha"])
        e_leak, p_on = np.asarray(entry["e_leak"], dtype=float), np.asarray(entry["p_on"], dtype=float)
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"{where} is corrupt ({type(exc).__name__}: {exc}); {_refresh_hint(config)}") from None
    problem = activation_fit_problem(v_p05, alpha, e_leak, p_on)
    if problem:
        raise ValueError(f"{where}: {problem}; {_refresh_hint(config)}")
    return ActivationFit(v_p05, alpha)


def activation_fit_problem(v_p05: float, alpha: float, e_leak, p_on) -> str | None:
    """Why a measured activation function is not a usable logistic, or None if it is.

    Usable: ``alpha`` finite and > 0 (a rising sigmoid), ``v_p05`` finite and inside the swept
    range of leak potentials, the sweep increasing, and p_on rising across it.
    """
    e_leak, p_on = np.asarray(e_leak, dtype=float), np.asarray(p_on, dtype=float)
    if e_leak.ndim != 1 or e_leak.shape != p_on.shape or e_leak.size < 2:
        return f"e_leak and p_on must be 1-D arrays of equal length >= 2, got {e_leak.shape} and {p_on.shape}"
    if not (np.isfinite(v_p05) and np.isfinite(alpha) and alpha > 0):
        return f"the fit is not a rising sigmoid: v_p05 = {v_p05:.4g} mV, alpha = {alpha:.4g} mV (alpha must be > 0)"
    if np.any(np.diff(e_leak) <= 0):
        return (f"the fine sweep of leak potentials is not increasing ({e_leak[0]:.2f} .. {e_leak[-1]:.2f} mV): "
                f"p_on does not rise monotonically with the leak potential")
    if not e_leak[0] <= v_p05 <= e_leak[-1]:
        return (f"the fitted v_p05 = {v_p05:.4g} mV lies outside the swept range [{e_leak[0]:.2f}, "
                f"{e_leak[-1]:.2f}] mV (alpha = {alpha:.4g} mV): not a sigmoid in the sweep")
    if alpha > np.ptp(e_leak):
        return (f"the fitted width alpha = {alpha:.4g} mV exceeds the swept range ({np.ptp(e_leak):.2f} mV): "
                f"not a sigmoid in the sweep")
    return None


def _device_hint(sim) -> str:
    """What to do about a failed calibration on a device (a chip) that is not itself calibrated."""
    selected = getattr(sim, "selected_chip", None)
    if selected is None or selected().calibration is not None:
        return ""
    return ("; the chip is uncalibrated (--chip-calibration none) and its fixed-pattern noise spreads the "
            "neurons' activation functions: use --chip-calibration auto")
def run(config: CalibrationConfig, out_dir: str | os.PathLike | None = None,
        progress: bool = False) -> CalibrationResult:
    """Calibrate (``config.use_cache``) and, with ``out_dir``, write ``results.json`` and the fit's figure.

    The protocol behind ``cortexsim calibrate``; :func:`calibrate` is the function other protocols call.
    """
    result = calibrate(config, use_cache=config.use_cache, progress=progress)
    if out_dir is not None:
        out = output_dir(out_dir)
        figure = plot_activation_function(result.e_leak, result.p_on, result.fit, out / "activation_function.png")
        result = replace(result, files={"activation_function": Path(figure).name})     # a frozen result
        write_results(out, result.to_dict(), config, chip_booking(load_backend(config.backend)))
    return result


def calibrate(config: CalibrationConfig, cache_path: str | os.PathLike | None = None,
              use_cache: bool = True, progress: bool = False, store: bool = True) -> CalibrationResult:
    """Measure and fit the activation function on ``config.backend`` (or reuse the cached fit).

    Parameters
    ----------
    config : CalibrationConfig
        What to calibrate.
    cache_path : path, optional
        Cache file; :func:`default_cache_path` by default.
    use_cache : bool
        Reuse a cached fit with the same key. False measures again (``--no-cache``) and, with
        ``store``, replaces the entry.
    progress : bool
        Print what is being measured, with progress bars.
    store : bool
        Store a new measurement in the cache (under a file lock, so concurrent runs keep each
        other's entries).

    Raises
    ------
    ValueError
        A cached entry is unusable (names the cache file, the entry and how to refresh it), or the
        measured activation function is not a sigmoid with positive width in the swept range (on an
        uncalibrated chip: says to use ``--chip-calibration auto``). Nothing is cached then.
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
            fit = _entry_fit(entry, cache_path, key, config)
            return CalibrationResult(config, fit, np.asarray(entry["e_leak"], dtype=float),
                                     np.asarray(entry["p_on"], dtype=float), True, 0.0, entry.get("versions", {}))
    start = time.perf_counter()
    guess = _analytic_guess(config.neuron, config.noise)
    coarse_e = np.linspace(guess - config.coarse_half_width_mv, guess + config.coarse_half_width_mv,
                           config.coarse_points)
    if progress:
        logger.info(f"calibration on {config.backend}: coarse sweep of {config.coarse_points} leak potentials "
              f"over {config.coarse_duration_ms:g} ms")
    coarse_p = measure_activation(sim, coarse_e, config.neuron, config.noise, config.coarse_duration_ms,
                                  config.dt_ms, derive_seed(config.seed, 1), progress, "coarse sweep")
    low = coarse_e[coarse_p <= 0.02]
    high = coarse_e[coarse_p >= 0.98]
    if low.size == 0 or high.size == 0:
        raise ValueError(f"calibration on {config.backend}: p_on stays within "
                         f"[{coarse_p.min():.3f}, {coarse_p.max():.3f}] for E_l in "
                         f"[{coarse_e[0]:.1f}, {coarse_e[-1]:.1f}] mV; widen coarse_half_width_mv"
                         f"{_device_hint(sim)}")
    if low.max() >= high.min():
        raise ValueError(f"calibration on {config.backend}: the activation function is not a sigmoid in the coarse "
                         f"sweep (p_on <= 0.02 up to {low.max():.2f} mV but >= 0.98 from {high.min():.2f} mV)"
                         f"{_device_hint(sim)}")
    fine_e = np.linspace(low.max(), high.min(), config.n_points)
    if progress:
        logger.info(f"calibration on {config.backend}: fine sweep of {config.n_points} leak potentials in "
              f"[{fine_e[0]:.2f}, {fine_e[-1]:.2f}] mV over {config.duration_ms:g} ms")
    fine_p = measure_activation(sim, fine_e, config.neuron, config.noise, config.duration_ms,
                                config.dt_ms, derive_seed(config.seed, 2), progress, "fine sweep")
    fit = fit_activation(fine_e, fine_p)
    problem = activation_fit_problem(fit.v_p05, fit.alpha, fine_e, fine_p)
    if problem:
        raise ValueError(f"calibration on {config.backend}: {problem}{_device_hint(sim)}")
    result = CalibrationResult(config, fit, fine_e, fine_p, False, time.perf_counter() - start,
                               library_versions())
    if store:
        store_cache_entry(cache_path, key, {**result.to_dict(), "from_cache": True})
    return result


def store_cache_entry(cache_path: Path, key: str, entry: dict) -> None:
    """Add or replace ``entry`` under ``key`` in the cache file, under a file lock (read-modify-write),
    so concurrent runs keep each other's entries."""
    with file_lock(cache_path):
        cache = _load_cache(cache_path)
        cache[key] = entry
        write_json_atomic(cache_path, cache)
