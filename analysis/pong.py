"""Read-outs and figures of reward-based learning (the Pong agent): reward curves, weights, excitability.

* :func:`running_mean` - trailing mean of a reward series;
* :func:`plot_reward_curves` - running mean reward vs iteration, one band (mean and min-max over
  seeds) per route;
* :func:`plot_weight_matrix` - the input x output weights;
* :func:`plot_weights_vs_excitability` - each output's learned weights (mean input weight and target
  weight) against its excitability, with Pearson r.

Figures are PNG files written like :mod:`cortexsim.analysis.plots` (returns the path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .plots import _new_figure, _save

__all__ = ["running_mean", "plot_reward_curves", "plot_weight_matrix", "plot_weights_vs_excitability"]


def running_mean(values, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at every position (fewer at the start).

    >>> running_mean([0, 1, 1, 0], 2).tolist()
    [0.0, 0.5, 1.0, 0.5]
    """
    values = np.asarray(values, dtype=float)
    if int(window) < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    index = np.arange(1, values.size + 1)
    start = np.maximum(index - int(window), 0)
    return (cumulative[index] - cumulative[start]) / (index - start)


def plot_reward_curves(curves: Mapping[str, Sequence[np.ndarray]], path: str | Path, window: int = 100,
                       title: str | None = None) -> Path:
    """Running mean (over ``window`` iterations) of the bare reward, per route: mean over seeds and min-max band."""
    fig = _new_figure()
    ax = fig.add_subplot()
    for label, runs in curves.items():
        smoothed = np.array([running_mean(r, window) for r in runs])
        x = np.arange(1, smoothed.shape[1] + 1)
        line, = ax.plot(x, smoothed.mean(axis=0), label=f"{label} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        if len(runs) > 1:
            ax.fill_between(x, smoothed.min(axis=0), smoothed.max(axis=0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"reward (running mean of {window} iterations)")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "Pong with R-STDP: reward (1 = winner in the ball's row)")
    return _save(fig, path)


def plot_weight_matrix(weights, path: str | Path, unit: str, title: str | None = None) -> Path:
    """The input (ball row) x output (motor neuron) weights as an image, in ``unit``."""
    weights = np.asarray(weights, dtype=float)
    fig = _new_figure(5.5, 4.5)
    ax = fig.add_subplot()
    image = ax.imshow(weights, origin="lower", cmap="viridis", aspect="equal")
    ax.set_xlabel("output neuron")
    ax.set_ylabel("input neuron (ball row)")
    fig.colorbar(image, ax=ax, label=unit)
    ax.set_title(title or "weights after training")
    return _save(fig, path)


def plot_weights_vs_excitability(weights, excitability, path: str | Path, weight_unit: str = "6-bit weight",
                                 title: str | None = None) -> Path:
    """Each output neuron's learned weights against its excitability, with Pearson r.

    Two markers per neuron: the mean of its input weights (its column of ``weights``, inputs x
    outputs) and its target weight (input i -> output i).
    """
    weights = np.asarray(weights, dtype=float)
    excitability = np.asarray(excitability, dtype=float)
    if weights.ndim != 2 or weights.shape[1] != excitability.size:
        raise ValueError("weights must be inputs x outputs with one column per excitability value")
    fig = _new_figure(5.5, 4.2)
    ax = fig.add_subplot()
    for values, label, marker in ((weights.mean(axis=0), "mean input weight", "o"),
                                  (np.diag(weights) if weights.shape[0] == weights.shape[1] else None,
                                   "target weight (input i -> output i)", "x")):
        if values is None:
            continue
        r = np.corrcoef(excitability, values)[0, 1] if np.std(excitability) > 0 and np.std(values) > 0 \
            else float("nan")
        ax.scatter(excitability, values, s=20, marker=marker, label=f"{label}: r = {r:.2f}")
    ax.set_xlabel("excitability (spikes per probe iteration, equal weights)")
    ax.set_ylabel(f"learned weight ({weight_unit})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title or "fixed-pattern noise compensation")
    return _save(fig, path)
