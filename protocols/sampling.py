"""Sampling protocol: run a LIF sampling network, read its states, compare with the target.

``sample(config)`` calibrates the activation function (cached), translates a Boltzmann machine (a
random one from the seed, or the user's own), runs the network on the chosen backend, converts spikes
to states (z = 1 for tau_ref after a spike) and reports D_KL in both directions over time, firing
rates and CVs, with figures and the spike data written to an output folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from cortexsim.results import (library_versions, machine_info, output_dir, save_arrays_atomic, save_spiketrains,
                               write_results)
from cortexsim.timegrid import check_duration

from ..analysis import plots
from ..analysis.divergence import dkl_both, dkl_over_time
from ..analysis.spike_statistics import cv_isi, firing_rates_hz
from ..analysis.states import (discrete_samples, joint_distribution, joint_distribution_over_time,
                               sample_distribution)
from ..backends.energy import HardwareTime, experiment_energy
from ..backends.registry import backend_info, check_backend_seed, check_dt, chip_booking, load_backend
from ..models.boltzmann import MAX_EXACT_UNITS, BoltzmannMachine, joint, random_bm
from ..models.sampling_network import SYNAPSE_KINDS, build_sampling_network
from .calibration import CalibrationConfig, calibrate
from .progress import Phase, run_with_progress

__all__ = ["SamplingConfig", "SamplingResult", "run", "sample", "log_checkpoints"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingConfig:
    """Settings of a sampling run.

    Attributes
    ----------
    seed : int
        Seed of the run (required): the random BM (if none is given) and the simulator.
    backend : str
        Registered backend name.
    n_neurons : int
        Units of the random BM (ignored when a BM is given), 1..20.
    duration_ms : float
        Simulated time (ms), at least tau_refrac; rounded up to whole integration steps.
    dt_ms : float
        Integration step (ms).
    synapses : {"renewing", "static"}
        Recurrent synapse kind.
    neuron : NeuronParameters
        Neuron parameters (PyNN units).
    noise : NoiseParameters
        Poisson background (Hz, uS).
    n_checkpoints : int
        Points of the D_KL-over-time curve (log-spaced).
    raster_ms : float
        Length of the raster plot window (ms).
    bm_file : str, optional
        JSON file ``{"W": [[...]], "b": [...]}`` with the Boltzmann machine to sample from (its size
        overrides ``n_neurons``); None: a random BM ``random_bm(n_neurons, seed)``.
    """

    seed: int
    backend: str = "nest"
    n_neurons: int = 5
    duration_ms: float = 10000.0
    dt_ms: float = 0.1
    synapses: str = "renewing"
    neuron: NeuronParameters = DEFAULT_NEURON
    noise: NoiseParameters = DEFAULT_NOISE
    n_checkpoints: int = 30
    raster_ms: float = 500.0
    bm_file: str | None = None

    def __post_init__(self):
        check_backend_seed(self.backend, self.seed)
        backend_info(self.backend)
        check_dt(self.backend, self.dt_ms)
        check_duration(self.duration_ms, self.dt_ms, "duration_ms")
        if self.duration_ms < self.neuron.tau_refrac:
            raise ValueError(f"duration_ms must be at least tau_refrac = {self.neuron.tau_refrac:g} ms (one "
                             f"discrete sample), got {self.duration_ms:g} ms")
        if not 1 <= int(self.n_neurons) <= MAX_EXACT_UNITS:
            raise ValueError(f"n_neurons must lie in [1, {MAX_EXACT_UNITS}] (exact enumeration of the "
                             f"target), got {self.n_neurons}")
        if self.synapses not in SYNAPSE_KINDS:
            raise ValueError(f"synapses must be one of {SYNAPSE_KINDS}, got {self.synapses!r}")
        if int(self.n_checkpoints) < 2:
            raise ValueError(f"n_checkpoints must be >= 2, got {self.n_checkpoints}")

    def calibration(self) -> CalibrationConfig:
        """The calibration these settings need."""
        return CalibrationConfig(seed=self.seed, backend=self.backend, neuron=self.neuron,
                                 noise=self.noise, dt_ms=self.dt_ms)


@dataclass
class SamplingResult:
    """Outcome of :func:`sample`. Distributions are indexed by state (unit 0 most significant bit)."""

    config: SamplingConfig
    bm: BoltzmannMachine
    fit: ActivationFit
    p_target: np.ndarray
    p_sampled: np.ndarray
    p_discrete: np.ndarray
    dkl_sampled_target: float
    dkl_target_sampled: float
    dkl_discrete: dict
    checkpoints_ms: np.ndarray
    dkl_curves: dict
    rates_hz: np.ndarray
    cv_isi: np.ndarray
    wall_time_s: float
    simulation_time_s: float
    spiketrains: list = field(repr=False, default_factory=list)
    files: dict = field(default_factory=dict)
    energy: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Headline figures: both D_KL directions (nats) after ``duration_ms``; energy per sample (J, the
        chip's energy model on a chip backend, CPU time x a core's power elsewhere; see :attr:`energy`)."""
        return {"dkl_sampled_target": self.dkl_sampled_target, "dkl_target_sampled": self.dkl_target_sampled,
                "n_neurons": self.bm.n_units, "backend": self.config.backend,
                "duration_ms": self.config.duration_ms, "simulation_time_s": self.simulation_time_s,
                "energy_j_per_sample": self.energy.get("j_per_sample"), "energy_model": self.energy.get("model")}

    def to_dict(self) -> dict:
        """Everything, as ``results.json`` holds it."""
        return {
            "dkl_sampled_target": self.dkl_sampled_target,
            "dkl_target_sampled": self.dkl_target_sampled,
            "dkl_discrete_samples": self.dkl_discrete,
            "backend": self.config.backend,
            "seed": self.config.seed,
            "duration_ms": self.config.duration_ms,
            "n_neurons": self.bm.n_units,
            "synapses": self.config.synapses,
            "activation_fit": self.fit.to_dict(),
            "bm": self.bm.to_dict(),
            **({"p_target": self.p_target, "p_sampled": self.p_sampled} if self.p_target.size <= MAX_INLINE_STATES
               else {"distributions_file": DISTRIBUTIONS_FILE}),
            "dkl_over_time": {"t_ms": self.checkpoints_ms, **self.dkl_curves},
            "rates_hz": self.rates_hz,
            "cv_isi": self.cv_isi,
            "wall_time_s": self.wall_time_s,
            "simulation_time_s": self.simulation_time_s,
            "energy": self.energy,
            "versions": library_versions(),
            "machine": machine_info(),
            "files": self.files,
        }


