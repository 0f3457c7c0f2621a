"""Every case of issue 15's bad-input probe, run as a user would: the ``cortexsim`` command in a subprocess.

For each case: the exit code (0 with a result for valid input, 2 with a message naming the parameter
or file for bad input), the message, whether a simulation had started before the error (progress
output of a simulation or calibration on stderr), whether files already on disk were kept (hashes
before and after), the wall time and, for the large networks, the peak memory of the run. A private
calibration cache (``$CORTEXSIM_CACHE_DIR`` in a temporary folder) keeps the shared cache untouched.

    nice -n 10 .venv/bin/python benchmarks/bad_input_cases.py

Writes benchmarks/results/bad_input.json (``summary``: cases, as expected, failures).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cortexsim.results import library_versions, machine_info, read_json, write_json_atomic  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "bad_input.json"
CORTEXSIM = [sys.executable, "-m", "cortexsim"]
#: Output on stderr that only appears once a simulation (or a calibration's sweep) runs.
SIMULATION_MARKERS = ("sampling on", "coarse sweep", "fine sweep", "evaluation", "CD on", "ms/s]")


def _hashes(folder: Path) -> dict:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _interruptible() -> None:
    """Ctrl-C as on a terminal: a benchmark started in the background (``&``) inherits SIGINT ignored,
    and Python then never raises KeyboardInterrupt in its children."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Runner:
    def __init__(self, work: Path):
        self.work = work
        self.env = dict(os.environ, CORTEXSIM_CACHE_DIR=str(work / "cache"), OMP_NUM_THREADS="1")
        self.cases = []

    def run(self, name: str, argv: list[str], expect: int, needles=(), watch: Path | None = None,
            stop_when: Path | None = None, issue: str = "", measured: bool = False) -> dict:
        """Run ``cortexsim argv``; ``watch``: a folder whose files must be kept; ``stop_when``: send
        SIGINT (Ctrl-C) once this file exists; ``measured``: the error is the outcome of a measurement
        (a simulation must run before it)."""
        before = _hashes(watch) if watch is not None else None
        usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        tic = time.perf_counter()
        process = subprocess.Popen(CORTEXSIM + argv, cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible)
        if stop_when is not None:
            while process.poll() is None and not stop_when.exists():
                time.sleep(0.5)
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        out, err = process.communicate()
        wall = time.perf_counter() - tic
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        message = [line for line in err.splitlines() if line.startswith("cortexsim ")]
        simulated = any(marker in err for marker in SIMULATION_MARKERS)
        case = {"name": name, "issue": issue, "argv": ["cortexsim", *argv], "exit_code": process.returncode,
                "expected_exit_code": expect, "message": message[-1] if message else None,
                "needles": list(needles), "needles_found": all(n in err for n in needles),
                "simulation_started_before_exit": simulated, "wall_time_s": round(wall, 2),
                "cpu_time_s": round(usage.ru_utime + usage.ru_stime - usage_before.ru_utime - usage_before.ru_stime, 2),
                "stdout_tail": out.strip().splitlines()[-3:]}
        if watch is not None:
            after = _hashes(watch)
            case["files_kept"] = all(after.get(k) == v for k, v in before.items())
        ok = process.returncode == expect and case["needles_found"] and case.get("files_kept", True)
        if expect == 2 and not measured:
            ok = ok and not simulated
        case["error_from_a_measurement"] = measured
        case["as_expected"] = bool(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {process.returncode} ({wall:.1f} s) "
              f"{case['message'] or (case['stdout_tail'][-1] if case['stdout_tail'] else '')}", flush=True)
        self.cases.append(case)
        return case


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="cortexsim_bad_input_"))
    r = Runner(work)
    try:
        _cases(r, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    failures = [c["name"] for c in r.cases if not c["as_expected"]]
    summary = {"cases": len(r.cases), "as_expected": len(r.cases) - len(failures), "failures": failures,
               "exit_0": sum(c["exit_code"] == 0 for c in r.cases), "exit_2": sum(c["exit_code"] == 2 for c in r.cases),
               "exit_2_after_a_simulation_started": sum(c["exit_code"] == 2 and c["simulation_started_before_exit"]
                                                        for c in r.cases)}
    write_json_atomic(RESULT, {"benchmark": "bad_input_cases", "summary": summary, "cases": r.cases,
                               "load_average": os.getloadavg(), "running_as_root": os.geteuid() == 0,
                               "versions": library_versions(), "machine": machine_info()})
    print(json.dumps(summary, indent=2))


def _fake_train_cd_folder(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "cortexsim_run.json").write_text(json.dumps({"command": "train-cd", "status": "interrupted"}))
    (folder / "checkpoint.json").write_text(json.dumps({"task": "target", "iteration": 5}))
    (folder / "dkl_per_iteration.png").write_bytes(b"\x89PNG not really")


def _cases(r: Runner, work: Path) -> None:
    small_cd = ["train-cd", "--neurons", "3", "--iterations", "4", "--sampling-ms", "500", "--checkpoint-every", "1",
                "--eval-duration", "2000"]
    # durations against dt
    r.run("duration 10100", ["sample", "--duration", "10100", "--out", "s1"], 0, issue="chunks not multiples of dt")
    r.run("train-cd eval 10000 + burn-in", ["train-cd", "--neurons", "3", "--iterations", "1", "--sampling-ms", "500",
                                             "--eval-duration", "10000", "--out", "cd1"], 0,
          issue="chunks not multiples of dt")
    r.run("dt 0.15", ["sample", "--dt", "0.15", "--out", "s2"], 0, issue="10000 ms is not a multiple of 0.15 ms")
    r.run("duration 0.05 < dt", ["sample", "--duration", "0.05", "--out", "s3"], 2, ["duration_ms", "dt = 0.1 ms"])
    r.run("duration 1", ["sample", "--duration", "1", "--out", "s4"], 2, ["duration_ms", "tau_refrac"])
    # seeds
    r.run("seed 99999999999", ["sample", "--seed", "99999999999", "--out", "s5"], 2, ["seed must be", "nest"])
    r.run("seed -1", ["sample", "--seed", "-1", "--out", "s6"], 2, ["seed must be"])
    # output folders
    r.run("out /proc/x", ["sample", "--out", "/proc/x"], 2, ["--out /proc/x"])
    r.run("out in read-only sysfs", ["sample", "--out", "/sys/cortexsim_x"], 2, ["--out /sys/cortexsim_x"])
    readonly = work / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    r.run("out read-only folder (chmod 555)", ["sample", "--duration", "1000", "--out", str(readonly / "o")],
          0 if os.geteuid() == 0 else 2, [] if os.geteuid() == 0 else ["not a writable folder"],
          issue="root may write into a chmod-555 folder: then the run is valid")
    readonly.chmod(0o755)
    (work / "afile").write_text("keep")
    r.run("out afile/sub", ["sample", "--out", "afile/sub"], 2, ["afile is a file"], watch=work / "afile")
    r.run("out is an existing file", ["sample", "--out", "afile"], 2, ["exists and is not a folder"])
    # silent overwrites
    _fake_train_cd_folder(work / "cdfolder")
    r.run("sample into a train-cd folder", ["sample", "--out", "cdfolder"], 2, ["holds", "--overwrite"],
          watch=work / "cdfolder")
    r.run("train-cd into another run's checkpoint", [*small_cd, "--out", "cdfolder"], 2, ["--resume", "--overwrite"],
          watch=work / "cdfolder")
    # kill and resume
    long_cd = [*small_cd, "--iterations", "40"]
    r.run("train-cd interrupted (Ctrl-C after the first checkpoint)", [*long_cd, "--out", "cd2"], 130,
          ["--resume", "cd2"], stop_when=work / "cd2" / "checkpoint.json")
    r.run("train-cd resumed", [*long_cd, "--resume", "cd2"], 0)
    # checkpoints
    r.run("train-cd run to corrupt", [*small_cd, "--iterations", "2", "--out", "cd3"], 0)
    state = read_json(work / "cd3" / "checkpoint.json")
    (work / "cd3" / "cortexsim_run.json").write_text(json.dumps({"command": "train-cd", "status": "interrupted"}))
    state["cd"]["iteration"] = 1
    state["cd"]["W"][0][1] = "oops"
    (work / "cd3" / "checkpoint.json").write_text(json.dumps(state))
    r.run("corrupt checkpoint value", [*small_cd, "--iterations", "2", "--resume", "cd3"], 2,
          ["checkpoint.json", "W[0][1]", "oops"], watch=work / "cd3")
    state["cd"]["W"][0][1] = 0.0
    (work / "cd3" / "checkpoint.json").write_text(json.dumps(state))
    r.run("resume with other settings", [*small_cd, "--iterations", "3", "--momentum", "0.7", "--resume", "cd3"], 2,
          ["iterations: 2 -> 3", "momentum: 0.5 -> 0.7"], watch=work / "cd3")
    # the calibration cache
    cache = work / "cache" / "calibration.json"
    from cortexsim.protocols.calibration import CalibrationConfig

    entries = read_json(cache)
    key = f"nest:{CalibrationConfig(seed=1).cache_key()}"        # the entry `sample` with the defaults uses
    good_alpha = entries[key]["alpha"]
    entries_bad = {k: dict(v, alpha=-5.0) if k == key else v for k, v in entries.items()}
    cache.write_text(json.dumps(entries_bad))
    r.run("bad cache entry (alpha = -5)", ["sample", "--out", "s7"], 2, [str(cache), "--no-cache"])
    r.run("calibrate --no-cache replaces the entry", ["calibrate", "--no-cache", "--out", "cal1"], 0)
    r.cases[-1]["entry_alpha_after"] = read_json(cache)[key]["alpha"]
    r.cases[-1]["entry_alpha_before_corruption"] = good_alpha
    r.run("sample after the refresh", ["sample", "--duration", "1000", "--out", "s8"], 0)
    # the emulated chip
    r.run("calibrate on the chip, calibration none", ["calibrate", "--backend", "brainscales", "--chip-calibration",
                                                      "none", "--out", "cal2"], 2, ["--chip-calibration auto"],
          measured=True, issue="the fit is only known after the sweep; nothing is cached")
    r.cases[-1]["cache_entries_for_the_chip"] = sum(k.startswith("brainscales:") for k in read_json(cache))
    r.run("calibrate on the chip (default: auto)", ["calibrate", "--backend", "brainscales", "--out", "cal3"], 0)
    r.run("chip calibration file in a missing folder", ["sample", "--backend", "brainscales", "--chip-calibration",
                                                        "/nonexistent_cortexsim/dir/cal.json", "--out", "s9"], 2,
          ["--chip-calibration", "does not exist"])
    r.cases[-1]["root_folder_created"] = Path("/nonexistent_cortexsim").exists()
    # scale of inputs
    import numpy as np

    rng = np.random.default_rng(16)
    A = rng.normal(0, 1, (16, 16))
    W = (A + A.T) / 2
    np.fill_diagonal(W, 0)
    (work / "bm16.json").write_text(json.dumps({"W": W.tolist(), "b": rng.normal(0, 1, 16).tolist()}))
    r.run("sample --bm with 16 units", ["sample", "--bm", "bm16.json", "--out", "s16"], 0, issue="87 s, 54 s of them plotting")
    r.run("sample with 20 units", ["sample", "--neurons", "20", "--out", "s20"], 0, issue="over 5 min and 8.5 GB")
    r.cases[-1]["peak_rss_gb_of_any_child"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6, 2)
    r.run("digits with a small evaluation", ["train-cd", "--task", "digits", "--hidden", "20", "--iterations", "2",
                                             "--checkpoint-every", "1", "--test-images", "20",
                                             "--completion-images", "5", "--out", "dg"], 0,
          ["classification", "image"], issue="minutes of evaluation without progress or size option")
    mode = (work / "s1" / "results.json").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    r.cases.append({"name": "results.json mode", "mode": oct(mode), "umask": oct(umask),
                    "as_expected": mode == (0o666 & ~umask), "exit_code": None,
                    "simulation_started_before_exit": False})


if __name__ == "__main__":
    main()
