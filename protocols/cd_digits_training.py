"""Digits task driver: exact pre-training and baseline, spiking fine-tuning with checkpoints, evaluation.

See :mod:`cortexsim.protocols.cd_digits` for the model and the phases. ``results.json`` holds
``test_accuracy`` and ``completion_error`` (spiking network after fine-tuning), the same before
fine-tuning, and ``baseline_test_accuracy`` / ``baseline_completion_error`` (exact Gibbs, same sizes,
same number of updates).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cortexsim.config import config_to_dict
from cortexsim.results import library_versions, machine_info, output_dir, write_json_atomic
from cortexsim.seeds import derive_seed

from ..analysis import plots
from ..backends.registry import load_backend
from ..models.boltzmann import BoltzmannMachine
from ..models.cd_learning import LearningRateSchedule, MomentumOptimizer, bipartite_mask, cd_gradient
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from ..models.sampling_network import build_sampling_network
from .calibration import CalibrationConfig, calibrate
from .cd_digits import (N_PIXELS, N_VISIBLE, TOP_HALF, evaluate_exact, evaluate_spiking, free_energy_accuracy,
                        initial_rbm, load_digits_split, spiking_iteration, spiking_scores, train_exact)
from .cd_network import (TimedSimulator, apply_bm, check_training_settings, load_checkpoint,
                         rng_from_state, save_checkpoint)

__all__ = ["DigitsTrainingConfig", "DigitsTrainingResult", "train_digits"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DigitsTrainingConfig:
    """Settings of the digits task (times in ms; learning rates dimensionless).

    Attributes
    ----------
    seed : int
        Seed (required): data split, initial weights, mini-batches, Gibbs chains, simulator seeds.
    backend : str
        Registered backend name.
    n_hidden : int
        Hidden units (>= 1); the network has 74 + n_hidden neurons.
    binarize_threshold : float
        Pixel threshold in (0, 1) (pixels are scaled to [0, 1]).
    test_fraction : float
        Share of held-out images, in (0, 1).
    pretrain_iterations, pretrain_learning_rate, pretrain_schedule_tau, pretrain_batch_size : int, float, float, int
        Exact-sampler pre-training (0 iterations: the spiking network starts from small random weights).
    iterations : int
        Spiking fine-tuning updates; the exact baseline makes as many further updates.
    batch_size : int
        Training images clamped per iteration (spiking and baseline fine-tuning).
    learning_rate, schedule, schedule_tau, momentum, weight_decay
        Optimizer of the fine-tuning (and of pre-training, except rate and tau).
    gibbs_chains : int
        Persistent chains of the exact sampler's model phase.
    clamp_ms, settle_ms, model_ms : float
        Clamp time per image, discarded start of each clamp, free-running time per iteration.
    clamp_bias : float
        Bias magnitude that clamps a unit (BM units, > 0).
    readout_dt_ms : float
        Grid on which spiking states are read (ms).
    eval_settle_ms, eval_read_ms : float
        Per test image: settling time and read-out time of the spiking inference.
    eval_gibbs_sweeps, eval_gibbs_burn_in : int
        Exact inference: sweeps and discarded sweeps per test image.
    n_test_images : int
        Test images used for classification (the first ones of the test split); 0: all.
    n_completion_images : int
        Test images used for pattern completion (the first ones of the test split).
    checkpoint_every : int
        Iterations per segment (fresh simulation, checkpoint at its end).
    dt_ms, synapses, neuron, noise
        Simulation step (ms), recurrent synapse kind, neuron and noise parameters.
    """

    seed: int
    backend: str = "nest"
    n_hidden: int = 100
    binarize_threshold: float = 0.5
    test_fraction: float = 0.2
    pretrain_iterations: int = 10000
    pretrain_learning_rate: float = 0.05
    pretrain_schedule_tau: float = 1000.0
    pretrain_batch_size: int = 20
    iterations: int = 200
    batch_size: int = 10
    learning_rate: float = 0.005
    schedule: str = "inverse"
    schedule_tau: float = 100.0
    momentum: float = 0.5
    weight_decay: float = 0.001
    gibbs_chains: int = 20
    clamp_ms: float = 60.0
    settle_ms: float = 20.0
    model_ms: float = 400.0
    clamp_bias: float = 40.0
    readout_dt_ms: float = 1.0
    eval_settle_ms: float = 20.0
    eval_read_ms: float = 200.0
    eval_gibbs_sweeps: int = 50
    eval_gibbs_burn_in: int = 5
    n_test_images: int = 0
    n_completion_images: int = 100
    checkpoint_every: int = 25
    dt_ms: float = 0.1
    synapses: str = "renewing"
    neuron: NeuronParameters = DEFAULT_NEURON
    noise: NoiseParameters = DEFAULT_NOISE

    def __post_init__(self):
        check_training_settings(self)
        LearningRateSchedule(self.pretrain_learning_rate, self.schedule, self.pretrain_schedule_tau)
        if int(self.n_hidden) < 1:
            raise ValueError(f"n_hidden must be >= 1, got {self.n_hidden}")
        if not 0.0 < self.binarize_threshold < 1.0:
            raise ValueError(f"binarize_threshold must lie in (0, 1), got {self.binarize_threshold}")
        if int(self.pretrain_iterations) < 0:
            raise ValueError(f"pretrain_iterations must be >= 0, got {self.pretrain_iterations}")
        for name in ("batch_size", "pretrain_batch_size", "gibbs_chains", "eval_gibbs_sweeps", "n_completion_images"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.n_test_images) < 0:
            raise ValueError(f"n_test_images must be >= 0 (0: all), got {self.n_test_images}")
        if not 0 <= self.eval_gibbs_burn_in < self.eval_gibbs_sweeps:
            raise ValueError(f"eval_gibbs_burn_in must lie in [0, eval_gibbs_sweeps), got {self.eval_gibbs_burn_in}")
        for name in ("clamp_ms", "model_ms", "clamp_bias", "readout_dt_ms", "eval_read_ms"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")
        if not 0 <= self.settle_ms < self.clamp_ms:
            raise ValueError(f"settle_ms must lie in [0, clamp_ms) ms, got {self.settle_ms}")
        if not np.isfinite(self.eval_settle_ms) or self.eval_settle_ms < 0:
            raise ValueError(f"eval_settle_ms must be >= 0 ms, got {self.eval_settle_ms}")

    def calibration(self) -> CalibrationConfig:
        return CalibrationConfig(seed=self.seed, backend=self.backend, neuron=self.neuron,
                                 noise=self.noise, dt_ms=self.dt_ms)


@dataclass
class DigitsTrainingResult:
    """Outcome of :func:`train_digits`."""

    config: DigitsTrainingConfig
    scores: dict
    history: dict
    timing: dict
    fit: ActivationFit
    final: BoltzmannMachine
    files: dict = field(default_factory=dict)

    def summary(self) -> dict:
        s = self.scores
        return {"task": "digits",
                "test_accuracy": s["spiking_after"]["accuracy"],
                "completion_error": s["spiking_after"]["completion_error"],
                "test_accuracy_before_finetuning": s["spiking_before"]["accuracy"],
                "completion_error_before_finetuning": s["spiking_before"]["completion_error"],
                "baseline_test_accuracy": s["baseline"]["accuracy"],
                "baseline_completion_error": s["baseline"]["completion_error"],
                "pretrained_exact": s["pretrained_exact"],
                "completion_error_definition": "fraction of wrong pixels in the bottom half, top half clamped",
                "config": config_to_dict(self.config), "activation_fit": self.fit.to_dict(),
                "history": self.history, "timing": self.timing, "versions": library_versions(),
                "machine": machine_info(), "files": self.files}


def _prepare(config: DigitsTrainingConfig, data, test_x, test_y) -> dict:
    """Exact pre-training and the exact baseline (pure numpy, deterministic in the seed)."""
    rng = np.random.default_rng(derive_seed(config.seed, 11))
    start = initial_rbm(config.n_hidden, rng)
    W, b = np.array(start.W), np.array(start.b)
    chains = data[rng.integers(0, data.shape[0], config.gibbs_chains)].copy()
    optimizer = MomentumOptimizer.create(W.shape[0], config.momentum, config.weight_decay)
    pre_schedule = LearningRateSchedule(config.pretrain_learning_rate, config.schedule, config.pretrain_schedule_tau)
    curve = []
    if config.pretrain_iterations:
        W, b, chains, curve = train_exact(W, b, optimizer, pre_schedule, data, config.pretrain_iterations,
                                          config.pretrain_batch_size, chains, rng,
                                          curve_every=max(1, config.pretrain_iterations // 20),
                                          curve_data=(test_x, test_y))
    pre_W, pre_b = W.copy(), b.copy()
    eval_rng = np.random.default_rng(derive_seed(config.seed, 12))
    completion = test_x[:config.n_completion_images]
    pretrained = evaluate_exact(W, b, test_x, test_y, config.eval_gibbs_sweeps, config.eval_gibbs_burn_in,
                                eval_rng, completion)
    fine_optimizer = MomentumOptimizer.create(W.shape[0], config.momentum, config.weight_decay)
    schedule = LearningRateSchedule(config.learning_rate, config.schedule, config.schedule_tau)
    base_W, base_b, _, base_curve = train_exact(W, b, fine_optimizer, schedule, data, config.iterations,
                                                config.batch_size, chains, rng,
                                                curve_every=config.checkpoint_every, curve_data=(test_x, test_y))
    baseline = evaluate_exact(base_W, base_b, test_x, test_y, config.eval_gibbs_sweeps, config.eval_gibbs_burn_in,
                              eval_rng, completion)
    return {"W": pre_W.tolist(), "b": pre_b.tolist(), "pretrained_exact": pretrained, "baseline": baseline,
            "pretrain_curve": curve, "baseline_curve": base_curve}


def _spiking_eval(config, sim, fit, W, b, test_x, test_y, seed, progress=False, label="") -> dict:
    if progress:
        per_image = config.eval_settle_ms + config.eval_read_ms
        logger.info(f"spiking evaluation {label}: {len(test_x)} images (classification) + "
              f"{min(len(test_x), config.n_completion_images)} (completion), {per_image:g} ms each")
    sim.setup(timestep=config.dt_ms, seed=seed)
    network = build_sampling_network(sim, BoltzmannMachine(W, b), fit, config.neuron, config.noise, config.synapses)
    timed = TimedSimulator(sim)
    classify = evaluate_spiking(network, timed, test_x, np.arange(N_PIXELS), config)
    completion = test_x[:config.n_completion_images]
    complete = evaluate_spiking(network, timed, completion, TOP_HALF, config)
    sim.end()
    return spiking_scores(classify, test_y, complete, completion)


def train_digits(config: DigitsTrainingConfig, fit: ActivationFit | None = None, out_dir: str | Path | None = None,
                 resume: bool = False, progress: bool = False,
                 stop_after_iteration: int | None = None) -> DigitsTrainingResult | None:
    """Run the digits task (see module docstring); returns None if stopped early by ``stop_after_iteration``."""
    if resume and out_dir is None:
        raise ValueError("resume needs out_dir (the folder holding checkpoint.json)")
    if fit is None:
        fit = calibrate(config.calibration(), progress=progress).fit
    data, _, test_x, test_y = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)
    if config.n_test_images:
        test_x, test_y = test_x[:config.n_test_images], test_y[:config.n_test_images]
    sim = load_backend(config.backend)
    if resume:
        state = load_checkpoint(out_dir, "digits")
        if state["config"] != config_to_dict(config):
            raise ValueError("the checkpoint was written with another config; resume with the same settings")
    else:
        if progress:
            logger.info(f"exact sampler (numpy): {config.pretrain_iterations} pre-training and {config.iterations} "
                  f"baseline updates")
        prepared = _prepare(config, data, test_x, test_y)
        optimizer = MomentumOptimizer.create(len(prepared["b"]), config.momentum, config.weight_decay)
        state = {"task": "digits", "config": config_to_dict(config), "iteration": 0, "prepared": prepared,
                 "W": prepared["W"], "b": prepared["b"], "optimizer": optimizer.to_dict(),
                 "rng": np.random.default_rng(derive_seed(config.seed, 13)).bit_generator.state,
                 "spiking_before": None,
                 "history": {"iteration": [], "learning_rate": [], "gradient_norm": [], "model_mean_activity": [],
                             "segment_end": [], "segment_exact_accuracy": []},
                 "timing": {"training_wall_s": 0.0, "run_wall_s": 0.0, "iterations_timed": 0}}
    if state["spiking_before"] is None:
        state["spiking_before"] = _spiking_eval(config, sim, fit, np.asarray(state["W"]), np.asarray(state["b"]),
                                                test_x, test_y, derive_seed(config.seed, 14), progress,
                                                "before fine-tuning")
        if out_dir is not None:
            save_checkpoint(output_dir(out_dir), state)
    if not _fine_tune(config, state, sim, fit, data, test_x, test_y, out_dir, progress, stop_after_iteration):
        return None
    W, b = np.asarray(state["W"]), np.asarray(state["b"])
    after = _spiking_eval(config, sim, fit, W, b, test_x, test_y, derive_seed(config.seed, 15), progress,
                          "after fine-tuning")
    prepared = state["prepared"]
    timing = dict(state["timing"])
    timing["overhead_fraction"] = 1.0 - timing["run_wall_s"] / max(timing["training_wall_s"], 1e-12)
    scores = {"spiking_before": state["spiking_before"], "spiking_after": after,
              "baseline": prepared["baseline"], "pretrained_exact": prepared["pretrained_exact"]}
    history = dict(state["history"], pretrain_curve=prepared["pretrain_curve"],
                   baseline_curve=prepared["baseline_curve"])
    result = DigitsTrainingResult(config, scores, history, timing, fit, BoltzmannMachine(W, b))
    if out_dir is not None:
        _write_outputs(result, output_dir(out_dir))
    return result


def _fine_tune(config, state, sim, fit, data, test_x, test_y, out_dir, progress, stop_after) -> bool:
    schedule = LearningRateSchedule(config.learning_rate, config.schedule, config.schedule_tau)
    optimizer = MomentumOptimizer.from_dict(state["optimizer"])
    rng = rng_from_state(state["rng"])
    mask = bipartite_mask(N_VISIBLE, config.n_hidden)
    W, b = np.asarray(state["W"], dtype=float), np.asarray(state["b"], dtype=float)
    history, timing = state["history"], state["timing"]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=config.iterations, initial=state["iteration"], desc=f"CD digits on {config.backend}",
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
            for iteration in range(first, last):
                batch = data[rng.integers(0, data.shape[0], config.batch_size)]
                data_moments, model_moments = spiking_iteration(network, timed, batch, config)
                grad_W, grad_b = cd_gradient(data_moments, model_moments, mask)
                eta = schedule.rate(iteration)
                W, b = optimizer.step(W, b, grad_W, grad_b, eta, mask)
                apply_bm(network, BoltzmannMachine(W, b))
                history["iteration"].append(iteration)
                history["learning_rate"].append(eta)
                history["gradient_norm"].append(float(np.sqrt(np.sum(grad_W**2) / 2 + np.sum(grad_b**2))))
                history["model_mean_activity"].append(float(np.mean(model_moments[0])))
                if bar is not None:
                    bar.update(1)
            sim.end()
            timing["run_wall_s"] += timed.run_wall_s
            timing["training_wall_s"] += time.perf_counter() - tic
            timing["iterations_timed"] += last - first
            history["segment_end"].append(last)
            history["segment_exact_accuracy"].append(free_energy_accuracy(W, b, test_x, test_y))
            state.update(iteration=last, W=W.tolist(), b=b.tolist(), optimizer=optimizer.to_dict(),
                         rng=rng.bit_generator.state)
            if out_dir is not None:
                save_checkpoint(output_dir(out_dir), state)
            if stop_after is not None and stop_after <= last < config.iterations:
                return False
    finally:
        if bar is not None:
            bar.close()
    return True


def _write_outputs(result: DigitsTrainingResult, out: Path) -> None:
    h = result.history
    files = {"gradient_norm": plots.plot_learning_curve(
        h["iteration"], {"|CD update direction| (spiking)": np.asarray(h["gradient_norm"])},
        out / "gradient_norm.png", ylabel="norm of <.>_data - <.>_model", logy=True)}
    if h["pretrain_curve"]:
        curve = np.asarray(h["pretrain_curve"], dtype=float)
        files["pretrain_accuracy"] = plots.plot_learning_curve(
            curve[:, 0], {"exact free-energy test accuracy": curve[:, 1]}, out / "pretrain_accuracy.png",
            ylabel="test accuracy", title="exact-sampler pre-training")
    if h["segment_end"]:
        files["finetune_accuracy"] = plots.plot_learning_curve(
            h["segment_end"],
            {"spiking fine-tuning (exact free-energy read-out)": np.asarray(h["segment_exact_accuracy"])},
            out / "finetune_accuracy.png", ylabel="test accuracy")
    result.files = {name: Path(path).name for name, path in files.items()}
    write_json_atomic(out / "config.json", config_to_dict(result.config))
    write_json_atomic(out / "results.json", result.summary())
