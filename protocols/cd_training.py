"""Contrastive-divergence training of LIF sampling networks on their own spiking samples.

Target-distribution task (:func:`train_target`): the network should sample from target Boltzmann
machines p*. Each iteration runs the network freely for ``sampling_ms``, reads the time-continuous
joint distribution of its states, and moves (W, b) along ``<.>_p* - <.>_sampled`` (the data statistics
are the exact moments of p*, references §3). Several independent targets train side by side as the
blocks of one block-diagonal network in one simulation. D_KL(sampled || target) is measured over
``eval_duration_ms`` before and after training, and from every iteration's samples (learning curve).

The network is built once per checkpoint segment and updated in place between iterations; see
:mod:`cortexsim.protocols.cd_network` for why segments make resumption bit-identical on NEST.
The digits task lives in :mod:`cortexsim.protocols.cd_digits`; the CLI (``cortexsim train-cd``) here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cortexsim.config import config_to_dict
from cortexsim.results import library_versions, machine_info, output_dir, write_json_atomic
from cortexsim.seeds import check_seed, derive_seed

from ..analysis import plots
from ..analysis.divergence import dkl_both
from ..analysis.states import joint_distribution
from ..backends.registry import load_backend
from ..models.boltzmann import MAX_EXACT_UNITS, BoltzmannMachine, exact_moments, joint, random_bm
from ..models.cd_learning import (LearningRateSchedule, MomentumOptimizer,
                                  block_diagonal_mask, cd_gradient, moments_from_distribution)
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from ..models.sampling_network import build_sampling_network
from .calibration import CalibrationConfig, calibrate
from .cd_network import (TimedSimulator, apply_bm, check_training_settings, load_checkpoint,
                         save_checkpoint)

__all__ = ["TargetTrainingConfig", "TargetTrainingResult", "train_target", "INIT_KINDS"]

#: Starting points of the target task: the translated target itself, or a random BM.
INIT_KINDS = ("translated", "random")


@dataclass(frozen=True)
class TargetTrainingConfig:
    """Settings of the target-distribution task.

    Attributes
    ----------
    seed : int
        Seed of the run (required): random targets, random starts, simulator seeds.
    backend : str
        Registered backend name.
    n_neurons : int
        Units per random target BM (1..20); ignored when targets are given.
    n_targets : int
        Random target BMs ``random_bm(n_neurons, derive_seed(seed, 8, k))``, k = 0..n_targets-1, trained side by
        side as independent blocks of one network; ignored when targets are given.
    target_seeds : tuple of int, optional
        Instead: the random targets ``random_bm(n_neurons, s)`` for each ``s`` (e.g. the standard set
        1..10 of the benchmarks); sets ``n_targets``.
    init : {"translated", "random"}
        Start from the targets' own parameters (their translation) or from a random BM
        (``random_bm`` with ``init_scale`` as weight and bias scale).
    init_scale : float
        Scale of the random start (dimensionless), >= 0.
    iterations : int
        Parameter updates.
    sampling_ms : float
        Free-running time per iteration (ms), > 0.
    burn_in_ms : float
        Time discarded at the start of each segment's fresh simulation (ms), >= 0.
    learning_rate : float
        eta0 of the schedule, > 0 (dimensionless).
    schedule : {"constant", "inverse"}
        Learning-rate schedule (``inverse``: eta0 * tau / (tau + t)).
    schedule_tau : float
        Decay constant of the inverse schedule (iterations).
    momentum : float
        Momentum in [0, 1).
    weight_decay : float
        L2 penalty on weights, >= 0.
    checkpoint_every : int
        Iterations per segment; a checkpoint is written after each segment. Keep segments to about a
        minute of simulated time: on NEST 3.10 every kernel-status query (PyNN makes several per run
        and per read-out) gets slower the longer a kernel has simulated (measured: ~5 ms per simulated
        second for 50 neurons), and each segment starts a fresh kernel.
    eval_duration_ms : float
        Sampling time of the before/after evaluations (ms), > 0.
    dt_ms : float
        Integration step (ms).
    synapses : {"renewing", "static"}
        Recurrent synapse kind.
    neuron : NeuronParameters
        Neuron parameters (PyNN units).
    noise : NoiseParameters
        Poisson background (Hz, uS).
    """

    seed: int
    backend: str = "nest"
    n_neurons: int = 5
    n_targets: int = 1
    target_seeds: tuple | None = None
    init: str = "translated"
    init_scale: float = 0.5
    iterations: int = 100
    sampling_ms: float = 10000.0
    burn_in_ms: float = 100.0
    learning_rate: float = 1.0
    schedule: str = "inverse"
    schedule_tau: float = 20.0
    momentum: float = 0.5
    weight_decay: float = 0.0
    checkpoint_every: int = 5
    eval_duration_ms: float = 100000.0
    dt_ms: float = 0.1
    synapses: str = "renewing"
    neuron: NeuronParameters = DEFAULT_NEURON
    noise: NoiseParameters = DEFAULT_NOISE

    def __post_init__(self):
        check_training_settings(self)
        if not 1 <= int(self.n_neurons) <= MAX_EXACT_UNITS:
            raise ValueError(f"n_neurons must lie in [1, {MAX_EXACT_UNITS}], got {self.n_neurons}")
        if int(self.n_targets) < 1:
            raise ValueError(f"n_targets must be >= 1, got {self.n_targets}")
        if self.target_seeds is not None:
            seeds = tuple(check_seed(s, "target_seeds entries") for s in self.target_seeds)
            if len(seeds) != int(self.n_targets):
                object.__setattr__(self, "n_targets", len(seeds))
            object.__setattr__(self, "target_seeds", seeds)
        if self.init not in INIT_KINDS:
            raise ValueError(f"init must be one of {INIT_KINDS}, got {self.init!r}")
        if not np.isfinite(self.init_scale) or self.init_scale < 0:
            raise ValueError(f"init_scale must be a finite number >= 0, got {self.init_scale!r}")
        for name in ("sampling_ms", "eval_duration_ms"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a finite number > 0 (ms), got {getattr(self, name)!r}")
        if not np.isfinite(self.burn_in_ms) or self.burn_in_ms < 0:
            raise ValueError(f"burn_in_ms must be a finite number >= 0 (ms), got {self.burn_in_ms!r}")

    def calibration(self) -> CalibrationConfig:
        return CalibrationConfig(seed=self.seed, backend=self.backend, neuron=self.neuron,
                                 noise=self.noise, dt_ms=self.dt_ms)


@dataclass
class TargetTrainingResult:
    """Outcome of :func:`train_target` (per-target lists are in target order)."""

    config: TargetTrainingConfig
    targets: list
    initial: list
    final: list
    dkl_initial: list
    dkl_final: list
    history: dict
    timing: dict
    fit: ActivationFit
    files: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-serialisable summary (``results.json``); ``dkl_initial``/``dkl_final`` are medians
        over targets of D_KL(sampled || target) after ``eval_duration_ms``."""
        forward = lambda rows: [row["dkl_sampled_target"] for row in rows]  # noqa: E731
        return {
            "task": "target",
            "dkl_direction": "D_KL(sampled || target), nats; time-continuous joint distribution",
            "dkl_initial": float(np.median(forward(self.dkl_initial))),
            "dkl_final": float(np.median(forward(self.dkl_final))),
            "dkl_initial_per_target": self.dkl_initial,
            "dkl_final_per_target": self.dkl_final,
            "eval_duration_ms": self.config.eval_duration_ms,
            "config": config_to_dict(self.config),
            "activation_fit": self.fit.to_dict(),
            "targets": [bm.to_dict() for bm in self.targets],
            "initial_parameters": [bm.to_dict() for bm in self.initial],
            "final_parameters": [bm.to_dict() for bm in self.final],
            "history": self.history,
            "timing": self.timing,
            "versions": library_versions(),
            "machine": machine_info(),
            "files": self.files,
        }


