"""Mutation run: plant plausible bugs one at a time and check that ``make test`` catches each.

Every mutant is a one-line change of the source (an exact snippet replaced by another). For each
mutant the script

1. checks that the snippet occurs exactly once (so the mutant is the change it claims to be),
2. writes the mutated file and runs, with ``-x`` and the options of ``make test`` (``pytest -q -p
   no:cacheprovider``), first the test files most likely to catch it (all part of the suite) and, if
   they pass, the whole suite, and
3. restores the file byte for byte (in a ``finally``; the restore is verified against git).

A mutant is *killed* when the suite fails; the first failing test is recorded. Before the
mutants, the tests placed first are run on the unmutated tree: a kill must not be a failure that
was there anyway. Results go to ``benchmarks/results/mutation.json``.

    nice -n 10 .venv/bin/python benchmarks/mutation.py            # every mutant
    nice -n 10 .venv/bin/python benchmarks/mutation.py NAME ...   # some of them

Run it on a clean checkout and do not edit the tree meanwhile (it mutates files in place).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cortexsim.results import library_versions, machine_info, write_json_atomic  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "mutation.json"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]


@dataclass(frozen=True)
class Mutant:
    """A planted bug: ``old`` (occurring once in ``path``) replaced by ``new``."""

    name: str
    origin: str          # "issue 15" (a mutant of the probe) or "own"
    description: str
    path: str
    old: str
    new: str
    first_tests: tuple   # test files run first (the rest of the suite follows)


MUTANTS = [
    Mutant("cd_sign_engine", "issue 15",
           "the CD engine's update (every training loop: target, digits, ensemble) moves (W, b) along "
           "<.>_model - <.>_data (sign flipped); the issue's mutant was in the ensemble training loop, "
           "which is now the engine",
           "models/cd_learning.py",
           "grad_W, grad_b = cd_gradient(data_moments, model_moments, self.mask)",
           "grad_W, grad_b = cd_gradient(model_moments, data_moments, self.mask)",
           ("tests/protocols/test_ensemble_protocol.py",)),
    Mutant("nest_inhibitory_background", "issue 15",
           "NEST's inhibitory Poisson background uses the excitatory rate and weight",
           "backends/pynn_nest.py",
           '("inh", rate_inh, -weight_inh)', '("inh", rate_exc, -weight_exc)',
           ("tests/backends/test_noise_statistics.py",)),
    Mutant("translation_psp_window", "issue 15",
           "the PSP-matching window of the BM -> LIF translation is tau_syn_E instead of tau_ref",
           "models/lif_translation.py",
           "    T = neuron.tau_refrac\n    rectangle", "    T = neuron.tau_syn_E\n    rectangle",
           ("tests/unit/test_lif_translation.py",)),
    Mutant("microcircuit_output_only", "issue 15",
           "the full-dynamics microcircuit learns only its output layer (hidden forward rates 0)",
           "models/microcircuit/numpy_twin.py",
           'rates["eta_up"][l] * params.dt', '(rates["eta_up"][l] if l == n - 1 else 0.0) * params.dt',
           ("tests/protocols/test_microcircuit_protocol.py",)),
    Mutant("cd_sign_target_statistics", "issue 15 (every training loop)",
           "the statistics of target learning (target and ensemble tasks) swap data and model moments "
           "(the sign error moved into the task's half of the engine)",
           "protocols/cd_engine.py",
           "return Statistics((self.data_mean, self.data_second), (model_mean, model_second),",
           "return Statistics((model_mean, model_second), (self.data_mean, self.data_second),",
           ("tests/protocols/test_cd_training.py", "tests/protocols/test_ensemble_protocol.py")),
    Mutant("cd_sign_clamped_statistics", "issue 15 (every training loop)",
           "the statistics of learning from data (digits task: clamped data phase, free model phase) swap "
           "data and model moments",
           "protocols/cd_engine.py",
           "return Statistics(moments_from_states(np.vstack(data_rows)), model,",
           "return Statistics(model, moments_from_states(np.vstack(data_rows)),",
           ("tests/protocols/test_cd_training.py",)),
    Mutant("progress_chunks_off_grid", "own",
           "progress chunks of equal length duration / n (the bug of issue 15: not whole steps of dt)",
           "protocols/progress.py",
           "chunks = [float(round(int(k) * dt, 12)) for k in chunk_steps]",
           "chunks = [duration / n_chunks] * n_chunks",
           ("tests/test_bad_input.py",)),
    Mutant("free_membrane_inhibitory_tau", "own",
           "the free-membrane inhibitory conductance uses tau_syn_E (mean membrane and weights shift "
           "only when tau_syn_E != tau_syn_I)",
           "models/lif_translation.py",
           "g_inh = noise.weight_inh * noise.rate_inh * 1e-3 * neuron.tau_syn_I",
           "g_inh = noise.weight_inh * noise.rate_inh * 1e-3 * neuron.tau_syn_E",
           ("tests/unit/test_lif_translation.py",)),
]


def _first_failure(output: str) -> str | None:
    match = re.search(r"^(?:FAILED|ERROR) (\S+)", output, flags=re.MULTILINE)
    return match.group(1) if match else None


def _failure_message(output: str) -> str | None:
    """The first assertion/error line of pytest's report (``E   ...``), shortened."""
    match = re.search(r"^E\s+(.+)$", output, flags=re.MULTILINE)
    return match.group(1).strip()[:300] if match else None


