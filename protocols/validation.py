"""Cross-simulator validation: run one PyNN model on several backends and compare its statistics.

A model is a Python file (or importable module) defining ``build(sim)``, which creates a network
with the PyNN module ``sim`` and records at least one population (``population.record("spikes")``,
optionally ``"v"``). ``setup`` has been called when ``build`` starts; a model may call
``sim.setup(...)`` itself, as ordinary PyNN scripts do: every ``setup`` call then gets the run's
seed and ``--dt`` (a different model ``timestep`` is overridden with a warning naming both
values), and ``sim.NumpyRNG()`` / ``sim.RandomDistribution(...)`` created without a seed get one
derived from the run's seed (:class:`~cortexsim.protocols.validation_runs.SeededSimulator`); numpy's
global RNG is seeded too. ``build`` may take a keyword ``rng`` (a ``sim.NumpyRNG`` seeded from the
run's seed) or ``seed`` (the run's seed, an int). It may return its populations (a Population, a
list, or a dict name -> Population); otherwise every recorded population is used. Optional module
attributes: ``DURATION_MS`` (simulated time per run), ``TRANSIENT_MS`` (initial time left out of
the statistics) and ``PARAMETERS`` (recorded in the report).

Each backend runs the model R times with seeds ``seed, seed + 1, ..., seed + R - 1``; the per-run
statistics (:mod:`cortexsim.analysis.compare`) of every backend pair are tested against the run-to-run
spread with a multiple-comparison correction, and ``report.html`` / ``report.json`` (with the
per-repeat ``summaries``) are written. With fewer than 5 repeats the report states the smallest
difference the run could detect, statistic by statistic.

    cortexsim validate examples/validate_balanced_ei.py --backends nest,brian2 --repeats 5 --out out/validate

Exit codes of the command: 0 every statistic agrees; 1 at least one statistic differs; 2 bad input
(unknown or uninstalled backend, unusable model: refused before anything runs); 3 nothing was
compared (no recorded population spiked on any backend) or the comparison is incomplete (a backend
failed); 4 a backend's repeats gave identical statistics (the seeds do not reach its simulator).
"""

from __future__ import annotations

import logging
import importlib
import importlib.util
import inspect
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from cortexsim.config import config_to_dict
from cortexsim.results import library_versions, machine_info, output_dir, write_results

from ..analysis.compare import CORRECTIONS, StatisticsSettings, compare_groups, population_statistics
from ..backends.registry import installed_backends, known_backends, load_backend
from .validation_runs import BackendRun, ModelError, SeededSimulator, collect_run, identical_repeats

__all__ = ["Alteration", "ValidationConfig", "ValidationResult", "ModelError", "load_model", "run_backend",
           "run", "validate", "report_lines", "EXIT_AGREE", "EXIT_DIFFER", "EXIT_INCOMPLETE",
           "EXIT_NOTHING_TO_COMPARE", "EXIT_UNSEEDED", "RECOMMENDED_REPEATS"]

logger = logging.getLogger(__name__)

EXIT_AGREE, EXIT_DIFFER, EXIT_INCOMPLETE, EXIT_UNSEEDED = 0, 1, 3, 4
#: Nothing was compared: no recorded population spiked on any backend (same code as incomplete).
EXIT_NOTHING_TO_COMPARE = EXIT_INCOMPLETE
DEFAULT_DURATION_MS = 1000.0
#: Below this many repeats the report states the smallest difference the run could detect.
RECOMMENDED_REPEATS = 5


@dataclass(frozen=True)
class Alteration:
    """Test hook: multiply a cell parameter by ``factor`` on one backend only (after ``build``).

    Attributes
    ----------
    backend : str
        Backend whose model is altered.
    parameter : str
        PyNN cell parameter, e.g. "tau_m" (changed in every population whose cell type has it).
    factor : float
        Multiplier (> 0).
    """

    backend: str
    parameter: str
    factor: float

    def __post_init__(self):
        if not np.isfinite(self.factor) or self.factor <= 0:
            raise ValueError(f"Alteration factor must be a finite number > 0, got {self.factor!r}")

    @classmethod
    def parse(cls, text: str) -> "Alteration":
        """From ``"backend:parameter=factor"``, e.g. ``"brian2:tau_m=1.2"``."""
        try:
            backend, rest = text.split(":", 1)
            parameter, factor = rest.split("=", 1)
            return cls(backend.strip(), parameter.strip(), float(factor))
        except ValueError:
            raise ValueError(f"an alteration is written backend:parameter=factor (e.g. brian2:tau_m=1.2), "
                             f"got {text!r}") from None