def _compose(bms: list) -> BoltzmannMachine:
    """One block-diagonal BM holding independent BMs."""
    n = sum(bm.n_units for bm in bms)
    W, b = np.zeros((n, n)), np.zeros(n)
    start = 0
    for bm in bms:
        stop = start + bm.n_units
        W[start:stop, start:stop], b[start:stop] = bm.W, bm.b
        start = stop
    return BoltzmannMachine(W, b)


def _blocks(sizes) -> list[slice]:
    edges = np.concatenate(([0], np.cumsum(sizes))).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1].tolist(), edges[1:].tolist())]


def _split(W: np.ndarray, b: np.ndarray, blocks) -> list[BoltzmannMachine]:
    return [BoltzmannMachine(W[s, s], b[s]) for s in blocks]


def _block_distributions(spiketrains, blocks, tau_ref, t_start, t_stop) -> list[np.ndarray]:
    return [joint_distribution(spiketrains[s], tau_ref, t_start, t_stop) for s in blocks]


def _evaluate(config, sim, fit, bms, targets, duration_ms, seed, progress=False) -> list[dict]:
    """D_KL against ``targets`` of networks representing ``bms``, sampled for ``duration_ms`` (one simulation)."""
    from .progress import run_with_progress

    blocks = _blocks([bm.n_units for bm in bms])
    sim.setup(timestep=config.dt_ms, seed=seed)
    network = build_sampling_network(sim, _compose(bms), fit, config.neuron, config.noise, config.synapses)
    run_with_progress(sim, config.burn_in_ms + duration_ms, enabled=progress, label="evaluation")
    spiketrains = network.spiketrains(clear=True)
    sim.end()
    t0 = config.burn_in_ms
    p = _block_distributions(spiketrains, blocks, config.neuron.tau_refrac, t0, t0 + duration_ms)
    return [dkl_both(p_k, joint(target)) for p_k, target in zip(p, targets)]


