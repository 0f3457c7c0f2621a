"""Benchmark: spiking RBMs on MNIST (14x14, binarised, + 10 label units), trained by spiking CD from random weights.

Issue 22 part 1. An RBM of 196 pixel + 10 label visible units and 500 hidden units is trained by spiking
contrastive divergence (the CD engine, ``cortexsim train-cd --task mnist``) on ``brian2_standalone``
(compiled once per run) from small random weights (no exact pre-training), and scored on the full
10,000-image MNIST test set: classification = label units' activity with the image clamped; pattern
completion = occluded pixels (bottom half, bottom-right quarter, random 30 %) filled in by sampling. The
exact-Gibbs CD baseline has the same architecture, number of updates and schedule (numpy).

Stages (each resumable; all write into ``--out``; ``report`` assembles the JSON from what exists):

``select``
    The schedule (learning rate, decay tau, number of updates) chosen with the EXACT model on a validation
    split (5,000 held-out training images, dev seed 101; the test set is not touched); ``--grid`` JSON list.
``spiking``
    The reported run (seed 1) on ``--backend`` with the chosen schedule; checkpointed every 100 updates
    (``--resume`` continues). Its checkpoint also holds the exact baseline (computed first).
``nest-timing``
    The same network on NEST for ``--nest-iterations`` updates (per-iteration wall time and the share
    outside the simulator; no evaluation).
``evaluate-partial``
    The spiking evaluation (full test set) of the current weights of a run that has not finished, with figures
    in ``benchmarks/results/spiking_rbm_data/``.
``diagnose``
    Spiking vs exact CD statistics at fixed weights (dev seed, validation split): per variant of the spiking
    settings (``--diag-variants``), the error of the spiking CD direction against a long-Gibbs reference, split
    into data and model phase, its systematic part, and the clamped hidden activity against ``p(h | v)``;
    chooses the spiking settings (``SPIKING``), ``diagnosis`` in the JSON.
``readout-window``
    The spiking read-out window (``eval_read_ms``, ``READ_WINDOWS_MS``) chosen WITHOUT the test set: 2,000 training
    images of the reported run, both trained weight sets (spiking and exact), ``readout_window.json``.
``readout-test``
    The test set once with the chosen window, both weight sets (``--weights``), ``readout_window_test.json``;
    ``--part K/N`` splits it into N slices run in parallel, ``--spiking-settings candidate`` for the candidate run.
``report``
    Writes ``benchmarks/results/spiking_rbm_data.json``; a spiking run that has not finished is
    reported as ``partial`` (updates done, free-energy read-out of its current weights, time needed).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/spiking_rbm_data.py --stage select
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/spiking_rbm_data.py --stage spiking [--resume]
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/spiking_rbm_data.py --stage diagnose \
        --diag-updates 1000 --diag-variants '[{}, {"model_ms": 1600.0}]'
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/spiking_rbm_data.py --stage report
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np


from cortexsim.config import config_from_dict, config_to_dict
from cortexsim.analysis import data_plots
from cortexsim.analysis.plots import plot_learning_curve
from cortexsim.backends.registry import load_backend
from cortexsim.models.cd_learning import bipartite_mask
from cortexsim.protocols.calibration import calibrate
from cortexsim.models.cd_learning import block_gibbs, moments_from_states
from cortexsim.protocols.cd_digits import (N_LABELS, MnistTrainingConfig, exact_baseline, exact_baseline_weights,
                                           exact_classification,
                                           free_energy_accuracy,
                                           load_split, per_iteration_wall_s, rbm_parts, rescheduled_checkpoint,
                                           spiking_evaluation,
                                           train_digits)
from cortexsim.protocols.cd_engine import CDState
from cortexsim.results import library_versions, machine_info, read_json, write_json_atomic
from cortexsim.seeds import derive_seed

RESULTS = Path(__file__).resolve().parent / "results" / "spiking_rbm_data.json"
FIGURES = RESULTS.parent / "spiking_rbm_data"
DEV_SEED, SEED = 101, 1
VALIDATION_IMAGES = 5000
#: Exact-model schedule candidates (learning rate, inverse-decay tau in updates, updates), batch 10.
#: The inverse schedule does not depend on the number of updates, so one run of the longest budget gives the
#: free-energy accuracy after every 100 updates (``curve``): shorter budgets are read off it.
DEFAULT_GRID = [{"learning_rate": 0.1, "schedule_tau": 2000.0, "iterations": 10000},
                {"learning_rate": 0.1, "schedule_tau": 2000.0, "iterations": 10000, "average_fraction": 0.5}]
#: The schedule chosen on the validation split (see ``selection`` in the JSON).
CHOSEN = {"learning_rate": 0.1, "schedule_tau": 2000.0, "iterations": 10000, "average_fraction": 0.5}
#: Spiking settings chosen with the diagnose stage (dev seed, validation split): a 400 ms free phase left the
#: model statistics biased towards the last clamped image (see ``diagnosis`` in the JSON); 1,600 ms removes most
#: of that bias. The exact baseline does not depend on them.
SPIKING = {"model_ms": 1600.0}
#: The candidate for the next spiking run (diagnose stage, dev seed): three persistent free chains beside the
#: clamped network, 100 ms after the data phase; to be confirmed by the dev runs (``--stage dev``) first.
CANDIDATE = {"free_chains": 3, "model_ms": 100.0}
SPIKING_REASON = ("diagnose stage at fixed weights (dev seed, validation held out): the 400 ms free phase left the model "
                  "statistics biased towards the last clamped image, 1,600 ms removed most of that bias")


#: The reported runs' number of updates: the chosen schedule (learning rate, tau, momentum, decay, batch, averaging
#: over the last half) with 5,000 instead of 10,000 updates, for time (see ``selection.reported_iterations``).
REPORTED_ITERATIONS = 5000
REPORTED_REASON = ("time: the 10,000-update spiking run takes ~4.2 h (1.5 s per update, measured in session 2), over a working "
                   "session, so the spiking figure stayed null for two sessions; the exploratory 5,000-update exact "
                   "point (without iterate averaging, seed 1, 5,000 held-out training images) had validation "
                   "accuracy 0.893 (selection.exploratory). The exact baseline of the criterion is recomputed with "
                   "exactly this schedule (seed 1, test set); the 10,000-update exact figure is kept as "
                   "exact_test_accuracy_10000_updates")


def reported_config(backend: str, **overrides) -> MnistTrainingConfig:
    """The reported run's settings (seed 1, the chosen schedule with ``REPORTED_ITERATIONS`` updates)."""
    return MnistTrainingConfig(seed=SEED, backend=backend,
                               **{**CHOSEN, **SPIKING, "iterations": REPORTED_ITERATIONS, **overrides})


def stage_select(args) -> None:
    grid = json.loads(args.grid) if args.grid else DEFAULT_GRID
    path = args.out / "selection.json"
    done = read_json(path) if path.is_file() else []
    for point in grid:
        if any(entry["point"] == point for entry in done):
            continue
        config = MnistTrainingConfig(seed=DEV_SEED, validation_images=VALIDATION_IMAGES, n_completion_images=100,
                                     **point)
        tic = time.perf_counter()
        prepared = exact_baseline(config)
        base = prepared["baseline"]
        entry = {"point": point, "validation_accuracy": base["accuracy"],
                 "validation_free_energy_accuracy": base["free_energy_accuracy"],
                 "validation_completion_errors": base["completion_errors"], "curve": prepared["baseline_curve"],
                 "wall_s": time.perf_counter() - tic}
        logging.info("selection %s: validation accuracy %.4f (free energy %.4f)", point, base["accuracy"],
                     base["free_energy_accuracy"])
        done.append(entry)
        write_json_atomic(path, done)


#: Settings that only the spiking part uses: runs that differ in nothing else have the same exact part.
SPIKING_ONLY = ("backend", "model_ms", "data_copies", "free_chains", "clamp_ms", "settle_ms", "clamp_bias",
                "readout_dt_ms", "eval_settle_ms", "eval_read_ms", "eval_chunk")


def seed_checkpoint(config: MnistTrainingConfig, folder: Path, source: Path) -> None:
    """Start the run ``config`` in ``folder`` from the exact part (pre-training, exact baseline) of the checkpoint
    ``source`` instead of recomputing it: the first checkpoint :func:`train_digits` would write, with the prepared
    part copied. ValueError if the two runs differ in a setting the exact part uses."""
    state = read_json(source)
    mine, theirs = config_to_dict(config), state["config"]
    differ = sorted(k for k in set(mine) | set(theirs) if k not in SPIKING_ONLY and mine.get(k) != theirs.get(k))
    if differ or state["task"] != config.dataset:
        raise ValueError(f"{source}: its exact part belongs to other settings ({differ})")
    n_visible = config.n_pixels + N_LABELS
    cd = CDState.fresh(state["prepared"]["W"], state["prepared"]["b"], config.cd_settings(),
                       bipartite_mask(n_visible, config.n_hidden),
                       rng=np.random.default_rng(derive_seed(config.seed, 13)))
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "checkpoint.json", {"task": config.dataset, "config": mine,
                                                   "prepared": state["prepared"],
                                                   "spiking_before": state["spiking_before"], "cd": cd.to_dict()})


def stage_spiking(args) -> None:
    config = reported_config(args.backend, **_settings(args),
                             **({} if args.iterations is None else {"iterations": args.iterations}))
    folder = args.out / args.backend
    if args.reuse_prepared and not (folder / "checkpoint.json").is_file():
        seed_checkpoint(config, folder, args.reuse_prepared)
    if args.reschedule_from and not (folder / "checkpoint.json").is_file():
        # an unfinished run of the same settings with another total: continued as a run of config.iterations
        # updates (refused unless nothing done depends on the total); the exact part from the exact stage
        exact = read_json(args.out / f"exact_{config.iterations}.json")
        if exact["config"] != config_to_dict(config):
            raise ValueError(f"exact_{config.iterations}.json belongs to other settings")
        state = rescheduled_checkpoint(read_json(args.reschedule_from), config, exact["prepared"])
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / "checkpoint.json", state)
        logging.info("rescheduled %s (%d updates done) to %d updates", args.reschedule_from,
                     state["cd"]["iteration"], config.iterations)
    resume = (folder / "checkpoint.json").is_file()
    result = train_digits(config, out_dir=folder, resume=resume, progress=True)
    write_json_atomic(folder / "summary.json", result.summary())


