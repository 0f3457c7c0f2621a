"""Ensemble protocol: M sampling networks that are each other's noise, against Poisson-driven ones.

``run_ensemble(config)`` (CLI ``cortexsim ensemble``):

1. draws M random target BMs (one per network) and calibrates the activation function under Poisson
   noise (:func:`cortexsim.protocols.calibration.calibrate`, cached);
2. measures the ensemble background: the targets (translated with the Poisson fit) run in ensemble
   mode with probe neurons: uncoupled spiking probes on a sweep of leak potentials give the
   activation function UNDER THE ENSEMBLE BACKGROUND (logistic fit), non-spiking probes the free
   membrane potential; the networks' mean rate gives the equivalent noise of the translation
   (:func:`cortexsim.models.ensemble.equivalent_noise`). A Poisson-mode run gives the same
   statistics for the Poisson background (its input trains shown as K independent Poisson trains of
   rate R / K per receptor, which sum to the background's rate R);
3. evaluates D_KL of every network for: Poisson noise untrained, ensemble noise untrained (translated
   with the ensemble fit), then trains all networks with CD under each noise (same settings,
   the CD engine) and evaluates them again;
4. writes ``results.json`` (``dkl_poisson_trained``, ``dkl_ensemble_untrained``,
   ``dkl_ensemble_trained``, ``dkl_poisson_untrained``: median and quartiles over networks of
   D_KL(sampled || target), nats, time-continuous read-out) and figures.

Runs, evaluations and training
------------------------------
Each function starts a fresh simulation (``sim.setup`` with the given simulator seed), builds the
ensemble with :func:`cortexsim.models.ensemble.build_ensemble` (background connectivity, kick and
initial potentials from ``network_seed``, identical in every run of a protocol, so every run sees
the SAME networks), and reads one joint distribution per network (time-continuous, analysis.states).

Training (:func:`train`) is the CD engine (:func:`cortexsim.protocols.cd_engine.train_cd`) with the
ensemble as the network factory and :class:`~cortexsim.protocols.cd_engine.TargetStatistics` as the
statistics function, the same as the target task's: the data statistics are the exact moments of each
network's target, the model statistics those of the network's own samples; all M networks update at
once (block-diagonal mask) and their parameters are set in place between iterations (no rebuild within
a segment). The engine's growing sampling time and iterate averaging are used here; a protocol applies
the same settings to both noise modes. With ``checkpoint_every`` set, training runs in segments that
each restart the (deterministic) ensemble from its seeded initial conditions and write a checkpoint.

Measured (NEST, 50 x 5 neurons, K = 30, 150 iterations of 1 -> 3 s, eta 1 / (1 + t / 50), momentum
0.5, mean of the last 75 iterates, 50 s evaluations; benchmarks/ensemble_sampling.py). With STATIC
background synapses the ensemble ended at median D_KL 0.0132 against 0.0026 under Poisson noise:
its background follows the other networks' persistent states (sources fire bursts while in z = 1),
so the networks mixed 2.3x more slowly (finite-sampling term B 234 vs 104 ms) and kept a higher
extrapolated floor (0.0082 vs 0.0006, benchmarks/ensemble_sampling_floor.py). Neither disjoint source
sets, nor K = 15 / 24, nor M = 100, nor a per-neuron bias start closed the gap
(benchmarks/ensemble_source_screening.py). With the default DEPRESSING background synapses
(:data:`cortexsim.models.ensemble.DEFAULT_BACKGROUND`) the ensemble mixes faster than Poisson-driven
networks (B 76 vs 104 ms) and trains to 0.0025 against Poisson's 0.0027 (seed 1, re-run on the CD
engine; before it 0.0023 vs 0.0026 with another calibration; seed 2: 0.0022 vs 0.0024), from 0.123 untrained.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from cortexsim.checks import check_int, check_positive
from cortexsim.config import config_to_dict
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from cortexsim.results import library_versions, machine_info, output_dir, write_results
from cortexsim.seeds import derive_seed
from cortexsim.timegrid import check_duration

from ..analysis.background import input_statistics, membrane_statistics, plot_background
from ..analysis.divergence import dkl_both
from ..analysis.plots import plot_activation_function, plot_learning_curve, plot_value_distributions
from ..analysis.spike_statistics import to_spiketrains
from ..analysis.states import joint_distribution
from ..backends.registry import (backend_info, backend_of_module, check_backend_seed, check_dt, chip_booking,
                                load_backend)
from ..models.boltzmann import MAX_EXACT_UNITS, BoltzmannMachine, block_diagonal, joint, random_bm
from ..models.cd_learning import SCHEDULE_KINDS, block_diagonal_mask
from ..models.ensemble import (Ensemble, EnsembleBackground, build_ensemble, check_ensemble_size, equivalent_noise,
                               matched_background)
from ..models.ensemble_background import kick_spike_times
from ..models.lif_translation import fit_activation
from ..models.sampling_network import SYNAPSE_KINDS
from .calibration import CalibrationConfig, calibrate
from .cd_engine import (CDSettings, CDState, TargetStatistics, block_slices, load_checkpoint, save_checkpoint,
                        train_cd, training_energy)
from .progress import run_on_grid

__all__ = ["EnsembleConfig", "EnsembleResult", "run", "run_ensemble", "quartiles", "RunSettings", "build",
           "poisson_reference_trains",
           "network_distributions", "evaluate", "train", "fresh_training", "measure_background",
           "background_run_settings"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """What every run of one protocol shares.

    Attributes
    ----------
    dt_ms : integration step (ms).
    burn_in_ms : time discarded after the start of each simulation (ms).
    network_seed : seed of the background connectivity, kick and initial potentials.
    background : ensemble background parameters.
    neuron, noise : neuron parameters and Poisson background (PyNN units).
    synapses : recurrent synapse kind.
    """

    dt_ms: float
    burn_in_ms: float
    network_seed: int
    background: EnsembleBackground
    neuron: NeuronParameters
    noise: NoiseParameters
    synapses: str = "renewing"


def background_run_settings(config, backend: str) -> RunSettings:
    """:class:`RunSettings` of an ensemble protocol's runs on ``backend``.

    ``config`` has the ensemble fields of :class:`EnsembleConfig` (``seed``, ``noise``, ``in_degree``,
    ``design_rate_hz``, ``source_sharing``, ``background_synapse``, ``tau_rec_ms``, ``delay_max_ms``,
    ``dt_ms``, ``burn_in_ms``, ``neuron``, ``synapses``) and, if it has one, ``first_source_unit`` (default 0:
    every unit a source; :class:`~cortexsim.models.ensemble_background.EnsembleBackground`). Without programmable
    delays on ``backend`` the background synapses get the fixed minimal delay (one time step).
    """
    delays = {"delay_max_ms": config.delay_max_ms}
    if not backend_info(backend).capabilities.delays_allowed:
        delays = {"delay_ms": config.dt_ms, "delay_max_ms": config.dt_ms}
    background = matched_background(config.noise, config.in_degree, config.design_rate_hz,
                                    source_sharing=config.source_sharing,
                                    synapse=config.background_synapse, tau_rec_ms=config.tau_rec_ms,
                                    first_source_unit=int(getattr(config, "first_source_unit", 0)), **delays)
    return RunSettings(config.dt_ms, config.burn_in_ms, derive_seed(config.seed, 3), background, config.neuron,
                       config.noise, config.synapses)


def build(sim: ModuleType, settings: RunSettings, bms: list, fit: ActivationFit, mode: str,
          translation_noise: NoiseParameters, sim_seed: int, **probes) -> Ensemble:
    """``sim.setup`` with ``sim_seed``, then :func:`build_ensemble` with the shared settings."""
    sim.setup(timestep=settings.dt_ms, seed=int(sim_seed))
    return build_ensemble(sim, bms, fit, mode=mode, background=settings.background, seed=settings.network_seed,
                          neuron=settings.neuron, noise=settings.noise, translation_noise=translation_noise,
                          synapses=settings.synapses, **probes)


def network_distributions(spiketrains, ensemble: Ensemble, t_start: float, t_stop: float) -> list[np.ndarray]:
    """Time-continuous joint distribution of each network over ``[t_start, t_stop)`` (ms)."""
    tau_ref = ensemble.neuron.tau_refrac
    return [joint_distribution(spiketrains[s], tau_ref, t_start, t_stop) for s in ensemble.blocks]


def evaluate(sim: ModuleType, settings: RunSettings, bms: list, targets: list, fit: ActivationFit, mode: str,
             translation_noise: NoiseParameters, duration_ms: float, sim_seed: int) -> dict:
    """D_KL of every network (representing ``bms``) against its target after ``duration_ms`` of sampling.

    Returns
    -------
    dict with ``dkl_sampled_target`` and ``dkl_target_sampled`` (lists, one per network),
    ``rates_hz`` (all neurons) and ``run_wall_s``.
    """
    ensemble = build(sim, settings, bms, fit, mode, translation_noise, sim_seed)
    tic = time.perf_counter()
    run_on_grid(sim, settings.burn_in_ms + duration_ms, settings.dt_ms)
    wall = time.perf_counter() - tic
    spiketrains = ensemble.spiketrains()
    sim.end()
    t0 = settings.burn_in_ms
    dists = network_distributions(spiketrains, ensemble, t0, t0 + duration_ms)
    both = [dkl_both(p, joint(target)) for p, target in zip(dists, targets)]
    rates = np.array([np.sum((np.asarray(st.magnitude) >= t0)) for st in spiketrains]) / duration_ms * 1e3
    return {"dkl_sampled_target": [d["dkl_sampled_target"] for d in both],
            "dkl_target_sampled": [d["dkl_target_sampled"] for d in both],
            "rates_hz": rates.tolist(), "run_wall_s": wall}


def fresh_training(start: list, settings: CDSettings) -> CDState:
    """The engine state before the first iteration, from the BMs ``start`` (one per network)."""
    composite = block_diagonal(start)
    return CDState.fresh(composite.W, composite.b, settings, block_diagonal_mask([bm.n_units for bm in start]))


def train(sim: ModuleType, settings: RunSettings, training: CDSettings, targets: list, start: list | CDState,
          fit: ActivationFit, mode: str, translation_noise: NoiseParameters, sim_seed: int,
          progress: bool = False, save=None, stop_after_iteration: int | None = None) -> tuple[list, dict]:
    """CD-train all networks of one ensemble at once towards their ``targets``, from ``start``.

    The CD engine with the ensemble as network factory: burn-in, then per iteration free sampling
    (``training.sampling_ms``, growing to ``training.sampling_end_ms`` if set), the update
    ``dW = eta (<zz>_target - <zz>_sampled)``, ``db = eta (<z>_target - <z>_sampled)`` per network
    (block-diagonal mask), and the new parameters set in place. Segment k > 0 of a run with
    ``training.checkpoint_every`` uses the simulator seed ``derive_seed(sim_seed, first_iteration)``.

    Parameters
    ----------
    start : list of BoltzmannMachine or CDState
        Starting BMs (one per network), or the engine state of a checkpoint to continue from.
    save : callable, optional
        Called with the :class:`~cortexsim.protocols.cd_engine.CDState` after every segment.
    stop_after_iteration : int, optional
        Interrupt after the segment that reaches this iteration (returns None, None).

    Returns
    -------
    final : list of BoltzmannMachine
        The last iterate, or the mean of the last iterates (``training.average_fraction``).
    history : dict with per-iteration ``learning_rate``, ``sampling_ms``, ``dkl_sampled_target`` (per
        network), ``dkl_median`` (median over networks of D_KL(sampled || target) of that iteration's
        samples), ``averaged_iterations``, and ``timing``.
    """
    state = start if isinstance(start, CDState) else fresh_training(start, training)
    sizes = [bm.n_units for bm in targets]
    mask = block_diagonal_mask(sizes)

    def factory(sim, W, b, first_iteration):
        seed = sim_seed if first_iteration == 0 else derive_seed(sim_seed, first_iteration)
        # every within-network pair carries both receptor synapses: weights change sign in training
        return build(sim, settings, [BoltzmannMachine(W[s, s], b[s]) for s in block_slices(sizes)], fit, mode,
                     translation_noise, seed, connectivity=mask[block_slices(sizes)[0], block_slices(sizes)[0]])

    statistics = TargetStatistics(targets, settings.neuron.tau_refrac)
    if not train_cd(factory, statistics, training, state, sim, mask, save=save, progress=progress,
                    label=f"CD, {mode} noise", stop_after_iteration=stop_after_iteration):
        return None, None
    W, b = state.trained(training, mask)
    history = dict(state.history)
    history["dkl_median"] = [float(np.median(d)) for d in history["dkl_sampled_target"]]
    history["averaged_iterations"] = int(round(training.average_fraction * training.iterations))
    history["timing"] = dict(state.timing)
    return [BoltzmannMachine(W[s, s], b[s]) for s in block_slices(sizes)], history


def measure_background(sim: ModuleType, config, settings: RunSettings, targets: list, fit: ActivationFit,
                       mode: str) -> dict:
    """One run with probes: activation function (ensemble mode), free membrane and input statistics.

    ``config`` is a :class:`cortexsim.protocols.ensemble.EnsembleConfig` (its calibration, probe,
    burn-in and seed settings are used). Returns ``membrane`` (MembraneStatistics), ``rates_hz`` of
    the networks' neurons, ``source_rate_hz`` (their mean over the units that may be background sources,
    :attr:`~cortexsim.models.ensemble.Ensemble.source_units`: the rate the background translation uses),
    ``inputs`` (InputStatistics) and, in ensemble mode, the activation sweep
    (``sweep``, ``p_on``), its fit ``fit`` and the per-source-set ``group_v_p05``/``group_alpha``.
    """
    T = config.calibration_ms
    sweep = fit.v_p05 + np.linspace(-8.0, 8.0, config.calibration_points) * fit.alpha
    membrane = np.full(config.membrane_probes, fit.v_p05)
    probes = {"membrane_probes": membrane}
    if mode == "ensemble":
        probes["activation_probes"] = np.tile(sweep, (config.calibration_groups, 1))
    translation = equivalent_noise(settings.background, mode, config.noise)
    ensemble = build(sim, settings, targets, fit, mode, translation,
                     derive_seed(config.seed, 4, int(mode == "ensemble")), **probes)
    poisson_sources = None
    K = settings.background.in_degree
    recorded_poisson = backend_of_module(sim).capabilities.poisson_sources
    if mode == "poisson" and recorded_poisson:  # the Poisson background as K independent trains per receptor
        poisson_sources = sim.Population(2 * K * 10, sim.SpikeSourcePoisson(rate=config.noise.rate_exc / K),
                                         label="poisson_inputs")
        poisson_sources.record("spikes")
    run_on_grid(sim, config.burn_in_ms + T, config.dt_ms)
    t0, t1 = config.burn_in_ms, config.burn_in_ms + T
    spiketrains = ensemble.spiketrains()
    segment = ensemble.probes.get_data().segments[-1]
    v = np.asarray(segment.analogsignals[0].magnitude)
    step = max(1, int(round(1.0 / config.dt_ms)))  # one sample per ms suffices
    start = int(round(t0 / config.dt_ms))
    v = v[start:start + int(5000.0 / config.dt_ms):step]
    result = {"membrane": membrane_statistics(v, dt_ms=step * config.dt_ms),
              "rates_hz": np.array([np.sum(np.asarray(st.magnitude) >= t0) for st in spiketrains]) / T * 1e3}
    result["source_rate_hz"] = float(np.mean(result["rates_hz"][ensemble.source_units]))
    if mode == "ensemble":
        n_act = config.calibration_points * config.calibration_groups
        p_on = np.array([np.sum(np.asarray(st.magnitude) >= t0) for st in segment.spiketrains[:n_act]]) \
            * config.neuron.tau_refrac / T
        p_on = p_on.reshape(config.calibration_groups, config.calibration_points)
        group_fits = []
        for row in p_on:
            try:
                group_fits.append(fit_activation(sweep, row))
            except ValueError:
                continue  # a sweep whose transition lies outside the range; counted below
        if len(group_fits) < max(1, (config.calibration_groups + 1) // 2):
            rates = result["rates_hz"]
            frozen = float(np.mean((rates < 1.0) | (rates > 0.95e3 / config.neuron.tau_refrac)))
            raise ValueError(f"the activation function under the ensemble background could be fitted for only "
                             f"{len(group_fits)} of {config.calibration_groups} probe groups; {100 * frozen:.0f} % of "
                             "the ensemble's neurons are silent or fire at the maximum rate (a frozen, noise-free "
                             "ensemble): use more networks (n_networks) or another in_degree")
        v_p05s = np.array([f.v_p05 for f in group_fits])
        alphas = np.array([f.alpha for f in group_fits])
        fit_ensemble = ActivationFit(v_p05=float(v_p05s.mean()), alpha=float(np.median(alphas)),
                                     n_points=int(sum(f.n_points for f in group_fits)))
        result.update(sweep=sweep, p_on=p_on, fit=fit_ensemble, group_v_p05=v_p05s, group_alpha=alphas)
        sources = np.hstack([ensemble.sources_exc, ensemble.sources_inh])
        result["inputs"] = input_statistics(spiketrains, sources, t0, t1)
        result["inputs_source"] = "recorded spikes of the ensemble's neurons (each target's background sources)"
    elif recorded_poisson:
        trains = list(poisson_sources.get_data("spikes").segments[-1].spiketrains)
        result["inputs"] = input_statistics(trains, np.arange(len(trains)).reshape(10, -1), t0, t1)
        result["inputs_source"] = "recorded SpikeSourcePoisson trains of the simulator"
    else:  # the backend cannot record Poisson sources: the same trains drawn with numpy on the dt grid
        trains = poisson_reference_trains(2 * K * 10, config.noise.rate_exc / K, t1, config.dt_ms,
                                          derive_seed(config.seed, 4, 2))
        result["inputs"] = input_statistics(trains, np.arange(len(trains)).reshape(10, -1), t0, t1)
        result["inputs_source"] = ("Poisson trains drawn with numpy on the dt grid (rate and number as the "
                                   "simulator's SpikeSourcePoisson, which this backend cannot record)")
    sim.end()
    return result


def poisson_reference_trains(n_trains: int, rate_hz: float, t_stop_ms: float, dt_ms: float, seed: int) -> list:
    """``n_trains`` independent Poisson spike trains (neo, ms) of ``rate_hz`` on the dt grid over (0, t_stop].

    Each grid step carries a spike with probability ``rate * dt`` (as a simulator's Poisson generator on
    its time grid; :func:`cortexsim.models.ensemble_background.kick_spike_times`, train by train). The
    Poisson reference of :func:`measure_background` on backends that cannot record ``SpikeSourcePoisson``.

    Examples
    --------
    >>> trains = poisson_reference_trains(3, 50.0, 1000.0, 0.1, seed=1)
    >>> len(trains), float(trains[0].t_stop)
    (3, 1000.0)
    """
    check_int(n_trains, "n_trains", minimum=1)
    check_positive(rate_hz, "rate_hz", "Hz")
    check_positive(t_stop_ms, "t_stop_ms", "ms")
    times = [kick_spike_times(1, t_stop_ms, rate_hz, dt_ms, derive_seed(seed, k), start_ms=0.0)[0]
             for k in range(int(n_trains))]
    return to_spiketrains(times, t_stop_ms)



@dataclass(frozen=True)
class EnsembleConfig:
    """Settings of the ensemble protocol (times in ms, rates in Hz).

    Attributes
    ----------
    seed : int
        Seed of everything (required): targets, connectivity, kick, simulator seeds.
    backend : str
        Registered backend name of the noise-free ensemble (deterministic runs need a seedable one,
        e.g. nest, or the emulated chip ``brainscales``).
    poisson_backend : str, optional
        Backend of the Poisson-driven reference networks and of the Poisson activation fit; None:
        the ensemble backend's registered reference (``Capabilities.reference_backend``: nest for
        the emulated chip) or the ensemble backend itself.
    n_networks : int
        M, >= 2.
    n_neurons : int
        N units per network, 1..20.
    in_degree : int
        K excitatory and K inhibitory background sources per neuron; weights from
        :func:`cortexsim.models.ensemble.matched_background` at ``design_rate_hz``.
    source_sharing : {"random", "disjoint"}
        Whether neurons of one network may share background sources ("random") or not ("disjoint",
        needs 2 K <= M - 1); see :class:`cortexsim.models.ensemble.EnsembleBackground`.
    background_synapse : {"depressing", "static"}
        Kind of the background synapses (:class:`cortexsim.models.ensemble.EnsembleBackground`).
    tau_rec_ms : float
        Recovery time constant of depressing background synapses (ms), > 0.
    design_rate_hz : float
        Source rate assumed by the weight choice (Hz).
    train_iterations : int
        CD iterations (>= 1) for each noise mode.
    sampling_ms : float
        Sampling time of the first CD iteration (ms).
    sampling_end_ms : float, optional
        Sampling time of the last iteration (ms), > 0; linear growth in between. None: constant.
    average_fraction : float
        In [0, 1): trained parameters = mean of the iterates over this last fraction of the
        iterations (Polyak-Ruppert averaging); 0 keeps the last iterate.
    checkpoint_every : int, optional
        CD iterations per training segment; a checkpoint is written after each (``resume`` continues
        from it). Every segment restarts the ensemble from its seeded initial conditions. None: one
        segment per noise mode (checkpoints only between the protocol's phases).
    learning_rate, schedule, schedule_tau, momentum :
        CD optimizer (eta0; "constant" or "inverse" eta0 tau / (tau + t); tau in iterations; momentum in [0, 1)).
    eval_duration_ms : float
        Sampling time of each evaluation (ms).
    burn_in_ms : float
        Discarded start of every run (ms), includes the kick.
    calibration_ms : float
        Duration of the background-measurement runs (ms).
    calibration_points : int
        Leak potentials per activation sweep (>= 5), over the Poisson v_p05 +- 8 alpha.
    calibration_groups : int
        Activation sweeps (>= 1); the probes of one sweep share one set of background sources, so
        each sweep measures one neuron's activation function. The ensemble fit is the mean v_p05 and
        the median alpha of the sweeps; the spread of v_p05 (offsets between source sets) is reported.
    delay_max_ms : float
        Background delays are uniform in [1 ms, delay_max_ms] (>= 1 ms). On a backend without
        programmable delays (the emulated chip) every background synapse has the fixed minimal delay
        (one time step) instead.
    membrane_probes : int
        Non-spiking probes (>= 1) recording the free membrane potential (first 5 s are used).
    dt_ms : float
        Integration step (ms).
    synapses, neuron, noise :
        Recurrent synapse kind, neuron parameters, Poisson background.
    """

    seed: int
    backend: str = "nest"
    poisson_backend: str | None = None
    n_networks: int = 50
    n_neurons: int = 5
    in_degree: int = 30
    source_sharing: str = "random"
    background_synapse: str = "depressing"
    tau_rec_ms: float = 40.0
    design_rate_hz: float = 50.0
    train_iterations: int = 150
    sampling_ms: float = 1000.0
    sampling_end_ms: float | None = None
    average_fraction: float = 0.0
    checkpoint_every: int | None = None
    learning_rate: float = 1.0
    schedule: str = "inverse"
    schedule_tau: float = 50.0
    momentum: float = 0.5
    eval_duration_ms: float = 50000.0
    burn_in_ms: float = 200.0
    calibration_ms: float = 20000.0
    calibration_points: int = 25
    calibration_groups: int = 10
    delay_max_ms: float = 10.0
    membrane_probes: int = 5
    dt_ms: float = 0.1
    synapses: str = "renewing"
    neuron: NeuronParameters = DEFAULT_NEURON
    noise: NoiseParameters = DEFAULT_NOISE

    def __post_init__(self):
        check_backend_seed(self.backend, self.seed)
        backend_info(self.backend)
        check_dt(self.backend, self.dt_ms)
        check_dt(self.reference_backend, self.dt_ms)
        if not 1 <= int(self.n_neurons) <= MAX_EXACT_UNITS:
            raise ValueError(f"n_neurons must lie in [1, {MAX_EXACT_UNITS}], got {self.n_neurons}")
        check_ensemble_size(self.n_networks, self.n_neurons, self.in_degree, "ensemble", self.source_sharing)
        for name in ("train_iterations", "calibration_points", "calibration_groups", "membrane_probes"):
            minimum = 5 if name == "calibration_points" else 1
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {getattr(self, name)!r}")
        for name in ("sampling_ms", "eval_duration_ms", "calibration_ms"):
            check_duration(getattr(self, name), self.dt_ms, name)
        for name in ("design_rate_hz", "learning_rate", "schedule_tau"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")
        if not np.isfinite(self.burn_in_ms) or self.burn_in_ms < 0:
            raise ValueError(f"burn_in_ms must be a finite number >= 0 (ms), got {self.burn_in_ms!r}")
        if self.schedule not in SCHEDULE_KINDS:
            raise ValueError(f"schedule must be one of {SCHEDULE_KINDS}, got {self.schedule!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if self.synapses not in SYNAPSE_KINDS:
            raise ValueError(f"synapses must be one of {SYNAPSE_KINDS}, got {self.synapses!r}")
        self.training()  # sampling_end_ms and average_fraction checked there
        self.run_settings()  # background_synapse and tau_rec_ms checked there
        max_neurons = backend_info(self.backend).capabilities.max_neurons
        needed = self.n_networks * self.n_neurons + self.calibration_points * self.calibration_groups \
            + self.membrane_probes
        if max_neurons is not None and needed > max_neurons:
            raise ValueError(f"the ensemble ({self.n_networks} x {self.n_neurons} neurons) and its probes "
                             f"(calibration_points x calibration_groups = {self.calibration_points} x "
                             f"{self.calibration_groups}, membrane_probes = {self.membrane_probes}) need {needed} "
                             f"neurons; backend {self.backend!r} has at most {max_neurons}: use fewer networks or "
                             "probes")

    @property
    def reference_backend(self) -> str:
        """Backend of the Poisson-driven reference (see ``poisson_backend``)."""
        if self.poisson_backend is not None:
            return self.poisson_backend
        return backend_info(self.backend).capabilities.reference_backend or self.backend

    def run_settings(self, backend: str | None = None) -> RunSettings:
        """Settings of the runs on ``backend`` (default: the ensemble backend): without programmable
        delays the background synapses get the fixed minimal delay (one time step)."""
        return background_run_settings(self, backend or self.backend)

    def training(self) -> CDSettings:
        """How the CD engine trains each noise mode."""
        return CDSettings(iterations=self.train_iterations, sampling_ms=self.sampling_ms,
                          learning_rate=self.learning_rate, schedule=self.schedule, schedule_tau=self.schedule_tau,
                          momentum=self.momentum, dt_ms=self.dt_ms, sampling_end_ms=self.sampling_end_ms,
                          average_fraction=self.average_fraction, checkpoint_every=self.checkpoint_every,
                          burn_in_ms=self.burn_in_ms)


@dataclass
class EnsembleResult:
    """Outcome of :func:`run`: the ``results.json`` content (see :func:`run_ensemble`)."""

    data: dict

    def summary(self) -> dict:
        """Headline figures: median D_KL(sampled || target) per condition (nats) and the ratios."""
        out = {key: self.data[key]["median"] for key in ("dkl_poisson_untrained", "dkl_poisson_trained",
                                                         "dkl_ensemble_untrained", "dkl_ensemble_trained")}
        out["ratio_ensemble_trained_to_poisson_trained"] = self.data["ratio_ensemble_trained_to_poisson_trained"]
        out["improvement_ensemble_untrained_to_trained"] = self.data["improvement_ensemble_untrained_to_trained"]
        hardware = self.data.get("hardware")
        if hardware:  # a chip backend: what the ensemble used of the chip, over all phases
            out["chip_neurons_used"] = max(r["used_neurons"] for r in hardware.values())
            out["chip_generators_in_use"] = max(r["background"]["generators_used"] for r in hardware.values())
            out["chip_hardware_time_s"] = float(sum(r["hardware_time_s"] for r in hardware.values()))
        for mode, energy in self.data.get("training_energy", {}).items():   # J per CD iteration
            out[f"{mode}_training_energy_j_per_iteration"] = (energy or {}).get("j_per_iteration")
        return out

    def to_dict(self) -> dict:
        """Everything, as ``results.json`` holds it."""
        return self.data


def run(config: EnsembleConfig, out_dir=None, progress: bool = False, resume: bool = False) -> EnsembleResult | None:
    """The protocol behind ``cortexsim ensemble`` (:func:`run_ensemble`); None if interrupted."""
    data = run_ensemble(config, out_dir=out_dir, progress=progress, resume=resume)
    return None if data is None else EnsembleResult(data)


def quartiles(values) -> dict:
    """``{"median", "q25", "q75", "min", "max"}`` of finite ``values``."""
    v = np.asarray(values, dtype=float)
    q25, median, q75 = np.percentile(v, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75), "min": float(v.min()),
            "max": float(v.max()), "n": int(v.size)}


def run_ensemble(config: EnsembleConfig, out_dir=None, progress: bool = False,
                 poisson_fit: ActivationFit | None = None, resume: bool = False,
                 stop_after_iteration: int | None = None) -> dict | None:
    """Run the protocol (see the module docstring); returns the ``results.json`` content.

    ``poisson_fit`` (the activation function under Poisson noise) is calibrated (cached) if not given.
    With ``out_dir``, a checkpoint is written after every phase (evaluations, and training segments,
    see ``checkpoint_every``); ``resume`` continues a killed run from it. The background measurements
    are repeated on resumption (they are seeded, so they give the same result). ``stop_after_iteration``
    interrupts the first training that reaches it (returns None), for tests of resumption.
    """
    if resume and out_dir is None:
        raise ValueError("resume needs out_dir (the folder holding checkpoint.json)")
    tic_total = time.perf_counter()
    say = logger.info if progress else (lambda *a, **k: None)
    backends = {"poisson": config.reference_backend, "ensemble": config.backend}
    sims = {mode: load_backend(name) for mode, name in backends.items()}
    run_settings = {mode: config.run_settings(name) for mode, name in backends.items()}
    settings = run_settings["ensemble"]
    targets = [random_bm(config.n_neurons, seed=derive_seed(config.seed, 10, m)) for m in range(config.n_networks)]
    fresh = {"task": "ensemble", "config": config_to_dict(config), "evaluations": {}, "training": {},
             "trained": {}, "histories": {}, "hardware": {}}
    state = load_checkpoint(out_dir, "ensemble", fresh["config"], {**fresh, "config": None}) if resume else fresh

    def save() -> None:
        if out_dir is not None:
            save_checkpoint(output_dir(out_dir), state)

    poisson_fit = poisson_fit or calibrate(CalibrationConfig(seed=config.seed, backend=backends["poisson"],
                                                             neuron=config.neuron, noise=config.noise,
                                                             dt_ms=config.dt_ms), progress=progress).fit
    say(f"Poisson activation function ({backends['poisson']}): v_p05 = {poisson_fit.v_p05:.3f} mV, "
        f"alpha = {poisson_fit.alpha:.3f} mV")
    timings, hardware = {}, state.setdefault("hardware", {})
    tic = time.perf_counter()
    bg_poisson = measure_background(sims["poisson"], config, run_settings["poisson"], targets, poisson_fit, "poisson")
    bg_ensemble = measure_background(sims["ensemble"], config, settings, targets, poisson_fit, "ensemble")
    _record_hardware(hardware, "background", sims["ensemble"])
    timings["background_s"] = time.perf_counter() - tic
    ensemble_fit = bg_ensemble["fit"]
    source_rate = bg_ensemble["source_rate_hz"]
    ensemble_noise = equivalent_noise(settings.background, "ensemble", config.noise, source_rate)
    say(f"ensemble activation function: v_p05 = {ensemble_fit.v_p05:.3f} mV, alpha = {ensemble_fit.alpha:.3f} mV; "
        f"mean rate {source_rate:.1f} Hz")
    modes = {"poisson": (poisson_fit, config.noise), "ensemble": (ensemble_fit, ensemble_noise)}
    evaluations, histories = state["evaluations"], state["histories"]
    for index, (mode, (fit, noise)) in enumerate(modes.items()):
        tic = time.perf_counter()
        sim, mode_settings = sims[mode], run_settings[mode]
        if f"{mode}_untrained" not in evaluations:
            evaluations[f"{mode}_untrained"] = evaluate(sim, mode_settings, targets, targets, fit, mode, noise,
                                                        config.eval_duration_ms, derive_seed(config.seed, 5, index))
            _record_hardware(hardware, f"{mode}_untrained", sim)
            save()
        say(f"{mode} untrained: median D_KL {np.median(evaluations[f'{mode}_untrained']['dkl_sampled_target']):.4f}")
        if mode not in state["trained"]:
            start = CDState.from_dict(state["training"][mode]) if mode in state["training"] else targets

            def save_training(cd: CDState, mode=mode) -> None:
                state["training"][mode] = cd.to_dict()
                save()

            bms, history = train(sim, mode_settings, config.training(), targets, start, fit, mode, noise,
                                 derive_seed(config.seed, 6, index), progress, save=save_training,
                                 stop_after_iteration=stop_after_iteration)
            if bms is None:
                return None
            _record_hardware(hardware, f"{mode}_training", sim)
            state["trained"][mode], histories[mode] = [bm.to_dict() for bm in bms], history
            save()
        trained = [BoltzmannMachine.from_dict(d) for d in state["trained"][mode]]
        if f"{mode}_trained" not in evaluations:
            evaluations[f"{mode}_trained"] = evaluate(sim, mode_settings, trained, targets, fit, mode, noise,
                                                      config.eval_duration_ms, derive_seed(config.seed, 7, index))
            _record_hardware(hardware, f"{mode}_trained", sim)
            save()
        say(f"{mode} trained: median D_KL {np.median(evaluations[f'{mode}_trained']['dkl_sampled_target']):.4f}")
        timings[f"{mode}_s"] = time.perf_counter() - tic
    timings["total_s"] = time.perf_counter() - tic_total
    trained = {mode: [BoltzmannMachine.from_dict(d) for d in bms] for mode, bms in state["trained"].items()}
    results = _summarise(config, settings, poisson_fit, ensemble_fit, source_rate, bg_poisson, bg_ensemble,
                         evaluations, histories, trained, targets, timings)
    results["backends"] = backends
    results["training_energy"] = {mode: training_energy(history.get("timing", {}))      # J per CD iteration
                                  for mode, history in histories.items()}
    if hardware:
        results["hardware"] = hardware
    if out_dir is not None:
        _write_outputs(results, output_dir(out_dir), bg_poisson, bg_ensemble, evaluations, histories, poisson_fit,
                       chip_booking(sims["ensemble"]))
    return results


def _record_hardware(store: dict, phase: str, sim) -> None:
    """The chip's report of the run just finished (backends that emulate hardware report one)."""
    report = getattr(sim, "get_hardware_report", None)
    if report is not None:
        store[phase] = report()


def _summarise(config, settings, poisson_fit, ensemble_fit, source_rate, bg_poisson, bg_ensemble, evaluations,
               histories, trained, targets, timings) -> dict:
    dkl = {key: evaluation["dkl_sampled_target"] for key, evaluation in evaluations.items()}
    stats = {f"dkl_{key}": quartiles(values) for key, values in dkl.items()}
    ratio_poisson = stats["dkl_ensemble_trained"]["median"] / stats["dkl_poisson_trained"]["median"]
    gain = stats["dkl_ensemble_untrained"]["median"] / stats["dkl_ensemble_trained"]["median"]
    return {
        **stats,
        "dkl_direction": "D_KL(sampled || target), nats, time-continuous joint distribution per network",
        "ratio_ensemble_trained_to_poisson_trained": ratio_poisson,
        "improvement_ensemble_untrained_to_trained": gain,
        "criteria": {"within_1.5x_of_poisson_trained": bool(ratio_poisson <= 1.5),
                     "at_least_2x_better_than_untrained": bool(gain >= 2.0)},
        "dkl_per_network": dkl,
        "dkl_target_sampled_per_network": {key: e["dkl_target_sampled"] for key, e in evaluations.items()},
        "background": {
            mode: {"inputs": bg["inputs"].summary(), "free_membrane": bg["membrane"].summary(),
                   "network_mean_rate_hz": float(np.mean(bg["rates_hz"])), "inputs_source": bg["inputs_source"]}
            for mode, bg in (("poisson", bg_poisson), ("ensemble", bg_ensemble))},
        "activation_fit": {"poisson": poisson_fit.to_dict(), "ensemble": ensemble_fit.to_dict(),
                           "ensemble_per_source_set": {"v_p05": bg_ensemble["group_v_p05"],
                                                       "alpha": bg_ensemble["group_alpha"],
                                                       "v_p05_sd_mv": float(np.std(bg_ensemble["group_v_p05"]))},
                           "ensemble_definition": "probe groups sharing one source set; mean v_p05, median alpha"},
        "ensemble_source_rate_hz": source_rate,
        "ensemble_background": settings.background.to_dict(),
        "config": config_to_dict(config),
        "training_history": histories,
        "final_parameters": {mode: [bm.to_dict() for bm in bms] for mode, bms in trained.items()},
        "targets": [bm.to_dict() for bm in targets],
        "timing": timings,
        "versions": library_versions(),
        "machine": machine_info(),
    }


def _write_outputs(results, out, bg_poisson, bg_ensemble, evaluations, histories, poisson_fit,
                   chip: dict | None = None) -> None:
    config = results["config"]
    dkl = {key: evaluations[key]["dkl_sampled_target"] for key in
           ("poisson_untrained", "poisson_trained", "ensemble_untrained", "ensemble_trained")}
    files = {
        "dkl_distributions": plot_value_distributions(
            dkl, out / "dkl_distributions.png", "D_KL(sampled || target) per network (nats)",
            title=f"{config['n_networks']} networks x {config['n_neurons']} neurons, "
                  f"{config['train_iterations']} CD iterations, eval {config['eval_duration_ms']:g} ms"),
        "background": plot_background({"poisson": bg_poisson["inputs"], "ensemble": bg_ensemble["inputs"]},
                                      {"poisson": bg_poisson["membrane"], "ensemble": bg_ensemble["membrane"]},
                                      out / "background.png", title="background: Poisson vs ensemble"),
        "activation_ensemble": plot_activation_function(
            bg_ensemble["sweep"], bg_ensemble["p_on"][0], bg_ensemble["fit"], out / "activation_ensemble.png",
            title=f"one source set; ensemble fit over {len(bg_ensemble['group_alpha'])} sets (Poisson fit: v_p05 "
                  f"{poisson_fit.v_p05:.2f} mV, alpha {poisson_fit.alpha:.2f} mV)"),
        "training": plot_learning_curve(np.arange(len(histories["poisson"]["dkl_median"])),
                                        {f"{m} noise": histories[m]["dkl_median"] for m in histories},
                                        out / "training.png", ylabel="median D_KL per iteration's samples", logy=True),
    }
    results["files"] = {name: str(path.name) for name, path in files.items()}
    write_results(out, results, config, chip)
