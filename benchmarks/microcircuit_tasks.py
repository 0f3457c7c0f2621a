"""Microcircuit learning tasks with the steady-state dynamics (protocols.microcircuit defaults).

Yin-Yang 4-120-3 over 5 seeds, digits 64-100-10 over 5 seeds (both with a plain-backprop reference
of the same set-up per seed), teacher-student 30-50-10 (deep vs shallow learner with the same rule,
only the output layer plastic) and the self-predicting-state task 30-50-10. All runs use the fully
local rules: forward weights learn on the nudged fixed point, interneuron (W_IP) and
interneuron-to-pyramidal (W_PI) weights on the free fixed point of every batch; the self-predicting
state is never re-imposed during training.
Writes benchmarks/results/microcircuit_tasks.json (merged, updated after every run) and per-run
folders with results.json + learning curves under benchmarks/results/microcircuit_tasks/.
Groups can be run separately (each stays under ~30 min wall time on 2 shared cores):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/microcircuit_tasks.py [--quick] [--only sps,teacher,digits,yinyang]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/microcircuit_tasks.py --summarize   # summary of the runs so far
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from cortexsim.models.microcircuit.parameters import basal_attenuation, effective_network
from cortexsim.protocols.microcircuit import (MicrocircuitConfig, _data, _initial_weights, forward_rate_factors,
                                              run_microcircuit)

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "microcircuit_tasks.json"
RUNS = HERE / "results" / "microcircuit_tasks"
GROUPS = ("sps", "teacher", "digits", "yinyang")
SEEDS = range(5)


def _load(quick: bool) -> dict:
    if OUT.exists():
        report = json.loads(OUT.read_text())
        if report.get("quick") == quick:
            return report
    return {"benchmark": "microcircuit_tasks", "dynamics": "steady (fixed point per pattern)", "quick": quick,
            "criteria": {"yinyang": "mean test accuracy over 5 seeds >= 0.95", "digits": "test accuracy >= 0.93",
                         "teacher": "deep final test loss < shallow final test loss",
                         "sps": "apical norm falls >= 100x; analytic SPS |v_A| < 1e-6"},
            "runs": {}, "summary": {}, "passed": {}}


def _config_of(stored: dict) -> MicrocircuitConfig:
    """The run's (resolved) config back from its results.json form (lists -> tuples)."""
    return MicrocircuitConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()
                                 if k != "resolved_params"})


def backprop_reference(cfg: MicrocircuitConfig) -> float:
    """Test accuracy of plain backprop on the microcircuit's effective network with the same set-up.

    Same data, initial (effective) weights, presentation order, batch size, epochs and annealing as
    ``run_microcircuit(cfg)``; the step of each layer is the one the steady-state microcircuit's signal
    would give near the self-predicting state at weak nudging (output: lambda_N eta T a_N, hidden:
    lambda_H eta T c_A b_int a_N / lambda_N times the backprop gradient; see
    tests/unit/test_microcircuit.py::test_steady_state_signals_are_scaled_backprop_gradients).
    One hidden layer with logistic units and a linear output (the Yin-Yang and digits networks).
    """
    cfg = cfg.resolved()
    p = cfg.params()
    if len(cfg.sizes) != 3:
        raise ValueError(f"backprop_reference handles one hidden layer, got sizes {cfg.sizes}")
    train, test = _data(cfg)
    net = effective_network(_initial_weights(cfg, p), p)
    (w_h, w_o), (b_h, b_o) = [w.copy() for w in net.weights], [b.copy() for b in net.biases]
    a_n = p.g_som / (p.g_lk + p.g_B + p.g_som)
    c_a, b_int = p.g_A / (p.g_lk + p.g_B + p.g_A), (p.g_lk + p.g_D) / (p.g_lk + p.g_D + p.g_som_int)
    lam_h, lam_n = basal_attenuation(p, hidden=True), basal_attenuation(p, hidden=False)
    lr_h = lam_h * cfg.eta_up[0] * cfg.pattern_duration * c_a * b_int * a_n / lam_n
    lr_o = lam_n * cfg.eta_up[1] * cfg.pattern_duration * a_n
    for epoch in range(1, cfg.epochs + 1):
        f_h, f_o = forward_rate_factors(cfg, epoch)
        order = np.random.default_rng(cfg.seed * 1000 + epoch).permutation(len(train))
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            x, target = train.x[idx], train.targets[idx]
            hidden = net.hidden.phi(x @ w_h.T + b_h)
            err_o = target - (hidden @ w_o.T + b_o)
            err_h = (err_o @ w_o) * hidden * (1.0 - hidden)                 # logistic derivative
            w_o += f_o * lr_o * err_o.T @ hidden
            b_o += f_o * lr_o * err_o.sum(axis=0)
            w_h += f_h * lr_h * err_h.T @ x
            b_h += f_h * lr_h * err_h.sum(axis=0)
    output = net.hidden.phi(test.x @ w_h.T + b_h) @ w_o.T + b_o
    return float(np.mean(np.argmax(output, axis=1) == test.y))