def stage_exact(args) -> None:
    """The exact part alone (pre-training, exact-Gibbs baseline on the test set) of the reported run with
    ``--iterations`` updates, in ``exact_<iterations>.json`` (the ``prepared`` part of a checkpoint)."""
    config = reported_config("brian2_standalone", **({} if args.iterations is None else
                                                     {"iterations": args.iterations}))
    prepared = exact_baseline(config)
    base = prepared["baseline"]
    logging.info("exact baseline, %d updates: test accuracy %.4f (free energy %.4f), completion %s",
                 config.iterations, base["accuracy"], base["free_energy_accuracy"], base["completion_errors"])
    write_json_atomic(args.out / f"exact_{config.iterations}.json", {"config": config_to_dict(config),
                                                                    "prepared": prepared})


def stage_exact_readout(args) -> None:
    """The exact read-outs of the FINISHED spiking run's trained weights (the iterate average): block-Gibbs label
    read-out (the exact baseline's evaluation: same sweeps, burn-in and seed) and free energy, on the test set, in
    ``exact_readout.json`` of the run folder. Splits the spiking run's gap to the exact baseline into the
    weights' part (these figures against the baseline's) and the spiking read-out's (the spiking accuracy
    against these)."""
    config = reported_config(args.backend, **({} if args.iterations is None else {"iterations": args.iterations}))
    folder = args.out / args.backend
    state = read_json(folder / "checkpoint.json")
    if state["config"] != config_to_dict(config) or "spiking_after" not in state:
        raise ValueError(f"{folder}: not a finished run of the reported settings")
    n_visible = config.n_pixels + N_LABELS
    cd = CDState.from_dict(state["cd"])
    W, b = cd.trained(config.cd_settings(), bipartite_mask(n_visible, config.n_hidden))
    _, _, test_x, test_y = load_split(config)
    tic = time.perf_counter()
    predicted = exact_classification(W, b, test_x, config.eval_gibbs_sweeps, config.eval_gibbs_burn_in,
                                     np.random.default_rng(derive_seed(config.seed, 12)))
    out = {"description": "exact read-outs of the spiking run's trained weights (iterate average), full test set: "
                          "block-Gibbs label read-out (eval_gibbs_sweeps, eval_gibbs_burn_in, seed as the exact "
                          "baseline's) and free energy",
           "gibbs_label_accuracy": float(np.mean(predicted == test_y)),
           "free_energy_accuracy": free_energy_accuracy(W, b, test_x, test_y),
           "spiking_label_accuracy": state["spiking_after"]["accuracy"], "wall_s": time.perf_counter() - tic}
    logging.info("exact read-outs of the spiking weights: %s", out)
    write_json_atomic(folder / "exact_readout.json", out)


def stage_exact_weights_spiking(args) -> None:
    """The spiking read-outs (classification on the full test set, completion) of the EXACT baseline's trained
    weights (recomputed, :func:`exact_baseline_weights`; checked against the rounded weights the exact stage
    kept), with the reported evaluation settings and seed, in ``exact_weights_spiking_readout.json``: what the
    spiking read-out loses on weights it did not learn."""
    config = reported_config(args.backend, **({} if args.iterations is None else {"iterations": args.iterations}))
    exact = read_json(args.out / f"exact_{config.iterations}.json")
    W, b = exact_baseline_weights(config)
    n_visible = config.n_pixels + N_LABELS
    if not np.array_equal(rbm_parts(W, b, n_visible)[0].round(4), np.asarray(exact["prepared"]["baseline_W_vh"])):
        raise ValueError("the recomputed exact weights differ from the exact stage's")
    _, _, test_x, test_y = load_split(config)
    fit = calibrate(config.calibration()).fit
    scores = spiking_evaluation(config, load_backend(args.backend), fit, W, b, test_x, test_y,
                                derive_seed(config.seed, 15), progress=True, label="exact weights")
    out = {"description": "spiking read-outs (reported evaluation settings and seed) of the exact baseline's trained "
                          f"weights ({config.iterations} updates), full test set",
           "spiking_label_accuracy": scores["accuracy"], "completion_errors": scores["completion_errors"],
           "free_energy_accuracy": scores.get("free_energy_accuracy"),
           "exact_gibbs_label_accuracy": exact["prepared"]["baseline"]["accuracy"], "wall_s": scores.get("wall_s")}
    logging.info("spiking read-outs of the exact weights: %s", out)
    write_json_atomic(args.out / "exact_weights_spiking_readout.json", out)


#: Read-out windows compared by the readout-window stage (eval_read_ms, ms), shortest first.
READ_WINDOWS_MS = (100.0, 300.0, 600.0)
#: Training images (of the reported run, seed 1) on which the window is chosen; the test set is not touched.
WINDOW_IMAGES = 2000
#: A longer window must buy at least this much (mean accuracy of both weight sets) over the shortest within it.
WINDOW_TOLERANCE = 0.005


def _reported_weights(args, config: MnistTrainingConfig, names=("spiking_weights", "exact_weights")) -> dict:
    """The trained weight sets ``names`` of the reported run: the finished spiking run's iterate average
    (``spiking_weights``), its last iterate (``spiking_last_iterate``) and the exact baseline's (``exact_weights``, (recomputed once, checked against the exact stage's rounded weights, cached in
    ``exact_<N>_weights.npz``; only computed when asked for)."""
    unknown = set(names) - {"spiking_weights", "spiking_last_iterate", "exact_weights"}
    if unknown:
        raise ValueError(f"--weights: unknown weight sets {sorted(unknown)} (allowed: spiking_weights, "
                         "spiking_last_iterate, exact_weights)")
    n_visible = config.n_pixels + N_LABELS
    checkpoint = args.out / args.backend / "checkpoint.json"
    if read_json(checkpoint)["config"] != config_to_dict(config):
        raise ValueError(f"{args.out / args.backend}: not a run of the reported settings")
    out = {"spiking_weights": trained_weights(checkpoint)}          # refuses a run that has not finished
    if "spiking_last_iterate" in names:
        out["spiking_last_iterate"] = trained_weights(checkpoint, last_iterate=True)
    if "exact_weights" not in names:
        return {name: out[name] for name in names}
    cache = args.out / f"exact_{config.iterations}_weights.npz"
    if cache.is_file():
        with np.load(cache) as f:
            exact_w = (f["W"], f["b"])
    else:
        exact_w = exact_baseline_weights(config)
        np.savez(cache, W=exact_w[0], b=exact_w[1])
    exact = read_json(args.out / f"exact_{config.iterations}.json")
    if not np.array_equal(rbm_parts(*exact_w, n_visible)[0].round(4), np.asarray(exact["prepared"]["baseline_W_vh"])):
        raise ValueError("the recomputed exact weights differ from the exact stage's")
    out["exact_weights"] = exact_w
    return {name: out[name] for name in names}


def _training_image_readouts(args, config: MnistTrainingConfig, weights: dict, windows, path: Path) -> dict:
    """Spiking label read-out of ``WINDOW_IMAGES`` training images of the reported run (seed 1, a fixed random subset,
    seed ``derive_seed(1, 40)``; evaluation seed ``derive_seed(1, 41)``) per weight set and read-out window (ms),
    resumable in ``path``: ``{"windows_ms", "accuracy": {name: {window: acc}}, "wall_s": ...}``."""
    train, train_y, _, _ = load_split(config)
    pick = np.random.default_rng(derive_seed(SEED, 40)).choice(len(train_y), WINDOW_IMAGES, replace=False)
    images, labels = train[pick, :config.n_pixels], train_y[pick]
    fit = calibrate(config.calibration()).fit
    out = read_json(path) if path.is_file() else {"windows_ms": list(windows), "accuracy": {}, "wall_s": {}}
    for name, (W, b) in weights.items():
        for window in windows:
            key = f"{window:g}"
            if key in out["accuracy"].get(name, {}):
                continue
            windowed = dataclasses.replace(config, eval_read_ms=window, n_completion_images=1)
            scores = spiking_evaluation(windowed, load_backend(args.backend), fit, W, b, images, labels,
                                        derive_seed(SEED, 41), progress=True, label=f"{name} {key} ms")
            out["accuracy"].setdefault(name, {})[key] = scores["accuracy"]
            out["wall_s"].setdefault(name, {})[key] = scores["wall_s"]
            logging.info("read-out window %s ms, %s: training-image accuracy %.4f", key, name, scores["accuracy"])
            write_json_atomic(path, out)
    return out


#: Windows (ms) of the averaging stage: the runs' own read-out and the chosen window.
AVERAGING_WINDOWS_MS = (100.0, 600.0)
#: The last iterate replaces the iterate average for the spiking read-out only if better by this much (mean accuracy
#: over ``AVERAGING_WINDOWS_MS`` on the training images; a paired difference on 2,000 images has noise ~0.005).
AVERAGING_MARGIN = 0.01


def stage_averaging(args) -> None:
    """Which trained weights the SPIKING network reads out, chosen without the test set: the finished run's iterate
    average (the schedule's ``average_fraction``, chosen with the exact model) or its last iterate, by the spiking
    label read-out of the readout-window stage's training images at ``AVERAGING_WINDOWS_MS``. Rule, fixed before the
    run (session 8, after the diagnose stage found the free-running sampler much further from Gibbs chains at the
    average than at the last iterate): the last iterate only if its mean accuracy is higher by ``AVERAGING_MARGIN``.
    The exact baseline keeps its average. Writes ``averaging.json``."""
    config = reported_config(args.backend, **_settings(args),
                             **({} if args.iterations is None else {"iterations": args.iterations}))
    weights = _reported_weights(args, config, ("spiking_weights", "spiking_last_iterate"))
    path = args.out / "averaging.json"
    out = _training_image_readouts(args, config, weights, AVERAGING_WINDOWS_MS, path)
    mean = {name: float(np.mean([out["accuracy"][name][f"{w:g}"] for w in AVERAGING_WINDOWS_MS])) for name in weights}
    chosen = ("spiking_last_iterate" if mean["spiking_last_iterate"] >= mean["spiking_weights"] + AVERAGING_MARGIN
              else "spiking_weights")
    out.update({"description": f"spiking label read-out (eval_settle_ms {config.eval_settle_ms:g} ms, then the window) "
                               f"of {WINDOW_IMAGES} training images of the reported run (the readout-window stage's "
                               "subset and seeds; the test set not touched): the run's iterate average "
                               "(spiking_weights) and its last iterate",
                "mean_accuracy": mean, "chosen": chosen, "images": WINDOW_IMAGES,
                "rule": f"the last iterate only if its mean accuracy >= the average's + {AVERAGING_MARGIN}"})
    logging.info("averaging: mean accuracies %s -> %s", mean, chosen)
    write_json_atomic(path, out)


