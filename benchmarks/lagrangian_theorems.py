"""Theorem 1 and 2 of the Lagrangian dynamics on random networks, with the convergence plot.

Five random networks with three weight layers (10-20-15-5, logistic / tanh / soft-ReLU hidden units,
linear output), one random input and target each.  Theorem 1: relative residual of
e_i = phi'(v_i) W_{i+1}^T e_{i+1} at equilibrium (beta = 0.1).  Theorem 2: relative error between
(1/beta) e_i r_{i-1}^T and -dC/dW_i (numpy backprop, itself checked against finite differences) for
beta = 1e-1 .. 1e-7.

Writes benchmarks/results/lagrangian_theorems.json and lagrangian_theorem2_convergence.png (~10 s).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cortexsim.analysis.theorems import (finite_difference_gradient, plot_theorem2_convergence,
                                         theorem1_residuals, theorem2_convergence)
from cortexsim.models.latent_equilibrium import settle
from cortexsim.models.layered import LayeredNetwork, logistic, soft_relu, tanh
from cortexsim.protocols.lagrangian import versions

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = [10, 20, 15, 5]
BETAS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]
HIDDEN = {"logistic": logistic, "tanh": tanh, "soft_relu": soft_relu}


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows, curves, labels = [], [], []
    for seed in range(5):
        name = list(HIDDEN)[seed % 3]
        net = LayeredNetwork.random(SIZES, seed=seed, hidden=HIDDEN[name](), bias_scale=0.5)
        rng = np.random.default_rng(100 + seed)
        x, t = rng.uniform(0, 1, SIZES[0]), rng.uniform(0, 1, SIZES[-1])
        gw, gb = net.backprop(x, t)
        fw, fb = finite_difference_gradient(net, x, t)
        fd_err = max(float(np.max(np.abs(a - b))) for a, b in zip(gw + gb, fw + fb))
        eq = settle(net, x, t, beta=0.1)
        errs = theorem2_convergence(net, x, t, BETAS)
        rows.append({"seed": seed, "hidden": name, "backprop_vs_finite_difference_max_abs": fd_err,
                     "theorem1_relative_residuals": theorem1_residuals(net, eq),
                     "theorem2_relative_error": dict(zip(map(str, BETAS), errs.tolist()))})
        curves.append(errs)
        labels.append(f"seed {seed} ({name})")
        print(rows[-1], flush=True)
    curves = np.array(curves)
    plot_theorem2_convergence(BETAS, curves, RESULTS / "lagrangian_theorem2_convergence.png", labels)
    payload = {"benchmark": "lagrangian_theorems", "sizes": SIZES, "betas": BETAS, "networks": rows,
               "theorem2_max_relative_error_at_beta_1e-4": float(curves[:, BETAS.index(1e-4)].max()),
               "theorem2_monotone_in_beta": bool(np.all(np.diff(curves, axis=1) < 0)),
               "theorem1_max_relative_residual": max(max(r["theorem1_relative_residuals"]) for r in rows),
               "versions": versions()}
    (RESULTS / "lagrangian_theorems.json").write_text(json.dumps(payload, indent=2))
    print(json.dumps({k: v for k, v in payload.items() if k.startswith("theorem")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
