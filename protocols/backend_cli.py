"""Command-line options of backends that run on a chip: which chip, which copy of it, calibrated or not.

    cortexsim sample --backend brainscales --chip bss2 --chip-seed 3 --chip-calibration auto ...
    cortexsim train-cd --backend brainscales --chip-seed 3 --chip-calibration auto ...

A chip backend (one whose module has ``select_chip``, e.g. ``brainscales``) runs every ``setup()``
of a protocol on the booked chip; these options book it before the subcommand runs, the way a chip
is allocated to a job on hardware. The chip seed is the chip's identity (its fixed-pattern noise),
separate from ``--seed`` (the run's randomness). Options left out keep the backend's defaults
(brainscales: bss2, chip seed 0, uncalibrated). Giving a chip option with a backend that has no
chip is an error, not silently ignored.

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

__all__ = ["add_backend_options", "apply_backend_options", "record_chip", "CHIP_OPTIONS"]

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
                       help="none: uncalibrated chip (default); auto: measure once and cache per chip; "
                            "PATH: load from or write to this JSON file")


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


def apply_backend_options(args: argparse.Namespace) -> dict | None:
    """Book the chip the parsed ``args`` ask for; returns the booking (plain data) or None.

    Raises
    ------
    ValueError
        A chip option was given for a backend without a chip, naming the options and the backend.
    """
    options = _chip_options(args)
    if not options:
        return None
    from cortexsim.backends import load_backend

    backend = getattr(args, "backend", None)
    given = ", ".join("--" + dest.replace("_", "-") for dest in CHIP_OPTIONS if getattr(args, dest, None) is not None)
    sim = load_backend(backend) if backend is not None else None
    select_chip = getattr(sim, "select_chip", None)
    if select_chip is None:
        raise ValueError(f"{given} apply to backends that run on a chip (e.g. --backend brainscales), "
                         f"not to --backend {backend}")
    select_chip(**options)
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
