"""Cross-simulator validation: robustness (clear errors, missing/failing backends) and a short NEST
vs Brian2 run that agrees for the same model and flags a model altered on one backend."""

import json
import os
import textwrap
from pathlib import Path

import pytest

from cortexsim.backends import registry
from cortexsim.cli import main as cli_main
from cortexsim.protocols.validation import (EXIT_AGREE, EXIT_DIFFER, EXIT_INCOMPLETE, Alteration, ModelError,
                                            ValidationConfig, load_model, validate)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "validate_balanced_ei.py"

# A small, uncoupled variant of the balanced E/I example (in-degrees 0): 100 neurons driven by
# excitatory and inhibitory Poisson background near threshold (low-conductance regime, where tau_m
# matters). PyNN's Brian2 Projection connects one neuron at a time, so a coupled network is too
# slow for the test budget; the coupled example is measured by `cortexsim validate` (see report).
SMALL_MODEL = f"""
import importlib.util
spec = importlib.util.spec_from_file_location("balanced_ei_example", {str(EXAMPLE)!r})
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)
PARAMETERS = dict(example.PARAMETERS, n_excitatory=80, n_inhibitory=20, in_degree_excitatory=0,
                  in_degree_inhibitory=0, n_recorded_v=5, background_rate_hz=800.0,
                  background_weight_uS=0.002, background_inhibitory_rate_hz=200.0,
                  background_inhibitory_weight_uS=0.005)
DURATION_MS = 600.0
TRANSIENT_MS = 100.0

def build(sim, rng=None):
    return example.build(sim, rng=rng, parameters=PARAMETERS)
"""


def write_model(tmp_path, text, name="model.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_model_without_build_is_a_clear_error(tmp_path, capsys):
    path = write_model(tmp_path, "x = 1\n")
    with pytest.raises(ValueError, match=r"does not define a function build\(sim\)"):
        load_model(path)
    assert cli_main(["validate", str(path), "--backends", "nest,brian2", "--out", str(tmp_path / "o")]) == 2
    assert "build(sim)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="does not exist"):
        load_model(tmp_path / "absent.py")


def test_model_recording_nothing_is_a_clear_error(tmp_path):
    path = write_model(tmp_path, """
        def build(sim):
            sim.Population(3, sim.IF_cond_exp())
    """)
    config = ValidationConfig(seed=1, backends=("nest", "brian2"), repeats=2, duration_ms=50.0)
    with pytest.raises(ModelError, match="records nothing"):
        validate(path, config)


def test_missing_unregistered_and_failing_backends_are_reported(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, "not_installed", registry.BackendInfo(
        name="not_installed", module="cortexsim_no_such_module", requires=("cortexsim_no_such_package",),
        description="test entry"))
    path = write_model(tmp_path, """
        def build(sim):
            if "brian2" in sim.__name__:
                raise RuntimeError("this model does not run on brian2")
            pop = sim.Population(20, sim.SpikeSourcePoisson(rate=20.0))
            pop.record("spikes")
            return pop
    """)
    config = ValidationConfig(seed=1, backends=("nest", "brian2", "not_installed", "no_such_backend"),
                              repeats=2, duration_ms=300.0)
    result = validate(path, config, out_dir=tmp_path / "out")
    status = {name: run.status for name, run in result.backends.items()}
    assert status == {"nest": "ok", "brian2": "failed", "not_installed": "missing", "no_such_backend": "unregistered"}
    assert "does not run on brian2" in result.backends["brian2"].message
    assert result.exit_code == EXIT_INCOMPLETE and result.comparisons == []
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["backends"]["no_such_backend"]["status"] == "unregistered"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "this model does not run on brian2" in html and "not registered" in html


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="repeats"):
        ValidationConfig(seed=1, repeats=1)
    with pytest.raises(ValueError, match="backends"):
        ValidationConfig(seed=1, backends=("nest", "nest"))
    with pytest.raises(ValueError, match="not among"):
        ValidationConfig(seed=1, alterations=(Alteration("brainscales", "tau_m", 1.2),))
    with pytest.raises(ValueError, match="backend:parameter=factor"):
        Alteration.parse("tau_m*1.2")
    assert Alteration.parse("brian2:tau_m=1.2") == Alteration("brian2", "tau_m", 1.2)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CORTEXSIM_SLOW_TESTS") != "1",
                    reason="~15 min with PyNN's per-neuron Brian2 connect on a loaded 2-core machine; "
                           "set CORTEXSIM_SLOW_TESTS=1 to run it")
def test_nest_and_brian2_agree_and_an_altered_model_is_flagged(tmp_path):
    # Measured 2026-11-30: the "same model agrees" half passes; the altered half FAILS on this small
    # uncoupled model (tau_m x 1.2 changes its rate by only ~6 % and its CV by ~2 %, inside the
    # run-to-run tolerance of R = 4 runs). Kept as the acceptance check of issue 6, not yet met here.
    path = write_model(tmp_path, SMALL_MODEL)
    same = validate(path, ValidationConfig(seed=11, backends=("nest", "brian2"), repeats=4),
                    out_dir=tmp_path / "same")
    tested = [c for c in same.comparisons if c.verdict in ("agree", "differ")]
    assert len(tested) == 14  # rate, CV, Fano, correlation, CCH, Vm mean/std for two populations
    assert [f"{c.population}/{c.statistic}" for c in tested if c.verdict == "differ"] == []
    assert same.exit_code == EXIT_AGREE

    altered = validate(path, ValidationConfig(seed=11, backends=("nest", "brian2"), repeats=4,
                                              alterations=(Alteration("brian2", "tau_m", 1.2),)),
                       out_dir=tmp_path / "altered")
    flagged = {(c.population, c.statistic) for c in altered.comparisons if c.verdict == "differ"}
    for population in ("excitatory", "inhibitory"):
        assert (population, "rate_hz") in flagged
        assert (population, "cv_isi") in flagged
    assert altered.exit_code == EXIT_DIFFER
    report = json.loads((tmp_path / "altered" / "report.json").read_text())
    assert report["exit_code"] == EXIT_DIFFER and report["config"]["alterations"][0]["parameter"] == "tau_m"
