"""The ``cortexsim`` command: every subcommand is one entry of :data:`COMMANDS`.

    cortexsim calibrate --backend nest --seed 1 --out out/calibration
    cortexsim sample --backend nest --seed 1 --neurons 5 --duration 10000 --out out/sample
    cortexsim sample --config out/sample/config.json --out out/again     # re-run a written config
    cortexsim train-cd --task digits --iterations 60 --out out/digits
    cortexsim backends          # registered backends, installed or not, with capabilities
    cortexsim --version

A subcommand runs a protocol: a frozen config dataclass (its fields documented with units) and a
function ``run(config, out_dir, progress) -> Result`` in a module of :mod:`cortexsim.protocols`. The
command table maps options to config fields; everything else is the same for every subcommand:

* ``--seed`` (default 1) and ``--out`` (default ``out/<command>``) always; ``--config FILE`` re-runs a
  written ``config.json`` (options given as well override it); ``-v``/``-q`` more or fewer messages;
* ``--backend`` (and the chip options), ``--dt`` and ``--parameter-set`` wherever the config has the
  fields ``backend``, ``dt_ms`` and ``neuron``/``noise``; ``--resume DIR`` where the protocol resumes;
* the config is built and checked (:data:`CHECKS`, then the config's own checks) before any simulation
  runs; bad input exits with code 2 and a message naming the parameter;
* the protocol writes ``results.json`` and ``config.json`` to ``--out``
  (:func:`cortexsim.results.write_results`); the headline figures (``Result.summary()``) are printed.

Adding a subcommand is one :class:`Command` entry plus a protocol module. Times are in ms. The CLI
is the top layer of the package: nothing imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging
import sys
import typing
from pathlib import Path
from typing import Callable

from . import __version__
from .commands import CHECKS, COMMANDS, Command, Option
from .config import config_from_dict, field_docs, read_config_file

__all__ = ["main", "build_parser", "build_config", "configure_logging", "COMMANDS"]

logger = logging.getLogger(__name__)

_UNSET = argparse.SUPPRESS


def _backend_help() -> str:
    from cortexsim.backends import known_backends

    return f"simulator backend, one of {', '.join(known_backends())}"


# --- options from config fields ------------------------------------------------------------------------

def _field_type(cls, name: str):
    """(base type, optional) of a config field from its type hint."""
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    origin = typing.get_origin(base) or base
    return origin, optional


def _scalar(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parser_for(cls, name: str) -> Callable[[str], object]:
    """Text -> value of the field (``none`` for an optional field, ``a,b`` for a tuple)."""
    kind, optional = _field_type(cls, name)

    def parse(text: str):
        if optional and text.lower() == "none":
            return None
        if kind is tuple:
            return tuple(_scalar(part.strip()) for part in text.split(",") if part.strip())
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
        if kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                                 f"got {text!r}") from None
        return text

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def _class_default(cls, name: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        return dataclasses.MISSING
    f = fields[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "required"


def _default_text(command: Command, name: str) -> str:
    """``default: ...`` of a field: per task (the task defaults of the protocol module, else the class's)."""
    effective = {}
    for task in command.tasks:
        module, cls = command.protocol(task)
        value = _class_default(cls, name)
        if value is dataclasses.MISSING:
            continue
        defaults = getattr(module, command.defaults, None) if command.defaults else None
        if defaults is not None and "task" in {f.name for f in dataclasses.fields(cls)}:
            if len(command.tasks) > 1:
                per_task = {task: defaults(task)}
            else:
                doc = field_docs(cls).get("task")
                per_task = {t: defaults(t) for t in (doc.choices if doc and doc.choices else ())}
            for value_task, values in per_task.items():
                effective[value_task] = values.get(name, value)
        else:
            effective[task] = value
    if not effective:
        return ""
    show = lambda v: ",".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731
    groups: dict[str, list[str]] = {}
    for task, value in effective.items():
        groups.setdefault(show(value), []).append(task)
    if len(groups) == 1:
        return f"default: {next(iter(groups))}"
    return "default: " + ", ".join(f"{value} ({'/'.join(tasks)})" for value, tasks in groups.items())


def _add_option(parser, group, option: Option, classes: dict, command: Command) -> None:
    owners = {task: cls for task, cls in classes.items() if option.field in {f.name for f in dataclasses.fields(cls)}}
    if not owners:
        raise RuntimeError(f"command {command.name}: option {option.flag} sets {option.field!r}, which no config has")
    cls = next(iter(owners.values()))
    docs = [field_docs(owner).get(option.field) for owner in dict.fromkeys(owners.values())]
    doc = docs[0]
    if all(d is not None and d.choices for d in docs):
        doc = dataclasses.replace(doc, choices=tuple(dict.fromkeys(c for d in docs for c in d.choices)))
    text = option.help or (doc.description if doc else option.field)
    where = "" if len(owners) == len(classes) else f" [--task {'/'.join(owners)}]"
    kind, _ = _field_type(cls, option.field)
    kwargs = dict(dest=option.field, default=_UNSET)
    if option.negate:
        group.add_argument(option.flag, action="store_const", const=False, help=f"{text}{where}", **kwargs)
        return
    if kind is bool:
        group.add_argument(option.flag, action=argparse.BooleanOptionalAction,
                           help=f"{text} ({_default_text(command, option.field)}){where}", **kwargs)
        return
    if doc is not None and doc.choices:
        kwargs["choices"] = doc.choices
    if option.action == "append":
        kwargs.update(action="append", type=str)
    else:
        kwargs["type"] = _parser_for(cls, option.field)
    if option.metavar:
        kwargs["metavar"] = option.metavar
    elif "choices" not in kwargs and not option.positional:
        kwargs["metavar"] = option.flag.lstrip("-").upper().replace("-", "_")
    help_text = f"{text} ({_default_text(command, option.field)}){where}".replace("%", "%%")
    if option.positional:
        kwargs.pop("dest")
        group.add_argument(option.field, nargs="?", help=help_text, **kwargs)
    else:
        group.add_argument(option.flag, help=help_text, **kwargs)


def _add_protocol_arguments(parser: argparse.ArgumentParser, command: Command) -> None:
    classes = {task: command.protocol(task)[1] for task in command.tasks}
    fields = set().union(*({f.name for f in dataclasses.fields(cls)} for cls in classes.values()))
    run_parameters = set().union(*(inspect.signature(command.protocol(t)[0].run).parameters for t in command.tasks))
    common = parser.add_argument_group("every subcommand")
    common.add_argument("--seed", type=int, default=_UNSET, help="seed of the run (default: 1)")
    common.add_argument("--out", type=Path, default=Path("out") / command.name.replace("-", "_"),
                        help=f"output folder (default: out/{command.name.replace('-', '_')})")
    common.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="settings from a JSON/TOML file, e.g. a run's config.json (options given too "
                             "override it)")
    if "resume" in run_parameters:
        common.add_argument("--resume", type=Path, default=None, metavar="DIR",
                            help="continue the killed run whose checkpoint.json is in DIR (outputs go there; "
                                 "give the same settings)")
    if len(classes) > 1:
        common.add_argument("--task", choices=command.tasks, default=_UNSET,
                            help=f"what to run (default: {command.tasks[0]})")
    simulation = parser.add_argument_group("simulation")
    if "backend" in fields:
        simulation.add_argument("--backend", default=_UNSET,
                                help=f"{_backend_help()} ({_default_text(command, 'backend')})")
    if "dt_ms" in fields or "dt" in fields:
        simulation.add_argument("--dt", type=float, default=_UNSET, dest="dt_ms" if "dt_ms" in fields else "dt",
                                help=f"integration step in ms "
                                     f"({_default_text(command, 'dt_ms' if 'dt_ms' in fields else 'dt')})")
    if {"neuron", "noise"} <= fields:
        from .parameters import PARAMETER_SETS

        simulation.add_argument("--parameter-set", choices=tuple(PARAMETER_SETS), default=_UNSET,
                                help="neuron and noise parameter set of references §1 (default: default)")
    own = parser.add_argument_group(f"{command.name} options")
    for option in command.options:
        _add_option(parser, own, option, classes, command)
    if "backend" in fields:
        _add_chip_options(parser)


