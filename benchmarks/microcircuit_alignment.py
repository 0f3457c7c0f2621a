"""Angle between microcircuit weight updates and backprop gradients, per layer, over training.

Full time-continuous dynamics (numpy twin, dt 0.1 ms), top-down weights = transpose of the forward
weights, weak output nudging (g_som 0.05/ms), analytic self-predicting start; a 4-30-20-3 network
learns Yin-Yang patterns (100 ms each) with forward plasticity on. Two conditions: "ideal" interneurons
(no interneuron plasticity; the self-predicting state re-imposed after every pattern) and "plastic"
interneurons (W_IP, W_PI learn continuously, fully local). At the end of every pattern (network settled) the instantaneous forward
plasticity signal err_k r_{k-1}^T of every layer is compared with the backprop gradient of the
equivalent feed-forward network (weights lambda_k W_k) on the same sample and weights.
Writes benchmarks/results/microcircuit_alignment.json and figures/microcircuit_alignment.png.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/microcircuit_alignment.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from cortexsim.analysis.alignment import layer_angles, summarize_angles
from cortexsim.models import datasets
from cortexsim.models.layered import LayeredNetwork, linear, logistic
from cortexsim.models.microcircuit.numpy_twin import NumpyMicrocircuit
from cortexsim.models.microcircuit.parameters import (MicrocircuitParams, MicrocircuitWeights, effective_network,
                                                      self_predicting_weights)

HERE = Path(__file__).resolve().parent
SIZES = [4, 30, 20, 3]
SEED = 0
N_PATTERNS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
G_SOM = 0.05          # weak nudging (1/ms)
STEPS = 1000          # 100 ms per pattern at dt = 0.1 ms
ETA_UP = (2e-3, 5e-4, 1e-4)      # forward learning rates (1/ms)
ETA_INT = (5e-5, 5e-5)           # W_IP and W_PI learning rates (1/ms) of the "plastic" condition


def run(interneurons: str):
    """interneurons: "ideal" (no interneuron plasticity, SPS re-imposed after every pattern) or "plastic"."""
    eta_int = (0.0, 0.0) if interneurons == "ideal" else ETA_INT
    params = MicrocircuitParams(g_som=G_SOM, topdown="transposed", eta_up=ETA_UP, eta_ip=eta_int, eta_pi=eta_int)
    net = LayeredNetwork.random(SIZES, seed=SEED, hidden=logistic(), output=linear(), weight_scale=2.0)
    weights = self_predicting_weights(MicrocircuitWeights.from_network(net, seed=SEED + 1), params,
                                      transposed_topdown=True)
    data = datasets.yinyang(N_PATTERNS, seed=SEED)
    test = datasets.yinyang(1000, seed=SEED + 1)
    model = NumpyMicrocircuit(weights, params)
    angles = []

    def record(m, i):
        eff = effective_network(m.weights(), params)
        grads, _ = eff.backprop(data.x[i], data.targets[i])
        angles.append(layer_angles(m.forward_signals(), grads))
        if interneurons == "ideal":
            m.set_weights(self_predicting_weights(m.weights(), params, transposed_topdown=True))

    start = time.perf_counter()
    model.run(data.x, data.targets, steps_per_pattern=STEPS, on_pattern_end=record)
    wall = time.perf_counter() - start
    angles = np.array(angles)
    summary = summarize_angles(angles)
    hidden_means = [summary[f"layer_{l}"]["mean_deg"] for l in range(len(SIZES) - 2)]
    accuracy = effective_network(model.weights(), params).accuracy(test.x, test.y)
    return angles, {"interneurons": interneurons,
                    "params": {k: getattr(params, k) for k in params.__dataclass_fields__},
                    "per_layer": summary, "hidden_layer_mean_angles_deg": hidden_means,
                    "passed": bool(max(hidden_means) < 5.0), "test_accuracy_after": accuracy,
                    "wall_time_s": wall}


def main():
    runs = {name: run(name) for name in ("ideal", "plastic")}
    out = {"benchmark": "microcircuit_alignment",
           "description": __doc__.split("\n\n")[0],
           "dynamics": "full (numpy twin, forward Euler)", "sizes": SIZES, "seed": SEED,
           "n_patterns": N_PATTERNS, "pattern_duration_ms": STEPS * 0.1, "g_som": G_SOM,
           "criterion": "mean angle < 5 degrees in every hidden layer",
           "conditions": {name: r[1] for name, r in runs.items()},
           "versions": {"numpy": np.__version__, "python": platform.python_version()},
           "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()}}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "microcircuit_alignment.json").write_text(json.dumps(out, indent=2))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for ax, (name, (angles, _)) in zip(axes, runs.items()):
        for l in range(angles.shape[1]):
            ax.plot(angles[:, l], ".", ms=3, label=f"weight layer {l}" + (" (output)" if l == angles.shape[1] - 1 else ""))
        ax.axhline(5, color="k", lw=0.8, ls="--")
        ax.set_xlabel("pattern")
        ax.set_title(f"interneurons: {name}")
        ax.set_yscale("log")
    axes[0].set_ylabel("angle to -backprop gradient (deg)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    (HERE / "figures").mkdir(exist_ok=True)
    fig.savefig(HERE / "figures" / "microcircuit_alignment.png", dpi=100)
    print(json.dumps({name: {k: r[1][k] for k in ("hidden_layer_mean_angles_deg", "passed", "test_accuracy_after")}
                      for name, r in runs.items()}, indent=1))


if __name__ == "__main__":
    main()
