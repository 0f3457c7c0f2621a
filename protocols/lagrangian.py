"""Real-time learning with Lagrangian dynamics: Latent Equilibrium vs the original dynamics.

Protocol: a frozen :class:`LagrangianConfig` (seed required) and :func:`run_lagrangian`, which trains
``n_seeds`` networks side by side (seeds ``seed .. seed + n_seeds - 1``; each seed draws its own
weights, data set and presentation order) by presenting every training pattern for ``t_pres`` ms with
the target nudging the output and plasticity always on (no separate settling or learning phase).
Test accuracy is measured in real time: test patterns are presented for ``t_pres`` ms each, without
target or plasticity, and classified by the output rates at the end of each presentation.  The
accuracy of the learned weights at equilibrium (a static forward pass) is reported as well, so a
failure to learn can be told apart from a failure to respond in time.

The learning rate is given per pattern presentation: ``eta = lr / (beta t_pres)`` (1/ms), so every
presentation time gets the same total plasticity per pattern.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cortexsim.results import write_results

from ..analysis.plots import plot_curve_panels
from ..models import datasets
from ..models.latent_equilibrium import LatentEquilibrium, LEParameters
from ..models.layered import LayeredNetwork, linear, logistic

__all__ = ["LagrangianConfig", "LagrangianResult", "run", "run_lagrangian", "task_defaults", "TASKS"]

logger = logging.getLogger(__name__)

TASKS = ("bars", "yinyang", "digits")
DYNAMICS = ("latent_equilibrium", "original")


@dataclass(frozen=True)
class LagrangianConfig:
    """Configuration of one real-time training run (all networks share it).

    Attributes
    ----------
    task : {"bars", "yinyang", "digits"}
        Bars (9-H-3), Yin-Yang (4-H-3) or digits (64-H-10).
    t_pres : float
        Presentation time per pattern in ms (> 0).
    seed : int
        First seed; network k uses seed + k for weights, data and order.
    n_seeds : int
        Number of networks trained side by side (>= 1).
    dynamics : {"latent_equilibrium", "original"}
        Prospective read-out (Latent Equilibrium) or membrane read-out (the original dynamics).
    errors : {"direct", "microcircuit"}
        Errors computed directly, or carried by interneurons and apical dendrites (microcircuit).
    tau : float
        Membrane time constant in ms.
    hidden : int
        Hidden layer size.
    epochs : int
        Passes through the training set.
    lr : float
        Learning rate per pattern presentation (dimensionless).
    beta : float
        Output nudging strength (dimensionless).
    dt_max : float
        Largest Euler step in ms; dt = t_pres / n_steps with n_steps = max(min_steps, ceil(t_pres/dt_max)).
    min_steps : int
        Fewest Euler steps per presentation.
    n_train, n_test : int
        Numbers of training and test patterns (digits: n_test only sets the test fraction).
    noise : float
        Pixel noise (standard deviation) of the Bars images.
    eval_every : int
        Measure test accuracy every this many epochs (and after the last).
    lr_decay : float
        Factor in (0, 1] applied to the learning rate after every epoch.
    init_input_scale : float
        Input-to-hidden weights start as N(0, init_input_scale^2 / n_in) (> 0).
    init_hidden_bias : float
        Hidden biases start as N(0, init_hidden_bias^2) (>= 0).
    error_iterations : int
        Sweeps of the error equations per Euler step (1: explicit scheme, errors lag one step;
        see :class:`cortexsim.models.latent_equilibrium.LEParameters`).
    error_relaxation : float
        Relaxation factor in (0, 1] of each error sweep.
    hidden_lr_factor : float
        Factor (> 0) multiplying the learning rate of the input-to-hidden weights and hidden biases.
    """

    task: str
    t_pres: float
    seed: int
    n_seeds: int = 5
    dynamics: str = "latent_equilibrium"
    errors: str = "direct"
    tau: float = 10.0
    hidden: int = 30
    epochs: int = 200
    lr: float = 0.3
    beta: float = 0.1
    dt_max: float = 1.0
    min_steps: int = 10
    n_train: int = 24
    n_test: int = 48
    noise: float = 0.1
    eval_every: int = 20
    lr_decay: float = 1.0
    init_input_scale: float = 1.0
    init_hidden_bias: float = 0.0
    error_iterations: int = 1
    error_relaxation: float = 1.0
    hidden_lr_factor: float = 1.0

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.dynamics not in DYNAMICS:
            raise ValueError(f"dynamics must be one of {DYNAMICS}, got {self.dynamics!r}")
        if not self.t_pres > 0:
            raise ValueError(f"t_pres must be > 0 ms, got {self.t_pres}")
        for name in ("n_seeds", "hidden", "epochs", "min_steps", "n_train", "n_test", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], got {self.lr_decay}")
        if not self.init_hidden_bias >= 0:
            raise ValueError(f"init_hidden_bias must be >= 0, got {self.init_hidden_bias}")
        for name in ("tau", "lr", "beta", "dt_max", "init_input_scale", "hidden_lr_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def n_steps(self) -> int:
        """Euler steps per presentation."""
        return max(self.min_steps, math.ceil(self.t_pres / self.dt_max - 1e-9))

    @property
    def dt(self) -> float:
        """Euler step in ms."""
        return self.t_pres / self.n_steps

    def parameters(self, epoch: int = 1) -> LEParameters:
        """Dynamics parameters during ``epoch`` (1-based; the learning rate decays per epoch)."""
        eta = self.lr * self.lr_decay ** (epoch - 1) / (self.beta * self.t_pres)
        return LEParameters(tau=self.tau, dt=min(self.dt, self.tau), beta=self.beta, eta=eta, eta_bias=eta,
                            prospective=self.dynamics == "latent_equilibrium", errors=self.errors,
                            eta_ip=eta if self.errors == "microcircuit" else 0.0,
                            eta_pi=eta if self.errors == "microcircuit" else 0.0,
                            error_iterations=self.error_iterations, error_relaxation=self.error_relaxation,
                            eta_layer_factors=() if self.hidden_lr_factor == 1.0 else (self.hidden_lr_factor, 1.0))


@dataclass
class LagrangianResult:
    """Outcome of :func:`run_lagrangian`: accuracies per seed and the learning curves."""

    config: dict
    seeds: list
    realtime_test_accuracy: list
    settled_test_accuracy: list
    train_accuracy: list
    curve_epochs: list
    curve_realtime_accuracy: list
    wall_time_s: float
    versions: dict = field(default_factory=dict)
    files: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """Everything, as ``results.json`` holds it."""
        return asdict(self) | {"summary": self.summary()}

    def summary(self) -> dict:
        """Headline figures: real-time and settled test accuracy over the seeds."""
        rt = np.asarray(self.realtime_test_accuracy)
        st = np.asarray(self.settled_test_accuracy)
        return {"realtime_mean": float(rt.mean()), "realtime_std": float(rt.std(ddof=1)) if rt.size > 1 else 0.0,
                "realtime_min": float(rt.min()), "settled_mean": float(st.mean()),
                "settled_min": float(st.min())}


def _task_data(cfg: LagrangianConfig, seed: int):
    if cfg.task == "bars":
        return (datasets.bars(cfg.n_train, seed=seed, noise=cfg.noise),
                datasets.bars(cfg.n_test, seed=seed + 10_000, noise=cfg.noise))
    if cfg.task == "yinyang":
        return datasets.yinyang(cfg.n_train, seed=seed), datasets.yinyang(cfg.n_test, seed=seed + 10_000)
    data = datasets.digits()
    return datasets.train_test_split(data, cfg.n_test / len(data), seed=seed)


def versions() -> dict:
    """Library versions and machine facts recorded with every result."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform(),
           "cpu_count": __import__("os").cpu_count(), "numpy": np.__version__}
    for pkg in ("brian2", "cortexsim"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def initial_network(cfg: LagrangianConfig, sizes: list, seed: int) -> LayeredNetwork:
    """Logistic hidden layer, linear output; input weights and hidden biases scaled per ``cfg``."""
    net = LayeredNetwork.random(sizes, seed=seed, hidden=logistic(), output=linear())
    net.weights[0] *= cfg.init_input_scale
    if cfg.init_hidden_bias > 0:
        net.biases[0] = np.random.default_rng(seed + 30_000).normal(0.0, cfg.init_hidden_bias, sizes[1])
    return net


def realtime_accuracy(sim: LatentEquilibrium, xs: np.ndarray, labels: np.ndarray, n_steps: int) -> np.ndarray:
    """Present patterns xs (S, P, n_in) for n_steps each without target or plasticity.

    Returns the per-network fraction of patterns whose largest output at the end of the
    presentation is the label (labels (S, P)).
    """
    correct = np.zeros(xs.shape[0])
    for k in range(xs.shape[1]):
        out = sim.present(xs[:, k], None, n_steps, learn=False)
        correct += np.argmax(out, axis=1) == labels[:, k]
    return correct / xs.shape[1]


def run(cfg: LagrangianConfig, out_dir: str | Path | None = None, progress: bool = False) -> LagrangianResult:
    """The protocol behind ``cortexsim lagrangian`` (:func:`run_lagrangian`)."""
    return run_lagrangian(cfg, out_dir, progress)


def run_lagrangian(cfg: LagrangianConfig, out_dir: str | Path | None = None,
                   progress: bool = False) -> LagrangianResult:
    """Train ``cfg.n_seeds`` networks in real time; optionally write results.json and a figure."""
    start = time.perf_counter()
    seeds = [cfg.seed + k for k in range(cfg.n_seeds)]
    splits = [_task_data(cfg, s) for s in seeds]
    n_train = min(len(tr) for tr, _ in splits)
    n_test = min(len(te) for _, te in splits)
    train_x = np.stack([tr.x[:n_train] for tr, _ in splits])
    train_t = np.stack([tr.targets[:n_train] for tr, _ in splits])
    test_x = np.stack([te.x[:n_test] for _, te in splits])
    test_y = np.stack([te.y[:n_test] for _, te in splits])
    sizes = [train_x.shape[2], cfg.hidden, train_t.shape[2]]
    nets = [initial_network(cfg, sizes, s) for s in seeds]
    sim = LatentEquilibrium(nets, cfg.parameters())
    orders = [np.random.default_rng(s + 20_000) for s in seeds]
    rows = np.arange(cfg.n_seeds)
    curve_epochs, curve_acc = [], []
    for epoch in range(1, cfg.epochs + 1):
        sim.params = cfg.parameters(epoch)
        perm = np.stack([rng.permutation(n_train) for rng in orders])
        for k in range(n_train):
            sim.present(train_x[rows, perm[:, k]], train_t[rows, perm[:, k]], cfg.n_steps, learn=True)
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            acc = realtime_accuracy(sim, test_x, test_y, cfg.n_steps)
            curve_epochs.append(epoch)
            curve_acc.append(acc.tolist())
            if progress:
                logger.info(f"[lagrangian] {cfg.task} {cfg.dynamics} t_pres={cfg.t_pres} ms epoch {epoch}: "
                      f"real-time test accuracy {np.round(acc, 3).tolist()}")
    final_nets = sim.networks()
    settled = [net.accuracy(te.x, te.y) for net, (_, te) in zip(final_nets, splits)]
    train_acc = [net.accuracy(tr.x, tr.y) for net, (tr, _) in zip(final_nets, splits)]
    result = LagrangianResult(config=asdict(cfg) | {"n_steps": cfg.n_steps, "dt": cfg.dt, "sizes": sizes},
                              seeds=seeds, realtime_test_accuracy=curve_acc[-1], settled_test_accuracy=settled,
                              train_accuracy=train_acc, curve_epochs=curve_epochs, curve_realtime_accuracy=curve_acc,
                              wall_time_s=time.perf_counter() - start, versions=versions())
    if out_dir is not None:
        write_result(result, Path(out_dir), cfg)
    return result


def write_result(result: LagrangianResult, out_dir: Path, config: LagrangianConfig | None = None) -> None:
    """Write results.json (and config.json) and learning_curve.png into ``out_dir``."""
    acc = np.asarray(result.curve_realtime_accuracy)
    cfg = result.config
    label = "real-time test accuracy (%)"
    plot_curve_panels(result.curve_epochs, {label: {f"seed {seed}": 100 * acc[:, k]
                                                    for k, seed in enumerate(result.seeds)}},
                      Path(out_dir) / "learning_curve.png", xlabel="epoch", ylim={label: (0, 102)},
                      title=f"{cfg['task']}, {cfg['dynamics']}, t_pres = {cfg['t_pres']} ms")
    result.files = ["results.json", "learning_curve.png"]
    write_results(out_dir, result.to_dict(), config)


def task_defaults(task: str) -> dict:
    """Network size and learning settings per task (the ones benchmarks/lagrangian_*.py use)."""
    if task == "yinyang":
        return {"hidden": 120, "n_train": 3000, "n_test": 1000, "lr": 0.05, "min_steps": 3, "dt_max": 0.5,
                "epochs": 80, "init_input_scale": 10.0, "init_hidden_bias": 5.0, "eval_every": 10,
                "lr_decay": 0.97, "hidden_lr_factor": 10.0, "error_iterations": 3, "error_relaxation": 0.7}
    if task == "digits":
        return {"hidden": 100, "n_test": 360, "lr": 0.05, "min_steps": 5, "epochs": 50}
    return {"hidden": 30, "n_train": 24, "n_test": 48, "noise": 0.1, "lr": 0.3, "dt_max": 1.0, "epochs": 200,
            "eval_every": 20}
