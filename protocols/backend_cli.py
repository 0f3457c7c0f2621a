"""Command-line options of backends that run on a chip: which chip, which copy of it, calibrated or not.

    cortexsim sample --backend brainscales --chip bss2 --chip-seed 3 --chip-calibration auto ...
    cortexsim train-cd --backend brainscales --chip-seed 3 --chip-calibration auto ...

A chip backend (one whose module has ``select_chip``, e.g. ``brainscales``) runs every ``setup()``
of a protocol on the booked chip; these options book it before the subcommand runs, the way a chip
is allocated to a job on hardware. The chip seed is the chip's identity (its fixed-pattern noise),
separate from ``--seed`` (the run's randomness). Options left out keep the backend's defaults
(brainscales: bss2, chip seed 0), except the calibration: on the command line it defaults to
``auto`` (the chip is calibrated once and cached; ``--chip-calibration none`` for the raw chip).
Giving a chip option with a backend that has no chip is an error, not silently ignored.

:func:`add_backend_options` adds the options to a subcommand's parser (``cortexsim.cli``'s
``add_common_arguments`` does it for every simulation subcommand); :func:`apply_backend_options`
books the chip from parsed arguments (``cortexsim.cli.main`` calls it before the handler) and
:func:`record_chip` writes the chip the run used into its ``results.json`` (after the handler).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

__all__ = ["add_backend_options", "check_backend_options", "apply_backend_options", "record_chip", "CHIP_OPTIONS"]

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


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--chip``, ``--chip-seed`` and ``--chip-calibration`` (for chip backends) to ``parser``.

    The chip names are checked by the backend when the chip is booked (importing the backend here
    would load its simulator for every ``--help``).
    """
    group = parser.add_argument_group("chip backends (--backend brainscales)")
    group.add_argument("--chip", default=None, metavar="{bss2,bss1}",
                       help="which chip to emulate (default: the backend's, bss2)")
    group.add_argument("--chip-seed", type=_non_negative_int, default=None, metavar="N",
                       help="identity of the chip (its fixed-pattern noise; the same seed is the same chip "
                            "every run; default: 0); independent of --seed")
    group.add_argument("--chip-calibration", default=None, metavar="{none,auto,PATH}",
                       help="auto: measure once and cache per chip (default); none: uncalibrated chip; "
                            "PATH: load from or write to this JSON file (its folder must exist)")


def _chip_options(args: argparse.Namespace) -> dict:
    options = {}
    for dest, keyword in CHIP_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest == "chip_calibration":
            value = None if value == "none" else value
        options[keyword] = value
    return options


def _has_chip(backend: str | None) -> bool:
    from cortexsim.backends.registry import BACKENDS

    info = BACKENDS.get(backend) if isinstance(backend, str) else None
    return info is not None and info.capabilities.has_chip


def check_backend_options(args: argparse.Namespace) -> None:
    """Check the chip options of parsed ``args`` without loading any simulator.

    Raises
    ------
    ValueError
        A chip option was given for a backend without a chip (naming the options and the backend),
        or ``--chip-calibration PATH`` names a file in a folder that does not exist, or a folder.
    """
    backend = getattr(args, "backend", None)
    given = [dest for dest in CHIP_OPTIONS if getattr(args, dest, None) is not None]
    if given and not _has_chip(backend):
        names = ", ".join("--" + dest.replace("_", "-") for dest in given)
        raise ValueError(f"{names} apply to backends that run on a chip (e.g. --backend brainscales), "
                         f"not to --backend {backend}")
    calibration = getattr(args, "chip_calibration", None)
    if calibration not in (None, "none", "auto"):
        path = Path(calibration)
        if path.is_dir():
            raise ValueError(f"--chip-calibration {path} is a folder; give a JSON file (it is created if missing)")
        if not path.parent.is_dir():
            raise ValueError(f"--chip-calibration {path}: its folder {path.parent} does not exist (create it, "
                             f"or use --chip-calibration auto for the per-chip cache)")


def apply_backend_options(args: argparse.Namespace) -> dict | None:
    """Book the chip the parsed ``args`` ask for; returns the booking (plain data) or None.

    On a chip backend the calibration defaults to ``auto`` (measured once per chip and cached):
    an uncalibrated chip's fixed-pattern noise spreads the neurons' activation functions so far that
    a sampling network cannot be calibrated on it. ``--chip-calibration none`` asks for the raw chip.

    Raises
    ------
    ValueError
        See :func:`check_backend_options`.
    """
    check_backend_options(args)
    backend = getattr(args, "backend", None)
    if not _has_chip(backend):
        return None
    options = _chip_options(args)
    if getattr(args, "chip_calibration", None) is None:
        options["calibration"] = "auto"
    from cortexsim.backends import load_backend

    sim = load_backend(backend)
    sim.select_chip(**options)
    booked = asdict(sim.selected_chip())
    print("chip: " + ", ".join(f"{name}={value}" for name, value in booked.items()))
    return booked


def record_chip(args: argparse.Namespace) -> dict | None:
    """Write the chip a chip backend ran on into the subcommand's ``results.json`` (key ``"chip"``).

    A no-op (None) for backends without a chip, or when the subcommand wrote no ``results.json`` in
    ``args.out``. The booking is the one in force after the run (``--chip``/``--chip-seed``/
    ``--chip-calibration``, or the backend's default chip); returns it.
    """
    backend, out = getattr(args, "backend", None), getattr(args, "out", None)
    if backend is None or out is None:
        return None
    from cortexsim.backends import load_backend
    from cortexsim.results import write_json_atomic

    path = Path(out) / "results.json"
    sim = load_backend(backend)
    if getattr(sim, "selected_chip", None) is None or not path.exists():
        return None
    booked = asdict(sim.selected_chip())
    results = json.loads(path.read_text())
    results["chip"] = booked
    write_json_atomic(path, results)
    return booked
