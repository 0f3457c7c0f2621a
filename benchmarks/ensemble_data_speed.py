"""Per-iteration speed of the data ensembles (``cortexsim ensemble --task digits|mnist``, issue 22 part 4).

M digit RBMs (``--task digits``: 64 pixel + 10 label visible units; ``--task mnist``: 196 + 10, 14x14 MNIST;
``--hidden`` hidden units each) as one ensemble, in
Poisson and in ensemble mode, trained for a few spiking CD iterations by the protocol's own training
function (:func:`cortexsim.protocols.ensemble_data.train_networks`: the CD engine with
``ClampedStatistics``: 10 clamped images x 60 ms + 400 ms free per iteration) on each backend. The
activation fit is the Poisson calibration on NEST for both modes and the ensemble translation assumes
the design source rate (speed does not depend on it; the learning figures of benchmarks/ensemble_data.py
use the measured ones). Per backend and mode: wall time per iteration after the first segment's build
(on brian2_standalone: after the one compilation), its parts (in the simulator, statistics, update and
parameter setting), and the share outside the simulator, ``1 - run / iteration``. ``--profile`` adds
the top functions by cumulative and by own time (cProfile) of the timed iterations. ``--evaluation`` adds the wall time
of one evaluation of the acceptance size (digits: 659 clamps: 359 test images classified, 100 completed per
occlusion kind, 20 + 200 ms each, ``EVAL_CHUNK`` clamps per launch of the binary; MNIST: 10,300 clamps of
20 + 100 ms, timed on ``--eval-images`` test images + 100 completions per kind and extrapolated per clamp).
``--stagger-groups`` and ``--background-tracking`` set the fixes of the acceptance run: the staggered phases and
the per-iteration work of tracking (``translation_units``: every iteration's source efficacies) are in the timed
iterations; its per-segment work (the translation and leak offsets, at the build) is in the build, not per
iteration. ``--model-ms`` sets the free phase.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ensemble_data_speed.py \
        [--backends nest,brian2_standalone] [--networks 10] [--hidden 100] [--iterations 6]
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ensemble_data_speed.py --task mnist --hidden 200 \
        --backends brian2_standalone --stagger-groups 10 --background-tracking translation_units --evaluation

Writes benchmarks/results/ensemble_data_speed.json (merged per backend and mode, so a killed run keeps
what finished) with a ``summary``: ``<backend>_<mode>_M<M>_h<hidden>[_mnist]_wall_s_per_iteration`` and
``..._share_outside_simulator``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from cortexsim.backends.registry import load_backend
from cortexsim.models.boltzmann import block_diagonal
from cortexsim.models.ensemble import equivalent_noise
from cortexsim.protocols.calibration import CalibrationConfig, calibrate
from cortexsim.protocols.cd_digits import initial_rbm
from cortexsim.protocols.ensemble import background_run_settings
from cortexsim.models.rbm_readout import occlusion_mask
from cortexsim.protocols.ensemble_data import (BACKGROUND_TRACKING, EVAL_CHUNK, TASKS, EnsembleDataConfig,
                                               ensemble_training_data, evaluate_networks, load_task_split,
                                               network_factory, train_networks)
from cortexsim.results import library_versions, machine_info, write_json_atomic
from cortexsim.seeds import derive_rng, derive_seed

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "ensemble_data_speed.json"


def measure_evaluation(sim, config: EnsembleDataConfig, factory, W: np.ndarray, b: np.ndarray,
                       eval_images: int = 0) -> dict:
    """Wall time of one evaluation as in the acceptance run (full test split classified, 100 images completed
    per occlusion kind: clamps of eval_settle_ms + eval_read_ms), scores not computed. ``eval_images`` > 0: only
    that many test images classified; ``acceptance_evaluation_wall_s_estimate`` scales the wall time per clamp to
    the acceptance run's clamps."""
    _, _, test_x, _ = load_task_split(replace(config, n_test_images=0, n_train_images=100))
    acceptance_clamps = test_x.shape[0] + 100 * len(config.occlusions)
    pixels = test_x[:100]
    if eval_images:
        test_x = test_x[:eval_images]
    completion = {kind: (pixels, occlusion_mask(kind, pixels.shape[0], config.side, derive_rng(config.seed, 22, k)))
                  for k, kind in enumerate(config.occlusions)}
    clamps = test_x.shape[0] + sum(p.shape[0] for p, _ in completion.values())
    tic = time.perf_counter()
    readouts = evaluate_networks(sim, config, factory, W, b, test_x, completion)
    wall = time.perf_counter() - tic
    return {"evaluation_wall_s": wall, "evaluation_run_wall_s": readouts["run_wall_s"], "clamps": clamps,
            "biological_ms": clamps * (config.eval_settle_ms + config.eval_read_ms),
            "eval_chunk": EVAL_CHUNK, "eval_read_ms": config.eval_read_ms, "acceptance_clamps": acceptance_clamps,
            "acceptance_evaluation_wall_s_estimate": wall / clamps * acceptance_clamps}


