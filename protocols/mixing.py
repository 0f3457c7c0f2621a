"""Mixing between modes: depressing recurrent synapses against renewing ones (issue 21).

    cortexsim mixing --target bistable --backend nest --seed 1 --duration 20000 --out out/mixing
    cortexsim mixing --target digits --duration 10000 --out out/mixing_digits

For each mechanism (``renewing``: the package's standard sampling synapses; ``depressing``: Tsodyks-Markram
with small U and long tau_rec, Leng et al. 2018, :mod:`cortexsim.models.short_term_depression`) the same
target runs free on a LIF sampling network for ``duration_ms`` of biological time; the spikes become
states (z = 1 for ``state_window_ms`` after a spike, see below) read every ``readout_dt_ms``,
and :mod:`cortexsim.analysis.mixing` measures the mixing.

``target = "bistable"``
    :func:`cortexsim.models.multimodal.bistable_bm` (two complementary patterns, barrier ``J n^2 / 2``).
    A state is in a mode when at most ``mode_max_distance`` units differ from its pattern; a switch is a
    change of the last mode visited. Reported per mechanism: switches per biological second, dwell
    times, mode occupancy over time, integrated autocorrelation time of the mode indicator (1 while
    the last mode visited is pattern A, read every tau_ref; :func:`~cortexsim.analysis.mixing.mode_indicator`),
    effective samples per CPU second of the simulation, and D_KL (both directions) of the
    time-averaged distribution to the exact target, over time. A non-spiking parallel-tempering Gibbs
    sampler (:mod:`cortexsim.models.tempering`) runs for the same CPU time as the depressing network and
    gives its effective samples per CPU second.
``target = "digits"``
    The digits RBM (64 pixels + 10 labels + ``digits_hidden`` hidden units) trained by exact-sampler CD
    as in ``cortexsim train-cd --task digits`` (its pre-training phase, same defaults and seed
    derivation), run free with no clamping. Per window of ``class_window_ms`` the label unit on longest
    (at least half the window) names the class shown; reported: classes visited, state switches per
    second (changes of the network state on the read-out grid) and class changes per second.

State window: on NEST a neuron cannot fire again before ``tau_refrac + dt`` after a spike (it is
clamped for ``tau_refrac`` and a threshold crossing counts one step later; 98.5 % of the inter-spike
intervals of a unit held on by its mode are exactly 10.1 ms at dt = 0.1 ms; Brian2's neurons fire again
after exactly ``tau_refrac``). Reading z = 1 for ``tau_refrac`` only leaves a gap of one step after every
refractory period in which the unit reads as off but cannot fire and its synapses still act: a unit
that should stay on reads as off ~1 % of the time (the bistable target asks for 0.25 %), which made
states one unit away from a pattern ~2.4 times too probable with either synapse kind. The default
window is therefore the neuron's dead time on the backend, ``tau_refrac + dead_time_steps * dt``
(:class:`cortexsim.backends.registry.Capabilities`; ``state_window_ms``). The activation function is
calibrated with ``p_on = rate * tau_refrac``, 1 % lower at the same rate on NEST, which moves its
midpoint by about 0.02 alpha (0.016 mV; not recalibrated).

Weight correction of the depressing synapses: analytic (:func:`~cortexsim.models.short_term_depression.
depression_weight_factor`, times ``weight_factor_scale``), no training; or (``weight_correction="cd"``,
bistable target) in addition a short CD fit of the depressing network through the package's CD engine
(:func:`cd_fit_depressing`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from cortexsim.results import library_versions, machine_info, output_dir, write_results

from ..analysis import plots
from ..analysis.divergence import dkl_both, dkl_over_time
from ..analysis.mixing import (NO_MODE, classes_visited, dominant_classes, dwell_times_ms, effective_sample_size,
                               integrated_autocorrelation_time, mode_indicator, mode_occupancy, mode_switches,
                               nearest_mode, pattern_overlap)
from ..analysis.mixing_plots import plot_class_sequences, plot_dwell_times, plot_mode_trajectories
from ..analysis.states import joint_distribution, joint_distribution_over_time, sample_distribution, states_on_grid
from ..backends.registry import backend_info, check_dt, load_backend
from ..models.boltzmann import BoltzmannMachine, joint
from ..models.multimodal import bistable_bm, bistable_symmetry_orbits
from ..models.sampling_network import build_sampling_network
from ..models.short_term_depression import ShortTermDepression, corrected_lif, depression_weight_factor
from ..models.tempering import geometric_betas, parallel_tempering
from .calibration import CalibrationConfig, calibrate
from .progress import run_with_progress

__all__ = ["MixingConfig", "MixingResult", "MECHANISMS", "TARGETS", "WEIGHT_CORRECTIONS", "run", "digits_rbm",
           "cd_fit_depressing"]

logger = logging.getLogger(__name__)

#: Recurrent-synapse mechanisms compared.
MECHANISMS = ("renewing", "depressing")
#: Targets.
TARGETS = ("bistable", "digits")
#: Weight corrections of the depressing synapses.
WEIGHT_CORRECTIONS = ("analytic", "cd")
#: Biological time per mechanism (ms) when not given.
DEFAULT_DURATION_MS = {"bistable": 60000.0, "digits": 10000.0}


@dataclass(frozen=True)
class MixingConfig:
    """Settings of a mixing run (times in ms of biological time).

    Attributes
    ----------
    seed : int
        Seed of the run (required): simulator seeds (one derived per mechanism), tempering, digits RBM.
    target : {"bistable", "digits"}
        The multimodal target.
    backend : str
        Registered backend name (its TsodyksMarkramSynapse must accept U < 1: nest, brian2, and the
        emulated chip brainscales, whose synapse rows may depress; book the chip with its calibration first,
        ``sim.select_chip(calibration="auto")``).
    duration_ms : float or None
        Biological time each mechanism runs free (ms), > 0; default (None) 60000 ms for the bistable
        target, 10000 ms for digits.
    dt_ms : float
        Integration step (ms).
    mechanisms : tuple of str
        Which of ("renewing", "depressing") to run.
    U : float
        Utilisation of the depressing synapses, in (0, 1].
    tau_rec_ms : float
        Recovery time constant of the depressing synapses (ms), > 0.
    weight_factor_scale : float
        Multiplies the analytic weight correction of the depressing synapses (1: as derived), > 0.
    weight_correction : {"analytic", "cd"}
        "analytic": the translated weights times the analytic factor; "cd": in addition a short CD fit
        of (W, b) on the depressing network itself (bistable target only; the package's CD engine with
        the exact moments of the target), starting from the analytic correction.
    cd_iterations : int
        Updates of the CD fit (>= 1).
    cd_sampling_ms : float
        Free-running time per CD update (ms), > 0.
    cd_learning_rate : float
        eta0 of the CD fit (inverse schedule, tau ``cd_schedule_tau`` iterations, momentum 0.5), > 0.
        The CD defaults (30 updates of 10 s, eta0 2, tau 20, mean of the last half, tied) were set on
        development seeds 101-102.
    cd_schedule_tau : float
        Decay of the CD fit's inverse learning-rate schedule (iterations), > 0.
    cd_average_fraction : float
        The fitted parameters are the mean of the iterates over this last fraction of the CD fit, in [0, 1).
    cd_tied : bool
        Tie the CD fit's parameters by the symmetry of the bistable target (its unit permutations:
        :func:`~cortexsim.models.multimodal.bistable_symmetry_orbits`): the model moments are averaged
        over the orbits (:func:`~cortexsim.models.cd_learning.tie_moments`), so one update per orbit
        and no drift from which mode a short CD window happened to visit longer.
    n_units : int
        Units of the bistable target (even, 2..20).
    coupling : float
        Coupling J of the bistable target (> 0); barrier ``J n^2 / 2``.
    mode_max_distance : int
        Units that may differ from a pattern for a state to count as in its mode (>= 0).
    state_window_ms : float or None
        Time a unit reads as z = 1 after each spike (ms), >= tau_refrac; None (default): the neuron's dead
        time on the backend, ``tau_refrac + dead_time_steps * dt_ms`` (the backend's capability; NEST and
        the emulated chip tau_refrac + dt, Brian2 tau_refrac; module docstring). ``tau_refrac`` gives the
        package's usual read-out.
    readout_dt_ms : float
        Grid on which states are read for trajectories, switches and dwell times (ms), > 0.
    n_checkpoints : int
        Points of the D_KL-over-time curve (log-spaced), >= 2.
    tempering_replicas : int
        Replicas of the parallel-tempering reference (0: no reference run).
    tempering_beta_min : float
        Lowest inverse temperature of the reference, in (0, 1).
    digits_hidden : int
        Hidden units of the digits RBM (>= 1).
    digits_pretrain_iterations : int
        Exact-sampler CD updates training the digits RBM (>= 1).
    class_window_ms : float
        Window in which the dominant label class is read (ms), > 0.
    neuron : NeuronParameters
        Neuron parameters (PyNN units).
    noise : NoiseParameters
        Poisson background (Hz, uS).
    """

    seed: int
    target: str = "bistable"
    backend: str = "nest"
    duration_ms: float | None = None
    dt_ms: float = 0.1
    mechanisms: tuple = MECHANISMS
    U: float = 0.1
    tau_rec_ms: float = 500.0
    weight_factor_scale: float = 0.8
    weight_correction: str = "analytic"
    cd_iterations: int = 30
    cd_sampling_ms: float = 10000.0
    cd_learning_rate: float = 2.0
    cd_schedule_tau: float = 20.0
    cd_average_fraction: float = 0.5
    cd_tied: bool = True
    n_units: int = 6
    coupling: float = 0.7
    mode_max_distance: int = 1
    state_window_ms: float | None = None
    readout_dt_ms: float = 1.0
    n_checkpoints: int = 20
    tempering_replicas: int = 5
    tempering_beta_min: float = 0.1
    digits_hidden: int = 100
    digits_pretrain_iterations: int = 10000
    class_window_ms: float = 100.0
    neuron: NeuronParameters = DEFAULT_NEURON
    noise: NoiseParameters = DEFAULT_NOISE

    def __post_init__(self):
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        backend_info(self.backend)
        check_dt(self.backend, self.dt_ms)
        if self.duration_ms is None:
            object.__setattr__(self, "duration_ms", DEFAULT_DURATION_MS[self.target])
        mechanisms = (self.mechanisms,) if isinstance(self.mechanisms, str) else tuple(self.mechanisms)
        if not mechanisms or any(m not in MECHANISMS for m in mechanisms) or len(set(mechanisms)) != len(mechanisms):
            raise ValueError(f"mechanisms must be a non-empty selection of {MECHANISMS} without repeats, "
                             f"got {list(mechanisms)}")
        object.__setattr__(self, "mechanisms", mechanisms)
        ShortTermDepression(self.U, self.tau_rec_ms)  # checks U and tau_rec_ms
        if self.weight_correction not in WEIGHT_CORRECTIONS:
            raise ValueError(f"weight_correction must be one of {WEIGHT_CORRECTIONS}, got {self.weight_correction!r}")
        if self.weight_correction == "cd" and self.target != "bistable":
            raise ValueError('weight_correction="cd" needs the exact target moments: target must be "bistable"')
        for name in ("duration_ms", "readout_dt_ms", "class_window_ms", "weight_factor_scale", "coupling",
                     "cd_sampling_ms", "cd_learning_rate", "cd_schedule_tau"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.state_window_ms is None:
            steps = backend_info(self.backend).capabilities.dead_time_steps
            object.__setattr__(self, "state_window_ms", float(self.neuron.tau_refrac + steps * self.dt_ms))
        window = self.state_window_ms
        if (not isinstance(window, (int, float, np.floating, np.integer)) or not np.isfinite(window)
                or not self.neuron.tau_refrac <= window <= self.neuron.tau_refrac + 10 * self.dt_ms):
            high = self.neuron.tau_refrac + 10 * self.dt_ms
            raise ValueError(f"state_window_ms must lie in [tau_refrac, tau_refrac + 10 dt] = "
                             f"[{self.neuron.tau_refrac}, {high}] ms, got {window!r}")
        if self.readout_dt_ms > self.neuron.tau_refrac:
            raise ValueError(f"readout_dt_ms must be <= tau_refrac ({self.neuron.tau_refrac} ms) so that no "
                             f"on-period is missed, got {self.readout_dt_ms}")
        if self.duration_ms < 10 * self.class_window_ms and self.target == "digits":
            raise ValueError(f"duration_ms must hold at least 10 class windows ({10 * self.class_window_ms} ms), "
                             f"got {self.duration_ms}")
        for name, low, high in (("n_units", 2, 20), ("mode_max_distance", 0, 10), ("n_checkpoints", 2, 1000),
                                ("tempering_replicas", 0, 64), ("digits_hidden", 1, 1000),
                                ("digits_pretrain_iterations", 1, 10**7), ("cd_iterations", 1, 10**5)):
            value = getattr(self, name)
            if int(value) != value or not low <= value <= high:
                raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        if self.n_units % 2:
            raise ValueError(f"n_units must be even (a barrier state halfway between the modes), got {self.n_units}")
        if self.mode_max_distance >= self.n_units / 2:
            raise ValueError(f"mode_max_distance must be < n_units / 2 = {self.n_units / 2} so the modes do not "
                             f"overlap, got {self.mode_max_distance}")
        if not isinstance(self.cd_average_fraction, (int, float)) or not 0 <= self.cd_average_fraction < 1:
            raise ValueError(f"cd_average_fraction must lie in [0, 1), got {self.cd_average_fraction!r}")
        if not isinstance(self.cd_tied, (bool, np.bool_)):
            raise ValueError(f"cd_tied must be True or False, got {self.cd_tied!r}")
        if not 0 < self.tempering_beta_min < 1:
            raise ValueError(f"tempering_beta_min must lie in (0, 1), got {self.tempering_beta_min!r}")

    @property
    def depression(self) -> ShortTermDepression:
        return ShortTermDepression(self.U, self.tau_rec_ms)

    def calibration(self) -> CalibrationConfig:
        return CalibrationConfig(seed=self.seed, backend=self.backend, neuron=self.neuron, noise=self.noise,
                                 dt_ms=self.dt_ms)


@dataclass
class MixingResult:
    """Outcome of :func:`run`: per mechanism a dict of measures (see the module docstring)."""

    config: MixingConfig
    fit: ActivationFit
    weight_factor: float
    mechanisms: dict
    tempering: dict | None = None
    target: dict = field(default_factory=dict)
    cd_fit: dict | None = None
    files: dict = field(default_factory=dict)
    wall_time_s: float = 0.0

    def summary(self) -> dict:
        """Headline figures: switches per biological second and D_KL (bistable) or classes visited (digits)."""
        out = {"target": self.config.target}
        for name, m in self.mechanisms.items():
            key = "stp" if name == "depressing" else name
            out[f"switches_per_s_{key}"] = m["switches_per_s"]
            if self.config.target == "bistable":
                out[f"dkl_{key}"] = m["dkl_sampled_target"]
                out[f"ess_per_cpu_s_{key}"] = m["ess_per_cpu_s"]
            else:
                out[f"classes_visited_{key}"] = m["n_classes_visited"]
        if self.tempering is not None:
            out["ess_per_cpu_s_tempering"] = self.tempering["ess_per_cpu_s"]
        return out

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "config": self.config, "activation_fit": self.fit.to_dict(),
                "weight_factor": self.weight_factor, "weight_correction": self.config.weight_correction,
                "cd_fit": self.cd_fit, "target": self.target, "mechanisms": self.mechanisms,
                "tempering": self.tempering, "wall_time_s": self.wall_time_s, "files": self.files,
                "versions": library_versions(), "machine": machine_info()}


def digits_rbm(seed: int, n_hidden: int, iterations: int, use_cache: bool = True) -> tuple[BoltzmannMachine, dict]:
    """The digits RBM trained by exact-sampler CD: ``train-cd --task digits``'s pre-training and defaults.

    Units [64 pixels | 10 labels | hidden]. The parameters are cached (JSON, atomic) as
    ``$CORTEXSIM_CACHE_DIR/digits_rbm/seed{seed}_hidden{n_hidden}_it{iterations}.json``: the training costs
    minutes of CPU and depends only on these three numbers and the task's defaults. Returns the BM and
    ``{"exact_test_accuracy": ..., "pretrain_iterations": ..., "n_hidden": ...}`` (free-energy
    classification of the held-out split).
    """
    from cortexsim.results import read_json, write_json_atomic

    from .calibration import default_cache_path
    from .cd_digits import DigitsTrainingConfig, free_energy_accuracy, load_digits_split, pretrain_exact

    config = DigitsTrainingConfig(seed=seed, n_hidden=n_hidden, pretrain_iterations=iterations)
    path = default_cache_path().parent / "digits_rbm" / f"seed{seed}_hidden{n_hidden}_it{iterations}.json"
    if use_cache and path.exists():
        try:
            cached = read_json(path)
            return BoltzmannMachine(cached["W"], cached["b"]), cached["info"]
        except (ValueError, KeyError, TypeError) as err:
            logger.warning(f"ignoring unreadable digits RBM cache {path}: {err}")
    data, _, test_x, test_y = load_digits_split(config.binarize_threshold, config.test_fraction, seed)
    logger.info(f"training the digits RBM (exact sampler, {iterations} updates, {n_hidden} hidden units)")
    W, b, _, _, _ = pretrain_exact(config, data, test_x, test_y)
    info = {"exact_test_accuracy": free_energy_accuracy(W, b, test_x, test_y), "pretrain_iterations": iterations,
            "n_hidden": n_hidden, "trained_by": "exact-sampler CD, train-cd --task digits pre-training defaults"}
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"W": W.tolist(), "b": b.tolist(), "info": info})
    return BoltzmannMachine(W, b), info


class _CorrectedNetwork:
    """A depressing sampling network whose every weight update goes through the analytic factor."""

    def __init__(self, network, factor: float):
        self.network, self.factor = network, float(factor)
        self.set_parameters(network.bm.W, network.bm.b)

    def set_parameters(self, W, b) -> None:
        from ..models.lif_translation import bm_to_lif

        net = self.network
        bm = BoltzmannMachine(W, b)
        net.set_lif(corrected_lif(bm_to_lif(bm, net.neuron, net.noise, net.fit), self.factor), bm)

    def spiketrains(self, clear: bool = False) -> list:
        return self.network.spiketrains(clear=clear)


class _TiedStatistics:
    """CD statistics with the model moments averaged over the target's symmetry orbits (see ``cd_tied``)."""

    def __init__(self, inner, unit_orbits, pair_orbits):
        self.inner, self.unit_orbits, self.pair_orbits = inner, unit_orbits, pair_orbits

    def __call__(self, network, timed, iteration, duration_ms, rng=None):
        from ..models.cd_learning import tie_moments

        stats = self.inner(network, timed, iteration, duration_ms, rng)
        stats.model = tie_moments(stats.model, self.unit_orbits, self.pair_orbits)
        stats.data = tie_moments(stats.data, self.unit_orbits, self.pair_orbits)
        return stats

    def end_segment(self, W, b) -> dict:
        return self.inner.end_segment(W, b)


