"""Yin-Yang and digits with short presentation times, and the tau x 10 real-time check.

* Yin-Yang 4-120-3 (3000 training / 1000 test points per seed), tau = 10 ms, t_pres = 2 ms
  (0.2 tau, 3 Euler steps per presentation), 5 seeds.  Latent Equilibrium: 80 epochs; original
  dynamics: 10 epochs (for contrast only; the machine was shared).  Input weights N(0, 10^2/4), hidden
  biases N(0, 5^2) (sharp, spread-out hidden features), learning rate 0.05 per presentation decaying by
  0.97 per epoch, 10x larger for the input-to-hidden layer, beta 0.1; the error equations are solved
  within each Euler step by 3 fixed-point sweeps relaxed by 0.7.  These settings were chosen with plain
  per-pattern backprop SGD on the same networks and data (same init, schedule and cost): with one
  learning rate for both layers backprop itself plateaus at 90-93 % (the input layer, with weights of
  size ~5, barely moves), with the hidden layer's rate x10 it reaches 96.1 % (mean of 5 seeds, 60 epochs).
  Group ``yinyang_explicit`` repeats the LE run with the explicit scheme (errors of the previous step):
  measured the same accuracy (95.56 % vs 95.60 % mean), so the relaxed sweeps are not what made the
  difference; the earlier 82.5 % came from the learning setup (single learning rate, slow anneal).
* scikit-learn digits 64-100-10 (20 % test split per seed), t_pres = 1 ms, LE vs original, 5 seeds,
  50 epochs, learning rate 0.05.
* tau x 10: Latent Equilibrium on digits with tau = 100 ms at the same t_pres = 1 ms, compared with
  the tau = 10 ms run and that run's seed spread.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lagrangian_tasks.py [digits tau yinyang ...]
Writes benchmarks/results/lagrangian_tasks.json (merged, updated after every run) and
benchmarks/results/lagrangian_tasks_curves.png.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cortexsim.protocols.lagrangian import LagrangianConfig, run_lagrangian, versions

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "lagrangian_tasks.json"
YINYANG = dict(task="yinyang", seed=0, n_seeds=5, hidden=120, n_train=3000, n_test=1000, t_pres=2.0,
               tau=10.0, beta=0.1, lr=0.05, min_steps=3, dt_max=0.5, init_input_scale=10.0,
               init_hidden_bias=5.0, eval_every=10, lr_decay=0.97, error_iterations=3,
               error_relaxation=0.7, hidden_lr_factor=10.0)
DIGITS = dict(task="digits", seed=0, n_seeds=5, hidden=100, n_test=360, t_pres=1.0, tau=10.0, beta=0.1,
              lr=0.05, min_steps=5, epochs=50, eval_every=10)
GROUPS = {
    "yinyang": [("yinyang_le", LagrangianConfig(dynamics="latent_equilibrium", epochs=80, **YINYANG)),
                ("yinyang_original", LagrangianConfig(dynamics="original", epochs=10,
                                                      **(YINYANG | {"eval_every": 5})))],
    "yinyang_explicit": [("yinyang_le_explicit", LagrangianConfig(
        dynamics="latent_equilibrium", epochs=80, **(YINYANG | {"error_iterations": 1, "error_relaxation": 1.0})))],
    "tau": [("digits_le_tau100", LagrangianConfig(dynamics="latent_equilibrium", **(DIGITS | {"tau": 100.0})))],
    "digits": [("digits_le", LagrangianConfig(dynamics="latent_equilibrium", **DIGITS)),
               ("digits_original", LagrangianConfig(dynamics="original", **DIGITS))],
}


def load() -> dict:
    if OUT.exists():
        return json.loads(OUT.read_text())
    return {"benchmark": "lagrangian_tasks", "runs": {}}


def save(payload: dict) -> None:
    payload["versions"] = versions()
    payload["checks"] = checks(payload["runs"])
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(OUT)


def checks(runs: dict) -> dict:
    out = {}
    if "yinyang_le" in runs:
        acc = np.array(runs["yinyang_le"]["realtime_test_accuracy"])
        cfg = runs["yinyang_le"]["config"]
        out["yinyang_le"] = {"t_pres_over_tau": cfg["t_pres"] / cfg["tau"], "mean": float(acc.mean()),
                             "std": float(acc.std(ddof=1)), "min": float(acc.min()),
                             "settled_mean": float(np.mean(runs["yinyang_le"]["settled_test_accuracy"]))}
    if "digits_le" in runs and "digits_le_tau100" in runs:
        a10 = np.array(runs["digits_le"]["realtime_test_accuracy"])
        a100 = np.array(runs["digits_le_tau100"]["realtime_test_accuracy"])
        out["tau_x10"] = {"task": "digits", "mean_tau10": float(a10.mean()),
                          "mean_tau100": float(a100.mean()), "change_of_mean": float(a100.mean() - a10.mean()),
                          "max_abs_per_seed_change": float(np.max(np.abs(a100 - a10))),
                          "seed_std_tau10": float(a10.std(ddof=1)),
                          "change_below_seed_spread": bool(abs(a100.mean() - a10.mean()) < a10.std(ddof=1))}
    for name in ("yinyang_le_explicit", "yinyang_original", "digits_le", "digits_original"):
        if name in runs:
            acc = np.array(runs[name]["realtime_test_accuracy"])
            out[name] = {"mean": float(acc.mean()), "std": float(acc.std(ddof=1)),
                         "settled_mean": float(np.mean(runs[name]["settled_test_accuracy"]))}
    return out


def plot(runs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, task in zip(axes, ("yinyang", "digits")):
        for name, run in runs.items():
            if not name.startswith(task):
                continue
            acc = 100 * np.array(run["curve_realtime_accuracy"])
            c = run["config"]
            label = f"{c['dynamics']}, tau={c['tau']:g} ms"
            if c.get("error_iterations", 1) > 1:
                label += f", {c['error_iterations']} error sweeps"
            ax.errorbar(run["curve_epochs"], acc.mean(1), yerr=acc.std(1, ddof=1), capsize=2, marker=".",
                        label=label)
        ax.set(xlabel="epoch", ylabel="real-time test accuracy (%)", ylim=(0, 102),
               title=f"{task}, t_pres = {2.0 if task == 'yinyang' else 1.0} ms, 5 seeds")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str]) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = load()
    for group in argv or ["digits", "tau", "yinyang"]:
        if group == "plot":
            continue
        for name, cfg in GROUPS[group]:
            res = run_lagrangian(cfg, progress=True)
            payload["runs"][name] = {"config": asdict(cfg) | {"n_steps": cfg.n_steps, "dt": cfg.dt},
                                     "seeds": res.seeds, "realtime_test_accuracy": res.realtime_test_accuracy,
                                     "settled_test_accuracy": res.settled_test_accuracy,
                                     "train_accuracy": res.train_accuracy, "curve_epochs": res.curve_epochs,
                                     "curve_realtime_accuracy": res.curve_realtime_accuracy,
                                     "summary": res.summary(), "wall_time_s": res.wall_time_s}
            print(name, json.dumps(res.summary()), f"{res.wall_time_s:.0f} s", flush=True)
            save(payload)
    save(payload)
    plot(payload["runs"], RESULTS / "lagrangian_tasks_curves.png")
    print(json.dumps(payload["checks"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