def measure(backend: str, mode: str, networks: int, hidden: int, iterations: int, profile: bool,
            synapse: str = "depressing", evaluation: bool = False, task: str = "digits", stagger_groups: int = 1,
            background_tracking: str = "off", model_ms: float = 400.0, eval_images: int = 0,
            eval_read_ms: float = 200.0) -> dict:
    """Two segments: the first (build, compile, one iteration) untimed, the second ``iterations`` timed."""
    config = EnsembleDataConfig(seed=1, backend=backend, n_networks=networks, n_hidden=hidden, task=task,
                                train_iterations=2, checkpoint_every=1, background_synapse=synapse,
                                stagger_groups=stagger_groups, background_tracking=background_tracking,
                                model_ms=model_ms, n_train_images=0 if task == "digits" else 2000)
    sim = load_backend(backend)
    fit = calibrate(CalibrationConfig(seed=1, backend="nest", neuron=config.neuron, noise=config.noise,
                                      dt_ms=config.dt_ms)).fit
    settings = background_run_settings(config, backend)
    noise = config.noise if mode == "poisson" else equivalent_noise(settings.background, "ensemble", config.noise)
    factory = network_factory(sim, config, mode, fit, noise, derive_seed(config.seed, 30, int(mode == "ensemble")))
    start = block_diagonal([initial_rbm(hidden, derive_rng(config.seed, 40, m), n_visible=config.n_visible)
                            for m in range(networks)])
    data, _, test_x, test_y = load_task_split(config)
    training = ensemble_training_data(data, networks, config.seed)
    test_x, test_y = test_x[:50], test_y[:50]
    # segment 1: build (and compile) + one iteration; segment 2: the timed iterations in a fresh run of the
    # same structure (on brian2_standalone the compiled binary is reused)
    tracking = {"calibrated_rate_hz": config.design_rate_hz} if background_tracking != "off" else {}
    tic = time.perf_counter()
    first = train_networks(sim, config, factory, np.array(start.W), np.array(start.b), training, test_x, test_y,
                           stop_after_iteration=1, mode=mode, **tracking)
    assert first is None
    first_segment_s = time.perf_counter() - tic
    config = replace(config, checkpoint_every=iterations, train_iterations=iterations)
    factory = network_factory(sim, config, mode, fit, noise, derive_seed(config.seed, 30, int(mode == "ensemble")))
    profiler = cProfile.Profile() if profile else None
    tic, cpu0, children0 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    if profiler is not None:
        profiler.enable()
    state = train_networks(sim, config, factory, np.array(start.W), np.array(start.b), training, test_x, test_y,
                           mode=mode, **tracking)
    if profiler is not None:
        profiler.disable()
    segment_s = time.perf_counter() - tic
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    python_cpu = time.process_time() - cpu0
    binary_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    t = state.timing
    per_iteration = (t["training_wall_s"] - t["build_wall_s"]) / iterations
    out = {"backend": backend, "mode": mode, "background_synapse": synapse, "task": task,
           "stagger_groups": stagger_groups, "background_tracking": background_tracking, "model_ms": model_ms,
           "n_networks": networks,
           "n_hidden": hidden, "neurons": networks * config.n_units, "iterations_timed": iterations,
           "biological_ms_per_iteration": config.batch_size * config.clamp_ms + config.model_ms,
           "first_segment_s (build, compile, 1 iteration)": first_segment_s,
           "timed_segment_s": segment_s, "build_s (timed segment, incl. burn-in)": t["build_wall_s"],
           "wall_s_per_iteration": per_iteration,
           "statistics_s_per_iteration": t["statistics_wall_s"] / iterations,
           "update_and_set_s_per_iteration": t["update_wall_s"] / iterations,
           "cpu_s_per_iteration_incl_build": t["training_cpu_s"] / iterations,
           "timing": t}
    out["run_s_per_iteration"] = per_iteration - out["statistics_s_per_iteration"] - out["update_and_set_s_per_iteration"]
    out["share_outside_simulator"] = 1.0 - out["run_s_per_iteration"] / per_iteration
    # CPU time is not inflated by other processes on a shared machine; on brian2_standalone the simulator is
    # the compiled binary (a child process), on NEST it runs inside this process (no CPU split possible)
    out["python_cpu_s_per_iteration_incl_segment_build"] = python_cpu / iterations
    if backend == "brian2_standalone":
        out["binary_cpu_s_per_iteration"] = binary_cpu / iterations
        out["cpu_share_outside_simulator"] = python_cpu / max(python_cpu + binary_cpu, 1e-12)
    out["engine_overhead_fraction (segment incl. build and burn-in)"] = t["overhead_fraction"]
    if evaluation:  # the acceptance run's read-out length (benchmarks/ensemble_data.py, size "full")
        out["evaluation"] = measure_evaluation(sim, replace(config, eval_read_ms=eval_read_ms), factory,
                                               np.array(start.W), np.array(start.b), eval_images)
    if profiler is not None:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(30)
        out["profile_top30_cumulative"] = stream.getvalue().splitlines()
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(30)
        out["profile_top30_own_time"] = stream.getvalue().splitlines()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="nest,brian2_standalone")
    parser.add_argument("--modes", default="poisson,ensemble")
    parser.add_argument("--networks", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--evaluation", action="store_true",
                        help="also time one evaluation of the acceptance size (digits: 659 clamps, 200 ms read-out; "
                             "mnist: 10,300 clamps, 100 ms read-out, extrapolated from --eval-images)")
    parser.add_argument("--task", choices=TASKS, default="digits")
    parser.add_argument("--stagger-groups", type=int, default=1)
    parser.add_argument("--background-tracking", choices=BACKGROUND_TRACKING, default="off")
    parser.add_argument("--model-ms", type=float, default=400.0)
    parser.add_argument("--eval-images", type=int, default=None,
                        help="test images classified in --evaluation (default: all for digits, 500 for mnist)")
    args = parser.parse_args(argv)
    mnist = args.task == "mnist"
    eval_images = args.eval_images if args.eval_images is not None else (500 if mnist else 0)
    suffix = ("_mnist" if mnist else "") + (f"_stagger{args.stagger_groups}" if args.stagger_groups > 1 else "") \
        + (f"_{args.background_tracking}" if args.background_tracking != "off" else "")
    for backend in [b for b in args.backends.split(",") if b]:
        for mode in [m for m in args.modes.split(",") if m]:
            result = measure(backend, mode, args.networks, args.hidden, args.iterations, args.profile,
                             evaluation=args.evaluation, task=args.task, stagger_groups=args.stagger_groups,
                             background_tracking=args.background_tracking, model_ms=args.model_ms,
                             eval_images=eval_images, eval_read_ms=100.0 if mnist else 200.0)
            result["load_average_at_end"] = list(os.getloadavg())
            print(f"{backend} {mode}: {result['wall_s_per_iteration']:.2f} s per iteration "
                  f"({result['biological_ms_per_iteration']:g} ms biological), outside the simulator "
                  f"{100 * result['share_outside_simulator']:.1f} % of the wall time"
                  + (f", {100 * result['cpu_share_outside_simulator']:.1f} % of the CPU time"
                     if "cpu_share_outside_simulator" in result else ""), flush=True)
            saved = json.loads(OUT.read_text()) if OUT.exists() else {"runs": {}}
            saved["runs"][f"{backend}_{mode}_M{args.networks}_h{args.hidden}{suffix}"] = result
            saved["summary"] = {}
            for key, run in saved["runs"].items():
                saved["summary"][f"{key}_wall_s_per_iteration"] = run["wall_s_per_iteration"]
                saved["summary"][f"{key}_share_outside_simulator"] = run["share_outside_simulator"]
                saved["summary"][f"{key}_process_cpu_s_per_iteration"] = run["cpu_s_per_iteration_incl_build"]
                if "evaluation" in run:
                    saved["summary"][f"{key}_evaluation_wall_s"] = run["evaluation"]["evaluation_wall_s"]
                    if "acceptance_evaluation_wall_s_estimate" in run["evaluation"]:
                        saved["summary"][f"{key}_acceptance_evaluation_wall_s_estimate"] = \
                            run["evaluation"]["acceptance_evaluation_wall_s_estimate"]
                if "cpu_share_outside_simulator" in run:
                    saved["summary"][f"{key}_cpu_share_outside_simulator"] = run["cpu_share_outside_simulator"]
                    saved["summary"][f"{key}_cpu_s_per_iteration"] = (run["binary_cpu_s_per_iteration"]
                                                                      + run["python_cpu_s_per_iteration_incl_segment_build"])
            saved.update(description=__doc__.split("\n\n")[1].replace("\n", " "), versions=library_versions(),
                         machine=machine_info(), command=" ".join([Path(sys.executable).name, *sys.argv]))
            write_json_atomic(OUT, saved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