def cd_fit_depressing(config: MixingConfig, bm: BoltzmannMachine, fit: ActivationFit, weight_factor: float,
                      progress: bool = False) -> tuple[BoltzmannMachine, dict]:
    """Fit (W, b) of the depressing network to ``bm`` with the package's CD engine (exact target moments).

    The network factory builds the depressing network with the analytic weight factor; the statistics
    are :class:`cortexsim.protocols.cd_engine.TargetStatistics` (time-continuous moments of the free
    run against the exact moments of ``bm``). Returns the fitted BM and the engine's history.
    """
    from cortexsim.seeds import derive_seed

    from .cd_engine import CDSettings, CDState, TargetStatistics, train_cd

    settings = CDSettings(iterations=config.cd_iterations, sampling_ms=config.cd_sampling_ms,
                          learning_rate=config.cd_learning_rate, schedule="inverse",
                          schedule_tau=config.cd_schedule_tau, momentum=0.5, dt_ms=config.dt_ms, burn_in_ms=500.0,
                          average_fraction=config.cd_average_fraction)

    def build(sim, W, b, first_iteration):
        sim.setup(timestep=config.dt_ms, seed=derive_seed(config.seed, 300 + first_iteration))
        network = build_sampling_network(sim, BoltzmannMachine(W, b), fit, config.neuron, config.noise,
                                         synapses="depressing", depression=config.depression)
        return _CorrectedNetwork(network, weight_factor)

    statistics = TargetStatistics([bm], config.state_window_ms)
    if config.cd_tied:
        orbits = bistable_symmetry_orbits(bistable_bm(config.n_units, config.coupling))
        statistics = _TiedStatistics(statistics, *orbits)
    state = CDState.fresh(bm.W, bm.b, settings)
    train_cd(build, statistics, settings, state, load_backend(config.backend),
             progress=progress, label="CD fit of the depressing network")
    W, b = state.trained(settings)
    return BoltzmannMachine(W, b), state.history


