"""End-to-end run of the ensemble protocol and its CLI on NEST at a tiny size (structure, not quality)."""

import json

import numpy as np
import pytest

from cortexsim.cli import main
from cortexsim.parameters import ActivationFit
from cortexsim.protocols import ensemble as protocol

pytest.importorskip("nest")


def test_cli_writes_results_with_all_dkl_summaries_and_figures(tmp_path, monkeypatch, capsys):
    # The Poisson activation function of references §1 instead of a calibration (tests stay fast).
    reference = ActivationFit(v_p05=-50.61, alpha=0.82)
    original = protocol.run_ensemble
    monkeypatch.setattr(protocol, "run_ensemble",
                        lambda config, **kw: original(config, poisson_fit=reference, **kw))
    assert main(["ensemble", "--networks", "20", "--neurons", "5", "--in-degree", "15",
                              "--train-iterations", "3", "--sampling", "200", "--eval-duration", "1000",
                              "--calibration-duration", "2000", "--seed", "3", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    for key in ("dkl_poisson_trained", "dkl_ensemble_untrained", "dkl_ensemble_trained", "dkl_poisson_untrained"):
        summary = results[key]
        assert summary["n"] == 20
        assert summary["q25"] <= summary["median"] <= summary["q75"]
        assert np.isfinite(summary["median"]) and summary["median"] > 0
    for mode in ("poisson", "ensemble"):
        background = results["background"][mode]
        assert background["inputs"]["mean_rate_hz"] > 0
        assert np.isfinite(background["inputs"]["mean_cv"])
        assert 0 <= background["inputs"]["mean_abs_correlation"] < 1
        assert background["free_membrane"]["std_mv"] > 0
    assert results["activation_fit"]["ensemble"]["alpha"] > 0
    for name in results["files"].values():
        assert (tmp_path / name).stat().st_size > 1000
    assert "dkl_ensemble_trained: " in capsys.readouterr().out
