"""benchmarks/spiking_rbm_data.py: merging a test set evaluated in parts (``readout-test --part K/N``)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def script(benchmark_script):
    return benchmark_script("spiking_rbm_data")


def test_merged_parts_score_as_one_pass_over_the_images(script):
    """Three unequal slices (4, 3, 3 images) of per-image right/wrong marks: the merged accuracies equal the mean
    over all ten marks (an unweighted mean of the parts' figures, 0.583 here, fails), completion comes from part 0
    only, wall time adds up and the elapsed time is the longest part's."""
    correct = np.array([1, 1, 1, 0, 0, 0, 1, 1, 0, 1], dtype=float)
    energy = np.array([1, 0, 1, 1, 1, 1, 0, 1, 1, 1], dtype=float)
    edges = [0, 4, 7, 10]
    parts = [{"part": [k, 3], "images": edges[k + 1] - edges[k], "seed": 100 + k,
              "accuracy": correct[edges[k]:edges[k + 1]].mean(), "free_energy_accuracy": energy[edges[k]:edges[k + 1]].mean(),
              "wall_s": 10.0 + k, "simulated_ms": 100.0 * (edges[k + 1] - edges[k])} for k in range(3)]
    parts[0]["completion_errors"] = {"half": 0.2}
    merged = script.merge_parts(parts[::-1], 10)
    assert merged["accuracy"] == pytest.approx(correct.mean()) and merged["accuracy"] == pytest.approx(0.6)
    assert merged["free_energy_accuracy"] == pytest.approx(energy.mean())
    assert merged["completion_errors"] == {"half": 0.2}
    assert merged["wall_s"] == pytest.approx(33.0) and merged["elapsed_s"] == pytest.approx(12.0)
    assert merged["simulated_ms"] == pytest.approx(1000.0)
    assert [p["seed"] for p in merged["parts"]] == [100, 101, 102]


def test_parts_that_miss_or_repeat_images_are_refused(script):
    part = {"images": 5, "seed": 1, "accuracy": 0.5, "free_energy_accuracy": 0.5, "wall_s": 1.0, "simulated_ms": 1.0,
            "completion_errors": {}}
    with pytest.raises(ValueError, match="do not cover"):
        script.merge_parts([{**part, "part": [0, 2]}, {**part, "part": [0, 2]}], 10)      # part 1 missing
    with pytest.raises(ValueError, match="do not cover"):
        script.merge_parts([{**part, "part": [0, 2]}, {**part, "part": [1, 2]}], 12)      # 10 of 12 images


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "1/0"])
def test_bad_part_is_refused_naming_the_option(text, script):
    with pytest.raises(ValueError, match="--part"):
        script.parse_part(text)