def _simulate(config: MixingConfig, bm: BoltzmannMachine, fit: ActivationFit, mechanism: str, seed: int,
              weight_factor: float, progress: bool):
    """Run ``bm`` free with one mechanism; returns (spike trains, CPU seconds of the simulation)."""
    sim = load_backend(config.backend)
    sim.setup(timestep=config.dt_ms, seed=seed)
    depression = config.depression if mechanism == "depressing" else None
    network = build_sampling_network(sim, bm, fit, config.neuron, config.noise, synapses=mechanism,
                                     depression=depression)
    if mechanism == "depressing":
        network.set_lif(corrected_lif(network.lif, weight_factor), bm)
    cpu = time.process_time()
    run_with_progress(sim, config.duration_ms, enabled=progress, label=f"{mechanism} synapses on {config.backend}")
    cpu = time.process_time() - cpu
    spiketrains = network.spiketrains()
    sim.end()
    return spiketrains, cpu


def _bistable_measures(config, target, spiketrains, cpu_s, checkpoints) -> dict:
    tau_ref, window_ms = config.neuron.tau_refrac, config.state_window_ms
    states = states_on_grid(spiketrains, window_ms, 0.0, config.duration_ms, config.readout_dt_ms)
    labels = nearest_mode(states, target.patterns, config.mode_max_distance)
    switches = mode_switches(labels)
    dwell = dwell_times_ms(labels, config.readout_dt_ms)
    window = max(1, int(round(config.duration_ms / 20 / config.readout_dt_ms)))
    occupancy = mode_occupancy(labels, target.n_modes, window)
    every = max(1, int(round(tau_ref / config.readout_dt_ms)))  # one sample per tau_ref
    indicator = mode_indicator(labels[::every], 0)
    tau = integrated_autocorrelation_time(indicator) if indicator.size >= 2 else float("nan")
    ess = effective_sample_size(indicator)
    p_target = joint(target.bm)
    p_sampled = joint_distribution(spiketrains, window_ms, 0.0, config.duration_ms)
    curves = dkl_over_time(joint_distribution_over_time(spiketrains, window_ms, 0.0, checkpoints), p_target)
    return {
        "n_switches": int(switches.size),
        "switches_per_s": float(switches.size / (config.duration_ms / 1000.0)),
        "switch_times_ms": (switches * config.readout_dt_ms).tolist(),
        "dwell_times_ms": dwell.tolist(),
        "mean_dwell_ms": float(dwell.mean()) if dwell.size else None,
        "occupancy_window_ms": window * config.readout_dt_ms,
        "mode_occupancy": occupancy.tolist(),
        "time_in_modes": [float(np.mean(labels == k)) for k in range(target.n_modes)],
        "time_between_modes": float(np.mean(labels == NO_MODE)),
        "autocorrelation_time_ms": float(tau * every * config.readout_dt_ms) if np.isfinite(tau) else None,
        "effective_samples": ess,
        # Sokal's estimate needs a run of many tau; a chain stuck in one mode looks fast (within-mode tau).
        "autocorrelation_estimate_reliable": bool(np.isfinite(tau) and indicator.size > 50 * tau
                                                  and switches.size >= 10),
        "cpu_time_s": cpu_s,
        "ess_per_cpu_s": float(ess / cpu_s) if cpu_s > 0 else None,
        **dkl_both(p_sampled, p_target),
        "dkl_over_time": {"t_ms": checkpoints.tolist(), **{k: np.asarray(v).tolist() for k, v in curves.items()}},
        "rates_hz": [float(len(s) / (config.duration_ms / 1000.0)) for s in spiketrains],
        "_overlap_grid": (np.arange(states.shape[0]) * config.readout_dt_ms,
                          pattern_overlap(states, target.patterns[0])),
    }


