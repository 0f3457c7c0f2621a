"""Validation trial of issue 17 (784-500-500-10, fixed random top-down): first-layer rate raised after warm-up.

MicrocircuitConfig(task="mnist", seed=100, validation=True) with the rates (2.5e-2, 1e-4, 2e-5) for
``WARM`` epochs (shared by all branches), then one branch per first-layer factor; validation accuracy,
top-down angles and the mean sum(r^2) of the two hidden layers (first 2,000 validation images) after
every epoch, one JSON row per epoch appended to OUT. Never touches the test set. Rows and findings in
microcircuit_mnist_tuning.md / results/microcircuit_mnist_tuning.jsonl.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/microcircuit_mnist_warmup_trial.py 4,1,8 4 OUT.jsonl [WARM]
"""
import copy
import json
import sys
import time
from dataclasses import replace
import numpy as np
from cortexsim.protocols.microcircuit import MicrocircuitConfig, _data, _initial_weights, _Trainer
from cortexsim.models.microcircuit.steady_state import steady_state

factors = [float(f) for f in sys.argv[1].split(",")]      # first-layer factors from epoch 2
last = int(sys.argv[2])                                    # last epoch of each branch
out = sys.argv[3]
warm = int(sys.argv[4]) if len(sys.argv) > 4 else 1        # warm-up epochs at x1
cfg = MicrocircuitConfig(seed=100, task="mnist", validation=True, eta_up=(2.5e-2, 1e-4, 2e-5)).resolved()
params = cfg.params()
train, val = _data(cfg)

def diag(tr):
    ev = tr.evaluate(val)
    fx = steady_state(tr.weights, params, val.x[:2000], None, tol=1e-5, max_iter=300)
    r = [tr.weights.activation(l + 1).phi(fx.u[l]) for l in range(2)]
    return {"acc": ev["test_accuracy"], "angles": ev.get("topdown_angle_deg"),
            "sum_r2": [float(np.mean(np.sum(x.astype(np.float64) ** 2, axis=1))) for x in r]}

def log(row):
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)

tr = _Trainer(cfg, params, _initial_weights(cfg, params))
for epoch in range(1, warm + 1):
    tr.set_forward_factor(1.0)
    t = time.time(); tr.train_epoch(train.x, train.targets, epoch)
    log({"branch": "shared", "epoch": epoch, "wall": time.time() - t, **diag(tr)})
base = copy.deepcopy(tr.weights)
for f in factors:
    tr = _Trainer(cfg, replace(params, eta_up=(f * params.eta_up[0],) + tuple(params.eta_up[1:])),
                  copy.deepcopy(base))
    for epoch in range(warm + 1, last + 1):
        tr.set_forward_factor(1.0)
        t = time.time(); tr.train_epoch(train.x, train.targets, epoch)
        d = diag(tr)
        log({"branch": f"x{f:g}_from_{warm + 1}", "epoch": epoch, "wall": time.time() - t, **d})
        if not np.isfinite(d["acc"]) or d["acc"] < 0.2:
            break