@dataclass(frozen=True)
class ValidationConfig:
    """Settings of a cross-simulator validation.

    Attributes
    ----------
    seed : int
        Seed of the first repeat; repeat r uses seed + r on every backend (required).
    backends : tuple of str
        Backend names (>= 2 entries, no duplicates), each registered (see ``known_backends()``);
        :func:`validate` also refuses backends that are not installed, before anything runs.
    repeats : int
        Runs per backend R (>= 2): the run-to-run spread comes from them.
    duration_ms : float or None
        Simulated time per run (ms); None: the model's DURATION_MS, else 1000 ms.
    transient_ms : float or None
        Initial time left out of the statistics (ms); None: the model's TRANSIENT_MS, else 0.
    dt_ms : float
        Integration step (ms), > 0.
    alpha : float
        Family-wise error rate (Holm) or false discovery rate (Benjamini-Hochberg), in (0, 1).
    correction : {"holm", "benjamini-hochberg"}
        Multiple-comparison correction.
    statistics : StatisticsSettings
        Windows and bins of the statistics (ms).
    alterations : tuple of Alteration
        Test hook: parameter changes applied on one backend only (also given as dicts or as text
        ``BACKEND:PARAM=FACTOR``).
    model : str, optional
        The model: a Python file or an importable module defining ``build(sim)`` (what :func:`run`
        validates; :func:`validate` takes it as an argument instead).
    """

    seed: int
    backends: tuple = ("nest", "brian2")
    repeats: int = 5
    duration_ms: float | None = None
    transient_ms: float | None = None
    dt_ms: float = 0.1
    alpha: float = 0.05
    correction: str = "holm"
    statistics: StatisticsSettings = field(default_factory=StatisticsSettings)
    alterations: tuple = ()
    model: str | None = None

    def __post_init__(self):
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        backends = tuple(self.backends)
        object.__setattr__(self, "backends", backends)
        if len(backends) < 2 or len(set(backends)) != len(backends) or not all(isinstance(b, str) for b in backends):
            raise ValueError(f"backends must name >= 2 different backends, got {backends!r}")
        unknown = [b for b in backends if b not in known_backends()]
        if unknown:
            raise ValueError(f"unknown backend(s) {', '.join(map(repr, unknown))} in backends; known backends: "
                             f"{', '.join(known_backends())}")
        if int(self.repeats) < 2:
            raise ValueError(f"repeats must be >= 2 (the run-to-run spread needs them), got {self.repeats}")
        for name in ("duration_ms", "transient_ms"):
            value = getattr(self, name)
            if value is not None and (not np.isfinite(value) or value < 0 or (name == "duration_ms" and value == 0)):
                raise ValueError(f"{name} must be a finite number {'> 0' if name == 'duration_ms' else '>= 0'} "
                                 f"(ms) or None, got {value!r}")
        if not np.isfinite(self.dt_ms) or self.dt_ms <= 0:
            raise ValueError(f"dt_ms must be a finite number > 0 (ms), got {self.dt_ms!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")
        alterations = tuple(Alteration(**a) if isinstance(a, dict) else Alteration.parse(a) if isinstance(a, str)
                            else a for a in self.alterations)
        object.__setattr__(self, "alterations", alterations)
        for alteration in alterations:
            if not isinstance(alteration, Alteration):
                raise ValueError(f"alterations must hold Alteration objects, got {alteration!r}")
            if alteration.backend not in backends:
                raise ValueError(f"alteration on backend {alteration.backend!r}, which is not among {backends}")


def load_model(spec: str | Path | ModuleType) -> ModuleType:
    """The model module from a ``.py`` file path, a module name, or a module; checked for ``build(sim)``."""
    if isinstance(spec, ModuleType):
        module = spec
    else:
        text = str(spec)
        if text.endswith(".py") or Path(text).is_file():
            path = Path(text)
            if not path.is_file():
                raise ValueError(f"model file {path} does not exist")
            name = f"cortexsim_user_model_{abs(hash(str(path.resolve())))}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            try:
                module_spec.loader.exec_module(module)
            except Exception as exc:
                raise ValueError(f"model file {path} could not be imported: {type(exc).__name__}: {exc}") from exc
        else:
            try:
                module = importlib.import_module(text)
            except ImportError as exc:
                raise ValueError(f"model {text!r} is neither a .py file nor an importable module ({exc})") from None
    build = getattr(module, "build", None)
    if not callable(build):
        raise ValueError(f"model {getattr(module, '__file__', module.__name__)} does not define a function "
                         "build(sim) that creates the network with the PyNN module sim and records populations")
    return module


