"""PyNN 0.13's own system scenario tests against the emulated-chip backend.

Runs every scenario function of ``test/system/scenarios`` from the PyNN 0.13.0 source distribution
(fetched into a temporary directory with ``pip download``; nothing of PyNN is copied into this
repository) once per configuration, each in its own pytest process:

``nest``          ``pyNN.nest`` itself (baseline: what passes on the engine underneath)
``bss2_ideal``    ``cortexsim.backends.brainscales``, chip bss2, fixed-pattern noise and weight
                  quantisation off (the chip's limits only)
``bss1_ideal``    the same on bss1
``bss2``          bss2 with the defaults (noise on, weights quantised)
``bss1``          bss1 with the defaults

The scenarios' ``fixtures.py`` is replaced in the temporary copy by one that hands each scenario the
configured backend; ``sim.setup(...)`` calls are passed through with the configuration's chip
options added. Each outcome is classified: ``passed``; ``not_supported`` (failed with the backend's
:class:`ChipConstraintError`, i.e. "not supported on this chip"); ``chip_imperfection`` (failed with
noise and quantisation on but passed on the ideal chip: the script fits, its numbers differ);
``failed`` (anything else); or ``skipped``. Results go to ``benchmarks/results/pynn_scenarios_brainscales.json``.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pynn_scenarios_brainscales.py [--pynn-source DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "pynn_scenarios_brainscales.json"

CONFIGURATIONS = {
    "nest": {"module": "pyNN.nest", "setup": {}},
    "bss2_ideal": {"module": "cortexsim.backends.brainscales",
                   "setup": {"chip": "bss2", "fixed_pattern_noise": False, "quantize_weights": False}},
    "bss1_ideal": {"module": "cortexsim.backends.brainscales",
                   "setup": {"chip": "bss1", "fixed_pattern_noise": False, "quantize_weights": False}},
    "bss2": {"module": "cortexsim.backends.brainscales", "setup": {"chip": "bss2"}},
    "bss1": {"module": "cortexsim.backends.brainscales", "setup": {"chip": "bss1"}},
}

# Written into the temporary copy of the scenarios in place of PyNN's fixtures.py.
FIXTURES = '''
import importlib, json, os
import pytest

_CONFIG = json.loads(os.environ["SCENARIO_BACKEND"])


class ConfiguredSimulator:
    """The backend module, with the configuration's options added to every setup() call."""

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
        function.pynn_simulators = list(sim_names)
        return pytest.mark.parametrize("sim", [pytest.param(ConfiguredSimulator(_CONFIG), id="backend")])(function)
    return decorate
'''

# Written into the temporary copy: records every test's outcome and exception class chain.
CONFTEST = '''
import json, os
import pytest

_OUTCOMES = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    name = item.nodeid.split("::")[-1].replace("[backend]", "")
    entry = _OUTCOMES.setdefault(item.nodeid, {"module": item.module.__name__.split(".")[-1],
                                               "scenario": name, "outcome": "passed",
                                               "pynn_simulators": getattr(item.function, "pynn_simulators", None)})
    if report.when == "call" or report.failed or report.skipped:
        if report.skipped:
            entry["outcome"] = "skipped"
            entry["message"] = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        elif report.failed:
            entry["outcome"] = "failed"
            if call.excinfo is not None:
                entry["exception_classes"] = [cls.__name__ for cls in call.excinfo.type.__mro__]
                entry["message"] = str(call.excinfo.value)[:400]


def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["SCENARIO_OUTCOMES"], "w") as handle:
        json.dump(list(_OUTCOMES.values()), handle, indent=1)
