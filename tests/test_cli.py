"""The ``cortexsim`` command: every protocol's subcommand is registered and documents itself."""

import subprocess
import sys

import pytest

from cortexsim.cli import build_parser

SUBCOMMANDS = ["calibrate", "sample", "train-cd", "microcircuit", "urbanczik", "lagrangian", "validate", "ensemble"]


def test_every_subcommand_is_registered():
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(SUBCOMMANDS) | {"backends"} <= set(choices)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command):
    out = subprocess.run([sys.executable, "-m", "cortexsim", command, "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--out" in out.stdout


def test_version_module_entry_point_and_backends_listing():
    """``cortexsim --version``, ``python -m cortexsim`` and ``cortexsim backends`` work as installed."""
    import cortexsim

    version = subprocess.run([sys.executable, "-m", "cortexsim", "--version"], capture_output=True, text=True,
                             timeout=120)
    assert version.returncode == 0 and version.stdout.strip() == f"cortexsim {cortexsim.__version__}"
    listing = subprocess.run([sys.executable, "-m", "cortexsim", "backends", "--all"], capture_output=True,
                             text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    # the chip's capabilities come from its ChipSpec (one place for chip limits)
    from cortexsim.backends.chips import CHIPS, DEFAULT_CHIP

    spec = CHIPS[DEFAULT_CHIP]
    assert f"max {spec.n_neurons} neurons, fan-in <= {spec.max_fan_in}" in listing.stdout
    for name in ("nest", "brian2", "brainscales"):
        assert f"{name}: " in listing.stdout
