"""Unit tests of cortexsim.models.boltzmann (pure numpy, fast)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from cortexsim.models.boltzmann import (
    MAX_EXACT_UNITS,
    BoltzmannMachine,
    all_states,
    energies,
    exact_moments,
    gibbs_sample,
    indices_to_states,
    joint,
    marginals,
    random_bm,
    states_to_indices,
)


def brute_force_joint(W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """p(z) from the textbook formula, state by state, in index order (unit 0 = most significant bit)."""
    n = len(b)
    weights = []
    for z in itertools.product([0, 1], repeat=n):  # product order == index order (first = MSB)
        z = np.array(z, dtype=float)
        energy = -0.5 * z @ W @ z - b @ z
        weights.append(np.exp(-energy))
    weights = np.array(weights)
    return weights / weights.sum()


def test_all_states_index_order():
    states = all_states(3)
    assert states.dtype == np.uint8
    assert states.shape == (8, 3)
    assert states[1].tolist() == [0, 0, 1]
    assert states[4].tolist() == [1, 0, 0]
    assert states[6].tolist() == [1, 1, 0]
    for idx, z in enumerate(states):
        assert format(idx, "03b") == "".join(str(v) for v in z)


def test_index_round_trip():
    rng = np.random.default_rng(0)
    states = rng.integers(0, 2, size=(50, 7)).astype(np.uint8)
    idx = states_to_indices(states)
    np.testing.assert_array_equal(indices_to_states(idx, 7), states)
    assert states_to_indices(np.array([1, 0, 1])) == 5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_joint_matches_brute_force_and_sums_to_one(seed):
    bm = random_bm(5, seed=seed)
    p = joint(bm)
    assert p.shape == (32,)
    assert abs(p.sum() - 1.0) < 1e-12
    np.testing.assert_allclose(p, brute_force_joint(bm.W, bm.b), rtol=1e-12, atol=1e-15)


def test_joint_is_stable_for_large_parameters():
    bm = random_bm(4, seed=0, weight_scale=300.0, bias_scale=300.0)
    p = joint(bm)
    assert np.all(np.isfinite(p))
    assert abs(p.sum() - 1.0) < 1e-12


def test_energies_known_values():
    bm = BoltzmannMachine(W=[[0.0, 2.0], [2.0, 0.0]], b=[0.5, -1.0])
    np.testing.assert_allclose(energies(bm, all_states(2)), [0.0, 1.0, -0.5, -1.5])


def test_marginals_and_moments():
    bm = random_bm(4, seed=7)
    p = brute_force_joint(bm.W, bm.b)
    z = all_states(4).astype(float)
    np.testing.assert_allclose(marginals(bm), p @ z, rtol=1e-12)
    mean, second = exact_moments(bm)
    np.testing.assert_allclose(mean, p @ z, rtol=1e-12)
    expected_second = np.einsum("s,si,sj->ij", p, z, z)
    np.testing.assert_allclose(second, expected_second, rtol=1e-12)
    np.testing.assert_allclose(np.diag(second), mean, rtol=1e-12)


def test_independent_units_marginals_are_logistic():
    b = np.array([-1.0, 0.0, 2.0])
    bm = BoltzmannMachine(W=np.zeros((3, 3)), b=b)
    np.testing.assert_allclose(marginals(bm), 1.0 / (1.0 + np.exp(-b)), rtol=1e-12)


def test_random_bm_follows_recipe():
    bm = random_bm(6, seed=11, weight_scale=2.0, bias_scale=0.5)
    rng = np.random.default_rng(11)
    A = rng.normal(0.0, 2.0, size=(6, 6))
    W = 0.5 * (A + A.T)
    np.fill_diagonal(W, 0.0)
    b = rng.normal(0.0, 0.5, size=6)
    np.testing.assert_array_equal(bm.W, W)
    np.testing.assert_array_equal(bm.b, b)
    assert bm.n_units == 6
    assert random_bm(6, seed=11) == random_bm(6, seed=11)
    assert random_bm(6, seed=11) != random_bm(6, seed=12)


def empirical_distribution(samples: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(states_to_indices(samples), minlength=2**n)
    return counts / counts.sum()


def kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def test_gibbs_converges_to_exact_joint():
    n, n_samples, thin = 4, 20000, 2
    bm = random_bm(n, seed=5)
    target = joint(bm)
    samples = gibbs_sample(bm, n_samples, seed=123, burn_in=100, thin=thin)
    assert samples.shape == (n_samples, n) and samples.dtype == np.uint8
    sampled = empirical_distribution(samples, n)
    # Tolerance from the sample size: for N independent samples over K states,
    # 2 N D_KL(sampled || target) is approximately chi-square with K - 1 degrees of freedom, so
    # E[D_KL] ~ (K - 1) / (2 N) = 3.75e-4 here and its standard deviation ~ sqrt(2 (K - 1)) / (2 N).
    # Gibbs samples are correlated; we allow an effective sample size down to N / 5 and 5 standard
    # deviations: tolerance = 5 * ((K - 1) + 5 sqrt(2 (K - 1))) / (2 N).
    K = 2**n
    tolerance = 5 * ((K - 1) + 5 * np.sqrt(2 * (K - 1))) / (2 * n_samples)
    assert kl(sampled, target) < tolerance
    # The check has power: the same samples are far from a different BM's distribution.
    other = joint(random_bm(n, seed=6))
    assert kl(sampled, other) > 10 * tolerance


def test_gibbs_is_reproducible_with_seed():
    bm = random_bm(3, seed=0)
    a = gibbs_sample(bm, 50, seed=9)
    np.testing.assert_array_equal(a, gibbs_sample(bm, 50, seed=9))
    assert not np.array_equal(a, gibbs_sample(bm, 50, seed=10))


def test_json_round_trip(tmp_path):
    bm = random_bm(4, seed=3)
    path = bm.to_json(tmp_path / "bm.json")
    loaded = BoltzmannMachine.from_json(path)
    np.testing.assert_array_equal(loaded.W, bm.W)
    np.testing.assert_array_equal(loaded.b, bm.b)
    assert json.loads(path.read_text()) == bm.to_dict()


def test_arrays_are_read_only():
    bm = random_bm(3, seed=0)
    with pytest.raises(ValueError):
        bm.W[0, 1] = 5.0


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "W, b, match",
    [
        (np.zeros((3, 2)), np.zeros(3), r"W must be a square 2-D"),
        (np.zeros(3), np.zeros(3), r"W must be a square 2-D"),
        (np.zeros((3, 3)), np.zeros((3, 1)), r"b must be a 1-D"),
        (np.zeros((3, 3)), np.zeros(4), r"W has shape \(3, 3\) but b has 4 entries"),
        (np.array([[0.0, np.nan], [np.nan, 0.0]]), np.zeros(2), r"W contains NaN or inf"),
        (np.array([[0.0, np.inf], [np.inf, 0.0]]), np.zeros(2), r"W contains NaN or inf"),
        (np.zeros((2, 2)), np.array([0.0, np.nan]), r"b contains NaN or inf"),
        (np.array([[0.0, 1.0], [0.5, 0.0]]), np.zeros(2), r"W must be symmetric: max \|W - W\^T\| = 0.5"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), np.zeros(2), r"W must have a zero diagonal"),
        ([["a", "b"], ["c", "d"]], np.zeros(2), r"W must be a numeric"),
    ],
)
def test_bad_bm_raises(W, b, match):
    with pytest.raises(ValueError, match=match):
        BoltzmannMachine(W=W, b=b)


def test_bad_json_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json is not valid JSON"):
        BoltzmannMachine.from_json(bad)
    missing = tmp_path / "missing_b.json"
    missing.write_text(json.dumps({"W": [[0, 1], [1, 0]]}))
    with pytest.raises(ValueError, match=r"missing_b\.json: missing key\(s\) \['b'\]"):
        BoltzmannMachine.from_json(missing)
    asym = tmp_path / "asym.json"
    asym.write_text(json.dumps({"W": [[0, 1], [2, 0]], "b": [0, 0]}))
    with pytest.raises(ValueError, match=r"asym\.json: W must be symmetric"):
        BoltzmannMachine.from_json(asym)
    with pytest.raises(ValueError, match=r"cannot read"):
        BoltzmannMachine.from_json(tmp_path / "does_not_exist.json")


def test_too_many_or_too_few_units():
    with pytest.raises(ValueError, match=r"exact enumeration handles at most 20 units, got 25"):
        all_states(25)
    with pytest.raises(ValueError, match=r"n must be at least 1"):
        all_states(0)
    big = random_bm(MAX_EXACT_UNITS + 1, seed=0)
    with pytest.raises(ValueError, match=r"at most 20 units, got 21"):
        joint(big)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 10, "burn_in": -1}, "burn_in"),
        ({"n_samples": 10, "thin": 0}, "thin"),
    ],
)
def test_bad_gibbs_arguments(kwargs, match):
    bm = random_bm(3, seed=0)
    kwargs.setdefault("seed", 0)
    with pytest.raises(ValueError, match=match):
        gibbs_sample(bm, **kwargs)


def test_bad_random_bm_arguments():
    with pytest.raises(ValueError, match="n_units"):
        random_bm(0, seed=0)
    with pytest.raises(ValueError, match="weight_scale"):
        random_bm(3, seed=0, weight_scale=-1.0)
    with pytest.raises(ValueError, match="bias_scale"):
        random_bm(3, seed=0, bias_scale=np.nan)


def test_bad_state_arguments():
    with pytest.raises(ValueError, match="only 0 and 1"):
        states_to_indices(np.array([[0, 2]]))
    with pytest.raises(ValueError, match="idx must lie"):
        indices_to_states(np.array([8]), 3)
    with pytest.raises(ValueError, match="states must have 3 columns"):
        energies(random_bm(3, seed=0), np.zeros((2, 4)))


def test_block_diagonal_joint_is_the_product_of_the_blocks():
    from cortexsim.models.boltzmann import block_diagonal, block_offsets, joint, marginals, random_bm

    parts = [random_bm(2, seed=1), random_bm(3, seed=2)]
    whole = block_diagonal(parts)
    assert whole.n_units == 5 and list(block_offsets(parts)) == [0, 2]
    expected = np.kron(joint(parts[0]), joint(parts[1]))  # unit 0 is the most significant bit
    np.testing.assert_allclose(joint(whole), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(marginals(whole)[2:], marginals(parts[1]), rtol=1e-12)
