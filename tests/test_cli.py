"""The ``cortexsim`` command: one table, one contract for every subcommand, config files re-run."""

import subprocess
import sys

import pytest

from cortexsim.cli import build_parser
from cortexsim.commands import COMMANDS

#: every subcommand that runs a protocol (all but listings such as ``backends``), read from the table so
#: that a new entry is held to the same contract
SUBCOMMANDS = [command.name for command in COMMANDS if command.handler is None]


def test_every_subcommand_is_registered():
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    expected = {"calibrate", "sample", "train-cd", "microcircuit", "urbanczik", "lagrangian", "validate", "ensemble"}
    assert expected <= set(SUBCOMMANDS) and set(SUBCOMMANDS) | {"backends"} <= set(choices)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command):
    out = subprocess.run([sys.executable, "-m", "cortexsim", command, "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for option in ("--seed", "--out", "--config", "--verbose", "--quiet"):
        assert option in out.stdout, (command, option)


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


def test_written_config_json_re_runs_and_options_override_it(tmp_path, capsys):
    """A run's config.json given back with --config gives the same result; an option given too wins."""
    import json

    from cortexsim.cli import main

    first = tmp_path / "first"
    args = ["lagrangian", "--task", "bars", "--t-pres", "0.5", "--seed", "3", "--n-seeds", "1", "--epochs", "2"]
    assert main(args + ["--out", str(first), "-q"]) == 0
    config = json.loads((first / "config.json").read_text())
    assert config["seed"] == 3 and config["epochs"] == 2 and config["hidden"] == 30  # the task default (bars)
    again = tmp_path / "again"
    assert main(["lagrangian", "--config", str(first / "config.json"), "--out", str(again), "-q"]) == 0
    a, b = (json.loads((d / "results.json").read_text()) for d in (first, again))
    assert a["realtime_test_accuracy"] == b["realtime_test_accuracy"] and a["config"] == b["config"]
    other = tmp_path / "other"
    assert main(["lagrangian", "--config", str(first / "config.json"), "--seed", "4", "--out", str(other), "-q"]) == 0
    assert json.loads((other / "config.json").read_text())["seed"] == 4
    printed = capsys.readouterr().out
    assert "realtime_mean: " in printed  # the headline figures of Result.summary()


def test_bad_config_files_and_misplaced_options_are_refused_before_running(tmp_path, capsys):
    from cortexsim.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text('{"seed": 1, "n_neuronz": 5}')
    assert main(["sample", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "n_neuronz" in capsys.readouterr().err
    assert main(["sample", "--config", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train-cd", "--task", "digits", "--bm", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "--bm applies to --task target only" in capsys.readouterr().err
    assert main(["lagrangian", "--task", "bars", "--out", str(tmp_path / "o")]) == 2
    assert "--t-pres" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing ran, nothing was written