def stage_readout_window(args) -> None:
    """Choose the spiking read-out window ``eval_read_ms`` (``READ_WINDOWS_MS``) WITHOUT the test set: spiking
    label read-out of ``WINDOW_IMAGES`` training images of the reported run (seed 1; a fixed random subset; the
    weights were trained on them, no choice used them before) with both trained weight sets (the read-out must
    not favour one). Rule, fixed before the run: the shortest window whose mean accuracy over the two weight sets
    is within ``WINDOW_TOLERANCE`` of the best. Writes ``readout_window.json``."""
    config = reported_config(args.backend, **({} if args.iterations is None else {"iterations": args.iterations}))
    weights = _reported_weights(args, config)
    path = args.out / "readout_window.json"
    out = _training_image_readouts(args, config, weights, READ_WINDOWS_MS, path)
    mean = {f"{w:g}": float(np.mean([out["accuracy"][n][f"{w:g}"] for n in weights])) for w in READ_WINDOWS_MS}
    best = max(mean.values())
    chosen = next(w for w in READ_WINDOWS_MS if mean[f"{w:g}"] >= best - WINDOW_TOLERANCE)
    out.update({"description": f"spiking label read-out (eval_settle_ms {config.eval_settle_ms:g} ms, then "
                               f"eval_read_ms) of {WINDOW_IMAGES} training images of the reported run (seed {SEED}, "
                               "random subset, seed derive_seed(1, 40); the weights were trained on them; the test "
                               "set not touched), both trained weight sets of the 5,000-update run",
                "mean_accuracy": mean, "rule": f"shortest window with mean accuracy >= best - {WINDOW_TOLERANCE}",
                "chosen_eval_read_ms": chosen, "images": WINDOW_IMAGES, "evaluation_seed": derive_seed(SEED, 41)})
    logging.info("read-out window: mean accuracies %s -> %g ms", mean, chosen)
    write_json_atomic(path, out)


def _settings(args) -> dict:
    """Config overrides of ``--spiking-settings`` (the chosen ones: none; the candidate: ``CANDIDATE``)."""
    return CANDIDATE if args.spiking_settings == "candidate" else {}


def parse_part(text: str | None) -> tuple[int, int] | None:
    """``--part K/N`` as (K, N) with 0 <= K < N; None for None. ValueError naming ``--part`` otherwise.

    Examples
    --------
    >>> parse_part("1/2")
    (1, 2)
    """
    if text is None:
        return None
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--part must be K/N with integers 0 <= K < N, got {text!r}") from None
    if not 0 <= k < n:
        raise ValueError(f"--part must be K/N with integers 0 <= K < N, got {text!r}")
    return k, n


def merge_parts(parts: list[dict], n_images: int) -> dict:
    """The test-set figures of one weight set from its ``--part`` files (K = 0 .. N-1, contiguous image slices;
    completion in part 0 only): accuracies weighted by the images of each part (the same as one run's per-image
    mean), completion from part 0, wall time summed (CPU) and the longest part's (elapsed), simulated time summed.

    Examples
    --------
    >>> a = {"part": [0, 2], "images": 3, "seed": 1, "accuracy": 1.0, "free_energy_accuracy": 2 / 3, "wall_s": 5.0,
    ...      "simulated_ms": 30.0, "completion_errors": {"half": 0.1}}
    >>> b = {"part": [1, 2], "images": 1, "seed": 2, "accuracy": 0.0, "free_energy_accuracy": 1.0, "wall_s": 2.0,
    ...      "simulated_ms": 10.0}
    >>> m = merge_parts([b, a], 4)
    >>> m["accuracy"], m["free_energy_accuracy"], m["completion_errors"], m["wall_s"], m["elapsed_s"]
    (0.75, 0.75, {'half': 0.1}, 7.0, 5.0)
    """
    parts = sorted(parts, key=lambda p: p["part"][0])
    n = parts[0]["part"][1]
    if [p["part"] for p in parts] != [[k, n] for k in range(n)] or sum(p["images"] for p in parts) != n_images:
        raise ValueError(f"parts {[p['part'] for p in parts]} do not cover the {n_images} test images once")
    weight = np.array([p["images"] for p in parts], dtype=float) / n_images
    return {"accuracy": float(weight @ [p["accuracy"] for p in parts]),
            "free_energy_accuracy": float(weight @ [p["free_energy_accuracy"] for p in parts]),
            "completion_errors": parts[0]["completion_errors"],
            "wall_s": float(sum(p["wall_s"] for p in parts)), "elapsed_s": float(max(p["wall_s"] for p in parts)),
            "simulated_ms": float(sum(p["simulated_ms"] for p in parts)),
            "parts": [{k: p[k] for k in ("part", "images", "seed", "accuracy", "wall_s")} for p in parts]}


def stage_readout_test(args) -> None:
    """The test set ONCE with the window chosen by ``readout-window``: spiking read-outs (classification,
    completion; the reported evaluation seed) of both trained weight sets, ``--weights`` (both by default), in
    ``readout_window_test.json``. ``--window-file``: the choice made for another run folder (the candidate run
    reads the one made before it existed). ``--part K/N``: only the K-th of N contiguous slices of the test set
    (completion in part 0; part K > 0 with seed ``derive_seed(seed, 15, K)``), in
    ``readout_window_test_<weights>_part<K>of<N>.json``;
    the part that completes the set merges them (:func:`merge_parts`)."""
    config = reported_config(args.backend, **_settings(args),
                             **({} if args.iterations is None else {"iterations": args.iterations}))
    window_file = args.window_file or args.out / "readout_window.json"
    chosen = read_json(window_file)["chosen_eval_read_ms"]
    windowed = dataclasses.replace(config, eval_read_ms=float(chosen))
    weights = _reported_weights(args, config, tuple(args.weights.split(",")))
    _, _, test_x, test_y = load_split(config)
    fit = calibrate(config.calibration()).fit
    path = args.out / "readout_window_test.json"
    out = read_json(path) if path.is_file() else {"eval_read_ms": chosen, "window_file": str(window_file),
                                                  "results": {}}
    if out["eval_read_ms"] != chosen:
        raise ValueError(f"{path} holds another window ({out['eval_read_ms']} ms, chosen now {chosen} ms)")
    part = parse_part(args.part)
    for name in args.weights.split(","):
        if name in out["results"]:
            continue
        W, b = weights[name]
        if part is None:
            scores = spiking_evaluation(windowed, load_backend(args.backend), fit, W, b, test_x, test_y,
                                        derive_seed(config.seed, 15), progress=True, label=f"{name} {chosen:g} ms")
            out["results"][name] = {k: scores[k] for k in ("accuracy", "completion_errors", "free_energy_accuracy",
                                                           "wall_s", "simulated_ms")}
        else:
            k, n = part
            edges = np.linspace(0, len(test_y), n + 1).round().astype(int)
            seed = derive_seed(config.seed, 15) if k == 0 else derive_seed(config.seed, 15, k)
            part_path = args.out / f"readout_window_test_{name}_part{k}of{n}.json"
            if not part_path.is_file():
                scores = spiking_evaluation(windowed, load_backend(args.backend), fit, W, b,
                                            test_x[edges[k]:edges[k + 1]], test_y[edges[k]:edges[k + 1]], seed,
                                            progress=True, label=f"{name} {chosen:g} ms part {k}/{n}",
                                            complete=k == 0)
                write_json_atomic(part_path, {"part": [k, n], "images": int(edges[k + 1] - edges[k]), "seed": seed,
                                              **{key: scores[key] for key in (
                                                  "accuracy", "completion_errors", "free_energy_accuracy", "wall_s",
                                                  "simulated_ms") if key in scores}})
            files = [args.out / f"readout_window_test_{name}_part{j}of{n}.json" for j in range(n)]
            if not all(f.is_file() for f in files):
                logging.info("test set part %d/%d of %s done; waiting for the other parts", k, n, name)
                continue
            out = read_json(path) if path.is_file() else out      # another part may have merged meanwhile
            if name in out["results"]:
                continue
            out["results"][name] = merge_parts([read_json(f) for f in files], len(test_y))
        logging.info("test set, read-out window %g ms, %s: %s", chosen, name, out["results"][name])
        write_json_atomic(path, out)


def stage_nest_timing(args) -> None:
    # one timed segment of the reported network on NEST (2 segments planned so that the run stops before the
    # evaluation; the exact baseline of this config makes only 2 x nest_iterations updates)
    config = reported_config("nest", iterations=2 * args.nest_iterations, checkpoint_every=args.nest_iterations)
    folder = args.out / "nest_timing"
    resume = (folder / "checkpoint.json").is_file()
    train_digits(config, out_dir=folder, resume=resume, progress=True, stop_after_iteration=args.nest_iterations)


def dev_name(overrides: dict) -> str:
    """Folder name of a dev run: its overrides, sorted (``today`` for none)."""
    return "_".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in sorted(overrides.items())) or "today"


def stage_dev(args) -> None:
    """Short spiking runs on the validation split (dev seed): the free-energy accuracy of the iterates every
    100 updates against the exact run's (same seed, same schedule: its first updates are those of the
    selection run), per setting ``--dev-overrides`` (JSON config overrides); stops after ``--dev-updates``
    (no spiking evaluation). Resumable."""
    overrides = json.loads(args.dev_overrides)
    config = MnistTrainingConfig(seed=DEV_SEED, validation_images=VALIDATION_IMAGES, backend=args.backend,
                                 n_completion_images=100, **{**CHOSEN, **overrides,
                                                             "iterations": args.dev_updates + 100})
    folder = args.out / "dev" / dev_name(overrides)
    if args.reuse_prepared and not (folder / "checkpoint.json").is_file():
        seed_checkpoint(config, folder, args.reuse_prepared)
    resume = (folder / "checkpoint.json").is_file()
    train_digits(config, out_dir=folder, resume=resume, progress=True, stop_after_iteration=args.dev_updates)


