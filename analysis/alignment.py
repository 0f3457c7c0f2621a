"""Alignment between microcircuit weight updates and the backprop gradient, per layer.

Works on plain numpy arrays: ``updates[l]`` is the change (or plasticity signal) a learning rule makes
to weight layer ``l`` and ``gradients[l]`` the gradient dC/dW[l] of the same network on the same sample
(e.g. :meth:`cortexsim.models.layered.LayeredNetwork.backprop`). An update that follows gradient
descent points along ``-gradient``; the angle between the two is 0 degrees for exact backprop and 90
degrees for an unrelated direction.
"""

from __future__ import annotations

import numpy as np

from cortexsim.models.layered import angle_degrees

__all__ = ["layer_angles", "summarize_angles"]


def layer_angles(updates: list, gradients: list) -> np.ndarray:
    """Angle (degrees) between ``updates[l]`` and ``-gradients[l]`` for every layer l."""
    if len(updates) != len(gradients):
        raise ValueError(f"updates and gradients must list the same layers, got {len(updates)} and {len(gradients)}")
    for l, (u, g) in enumerate(zip(updates, gradients)):
        if np.shape(u) != np.shape(g):
            raise ValueError(f"layer {l}: update shape {np.shape(u)} differs from gradient shape {np.shape(g)}")
    return np.array([angle_degrees(u, -np.asarray(g)) for u, g in zip(updates, gradients)])


def summarize_angles(angles: np.ndarray) -> dict:
    """Per-layer statistics of an (n_samples, n_layers) array of angles (NaN rows are skipped)."""
    angles = np.atleast_2d(np.asarray(angles, dtype=float))
    out = {}
    for l in range(angles.shape[1]):
        a = angles[:, l][np.isfinite(angles[:, l])]
        out[f"layer_{l}"] = {"mean_deg": float(np.mean(a)) if a.size else float("nan"),
                             "median_deg": float(np.median(a)) if a.size else float("nan"),
                             "p90_deg": float(np.percentile(a, 90)) if a.size else float("nan"),
                             "max_deg": float(np.max(a)) if a.size else float("nan"), "n": int(a.size)}
    return out