def _fresh_state(config: TargetTrainingConfig, targets: list) -> dict:
    if config.init == "translated":
        starts = list(targets)
    else:
        starts = [random_bm(bm.n_units, seed=derive_seed(config.seed, 7, k), weight_scale=config.init_scale,
                            bias_scale=config.init_scale) for k, bm in enumerate(targets)]
    start = _compose(starts)
    n = start.n_units
    optimizer = MomentumOptimizer.create(n, config.momentum, config.weight_decay)
    return {"task": "target", "iteration": 0, "W": start.W.tolist(), "b": start.b.tolist(),
            "initial": [bm.to_dict() for bm in starts], "targets": [bm.to_dict() for bm in targets],
            "optimizer": optimizer.to_dict(), "dkl_initial": None,
            "history": {"iteration": [], "learning_rate": [], "dkl_sampled_target": [],
                        "segment_end": [], "segment_dkl_sampled_target": []},
            "timing": {"training_wall_s": 0.0, "run_wall_s": 0.0, "read_wall_s": 0.0,
                       "update_wall_s": 0.0, "build_wall_s": 0.0, "iterations_timed": 0}}


def train_target(config: TargetTrainingConfig, targets: list | None = None, fit: ActivationFit | None = None,
                 out_dir: str | Path | None = None, resume: bool = False, progress: bool = False,
                 stop_after_iteration: int | None = None) -> TargetTrainingResult | None:
    """Train sampling networks to sample from ``targets`` (default: random BMs from the seed).

    Parameters
    ----------
    config : TargetTrainingConfig
    targets : list of BoltzmannMachine, optional
        Target BMs (each at most 20 units); trained side by side in one simulation.
    fit : ActivationFit, optional
        Activation function; calibrated (cached) when not given.
    out_dir : path, optional
        Output folder: ``checkpoint.json`` after every segment, then ``results.json`` and figures.
    resume : bool
        Continue from ``out_dir/checkpoint.json`` (same config and targets required).
    progress : bool
        Progress bar with ETA over iterations.
    stop_after_iteration : int, optional
        Stop at the first checkpoint at or after this iteration and return None (an interruption).
    """
    given = targets is not None
    if not given:
        seeds = config.target_seeds or [derive_seed(config.seed, 8, k) for k in range(config.n_targets)]
        targets = [random_bm(config.n_neurons, seed=s) for s in seeds]
    targets = list(targets)
    if not targets or not all(isinstance(bm, BoltzmannMachine) for bm in targets):
        raise ValueError("targets must be a non-empty list of BoltzmannMachine objects")
    if max(bm.n_units for bm in targets) > MAX_EXACT_UNITS:
        raise ValueError(f"each target may have at most {MAX_EXACT_UNITS} units (exact enumeration)")
    config = replace(config, n_neurons=targets[0].n_units, n_targets=len(targets),
                     target_seeds=None if given else config.target_seeds)
    if resume and out_dir is None:
        raise ValueError("resume needs out_dir (the folder holding checkpoint.json)")
    if fit is None:
        fit = calibrate(config.calibration(), progress=progress).fit
    if resume:
        state = load_checkpoint(out_dir, "target")
        if state["config"] != config_to_dict(config) or state["targets"] != [bm.to_dict() for bm in targets]:
            raise ValueError("the checkpoint was written with another config or other targets; "
                             "resume with the same settings")
    else:
        state = _fresh_state(config, targets)
        state["config"] = config_to_dict(config)
    sim = load_backend(config.backend)
    blocks = _blocks([bm.n_units for bm in targets])
    if state["dkl_initial"] is None:
        initial = [BoltzmannMachine.from_dict(d) for d in state["initial"]]
        state["dkl_initial"] = _evaluate(config, sim, fit, initial, targets, config.eval_duration_ms,
                                         derive_seed(config.seed, 1, 0), progress)
        if out_dir is not None:
            save_checkpoint(output_dir(out_dir), state)
    finished = _train_segments(config, state, sim, fit, targets, blocks, out_dir, progress, stop_after_iteration)
    if not finished:
        return None
    final = _split(np.asarray(state["W"]), np.asarray(state["b"]), blocks)
    dkl_final = _evaluate(config, sim, fit, final, targets, config.eval_duration_ms, derive_seed(config.seed, 2, 0),
                          progress)
    timing = dict(state["timing"])
    timing["overhead_fraction"] = 1.0 - timing["run_wall_s"] / max(timing["training_wall_s"], 1e-12)
    timing["overhead_definition"] = "1 - (wall time in sim.run) / (wall time of the training loop)"
    result = TargetTrainingResult(config, targets, [BoltzmannMachine.from_dict(d) for d in state["initial"]],
                                  final, state["dkl_initial"], dkl_final, state["history"], timing, fit)
    if out_dir is not None:
        _write_outputs(result, output_dir(out_dir))
    return result


