"""Figures of mixing runs: state trajectories with the modes marked, dwell times, visited classes.

Like :mod:`cortexsim.analysis.plots`, every function takes the output ``path``, saves a PNG and returns the
path; times on the axes are biological (simulated) time, and every figure says which window it shows.
D_KL over time per mechanism is :func:`cortexsim.analysis.plots.plot_dkl_over_time`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from cortexsim.analysis.plots import _new_figure, _save

__all__ = ["plot_mode_trajectories", "plot_dwell_times", "plot_class_sequences"]


def plot_mode_trajectories(times_ms, overlaps: Mapping[str, np.ndarray], path: str | Path,
                           mode_names: tuple[str, str] = ("mode A", "mode B"), threshold: float | None = None,
                           title: str | None = None) -> Path:
    """Overlap with pattern A (+1: in mode A, -1: in mode B) against time, one panel per sampler.

    Parameters
    ----------
    times_ms : array (m,)
        Read-out times (ms, biological).
    overlaps : mapping name -> array (m,)
        :func:`cortexsim.analysis.mixing.pattern_overlap` of each sampler's states.
    threshold : float, optional
        Overlap beyond which a state counts as in a mode (drawn as dashed lines; e.g. ``1 - 2 d / n`` for
        at most ``d`` of ``n`` units off the pattern).
    """
    times_ms = np.asarray(times_ms, dtype=float)
    if times_ms.ndim != 1 or times_ms.size < 2:
        raise ValueError(f"times_ms must be a 1-D array of at least 2 times (ms), got shape {times_ms.shape}")
    if not overlaps:
        raise ValueError("overlaps must hold at least one trajectory")
    fig = _new_figure(8.0, 1.0 + 1.6 * len(overlaps))
    axes = fig.subplots(len(overlaps), 1, sharex=True, squeeze=False)[:, 0]
    seconds = times_ms / 1000.0
    for ax, (name, values) in zip(axes, overlaps.items()):
        values = np.asarray(values, dtype=float)
        if values.shape != times_ms.shape:
            raise ValueError(f"trajectory {name!r} has shape {values.shape}, times_ms has {times_ms.shape}")
        ax.plot(seconds, values, lw=0.6, color="0.2")
        ax.axhspan(0.0, 1.05, color="tab:blue", alpha=0.08)
        ax.axhspan(-1.05, 0.0, color="tab:orange", alpha=0.08)
        if threshold is not None:
            for level in (threshold, -threshold):
                ax.axhline(level, ls="--", lw=0.7, color="0.5")
        ax.set_ylim(-1.1, 1.1)
        ax.set_yticks([-1, 0, 1], [mode_names[1], "0", mode_names[0]])
        ax.set_ylabel(f"{name}\noverlap")
    axes[-1].set_xlabel("biological time (s)")
    end = times_ms[-1] + (times_ms[-1] - times_ms[-2])  # the last read-out covers one more step
    window = f"window {times_ms[0] / 1000:g}-{end / 1000:g} s"
    fig.suptitle(f"{title}, {window}" if title else f"State trajectory, {window}")
    return _save(fig, path)


def plot_dwell_times(dwell_ms: Mapping[str, np.ndarray], path: str | Path, title: str | None = None) -> Path:
    """Histograms of the dwell times in a mode (ms, log-spaced bins), one per sampler."""
    fig = _new_figure()
    ax = fig.add_subplot()
    values = [np.asarray(v, dtype=float) for v in dwell_ms.values()]
    positive = np.concatenate([v[v > 0] for v in values]) if values else np.empty(0)
    if positive.size:
        bins = np.geomspace(positive.min(), positive.max() * 1.001, 25) if positive.max() > positive.min() else 10
        for name, v in dwell_ms.items():
            v = np.asarray(v, dtype=float)
            ax.hist(v[v > 0], bins=bins, histtype="step", lw=1.5, label=f"{name} ({v.size} stays)")
        ax.set_xscale("log")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no completed stay in a mode", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("dwell time in a mode (ms, biological)")
    ax.set_ylabel("count")
    ax.set_title(title or "Dwell times (completed stays between two switches)")
    return _save(fig, path)


def plot_class_sequences(window_ms: float, classes: Mapping[str, np.ndarray], path: str | Path,
                         n_classes: int = 10, title: str | None = None) -> Path:
    """Dominant class per read-out window against time, one row of markers per sampler (no class: gap)."""
    if not np.isfinite(window_ms) or window_ms <= 0:
        raise ValueError(f"window_ms must be a finite duration > 0 (ms), got {window_ms!r}")
    fig = _new_figure(8.0, 1.0 + 1.6 * len(classes))
    axes = fig.subplots(max(len(classes), 1), 1, sharex=True, squeeze=False)[:, 0]
    length = 0
    for ax, (name, sequence) in zip(axes, classes.items()):
        sequence = np.asarray(sequence)
        length = max(length, sequence.size)
        t = (np.arange(sequence.size) + 0.5) * window_ms / 1000.0
        shown = sequence >= 0
        ax.scatter(t[shown], sequence[shown], s=6, color="tab:blue")
        visited = np.unique(sequence[shown]).size
        ax.set_ylim(-0.5, n_classes - 0.5)
        ax.set_yticks(range(n_classes))
        ax.set_ylabel(f"{name}\nclass ({visited} seen)")
    axes[-1].set_xlabel("biological time (s)")
    fig.suptitle((title + ", " if title else "Dominant label per window, ")
                 + f"{window_ms:g} ms windows, 0-{length * window_ms / 1000:g} s")
    return _save(fig, path)
