"""PyNN 0.13's own system scenarios on PyNN's NEST/Brian2 modules and on every cortexsim backend.

Every scenario function of ``test/system/scenarios`` in PyNN 0.13's source distribution (fetched
from PyPI with ``pip download --no-deps --no-binary :all: pynn==0.13.*`` into the cache folder
``$CORTEXSIM_CACHE_DIR/pynn-sdist``, default ``~/.cache/cortexsim/pynn-sdist``; nothing of PyNN is
copied into this repository) runs once per configuration, each in its own process (pytest on that
one function, forked from a server process that imported the configuration's module once) with a
timeout, so no simulator state leaks from one scenario into another. Configurations:
PyNN's own ``pyNN.nest`` and ``pyNN.brian2`` (the references), every installed cortexsim backend
(``installed_backends()``), and the emulated chip also as an ideal chip (no fixed-pattern noise,
unquantised weights).

The scenarios' ``fixtures.py`` is replaced, in a temporary copy, by one that hands each scenario the
configuration's module (with the configuration's ``setup`` options added). Scenarios are run on every
configuration, also where PyNN's decorator names other simulators (that list is recorded).

Outcome classes:

``pass``                the scenario passed
``unsupported``         refused with a clear "not supported" error: the chip's ChipConstraintError,
                        brian2_standalone's StandaloneUnsupported, NotImplementedError,
                        pyNN.errors.NoModelAvailableError
``numerical_failure``   ran, but an assertion on its numbers failed (AssertionError), e.g. from
                        weight quantisation or fixed-pattern noise on the chip
``crash``               any other exception
``hang``                no result within the timeout
``skipped``             the scenario skipped itself (a missing optional package)

A *regression* is a scenario that passes on PyNN's own module of the same simulator (the registry's
``pynn_reference``) but not on the cortexsim configuration. On ``nest`` and ``brian2`` every other
outcome counts; on ``brian2_standalone`` and the ideal chip ``unsupported`` does not (their
documented limits); on the default chip neither does ``numerical_failure`` (quantisation and
fixed-pattern noise change numbers; those are listed as ``chip_imperfections``).

Writes ``benchmarks/results/pynn_scenarios.json`` with a ``summary`` object (counts per configuration
and outcome class, regression counts), every scenario's outcome, versions and machine.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/pynn_scenarios.py
    .venv/bin/python benchmarks/pynn_scenarios.py --configurations brainscales brainscales_ideal --update
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from cortexsim.backends.registry import BACKENDS, installed_backends
from cortexsim.results import library_versions, machine_info, read_json, write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "pynn_scenarios.json"
PYNN_REQUIREMENT = "pynn==0.13.*"

#: PyNN's own modules: the references.
REFERENCE_CONFIGURATIONS = {
    "pyNN.nest": {"module": "pyNN.nest", "setup": {}, "reference": None},
    "pyNN.brian2": {"module": "pyNN.brian2", "setup": {}, "reference": None, "warm_up": True},
}
#: Extra configurations of a cortexsim backend: name -> (backend, setup options).
BACKEND_VARIANTS = {
    "brainscales_ideal": ("brainscales", {"fixed_pattern_noise": False, "quantize_weights": False}),
}
#: cortexsim backends warmed up like their reference (see warm_up()).
WARMED_UP = ("brian2",)
#: Outcome classes that are not regressions on a configuration (everything else is).
ACCEPTED_NON_PASSES = {
    "brian2_standalone": ("unsupported",),
    "brainscales_ideal": ("unsupported",),
    "brainscales": ("unsupported", "numerical_failure"),
}
OUTCOME_CLASSES = ("pass", "unsupported", "numerical_failure", "crash", "hang", "skipped", "not_run")
UNSUPPORTED_ERRORS = ("ChipConstraintError", "StandaloneUnsupported", "NotImplementedError",
                      "NoModelAvailableError")


def configurations() -> dict:
    """Every configuration of this machine: PyNN's references, installed backends, their variants."""
    configs = dict(REFERENCE_CONFIGURATIONS)
    for name in installed_backends():
        info = BACKENDS[name]
        configs[name] = {"module": info.module, "setup": {}, "reference": info.pynn_reference,
                         "warm_up": name in WARMED_UP}
    for name, (backend, options) in BACKEND_VARIANTS.items():
        if backend in configs:
            configs[name] = dict(configs[backend], setup=options)
    return configs