def _train_segments(config, state, sim, fit, targets, blocks, out_dir, progress, stop_after) -> bool:
    """Run the remaining iterations segment by segment; True when all iterations are done."""
    schedule = LearningRateSchedule(config.learning_rate, config.schedule, config.schedule_tau)
    optimizer = MomentumOptimizer.from_dict(state["optimizer"])
    mask = block_diagonal_mask([bm.n_units for bm in targets])
    data = [exact_moments(bm) for bm in targets]
    p_targets = [joint(bm) for bm in targets]
    n = mask.shape[0]
    data_mean = np.concatenate([m for m, _ in data])
    data_second = np.zeros((n, n))
    for s, (_, second) in zip(blocks, data):
        data_second[s, s] = second
    W, b = np.asarray(state["W"], dtype=float), np.asarray(state["b"], dtype=float)
    history, timing = state["history"], state["timing"]
    tau_ref = config.neuron.tau_refrac
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=config.iterations, initial=state["iteration"], desc=f"CD on {config.backend}",
                   unit="it")
    try:
        while state["iteration"] < config.iterations:
            first = state["iteration"]
            last = min(first + config.checkpoint_every, config.iterations)
            tic = time.perf_counter()
            sim.setup(timestep=config.dt_ms, seed=derive_seed(config.seed, 0, first))
            network = build_sampling_network(sim, BoltzmannMachine(W, b), fit, config.neuron, config.noise,
                                             config.synapses)
            timed = TimedSimulator(sim)
            if config.burn_in_ms > 0:
                timed.run(config.burn_in_ms)
                network.spiketrains(clear=True)
            timing["build_wall_s"] += time.perf_counter() - tic
            pooled = [np.zeros(2 ** (s.stop - s.start)) for s in blocks]
            for iteration in range(first, last):
                t_start, t_stop = timed.run(config.sampling_ms)
                tic_read = time.perf_counter()
                spiketrains = network.spiketrains(clear=True)
                p_blocks = _block_distributions(spiketrains, blocks, tau_ref, t_start, t_stop)
                timing["read_wall_s"] += time.perf_counter() - tic_read
                tic_update = time.perf_counter()
                model_mean, model_second = np.zeros(n), np.zeros((n, n))
                dkl = []
                for k, (s, p_k) in enumerate(zip(blocks, p_blocks)):
                    model_mean[s], model_second[s, s] = moments_from_distribution(p_k, s.stop - s.start)
                    pooled[k] += p_k
                    dkl.append(dkl_both(p_k, p_targets[k])["dkl_sampled_target"])
                grad_W, grad_b = cd_gradient((data_mean, data_second), (model_mean, model_second), mask)
                eta = schedule.rate(iteration)
                W, b = optimizer.step(W, b, grad_W, grad_b, eta, mask)
                apply_bm(network, BoltzmannMachine(W, b))
                timing["update_wall_s"] += time.perf_counter() - tic_update
                history["iteration"].append(iteration)
                history["learning_rate"].append(eta)
                history["dkl_sampled_target"].append(dkl)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(dkl_median=f"{np.median(dkl):.4f}")
            sim.end()
            timing["run_wall_s"] += timed.run_wall_s
            timing["training_wall_s"] += time.perf_counter() - tic
            timing["iterations_timed"] += last - first
            history["segment_end"].append(last)
            history["segment_dkl_sampled_target"].append(
                [dkl_both(p / p.sum(), q)["dkl_sampled_target"] for p, q in zip(pooled, p_targets)])
            state.update(iteration=last, W=W.tolist(), b=b.tolist(), optimizer=optimizer.to_dict())
            if out_dir is not None:
                save_checkpoint(output_dir(out_dir), state)
            if stop_after is not None and last >= stop_after and last < config.iterations:
                return False
    finally:
        if bar is not None:
            bar.close()
    return True


