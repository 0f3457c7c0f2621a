"""Running, evaluating and CD-training ensembles of sampling networks (the simulator side of issue 7).

Each function starts a fresh simulation (``sim.setup`` with the given simulator seed), builds the
ensemble with :func:`cortexsim.models.ensemble.build_ensemble` (background connectivity, kick and
initial potentials from ``network_seed``, identical in every run of a protocol, so every run sees
the SAME networks), and reads one joint distribution per network (time-continuous, analysis.states).

Training reuses the pure contrastive-divergence rule of :mod:`cortexsim.models.cd_learning`
(``cd_gradient``, ``MomentumOptimizer``, ``LearningRateSchedule``, ``block_diagonal_mask``): the data
statistics are the exact moments of each network's target, the model statistics those of the
network's own samples over ``sampling_ms``; all M networks update at once (block-diagonal mask)
and their parameters are set in place between runs (no rebuild). The training loop of
:mod:`cortexsim.protocols.cd_training` builds Poisson-driven networks itself and rebuilds them for
every checkpoint segment (which would restart a deterministic ensemble from its kick), so it is not
used here; a network-factory hook there would have to cover segments, checkpoints and read-out too.

The loop offers a growing sampling time per iteration and iterate averaging
(:func:`~cortexsim.models.cd_learning.sampling_durations`, :class:`~cortexsim.models.cd_learning.IterateAverage`);
a protocol applies the same settings to both noise modes.

Measured (NEST, 50 x 5 neurons, K = 30, 150 iterations of 1 -> 3 s, eta 1 / (1 + t / 50), momentum
0.5, mean of the last 75 iterates, 50 s evaluations; benchmarks/ensemble_sampling.py). With STATIC
background synapses the ensemble ended at median D_KL 0.0132 against 0.0026 under Poisson noise:
its background follows the other networks' persistent states (sources fire bursts while in z = 1),
so the networks mixed 2.3x more slowly (finite-sampling term B 234 vs 104 ms) and kept a higher
extrapolated floor (0.0082 vs 0.0006, benchmarks/ensemble_sampling_floor.py). Neither disjoint source
sets, nor K = 15 / 24, nor M = 100, nor a per-neuron bias start closed the gap
(benchmarks/ensemble_source_screening.py). With the default DEPRESSING background synapses
(:data:`cortexsim.models.ensemble.DEFAULT_BACKGROUND`) the ensemble mixes faster than Poisson-driven
networks (B 76 vs 104 ms) and trains to 0.0023 against Poisson's 0.0026 (seed 1; seed 2: 0.0022 vs
0.0024), from 0.125 untrained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from ..analysis.background import input_statistics, membrane_statistics
from ..analysis.divergence import dkl_both
from ..analysis.states import joint_distribution
from ..models.boltzmann import BoltzmannMachine, block_diagonal, exact_moments, joint
from ..models.cd_learning import (IterateAverage, LearningRateSchedule, MomentumOptimizer, block_diagonal_mask,
                                  cd_gradient, moments_from_distribution, sampling_durations)
from ..models.ensemble import Ensemble, EnsembleBackground, build_ensemble, equivalent_noise
from ..models.lif_translation import fit_activation
from cortexsim.parameters import ActivationFit, NeuronParameters, NoiseParameters
from cortexsim.seeds import derive_seed

__all__ = ["RunSettings", "TrainingSettings", "build", "network_distributions", "evaluate", "train",
           "measure_background"]


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


@dataclass(frozen=True)
class TrainingSettings:
    """CD settings (times in ms, ``schedule_tau`` in iterations).

    Attributes
    ----------
    iterations : int
        CD iterations (>= 1).
    sampling_ms : float
        Sampling time of the first iteration (ms), > 0.
    learning_rate, schedule, schedule_tau, momentum :
        Optimizer: eta0, schedule kind, its decay constant, momentum in [0, 1).
    sampling_end_ms : float, optional
        Sampling time of the last iteration (ms); the time grows linearly from ``sampling_ms``
        (:func:`sampling_durations`). None: every iteration samples ``sampling_ms``. Late iterations,
        which make small corrections, then see less sampling noise.
    average_fraction : float
        In [0, 1): the trained parameters are the mean of the iterates over the last
        ``average_fraction`` of the iterations (Polyak-Ruppert averaging, :class:`IterateAverage`),
        which averages out the sampling noise of single updates; 0 keeps the last iterate.
    """

    iterations: int
    sampling_ms: float
    learning_rate: float
    schedule: str
    schedule_tau: float
    momentum: float
    sampling_end_ms: float | None = None
    average_fraction: float = 0.0

    def __post_init__(self) -> None:
        if int(self.iterations) != self.iterations or self.iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, got {self.iterations!r}")
        for name in ("sampling_ms", "sampling_end_ms"):
            value = getattr(self, name)
            if value is not None and (not np.isfinite(value) or value <= 0):
                raise ValueError(f"{name} must be a finite number > 0 (ms), got {value!r}")
        if not 0.0 <= self.average_fraction < 1.0:
            raise ValueError(f"average_fraction must lie in [0, 1), got {self.average_fraction!r}")


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
    sim.run(settings.burn_in_ms + duration_ms)
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


def train(sim: ModuleType, settings: RunSettings, training: TrainingSettings, targets: list, start: list,
          fit: ActivationFit, mode: str, translation_noise: NoiseParameters, sim_seed: int,
          progress: bool = False) -> tuple[list, dict]:
    """CD-train all networks of one ensemble at once towards their ``targets``, from ``start`` BMs.

    One simulation: burn-in, then per iteration free sampling (``training.sampling_ms``, growing to
    ``training.sampling_end_ms`` if set, :func:`sampling_durations`), the update
    ``dW = eta (<zz>_target - <zz>_sampled)``, ``db = eta (<z>_target - <z>_sampled)`` per network
    (block-diagonal mask), and the new parameters set in place.

    Returns
    -------
    final : list of BoltzmannMachine
        The last iterate, or the mean of the last iterates (``training.average_fraction``).
    history : dict with per-iteration ``learning_rate``, ``sampling_ms``, ``dkl_median`` (median over
        networks of D_KL(sampled || target) of that iteration's samples), ``averaged_iterations`` and timing.
    """
    ensemble = build(sim, settings, start, fit, mode, translation_noise, sim_seed)
    sizes = [bm.n_units for bm in targets]
    mask = block_diagonal_mask(sizes)
    data_mean = np.zeros(mask.shape[0])
    data_second = np.zeros(mask.shape)
    for s, target in zip(ensemble.blocks, targets):
        data_mean[s], data_second[s, s] = exact_moments(target)
    composite = block_diagonal(start)
    W, b = np.array(composite.W), np.array(composite.b)
    schedule = LearningRateSchedule(training.learning_rate, training.schedule, training.schedule_tau)
    optimizer = MomentumOptimizer.create(mask.shape[0], training.momentum)
    p_targets = [joint(t) for t in targets]
    history = {"learning_rate": [], "dkl_median": [], "run_wall_s": 0.0, "update_wall_s": 0.0}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=training.iterations, desc=f"CD, {mode} noise", unit="it")
    durations = sampling_durations(training.sampling_ms, training.sampling_end_ms, training.iterations, settings.dt_ms)
    average = IterateAverage(training.iterations, training.average_fraction)
    history["sampling_ms"] = durations.tolist()
    history["averaged_iterations"] = training.iterations - average.start
    t_now = settings.burn_in_ms
    tic = time.perf_counter()
    sim.run(settings.burn_in_ms)
    ensemble.spiketrains(clear=True)
    history["run_wall_s"] += time.perf_counter() - tic
    for iteration, duration in enumerate(durations):
        tic = time.perf_counter()
        sim.run(float(duration))
        history["run_wall_s"] += time.perf_counter() - tic
        tic = time.perf_counter()
        spiketrains = ensemble.spiketrains(clear=True)
        dists = network_distributions(spiketrains, ensemble, t_now, t_now + duration)
        t_now += duration
        model_mean, model_second = np.zeros_like(data_mean), np.zeros_like(data_second)
        for s, p in zip(ensemble.blocks, dists):
            model_mean[s], model_second[s, s] = moments_from_distribution(p, s.stop - s.start)
        grad_W, grad_b = cd_gradient((data_mean, data_second), (model_mean, model_second), mask)
        eta = schedule.rate(iteration)
        W, b = optimizer.step(W, b, grad_W, grad_b, eta, mask)
        ensemble.set_bms([BoltzmannMachine(W[s, s], b[s]) for s in ensemble.blocks])
        average.add(iteration, W, b)
        dkl = [dkl_both(p, q)["dkl_sampled_target"] for p, q in zip(dists, p_targets)]
        history["learning_rate"].append(eta)
        history["dkl_median"].append(float(np.median(dkl)))
        history["update_wall_s"] += time.perf_counter() - tic
        if bar is not None:
            bar.update(1)
            bar.set_postfix(dkl_median=f"{np.median(dkl):.4f}")
    if bar is not None:
        bar.close()
    sim.end()
    W_final, b_final = average.result()
    return [BoltzmannMachine(W_final[s, s], b_final[s]) for s in ensemble.blocks], history


def measure_background(sim: ModuleType, config, settings: RunSettings, targets: list, fit: ActivationFit,
                       mode: str) -> dict:
    """One run with probes: activation function (ensemble mode), free membrane and input statistics.

    ``config`` is a :class:`cortexsim.protocols.ensemble.EnsembleConfig` (its calibration, probe,
    burn-in and seed settings are used). Returns ``membrane`` (MembraneStatistics), ``rates_hz`` of
    the networks' neurons, ``inputs`` (InputStatistics) and, in ensemble mode, the activation sweep
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
    if mode == "poisson":  # the Poisson background as K independent trains per receptor (rate R / K)
        K = settings.background.in_degree
        poisson_sources = sim.Population(2 * K * 10, sim.SpikeSourcePoisson(rate=config.noise.rate_exc / K),
                                         label="poisson_inputs")
        poisson_sources.record("spikes")
    sim.run(config.burn_in_ms + T)
    t0, t1 = config.burn_in_ms, config.burn_in_ms + T
    spiketrains = ensemble.spiketrains()
    segment = ensemble.probes.get_data().segments[-1]
    v = np.asarray(segment.analogsignals[0].magnitude)
    step = max(1, int(round(1.0 / config.dt_ms)))  # one sample per ms suffices
    start = int(round(t0 / config.dt_ms))
    v = v[start:start + int(5000.0 / config.dt_ms):step]
    result = {"membrane": membrane_statistics(v, dt_ms=step * config.dt_ms),
              "rates_hz": np.array([np.sum(np.asarray(st.magnitude) >= t0) for st in spiketrains]) / T * 1e3}
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
    else:
        trains = list(poisson_sources.get_data("spikes").segments[-1].spiketrains)
        result["inputs"] = input_statistics(trains, np.arange(len(trains)).reshape(10, -1), t0, t1)
    sim.end()
    return result
