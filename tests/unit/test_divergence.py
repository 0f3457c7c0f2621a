"""Unit tests of cortexsim.analysis.divergence."""

from __future__ import annotations

import numpy as np
import pytest

from cortexsim.analysis.divergence import dkl, dkl_both, dkl_over_time


def test_dkl_known_value():
    p = np.array([0.5, 0.5])
    q = np.array([0.25, 0.75])
    expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert dkl(p, q) == pytest.approx(expected, rel=1e-12)
    assert dkl(p, p) == 0.0
    assert dkl(q, p) != pytest.approx(dkl(p, q))  # not symmetric


def test_zero_terms_and_empty_states():
    p = np.array([0.0, 0.5, 0.5])
    q = np.array([0.2, 0.4, 0.4])
    assert dkl(p, q) == pytest.approx(np.log(0.5 / 0.4), rel=1e-12)  # p = 0 contributes nothing
    assert dkl(q, p) == float("inf")  # q visits a state p never does
    eps = 1e-10
    regularised = (p + eps) / (1 + 3 * eps)
    expected = float(np.sum(q * np.log(q / regularised)))
    assert dkl(q, p, epsilon=eps) == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(dkl(q, p, epsilon=eps)) and dkl(q, p, epsilon=eps) > 4.0


def test_dkl_both_directions_named():
    sampled = np.array([0.0, 0.3, 0.7, 0.0])
    target = np.array([0.1, 0.2, 0.6, 0.1])
    result = dkl_both(sampled, target)
    assert result["dkl_sampled_target"] == pytest.approx(dkl(sampled, target))
    assert result["dkl_target_sampled"] == pytest.approx(dkl(target, sampled, epsilon=1e-10))
    assert np.isfinite(result["dkl_target_sampled"])


def test_dkl_over_time():
    target = np.array([0.25, 0.25, 0.5])
    rows = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], target])
    result = dkl_over_time(rows, target)
    assert result["dkl_sampled_target"].shape == (3,)
    assert result["dkl_sampled_target"][0] == pytest.approx(np.log(4.0))
    assert result["dkl_sampled_target"][2] == 0.0
    assert result["dkl_target_sampled"][2] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(result["dkl_sampled_target"]) < 0)


@pytest.mark.parametrize(
    "p, q, kwargs, match",
    [
        ([0.5, 0.5], [1.0], {}, "same shape"),
        ([1.5, -0.5], [0.5, 0.5], {}, "p has negative entries"),
        ([0.5, 0.5], [0.6, 0.6], {}, "q must sum to 1"),
        ([0.5, np.nan], [0.5, 0.5], {}, "p contains NaN"),
        ([[0.5, 0.5]], [0.5, 0.5], {}, "p must be a non-empty 1-D"),
        ([0.5, 0.5], [0.5, 0.5], {"epsilon": -1.0}, "epsilon must be"),
    ],
)
def test_bad_input(p, q, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dkl(np.array(p), np.array(q), **kwargs)


def test_bad_over_time_shape():
    with pytest.raises(ValueError, match=r"distributions must have shape \(m, 3\)"):
        dkl_over_time(np.ones((2, 4)) / 4, np.ones(3) / 3)
