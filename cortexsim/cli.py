"""The ``cortexsim`` command: one subcommand per protocol, all declared in :data:`COMMANDS`.

    cortexsim calibrate --backend nest --seed 1 --out out/calibration
    cortexsim sample --backend nest --seed 1 --neurons 5 --duration 10000 --out out/sample
    cortexsim sample --bm my_bm.json --backend brian2 --seed 2 --out out/mine
    cortexsim backends          # registered backends, installed or not, with capabilities
    cortexsim --version

Times are in ms. The CLI is the top layer of the package: nothing imports it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass

from . import __version__, commands

__all__ = ["Command", "COMMANDS", "main", "build_parser"]


@dataclass(frozen=True)
class Command:
    """One subcommand: its name and one-line help.

    Its options are added by ``add_<name>_arguments(parser)`` and it runs through
    ``handle_<name>(args)`` (returning the exit code), both in :mod:`cortexsim.commands`, with
    ``<name>`` the command name with ``_`` for ``-``; the functions are looked up when used.
    """

    name: str
    help: str

    @property
    def function_name(self) -> str:
        return self.name.replace("-", "_")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        getattr(commands, f"add_{self.function_name}_arguments")(parser)

    def run(self, args: argparse.Namespace) -> int:
        return int(getattr(commands, f"handle_{self.function_name}")(args) or 0)


#: Every subcommand, in the order ``cortexsim --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    Command("calibrate", "measure and fit the activation function (cached)"),
    Command("sample", "sample from a Boltzmann machine with LIF neurons"),
    Command("train-cd", "contrastive-divergence training on a spiking sampling network"),
    Command("ensemble", "sampling networks that are each other's noise vs Poisson noise"),
    Command("microcircuit", "train a dendritic cortical microcircuit (Sacramento 2018)"),
    Command("urbanczik", "Urbanczik-Senn dendritic-prediction learning (NEST / Brian2)"),
    Command("lagrangian", "real-time learning with Latent Equilibrium dynamics"),
    Command("validate", "run a PyNN model on several backends and compare statistics"),
    Command("pong", "learn Pong with reward-modulated STDP on the emulated chip or NEST (Wunderlich 2019)"),
    Command("backends", "list the simulator backends, whether installed, and their capabilities"),
)


def _verbosity_parser() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="more messages (-v: debug messages of cortexsim)")
    group.add_argument("-q", "--quiet", action="count", default=0,
                       help="fewer messages (-q: warnings and errors only)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :data:`COMMANDS`."""
    verbosity = _verbosity_parser()
    parser = argparse.ArgumentParser(prog="cortexsim", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"cortexsim {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help,
                                    parents=[verbosity])
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def configure_logging(verbosity: int = 0) -> None:
    """Messages of cortexsim's library code (``logging``) on stderr: 0 info, < 0 warnings, > 0 debug."""
    level = logging.INFO if verbosity == 0 else (logging.WARNING if verbosity < 0 else logging.DEBUG)
    logger = logging.getLogger("cortexsim")
    if not any(getattr(h, "_cortexsim", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._cortexsim = True
        logger.addHandler(handler)
    logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cortexsim`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose - args.quiet)
    try:
        commands.book_chip(args)  # books the chip a chip backend runs on (no-op otherwise)
        code = args.run(args)
        commands.record_chip(args)  # which chip it ran on, into results.json (no-op for backends without a chip)
        return code
    except ValueError as exc:
        print(f"cortexsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cortexsim {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
