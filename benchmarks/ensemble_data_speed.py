"""Per-iteration speed of the data ensembles (``cortexsim ensemble --task digits``, issue 22 part 4).

M digit RBMs (64 pixel + 10 label visible units, ``--hidden`` hidden units each) as one ensemble, in
Poisson and in ensemble mode, trained for a few spiking CD iterations by the protocol's own training
function (:func:`cortexsim.protocols.ensemble_data.train_networks`: the CD engine with
``ClampedStatistics``: 10 clamped images x 60 ms + 400 ms free per iteration) on each backend. The
activation fit is the Poisson calibration on NEST for both modes and the ensemble translation assumes
the design source rate (speed does not depend on it; the learning figures of benchmarks/ensemble_data.py
use the measured ones). Per backend and mode: wall time per iteration after the first segment's build
(on brian2_standalone: after the one compilation), its parts (in the simulator, statistics, update and
parameter setting), and the share outside the simulator, ``1 - run / iteration``. ``--profile`` adds
the top functions by cumulative time (cProfile) of the timed iterations. ``--evaluation`` adds the wall time
of one evaluation of the acceptance size (659 clamps: 359 test images classified, 100 completed per occlusion
kind, 20 + 200 ms each, ``EVAL_CHUNK`` clamps per launch of the binary).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ensemble_data_speed.py \
        [--backends nest,brian2_standalone] [--networks 10] [--hidden 100] [--iterations 6]

Writes benchmarks/results/ensemble_data_speed.json (merged per backend and mode, so a killed run keeps
what finished) with a ``summary``: ``<backend>_<mode>_wall_s_per_iteration`` and
``<backend>_<mode>_share_outside_simulator``.
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
from cortexsim.protocols.cd_digits import initial_rbm, load_digits_split
from cortexsim.protocols.ensemble import background_run_settings
from cortexsim.models.rbm_readout import occlusion_mask
from cortexsim.protocols.ensemble_data import (EVAL_CHUNK, IMAGE_SIDE, EnsembleDataConfig, ensemble_training_data,
                                               evaluate_networks, network_factory, train_networks)
from cortexsim.results import library_versions, machine_info, write_json_atomic
from cortexsim.seeds import derive_rng, derive_seed

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "ensemble_data_speed.json"


def measure_evaluation(sim, config: EnsembleDataConfig, factory, W: np.ndarray, b: np.ndarray) -> dict:
    """Wall time of one evaluation as in the acceptance run (full test split classified, 100 images completed
    per occlusion kind: 659 clamps of eval_settle_ms + eval_read_ms), scores not computed."""
    _, _, test_x, _ = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)
    pixels = test_x[:100]
    completion = {kind: (pixels, occlusion_mask(kind, pixels.shape[0], IMAGE_SIDE, derive_rng(config.seed, 22, k)))
                  for k, kind in enumerate(config.occlusions)}
    clamps = test_x.shape[0] + sum(p.shape[0] for p, _ in completion.values())
    tic = time.perf_counter()
    readouts = evaluate_networks(sim, config, factory, W, b, test_x, completion)
    wall = time.perf_counter() - tic
    return {"evaluation_wall_s": wall, "evaluation_run_wall_s": readouts["run_wall_s"], "clamps": clamps,
            "biological_ms": clamps * (config.eval_settle_ms + config.eval_read_ms),
            "eval_chunk": EVAL_CHUNK, "eval_read_ms": config.eval_read_ms}


def measure(backend: str, mode: str, networks: int, hidden: int, iterations: int, profile: bool,
            synapse: str = "depressing", evaluation: bool = False) -> dict:
    """Two segments: the first (build, compile, one iteration) untimed, the second ``iterations`` timed."""
    config = EnsembleDataConfig(seed=1, backend=backend, n_networks=networks, n_hidden=hidden,
                                train_iterations=2, checkpoint_every=1, background_synapse=synapse)
    sim = load_backend(backend)
    fit = calibrate(CalibrationConfig(seed=1, backend="nest", neuron=config.neuron, noise=config.noise,
                                      dt_ms=config.dt_ms)).fit
    settings = background_run_settings(config, backend)
    noise = config.noise if mode == "poisson" else equivalent_noise(settings.background, "ensemble", config.noise)
    factory = network_factory(sim, config, mode, fit, noise, derive_seed(config.seed, 30, int(mode == "ensemble")))
    start = block_diagonal([initial_rbm(hidden, derive_rng(config.seed, 40, m)) for m in range(networks)])
    data, _, test_x, test_y = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)
    training = ensemble_training_data(data, networks, config.seed)
    test_x, test_y = test_x[:50], test_y[:50]
    # segment 1: build (and compile) + one iteration; segment 2: the timed iterations in a fresh run of the
    # same structure (on brian2_standalone the compiled binary is reused)
    tic = time.perf_counter()
    state = train_networks(sim, config, factory, np.array(start.W), np.array(start.b), training, test_x, test_y,
                           stop_after_iteration=1, mode=mode)
    assert state is None
    first_segment_s = time.perf_counter() - tic
    config = replace(config, checkpoint_every=iterations, train_iterations=iterations)
    factory = network_factory(sim, config, mode, fit, noise, derive_seed(config.seed, 30, int(mode == "ensemble")))
    profiler = cProfile.Profile() if profile else None
    tic, cpu0, children0 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    if profiler is not None:
        profiler.enable()
    state = train_networks(sim, config, factory, np.array(start.W), np.array(start.b), training, test_x, test_y,
                           mode=mode)
    if profiler is not None:
        profiler.disable()
    segment_s = time.perf_counter() - tic
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    python_cpu = time.process_time() - cpu0
    binary_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    t = state.timing
    per_iteration = (t["training_wall_s"] - t["build_wall_s"]) / iterations
    out = {"backend": backend, "mode": mode, "background_synapse": synapse, "n_networks": networks,
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
        out["evaluation"] = measure_evaluation(sim, replace(config, eval_read_ms=200.0), factory,
                                               np.array(start.W), np.array(start.b))
    if profiler is not None:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(30)
        out["profile_top30_cumulative"] = stream.getvalue().splitlines()
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
                        help="also time one evaluation of the acceptance size (659 clamps, 200 ms read-out)")
    args = parser.parse_args(argv)
    for backend in [b for b in args.backends.split(",") if b]:
        for mode in [m for m in args.modes.split(",") if m]:
            result = measure(backend, mode, args.networks, args.hidden, args.iterations, args.profile,
                             evaluation=args.evaluation)
            result["load_average_at_end"] = list(os.getloadavg())
            print(f"{backend} {mode}: {result['wall_s_per_iteration']:.2f} s per iteration "
                  f"({result['biological_ms_per_iteration']:g} ms biological), outside the simulator "
                  f"{100 * result['share_outside_simulator']:.1f} % of the wall time"
                  + (f", {100 * result['cpu_share_outside_simulator']:.1f} % of the CPU time"
                     if "cpu_share_outside_simulator" in result else ""), flush=True)
            saved = json.loads(OUT.read_text()) if OUT.exists() else {"runs": {}}
            saved["runs"][f"{backend}_{mode}_M{args.networks}_h{args.hidden}"] = result
            saved["summary"] = {}
            for key, run in saved["runs"].items():
                saved["summary"][f"{key}_wall_s_per_iteration"] = run["wall_s_per_iteration"]
                saved["summary"][f"{key}_share_outside_simulator"] = run["share_outside_simulator"]
                saved["summary"][f"{key}_process_cpu_s_per_iteration"] = run["cpu_s_per_iteration_incl_build"]
                if "evaluation" in run:
                    saved["summary"][f"{key}_evaluation_wall_s"] = run["evaluation"]["evaluation_wall_s"]
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
