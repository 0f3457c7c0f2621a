"""Choosing the digits schedule of benchmarks/ensemble_data.py on development seeds (exact CD, pure numpy).

Spiking CD iterations are expensive, so the acceptance run can afford only a few hundred updates per
noise mode; this script chooses the learning rate, schedule and number of updates that exact-Gibbs CD
(the same update, optimizer, batch and initial weights as the protocol's exact baseline,
:func:`cortexsim.protocols.cd_digits.train_exact`) needs to learn the 100-hidden digits RBM from random
initial weights. Selection is on development seeds only (never the benchmark's seed 1), scored on a
VALIDATION split carved out of each development seed's training split (20 %, the test split is not
touched): exact free-energy classification accuracy of the trained RBM.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ensemble_data_schedule.py
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ensemble_data_schedule.py --task mnist --max-updates 5000

Writes benchmarks/results/ensemble_data_schedule.json: per candidate (learning rate, schedule tau,
updates) the validation accuracy per development seed and its mean; ``summary.chosen`` is the best
mean among the candidates with at most ``--max-updates`` updates.

``--task mnist`` (writes ``ensemble_data_schedule_mnist.json``): the 14x14 MNIST RBM of the ensemble's acceptance
size (206 visible + 200 hidden units), the validation images are :data:`MNIST_VALIDATION` held-out training images
of the ensemble's own split (``EnsembleDataConfig.validation_images``), candidates :data:`MNIST_GRID` around the
spiking MNIST RBM's chosen schedule (benchmarks/spiking_rbm_data.py: learning rate 0.1, tau 2000).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from cortexsim.models.cd_learning import bipartite_mask
from cortexsim.protocols.cd_digits import N_LABELS, N_PIXELS, N_VISIBLE, free_energy_accuracy, pretrain_exact, train_exact
from cortexsim.protocols.cd_digits import load_digits_split
from cortexsim.protocols.ensemble_data import TASKS, EnsembleDataConfig, load_task_split
from cortexsim.results import library_versions, machine_info, write_json_atomic
from cortexsim.seeds import derive_rng

ROOT = Path(__file__).resolve().parent
DEV_SEEDS = (7, 8, 9)
LEARNING_RATES = (0.05, 0.1, 0.2, 0.4, 0.8)
SCHEDULE_TAUS = (100.0, 1000.0, 10000.0)
UPDATES = (100, 200, 300, 400, 800, 1600)
#: MNIST: held-out training images, (learning rates, taus, updates), hidden units.
MNIST_VALIDATION = 5000
MNIST_GRID = ((0.05, 0.1, 0.2), (2000.0,), (500, 1000, 1500, 2000, 3000, 5000))
MNIST_HIDDEN = 200


def validation_split(seed: int, fraction: float = 0.2):
    """(train rows (n, 74), validation pixels, validation labels) from the training split of ``seed``."""
    config = EnsembleDataConfig(seed=seed)
    data, _, _, _ = load_digits_split(config.binarize_threshold, config.test_fraction, seed)
    order = derive_rng(seed, 99).permutation(data.shape[0])
    n_val = int(round(fraction * data.shape[0]))
    val, train = data[order[:n_val]], data[order[n_val:]]
    return train, val[:, :N_PIXELS], np.argmax(val[:, N_PIXELS:N_VISIBLE], axis=1)


def mnist_validation_split(seed: int):
    """(train rows (n, 206), validation pixels, validation labels): the MNIST ensemble's own development split
    (:func:`cortexsim.protocols.ensemble_data.load_task_split` with ``validation_images``)."""
    train, _, val_x, val_y = load_task_split(EnsembleDataConfig(seed=seed, task="mnist",
                                                                validation_images=MNIST_VALIDATION))
    return train, val_x, val_y


def score(seed: int, learning_rate: float, tau: float, updates: tuple, task: str = "digits") -> list[float]:
    """Validation accuracy after each number of ``updates`` (one training run, curve read at each)."""
    train, val_x, val_y = validation_split(seed) if task == "digits" else mnist_validation_split(seed)
    sizes = {} if task == "digits" else {"task": "mnist", "n_hidden": MNIST_HIDDEN}
    ensemble = EnsembleDataConfig(seed=seed, learning_rate=learning_rate, schedule_tau=tau,
                                  train_iterations=max(updates), **sizes)
    config = replace(ensemble.network_config(0), pretrain_iterations=0)
    W, b, chains, rng, _ = pretrain_exact(config, train, val_x, val_y)
    update = ensemble.cd_settings().update(bipartite_mask(ensemble.n_visible, config.n_hidden), W.shape[0])
    out, done = [], 0
    for n in updates:
        W, b, chains, _ = train_exact(W, b, update, train, n - done, config.batch_size, chains, rng, first_iteration=done,
                                      n_visible=ensemble.n_visible)
        done = n
        out.append(free_energy_accuracy(W, b, val_x, val_y))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-updates", type=int, default=400)
    parser.add_argument("--task", choices=TASKS, default="digits")
    parser.add_argument("--dev-seeds", default=",".join(map(str, DEV_SEEDS)), help="comma-separated (never 1)")
    args = parser.parse_args(argv)
    dev_seeds = [int(s) for s in args.dev_seeds.split(",") if s]
    if 1 in dev_seeds:
        parser.error("--dev-seeds: seed 1 is the benchmark's; choose on other seeds")
    mnist = args.task == "mnist"
    rates, taus, updates = MNIST_GRID if mnist else (LEARNING_RATES, SCHEDULE_TAUS, UPDATES)
    tic = time.perf_counter()
    candidates = {}
    for lr, tau in itertools.product(rates, taus):
        per_seed = [score(seed, lr, tau, updates, args.task) for seed in dev_seeds]
        for k, n in enumerate(updates):
            accs = [row[k] for row in per_seed]
            candidates[f"lr{lr:g}_tau{tau:g}_updates{n}"] = {
                "learning_rate": lr, "schedule_tau": tau, "updates": n,
                "validation_accuracy_per_seed": accs, "validation_accuracy_mean": float(np.mean(accs))}
        print(f"lr {lr:g} tau {tau:g}: " + ", ".join(
            f"{n}: {np.mean([row[k] for row in per_seed]):.3f}" for k, n in enumerate(updates)), flush=True)
    eligible = {k: v for k, v in candidates.items() if v["updates"] <= args.max_updates}
    chosen = max(eligible, key=lambda k: eligible[k]["validation_accuracy_mean"])
    write_json_atomic(ROOT / "results" / ("ensemble_data_schedule_mnist.json" if mnist else
                                          "ensemble_data_schedule.json"), {
        "description": __doc__.split("\n\n")[1].replace("\n", " "),
        "summary": {"chosen": chosen, **{k: eligible[chosen][k] for k in ("learning_rate", "schedule_tau", "updates",
                                                                          "validation_accuracy_mean")},
                    "max_updates": args.max_updates, "dev_seeds": dev_seeds, "task": args.task},
        "candidates": candidates, "fixed": {"n_hidden": MNIST_HIDDEN if mnist else 100, "batch_size": 10, "momentum": 0.5, "weight_decay": 0.001,
                                            "schedule": "inverse", "initial_weights": "random (scale 0.01)",
                                            "n_labels": N_LABELS,
                                            "validation_images": MNIST_VALIDATION if mnist else "20 % of the training split"},
        "wall_s": time.perf_counter() - tic, "versions": library_versions(), "machine": machine_info(),
        "load_average_at_end": list(os.getloadavg()), "command": " ".join([Path(sys.executable).name, *sys.argv])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
