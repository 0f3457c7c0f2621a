"""Figures saved as PNG files: distributions, D_KL over time, rasters, activation functions, learning curves.

Every figure of the package is drawn here (or in another module of :mod:`cortexsim.analysis`), never
in a protocol or a model: protocols hand over arrays.

Every function takes the output ``path``, creates missing parent folders, saves a PNG and returns
the path. Figures are drawn on matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``),
so no pyplot state is created and the user's interactive backend is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cortexsim.analysis.states import spike_times_ms

__all__ = [
    "plot_distributions",
    "plot_dkl_over_time",
    "plot_raster",
    "plot_activation_function",
    "plot_learning_curve",
    "top_states",
    "plot_value_distributions",
    "plot_curve_panels",
    "plot_error_curves",
]

MAX_LABELLED_STATES = 64
"""Above this many states the x axis shows state indices instead of binary strings."""


def _new_figure(width: float = 7.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    return path


MAX_PLOTTED_STATES = 2**10
"""Above this many states, :func:`plot_distributions` draws only the :data:`TOP_STATES` most probable ones."""
TOP_STATES = 64
"""States drawn for large distributions (those with the largest probability in any of the series)."""


def top_states(series: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Indices of the ``k`` states with the largest probability in any of ``series``, in state order.

    Examples
    --------
    >>> top_states([np.array([0.1, 0.5, 0.05, 0.35]), np.array([0.4, 0.2, 0.3, 0.1])], 2).tolist()
    [0, 1]
    """
    peak = np.max(np.vstack([np.asarray(s, dtype=float) for s in series]), axis=0)
    k = min(int(k), peak.size)
    chosen = np.argpartition(-peak, k - 1)[:k]
    return np.sort(chosen)


def plot_distributions(target, sampled, path: str | Path, title: str | None = None,
                       labels: Sequence[str] | None = None, max_states: int = MAX_PLOTTED_STATES,
                       top_k: int = TOP_STATES) -> Path:
    """Bars of the target and one or more sampled distributions side by side, per state.

    With more than ``max_states`` states only the ``top_k`` states with the largest probability in
    any of the distributions are drawn (labelled with their binary state), and the title says so,
    with the probability mass they hold: a bar per state of a 16-unit network would be 65,536 bars.

    Parameters
    ----------
    target : array (2**n,)
    sampled : array (2**n,), or a sequence of such arrays (several runs)
    labels : names of target and of each sampled distribution (default "target", "sampled", ...)
    max_states : int
        Largest number of states drawn in full.
    top_k : int
        States drawn for larger distributions.
    """
    target = np.asarray(target, dtype=float)
    sampled_arr = np.asarray(sampled, dtype=float)
    series = [target] + ([sampled_arr] if sampled_arr.ndim == 1 else list(sampled_arr))
    n_states = target.size
    if target.ndim != 1 or n_states < 2 or n_states & (n_states - 1):
        raise ValueError(f"target must be a 1-D distribution over 2**n states, got shape {target.shape}")
    for k, s in enumerate(series[1:]):
        if s.shape != target.shape:
            raise ValueError(f"sampled distribution {k} has shape {s.shape}, target has {target.shape}")
    if labels is None:
        labels = ["target"] + (["sampled"] if len(series) == 2 else [f"sampled {k}" for k in range(len(series) - 1)])
    if len(labels) != len(series):
        raise ValueError(f"labels must name {len(series)} distributions (target first), got {len(labels)}")
    n = int(np.log2(n_states))
    states = np.arange(n_states)
    note = None
    if n_states > max_states:
        states = top_states(series, top_k)
        mass = ", ".join(f"{label} {100 * values[states].sum():.1f} %" for label, values in zip(labels, series))
        note = f"top {states.size} of {n_states:,} states (largest in any series; mass shown: {mass})"
    x = np.arange(states.size)
    width = 0.8 / len(series)
    fig = _new_figure(max(7.0, min(0.25 * states.size * len(series), 20.0)), 4.0)
    ax = fig.add_subplot()
    for k, (values, label) in enumerate(zip(series, labels)):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values[states], width=width, label=label)
    if states.size <= MAX_LABELLED_STATES:
        ax.set_xticks(x)
        ax.set_xticklabels([format(int(i), f"0{n}b") for i in states], rotation=90, fontsize=7 if n <= 10 else 5,
                           family="monospace")
        ax.set_xlabel("state z_0 ... z_{n-1}")
    else:
        ax.set_xlabel("state index")
    ax.set_ylabel("probability")
    ax.set_xlim(-0.6, states.size - 0.4)
    ax.legend()
    if title or note:
        ax.set_title("\n".join(t for t in (title, note) if t), fontsize=9 if note else None)
    return _save(fig, path)


