"""``--chip``, ``--chip-seed`` and ``--chip-calibration``: the CLI books the chip that the subcommand's
protocol then runs on (``sample`` and ``train-cd`` on ``--backend brainscales``)."""

from dataclasses import asdict

import pytest

import cortexsim.cli as cli
import cortexsim.commands as commands
from cortexsim.backends import installed_backends

pytestmark = pytest.mark.skipif("brainscales" not in installed_backends(), reason="brainscales not installed")


@pytest.fixture
def chip_sim():
    import cortexsim.backends.brainscales as sim

    previous = sim.selected_chip()
    yield sim
    sim.select_chip(**asdict(previous))


def _capture_handler(monkeypatch, module, name, chip_sim, seen):
    def handler(args):
        # what a protocol's setup() would run on: a real setup on the booked chip
        chip_sim.setup(timestep=0.1, seed=args.seed)
        chip = chip_sim.get_chip()
        seen.append((chip.spec.name, chip.seed, chip.rng_seed, chip.calibration_source))
        return 0

    monkeypatch.setattr(module, name, handler)


@pytest.mark.parametrize("command, module, handler", [("sample", commands, "handle_sample"),
                                                      ("train-cd", commands, "handle_train_cd")])
def test_chip_seed_and_chip_reach_the_protocols_setup(command, module, handler, chip_sim, monkeypatch):
    seen = []
    _capture_handler(monkeypatch, module, handler, chip_sim, seen)
    assert cli.main([command, "--backend", "brainscales", "--seed", "4", "--chip-seed", "17"]) == 0
    assert cli.main([command, "--backend", "brainscales", "--seed", "4", "--chip", "bss1", "--chip-seed", "5"]) == 0
    assert seen == [("bss2", 17, 4, "none"), ("bss1", 5, 4, "none")]


def test_same_chip_seed_same_chip_and_calibration_option(chip_sim, monkeypatch, tmp_path):
    seen, patterns = [], []
    _capture_handler(monkeypatch, commands, "handle_sample", chip_sim, seen)
    original = chip_sim.get_chip

    def get_chip():
        chip = original()
        patterns.append(chip.fixed_pattern["E_L"].copy())
        return chip

    monkeypatch.setattr(chip_sim, "get_chip", get_chip)
    for seed in ("8", "8", "9"):
        assert cli.main(["sample", "--backend", "brainscales", "--chip-seed", seed]) == 0
    assert (patterns[0] == patterns[1]).all() and not (patterns[0] == patterns[2]).all()
    # the calibration option reaches the booking (measuring it is tested in test_brainscales_limits.py)
    monkeypatch.setattr(commands, "handle_sample", lambda args: 0)
    path = tmp_path / "chip9.json"
    assert cli.main(["sample", "--backend", "brainscales", "--chip-seed", "9", "--chip-calibration", str(path)]) == 0
    assert chip_sim.selected_chip().calibration == str(path)
    assert cli.main(["sample", "--backend", "brainscales", "--chip-calibration", "none"]) == 0
    assert chip_sim.selected_chip().calibration is None and chip_sim.selected_chip().chip_seed == 9


def test_chip_options_need_a_chip_backend_and_valid_values(capsys, chip_sim):
    assert cli.main(["sample", "--backend", "nest", "--chip-seed", "3"]) == 2
    assert "--chip-seed apply to backends that run on a chip" in capsys.readouterr().err
    assert cli.main(["sample", "--backend", "brainscales", "--chip", "bss3"]) == 2
    assert "chip must be one of ['bss1', 'bss2']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train-cd", "--backend", "brainscales", "--chip-seed", "-1"])
    assert "--chip-seed: must be an integer >= 0" in capsys.readouterr().err


def test_the_booked_chip_is_written_into_results_json(chip_sim, monkeypatch, tmp_path):
    import json

    def handler(args):  # a protocol that writes its results.json
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps({"dkl": 0.1}))
        return 0

    monkeypatch.setattr(commands, "handle_sample", handler)
    assert cli.main(["sample", "--backend", "brainscales", "--chip-seed", "13", "--out", str(tmp_path / "a")]) == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["dkl"] == 0.1 and results["chip"]["chip_seed"] == 13 and results["chip"]["chip"] == "bss2"
    # no chip option: the default booking is recorded too; a backend without a chip adds nothing
    chip_sim.select_chip()
    assert cli.main(["sample", "--backend", "brainscales", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "results.json").read_text())["chip"]["chip_seed"] == chip_sim.selected_chip().chip_seed
    assert cli.main(["sample", "--backend", "nest", "--out", str(tmp_path / "c")]) == 0
    assert "chip" not in json.loads((tmp_path / "c" / "results.json").read_text())