def _digits_measures(config, bm, spiketrains) -> dict:
    from .cd_digits import N_LABELS, N_PIXELS

    states = states_on_grid(spiketrains, config.state_window_ms, 0.0, config.duration_ms, config.readout_dt_ms)
    window = max(1, int(round(config.class_window_ms / config.readout_dt_ms)))
    classes = dominant_classes(states[:, N_PIXELS:N_PIXELS + N_LABELS], window)
    visited = classes_visited(classes)
    committed = classes[classes >= 0]
    class_changes = int(np.count_nonzero(committed[1:] != committed[:-1])) if committed.size else 0
    state_changes = int(np.count_nonzero(np.any(states[1:] != states[:-1], axis=1)))
    seconds = config.duration_ms / 1000.0
    return {
        "classes_visited": visited.tolist(),
        "n_classes_visited": int(visited.size),
        "class_per_window": classes.tolist(),
        "class_window_ms": window * config.readout_dt_ms,
        "windows_with_a_class": float(np.mean(classes >= 0)),
        "class_changes_per_s": class_changes / seconds,
        "switches_per_s": class_changes / seconds,
        "state_switches_per_s": state_changes / seconds,
        "rates_hz": [float(len(s) / seconds) for s in spiketrains],
    }


def run(config: MixingConfig, out_dir: str | Path | None = None, progress: bool = False,
        fit: ActivationFit | None = None, bm: BoltzmannMachine | None = None) -> MixingResult:
    """Run every mechanism of ``config`` on its target; measure mixing; write ``results.json`` and figures.

    Parameters
    ----------
    config : MixingConfig
    out_dir : path, optional
        Folder for ``results.json``, ``config.json`` and the figures.
    progress : bool
        Progress bar and messages.
    fit : ActivationFit, optional
        Activation function (calibrated on the backend, cached, when not given).
    bm : BoltzmannMachine, optional
        For ``target="digits"``: an RBM with the digits layout instead of the trained one.
    """
    from cortexsim.seeds import derive_seed

    start = time.perf_counter()
    if fit is None:
        fit = calibrate(config.calibration(), progress=progress).fit
    weight_factor = config.weight_factor_scale * depression_weight_factor(
        config.depression, config.neuron.tau_refrac, config.neuron.tau_syn_E)
    if config.target == "bistable":
        target = bistable_bm(config.n_units, config.coupling)
        bm = target.bm
        target_info = {"kind": "bistable", "n_units": config.n_units, "coupling": config.coupling,
                       "barrier": target.barrier(), "patterns": target.patterns.tolist(),
                       "pattern_probabilities": target.mode_probabilities().tolist()}
    else:
        target = None
        if bm is None:
            bm, info = digits_rbm(config.seed, config.digits_hidden, config.digits_pretrain_iterations)
        else:
            info = {}
        target_info = {"kind": "digits", "n_units": bm.n_units, **info}
    checkpoints = np.unique(np.geomspace(min(100.0, config.duration_ms), config.duration_ms, config.n_checkpoints))
    networks = {mechanism: bm for mechanism in config.mechanisms}
    cd_fit = None
    if config.weight_correction == "cd" and "depressing" in networks:
        fitted, history = cd_fit_depressing(config, bm, fit, weight_factor, progress)
        networks["depressing"] = fitted
        cd_fit = {"W": fitted.W.tolist(), "b": fitted.b.tolist(),
                  "segment_dkl_sampled_target": history.get("segment_dkl_sampled_target"),
                  "dkl_sampled_target_per_iteration": history.get("dkl_sampled_target")}
    mechanisms, overlaps = {}, {}
    for index, mechanism in enumerate(config.mechanisms):
        seed = derive_seed(config.seed, 100 + index)
        spiketrains, cpu = _simulate(config, networks[mechanism], fit, mechanism, seed, weight_factor, progress)
        if config.target == "bistable":
            measures = _bistable_measures(config, target, spiketrains, cpu, checkpoints)
            overlaps[mechanism] = measures.pop("_overlap_grid")
        else:
            measures = _digits_measures(config, bm, spiketrains)
        measures.update(simulator_seed=int(seed), cpu_time_s=cpu)
        mechanisms[mechanism] = measures
        logger.info(f"{mechanism}: {measures['switches_per_s']:.3f} switches/s")
    tempering = None
    if config.target == "bistable" and config.tempering_replicas:
        budget = max(m["cpu_time_s"] for m in mechanisms.values())
        pt = parallel_tempering(bm, geometric_betas(config.tempering_replicas, config.tempering_beta_min), None,
                                seed=derive_seed(config.seed, 200), cpu_budget_s=max(budget, 0.05))
        labels = nearest_mode(pt.samples, target.patterns, config.mode_max_distance)
        indicator = mode_indicator(labels, 0)
        ess = effective_sample_size(indicator)
        tempering = {"replicas": config.tempering_replicas, "betas": pt.betas.tolist(),
                     "swap_acceptance": pt.swap_acceptance.tolist(), "steps": int(pt.samples.shape[0]),
                     "cpu_time_s": pt.cpu_time_s, "effective_samples": ess,
                     "ess_per_cpu_s": float(ess / pt.cpu_time_s),
                     "switches_per_step": float(mode_switches(labels).size / labels.size),
                     "autocorrelation_time_steps": (integrated_autocorrelation_time(indicator)
                                                    if indicator.size >= 2 else None),
                     **dkl_both(sample_distribution(pt.samples), joint(bm))}
    result = MixingResult(config, fit, weight_factor, mechanisms, tempering, target_info, cd_fit=cd_fit)
    result.wall_time_s = time.perf_counter() - start
    if out_dir is not None:
        out = output_dir(out_dir)
        result.files = _figures(result, overlaps, checkpoints, out)
        write_results(out, result.to_dict(), config)
    return result