def plot_dkl_over_time(times_ms, dkl_curves: Mapping[str, np.ndarray], path: str | Path,
                       title: str | None = None) -> Path:
    """D_KL curves against time on log-log axes (non-positive or infinite values are not drawn)."""
    times_ms = np.asarray(times_ms, dtype=float)
    if times_ms.ndim != 1:
        raise ValueError(f"times_ms must be 1-D, got shape {times_ms.shape}")
    fig = _new_figure()
    ax = fig.add_subplot()
    for label, values in dkl_curves.items():
        values = np.asarray(values, dtype=float)
        if values.shape != times_ms.shape:
            raise ValueError(f"curve {label!r} has shape {values.shape}, times_ms has {times_ms.shape}")
        ok = np.isfinite(values) & (values > 0) & (times_ms > 0)
        ax.plot(times_ms[ok], values[ok], marker="o", markersize=3, label=str(label))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("D_KL (nats)")
    ax.grid(True, which="both", alpha=0.3)
    if dkl_curves:
        ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_raster(spiketrains, path: str | Path, t_start: float | None = None, t_stop: float | None = None,
                title: str | None = None) -> Path:
    """Spike raster (neuron index against time in ms) of neo spike trains or arrays of times in ms."""
    times = spike_times_ms(spiketrains)
    fig = _new_figure(7.0, max(2.0, min(0.3 * len(times) + 1.0, 8.0)))
    ax = fig.add_subplot()
    lo = -np.inf if t_start is None else t_start
    hi = np.inf if t_stop is None else t_stop
    for k, s in enumerate(times):
        s = s[(s >= lo) & (s <= hi)]
        ax.plot(s, np.full(s.size, k), "|", color="k", markersize=8)
    if t_start is not None or t_stop is not None:
        ax.set_xlim(t_start, t_stop)
    ax.set_ylim(-0.5, max(len(times), 1) - 0.5)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_activation_function(e_l, p_on, fit, path: str | Path, p_min: float = 0.05, p_max: float = 0.95,
                             title: str | None = None) -> Path:
    """Measured p_on against the leak potential (mV) with the fitted logistic ``fit`` (an ActivationFit).

    Points inside ``(p_min, p_max)`` (those used in the fit) are filled, the others hollow.
    """
    e_l = np.asarray(e_l, dtype=float)
    p_on = np.asarray(p_on, dtype=float)
    if e_l.shape != p_on.shape or e_l.ndim != 1:
        raise ValueError(f"e_l and p_on must be 1-D arrays of equal length, got {e_l.shape} and {p_on.shape}")
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    used = (p_on > p_min) & (p_on < p_max)
    ax.plot(e_l[used], p_on[used], "o", color="C0", markersize=4, label="measured (fitted)")
    ax.plot(e_l[~used], p_on[~used], "o", mfc="none", color="C0", markersize=4, label="measured (not fitted)")
    grid = np.linspace(e_l.min(), e_l.max(), 400) if e_l.size else np.linspace(fit.v_p05 - 5, fit.v_p05 + 5, 400)
    ax.plot(grid, fit.p_on(grid), "-", color="C1",
            label=f"logistic: v_p05 = {fit.v_p05:.2f} mV, alpha = {fit.alpha:.3f} mV")
    ax.axvline(fit.v_p05, color="0.6", linestyle=":")
    ax.set_xlabel("leak potential E_l (mV)")
    ax.set_ylabel("p_on")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_activation_tails(e_l, p_on, p_err, fit, path: str | Path, title: str | None = None) -> Path:
    """The activation function's tails on log axes: measured p_on (left) and 1 - p_on (right) against the leak
    potential (mV), with error bars ``p_err`` (standard errors), beside the logistic ``fit`` (an ActivationFit).

    Examples
    --------
    >>> from cortexsim.parameters import ActivationFit
    >>> plot_activation_tails([-53.0, -47.0], [0.04, 0.99], [0.002, 0.001],
    ...                       ActivationFit(-50.6, 0.82), "tails.png")          # doctest: +SKIP
    """
    e_l, p_on, p_err = (np.asarray(x, dtype=float) for x in (e_l, p_on, p_err))
    if not e_l.shape == p_on.shape == p_err.shape or e_l.ndim != 1:
        raise ValueError(f"e_l, p_on and p_err must be 1-D arrays of equal length, got {e_l.shape}, {p_on.shape}, "
                         f"{p_err.shape}")
    fig = _new_figure(9.0, 4.0)
    grid = np.linspace(e_l.min() - 0.2, e_l.max() + 0.2, 400)
    for k, (name, measured, model, side) in enumerate((
            ("p_on", p_on, fit.p_on(grid), e_l < fit.v_p05),
            ("1 - p_on", 1.0 - p_on, 1.0 - fit.p_on(grid), e_l > fit.v_p05))):
        ax = fig.add_subplot(1, 2, k + 1)
        shown = side & (measured > 0)
        ax.errorbar(e_l[shown], measured[shown], yerr=p_err[shown], fmt="o", color="C0", markersize=4,
                    label="measured (LIF, standard error)")
        near = (grid < fit.v_p05) if k == 0 else (grid > fit.v_p05)
        ax.plot(grid[near], model[near], "-", color="C1",
                label=f"logistic fit: v_p05 = {fit.v_p05:.2f} mV, alpha = {fit.alpha:.3f} mV")
        ax.set_yscale("log")
        ax.set_xlabel("leak potential E_l (mV)")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_learning_curve(iterations, values: Mapping[str, np.ndarray], path: str | Path, ylabel: str,
                        logy: bool = False, title: str | None = None, xlabel: str = "iteration",
                        ylim: tuple[float, float] | None = None) -> Path:
    """One line per entry of ``values`` (label -> array, same length as ``iterations``).

    ``ylim`` (in the units of ``values``) zooms the vertical axis; say so in the title or label.
    """
    iterations = np.asarray(iterations, dtype=float)
    fig = _new_figure()
    ax = fig.add_subplot()
    for label, curve in values.items():
        curve = np.asarray(curve, dtype=float)
        if curve.shape != iterations.shape:
            raise ValueError(f"curve {label!r} has shape {curve.shape}, iterations has {iterations.shape}")
        ax.plot(iterations, curve, label=str(label))
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if values:
        ax.legend(fontsize="small" if len(values) > 6 else None)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_value_distributions(values: Mapping[str, np.ndarray], path: str | Path, ylabel: str,
                             title: str | None = None, logy: bool = True) -> Path:
    """Box plot per group (label -> values, e.g. D_KL per network) with the individual values jittered.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "dkl.png"
    >>> plot_value_distributions({"a": [0.01, 0.02], "b": [0.1, 0.2]}, path, "D_KL (nats)").name
    'dkl.png'
    """
    fig = _new_figure(8.0, 4.5)
    ax = fig.add_subplot()
    labels = list(values)
    arrays = [np.asarray(values[k], dtype=float) for k in labels]
    ax.boxplot(arrays, showfliers=False)
    for i, array in enumerate(arrays, start=1):
        jitter = np.random.default_rng(i).uniform(-0.15, 0.15, array.size)  # horizontal spread only
        ax.plot(i + jitter, array, ".", alpha=0.5, color=f"C{i}")
    ax.set_xticks(range(1, len(labels) + 1), [k.replace("_", "\n") for k in labels])
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_curve_panels(x, panels: Mapping[str, Mapping[str, np.ndarray]], path: str | Path, xlabel: str,
                      title: str | None = None, logy: Sequence[str] = (), ylim: Mapping[str, tuple] | None = None
                      ) -> Path:
    """One panel per entry of ``panels`` (y label -> {curve label -> values over ``x``}), side by side.

    ``logy`` names the panels with a logarithmic y axis; ``ylim`` fixes y ranges by panel.
    """
    x = np.asarray(x, dtype=float)
    fig = _new_figure(4.5 * max(1, len(panels)), 3.5)
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (ylabel, curves) in zip(axes, panels.items()):
        for label, curve in curves.items():
            curve = np.asarray(curve, dtype=float)
            if curve.shape != x.shape:
                raise ValueError(f"curve {label!r} has shape {curve.shape}, x has {x.shape}")
            ax.plot(x, curve, marker=".", label=str(label))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylabel in logy:
            ax.set_yscale("log")
        if ylim and ylabel in ylim:
            ax.set_ylim(*ylim[ylabel])
        if len(curves) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_error_curves(curves: Mapping[str, Sequence[np.ndarray]], path: str | Path,
                      reference: Mapping | None = None) -> Path:
    """RMS dendritic prediction error per repetition (Urbanczik & Senn 2014 Fig. 1B), per simulator.

    ``curves`` maps a simulator to its runs' error curves (mV): every run is a thin line, the mean
    over a simulator's runs (of equal length) a thick one. ``reference`` (optional) is
    ``{"first_mV", "last_mV", "repetitions", "label"}``.
    """
    fig = _new_figure(7.0, 4.0)
    ax = fig.add_subplot()
    for colour, (name, runs) in zip(("tab:blue", "tab:orange", "tab:green", "tab:red"), curves.items()):
        runs = [np.asarray(run, dtype=float) for run in runs]
        for run in runs:
            ax.plot(np.arange(1, run.size + 1), run, color=colour, lw=0.6, alpha=0.45)
        if len({run.size for run in runs}) == 1:
            mean = np.mean(runs, axis=0)
            ax.plot(np.arange(1, mean.size + 1), mean, color=colour, lw=2.2,
                    label=f"{name}, mean of {len(runs)} seed(s)")
    if reference:
        ax.plot([1, reference["repetitions"]], [reference["first_mV"], reference["last_mV"]], "k*", ms=10,
                label=reference.get("label", "reference"))
    ax.set_xlabel("repetition of the input pattern (teacher on)")
    ax.set_ylabel(r"RMS of $V_w^\ast - U_M$ (mV)")
    ax.set_title("Urbanczik & Senn 2014 Fig. 1B: dendritic prediction error")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return _save(fig, path)