def main(quick: bool = False, only: tuple = GROUPS):
    scale = 0.1 if quick else 1.0
    report = _load(quick)
    report.update({"epoch_scale": scale, "versions": {"numpy": np.__version__, "python": platform.python_version()},
                   "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()}})

    def run(name, cfg):
        cfg = cfg.resolved()
        cfg = MicrocircuitConfig(**{**cfg.__dict__, "epochs": max(1, int(cfg.epochs * scale))})
        load_before, cpu = os.getloadavg(), time.process_time()
        result = run_microcircuit(cfg, RUNS / name, progress=True)
        report["runs"][name] = {"config": result.config, "final": result.final, "wall_time_s": result.wall_time_s,
                                "cpu_time_s": time.process_time() - cpu,
                                "load_average_before_after": [load_before, os.getloadavg()], "curve": result.curve}
        OUT.write_text(json.dumps(report, indent=2, default=str))
        return result

    summary, passed = report.setdefault("summary", {}), report.setdefault("passed", {})
    if "sps" in only:
        sps = run("sps_seed0", MicrocircuitConfig(seed=0, task="sps"))
        summary["sps_apical_norm_reduction"] = sps.final["apical_norm_reduction"]
        summary["sps_analytic_max_abs_apical"] = sps.final["analytic_sps_max_abs_apical"]
        passed["sps"] = bool(sps.final["apical_norm_reduction"] >= 100
                             and sps.final["analytic_sps_max_abs_apical"] < 1e-6)
    if "teacher" in only:
        deep = run("teacher_deep_seed0", MicrocircuitConfig(seed=0, task="teacher"))
        shallow = run("teacher_shallow_seed0", MicrocircuitConfig(seed=0, task="teacher", shallow=True))
        summary["teacher_deep_test_loss"] = deep.final["test_loss"]
        summary["teacher_shallow_test_loss"] = shallow.final["test_loss"]
        passed["teacher"] = bool(deep.final["test_loss"] < shallow.final["test_loss"])
    for task in ("digits", "yinyang"):
        if task in only:
            accs = [run(f"{task}_seed{s}", MicrocircuitConfig(seed=s, task=task)).final["test_accuracy"] for s in SEEDS]
            summary[f"{task}_test_accuracies"] = accs
            bp = [backprop_reference(_config_of(report["runs"][f"{task}_seed{s}"]["config"])) for s in SEEDS]
            summary[f"{task}_backprop_reference_test_accuracies"] = bp
            summary[f"{task}_backprop_reference_mean"] = float(np.mean(bp))
            summary[f"{task}_mean"], summary[f"{task}_std"] = float(np.mean(accs)), float(np.std(accs))
            passed[task] = bool(np.mean(accs) >= (0.95 if task == "yinyang" else 0.93))
    OUT.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({"summary": summary, "passed": passed}, indent=1))


def summarize_available(quick: bool = False) -> None:
    """Recompute the digits / Yin-Yang summaries from the runs stored so far (e.g. after an interrupted group)."""
    report = _load(quick)
    for task, threshold in (("digits", 0.93), ("yinyang", 0.95)):
        accs = [report["runs"][f"{task}_seed{s}"]["final"]["test_accuracy"] for s in SEEDS
                if f"{task}_seed{s}" in report["runs"]]
        if accs:
            report["summary"][f"{task}_test_accuracies"] = accs
            report["summary"][f"{task}_mean"], report["summary"][f"{task}_std"] = float(np.mean(accs)), float(np.std(accs))
            report["summary"][f"{task}_n_seeds_completed"] = len(accs)
            report["passed"][task] = bool(len(accs) == len(SEEDS) and np.mean(accs) >= threshold)
    OUT.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({"summary": report["summary"], "passed": report["passed"]}, indent=1))


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--summarize" in args:
        summarize_available(quick="--quick" in args)
        sys.exit(0)
    groups = GROUPS
    if "--only" in args:
        groups = tuple(args[args.index("--only") + 1].split(","))
        if not set(groups) <= set(GROUPS):
            raise ValueError(f"--only takes a comma-separated subset of {GROUPS}, got {groups}")
    main(quick="--quick" in args, only=groups)
