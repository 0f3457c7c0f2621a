"""Contrastive-divergence training of LIF sampling networks on their own spiking samples.

Target-distribution task (:func:`train_target`): the network should sample from target Boltzmann
machines p*. Each iteration runs the network freely for ``sampling_ms``, reads the time-continuous
joint distribution of its states, and moves (W, b) along ``<.>_p* - <.>_sampled`` (the data statistics
are the exact moments of p*, references §3). Several independent targets train side by side as the
blocks of one block-diagonal network in one simulation. D_KL(sampled || target) is measured over
``eval_duration_ms`` before and after training, and from every iteration's samples (learning curve).

Training is the CD engine (:func:`cortexsim.protocols.cd_engine.train_cd`) with a factory that builds a
Poisson-driven :class:`~cortexsim.models.sampling_network.SamplingNetwork` of the block-diagonal BM and
the statistics function :class:`~cortexsim.protocols.cd_engine.TargetStatistics`. The network is built
once per checkpoint segment and updated in place between iterations; see
:mod:`cortexsim.protocols.cd_engine` for why segments make resumption bit-identical on NEST.
The digits task lives in :mod:`cortexsim.protocols.cd_digits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cortexsim.checks import check_choice, check_non_negative
from cortexsim.config import config_to_dict
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from cortexsim.results import describe_differences, library_versions, machine_info, output_dir, write_results
from cortexsim.seeds import check_seed, derive_seed
from cortexsim.timegrid import check_duration

from ..analysis import plots
from ..analysis.divergence import dkl_both
from ..analysis.states import joint_distribution
from ..backends.registry import backend_info, check_backend_seed, check_dt, chip_booking, load_backend
from ..models.boltzmann import MAX_EXACT_UNITS, BoltzmannMachine, joint, random_bm
from ..models.cd_learning import block_diagonal_mask
from ..models.sampling_network import SYNAPSE_KINDS, build_sampling_network
from .calibration import CalibrationConfig, calibrate
from .cd_engine import (CDSettings, CDState, TargetStatistics, block_slices, compose_blocks, load_checkpoint,
                        save_checkpoint, train_cd, training_energy)
from .progress import run_with_progress

__all__ = ["TargetTrainingConfig", "TargetTrainingResult", "run", "train_target", "INIT_KINDS"]

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
    target_file : str, optional
        Instead: a JSON file ``{"W": [[...]], "b": [...]}`` holding the one target BM (at most 20 units).
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
    target_file: str | None = None
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
        backend_info(self.backend)
        check_backend_seed(self.backend, self.seed)
        check_dt(self.backend, self.dt_ms)
        check_choice(self.synapses, "synapses", SYNAPSE_KINDS)
        self.cd_settings()  # iterations, sampling time, optimizer, checkpoint_every, burn-in
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
        check_non_negative(self.init_scale, "init_scale")
        for name in ("sampling_ms", "eval_duration_ms"):      # whole steps of dt: every valid duration runs
            check_duration(getattr(self, name), self.dt_ms, name)

    def calibration(self) -> CalibrationConfig:
        return CalibrationConfig(seed=self.seed, backend=self.backend, neuron=self.neuron,
                                 noise=self.noise, dt_ms=self.dt_ms)

    def cd_settings(self) -> CDSettings:
        """How the CD engine trains (constant sampling time, last iterate, segments of checkpoint_every)."""
        return CDSettings(iterations=self.iterations, sampling_ms=self.sampling_ms, learning_rate=self.learning_rate,
                          schedule=self.schedule, schedule_tau=self.schedule_tau, momentum=self.momentum,
                          weight_decay=self.weight_decay, dt_ms=self.dt_ms, checkpoint_every=self.checkpoint_every,
                          burn_in_ms=self.burn_in_ms)


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
    energy: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Headline figures: median over targets of D_KL(sampled || target) after ``eval_duration_ms``,
        before and after training, the share of wall time spent outside ``sim.run`` and the energy per
        training iteration (J; :func:`cortexsim.protocols.cd_engine.training_energy`)."""
        forward = lambda rows: float(np.median([row["dkl_sampled_target"] for row in rows]))  # noqa: E731
        return {"dkl_initial": forward(self.dkl_initial), "dkl_final": forward(self.dkl_final),
                "iterations": self.config.iterations, "backend": self.config.backend,
                "overhead_fraction": self.timing.get("overhead_fraction"),
                "energy_j_per_iteration": self.energy.get("j_per_iteration"), "energy_model": self.energy.get("model")}

    def to_dict(self) -> dict:
        """Everything, as ``results.json`` holds it (``dkl_initial``/``dkl_final``: medians over targets)."""
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
            "energy": self.energy,
            "versions": library_versions(),
            "machine": machine_info(),
            "files": self.files,
        }


