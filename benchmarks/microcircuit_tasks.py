"""Microcircuit learning tasks with the steady-state dynamics (protocols.microcircuit defaults).

Yin-Yang 4-120-3 over 5 seeds, digits 64-100-10 over 5 seeds, teacher-student 30-50-10 (deep vs
shallow learner with the same rule, only the output layer plastic) and the self-predicting-state task
30-50-10. All runs use the fully local rules: forward weights learn on the nudged fixed point,
interneuron (W_IP) and interneuron-to-pyramidal (W_PI) weights on the free fixed point of every batch;
the self-predicting state is never re-imposed during training.
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

from cortexsim.protocols.microcircuit import MicrocircuitConfig, run_microcircuit

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
