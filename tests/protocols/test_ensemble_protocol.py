"""End-to-end run of the ensemble protocol and its CLI on NEST at a small size: structure of the
results and a quality bound on learning, derived from the sampling noise of the evaluation."""

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
    assert main(["ensemble", "--networks", "20", "--neurons", "3", "--in-degree", "10",
                 "--train-iterations", "10", "--sampling", "500", "--eval-duration", "4000",
                 "--calibration-duration", "2000", "--seed", "3", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    # Quality. Noise of one network's D_KL(sampled || target) after T = 4000 ms: with about
    # N = T / (2 tau_ref) = 200 independent samples of K = 8 states, its finite-sample bias is
    # (K - 1) / (2 N) = 0.0175, with a spread of the same order; the median over 20 networks varies by
    # ~0.005. Untrained, the correlated ensemble background leaves the networks far from their targets
    # (measured medians 0.06-0.09 for seeds 3, 4); ten CD updates must remove more than twice the
    # noise level and at least half of the divergence, and the Poisson-noise networks, which start at
    # the floor, must stay within twice the noise level of it. A CD update of the wrong sign drives
    # the networks away from their targets and fails both.
    noise = (8 - 1) / (2 * 4000.0 / (2 * 10.0))
    untrained, trained = results["dkl_ensemble_untrained"]["median"], results["dkl_ensemble_trained"]["median"]
    assert untrained - trained > 2 * noise and trained < 0.5 * untrained, (untrained, trained)
    assert results["dkl_poisson_trained"]["median"] < results["dkl_poisson_untrained"]["median"] + 2 * noise
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
    for mode in ("poisson", "ensemble"):     # J per CD iteration (NEST: CPU time x power, per iteration)
        energy = results["training_energy"][mode]
        assert energy["model"] == "software" and energy["units"] == 10
        assert energy["j_per_iteration"] == pytest.approx(energy["energy_j"] / 10) and energy["energy_j"] > 0
    for name in results["files"].values():
        assert (tmp_path / name).stat().st_size > 1000
    assert "dkl_ensemble_trained: " in capsys.readouterr().out