def _evaluate(config, sim, fit, bms, targets, duration_ms, seed, progress=False) -> list[dict]:
    """D_KL against ``targets`` of networks representing ``bms``, sampled for ``duration_ms`` (one simulation)."""
    blocks = block_slices([bm.n_units for bm in bms])
    sim.setup(timestep=config.dt_ms, seed=seed)
    network = build_sampling_network(sim, compose_blocks(bms), fit, config.neuron, config.noise, config.synapses)
    run_with_progress(sim, config.burn_in_ms + duration_ms, enabled=progress, label="evaluation")
    spiketrains = network.spiketrains(clear=True)
    sim.end()
    t0 = config.burn_in_ms
    return [dkl_both(joint_distribution(spiketrains[s], config.neuron.tau_refrac, t0, t0 + duration_ms),
                     joint(target)) for s, target in zip(blocks, targets)]


def _fresh_state(config: TargetTrainingConfig, targets: list) -> dict:
    if config.init == "translated":
        starts = list(targets)
    else:
        starts = [random_bm(bm.n_units, seed=derive_seed(config.seed, 7, k), weight_scale=config.init_scale,
                            bias_scale=config.init_scale) for k, bm in enumerate(targets)]
    start = compose_blocks(starts)
    mask = block_diagonal_mask([bm.n_units for bm in targets])
    return {"task": "target", "initial": [bm.to_dict() for bm in starts],
            "targets": [bm.to_dict() for bm in targets], "dkl_initial": None,
            "cd": CDState.fresh(start.W, start.b, config.cd_settings(), mask).to_dict()}


def run(config: TargetTrainingConfig, out_dir: str | Path | None = None, progress: bool = False,
        resume: bool = False) -> TargetTrainingResult:
    """The protocol behind ``cortexsim train-cd --task target``: :func:`train_target` on ``config.target_file``
    (or random targets); ``resume`` continues the run whose checkpoint is in ``out_dir``."""
    targets = [BoltzmannMachine.from_json(config.target_file)] if config.target_file is not None else None
    return train_target(config, targets=targets, out_dir=out_dir, resume=resume, progress=progress)


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
    if resume:      # checked before the calibration, which may simulate
        state = load_checkpoint(out_dir, "target", config_to_dict(config),
                                template={**_fresh_state(config, targets), "dkl_initial": None})
        if state["targets"] != [bm.to_dict() for bm in targets]:
            raise ValueError(f"{Path(out_dir) / 'checkpoint.json'} was written for other target BMs "
                             f"(targets: {describe_differences(state['targets'], [bm.to_dict() for bm in targets])}); "
                             f"resume with the same --bm or start a new run with --overwrite")
    else:
        state = _fresh_state(config, targets)
        state["config"] = config_to_dict(config)
    if fit is None:
        fit = calibrate(config.calibration(), progress=progress).fit
    sim = load_backend(config.backend)
    save = (lambda cd: save_checkpoint(output_dir(out_dir), {**state, "cd": cd.to_dict()})) if out_dir else None
    if state["dkl_initial"] is None:
        initial = [BoltzmannMachine.from_dict(d) for d in state["initial"]]
        state["dkl_initial"] = _evaluate(config, sim, fit, initial, targets, config.eval_duration_ms,
                                         derive_seed(config.seed, 1, 0), progress)
        if out_dir is not None:
            save_checkpoint(output_dir(out_dir), state)
    cd = CDState.from_dict(state["cd"])
    settings = config.cd_settings()
    mask = block_diagonal_mask([bm.n_units for bm in targets])

    def build(sim, W, b, first_iteration):
        sim.setup(timestep=config.dt_ms, seed=derive_seed(config.seed, 0, first_iteration))
        return build_sampling_network(sim, BoltzmannMachine(W, b), fit, config.neuron, config.noise, config.synapses,
                                      connectivity=mask)  # both receptors where a trained weight may change sign

    finished = train_cd(build, TargetStatistics(targets, config.neuron.tau_refrac), settings, cd, sim, mask,
                        save=save, progress=progress, label=f"CD on {config.backend}",
                        stop_after_iteration=stop_after_iteration)
    if not finished:
        return None
    W, b = cd.trained(settings, mask)
    final = [BoltzmannMachine(W[s, s], b[s]) for s in block_slices([bm.n_units for bm in targets])]
    dkl_final = _evaluate(config, sim, fit, final, targets, config.eval_duration_ms, derive_seed(config.seed, 2, 0),
                          progress)
    result = TargetTrainingResult(config, targets, [BoltzmannMachine.from_dict(d) for d in state["initial"]],
                                  final, state["dkl_initial"], dkl_final, cd.history, dict(cd.timing), fit,
                                  energy=training_energy(cd.timing) or {})
    if out_dir is not None:
        _write_outputs(result, output_dir(out_dir), chip_booking(sim))
    return result


def _write_outputs(result: TargetTrainingResult, out: Path, chip: dict | None = None) -> None:
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
    write_results(out, result.to_dict(), result.config, chip)