def _model_name(model: ModuleType) -> str:
    file = getattr(model, "__file__", None)
    return Path(file).stem if file else model.__name__


def _build_kwargs(build, sim, seed: int) -> dict:
    parameters = inspect.signature(build).parameters
    kwargs = {}
    if "rng" in parameters:
        kwargs["rng"] = sim.NumpyRNG(seed=seed)
    if "seed" in parameters:
        kwargs["seed"] = seed
    return kwargs


def run_backend(model: ModuleType, backend: str, seeds, duration_ms: float, dt_ms: float,
                alterations=(), progress: bool = False) -> BackendRun:
    """Run ``model`` on ``backend`` once per seed; failures are recorded in the result, not raised.

    Each run calls ``setup(timestep=dt_ms, seed=seed)`` and then ``model.build`` with a
    :class:`SeededSimulator` (so a ``setup`` call of the model gets the same seed and step), with
    numpy's global random generator seeded from the run's seed (restored afterwards).
    A :class:`ModelError` (the model records nothing, returns something unusable) is raised: it is a
    fault of the model, not of the backend.
    """
    start = time.perf_counter()
    if backend not in known_backends():
        return BackendRun(backend, "unregistered", f"backend {backend!r} is not registered; known backends: "
                          f"{', '.join(known_backends())}")
    try:
        sim = load_backend(backend)
    except Exception as exc:  # a backend that cannot even be imported is "missing"
        return BackendRun(backend, "missing", f"{type(exc).__name__}: {exc}")
    run = BackendRun(backend, "ok")
    for seed in seeds:
        if progress:
            logger.info(f"validate: {backend} seed {seed}")
        seeded = SeededSimulator(sim, int(seed), dt_ms)
        numpy_state = np.random.get_state()
        np.random.seed(int(np.random.SeedSequence([int(seed), 2**31]).generate_state(1)[0]))
        try:
            seeded.setup()
            try:
                returned = model.build(seeded, **_build_kwargs(model.build, seeded, int(seed)))
                run.runs.append(collect_run(sim, returned, duration_ms, alterations, _model_name(model)))
            finally:
                try:
                    sim.end()
                except Exception:  # a backend broken by the failure above must not hide that failure
                    pass
        except ModelError:
            raise
        except Exception as exc:
            run.status = "failed"
            run.message = f"seed {seed}: {type(exc).__name__}: {exc}"
            run.traceback = traceback.format_exc()
            run.runs = []
            break
        finally:
            np.random.set_state(numpy_state)
            run.notes.extend(n for n in seeded.notes if n not in run.notes)
    run.wall_time_s = time.perf_counter() - start
    return run


def _silent_populations(summaries: dict) -> list[str]:
    """Populations recording spikes that did not spike in any repeat on any backend."""
    populations = {pop for runs in summaries.values() for one in runs for pop in one}
    silent = []
    for pop in sorted(populations):
        rates = [one[pop].get("rate_hz") for runs in summaries.values() for one in runs if pop in one]
        rates = [r for r in rates if r is not None and not (isinstance(r, float) and np.isnan(r))]
        if rates and all(r == 0 for r in rates):
            silent.append(pop)
    return silent


def _detectable_differences(comparisons, repeats: int) -> dict:
    """The smallest difference each test could flag (its tolerance), and a statement if repeats are few."""
    rows = [{"population": c.population, "statistic": c.statistic, "backends": [c.group_a, c.group_b],
             "smallest_detectable": c.tolerance,
             "relative_to_mean": c.tolerance / abs(c.mean_a) if c.mean_a else float("nan")}
            for c in comparisons if c.verdict in ("agree", "differ") and np.isfinite(c.tolerance)]
    statement = ""
    if repeats < RECOMMENDED_REPEATS and rows:
        from ..analysis.compare import STATISTICS

        parts = [f"{r['population']} {r['statistic']} {r['smallest_detectable']:.3g} "
                 f"{STATISTICS.get(r['statistic'], ('', ''))[1]}"
                 + (f" ({100 * r['relative_to_mean']:.0f} %)" if np.isfinite(r["relative_to_mean"]) else "")
                 for r in rows]
        statement = (f"With {repeats} repeats per backend this run could only detect differences larger than: "
                     + "; ".join(parts) + f". Smaller differences may exist undetected; use --repeats "
                     f"{RECOMMENDED_REPEATS} or more.")
    return {"repeats": repeats, "statement": statement, "per_statistic": rows}


