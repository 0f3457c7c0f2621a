"""Numerical checks of the Lagrangian / Latent Equilibrium theorems.

Theorem 1: at equilibrium, hidden errors are backpropagated errors,
``e_i = phi'(v_i) * W_{i+1}^T e_{i+1}``.

Theorem 2: the error-times-rate products become the cost gradient as the nudging vanishes,
``(1/beta) e_i r_{i-1}^T -> -dC/dW_i`` (and ``(1/beta) e_i -> -dC/db_i``) as ``beta -> 0``,
with C = 1/2 ||target - output||^2 evaluated in the free (un-nudged) network; reference gradients
come from :meth:`LayeredNetwork.backprop`, itself checked against central finite differences.
"""

from __future__ import annotations

import numpy as np

from ..models.latent_equilibrium import settle
from ..models.layered import LayeredNetwork

__all__ = ["theorem1_residuals", "theorem2_relative_errors", "theorem2_convergence",
           "finite_difference_gradient", "plot_theorem2_convergence"]


def theorem1_residuals(network: LayeredNetwork, equilibrium: dict) -> list[float]:
    """Relative residual ||e_i - phi'(v_i) W_{i+1}^T e_{i+1}|| / ||e_i|| for every hidden layer.

    ``equilibrium`` is the dict returned by :func:`cortexsim.models.latent_equilibrium.settle`.
    """
    v, e = equilibrium["potentials"], equilibrium["errors"]
    out = []
    for i in range(len(network.weights) - 1):
        predicted = network.hidden.dphi(v[i]) * (network.weights[i + 1].T @ e[i + 1])
        norm = np.linalg.norm(e[i])
        out.append(float(np.linalg.norm(e[i] - predicted) / norm) if norm > 0 else float("nan"))
    return out


def theorem2_relative_errors(network: LayeredNetwork, x: np.ndarray, target: np.ndarray, beta: float,
                             tol: float = 1e-15) -> dict:
    """Relative errors between (1/beta) e_i r_{i-1}^T and -dC/dW_i (and biases) for one sample.

    Returns a dict with per-layer lists ``weights`` and ``biases`` (||estimate + grad|| / ||grad||)
    and ``max`` over all of them.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    eq = settle(network, x, target, beta, tol=tol)
    grad_w, grad_b = network.backprop(np.asarray(x, dtype=float), np.asarray(target, dtype=float))
    rel_w, rel_b = [], []
    for i, (gw, gb) in enumerate(zip(grad_w, grad_b)):
        est_w = np.outer(eq["errors"][i], eq["rates"][i]) / beta
        est_b = eq["errors"][i] / beta
        rel_w.append(float(np.linalg.norm(est_w + gw) / np.linalg.norm(gw)))
        rel_b.append(float(np.linalg.norm(est_b + gb) / np.linalg.norm(gb)))
    return {"weights": rel_w, "biases": rel_b, "max": max(rel_w + rel_b)}


def theorem2_convergence(network: LayeredNetwork, x: np.ndarray, target: np.ndarray, betas) -> np.ndarray:
    """Largest relative error of Theorem 2 for every beta in ``betas``."""
    return np.array([theorem2_relative_errors(network, x, target, float(b))["max"] for b in betas])


def finite_difference_gradient(network: LayeredNetwork, x: np.ndarray, target: np.ndarray,
                               eps: float = 1e-6) -> tuple[list, list]:
    """dC/dW and dC/db of one sample by central finite differences (slow; for small networks)."""
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    net = network.copy()
    grads = []
    for params in (net.weights, net.biases):
        layer_grads = []
        for arr in params:
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                keep = arr[idx]
                arr[idx] = keep + eps
                plus = net.cost(x, target)
                arr[idx] = keep - eps
                minus = net.cost(x, target)
                arr[idx] = keep
                g[idx] = (plus - minus) / (2 * eps)
            layer_grads.append(g)
        grads.append(layer_grads)
    return grads[0], grads[1]


def plot_theorem2_convergence(betas, errors: np.ndarray, path, labels=None) -> None:
    """Log-log plot of Theorem 2's relative error against beta; ``errors`` (n_networks, n_betas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    errors = np.atleast_2d(errors)
    fig = Figure(figsize=(4.5, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for k, row in enumerate(errors):
        ax.loglog(betas, row, marker="o", lw=1, label=None if labels is None else labels[k])
    ax.loglog(betas, np.asarray(betas, dtype=float), "k--", lw=0.8, label="slope 1")
    ax.axhline(1e-3, color="gray", ls=":", lw=0.8)
    ax.set(xlabel="nudging strength beta", ylabel="rel. error of (1/beta) e r^T vs -dC/dW",
           title="Theorem 2: errors -> backprop gradients")
    if labels is not None:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