'''


def fetch_pynn_source(target: Path) -> Path:
    """Download and unpack the PyNN 0.13.0 sdist into ``target`` (package registry: PyPI)."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "pynn==0.13.0", "-d", str(target)], check=True, capture_output=True)
    archive = next(target.glob("pynn-0.13.0.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target / "pynn-0.13.0"


def prepare_scenarios(pynn_source: Path, workdir: Path) -> Path:
    """Copy the scenarios into ``workdir`` and put this benchmark's fixtures and conftest beside them."""
    source = pynn_source / "test" / "system" / "scenarios"
    if not source.is_dir():
        raise FileNotFoundError(f"no scenarios directory at {source}")
    destination = workdir / "scenarios"
    shutil.copytree(source, destination)
    (destination / "fixtures.py").write_text(FIXTURES)
    (workdir / "conftest.py").write_text(CONFTEST)
    return destination


def classify(entry: dict) -> str:
    if entry["outcome"] == "failed" and "ChipConstraintError" in entry.get("exception_classes", []):
        return "not_supported"
    return entry["outcome"]


def run_configuration(name: str, workdir: Path, timeout_s: float) -> tuple[list[dict], float]:
    outcomes_file = workdir / f"outcomes_{name}.json"
    environment = dict(os.environ, SCENARIO_BACKEND=json.dumps(CONFIGURATIONS[name]),
                       SCENARIO_OUTCOMES=str(outcomes_file), OMP_NUM_THREADS="1",
                       OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "scenarios", "-W", "ignore"], cwd=workdir, env=environment,
                   capture_output=True, timeout=timeout_s)
    elapsed = time.perf_counter() - start
    entries = json.loads(outcomes_file.read_text())
    for entry in entries:
        entry["classification"] = classify(entry)
    return entries, elapsed


IDEAL_COUNTERPART = {"bss2": "bss2_ideal", "bss1": "bss1_ideal"}


def mark_imperfection_failures(per_configuration: dict) -> None:
    """Explain failures on a noisy, quantising chip by the same scenario on the ideal chip.

    Passed on the ideal chip: ``chip_imperfection`` (the script fits the chip, its numbers differ
    because of noise/quantisation). Not supported on the ideal chip: ``not_supported``, with a note
    (the scenario failed on a numerical assertion before reaching the feature the chip rejects).
    """
    for name, ideal in IDEAL_COUNTERPART.items():
        if name not in per_configuration or ideal not in per_configuration:
            continue
        on_ideal = {e["scenario"]: e for e in per_configuration[ideal]}
        for entry in per_configuration[name]:
            reference = on_ideal.get(entry["scenario"])
            if entry["classification"] != "failed" or reference is None:
                continue
            if reference["classification"] == "passed":
                entry["classification"] = "chip_imperfection"
            elif reference["classification"] == "not_supported":
                entry["classification"] = "not_supported"
                entry["note"] = ("failed on a numerical assertion (noise/quantisation) before reaching the "
                                 f"feature the ideal chip rejects: {reference.get('message', '')}")


def summarise(per_configuration: dict) -> dict:
    summary = {}
    for name, entries in per_configuration.items():
        counts = {}
        for entry in entries:
            counts[entry["classification"]] = counts.get(entry["classification"], 0) + 1
        summary[name] = counts
    return summary


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pynn-source", type=Path, default=None,
                        help="unpacked PyNN 0.13.0 sdist (downloaded into a temporary directory if omitted)")
    parser.add_argument("--configurations", nargs="+", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS))
    parser.add_argument("--timeout", type=float, default=1800.0, help="per configuration (s)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="pynn_scenarios_") as temporary:
        temporary = Path(temporary)
        pynn_source = args.pynn_source or fetch_pynn_source(temporary / "sdist")
        workdir = temporary / "run"
        workdir.mkdir()
        prepare_scenarios(pynn_source, workdir)
        per_configuration, timings = {}, {}
        for name in args.configurations:
            print(f"running scenarios on {name} ...", flush=True)
            per_configuration[name], timings[name] = run_configuration(name, workdir, args.timeout)
            print(f"  {summarise({name: per_configuration[name]})[name]} in {timings[name]:.0f} s", flush=True)

    mark_imperfection_failures(per_configuration)
    import nest
    import numpy
    import pyNN
    import pytest
    results = {
        "benchmark": "pynn_scenarios_brainscales",
        "description": "PyNN 0.13.0 system scenario tests (test/system/scenarios) run against "
                       "cortexsim.backends.brainscales; pyNN.nest as baseline",
        "configurations": CONFIGURATIONS,
        "classification": {"passed": "test passed",
                           "not_supported": "failed with the backend's ChipConstraintError ('not supported on this chip')",
                           "failed": "failed with any other error",
                           "chip_imperfection": "failed on the chip with noise and quantisation on, "
                                                "passed on the ideal chip (numbers differ, script fits)",
                           "skipped": "skipped by the scenario itself"},
        "summary": summarise(per_configuration),
        "wall_time_s": timings,
        "scenarios": per_configuration,
        "versions": {"pyNN": pyNN.__version__, "nest": nest.__version__, "numpy": numpy.__version__,
                     "pytest": pytest.__version__, "python": platform.python_version()},
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results["summary"], indent=1))
    return results


if __name__ == "__main__":
    main()