@dataclass
class ValidationResult:
    """Outcome of a validation: backend statuses, per-run statistics, comparisons, verdict.

    ``verdict`` says in words what ``exit_code`` says (see the module docstring).
    """

    config: ValidationConfig
    model: str
    model_parameters: object
    duration_ms: float
    transient_ms: float
    backends: dict
    summaries: dict
    comparisons: list
    exit_code: int
    verdict: str = ""
    silent_populations: list = field(default_factory=list)
    detectable: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)

    @property
    def n_differ(self) -> int:
        return sum(c.verdict == "differ" for c in self.comparisons)

    def summary(self) -> dict:
        """Headline figures: the verdict, statistics compared and found different, backend statuses."""
        data = self.to_dict()
        return {"verdict": data["verdict"], "n_compared": data["n_compared"], "n_differ": self.n_differ,
                **{f"{name}_status": run.status for name, run in self.backends.items()}}

    def to_dict(self) -> dict:
        """Everything, as ``results.json`` holds it."""
        return {"model": self.model, "model_parameters": self.model_parameters, "config": config_to_dict(self.config),
                "duration_ms": self.duration_ms, "transient_ms": self.transient_ms,
                "verdict": self.verdict, "exit_code": self.exit_code, "n_differ": self.n_differ,
                "n_compared": sum(c.verdict in ("agree", "differ") for c in self.comparisons),
                "silent_populations": self.silent_populations, "detectable_difference": self.detectable,
                "backends": {name: run.to_dict() for name, run in self.backends.items()},
                "summaries": self.summaries, "comparisons": [vars(c) for c in self.comparisons],
                "files": self.files, "versions": self.versions, "machine": self.machine}


def run(config: ValidationConfig, out_dir=None, progress: bool = False) -> ValidationResult:
    """The protocol behind ``cortexsim validate MODEL``: :func:`validate` of ``config.model``.

    The command's exit code is the result's ``exit_code`` (0 agree, 1 differ, 3 incomplete or nothing
    to compare, 4 identical repeats); bad input exits with 2 before anything runs.
    """
    if config.model is None:
        raise ValueError("model must name a Python file or module defining build(sim)")
    return validate(config.model, config, out_dir=out_dir, progress=progress)


def _check_backends_installed(backends) -> None:
    """Refuse, before anything runs, backends whose packages are not installed."""
    missing = [b for b in backends if b not in installed_backends()]
    if missing:
        raise ValueError(f"backend(s) {', '.join(map(repr, missing))} not installed; installed backends: "
                         f"{', '.join(installed_backends()) or 'none'}")


def _verdict(runs: dict, summaries: dict, comparisons: list, silent: list) -> tuple[int, str]:
    unseeded = [name for name, run in runs.items() if run.status == "identical_repeats"]
    failed = [name for name, run in runs.items() if run.status not in ("ok", "identical_repeats")]
    compared = [c for c in comparisons if c.verdict in ("agree", "differ")]
    if unseeded:
        return EXIT_UNSEEDED, (f"error: the seeds do not reach the simulator on {', '.join(unseeded)} "
                               "(every repeat gave identical statistics)")
    if any(c.verdict == "differ" for c in compared):
        return EXIT_DIFFER, "some statistics differ"
    if failed:
        return EXIT_INCOMPLETE, f"incomplete: backend(s) {', '.join(failed)} failed or missing"
    if not compared:
        why = (f"no recorded population spiked on any backend ({', '.join(silent)})" if silent
               else "no statistic could be tested")
        return EXIT_NOTHING_TO_COMPARE, f"nothing to compare: {why}"
    return EXIT_AGREE, "all statistics agree"


