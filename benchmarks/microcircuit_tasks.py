"""Microcircuit learning tasks with the steady-state dynamics (protocols.microcircuit defaults).

Yin-Yang 4-120-3 over 5 seeds, digits 64-100-10, teacher-student 30-50-10 (deep vs shallow learner with
the same rule, only the output layer plastic) and the self-predicting-state task 30-50-10.
Writes benchmarks/results/microcircuit_tasks.json (updated after every run) and per-run folders with
results.json + learning curves under benchmarks/results/microcircuit_tasks/.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/microcircuit_tasks.py [--quick]
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from cortexsim.protocols.microcircuit import MicrocircuitConfig, run_microcircuit

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "microcircuit_tasks.json"
RUNS = HERE / "results" / "microcircuit_tasks"


def main(quick: bool = False):
    scale = 0.1 if quick else 1.0
    report = {"benchmark": "microcircuit_tasks", "dynamics": "steady (fixed point per pattern)",
              "quick": quick, "epoch_scale": scale,
              "criteria": {"yinyang": "mean test accuracy over 5 seeds >= 0.95", "digits": "test accuracy >= 0.93",
                           "teacher": "deep final test loss < shallow final test loss",
                           "sps": "apical norm falls >= 100x; analytic SPS |v_A| < 1e-6"},
              "runs": {}, "versions": {"numpy": np.__version__, "python": platform.python_version()},
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()}}

    def run(name, cfg):
        cfg = cfg.resolved()
        cfg = MicrocircuitConfig(**{**cfg.__dict__, "epochs": max(1, int(cfg.epochs * scale))})
        result = run_microcircuit(cfg, RUNS / name, progress=True)
        report["runs"][name] = {"config": result.config, "final": result.final, "wall_time_s": result.wall_time_s,
                                "curve": result.curve}
        OUT.write_text(json.dumps(report, indent=2, default=str))
        return result

    sps = run("sps_seed0", MicrocircuitConfig(seed=0, task="sps"))
    deep = run("teacher_deep_seed0", MicrocircuitConfig(seed=0, task="teacher"))
    shallow = run("teacher_shallow_seed0", MicrocircuitConfig(seed=0, task="teacher", shallow=True))
    digits = run("digits_seed0", MicrocircuitConfig(seed=0, task="digits"))
    yy = [run(f"yinyang_seed{s}", MicrocircuitConfig(seed=s, task="yinyang")) for s in range(5)]
    accs = [r.final["test_accuracy"] for r in yy]
    report["summary"] = {
        "sps_apical_norm_reduction": sps.final["apical_norm_reduction"],
        "sps_analytic_max_abs_apical": sps.final["analytic_sps_max_abs_apical"],
        "teacher_deep_test_loss": deep.final["test_loss"], "teacher_shallow_test_loss": shallow.final["test_loss"],
        "digits_test_accuracy": digits.final["test_accuracy"],
        "yinyang_test_accuracies": accs, "yinyang_mean": float(np.mean(accs)), "yinyang_std": float(np.std(accs)),
        "passed": {"sps": sps.final["apical_norm_reduction"] >= 100
                   and sps.final["analytic_sps_max_abs_apical"] < 1e-6,
                   "teacher": deep.final["test_loss"] < shallow.final["test_loss"],
                   "digits": digits.final["test_accuracy"] >= 0.93, "yinyang": float(np.mean(accs)) >= 0.95}}
    OUT.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