# Written into the temporary copy of the scenarios in place of PyNN's fixtures.py.
FIXTURES = '''
import importlib, json, os
import pytest

_CONFIG = json.loads(os.environ["SCENARIO_CONFIGURATION"])


class ConfiguredSimulator:
    """The configuration's module, with its setup() options added to every setup() call."""

    def __init__(self, config):
        self._module = importlib.import_module(config["module"])
        self._setup_options = config["setup"]

    @property
    def __name__(self):
        return self._module.__name__

    def __str__(self):
        return self._module.__name__

    def setup(self, *args, **kwargs):
        return self._module.setup(*args, **{**self._setup_options, **kwargs})

    def __getattr__(self, name):
        return getattr(self._module, name)


def run_with_simulators(*sim_names):
    def decorate(function):
        return pytest.mark.parametrize("sim", [pytest.param(ConfiguredSimulator(_CONFIG), id="configured")])(function)
    return decorate
'''

# Written into the temporary copy: records the outcome and the exception class chain of the test.
CONFTEST = '''
import json, os
import pytest

_OUTCOME = {"outcome": "no_result"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        _OUTCOME.update(outcome="skipped", when=report.when,
                        message=str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr))
    elif report.failed:
        _OUTCOME.update(outcome="failed", when=report.when)
        if call.excinfo is not None:
            _OUTCOME["exception_classes"] = [cls.__name__ for cls in call.excinfo.type.__mro__]
            _OUTCOME["message"] = str(call.excinfo.value)[:400]
    elif report.when == "call" and _OUTCOME["outcome"] == "no_result":
        _OUTCOME["outcome"] = "passed"


def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["SCENARIO_OUTCOME"], "w") as handle:
        json.dump(_OUTCOME, handle)
'''


def cache_dir() -> Path:
    root = os.environ.get("CORTEXSIM_CACHE_DIR") or Path.home() / ".cache" / "cortexsim"
    return Path(root) / "pynn-sdist"