#: Distributions over more states than this are written to :data:`DISTRIBUTIONS_FILE` instead of results.json.
MAX_INLINE_STATES = 2**10
#: ``numpy.load``-able file with ``p_target``, ``p_sampled``, ``p_discrete`` (state order) for large networks.
DISTRIBUTIONS_FILE = "distributions.npz"


def log_checkpoints(duration_ms: float, n: int, first_ms: float = 100.0) -> np.ndarray:
    """``n`` log-spaced times from ``min(first_ms, duration_ms)`` to ``duration_ms`` (ms)."""
    first = min(first_ms, duration_ms)
    return np.unique(np.geomspace(first, duration_ms, n))


def run(config: SamplingConfig, out_dir: str | Path | None = None, progress: bool = False) -> SamplingResult:
    """The protocol behind ``cortexsim sample``: :func:`sample` from ``config.bm_file`` or a random BM."""
    bm = BoltzmannMachine.from_json(config.bm_file) if config.bm_file is not None else None
    return sample(config, bm=bm, out_dir=out_dir, progress=progress)


def sample(config: SamplingConfig, bm: BoltzmannMachine | None = None, fit: ActivationFit | None = None,
           out_dir: str | Path | None = None, progress: bool = False) -> SamplingResult:
    """Sample from ``bm`` (default: a random BM from ``config.seed``) with a LIF network.

    Parameters
    ----------
    config : SamplingConfig
        Settings; ``config.seed`` seeds the simulator and the random BM.
    bm : BoltzmannMachine, optional
        Target; its size overrides ``config.n_neurons``.
    fit : ActivationFit, optional
        Activation function; calibrated on the backend (cached) when not given.
    out_dir : path, optional
        Folder for ``config.json``, ``results.json``, figures and ``spikes.pkl`` (neo PickleIO).
    progress : bool
        Show a progress bar and messages.
    """
    start = time.perf_counter()
    if bm is None:
        bm = random_bm(config.n_neurons, seed=config.seed)
    elif not isinstance(bm, BoltzmannMachine):
        raise TypeError(f"bm must be a BoltzmannMachine, got {type(bm).__name__}")
    config = replace(config, n_neurons=bm.n_units)
    if fit is None:
        calibration = calibrate(config.calibration(), progress=progress)
        fit = calibration.fit
        if progress:
            origin = "cached" if calibration.from_cache else "measured"
            logger.info(f"activation function ({origin}): v_p05 = {fit.v_p05:.3f} mV, alpha = {fit.alpha:.3f} mV")
    sim = load_backend(config.backend)
    sim.setup(timestep=config.dt_ms, seed=config.seed)
    network = build_sampling_network(sim, bm, fit, config.neuron, config.noise, config.synapses)
    sim_start, cpu_start = time.perf_counter(), time.process_time()
    run_with_progress(sim, config.duration_ms, enabled=progress, label=f"sampling on {config.backend}")
    simulation_time, simulation_cpu = time.perf_counter() - sim_start, time.process_time() - cpu_start
    spiketrains = network.spiketrains()
    hardware = HardwareTime()
    hardware.add(sim)
    sim.end()

    tau_ref = config.neuron.tau_refrac
    with Phase(f"distributions over {2 ** bm.n_units:,} states and D_KL over time", enabled=progress):
        p_target = joint(bm)
        p_sampled = joint_distribution(spiketrains, tau_ref, 0.0, config.duration_ms)
        checkpoints = log_checkpoints(config.duration_ms, config.n_checkpoints)
        curves = dkl_over_time(joint_distribution_over_time(spiketrains, tau_ref, 0.0, checkpoints), p_target)
        samples = discrete_samples(spiketrains, tau_ref, 0.0, config.duration_ms)
        p_discrete = sample_distribution(samples)
        both = dkl_both(p_sampled, p_target)
    result = SamplingResult(
        config=config, bm=bm, fit=fit, p_target=p_target, p_sampled=p_sampled, p_discrete=p_discrete,
        dkl_sampled_target=both["dkl_sampled_target"], dkl_target_sampled=both["dkl_target_sampled"],
        dkl_discrete={**dkl_both(p_discrete, p_target), "n_samples": int(samples.shape[0])},
        checkpoints_ms=checkpoints, dkl_curves={k: np.asarray(v) for k, v in curves.items()},
        rates_hz=firing_rates_hz(spiketrains, 0.0, config.duration_ms), cv_isi=cv_isi(spiketrains),
        wall_time_s=0.0, simulation_time_s=simulation_time, spiketrains=spiketrains)
    # J per sample: one sample = one network state per tau_ref (the discrete samples above)
    result.energy = experiment_energy(hardware, simulation_cpu, max(int(samples.shape[0]), 1), "sample")
    if out_dir is not None:
        with Phase(f"writing figures and data to {out_dir}", enabled=progress):
            _write_outputs(result, Path(out_dir))
    result.wall_time_s = time.perf_counter() - start
    if out_dir is not None:
        write_results(out_dir, result.to_dict(), config, chip_booking(sim))
    return result


def _write_outputs(result: SamplingResult, out: Path) -> None:
    out = output_dir(out)
    config = result.config
    files = {
        "distributions": plots.plot_distributions(
            result.p_target, result.p_sampled, out / "distributions.png",
            title=f"{config.backend}, {config.duration_ms:g} ms: "
                  f"D_KL(sampled||target) = {result.dkl_sampled_target:.4f}"),
        "dkl_over_time": plots.plot_dkl_over_time(result.checkpoints_ms, result.dkl_curves,
                                                  out / "dkl_over_time.png"),
        "raster": plots.plot_raster(result.spiketrains, out / "raster.png", t_start=0.0,
                                    t_stop=min(config.raster_ms, config.duration_ms)),
        "spikes": save_spiketrains(result.spiketrains, out / "spikes.pkl"),
    }
    if result.p_target.size > MAX_INLINE_STATES:
        files["distributions_data"] = save_arrays_atomic(out / DISTRIBUTIONS_FILE, p_target=result.p_target,
                                                         p_sampled=result.p_sampled, p_discrete=result.p_discrete)
    result.files = {name: str(Path(path).name) for name, path in files.items()}