def _verbosity_parser() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="more messages (-v: debug messages of cortexsim)")
    group.add_argument("-q", "--quiet", action="count", default=0,
                       help="fewer messages (-q: warnings and errors only, no progress bars)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :data:`COMMANDS`."""
    verbosity = _verbosity_parser()
    parser = argparse.ArgumentParser(prog="cortexsim", description="Cortical-computing models on NEST, Brian2 "
                                     "or an emulated BrainScaleS chip: one subcommand per protocol.")
    parser.add_argument("--version", action="version", version=f"cortexsim {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help,
                                    parents=[verbosity])
        if command.handler is not None:
            if command.add_arguments is not None:
                command.add_arguments(sub)
        else:
            _add_protocol_arguments(sub, command)
        sub.set_defaults(command_entry=command)
    return parser


# --- from arguments to a config ------------------------------------------------------------------------

def _choose_task(command: Command, args, file_values: dict | None) -> str:
    task = getattr(args, "task", None) if len(command.tasks) > 1 else None
    if task is not None:
        return task
    if file_values is None or len(command.tasks) == 1:
        return command.tasks[0]
    for candidate in command.tasks:  # the task whose config has every key of the file
        names = {f.name for f in dataclasses.fields(command.protocol(candidate)[1])}
        if set(file_values) <= names:
            return candidate
    raise ValueError(f"{args.config} fits none of the tasks {command.tasks}; give --task")


def build_config(command: Command, args: argparse.Namespace):
    """The protocol module and the config the parsed ``args`` ask for, checked; nothing has run yet.

    Settings come from ``--config FILE`` (if given), then the options given on the command line, then
    the command's task defaults, then the config class's defaults. The config's own checks run when
    it is built (ValueError naming the parameter), then :data:`CHECKS` and the command's checks.
    """
    file_values = read_config_file(args.config) if args.config is not None else None
    task = _choose_task(command, args, file_values)
    module, cls = command.protocol(task)
    names = {f.name for f in dataclasses.fields(cls)}
    values = dict(file_values or {})
    given = {}
    for option in command.options:
        if option.field in vars(args):
            value = getattr(args, option.field)
            if option.field not in names:
                owners = [t for t in command.tasks if option.field in
                          {f.name for f in dataclasses.fields(command.protocol(t)[1])}]
                raise ValueError(f"{option.flag} applies to --task {'/'.join(owners)} only, not to --task {task}")
            given[option.field] = tuple(value) if option.action == "append" else value
    for name in ("backend", "dt_ms", "dt"):
        if name in vars(args) and name in names:
            given[name] = getattr(args, name)
    if "chip_seed" in names and getattr(args, "chip_seed", None) is not None:   # a config that owns its chip
        given["chip_seed"] = args.chip_seed
    if "seed" in vars(args) or "seed" not in values:
        given["seed"] = getattr(args, "seed", 1)
    if len(command.tasks) > 1 and "task" in names and ("task" in vars(args) or "task" not in values):
        given["task"] = task
    if "parameter_set" in vars(args):
        from .parameters import parameter_set

        given["neuron"], given["noise"] = parameter_set(args.parameter_set)
    values.update(given)
    defaults = getattr(module, command.defaults, None) if command.defaults is not None else None
    if defaults is not None and "task" in names:
        task_value = values.get("task")
        if task_value is not None:
            for key, value in defaults(task_value).items():
                if key not in values:
                    values[key] = value
    required = [f for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and f.name not in values]
    if required:
        flags = {o.field: o.flag for o in command.options}
        missing = [flags.get(f.name, f.name) for f in required]
        raise ValueError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required for --task {task}"
                         if len(command.tasks) > 1 else f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                         "required")
    config = config_from_dict(cls, values)
    for check in (*CHECKS, *command.checks):
        check(config, args)
    return module, config