def _write_outputs(result: TargetTrainingResult, out: Path) -> None:
    history = result.history
    per_iteration = np.asarray(history["dkl_sampled_target"], dtype=float)
    curves = {"median over targets, per iteration": np.median(per_iteration, axis=1)}
    files = {"dkl_per_iteration": plots.plot_learning_curve(
        history["iteration"], curves, out / "dkl_per_iteration.png",
        ylabel="D_KL(sampled || target) (nats)", logy=True,
        title=f"{result.config.sampling_ms:g} ms per iteration; after {result.config.eval_duration_ms:g} ms: "
              f"{np.median([d['dkl_sampled_target'] for d in result.dkl_initial]):.4f} -> "
              f"{np.median([d['dkl_sampled_target'] for d in result.dkl_final]):.4f}")}
    segments = np.asarray(history["segment_dkl_sampled_target"], dtype=float)
    files["dkl_per_segment"] = plots.plot_learning_curve(
        history["segment_end"], {f"target {k}": segments[:, k] for k in range(segments.shape[1])},
        out / "dkl_per_segment.png", ylabel="D_KL(sampled || target), pooled over a segment", logy=True)
    result.files = {name: Path(path).name for name, path in files.items()}
    write_json_atomic(out / "config.json", config_to_dict(result.config))
    write_json_atomic(out / "results.json", result.summary())
