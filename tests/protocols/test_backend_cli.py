"""``--chip``, ``--chip-seed`` and ``--chip-calibration``: the CLI books the chip that the subcommand's
protocol then runs on (``sample`` and ``train-cd`` on ``--backend brainscales``), and the protocol
records it in its results.json (through the CLI and through the Python API)."""

from dataclasses import asdict

import pytest

import cortexsim.cli as cli
import cortexsim.protocols.cd_training as cd_training
import cortexsim.protocols.sampling as sampling
from cortexsim.backends import installed_backends

pytestmark = pytest.mark.skipif("brainscales" not in installed_backends(), reason="brainscales not installed")


@pytest.fixture
def chip_sim():
    import cortexsim.backends.brainscales as sim

    previous = sim.selected_chip()
    yield sim
    sim.select_chip(**asdict(previous))


class _NoResult:
    def summary(self):
        return {}


def _capture_run(monkeypatch, module, chip_sim, seen):
    def run(config, out_dir=None, progress=False, **kwargs):
        # what a protocol's setup() would run on: a real setup on the booked chip
        chip_sim.setup(timestep=0.1, seed=config.seed)
        chip = chip_sim.get_chip()
        seen.append((chip.spec.name, chip.seed, chip.rng_seed, chip.calibration_source))
        return _NoResult()

    monkeypatch.setattr(module, "run", run)


@pytest.mark.parametrize("command, module", [("sample", sampling), ("train-cd", cd_training)])
def test_chip_seed_and_chip_reach_the_protocols_setup(command, module, chip_sim, monkeypatch, tmp_path):
    seen = []
    _capture_run(monkeypatch, module, chip_sim, seen)
    out = ["--out", str(tmp_path)]
    assert cli.main([command, "--backend", "brainscales", "--seed", "4", "--chip-seed", "17", *out]) == 0
    assert cli.main([command, "--backend", "brainscales", "--seed", "4", "--chip", "bss1", "--chip-seed", "5",
                     *out]) == 0
    assert seen == [("bss2", 17, 4, "none"), ("bss1", 5, 4, "none")]


def test_same_chip_seed_same_chip_and_calibration_option(chip_sim, monkeypatch, tmp_path):
    seen, patterns = [], []
    _capture_run(monkeypatch, sampling, chip_sim, seen)
    original = chip_sim.get_chip

    def get_chip():
        chip = original()
        patterns.append(chip.fixed_pattern["E_L"].copy())
        return chip

    monkeypatch.setattr(chip_sim, "get_chip", get_chip)
    for seed in ("8", "8", "9"):
        assert cli.main(["sample", "--backend", "brainscales", "--chip-seed", seed, "--out", str(tmp_path)]) == 0
    assert (patterns[0] == patterns[1]).all() and not (patterns[0] == patterns[2]).all()
    # the calibration option reaches the booking (measuring it is tested in test_brainscales_limits.py)
    monkeypatch.setattr(sampling, "run", lambda config, out_dir=None, progress=False: _NoResult())
    path = tmp_path / "chip9.json"
    assert cli.main(["sample", "--backend", "brainscales", "--chip-seed", "9", "--chip-calibration", str(path),
                     "--out", str(tmp_path)]) == 0
    assert chip_sim.selected_chip().calibration == str(path)
    assert cli.main(["sample", "--backend", "brainscales", "--chip-calibration", "none", "--out", str(tmp_path)]) == 0
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
    """The sample protocol itself records the chip it ran on: from the CLI and from the Python API."""
    import json
    from types import SimpleNamespace

    from cortexsim.parameters import ActivationFit

    fit = SimpleNamespace(fit=ActivationFit(v_p05=-50.61, alpha=0.82), from_cache=True)  # no calibration run
    monkeypatch.setattr(sampling, "calibrate", lambda *args, **kwargs: fit)
    short = ["--neurons", "2", "--duration", "200"]
    assert cli.main(["sample", "--backend", "brainscales", "--chip-seed", "13", *short,
                     "--out", str(tmp_path / "a")]) == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["chip"]["chip_seed"] == 13 and results["chip"]["chip"] == "bss2"
    assert results["n_neurons"] == 2 and results["config"]["backend"] == "brainscales"
    # the Python API (no CLI, no chip option): the booking in force is recorded
    chip_sim.select_chip(chip_seed=21)
    sampling.sample(sampling.SamplingConfig(seed=2, backend="brainscales", n_neurons=2, duration_ms=200.0),
                    out_dir=tmp_path / "b")
    assert json.loads((tmp_path / "b" / "results.json").read_text())["chip"]["chip_seed"] == 21
    # a backend without a chip records none
    assert cli.main(["sample", "--backend", "nest", *short, "--out", str(tmp_path / "c")]) == 0
    assert "chip" not in json.loads((tmp_path / "c" / "results.json").read_text())