def _pytest(args: list[str], timeout_s: float) -> tuple[int, str, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    tic = time.perf_counter()
    completed = subprocess.run(PYTEST + args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout_s)
    return completed.returncode, completed.stdout + completed.stderr, time.perf_counter() - tic


def _git_clean(path: str) -> bool:
    return subprocess.run(["git", "diff", "--quiet", "--", path], cwd=ROOT).returncode == 0


def run_mutant(mutant: Mutant, timeout_s: float) -> dict:
    """Apply ``mutant``, run the suite with -x, restore; returns what happened."""
    path = ROOT / mutant.path
    original = path.read_bytes()
    text = original.decode()
    count = text.count(mutant.old)
    if count != 1:
        raise RuntimeError(f"mutant {mutant.name}: snippet found {count} times in {mutant.path}, expected once")
    try:
        path.write_text(text.replace(mutant.old, mutant.new))
        code, output, seconds = _pytest(list(mutant.first_tests), timeout_s)
        stage = "likely killers"
        if code == 0:       # they missed it: the rest of the suite
            code, output, more = _pytest(["tests"], timeout_s)
            seconds += more
            stage = "whole suite"
    finally:
        path.write_bytes(original)
    if path.read_bytes() != original:
        raise RuntimeError(f"{mutant.path} was not restored")
    summary_line = output.strip().splitlines()[-1] if output.strip() else ""
    return {**asdict(mutant), "killed": code != 0, "pytest_exit_code": code, "killed_by": _first_failure(output),
            "failure_message": _failure_message(output),
            "caught_in": stage,
            "pytest_summary": summary_line, "wall_time_s": round(seconds, 1), "restored": True,
            "tree_clean_after": _git_clean(mutant.path)}


def main(names: list[str]) -> None:
    chosen = [m for m in MUTANTS if not names or m.name in names]
    unknown = set(names) - {m.name for m in MUTANTS}
    if unknown:
        raise SystemExit(f"unknown mutants {sorted(unknown)}; known: {[m.name for m in MUTANTS]}")
    dirty = [m.path for m in chosen if not _git_clean(m.path)]
    if dirty:
        raise SystemExit(f"uncommitted changes in {dirty}: commit or stash them first (the run restores from git)")
    first = sorted({f for m in chosen for f in m.first_tests})
    print(f"baseline: {' '.join(first)} on the unmutated tree", flush=True)
    code, output, seconds = _pytest(first, timeout_s=3600)
    baseline = {"tests": first, "passed": code == 0, "wall_time_s": round(seconds, 1),
                "pytest_summary": output.strip().splitlines()[-1] if output.strip() else ""}
    if code != 0:
        raise SystemExit(f"baseline fails ({_first_failure(output)}): a kill would mean nothing\n{output[-3000:]}")
    results = []
    for mutant in chosen:
        print(f"mutant {mutant.name}: {mutant.description}", flush=True)
        result = run_mutant(mutant, timeout_s=3 * 3600)
        print(f"  {'killed by ' + str(result['killed_by']) if result['killed'] else 'SURVIVED'} "
              f"({result['wall_time_s']:.0f} s; {result['pytest_summary']})", flush=True)
        results.append(result)
    killed = sum(r["killed"] for r in results)
    summary = {"mutants": len(results), "killed": killed, "survived": len(results) - killed,
               "survivors": [r["name"] for r in results if not r["killed"]],
               "killed_by": {r["name"]: r["killed_by"] for r in results}}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    write_json_atomic(RESULT, {
        "benchmark": "mutation", "summary": summary, "commit_tested": commit,
        "method": "each mutant applied alone to the working tree; pytest -q -p no:cacheprovider -x (as make test) "
                  "on the test files most likely to catch it, then, if they pass, on the whole suite; the file "
                  "restored byte for byte; baseline: the likely killers pass on the unmutated tree",
        "baseline": baseline, "mutants": results, "load_average": os.getloadavg(),
        "versions": library_versions(), "machine": machine_info(),
    })
    print(json.dumps(summary, indent=2))
    print(f"written {RESULT}")


if __name__ == "__main__":
    main(sys.argv[1:])
