"""Training loops of the microcircuit protocol that run at MNIST scale, and their checkpoints.

* :func:`train_full_epoch`: one pass of the full time-continuous dynamics
  (:class:`cortexsim.models.microcircuit.batched.BatchedMicrocircuit`), ``B`` patterns side by side,
  every pattern in a free phase (no target) and a nudged phase (target), with plasticity gates that
  open only after a settling time in each phase;
* :func:`train_backprop_epoch`: plain mini-batch backprop of the equivalent feed-forward network (the
  reference of the same architecture);
* :func:`save_checkpoint` / :func:`load_checkpoint`: atomic ``.npz`` checkpoints (arrays by name plus
  a JSON header), so a long run killed at any moment resumes where it stopped.

Times in ms.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cortexsim.models.layered import LayeredNetwork
from cortexsim.models.microcircuit.batched import BatchedMicrocircuit

__all__ = ["FullSchedule", "train_full_epoch", "train_backprop_epoch", "save_checkpoint", "load_checkpoint",
           "batch_indices"]


@dataclass(frozen=True)
class FullSchedule:
    """How each pattern is shown to the full dynamics.

    Attributes
    ----------
    free_ms : float
        Free phase (input, no target) before the nudged phase (ms, >= 0).
    nudge_ms : float
        Nudged phase (input and target) (ms, > 0).
    settle_ms : float
        In each phase, plasticity signals enter the low-pass filters only from this time on (ms, >= 0,
        shorter than every phase that has plasticity): the somata first relax to the new input.
    lateral_in_nudged : bool
        Interneuron and top-down plasticity also in the nudged phase (Sacramento et al.: always on)
        rather than in the free phase only.
    forward_in_free : bool
        Forward plasticity also in the free phase (Sacramento et al.: always on) rather than in the
        nudged phase only.
    """

    free_ms: float
    nudge_ms: float
    settle_ms: float = 0.0
    lateral_in_nudged: bool = True
    forward_in_free: bool = True

    def __post_init__(self):
        if not (self.free_ms >= 0 and self.nudge_ms > 0 and self.settle_ms >= 0):
            raise ValueError(f"free_ms must be >= 0, nudge_ms > 0 and settle_ms >= 0 ms; got {self.free_ms}, "
                             f"{self.nudge_ms}, {self.settle_ms}")
        if self.settle_ms >= self.nudge_ms or (self.free_ms > 0 and self.settle_ms >= self.free_ms):
            raise ValueError(f"settle_ms ({self.settle_ms}) must be shorter than each phase (free {self.free_ms}, "
                             f"nudged {self.nudge_ms} ms)")

    def steps(self, dt: float) -> tuple[int, int, int]:
        """(free, nudged, settle) phase lengths in Euler steps of ``dt`` ms."""
        return tuple(int(round(v / dt)) for v in (self.free_ms, self.nudge_ms, self.settle_ms))


def batch_indices(order: np.ndarray, batch: int, index: int) -> np.ndarray:
    """Indices of batch ``index``; the last batch is filled up from the start of ``order``."""
    return order[np.arange(index * batch, (index + 1) * batch) % len(order)]


def train_full_epoch(model: BatchedMicrocircuit, x: np.ndarray, targets: np.ndarray | None, order: np.ndarray,
                     schedule: FullSchedule, start_batch: int = 0, on_batch=None) -> int:
    """Show every pattern of ``order`` once to the full dynamics, ``model.copies`` at a time.

    Parameters
    ----------
    model : BatchedMicrocircuit
        The running network (state and weights carry over between calls).
    x, targets : ndarray
        Inputs (n, n_0) and target potentials (n, n_N) or None (no nudging: the nudged phase runs
        without target).
    order : ndarray of int
        Presentation order.
    schedule : FullSchedule
        Phase lengths and plasticity gates.
    start_batch : int
        First batch to show (resuming an interrupted epoch).
    on_batch : callable(batch_index) or None
        Called after every batch (progress, checkpoints).

    Returns
    -------
    int
        Number of batches in the epoch.
    """
    n_free, n_nudge, n_settle = schedule.steps(model.params.dt)
    n_batches = -(-len(order) // model.copies)
    for b in range(start_batch, n_batches):
        idx = batch_indices(order, model.copies, b)
        xb = x[idx]
        tb = None if targets is None else targets[idx]
        for s in range(n_free):
            open_ = 1.0 if s >= n_settle else 0.0
            model.set_gates(open_ if schedule.forward_in_free else 0.0, open_)
            model.step(xb, None)
        for s in range(n_nudge):
            open_ = 1.0 if s >= n_settle else 0.0
            model.set_gates(open_, open_ if schedule.lateral_in_nudged else 0.0)
            model.step(xb, tb)
        if on_batch is not None:
            on_batch(b)
    return n_batches


def train_backprop_epoch(net: LayeredNetwork, x: np.ndarray, targets: np.ndarray, order: np.ndarray,
                         batch: int, lr: tuple) -> None:
    """One epoch of mini-batch SGD on C = 1/2 ||target - output||^2, in place.

    Every batch changes layer l's weights by ``-lr[l] * sum over its samples of dC/dW_l`` (rates per
    sample; one per weight layer, since the layers of a logistic network need very different rates).
    """
    if batch < 1 or len(lr) != len(net.weights) or not all(v > 0 for v in lr):
        raise ValueError(f"batch must be >= 1 and lr one rate > 0 per weight layer, got {batch}, {lr}")
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        grad_w, grad_b = net.batch_gradients(x[idx], targets[idx])
        for rate, w, b, gw, gb in zip(lr, net.weights, net.biases, grad_w, grad_b):
            w -= rate * gw
            b -= rate * gb


def save_checkpoint(path: Path, arrays: dict, header: dict) -> None:
    """Write ``arrays`` (name -> ndarray) and a JSON ``header`` atomically to ``path`` (.npz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, __header__=np.array(json.dumps(header, default=str)), **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path) -> tuple[dict, dict]:
    """(arrays, header) from :func:`save_checkpoint`; ValueError naming the file if it is damaged."""
    try:
        with np.load(path) as data:
            header = json.loads(str(data["__header__"]))
            arrays = {k: data[k] for k in data.files if k != "__header__"}
    except Exception as exc:  # noqa: BLE001 - any failure means the file cannot be used
        raise ValueError(f"checkpoint {path} is damaged ({exc}); delete it to start the run anew") from None
    return arrays, header


class CheckpointTimer:
    """True every ``interval_s`` seconds of wall time (for checkpoints inside long epochs)."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._last = time.monotonic()

    def due(self) -> bool:
        if time.monotonic() - self._last >= self.interval_s:
            self._last = time.monotonic()
            return True
        return False
