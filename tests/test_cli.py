"""The ``cortexsim`` command: every protocol's subcommand is registered and documents itself."""

import subprocess
import sys

import pytest

from cortexsim.cli import build_parser

SUBCOMMANDS = ["calibrate", "sample", "train-cd", "microcircuit", "urbanczik", "lagrangian", "validate", "ensemble"]


def test_every_subcommand_is_registered():
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(SUBCOMMANDS) <= set(choices)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command):
    out = subprocess.run([sys.executable, "-m", "cortexsim.cli", command, "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--out" in out.stdout