def _figures(result: MixingResult, overlaps: dict, checkpoints, out: Path) -> dict:
    config = result.config
    files = {}
    if config.target == "bistable":
        shown = {}
        for name, (times, overlap) in overlaps.items():
            keep = times < min(config.duration_ms, 20000.0)
            shown[name] = (times[keep], overlap[keep])
        first = next(iter(shown.values()))[0]
        threshold = 1.0 - 2.0 * config.mode_max_distance / config.n_units
        files["trajectory"] = plot_mode_trajectories(
            first, {k: v[1] for k, v in shown.items()}, out / "trajectory.png", threshold=threshold,
            title=f"Bistable target (n={config.n_units}, J={config.coupling:g}), {config.backend}")
        files["dwell_times"] = plot_dwell_times({k: np.asarray(m["dwell_times_ms"])
                                                 for k, m in result.mechanisms.items()}, out / "dwell_times.png")
        files["dkl_over_time"] = plots.plot_dkl_over_time(
            checkpoints,
            {k: np.asarray(m["dkl_over_time"]["dkl_sampled_target"]) for k, m in result.mechanisms.items()},
            out / "dkl_over_time.png",
            title=f"D_KL(sampled || target) of [0, t], {config.duration_ms / 1000:g} s per mechanism")
    else:
        files["classes"] = plot_class_sequences(
            config.class_window_ms, {k: np.asarray(m["class_per_window"]) for k, m in result.mechanisms.items()},
            out / "classes.png", title="Digits RBM running free")
    return {name: Path(path).name for name, path in files.items()}