def validate(model, config: ValidationConfig, out_dir=None, progress: bool = False) -> ValidationResult:
    """Run ``model`` on every backend of ``config`` R times, compare, and (if ``out_dir``) write the report.

    Raises
    ------
    ValueError
        Before anything runs: if a backend is not installed, the model cannot be loaded, defines no
        ``build(sim)``; or, on the first run, records nothing (ModelError).
    """
    _check_backends_installed(config.backends)
    model = load_model(model)
    duration = float(config.duration_ms if config.duration_ms is not None
                     else getattr(model, "DURATION_MS", DEFAULT_DURATION_MS))
    transient = float(config.transient_ms if config.transient_ms is not None else getattr(model, "TRANSIENT_MS", 0.0))
    if not duration > transient:
        raise ValueError(f"duration_ms ({duration}) must exceed transient_ms ({transient})")
    seeds = [config.seed + r for r in range(int(config.repeats))]
    runs, summaries, details = {}, {}, {}
    for backend in config.backends:
        alterations = [a for a in config.alterations if a.backend == backend]
        runs[backend] = run_backend(model, backend, seeds, duration, config.dt_ms, alterations, progress)
        if runs[backend].status != "ok":
            if progress:
                logger.info(f"validate: {backend}: {runs[backend].status}: {runs[backend].message}")
            continue
        details[backend] = [{pop: population_statistics(rec.spiketrains, transient, duration, rec.membrane_potential,
                                                        config.statistics)
                             for pop, rec in one_run.items()} for one_run in runs[backend].runs]
        summaries[backend] = [{pop: stats.summary for pop, stats in one.items()} for one in details[backend]]
    silent = _silent_populations(summaries)  # nothing happened there: not a sign of missing seeds
    for backend, per_repeat in summaries.items():
        active = [{p: v for p, v in one.items() if p not in silent} for one in per_repeat]
        if any(active) and identical_repeats(active):
            runs[backend].status = "identical_repeats"
            runs[backend].message = (f"all {len(seeds)} repeats gave identical statistics: the seeds do not reach "
                                     "the simulator (does the model seed its own random numbers, or build with "
                                     "a PyNN module other than the sim it is given?)")
    comparable = {b: s for b, s in summaries.items() if runs[b].status == "ok"}
    for_comparison = {b: [{p: v for p, v in one.items() if p not in silent} for one in s]
                      for b, s in comparable.items()}
    comparisons = (compare_groups(for_comparison, config.alpha, config.correction)
                   if len(for_comparison) >= 2 else [])
    exit_code, verdict = _verdict(runs, summaries, comparisons, silent)
    result = ValidationResult(config, _model_name(model), getattr(model, "PARAMETERS", None), duration, transient,
                              runs, summaries, comparisons, exit_code, verdict, silent,
                              _detectable_differences(comparisons, int(config.repeats)),
                              versions=library_versions(), machine=machine_info())
    if out_dir is not None:
        from ..analysis.report import write_report

        out = output_dir(out_dir)
        report = result.to_dict()
        report["files"] = {"html": "report.html", "json": "report.json"}
        report["per_neuron"] = {b: [{p: {k: v for k, v in s.per_neuron.items()} for p, s in one.items()}
                                    for one in d] for b, d in details.items()}
        report["cch"] = {b: [{p: {"lags_ms": s.cch_lags_ms, "mean": s.cch_mean} for p, s in one.items()}
                             for one in d] for b, d in details.items()}
        rasters = {b: {p: rec.spiketrains for p, rec in runs[b].runs[0].items()} for b in summaries}
        write_report(out, report, rasters, (transient, duration))
        result.files = {"html": str(out / "report.html"), "json": str(out / "report.json")}
        write_results(out, result.to_dict(), config)
    return result


def report_lines(result: ValidationResult) -> list[str]:
    """What ``cortexsim validate`` prints: each backend's status, each comparison, the verdict.

    Examples
    --------
    >>> for line in report_lines(result):  # doctest: +SKIP
    ...     print(line)
    """
    lines = []
    for name, backend_run in result.backends.items():
        lines.append(f"{name}: {backend_run.status}" + (f" ({backend_run.message})" if backend_run.message else ""))
        lines += [f"{name}: note: {note}" for note in backend_run.notes]
    lines += [f"{c.population:>14s} {c.statistic:>12s} {c.group_a} vs {c.group_b}: {c.verdict:8s} "
              f"{c.mean_a:10.4g} vs {c.mean_b:10.4g}  g = {c.hedges_g:7.2f}  p_adj = {c.p_adjusted:.3g}"
              for c in result.comparisons]
    if result.silent_populations:
        lines.append(f"not compared (no spikes on any backend): {', '.join(result.silent_populations)}")
    if result.detectable.get("statement"):
        lines.append(result.detectable["statement"])
    lines.append(f"{result.verdict}; report: {result.files.get('html', '-')}")
    return lines