def fetch_pynn_source(directory: Path | None = None) -> tuple[Path, dict]:
    """PyNN 0.13's sdist from PyPI (pip, cached), unpacked; returns its folder and its file facts."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    archives = sorted(directory.glob("pynn-0.13.*.tar.gz"))
    if not archives:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        PYNN_REQUIREMENT, "-d", str(directory)], check=True, capture_output=True)
        archives = sorted(directory.glob("pynn-0.13.*.tar.gz"))
    archive = archives[-1]
    unpacked = directory / archive.name[:-len(".tar.gz")]
    if not (unpacked / "test" / "system" / "scenarios").is_dir():
        with tarfile.open(archive) as tar:
            tar.extractall(directory, filter="data")
    facts = {"archive": archive.name, "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
             "requirement": PYNN_REQUIREMENT, "source": "PyPI sdist via pip download"}
    return unpacked, facts


def list_scenarios(scenarios: Path) -> list[dict]:
    """Every test function decorated with ``run_with_simulators`` (file, name, declared simulators)."""
    found = []
    for path in sorted(scenarios.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
                continue
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") == "run_with_simulators"):
                    declared = [a.value for a in decorator.args if isinstance(a, ast.Constant)]
                    found.append({"module": path.stem, "scenario": node.name, "pynn_simulators": declared})
    return found


def prepare(pynn_source: Path, workdir: Path, brian2_target: str) -> Path:
    """A temporary copy of the scenarios with this benchmark's fixtures, conftest and Brian2 preferences.

    ``brian2_target`` is Brian2's code generation target for the runtime-mode configurations
    (``pyNN.brian2`` and ``brian2`` alike), written to the ``brian_preferences`` file Brian2 reads from
    the working folder: the target changes how fast a scenario runs, not what it computes.
    """
    source = pynn_source / "test" / "system" / "scenarios"
    destination = workdir / "scenarios"
    shutil.copytree(source, destination)
    (destination / "fixtures.py").write_text(FIXTURES)
    (workdir / "conftest.py").write_text(CONFTEST)
    (workdir / "brian_preferences").write_text(f"codegen.target = '{brian2_target}'\n")
    return destination


def classify(outcome: dict) -> str:
    if outcome["outcome"] == "passed":
        return "pass"
    if outcome["outcome"] == "skipped":
        return "skipped"
    if outcome["outcome"] in ("hang", "not_run"):
        return outcome["outcome"]
    classes = outcome.get("exception_classes", [])
    if any(name in classes for name in UNSUPPORTED_ERRORS):
        return "unsupported"
    if "AssertionError" in classes and outcome.get("when") == "call":
        return "numerical_failure"
    return "crash"


# Imported once per configuration by the server process, before it forks one child per scenario.
WARM_IMPORTS = ("numpy", "scipy.sparse", "quantities", "neo", "pytest", "pyNN", "pyNN.utility",
                "pyNN.random", "pyNN.space", "pyNN.errors")


def warm_up(sim) -> None:
    """Build and run one tiny network of every standard cell type once, then ``end()``.

    Only for the Brian2 runtime configurations (reference and backend alike): Brian2's in-memory
    caches of parsed equations then live in the server, and every forked scenario starts with them
    instead of re-deriving them (minutes per scenario on a loaded machine). Nothing of the network
    survives: each scenario calls ``setup()`` itself, which starts a new Brian2 network.
    """
    try:
        sim.setup(timestep=0.1)
        sources = sim.Population(2, sim.SpikeSourceArray(spike_times=[1.0, 2.0]))
        for name in ("IF_cond_exp", "IF_curr_exp", "IF_cond_alpha", "IF_curr_alpha", "EIF_cond_exp_isfa_ista",
                     "EIF_cond_alpha_isfa_ista", "HH_cond_exp", "Izhikevich", "IF_curr_delta"):
            cell_type = getattr(sim, name, None)
            if cell_type is None:
                continue
            try:
                population = sim.Population(2, cell_type())
                population.record(["spikes", "v"])
                sim.Projection(sources, population, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.01),
                               receptor_type="excitatory")
            except Exception:  # noqa: BLE001 - a cell type the module lacks
                continue
        sim.Population(2, sim.SpikeSourcePoisson(rate=10.0)).record("spikes")
        sim.run(2.0)
        sim.end()
    except Exception:  # noqa: BLE001 - warming up is an optimisation only
        pass


def serve(config: dict, nodes: list[str], workdir: Path, timeout_s: float, results_file: Path,
          stop_at: float = float("inf")) -> None:
    """Run ``nodes`` (pytest node ids) of one configuration, each in its own forked process.

    The server imports the configuration's module and PyNN's heavy dependencies once (importing
    pyNN.brian2 alone takes ~45 s of CPU on a loaded machine); every scenario then runs in a fresh
    child forked from that state, before any ``setup()``, so no simulator state passes from one
    scenario to the next. A child that gives no result within ``timeout_s`` is killed (``hang``).
    One JSON line per scenario is appended to ``results_file``.
    """
    import importlib
    import signal

    os.chdir(workdir)
    sys.path.insert(0, str(workdir))
    for name in WARM_IMPORTS + (config["module"],):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the scenario itself reports what fails to import
            pass
    if config.get("warm_up"):
        warm_up(importlib.import_module(config["module"]))
    for node in nodes:
        if time.time() >= stop_at:  # the run's time budget is spent: recorded as not run, never guessed
            with open(results_file, "a") as handle:
                handle.write(json.dumps({"node": node, "outcome": "not_run", "wall_time_s": 0.0,
                                         "message": "not started: the run's --stop-at time had passed"}) + "\n")
            continue
        outcome_file = workdir / "outcome.json"
        outcome_file.unlink(missing_ok=True)
        start = time.perf_counter()
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:  # the scenario's own process
            code = 1
            try:
                import pytest
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                os.environ["SCENARIO_OUTCOME"] = str(outcome_file)
                code = pytest.main(["-q", "-p", "no:cacheprovider", "-W", "ignore", node])
            finally:
                os._exit(int(code))
        deadline = start + timeout_s
        status = None
        while time.perf_counter() < deadline:
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid == child:
                break
            status = None
            time.sleep(0.2)
        if status is None:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            outcome = {"outcome": "hang", "message": f"no result within {timeout_s:.0f} s"}
        elif outcome_file.exists():
            outcome = json.loads(outcome_file.read_text())
        else:
            outcome = {"outcome": "failed", "exception_classes": ["NoResult"],
                       "message": f"the scenario's process ended with status {status} and no result"}
        outcome["wall_time_s"] = round(time.perf_counter() - start, 2)
        with open(results_file, "a") as handle:
            handle.write(json.dumps({"node": node, **outcome}) + "\n")


def run_configuration(scenarios: list[dict], config: dict, workdir: Path, timeout_s: float,
                      progress_label: str = "", stop_at: float = float("inf")) -> list[dict]:
    """Every scenario on one configuration: one server process, one forked child per scenario."""
    results_file = workdir / "results.jsonl"
    results_file.unlink(missing_ok=True)
    nodes = [f"scenarios/{entry['module']}.py::{entry['scenario']}" for entry in scenarios]
    environment = dict(os.environ, SCENARIO_CONFIGURATION=json.dumps(config), OMP_NUM_THREADS="1",
                       OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg", PYNEST_QUIET="1")
    server = subprocess.Popen([sys.executable, __file__, "--serve", json.dumps(config), str(workdir),
                               str(timeout_s), str(results_file), str(stop_at)] + nodes, env=environment, cwd=workdir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reported = 0
    while True:
        done = server.poll() is not None
        lines = results_file.read_text().splitlines() if results_file.exists() else []
        for line in lines[reported:]:
            item = json.loads(line)
            print(f"[{progress_label} {reported + 1}/{len(nodes)}] {item['node']}: {item['outcome']} "
                  f"({item['wall_time_s']:.0f} s)", flush=True)
            reported += 1
        if done:
            break
        time.sleep(1.0)
    by_node = {json.loads(line)["node"]: json.loads(line) for line in lines}
    entries = []
    for entry, node in zip(scenarios, nodes):
        outcome = by_node.get(node, {"outcome": "failed", "exception_classes": ["NoResult"],
                                     "message": f"the configuration's server ended ({server.returncode}) "
                                                "before this scenario ran"})
        outcome.pop("node", None)
        outcome["classification"] = classify(outcome)
        entries.append({**entry, **outcome})
    return entries


def regressions(per_configuration: dict, configs: dict) -> dict:
    """Per cortexsim configuration: scenarios that pass on its PyNN reference and not on it."""
    found = {}
    for name, entries in per_configuration.items():
        reference = configs.get(name, {}).get("reference")
        if reference is None or reference not in per_configuration:
            continue
        reference_outcome = {(e["module"], e["scenario"]): e["classification"] for e in per_configuration[reference]}
        accepted = ACCEPTED_NON_PASSES.get(name, ())
        found[name] = [
            {"module": e["module"], "scenario": e["scenario"], "classification": e["classification"],
             "message": e.get("message", "")}
            for e in entries
            if reference_outcome.get((e["module"], e["scenario"])) == "pass"
            and e["classification"] not in ("pass", "not_run") + accepted]
    return found


def stated_limit(message: str) -> str:
    """The limit a chip error names: ``"not supported on chip 'bss2': cell type: requested ..."`` -> ``cell type``."""
    _, _, rest = message.partition("': ")
    return rest.split(":")[0].strip() if rest else message[:60]


def summarise(per_configuration: dict, configs: dict) -> dict:
    counts = {name: {cls: sum(e["classification"] == cls for e in entries) for cls in OUTCOME_CLASSES}
              for name, entries in per_configuration.items()}
    complete = {name: all(e["classification"] != "not_run" for e in entries)
                for name, entries in per_configuration.items()}
    found = regressions(per_configuration, configs)
    chips = [name for name in per_configuration if configs.get(name, {}).get("module") == BACKENDS["brainscales"].module]
    imperfections = {name: [e["scenario"] for e in per_configuration[name] if e["classification"] == "numerical_failure"]
                     for name in chips}
    chip_limits = {}
    for name in chips:
        grouped: dict = {}
        for e in per_configuration[name]:
            if e["classification"] == "unsupported":
                grouped.setdefault(stated_limit(e.get("message", "")), []).append(e["scenario"])
        chip_limits[name] = grouped
    required = ("nest", "brian2")
    established = all(name in found and complete.get(name) and complete.get(configs[name]["reference"], False)
                      for name in required if name in configs)
    return {"n_scenarios": max((len(e) for e in per_configuration.values()), default=0),
            "counts": counts,
            "complete": complete,
            "regressions": {name: len(items) for name, items in found.items()},
            "zero_regressions_on_nest_and_brian2": (all(not found[n] for n in required) if established else None),
            "regression_list": found, "chip_imperfections": imperfections,
            "chip_limits_of_unsupported_scenarios": chip_limits}


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--serve":  # internal: the per-configuration server (see serve())
        serve(json.loads(argv[1]), argv[6:], Path(argv[2]), float(argv[3]), Path(argv[4]), float(argv[5]))
        return {}
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    all_configs = configurations()
    parser.add_argument("--configurations", nargs="*", default=list(all_configs), choices=list(all_configs))
    parser.add_argument("--scenarios", nargs="+", default=None, help="only these scenario function names")
    parser.add_argument("--timeout", type=float, default=600.0, help="per scenario and configuration (s)")
    parser.add_argument("--pynn-source", type=Path, default=None, help="an unpacked PyNN 0.13 sdist")
    parser.add_argument("--brian2-target", choices=("numpy", "cython"), default="numpy",
                        help="Brian2's code generation target in runtime mode (reference and backend alike); "
                             "numpy: no compiler run per scenario")
    parser.add_argument("--stop-at", default=None, metavar="HH:MM",
                        help="UTC time after which no further scenario starts (the rest is recorded as not_run)")
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="results files of other runs whose configurations are added to this one's")
    parser.add_argument("--update", action="store_true",
                        help="keep the other configurations' results of an existing results file")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    stop_at = float("inf")
    if args.stop_at:
        import datetime
        hour, minute = (int(part) for part in args.stop_at.split(":"))
        now = datetime.datetime.now(datetime.timezone.utc)
        stop_at = now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()

    if args.pynn_source is not None:
        pynn_source, sdist = args.pynn_source, {"archive": str(args.pynn_source), "source": "given folder"}
    else:
        pynn_source, sdist = fetch_pynn_source()
    previous = read_json(args.out) if args.update and args.out.exists() else {}
    per_configuration = dict(previous.get("scenarios", {})) if args.update else {}
    timings = dict(previous.get("wall_time_s", {})) if args.update else {}
    for other_file in args.merge:  # configurations run in another invocation (e.g. at the same time)
        other = read_json(other_file)
        per_configuration.update(other["scenarios"])
        timings.update(other.get("wall_time_s", {}))
        previous.setdefault("configurations", {}).update(other.get("configurations", {}))
    with tempfile.TemporaryDirectory(prefix="pynn_scenarios_") as temporary:
        workdir = Path(temporary)
        scenarios = list_scenarios(prepare(pynn_source, workdir, args.brian2_target))
        if args.scenarios:
            scenarios = [s for s in scenarios if s["scenario"] in args.scenarios]
        for name in args.configurations:
            start = time.perf_counter()
            entries = run_configuration(scenarios, all_configs[name], workdir, args.timeout, name, stop_at)
            if args.scenarios and args.update and name in per_configuration:
                # a re-run of some scenarios (e.g. with a longer timeout): replace only those, keep the
                # first outcome and timeout of each on record
                rerun = {(e["module"], e["scenario"]): e for e in entries}
                merged = []
                for old in per_configuration[name]:
                    new = rerun.get((old["module"], old["scenario"]))
                    if new is None:
                        merged.append(old)
                        continue
                    merged.append({**new, "rerun_timeout_s": args.timeout,
                                   "first_run": {k: old.get(k) for k in ("classification", "wall_time_s", "message")}})
                entries = merged
            per_configuration[name] = entries
            elapsed = round(time.perf_counter() - start, 1)
            timings[name] = round(timings.get(name, 0.0) + elapsed, 1) if args.scenarios and args.update else elapsed
            partial = {"scenarios": per_configuration, "wall_time_s": timings}
            write_json_atomic(args.out.with_suffix(".partial.json"), partial)  # progress survives a crash
    order = list(all_configs) + [n for n in per_configuration if n not in all_configs]
    per_configuration = {n: per_configuration[n] for n in order if n in per_configuration}
    summary = summarise(per_configuration, {**all_configs, **previous.get("configurations", {})})
    results = {
        "benchmark": "pynn_scenarios",
        "description": "PyNN 0.13 system scenario tests (test/system/scenarios of the PyPI sdist), one process "
                       "per scenario and configuration, on PyNN's own nest/brian2 modules and every cortexsim backend",
        "summary": summary,
        "configurations": {**previous.get("configurations", {}), **{n: all_configs[n] for n in args.configurations}},
        "outcome_classes": {"pass": "passed", "unsupported": f"refused with one of {UNSUPPORTED_ERRORS}",
                            "numerical_failure": "an assertion on the scenario's numbers failed",
                            "crash": "any other exception", "hang": "no result within the timeout",
                            "skipped": "the scenario skipped itself"},
        "accepted_non_passes": ACCEPTED_NON_PASSES,
        "timeout_s": args.timeout,
        "brian2_codegen_target": args.brian2_target,
        "pynn_sdist": sdist,
        "wall_time_s": timings,
        "scenarios": per_configuration,
        "versions": library_versions(),
        "machine": {**machine_info(), "load_average": os.getloadavg()},
    }
    write_json_atomic(args.out, results)
    args.out.with_suffix(".partial.json").unlink(missing_ok=True)
    print(json.dumps({k: summary[k] for k in ("counts", "regressions")}, indent=1))
    return results


if __name__ == "__main__":
    main()