# --- chip backends: which chip, which copy of it, calibrated or not --------------------------------------
#
# A chip backend (one whose module has ``select_chip``, e.g. ``brainscales``) runs every ``setup()`` of a
# protocol on the booked chip; these options book it before the protocol runs, the way a chip is allocated
# to a job on hardware. The chip seed is the chip's identity (its fixed-pattern noise), separate from
# ``--seed`` (the run's randomness). Options left out keep the backend's defaults (brainscales: bss2, chip
# seed 0, uncalibrated). Giving a chip option with a backend that has no chip is an error. The protocol
# records the booking in its results.json (cortexsim.backends.registry.chip_booking).

#: argparse destination -> keyword of the backend's ``select_chip``.
CHIP_OPTIONS = {"chip": "chip", "chip_seed": "chip_seed", "chip_calibration": "calibration"}


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def _add_chip_options(parser: argparse.ArgumentParser) -> None:
    # The chip names are checked by the backend when the chip is booked (importing the backend here
    # would load its simulator for every --help).
    group = parser.add_argument_group("chip backends (--backend brainscales)")
    group.add_argument("--chip", default=None, metavar="{bss2,bss1}",
                       help="which chip to emulate (default: the backend's, bss2)")
    group.add_argument("--chip-seed", type=_non_negative_int, default=None, metavar="N",
                       help="identity of the chip (its fixed-pattern noise; the same seed is the same chip "
                            "every run; default: 0); independent of --seed")
    group.add_argument("--chip-calibration", default=None, metavar="{none,auto,PATH}",
                       help="none: uncalibrated chip (default); auto: measure once and cache per chip; "
                            "PATH: load from or write to this JSON file")


