"""Latent Equilibrium on MNIST and Fashion-MNIST (Haider et al. 2021's setting), with its references.

``run_lagrangian_images(cfg, out_dir)`` trains a 784-300-100-10 network (hard-sigmoid hidden units,
linear output) in real time: every training image is shown for ``t_pres`` ms (tau / 20 by default)
with the target nudging the output and plasticity always on, ``copies`` images side by side with
shared synapses (:class:`cortexsim.models.latent_equilibrium.LatentEquilibrium` with ``copies``; a
time-continuous mini-batch). Dynamics:

* "latent_equilibrium": prospective read-out (LE);
* "original": membrane read-out (the energy-based dynamics before LE), same presentation time;
* "backprop": plain mini-batch backprop of the same network (same initial weights, data order, batch,
  epochs and per-sample learning rates): the reference.

The learning rate is given per presentation and sample: a presentation changes layer l's weights by
about ``lr * layer_lr_factors[l] * e_l r_{l-1}^T`` (``eta = lr / (beta t_pres)``), which for LE at
equilibrium is backprop's step with the same rates. Test accuracy of LE and the original dynamics is
measured in real time (each test image shown for ``t_pres`` without target, classified by the output
rates at its end); the accuracy of the learned weights in a static forward pass is reported as
``settled_test_accuracy``. Times in ms.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cortexsim.models.latent_equilibrium import LatentEquilibrium, LEParameters
from cortexsim.models.layered import LayeredNetwork, hard_sigmoid, linear
from cortexsim.results import library_versions, machine_info, write_results

__all__ = ["ImageLagrangianConfig", "ImageLagrangianResult", "run", "run_lagrangian_images", "IMAGE_TASKS",
           "IMAGE_DYNAMICS"]

logger = logging.getLogger(__name__)

IMAGE_TASKS = ("mnist", "fashion")
IMAGE_DYNAMICS = ("latent_equilibrium", "original", "backprop")


@dataclass(frozen=True)
class ImageLagrangianConfig:
    """One real-time training run on MNIST or Fashion-MNIST.

    Attributes
    ----------
    task : {"mnist", "fashion"}
        MNIST or Fashion-MNIST.
    seed : int
        Seed of the initial weights and the presentation order.
    dynamics : {"latent_equilibrium", "original", "backprop"}
        Latent Equilibrium, the original dynamics, or plain backprop of the same network (the reference).
    sizes : tuple of int
        Layer sizes, input first (784-300-100-10 in Haider et al. 2021).
    tau : float
        Membrane time constant (ms).
    t_pres : float or None
        Presentation time per image (ms); None = tau / 20.
    dt_max : float
        Largest Euler step (ms); n_steps = max(min_steps, ceil(t_pres / dt_max)).
    min_steps : int
        Fewest Euler steps per presentation.
    epochs : int
        Passes through the training set.
    copies : int
        Images shown side by side with shared synapses (the mini-batch).
    lr : float
        Learning rate per presentation and sample (dimensionless).
    layer_lr_factors : tuple of float
        Per-weight-layer factors on ``lr`` (first layer first).
    lr_decay : float
        Factor in (0, 1] on the learning rate after every epoch.
    beta : float
        Output nudging strength.
    n_train, n_test : int or None
        First images of the (fixed, shuffled) training set and of the test set; None = all.
    validation : bool
        Evaluate on 10,000 held-out training images instead of the test set (hyperparameter choice).
    error_iterations : int
        Error sweeps per Euler step (see LEParameters).
    """

    task: str
    seed: int
    dynamics: str = "latent_equilibrium"
    sizes: tuple = (784, 300, 100, 10)
    tau: float = 10.0
    t_pres: float | None = None
    dt_max: float = 0.1
    min_steps: int = 5
    epochs: int = 10
    copies: int = 16
    lr: float = 0.01
    layer_lr_factors: tuple = (10.0, 3.0, 0.1)
    lr_decay: float = 0.9
    beta: float = 0.1
    n_train: int | None = None
    n_test: int | None = None
    validation: bool = False
    error_iterations: int = 1

    def __post_init__(self):
        if self.task not in IMAGE_TASKS:
            raise ValueError(f"task must be one of {IMAGE_TASKS}, got {self.task!r}")
        if self.dynamics not in IMAGE_DYNAMICS:
            raise ValueError(f"dynamics must be one of {IMAGE_DYNAMICS}, got {self.dynamics!r}")
        if len(self.sizes) < 2 or self.sizes[0] != 784 or self.sizes[-1] != 10:
            raise ValueError(f"sizes must start with 784 inputs and end with 10 outputs, got {self.sizes}")
        if len(self.layer_lr_factors) != len(self.sizes) - 1 or min(self.layer_lr_factors) <= 0:
            raise ValueError(f"layer_lr_factors needs {len(self.sizes) - 1} values > 0, got {self.layer_lr_factors}")
        for name in ("tau", "dt_max", "lr", "beta"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.t_pres is not None and not self.t_pres > 0:
            raise ValueError(f"t_pres must be > 0 ms, got {self.t_pres}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], got {self.lr_decay}")
        for name in ("min_steps", "epochs", "copies", "error_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def presentation(self) -> float:
        """Presentation time per image (ms)."""
        return self.tau / 20.0 if self.t_pres is None else self.t_pres

    @property
    def n_steps(self) -> int:
        return max(self.min_steps, math.ceil(self.presentation / self.dt_max - 1e-9))

    def parameters(self, epoch: int) -> LEParameters:
        """Dynamics parameters during ``epoch`` (1-based)."""
        lr = self.lr * self.lr_decay ** (epoch - 1)
        eta = lr / (self.beta * self.presentation)
        return LEParameters(tau=self.tau, dt=min(self.presentation / self.n_steps, self.tau), beta=self.beta,
                            eta=eta, eta_bias=eta, prospective=self.dynamics == "latent_equilibrium",
                            eta_layer_factors=tuple(self.layer_lr_factors), error_iterations=self.error_iterations)


@dataclass
class ImageLagrangianResult:
    """Learning curve and final accuracies of one run."""

    config: dict
    curve: list = field(default_factory=list)
    test_accuracy: float = float("nan")
    settled_test_accuracy: float = float("nan")
    wall_time_s: float = 0.0
    versions: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    files: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """Everything, as ``results.json`` holds it."""
        return asdict(self) | {"summary": self.summary()}

    def summary(self) -> dict:
        return {"test_accuracy": self.test_accuracy, "settled_test_accuracy": self.settled_test_accuracy,
                "epochs": self.config["epochs"], "wall_time_s": self.wall_time_s}


def _initial_network(cfg: ImageLagrangianConfig) -> LayeredNetwork:
    """Weights N(0, 1 / fan_in), hidden biases 0.5 (hard-sigmoid units start in their linear range)."""
    net = LayeredNetwork.random(cfg.sizes, seed=cfg.seed, hidden=hard_sigmoid(), output=linear())
    for b in net.biases[:-1]:
        b[:] = 0.5
    return LayeredNetwork([w.astype(np.float32) for w in net.weights], [b.astype(np.float32) for b in net.biases],
                          net.hidden, net.output)


def _realtime_accuracy(sim: LatentEquilibrium, x: np.ndarray, y: np.ndarray, n_steps: int) -> float:
    """Show test images ``copies`` at a time for ``n_steps`` steps each, without target or plasticity."""
    from cortexsim.protocols.microcircuit_training import batch_indices

    order = np.arange(len(x))
    correct = 0
    n_batches = -(-len(x) // sim.n_networks)
    for b in range(n_batches):
        idx = batch_indices(order, sim.n_networks, b)
        out = sim.present(x[idx], None, n_steps, learn=False)
        valid = min(sim.n_networks, len(x) - b * sim.n_networks)
        correct += int(np.sum(np.argmax(out[:valid], axis=1) == y[idx[:valid]]))
    return correct / len(x)


def run_lagrangian_images(cfg: ImageLagrangianConfig, out_dir: str | Path | None = None,
                          progress: bool = False) -> ImageLagrangianResult:
    """Train on MNIST / Fashion-MNIST; write results.json and learning_curve.png to ``out_dir`` if given."""
    from cortexsim.protocols.microcircuit import image_data
    from cortexsim.protocols.microcircuit_training import batch_indices, train_backprop_epoch

    start = time.perf_counter()
    train, test = image_data(cfg.task, cfg.n_train, cfg.n_test, cfg.validation)
    net = _initial_network(cfg)
    result = ImageLagrangianResult(config=asdict(cfg) | {"n_steps": cfg.n_steps, "t_pres_ms": cfg.presentation,
                                                         "dt_ms": cfg.presentation / cfg.n_steps},
                                   versions=library_versions(), machine=machine_info())
    sim = None
    if cfg.dynamics != "backprop":
        sim = LatentEquilibrium(net, cfg.parameters(1), copies=cfg.copies, dtype=np.float32)

    def evaluate() -> dict:
        current = sim.networks()[0] if sim is not None else net
        settled = float(np.mean(np.argmax(current.forward_batch(test.x)[1][-1], axis=1) == test.y))
        if sim is None:
            return {"test_accuracy": settled, "settled_test_accuracy": settled}
        sim.reset_state()
        realtime = _realtime_accuracy(sim, test.x, test.y, cfg.n_steps)
        sim.reset_state()
        return {"test_accuracy": realtime, "settled_test_accuracy": settled}

    result.curve.append({"epoch": 0, **evaluate(), "wall_time_s": 0.0})
    for epoch in range(1, cfg.epochs + 1):
        order = np.random.default_rng(cfg.seed * 1000 + epoch).permutation(len(train))
        if sim is None:
            lr = cfg.lr * cfg.lr_decay ** (epoch - 1)
            train_backprop_epoch(net, train.x, train.targets, order, cfg.copies,
                                 tuple(lr * f for f in cfg.layer_lr_factors))
        else:
            sim.params = cfg.parameters(epoch)
            for b in range(-(-len(order) // cfg.copies)):
                idx = batch_indices(order, cfg.copies, b)
                sim.present(train.x[idx], train.targets[idx], cfg.n_steps, learn=True)
        row = {"epoch": epoch, **evaluate(), "wall_time_s": time.perf_counter() - start}
        result.curve.append(row)
        if progress:
            logger.info("%s %s tau=%g t_pres=%g ms epoch %d: test accuracy %.4f (settled %.4f)", cfg.task,
                        cfg.dynamics, cfg.tau, cfg.presentation, epoch, row["test_accuracy"],
                        row["settled_test_accuracy"])
        if not np.isfinite(row["settled_test_accuracy"]):
            break
    result.test_accuracy = result.curve[-1]["test_accuracy"]
    result.settled_test_accuracy = result.curve[-1]["settled_test_accuracy"]
    result.wall_time_s = time.perf_counter() - start
    if out_dir is not None:
        from cortexsim.analysis.plots import plot_learning_curve

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        epochs = [r["epoch"] for r in result.curve]
        which = "validation" if cfg.validation else "test"
        plot_learning_curve(epochs, {f"real-time {which}": [100 * r["test_accuracy"] for r in result.curve],
                                     "settled (static pass)": [100 * r["settled_test_accuracy"] for r in result.curve]},
                            out / "learning_curve.png", ylabel=f"{which} accuracy (%)", xlabel="epoch",
                            title=f"{cfg.task}, {cfg.dynamics}, tau {cfg.tau} ms, t_pres {cfg.presentation} ms")
        result.files = ["results.json", "learning_curve.png"]
        write_results(out, result.to_dict(), cfg)
    return result


def run(cfg: ImageLagrangianConfig, out_dir: str | Path | None = None, progress: bool = False
        ) -> ImageLagrangianResult:
    """The protocol behind ``cortexsim lagrangian --task mnist|fashion`` (:func:`run_lagrangian_images`)."""
    return run_lagrangian_images(cfg, out_dir, progress)
