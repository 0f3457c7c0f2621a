"""Bars real-time experiment: Latent Equilibrium vs the original (non-prospective) dynamics.

3x3 Bars images (pixel noise 0.1, 24 training and 48 test images per seed), 9-30-3 network
(logistic hidden, linear output), tau = 10 ms, presentation times 0.3 ms .. 500 ms, 5 seeds,
200 epochs, learning rate 0.3 per presentation, beta = 0.1.  Also: the microcircuit error variant of
LE, the original dynamics with a 10x smaller learning rate, and the tau x 10 check at t_pres = 10 ms.

Writes benchmarks/results/lagrangian_bars.json (updated after every run) and
benchmarks/results/lagrangian_bars_accuracy.png.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lagrangian_bars.py   (~25 min CPU on one core)
Re-plot an existing results file:  .venv/bin/python benchmarks/lagrangian_bars.py plot
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cortexsim.protocols.lagrangian import LagrangianConfig, run_lagrangian, versions

RESULTS = Path(__file__).resolve().parent / "results"
T_PRES = [0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 500.0]
COMMON = dict(task="bars", seed=0, n_seeds=5, hidden=30, epochs=200, lr=0.3, beta=0.1, dt_max=1.0,
              min_steps=10, n_train=24, n_test=48, noise=0.1, eval_every=20)


def runs():
    """(group name, config) of every run, in execution order."""
    for dyn in ("latent_equilibrium", "original"):
        for t in T_PRES:
            yield dyn, LagrangianConfig(t_pres=t, dynamics=dyn, **COMMON)
    for t in (1.0, 10.0, 100.0):
        yield "latent_equilibrium_microcircuit", LagrangianConfig(t_pres=t, errors="microcircuit", **COMMON)
    for dyn in ("latent_equilibrium", "original"):
        yield f"{dyn}_tau100", LagrangianConfig(t_pres=10.0, dynamics=dyn, **(COMMON | {"tau": 100.0}))
    for t in T_PRES:
        yield "original_lr0.03", LagrangianConfig(t_pres=t, dynamics="original", **(COMMON | {"lr": 0.03}))


def plot(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    styles = {"latent_equilibrium": ("C1", "o", "Latent Equilibrium"),
              "original": ("C0", "s", "original dynamics"),
              "original_lr0.03": ("C0", "v", "original, lr / 10"),
              "latent_equilibrium_microcircuit": ("C3", "^", "LE, microcircuit errors")}
    for group, (color, marker, label) in styles.items():
        rows = [r for r in payload["runs"] if r["group"] == group]
        if not rows:
            continue
        t = np.array([r["config"]["t_pres"] for r in rows])
        acc = 100 * np.array([r["realtime_test_accuracy"] for r in rows])
        ls = "--" if "lr0.03" in group or "micro" in group else "-"
        ax.errorbar(t, acc.mean(1), yerr=acc.std(1, ddof=1), color=color, marker=marker, ls=ls, label=label,
                    capsize=3)
    ax.axhline(100 / 3, color="gray", lw=0.8, ls=":", label="chance")
    ax.axvline(10.0, color="gray", lw=0.8, ls="-.")
    ax.text(10.5, 5, "tau", color="gray", fontsize=8)
    ax.set(xscale="log", xlabel="presentation time t_pres (ms)", ylabel="test accuracy (%), 5 seeds",
           ylim=(0, 105), title="Bars 9-30-3, real-time learning")
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str]) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "lagrangian_bars.json"
    if argv == ["plot"]:  # re-plot (and re-check) an existing results file
        payload = json.loads(out.read_text())
        payload["checks"] = checks(payload)
        out.write_text(json.dumps(payload, indent=2))
        plot(payload, RESULTS / "lagrangian_bars_accuracy.png")
        print(json.dumps(payload["checks"], indent=2))
        return 0
    payload = {"benchmark": "lagrangian_bars", "versions": versions(), "common": COMMON,
               "t_pres_ms": T_PRES, "runs": []}
    for group, cfg in runs():
        res = run_lagrangian(cfg)
        row = {"group": group, "config": asdict(cfg) | {"n_steps": cfg.n_steps, "dt": cfg.dt},
               "seeds": res.seeds, "realtime_test_accuracy": res.realtime_test_accuracy,
               "settled_test_accuracy": res.settled_test_accuracy, "train_accuracy": res.train_accuracy,
               "curve_epochs": res.curve_epochs, "curve_realtime_accuracy": res.curve_realtime_accuracy,
               "summary": res.summary(), "wall_time_s": res.wall_time_s}
        payload["runs"].append(row)
        print(f"{group:34s} t_pres={cfg.t_pres:6.1f} ms tau={cfg.tau:5.1f}: real-time "
              f"{np.round(100 * np.array(res.realtime_test_accuracy), 1).tolist()} settled "
              f"{np.round(100 * np.array(res.settled_test_accuracy), 1).tolist()} ({res.wall_time_s:.0f} s)", flush=True)
        payload["checks"] = checks(payload)
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(out)
    plot(payload, RESULTS / "lagrangian_bars_accuracy.png")
    print(json.dumps(payload["checks"], indent=2))
    return 0


def checks(payload: dict) -> dict:
    """Acceptance figures computed from the runs done so far."""
    def acc(group, t_pres, tau=10.0):
        for r in payload["runs"]:
            if r["group"] == group and r["config"]["t_pres"] == t_pres and r["config"]["tau"] == tau:
                return np.array(r["realtime_test_accuracy"])
        return None

    out = {}
    le = [acc("latent_equilibrium", t) for t in (1.0, 10.0)]
    if all(a is not None for a in le):
        out["le_min_accuracy_at_1_and_10_ms"] = float(min(a.min() for a in le))
    orig = [acc("original", t) for t in T_PRES if t <= 10.0]
    if all(a is not None for a in orig):
        out["original_max_accuracy_at_t_pres_le_10ms"] = float(max(a.max() for a in orig))
    for dyn in ("latent_equilibrium", "original"):
        a10, a100 = acc(dyn, 10.0), acc(f"{dyn}_tau100", 10.0, tau=100.0)
        if a10 is not None and a100 is not None:
            out[f"{dyn}_tau_x10"] = {"mean_tau10": float(a10.mean()), "mean_tau100": float(a100.mean()),
                                     "change": float(a100.mean() - a10.mean()),
                                     "seed_std_tau10": float(a10.std(ddof=1)),
                                     "max_abs_per_seed_change": float(np.max(np.abs(a100 - a10)))}
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