def book_chip(args: argparse.Namespace, backend: str | None) -> dict | None:
    """Book the chip the parsed ``args`` ask for on ``backend``; returns the booking (plain data) or None.

    Raises
    ------
    ValueError
        A chip option was given for a backend without a chip, naming the options and the backend.
    """
    options = {}
    for dest, keyword in CHIP_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is not None:
            options[keyword] = None if (dest == "chip_calibration" and value == "none") else value
    if not options:
        return None
    from cortexsim.backends import load_backend
    from cortexsim.backends.registry import chip_booking

    given = ", ".join("--" + dest.replace("_", "-") for dest in CHIP_OPTIONS if getattr(args, dest, None) is not None)
    sim = load_backend(backend) if backend is not None else None
    select_chip = getattr(sim, "select_chip", None)
    if select_chip is None:
        raise ValueError(f"{given} apply to backends that run on a chip (e.g. --backend brainscales), "
                         f"not to --backend {backend}")
    select_chip(**options)
    booked = chip_booking(sim)
    logger.info("chip: " + ", ".join(f"{name}={value}" for name, value in booked.items()))
    return booked


# --- running -------------------------------------------------------------------------------------------

def configure_logging(verbosity: int = 0) -> None:
    """Messages of cortexsim's library code (``logging``) on stderr: 0 info, < 0 warnings, > 0 debug."""
    level = logging.INFO if verbosity == 0 else (logging.WARNING if verbosity < 0 else logging.DEBUG)
    package_logger = logging.getLogger("cortexsim")
    if not any(getattr(h, "_cortexsim", False) for h in package_logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._cortexsim = True
        package_logger.addHandler(handler)
    package_logger.setLevel(level)


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _run_protocol(command: Command, args: argparse.Namespace) -> int:
    resume = getattr(args, "resume", None)
    if resume is not None:
        args.out = resume
    module, config = build_config(command, args)
    book_chip(args, getattr(config, "backend", None))
    kwargs = {"resume": True} if resume is not None else {}
    result = module.run(config, args.out, progress=args.verbose - args.quiet >= 0, **kwargs)
    if result is None:
        print(f"cortexsim {command.name}: stopped; continue with --resume {args.out}")
        return 0
    report = getattr(module, command.report) if command.report is not None else None
    if report is not None:
        for line in report(result):
            print(line)
    else:
        for key, value in result.summary().items():
            print(f"{key}: {_format(value)}")
    print(f"results and figures in {args.out}/")
    return int(getattr(result, "exit_code", 0))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cortexsim`` command; returns the exit code (2: bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose - args.quiet)
    command = args.command_entry
    try:
        if command.handler is not None:
            return int(command.handler(args) or 0)
        return _run_protocol(command, args)
    except ValueError as exc:
        print(f"cortexsim {command.name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cortexsim {command.name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