def _dev_runs(out: Path) -> list:
    """What each dev run did: the gap (exact - spiking) of the validation free-energy accuracy of the iterates
    at every checkpoint, and the per-iteration wall time and share outside the simulator."""
    runs = []
    for path in sorted((out / "dev").glob("*/checkpoint.json")):
        state = read_json(path)
        cd, config = state["cd"], state["config"]
        spiking = dict(zip(cd["history"]["segment_end"], cd["history"].get("segment_exact_accuracy", [])))
        exact = {int(i): a for i, a in state["prepared"]["baseline_curve"]}
        common = sorted(k for k in spiking if k in exact)
        gaps = [exact[k] - spiking[k] for k in common]
        t = cd["timing"]
        loop = t["training_wall_s"] - t["build_wall_s"]
        runs.append({"setting": {k: config[k] for k in ("model_ms", "data_copies", "free_chains", "clamp_ms",
                                                        "batch_size", "learning_rate") if k in config},
                     "updates": common, "spiking_validation_free_energy_accuracy": [spiking[k] for k in common],
                     "exact_validation_free_energy_accuracy": [exact[k] for k in common],
                     "mean_gap": float(np.mean(gaps)) if gaps else None,
                     "mean_gap_second_half": float(np.mean(gaps[len(gaps) // 2:])) if gaps else None,
                     "iteration_wall_s_excluding_builds": loop / t["iterations_timed"] if t["iterations_timed"] else None,
                     "outside_simulator_fraction_excluding_builds": (1.0 - t["run_wall_s"] / loop) if loop > 0 else None,
                     "iteration_wall_s": per_iteration_wall_s(t)})
    return runs


def stage_evaluate_partial(args) -> None:
    """Spiking evaluation (full test set) of the weights in the checkpoint of a run that has not finished."""
    config = reported_config(args.backend)
    folder = args.out / args.backend
    state = read_json(folder / "checkpoint.json")
    n_visible = config.n_pixels + N_LABELS
    cd = CDState.from_dict(state["cd"])
    W, b = cd.trained(config.cd_settings(), bipartite_mask(n_visible, config.n_hidden))
    _, _, test_x, test_y = load_split(config)
    fit = calibrate(config.calibration()).fit
    scores = spiking_evaluation(config, load_backend(args.backend), fit, W, b, test_x, test_y,
                                derive_seed(config.seed, 15), progress=True, label=f"after {cd.iteration} updates")
    write_json_atomic(folder / "partial_evaluation.json", {"iterations_done": cd.iteration, **scores})
    FIGURES.mkdir(parents=True, exist_ok=True)
    side = config.image_side
    data_plots.plot_receptive_fields(rbm_parts(W, b, n_visible)[0][:config.n_pixels], side,
                                     FIGURES / "receptive_fields_spiking.png",
                                     title=f"spiking CD after {cd.iteration} updates: pixel -> hidden weights")
    counts = data_plots.confusion_matrix(test_y, np.asarray(scores["predicted"]), N_LABELS)
    data_plots.plot_confusion_matrix(counts, FIGURES / "confusion_spiking.png",
                                     title=f"spiking, {cd.iteration} updates: accuracy {scores['accuracy']:.3f}")
    data_plots.plot_completion_examples(scores["examples"], side, FIGURES / "completion_spiking.png",
                                        title=f"pattern completion (spiking, {cd.iteration} updates)")
    baseline = state["prepared"]
    data_plots.plot_receptive_fields(np.asarray(baseline["baseline_W_vh"])[:config.n_pixels], side,
                                     FIGURES / "receptive_fields_exact.png",
                                     title="exact-Gibbs CD (10,000 updates): pixel -> hidden weights")
    exact = baseline["baseline"]
    data_plots.plot_confusion_matrix(data_plots.confusion_matrix(test_y, np.asarray(exact["predicted"]), N_LABELS),
                                     FIGURES / "confusion_exact.png", title=f"exact: accuracy {exact['accuracy']:.3f}")
    data_plots.plot_completion_examples(exact["examples"], side, FIGURES / "completion_exact.png",
                                        title="pattern completion (exact Gibbs)")
    history = cd.history
    curves = {"spiking CD": np.asarray(history["segment_exact_accuracy"])}
    base = np.asarray(baseline["baseline_curve"], dtype=float)[:len(history["segment_end"])]
    curves["exact-Gibbs CD"] = base[:, 1]
    plot_learning_curve(history["segment_end"], curves, FIGURES / "accuracy_over_training.png",
                        ylabel="test accuracy (exact free-energy read-out)")


def _rbm_moments(v: np.ndarray, p_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moments (<z>, <z z^T>) of visible states v (m, n_v) with the hidden units at their conditional means p_h."""
    return moments_from_states(np.hstack([v, p_h]))


def _vh(moments: tuple, n_visible: int) -> np.ndarray:
    """The visible-hidden block of a second moment."""
    return np.asarray(moments[1])[:n_visible, n_visible:]


#: Bins of the reference (long Gibbs) mean activity of a unit for :func:`_binned_means`.
MEAN_BINS = (0.0, 0.01, 0.03, 0.1, 0.3, 0.7, 1.0)


def _binned_means(spiking: np.ndarray, reference: np.ndarray, n_pixels: int, n_visible: int) -> dict:
    """Per block (pixels, labels, hidden) and bin of the units' reference mean activity (``MEAN_BINS``): units,
    mean spiking and mean reference activity. Shows where the free-running sampler departs from the Boltzmann
    distribution (e.g. only for rarely active units: the activation function's tails).

    Examples
    --------
    >>> _binned_means(np.array([0.002, 0.5, 0.1, 0.4]), np.array([0.005, 0.6, 0.1, 0.5]), 2, 3)["pixels"]
    [[0.0, 0.01, 1, 0.002, 0.005], [0.3, 0.7, 1, 0.5, 0.6]]
    """
    blocks = {"pixels": slice(0, n_pixels), "labels": slice(n_pixels, n_visible), "hidden": slice(n_visible, None)}
    out = {}
    for name, block in blocks.items():
        rows = []
        for lo, hi in zip(MEAN_BINS[:-1], MEAN_BINS[1:]):
            ref = reference[block]
            inside = (ref >= lo) & ((ref < hi) if hi < 1.0 else (ref <= hi))
            if inside.any():
                rows.append([lo, hi, int(inside.sum()), round(float(spiking[block][inside].mean()), 6),
                             round(float(ref[inside].mean()), 6)])
        out[name] = rows
    return out


def trained_weights(checkpoint: Path, last_iterate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The trained weights (W, b) of the FINISHED spiking run whose ``checkpoint.json`` is ``checkpoint``: its iterate
    average under its own config (``last_iterate``: the weights of its last update instead). ValueError naming the
    file if the run has not finished."""
    state = read_json(checkpoint)
    if "spiking_after" not in state:
        raise ValueError(f"{checkpoint}: not the checkpoint of a finished spiking run")
    config = config_from_dict(MnistTrainingConfig, state["config"])
    n_visible = config.n_pixels + N_LABELS
    cd = CDState.from_dict(state["cd"])
    if last_iterate:
        return cd.W.copy(), cd.b.copy()
    return cd.trained(config.cd_settings(), bipartite_mask(n_visible, config.n_hidden))


def stage_diagnose(args) -> None:
    """Spiking vs exact CD statistics at fixed weights (no update): which phase makes the spiking gradient worse.

    Weights: the exact model after ``--diag-updates`` updates of the chosen schedule (dev seed, validation split
    held out), or with ``--diag-weights CHECKPOINT`` a finished spiking run's trained weights (entries then in
    ``diagnosis_trained_weights.json``: how far its free-running sampler is from long Gibbs chains at the weights
    it learned). Reference: model moments of long persistent block-Gibbs chains (``--diag-chains`` x
    ``--diag-sweeps``, hidden units Rao-Blackwellised); exact data moments ``p(h | v)`` of the same batches the
    spiking data phase clamps. Per spiking variant (``--diag-variants``: JSON list of config overrides, e.g.
    ``model_ms``, ``clamp_bias``, ``settle_ms``), ``--diag-iterations`` iterations of the spiking statistics
    (ClampedStatistics, weights fixed). Reports relative errors of the visible-hidden gradient block
    (spiking vs reference, and the exact baseline's own estimator -- 20 chains one sweep -- vs reference),
    the bias (error of the mean over iterations), and the data-phase hidden activity against p(h | v).
    """
    from cortexsim.protocols.cd_digits import build_training_network, pretrain_exact, training_statistics
    from cortexsim.protocols.cd_engine import TimedSimulator

    path = args.out / ("diagnosis.json" if args.diag_weights is None else "diagnosis_trained_weights.json")
    done = read_json(path) if path.is_file() else []
    base = MnistTrainingConfig(seed=DEV_SEED, validation_images=VALIDATION_IMAGES, backend=args.backend,
                               pretrain_iterations=args.diag_updates, pretrain_learning_rate=CHOSEN["learning_rate"],
                               pretrain_schedule_tau=CHOSEN["schedule_tau"], pretrain_batch_size=10)
    data, _, val_x, val_y = load_split(base)
    n_visible = base.n_pixels + N_LABELS
    tic = time.perf_counter()
    if args.diag_weights is None:
        W, b, _, _, _ = pretrain_exact(base, data, val_x, val_y)
        weights_label = {"updates": args.diag_updates}
    else:
        W, b = trained_weights(args.diag_weights, args.diag_last_iterate)
        weights_label = {"weights": str(args.diag_weights), **({"last_iterate": True} if args.diag_last_iterate else {})}
    W_vh, b_v, b_h = rbm_parts(W, b, n_visible)
    sig = lambda x: 0.5 * (1.0 + np.tanh(0.5 * x))  # noqa: E731
    rng = np.random.default_rng(derive_seed(DEV_SEED, 31))
    chains = data[rng.integers(0, data.shape[0], args.diag_chains)].copy()
    chains, _, _ = block_gibbs(W_vh, b_v, b_h, chains, 200, rng)           # burn-in
    ref_sum = [np.zeros(W.shape[0]), np.zeros(W.shape)]
    pool = []
    for sweep in range(args.diag_sweeps):
        chains, _, _ = block_gibbs(W_vh, b_v, b_h, chains, 1, rng)
        m = _rbm_moments(chains, sig(b_h + chains @ W_vh))
        ref_sum[0] += m[0]
        ref_sum[1] += m[1]
        if sweep % 50 == 0:
            pool.append(chains.copy())
    ref = (ref_sum[0] / args.diag_sweeps, ref_sum[1] / args.diag_sweeps)
    pool = np.vstack(pool)
    logging.info("diagnose: weights %s (validation free-energy accuracy %.4f), reference %.0f s",
                 weights_label, free_energy_accuracy(W, b, val_x, val_y), time.perf_counter() - tic)
    fit = calibrate(base.calibration()).fit
    sim = load_backend(args.backend)
    for overrides in json.loads(args.diag_variants):
        key = {**weights_label, "iterations": args.diag_iterations, **overrides}
        if args.diag_burn_in_ms:
            key["burn_in_ms"] = args.diag_burn_in_ms
        if any(entry["variant"] == key for entry in done):
            continue
        config = dataclasses.replace(base, **overrides)
        tic = time.perf_counter()
        sim.setup(timestep=config.dt_ms, seed=derive_seed(DEV_SEED, 32))
        network = build_training_network(sim, config, fit, W, b)     # the training run's network and statistics
        timed = TimedSimulator(sim, config.dt_ms)
        if args.diag_burn_in_ms:    # free chains start from rest: let them settle first (discarded)
            timed.run(args.diag_burn_in_ms)
            network.spiketrains(clear=True)
        statistics = training_statistics(config, data)
        batch_rng = np.random.default_rng(derive_seed(DEV_SEED, 33))
        errors = {"spiking": [], "exact_estimator": [], "data_phase": [], "model_phase": []}
        g_s_sum, g_ref_sum, hidden_pairs, means, iteration_s, run_s = 0.0, 0.0, [], [], [], []
        unit_means = np.zeros(W.shape[0])
        for i in range(args.diag_iterations):
            draw = np.random.Generator(np.random.PCG64())
            draw.bit_generator.state = batch_rng.bit_generator.state
            batch = data[draw.integers(0, data.shape[0], config.batch_size)]
            run_before, tic_iteration = timed.run_wall_s, time.perf_counter()
            stats = statistics(network, timed, i, config.model_ms, batch_rng)
            network.set_parameters(W, b)     # what a training iteration also does (same weights: no change)
            iteration_s.append(time.perf_counter() - tic_iteration)
            run_s.append(timed.run_wall_s - run_before)
            p_h = sig(b_h + batch @ W_vh)
            d_exact = _rbm_moments(batch, p_h)
            pcd = pool[rng.integers(0, pool.shape[0], base.gibbs_chains)]
            pcd, _, _ = block_gibbs(W_vh, b_v, b_h, pcd, 1, rng)
            m_pcd = _rbm_moments(pcd, sig(b_h + pcd @ W_vh))
            g_ref = _vh(d_exact, n_visible) - _vh(ref, n_visible)
            g_s = _vh(stats.data, n_visible) - _vh(stats.model, n_visible)
            g_e = _vh(d_exact, n_visible) - _vh(m_pcd, n_visible)
            norm = np.linalg.norm(g_ref)
            errors["spiking"].append(np.linalg.norm(g_s - g_ref) / norm)
            errors["exact_estimator"].append(np.linalg.norm(g_e - g_ref) / norm)
            errors["data_phase"].append(np.linalg.norm(_vh(stats.data, n_visible) - _vh(d_exact, n_visible)) / norm)
            errors["model_phase"].append(np.linalg.norm(_vh(stats.model, n_visible) - _vh(ref, n_visible)) / norm)
            g_s_sum, g_ref_sum = g_s_sum + g_s, g_ref_sum + g_ref
            hidden_pairs.append((p_h.mean(axis=0), np.asarray(stats.data[0])[n_visible:]))
            unit_means += np.asarray(stats.model[0]) / args.diag_iterations
            means.append((float(np.mean(stats.model[0][:base.n_pixels])), float(np.mean(stats.model[0][n_visible:])),
                          float(np.mean(stats.model[0][base.n_pixels:n_visible]))))
        sim.end()
        exact_h = np.concatenate([p for p, _ in hidden_pairs])
        spiking_h = np.concatenate([q for _, q in hidden_pairs])
        slope, intercept = np.polyfit(exact_h, spiking_h, 1)
        mean_g_s, mean_g_ref = g_s_sum / args.diag_iterations, g_ref_sum / args.diag_iterations
        entry = {"variant": key,
                 "gradient_relative_error_spiking": float(np.mean(errors["spiking"])),
                 "gradient_relative_error_exact_estimator": float(np.mean(errors["exact_estimator"])),
                 "data_phase_relative_error": float(np.mean(errors["data_phase"])),
                 "model_phase_relative_error": float(np.mean(errors["model_phase"])),
                 "bias_relative_error_of_mean_gradient": float(np.linalg.norm(mean_g_s - mean_g_ref)
                                                                / np.linalg.norm(mean_g_ref)),
                 "cosine_mean_gradient": float(np.sum(mean_g_s * mean_g_ref)
                                               / (np.linalg.norm(mean_g_s) * np.linalg.norm(mean_g_ref))),
                 "data_hidden_mean_spiking_vs_exact": [float(spiking_h.mean()), float(exact_h.mean())],
                 "data_hidden_fit_spiking_on_exact": {"slope": float(slope), "intercept": float(intercept),
                                                      "rms": float(np.sqrt(np.mean((spiking_h - exact_h) ** 2)))},
                 "model_mean_pixels_hidden_labels_spiking": np.mean(means, axis=0).tolist(),
                 "model_mean_pixels_hidden_labels_reference": [float(ref[0][:base.n_pixels].mean()),
                                                               float(ref[0][n_visible:].mean()),
                                                               float(ref[0][base.n_pixels:n_visible].mean())],
                 "model_mean_by_reference_bin": _binned_means(unit_means, ref[0], base.n_pixels, n_visible),
                 "max_abs_weight": float(np.abs(W_vh).max()), "wall_s": time.perf_counter() - tic,
                 "simulated_ms_per_iteration": (timed.t_ms - args.diag_burn_in_ms) / args.diag_iterations,
                 "iteration_wall_s_median": float(np.median(iteration_s)),
                 "outside_simulator_fraction_median": float(np.median(1.0 - np.asarray(run_s)
                                                                      / np.asarray(iteration_s)))}
        logging.info("diagnose %s: %s", key, {k: v for k, v in entry.items() if k != "variant"})
        done.append(entry)
        write_json_atomic(path, done)


def _selection_reason(selection: list) -> str:
    """Why :data:`CHOSEN`: its validation accuracy, and the grid points measured beside it."""
    measured = "; ".join(f"{entry['point']}: {entry['validation_accuracy']:.4f} (free energy "
                         f"{entry['validation_free_energy_accuracy']:.4f})" for entry in selection)
    return ("validation label read-out accuracy per grid point: " + measured + ". Chosen: the one point that reaches "
            "0.90 on validation within an update budget whose spiking run (1,600 ms free phase) fits in 6 h; the "
            "run without averaging (the earlier choice) stayed below 0.90. A 20,000-update point was started and "
            "stopped unfinished (its spiking run would not fit in 6 h with the longer free phase).")


def _tracking(spiking: dict | None, baseline_curve, earlier: dict) -> dict | None:
    """How closely the spiking run follows the exact one: the gap (exact - spiking) of the free-energy test
    accuracy of the weights after every checkpoint, for this run and for each earlier setting (``earlier``:
    name -> accuracy_over_training) over the updates both have (all runs have seed 1, so the exact curve is the
    same)."""
    if not spiking or not spiking["accuracy_over_training"] or not baseline_curve:
        return None
    exact = {int(i): a for i, a in baseline_curve}
    now = {int(i): a for i, a in spiking["accuracy_over_training"]}
    gap = lambda curve, keys: float(np.mean([exact[k] - curve[k] for k in keys])) if keys else None  # noqa: E731
    out = {"description": "mean over checkpoints of (exact - spiking) free-energy test accuracy of the iterates, "
                          "over the updates this run and the earlier setting both have",
           "updates_this_run": sorted(now), "mean_gap_this_run": gap(now, sorted(now)), "earlier_settings": {}}
    for name, curve in earlier.items():
        before = {int(i): a for i, a in curve}
        common = sorted(set(now) & set(before))
        out["earlier_settings"][name] = {"updates": common, "mean_gap_this_run": gap(now, common),
                                         "mean_gap_earlier_setting": gap(before, common)}
    return out


def _variant_figures(out: Path) -> list:
    """Per diagnose variant: total / model-phase / systematic error of the spiking CD direction (relative to the
    reference direction), the exact estimator's error, simulated ms per iteration (per copy) and copies."""
    path = out / "diagnosis.json"
    if not path.is_file():
        return []
    rows = []
    for entry in read_json(path):
        v = entry["variant"]
        copies = v.get("data_copies", 1) + v.get("free_chains", 0)
        rows.append({"variant": v, "gradient_error": entry["gradient_relative_error_spiking"],
                     "model_phase_error": entry["model_phase_relative_error"],
                     "systematic_error": entry["bias_relative_error_of_mean_gradient"],
                     "exact_estimator_error": entry["gradient_relative_error_exact_estimator"],
                     "copies": copies, "simulated_copy_ms_per_iteration":
                     copies * entry.get("simulated_ms_per_iteration", (v.get("model_ms", 400.0) + 600.0))})
    return rows


def _diagnosis(out: Path) -> dict | None:
    """The diagnose stage's entries (spiking vs exact CD statistics at fixed weights), with what they mean."""
    path = out / "diagnosis.json"
    if not path.is_file():
        return None
    return {"description": "spiking vs exact CD statistics at FIXED weights (the exact model after `updates` updates of "
                           f"the schedule, dev seed {DEV_SEED}, validation images held out; no update during the "
                           "comparison); `iterations` spiking iterations (ClampedStatistics: batch 10 clamped 60 ms "
                           "each, then model_ms free) per variant. Visible-hidden block of the CD direction, errors "
                           "relative to the norm of the reference direction g_ref = exact data moments p(h|v) of the "
                           "same batch - model moments of 100 persistent Gibbs chains x 1,000 sweeps: "
                           "gradient_relative_error_spiking (spiking direction), ..._exact_estimator (the exact "
                           "baseline's own estimator: p(h|v) data, 20 stationary chains one sweep), data_phase / "
                           "model_phase (each phase's moments against the reference; their errors add to the "
                           "spiking one), bias_relative_error_of_mean_gradient (the mean direction over the "
                           "iterations against the mean reference: the systematic part), data_hidden_fit (clamped "
                           "hidden on-fractions regressed on p(h|v): slope 1, intercept 0 if the weight and bias "
                           "translation is right), model mean activities of pixels, hidden, labels",
            "entries": read_json(path)}


def _diagnosis_trained(out: Path) -> dict | None:
    """The diagnose stage at a finished spiking run's trained weights (``--diag-weights``)."""
    path = out / "diagnosis_trained_weights.json"
    if not path.is_file():
        return None
    return {"description": "the diagnose stage's comparison (see diagnosis) at the trained weights of a finished spiking "
                           "run (variant.weights: its checkpoint; iterate average) instead of exact weights: how far "
                           "the spiking CD statistics, free-running model phase above all, are from long block-Gibbs "
                           "chains at the weights spiking CD converged to; the data batches from the dev seed's "
                           "training split (which the reported run also trained on)",
            "entries": read_json(path)}


def _spiking_block(folder: Path) -> dict | None:
    """What a spiking run folder holds: final results, or the checkpoint of a run not finished (partial)."""
    if (folder / "results.json").is_file():
        r = read_json(folder / "results.json")
        return {"status": "complete", "test_accuracy": r["test_accuracy"], "completion_errors": r["completion_errors"],
                "free_energy_accuracy": r["spiking_free_energy_accuracy"], "iterations_done": r["config"]["iterations"],
                "timing": r["timing"], "iteration_wall_s": r["iteration_wall_s"],
                "outside_simulator_fraction": r["timing"].get("overhead_fraction"),
                "accuracy_over_training": list(zip(r["history"]["segment_end"],
                                                   r["history"]["segment_exact_accuracy"])),
                "iterations_planned": r["config"]["iterations"], "baseline_curve": r["history"]["baseline_curve"],
                "baseline": r, "files": r["files"],
                "rescheduled_from": (read_json(folder / "checkpoint.json").get("rescheduled_from")
                                     if (folder / "checkpoint.json").is_file() else None)}
    if not (folder / "checkpoint.json").is_file():
        return None
    state = read_json(folder / "checkpoint.json")
    cd, config = state["cd"], state["config"]
    timing = cd["timing"]
    per_it = per_iteration_wall_s(timing)
    run_s = timing.get("run_wall_s", 0.0)
    left = config["iterations"] - cd["iteration"]
    evaluation = read_json(folder / "partial_evaluation.json") if (folder / "partial_evaluation.json").is_file() \
        else {}
    return {"status": "partial", "iterations_done": cd["iteration"], "iterations_planned": config["iterations"],
            "evaluated_at_iteration": evaluation.get("iterations_done"),
            "test_accuracy": evaluation.get("accuracy"), "completion_errors": evaluation.get("completion_errors"),
            "free_energy_accuracy": evaluation.get("free_energy_accuracy"),
            "evaluation_wall_s": evaluation.get("wall_s"),
            "accuracy_over_training": list(zip(cd["history"]["segment_end"],
                                               cd["history"].get("segment_exact_accuracy", []))),
            "timing": timing, "iteration_wall_s": per_it, "rescheduled_from": state.get("rescheduled_from"),
            "outside_simulator_fraction": (1.0 - run_s / timing["training_wall_s"]) if timing.get("training_wall_s")
            else None,
            "remaining_training_s_estimate": None if per_it is None else left * per_it,
            "prepared_baseline": state["prepared"]["baseline"], "baseline_curve": state["prepared"]["baseline_curve"]}


def _steady(block: dict | None) -> tuple[float | None, float | None]:
    """Per-iteration wall time (s) and share outside the simulator without the network builds and the
    compilation (``timing.build_wall_s``; the build of every checkpoint segment and the first launch's
    compilation are in ``iteration_wall_s``)."""
    if not block or not block["timing"].get("iterations_timed"):
        return None, None
    t = block["timing"]
    loop = t["training_wall_s"] - t["build_wall_s"]
    return loop / t["iterations_timed"], 1.0 - t["run_wall_s"] / loop


def _evaluation_estimate(spiking: dict | None) -> float | None:
    """Wall time (s) of the spiking evaluation of the reported config, at the training's simulator speed
    (wall s in ``sim.run`` per simulated s): 10,000 classification + 3 x 100 completion clamps."""
    if not spiking or spiking["status"] == "complete" or not spiking["timing"].get("iterations_timed"):
        return None
    config = reported_config("brian2_standalone")
    timing = spiking["timing"]
    per_copy = config.batch_size // config.data_copies * config.clamp_ms + config.model_ms    # one copy, ms
    simulated_s = timing["iterations_timed"] * config.copies * per_copy / 1000.0    # neuron-weighted: copies
    per_clamp_s = (config.eval_settle_ms + config.eval_read_ms) / 1000.0
    clamps = 10000 + len(config.occlusions) * config.n_completion_images
    return clamps * per_clamp_s * timing["run_wall_s"] / simulated_s


def _session_timing(spiking: dict | None, previous: dict | None) -> dict | None:
    """Wall time of the updates run after the rescheduled checkpoint (this session; the checkpoint's timing,
    ``previous``, was measured earlier on a busier machine): per update, builds included and excluded, and the
    share outside the simulator."""
    if not spiking or spiking["status"] != "complete" or previous is None or "rescheduled_from" not in spiking:
        return None
    now, then = spiking["timing"], previous["timing"]
    n = now["iterations_timed"] - then["iterations_timed"]
    d = {k: now[k] - then[k] for k in ("training_wall_s", "run_wall_s", "build_wall_s")}
    loop = d["training_wall_s"] - d["build_wall_s"]
    return {"updates": [then["iterations_timed"] + 1, now["iterations_timed"]],
            "iteration_wall_s": d["training_wall_s"] / n, "iteration_wall_s_excluding_builds": loop / n,
            "outside_simulator_fraction": 1.0 - d["run_wall_s"] / d["training_wall_s"],
            "outside_simulator_fraction_excluding_builds": 1.0 - d["run_wall_s"] / loop,
            "training_wall_s": d["training_wall_s"], "evaluation_wall_s": now.get("evaluation_wall_s")}


def _gap_split(folder: Path, exact: dict | None, spiking: dict | None) -> dict | None:
    """The finished spiking run's gap to the exact baseline (label read-outs), split by the exact read-outs of the
    spiking weights (``exact_readout.json``, ``--stage exact-readout``): weights = exact baseline - exact Gibbs
    read-out of the spiking weights; spiking read-out = that - the spiking accuracy. With the spiking read-out of
    the exact weights (``--stage exact-weights-spiking``) beside."""
    path = folder / "exact_readout.json"
    if not path.is_file() or exact is None or not spiking or spiking["status"] != "complete":
        return None
    r = read_json(path)
    other = folder.parent / "exact_weights_spiking_readout.json"     # --stage exact-weights-spiking
    if other.is_file():
        e = read_json(other)
        r["exact_weights_spiking_readout"] = {
            **e, "spiking_readout_loss_points": 100 * (e["exact_gibbs_label_accuracy"] - e["spiking_label_accuracy"])}
    return {**r, "gap_points": 100 * (exact["accuracy"] - spiking["test_accuracy"]),
            "gap_of_the_weights_points": 100 * (exact["accuracy"] - r["gibbs_label_accuracy"]),
            "gap_of_the_spiking_readout_points": 100 * (r["gibbs_label_accuracy"] - spiking["test_accuracy"]),
            "free_energy_gap_points": 100 * (exact["free_energy_accuracy"] - r["free_energy_accuracy"])}


def _readout_window(out: Path) -> dict | None:
    """The read-out window choice (``readout-window``: training images, both weight sets) and the test-set figures
    with the chosen window (``readout-test``), beside the reported 100 ms figures (which the criterion uses)."""
    path = out / "readout_window.json"
    if not path.is_file():
        return None
    choice = read_json(path)
    test_path = out / "readout_window_test.json"
    test = read_json(test_path) if test_path.is_file() else None
    return {"choice": choice, "test": test,
            "note": "spiking_test_accuracy stays the reported run's own evaluation (eval_read_ms of its config, "
                    "100 ms): the criterion figure as documented; the chosen window's test figures are beside it"}


#: Figures of the reported run (``files`` of its results.json) -> names in ``benchmarks/results/spiking_rbm_data/``.
FIGURE_NAMES = {"accuracy_over_training": "accuracy_over_training", "receptive_fields": "receptive_fields_spiking",
                "receptive_fields_baseline": "receptive_fields_exact", "confusion_spiking": "confusion_spiking",
                "confusion_baseline": "confusion_exact", "completion_spiking": "completion_spiking",
                "completion_baseline": "completion_exact", "gradient_norm": "gradient_norm"}


def _copy_figures(folder: Path, files: dict, target_folder: Path = FIGURES) -> dict:
    """Copy the finished run's figures into ``target_folder`` (default :data:`FIGURES`); returns name -> path
    relative to the results."""
    target_folder.mkdir(parents=True, exist_ok=True)
    copied = {}
    for key, name in FIGURE_NAMES.items():
        if key in files:
            target = target_folder / f"{name}.png"
            target.write_bytes((folder / files[key]).read_bytes())
            copied[key] = str(target.relative_to(RESULTS.parent))
    return copied


#: The selected schedule's own number of updates (``CHOSEN``), run from the same 2,000-update checkpoint as the
#: 5,000-update one, in its own folder (``--selected-out``; spiking_rbm_data_diagnosis.md section 6).
SELECTED_ITERATIONS = CHOSEN["iterations"]


#: How the selected schedule's own run was timed (its note in the report).
SELECTED_NOTE = ("the training of this run was done in three sessions on a machine shared with other jobs (0.56-1.25 s "
                 "per update depending on the load): its iteration_wall_s mixes those speeds")
#: The candidate run (``CANDIDATE``, 10,000 updates, seed 1; spiking_rbm_data_diagnosis.md section 8).
CANDIDATE_NOTE = ("pre-registered in session 7 (diagnosis section 8) before any figure of it, to be reported beside the "
                  "selected schedule's run whatever its figures; trained in two sessions (0.86-0.95 s per update, "
                  "partly on a machine shared with another job); same exact part (reused from the selected run's "
                  "checkpoint)")


def _selected_schedule(folder: Path, figure_folder: str = "selected_schedule", note: str = SELECTED_NOTE) -> dict | None:
    """The run of the selected schedule (``SELECTED_ITERATIONS`` updates, seed 1) in ``folder``: its spiking and
    exact figures (its checkpoint holds its own exact baseline of as many updates), timing, and the test set with
    the chosen read-out window (``readout_window_test.json`` there, ``--stage readout-test``). Also for the
    candidate run (its figures into ``figure_folder``, its ``note``)."""
    block = _spiking_block(folder / "brian2_standalone")
    if block is None:
        return None
    out = {"folder": str(folder), "status": block["status"], "iterations_done": block["iterations_done"],
           "iterations_planned": block["iterations_planned"], "rescheduled_from": block.get("rescheduled_from")}
    if block["status"] != "complete":
        return out
    b = block["baseline"]
    test_path = folder / "readout_window_test.json"
    averaging_path = folder / "averaging.json"          # --stage averaging
    out.update({
        "averaging": read_json(averaging_path) if averaging_path.is_file() else None,
        "exact_test_accuracy": b["baseline_test_accuracy"],
        "exact_test_free_energy_accuracy": b["baseline_free_energy_accuracy"],
        "exact_completion_errors": b["baseline_completion_errors"],
        "spiking_test_accuracy": block["test_accuracy"], "spiking_completion_errors": block["completion_errors"],
        "spiking_free_energy_accuracy": block["free_energy_accuracy"],
        "accuracy_over_training": block["accuracy_over_training"], "baseline_curve": block["baseline_curve"],
        "figures": _copy_figures(folder / "brian2_standalone", block["files"], FIGURES / figure_folder),
        "timing": block["timing"], "iteration_wall_s": block["iteration_wall_s"],
        "outside_simulator_fraction": block["outside_simulator_fraction"],
        "iteration_wall_s_excluding_builds": _steady(block)[0],
        "outside_simulator_fraction_excluding_builds": _steady(block)[1],
        "readout_window_test": read_json(test_path) if test_path.is_file() else None,
        "spiking_weights_exact_readout": _gap_split(
            folder / "brian2_standalone", {"accuracy": b["baseline_test_accuracy"],
                                           "free_energy_accuracy": b["baseline_free_energy_accuracy"]}, block),
        "note": note})
    return out


def _candidate_summary(candidate: dict | None) -> dict | None:
    """The candidate run's headline figures for the summary (beside the reported ones), with its own criterion at
    the run's 100 ms read-out and at the chosen window (when measured)."""
    if candidate is None or candidate["status"] != "complete":
        return None if candidate is None else {"status": candidate["status"],
                                               "iterations_done": candidate["iterations_done"]}
    exact, spiking = candidate["exact_test_accuracy"], candidate["spiking_test_accuracy"]
    window = (candidate["readout_window_test"] or {}).get("results", {}).get("spiking_weights")
    return {"settings": CANDIDATE, "exact_test_accuracy": exact, "spiking_test_accuracy": spiking,
            "gap_points": 100 * (exact - spiking),
            "spiking_test_accuracy_chosen_readout_window": None if window is None else window["accuracy"],
            "gap_points_chosen_readout_window": None if window is None else 100 * (exact - window["accuracy"]),
            "spiking_completion_errors": candidate["spiking_completion_errors"],
            "spiking_completion_errors_chosen_readout_window": None if window is None else window["completion_errors"],
            "spiking_free_energy_accuracy": candidate["spiking_free_energy_accuracy"],
            "iteration_wall_s": candidate["iteration_wall_s"],
            "outside_simulator_fraction": candidate["outside_simulator_fraction"],
            "iteration_wall_s_excluding_builds": candidate["iteration_wall_s_excluding_builds"],
            "outside_simulator_fraction_excluding_builds": candidate["outside_simulator_fraction_excluding_builds"],
            "training_wall_s": candidate["timing"]["training_wall_s"],
            "within_3_points": bool(exact - spiking <= 0.03),
            "within_3_points_chosen_readout_window": None if window is None else bool(exact - window["accuracy"] <= 0.03)}


def stage_report(args) -> None:
    selection_path = args.out / "selection.json"
    selection = read_json(selection_path) if selection_path.is_file() else []
    exploratory_path = args.out / "selection_exploratory.json"
    exploratory = read_json(exploratory_path) if exploratory_path.is_file() else []
    # the run of the chosen setting; before it exists, the latest run (the 1,600 ms setting) stands in
    current = args.out / "brian2_standalone"
    spiking = _spiking_block(current if (current / "checkpoint.json").is_file()
                             else args.out / "brian2_standalone_model1600")
    if spiking is not None and spiking["status"] == "complete":
        spiking["figures"] = _copy_figures(current, spiking["files"])
    nest = _spiking_block(args.out / "nest_timing")
    earlier_path = args.out / "earlier_runs.json"
    earlier = read_json(earlier_path) if earlier_path.is_file() else None
    previous = (_spiking_block(args.out / "brian2_standalone_model1600")   # the setting before free chains
                if (current / "checkpoint.json").is_file() else None)
    exact_10000 = None
    if previous is not None and earlier is not None:
        exact_10000 = {k: previous["prepared_baseline"][k] for k in ("accuracy", "free_energy_accuracy",
                                                                    "completion_errors", "wall_s")}
        previous.pop("prepared_baseline", None)
        previous.pop("baseline_curve", None)
        earlier = {**earlier, "model_ms_1600": {
            "description": "spiking run seed 1, the chosen schedule with 10,000 updates (model_ms 1,600, one network, "
                           "no free chains, iterate averaging over the last half), stopped after iterations_done "
                           "updates (checkpoint in out/spiking_rbm_data/brian2_standalone_model1600/). Nothing in "
                           "those updates depends on the total, and none is averaged under either total: the reported "
                           "5,000-update run continues this checkpoint (spiking_brian2_standalone.rescheduled_from), "
                           "so these are its first updates; timing measured then (4 helpers on 2 cores)",
            **{k: previous[k] for k in ("iterations_done", "iterations_planned", "accuracy_over_training",
                                        "iteration_wall_s", "timing", "outside_simulator_fraction")}},
            "exact_baseline_10000_updates": {
                "description": "exact-Gibbs CD baseline of the chosen schedule with 10,000 updates (seed 1, test set; "
                               "the criterion's baseline before the reported schedule was shortened to 5,000)",
                **exact_10000}}
    if nest is None and earlier is not None:     # not re-run: the code on the NEST path did not change
        nest = {**earlier["nest_timing"], "note": "measured with the earlier setting (model_ms 400), not re-run"}
        nest_timing_earlier = True
    else:
        nest_timing_earlier = False
    if nest is not None and not nest_timing_earlier:    # timing only: no evaluation, and its baseline is a 2 x nest_iterations-update one
        nest = {"description": "the reported network on NEST, one timed segment (builds included), no evaluation",
                **{k: nest[k] for k in ("iterations_done", "timing", "iteration_wall_s",
                                        "outside_simulator_fraction")}}
    baseline = None
    if spiking is not None:
        baseline = spiking["baseline"] if spiking["status"] == "complete" else spiking["prepared_baseline"]
    exact_acc = None if baseline is None else (baseline.get("baseline_test_accuracy") or baseline.get("accuracy"))
    spiking_acc = spiking.get("test_accuracy") if spiking else None
    if spiking and spiking["status"] == "complete":
        b = spiking.pop("baseline")
        exact = {"accuracy": b["baseline_test_accuracy"], "free_energy_accuracy": b["baseline_free_energy_accuracy"],
                 "completion_errors": b["baseline_completion_errors"], "wall_s": b["timing"].get("baseline_wall_s")}
    else:
        exact = None if baseline is None else {k: baseline[k] for k in ("accuracy", "free_energy_accuracy",
                                                                        "completion_errors", "wall_s")}
        if spiking:
            spiking.pop("prepared_baseline")
    baseline_curve = spiking.get("baseline_curve") if spiking else None
    summary = {
        "exact_test_accuracy": exact_acc,
        "exact_test_free_energy_accuracy": None if exact is None else exact["free_energy_accuracy"],
        "spiking_test_accuracy": spiking_acc,
        "spiking_status": None if spiking is None else spiking["status"],
        "spiking_iterations_done": None if spiking is None else spiking["iterations_done"],
        "spiking_free_energy_accuracy_of_current_weights": (spiking["accuracy_over_training"][-1][1]
                                                            if spiking and spiking["accuracy_over_training"] else None),
        "exact_completion_errors": None if exact is None else exact["completion_errors"],
        "spiking_completion_errors": spiking.get("completion_errors") if spiking else None,
        "iteration_wall_s_brian2_standalone": spiking["iteration_wall_s"] if spiking else None,
        "outside_simulator_fraction_brian2_standalone": spiking["outside_simulator_fraction"] if spiking else None,
        "iteration_wall_s_brian2_standalone_excluding_builds": _steady(spiking)[0],
        "outside_simulator_fraction_brian2_standalone_excluding_builds": _steady(spiking)[1],
        "iteration_wall_s_nest": nest["iteration_wall_s"] if nest else None,
        "iteration_wall_s_nest_excluding_builds": _steady(nest)[0],
        "outside_simulator_fraction_nest_excluding_builds": _steady(nest)[1],
        "outside_simulator_fraction_nest": nest["outside_simulator_fraction"] if nest else None,
        "spiking_training_wall_s": spiking["timing"]["training_wall_s"] if spiking else None,
        "full_run_training_s_estimate": (spiking["iteration_wall_s"] * REPORTED_ITERATIONS
                                         if spiking and spiking["status"] != "complete" and spiking["iteration_wall_s"]
                                         else None),
        "full_run_evaluation_s_estimate": _evaluation_estimate(spiking),
        "spiking_evaluation_wall_s": (spiking["timing"].get("evaluation_wall_s") if spiking and
                                      spiking["status"] == "complete" else None),
        "this_session": _session_timing(spiking, previous),
        "spiking_weights_exact_readout": _gap_split(current, exact, spiking),
        "readout_window": _readout_window(args.out),
        "reported_iterations": REPORTED_ITERATIONS,
        "exact_test_accuracy_10000_updates": None if exact_10000 is None else exact_10000["accuracy"],
        "n_test_images": 10000,
    }
    complete = bool(spiking and spiking["status"] == "complete")
    matched = None
    if spiking and spiking["accuracy_over_training"] and baseline_curve:
        done = spiking["accuracy_over_training"][-1][0]
        matched = {"updates": done, "spiking_free_energy_accuracy": spiking["accuracy_over_training"][-1][1],
                   "exact_free_energy_accuracy": dict((int(i), a) for i, a in baseline_curve).get(done)}
    summary["free_energy_accuracy_at_matched_updates"] = matched
    curves = {}
    if earlier is not None:
        curves["model_ms_400"] = earlier["spiking_brian2_standalone"]["accuracy_over_training"]
        if "model_ms_1600" in earlier:
            curves["model_ms_1600"] = earlier["model_ms_1600"]["accuracy_over_training"]
    summary["tracking_against_exact"] = _tracking(spiking, baseline_curve, curves)
    acceptance = {"schedule": f"the chosen schedule with {REPORTED_ITERATIONS} updates (selection.reported_iterations)",
                  "exact_baseline_at_least_90_percent": None if exact_acc is None else bool(exact_acc >= 0.90),
                  "spiking_within_3_points_of_exact": (bool(exact_acc - spiking_acc <= 0.03) if complete and
                                                       spiking_acc is not None and exact_acc is not None else None),
                  "note": None if complete else "spiking run partial: its criterion is not decided (the spiking "
                                                "accuracy is of the weights after spiking_iterations_done updates)"}
    selected = _selected_schedule(args.selected_out)
    if selected is not None and selected["status"] == "complete":
        # the selected schedule finished: its figures are the reported ones, the 5,000-update run goes beside them
        summary["run_5000_updates"] = {k: summary[k] for k in (
            "exact_test_accuracy", "exact_test_free_energy_accuracy", "spiking_test_accuracy", "exact_completion_errors",
            "spiking_completion_errors", "spiking_weights_exact_readout", "readout_window", "this_session")}
        summary["run_5000_updates"]["acceptance"] = acceptance
        for key in ("exact_test_accuracy", "exact_test_free_energy_accuracy", "spiking_test_accuracy",
                    "exact_completion_errors", "spiking_completion_errors"):
            summary[key] = selected[key]
        summary.update({
            "spiking_iterations_done": selected["iterations_done"], "reported_iterations": SELECTED_ITERATIONS,
            "exact_test_accuracy_10000_updates": selected["exact_test_accuracy"],
            "spiking_free_energy_accuracy_of_current_weights": selected["spiking_free_energy_accuracy"],
            "iteration_wall_s_brian2_standalone": selected["iteration_wall_s"],
            "outside_simulator_fraction_brian2_standalone": selected["outside_simulator_fraction"],
            "iteration_wall_s_brian2_standalone_excluding_builds": selected["iteration_wall_s_excluding_builds"],
            "outside_simulator_fraction_brian2_standalone_excluding_builds":
                selected["outside_simulator_fraction_excluding_builds"],
            "spiking_training_wall_s": selected["timing"]["training_wall_s"],
            "spiking_evaluation_wall_s": selected["timing"].get("evaluation_wall_s"),
            "spiking_test_accuracy_chosen_readout_window": (
                selected["readout_window_test"]["results"].get("spiking_weights", {}).get("accuracy")
                if selected["readout_window_test"] else None),
            "reported_run": "the selected schedule's own 10,000 updates (selected_schedule_run); the 5,000-update run "
                            "(shortened for time in session 2) under run_5000_updates",
            "spiking_weights_exact_readout": selected["spiking_weights_exact_readout"],
            "readout_window": (None if summary["readout_window"] is None else {
                "choice": summary["readout_window"]["choice"], "test": selected["readout_window_test"],
                "note": "window chosen on 2,000 training images with both weight sets of the 5,000-update run (before "
                        "this run's weights existed); the test set once with it for this run's spiking weights"})})
        exact_acc, spiking_acc = selected["exact_test_accuracy"], selected["spiking_test_accuracy"]
        acceptance = {"schedule": f"the chosen schedule with its {SELECTED_ITERATIONS} updates (selected_schedule_run)",
                      "exact_baseline_at_least_90_percent": bool(exact_acc >= 0.90),
                      "spiking_within_3_points_of_exact": bool(exact_acc - spiking_acc <= 0.03),
                      "note": "spiking_test_accuracy is the run's own evaluation (eval_read_ms 100 ms of its config); "
                              "the chosen 600 ms window's test figure is spiking_test_accuracy_chosen_readout_window"}
    candidate = _selected_schedule(args.candidate_out, "candidate_run", CANDIDATE_NOTE)
    summary["candidate_run"] = _candidate_summary(candidate)
    report = {
        "benchmark": "spiking_rbm_data",
        "status": "complete" if spiking and spiking["status"] == "complete" else "partial",
        "summary": summary,
        "acceptance": acceptance,
        "description": "RBM 196 pixels (MNIST 14x14, binarised at 0.5) + 10 labels visible x 500 hidden; spiking CD "
                       "from random weights (no pre-training) on brian2_standalone vs exact-Gibbs CD (numpy) with the "
                       "same architecture, updates and schedule; classification = label units' activity with the "
                       "image clamped, on the full 10,000-image test set; completion = fraction of wrong hidden "
                       "pixels (100 test images per occlusion)",
        "selection": {"description": f"exact model, dev seed {DEV_SEED}, {VALIDATION_IMAGES} held-out training "
                                     "images as validation, batch 10, momentum 0.5, weight decay 0.001",
                      "grid": selection, "exploratory": exploratory, "chosen": CHOSEN,
                      "reason": _selection_reason(selection),
                      "reported_iterations": {"iterations": REPORTED_ITERATIONS, "reason": REPORTED_REASON},
                      "spiking_settings": {"chosen": SPIKING, "reason": SPIKING_REASON, "candidate": CANDIDATE,
                                           "candidate_at_fixed_weights": _variant_figures(args.out),
                                           "dev_runs_description": "spiking CD on the validation split (dev seed "
                                           f"{DEV_SEED}, {VALIDATION_IMAGES} held-out images), the chosen schedule, "
                                           "stopped after `updates`; gap = exact - spiking validation free-energy "
                                           "accuracy of the iterates at the same updates",
                                           "dev_runs": _dev_runs(args.out)}},
        "exact_baseline": exact,
        "diagnosis": _diagnosis(args.out),
        "diagnosis_trained_weights": _diagnosis_trained(args.out),
        "earlier_runs": earlier,
        "spiking_brian2_standalone": spiking,
        "selected_schedule_run": selected,
        "candidate_run": candidate,
        "nest_timing": nest,
        "config": config_to_dict(reported_config("brian2_standalone")),
        "seeds": {"reported": SEED, "selection": DEV_SEED},
        "versions": library_versions(),
        "machine": machine_info(),
    }
    write_json_atomic(RESULTS, report)
    logging.info("wrote %s: exact %s, spiking %s (%s)", RESULTS, exact_acc, spiking_acc, report["status"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=("select", "exact", "spiking", "exact-readout", "exact-weights-spiking", "nest-timing", "evaluate-partial", "diagnose", "dev", "readout-window", "readout-test",
                                            "averaging", "report"), required=True)
    parser.add_argument("--dev-overrides", default="{}", help="dev: JSON config overrides of the spiking settings")
    parser.add_argument("--dev-updates", type=int, default=500, help="dev: updates before the run stops")
    parser.add_argument("--reuse-prepared", type=Path, default=None,
                        help="spiking/dev: take the exact part from this checkpoint.json (same exact settings)")
    parser.add_argument("--reschedule-from", type=Path, default=None,
                        help="spiking: continue this checkpoint.json (same settings, another total of updates)")
    parser.add_argument("--weights", default="spiking_weights,exact_weights",
                        help="readout-test: which trained weight sets (comma-separated)")
    parser.add_argument("--window-file", type=Path, default=None,
                        help="readout-test: the read-out window choice to use (default: readout_window.json in --out)")
    parser.add_argument("--part", default=None,
                        help="readout-test: K/N, only the K-th of N contiguous slices of the test set (run the N "
                             "parts in parallel; the last one to finish merges them)")
    parser.add_argument("--grid", default=None, help="selection grid as a JSON list of settings")
    parser.add_argument("--backend", default="brian2_standalone")
    parser.add_argument("--spiking-settings", choices=("chosen", "candidate"), default="chosen",
                        help="spiking: the chosen spiking settings (SPIKING) or the candidate (CANDIDATE: three free "
                             "chains, 100 ms; use its own --out)")
    parser.add_argument("--nest-iterations", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=None,
                        help=f"exact/spiking: updates of the run (default {REPORTED_ITERATIONS}, the reported one)")
    parser.add_argument("--out", type=Path, default=Path("out/spiking_rbm_data"))
    parser.add_argument("--selected-out", type=Path, default=Path("out/spiking_rbm_data_10000"),
                        help="report: folder of the selected schedule's own run (SELECTED_ITERATIONS updates)")
    parser.add_argument("--candidate-out", type=Path, default=Path("out/spiking_rbm_data_candidate"),
                        help="report: folder of the candidate run (--spiking-settings candidate)")
    parser.add_argument("--diag-updates", type=int, default=1000, help="diagnose: exact updates before the comparison")
    parser.add_argument("--diag-iterations", type=int, default=20, help="diagnose: spiking iterations per variant")
    parser.add_argument("--diag-chains", type=int, default=100, help="diagnose: reference Gibbs chains")
    parser.add_argument("--diag-sweeps", type=int, default=1000, help="diagnose: reference Gibbs sweeps")
    parser.add_argument("--diag-variants", default='[{}]', help="diagnose: JSON list of config overrides")
    parser.add_argument("--diag-weights", type=Path, default=None,
                        help="diagnose: a finished spiking run's checkpoint.json whose trained weights to use")
    parser.add_argument("--diag-last-iterate", action="store_true",
                        help="diagnose: with --diag-weights, the run's last iterate instead of its iterate average")
    parser.add_argument("--diag-burn-in-ms", type=float, default=0.0,
                        help="diagnose: simulated time discarded before the first iteration (ms)")
    args = parser.parse_args()
    if args.spiking_settings != "chosen" and args.stage not in ("spiking", "readout-test", "averaging"):
        parser.error("--spiking-settings applies to --stage spiking, readout-test and averaging only")
    if args.part is not None and args.stage != "readout-test":
        parser.error("--part applies to --stage readout-test only")
    try:
        parse_part(args.part)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    {"select": stage_select, "exact": stage_exact, "spiking": stage_spiking, "exact-readout": stage_exact_readout,
     "exact-weights-spiking": stage_exact_weights_spiking, "nest-timing": stage_nest_timing,
     "evaluate-partial": stage_evaluate_partial, "diagnose": stage_diagnose, "dev": stage_dev,
     "readout-window": stage_readout_window, "readout-test": stage_readout_test, "averaging": stage_averaging,
     "report": stage_report}[args.stage](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
