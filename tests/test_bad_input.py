"""Every case of the bad-input probe (issue 15): valid input runs (exit 0 with a result), bad input
stops with exit 2 and a message naming the parameter or file, before any simulation, and nothing
already on disk is lost.

"Before any simulation" is enforced, not assumed: the ``no_simulation`` fixture makes the run of
PyNN's NEST and Brian2 simulators (which the chip and the standalone backend use too) and Brian2's
``Network.run`` raise, so a case that reached a simulator would not exit with 2 and its message.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from cortexsim.cli import main
from cortexsim.results import RUN_RECORD, file_lock, read_json, write_json_atomic


class SimulationStarted(AssertionError):
    """Raised by the patched simulators: a check came too late."""


@pytest.fixture
def no_simulation(monkeypatch):
    import brian2
    import pyNN.brian2.simulator as brian2_simulator
    import pyNN.nest.simulator as nest_simulator

    def refuse(*args, **kwargs):
        raise SimulationStarted("a simulation started before the arguments were checked")

    for module in (nest_simulator, brian2_simulator):       # every backend runs through one of these
        monkeypatch.setattr(type(module.state), "run", refuse)
        monkeypatch.setattr(type(module.state), "run_until", refuse)
    monkeypatch.setattr(brian2.Network, "run", refuse)


def snapshot(folder: Path) -> dict:
    """Every file below ``folder`` with its bytes (to show that nothing was lost or changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv, capsys, *needles) -> str:
    """Run the CLI, expect exit 2 and every needle in the error message; returns the message."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}, stderr: {err}"
    for needle in needles:
        assert needle in err, f"{needle!r} not in: {err}"
    return err


def fake_train_cd_folder(folder: Path) -> None:
    """A folder as an interrupted ``train-cd`` leaves it: run record, checkpoint, a figure."""
    folder.mkdir(parents=True)
    write_json_atomic(folder / RUN_RECORD, {"command": "train-cd", "status": "interrupted", "preexisting": []})
    write_json_atomic(folder / "checkpoint.json", {"task": "target", "iteration": 5, "W": [[0.0]], "b": [0.0]})
    (folder / "dkl_per_iteration.png").write_bytes(b"\x89PNG fake")


# --- durations against dt: valid ones run ------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--duration", "10100"],                    # 11 progress chunks of 918.18 ms were not multiples of dt
    ["--dt", "0.15", "--duration", "1000"],     # 6666.67 steps: rounded up to whole steps
])
def test_durations_off_the_chunk_or_step_grid_run(args, tmp_path, capsys):
    assert main(["sample", "--seed", "2", *args, "--out", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "results.json").read_text())
    assert np.isfinite(summary["dkl_sampled_target"]) and summary["duration_ms"] == float(args[-1])


def test_train_cd_evaluation_with_burn_in_runs(tmp_path, capsys):
    """--eval-duration 10000 plus the 100 ms burn-in was cut into chunks off the dt grid."""
    out = tmp_path / "cd"
    assert main(["train-cd", "--neurons", "3", "--iterations", "1", "--sampling-ms", "500",
                 "--eval-duration", "10000", "--out", str(out)]) == 0
    summary = json.loads((out / "results.json").read_text())
    assert summary["eval_duration_ms"] == 10000.0 and np.isfinite(summary["dkl_final"])


@pytest.mark.parametrize("args, needles", [
    (["--duration", "0.05"], ["duration_ms must be at least one integration step (dt = 0.1 ms)"]),
    (["--duration", "1"], ["duration_ms must be at least tau_refrac = 10 ms"]),
    (["--duration", "nan"], ["duration_ms must be a finite duration"]),
    (["--seed", "99999999999"], ["seed must be an integer in [1, 4294967294] on backend 'nest'"]),
    (["--seed", "-1"], ["seed must be an integer in"]),
    (["--seed", "0"], ["seed must be an integer in [1, "]),        # NEST's generator refuses seed 0
    (["--backend", "brian2", "--seed", "-3"], ["seed must be an integer in [0, 4294967294] on backend 'brian2'"]),
    (["--dt", "2"], ["dt must lie in [0.001, 1.0] ms"]),
])
def test_bad_durations_and_seeds_are_refused_before_simulating(args, needles, tmp_path, capsys, no_simulation):
    refused(["sample", *args, "--out", str(tmp_path / "o")], capsys, *needles)
    assert not (tmp_path / "o").exists()      # a run refused by its checks leaves no folder behind


def test_train_cd_seed_and_durations_are_checked_before_simulating(tmp_path, capsys, no_simulation):
    refused(["train-cd", "--seed", "99999999999", "--out", str(tmp_path / "a")], capsys, "seed must be")
    refused(["train-cd", "--sampling-ms", "0.01", "--out", str(tmp_path / "b")], capsys, "sampling_ms")
    refused(["train-cd", "--eval-duration", "-1", "--out", str(tmp_path / "c")], capsys, "eval_duration_ms")


# --- output folders ----------------------------------------------------------------------------------

def test_unusable_output_folders_are_refused_before_simulating(tmp_path, capsys, no_simulation):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    refused(["sample", "--out", "/proc/cortexsim_x"], capsys, "--out /proc/cortexsim_x is not a writable folder")
    refused(["sample", "--out", str(afile / "sub")], capsys, f"{afile} is a file, not a folder")
    refused(["sample", "--out", str(afile)], capsys, f"--out {afile} exists and is not a folder")
    assert afile.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_refused(tmp_path, capsys, no_simulation):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        refused(["sample", "--out", str(folder)], capsys, f"--out {folder} is not a writable folder")
    finally:
        folder.chmod(0o755)


def test_sample_refuses_a_train_cd_folder_and_overwrite_replaces_it_entirely(tmp_path, capsys, no_simulation):
    folder = tmp_path / "cd"
    fake_train_cd_folder(folder)
    before = snapshot(folder)
    refused(["sample", "--out", str(folder)], capsys, f"--out {folder} holds", "--resume", "--overwrite")
    assert snapshot(folder) == before
    # --overwrite: the old run's files go first, so the folder never mixes two runs (the simulation
    # itself is refused by the fixture here; the folder is then empty of the old run)
    with pytest.raises(SimulationStarted):
        main(["sample", "--out", str(folder), "--overwrite"])
    assert not (folder / "checkpoint.json").exists() and not (folder / "dkl_per_iteration.png").exists()


def test_files_that_were_there_before_a_run_survive_its_overwrite(tmp_path, capsys, no_simulation):
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    write_json_atomic(folder / RUN_RECORD, {"command": "sample", "status": "finished", "preexisting": ["notes.txt"]})
    write_json_atomic(folder / "results.json", {"dkl": 0.1})
    with pytest.raises(SimulationStarted):
        main(["sample", "--out", str(folder), "--overwrite"])
    assert (folder / "notes.txt").read_text() == "mine" and not (folder / "results.json").exists()


def test_train_cd_refuses_a_folder_with_a_checkpoint_unless_resume_or_overwrite(tmp_path, capsys, no_simulation):
    folder = tmp_path / "cd"
    fake_train_cd_folder(folder)
    before = snapshot(folder)
    refused(["train-cd", "--out", str(folder)], capsys, "holds the checkpoint of an unfinished run",
            f"--resume {folder}", "--overwrite")
    assert snapshot(folder) == before
    refused(["train-cd", "--out", str(folder), "--resume", str(folder), "--overwrite"], capsys, "exclude each other")
    refused(["train-cd", "--resume", str(tmp_path / "nothing")], capsys, "no checkpoint.json to resume from")


def test_interrupt_message_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import cortexsim.protocols.cd_training as cd_training

    folder = tmp_path / "cd"

    def interrupted(config, out_dir=None, progress=False, **kwargs):
        write_json_atomic(Path(out_dir) / "checkpoint.json", {"task": "target"})
        raise KeyboardInterrupt

    monkeypatch.setattr(cd_training, "run", interrupted)
    assert main(["train-cd", "--iterations", "50", "--out", str(folder)]) == 130
    err = capsys.readouterr().err
    assert f"cortexsim train-cd --iterations 50 --resume {folder}" in err
    assert read_json(folder / RUN_RECORD)["status"] == "interrupted"


# --- checkpoints -------------------------------------------------------------------------------------

def _checkpoint_folder(tmp_path: Path, **settings) -> tuple[Path, list[str]]:
    """A train-cd folder whose checkpoint is what a real run of these settings writes at its start."""
    from cortexsim.config import config_to_dict
    from cortexsim.models.boltzmann import random_bm
    from cortexsim.protocols.cd_training import TargetTrainingConfig, _fresh_state

    config = TargetTrainingConfig(seed=1, n_neurons=3, iterations=4, **settings)
    state = _fresh_state(config, [random_bm(3, seed=1)])
    state["config"] = config_to_dict(config)
    folder = tmp_path / "cd"
    folder.mkdir()
    write_json_atomic(folder / "checkpoint.json", state)
    write_json_atomic(folder / RUN_RECORD, {"command": "train-cd", "status": "interrupted", "preexisting": []})
    return folder, ["train-cd", "--neurons", "3", "--iterations", "4", "--resume", str(folder)]


def test_corrupt_checkpoint_names_file_and_key(tmp_path, capsys, no_simulation):
    folder, argv = _checkpoint_folder(tmp_path)
    state = read_json(folder / "checkpoint.json")
    state["cd"]["W"][0][1] = "oops"
    write_json_atomic(folder / "checkpoint.json", state)
    before = snapshot(folder)
    refused(argv, capsys, f"{folder / 'checkpoint.json'}: cd.W[0][1] must be a finite number, got 'oops'")
    assert snapshot(folder) == before               # a refused resume changes nothing, not even the run record
    state["cd"]["W"][0][1] = 0.0
    del state["cd"]["update"]["optimizer"]["velocity_b"]
    write_json_atomic(folder / "checkpoint.json", state)
    refused(argv, capsys, "checkpoint.json: key cd.update.optimizer.velocity_b is missing")
    (folder / "checkpoint.json").write_text("{not json")
    refused(argv, capsys, f"{folder / 'checkpoint.json'} is not valid JSON")
    assert set(snapshot(folder)) == set(before)


def test_resume_with_other_settings_names_them_with_old_and_new_values(tmp_path, capsys, no_simulation):
    folder, argv = _checkpoint_folder(tmp_path)
    argv = [a if a != "4" else "9" for a in argv] + ["--momentum", "0.7"]
    before = snapshot(folder)
    refused(argv, capsys, "iterations: 4 -> 9", "momentum: 0.5 -> 0.7")
    assert snapshot(folder) == before


# --- the calibration cache -----------------------------------------------------------------------------

def test_bad_cache_entry_is_refused_naming_the_cache_file(tmp_path, capsys, monkeypatch, no_simulation):
    from cortexsim.protocols.calibration import CalibrationConfig

    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("CORTEXSIM_CACHE_DIR", str(cache_dir))
    key = f"nest:{CalibrationConfig(seed=1).cache_key()}"     # what `sample` with the defaults looks up
    entry = {"v_p05": -50.6, "alpha": -5.0, "e_leak": [-55.0, -50.0, -45.0], "p_on": [0.01, 0.5, 0.99]}
    write_json_atomic(cache_dir / "calibration.json", {key: entry})
    before = snapshot(cache_dir)
    refused(["sample", "--out", str(tmp_path / "s")], capsys, f"calibration cache {cache_dir / 'calibration.json'}",
            f"entry '{key}'", "alpha = -5", "--no-cache")
    entry["v_p05"] = "oops"
    write_json_atomic(cache_dir / "calibration.json", {key: entry})
    refused(["sample", "--out", str(tmp_path / "s")], capsys, "calibration cache", "is corrupt", "--no-cache")
    assert set(snapshot(cache_dir)) == set(before)


def test_no_cache_measures_again_and_replaces_the_entry(tmp_path, monkeypatch, capsys):
    from cortexsim.protocols.calibration import CalibrationConfig, calibrate

    monkeypatch.setenv("CORTEXSIM_CACHE_DIR", str(tmp_path))
    cache_path = tmp_path / "calibration.json"
    config = CalibrationConfig(seed=1, n_points=8, duration_ms=2000.0)
    good = calibrate(config)
    cache = read_json(cache_path)
    (key,) = cache
    cache[key]["alpha"] = -5.0
    write_json_atomic(cache_path, cache)
    with pytest.raises(ValueError, match=rf"calibration cache {cache_path}, entry '{key}'.*alpha = -5.*--no-cache"):
        calibrate(config)
    out = tmp_path / "cal"     # the command the error message proposes, on these settings
    assert main(["calibrate", "--points", "8", "--duration", "2000", "--no-cache", "--out", str(out)]) == 0
    written = read_json(out / "results.json")
    assert not written["from_cache"] and written["alpha"] == good.fit.alpha      # same seed, same measurement
    assert (out / written["files"]["activation_function"]).is_file()
    assert read_json(cache_path)[key]["alpha"] == good.fit.alpha          # the entry was replaced ...
    assert calibrate(config).from_cache                                    # ... and is used again


def _append_entries(path: str, worker: int, n: int) -> None:
    from cortexsim.protocols.calibration import store_cache_entry

    for k in range(n):
        store_cache_entry(Path(path), f"w{worker}:{k}", {"k": k})


def test_concurrent_cache_writers_keep_every_entry(tmp_path):
    path = tmp_path / "calibration.json"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_entries, args=(str(path), w, 40)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(read_json(path)) == 3 * 40


# --- the emulated chip ---------------------------------------------------------------------------------

def test_uncalibrated_chip_calibration_is_an_error_telling_to_use_auto(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CORTEXSIM_CACHE_DIR", str(tmp_path / "cache"))
    refused(["calibrate", "--backend", "brainscales", "--chip-calibration", "none", "--out", str(tmp_path / "c")],
            capsys, "calibration on brainscales", "--chip-calibration auto")
    assert not (tmp_path / "cache" / "calibration.json").exists()      # nothing wrong was cached


def test_chip_calibration_path_in_a_missing_folder_is_refused(tmp_path, capsys, no_simulation):
    missing = tmp_path / "nonexistent" / "dir"
    refused(["sample", "--backend", "brainscales", "--chip-calibration", str(missing / "cal.json"),
             "--out", str(tmp_path / "o")], capsys, f"--chip-calibration {missing / 'cal.json'}", "does not exist")
    assert not missing.parent.exists()
    refused(["sample", "--backend", "brainscales", "--chip-calibration", "/nonexistent_cortexsim/dir/cal.json",
             "--out", str(tmp_path / "o")], capsys, "--chip-calibration")
    assert not Path("/nonexistent_cortexsim").exists()


# --- scale of inputs --------------------------------------------------------------------------------------

def test_large_joint_distributions_plot_the_top_states_and_say_so(tmp_path):
    import time

    from cortexsim.analysis import plots

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(2**16, 0.05))
    q = rng.dirichlet(np.full(2**16, 0.05))
    titles = []
    original = plots._save

    def save(fig, path):
        titles.append(fig.axes[0].get_title())
        assert len(fig.axes[0].patches) == 2 * plots.TOP_STATES
        return original(fig, path)

    plots._save = save
    try:
        tic = time.perf_counter()
        plots.plot_distributions(p, q, tmp_path / "d.png", title="16 units")
        assert time.perf_counter() - tic < 20.0          # was 54 s for 65,536 bars
    finally:
        plots._save = original
    top = np.sort(np.argsort(-np.maximum(p, q))[:plots.TOP_STATES])
    assert np.array_equal(plots.top_states([p, q], plots.TOP_STATES), top)
    assert f"top {plots.TOP_STATES} of 65,536 states" in titles[0] and "16 units" in titles[0]


def test_digits_evaluation_size_option_reaches_the_config(tmp_path, monkeypatch, capsys):
    import cortexsim.protocols.cd_digits as digits

    seen = {}

    def train_digits(config, **kwargs):
        seen["config"] = config
        raise KeyboardInterrupt

    monkeypatch.setattr(digits, "train_digits", train_digits)
    main(["train-cd", "--task", "digits", "--test-images", "40", "--completion-images", "10",
          "--out", str(tmp_path / "d")])
    assert seen["config"].n_test_images == 40 and seen["config"].n_completion_images == 10
    refused(["train-cd", "--task", "target", "--test-images", "40", "--out", str(tmp_path / "t")], capsys,
            "--test-images")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_json_files_are_as_readable_as_the_umask_allows(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = write_json_atomic(tmp_path / "r.json", {"a": 1})
        with file_lock(tmp_path / "r.json"):
            pass
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
