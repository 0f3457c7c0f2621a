"""Unit tests of cortexsim.models.cd_learning (pure numpy, fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cortexsim.models.boltzmann import BoltzmannMachine, all_states, exact_moments, gibbs_sample, joint, random_bm
from cortexsim.models.cd_learning import (LearningRateSchedule, MomentumOptimizer, bipartite_mask,
                                          block_diagonal_mask, block_gibbs, cd_gradient, check_binary_data,
                                          exact_cd_gradient, moments_from_distribution, moments_from_states)


def kl(p, q):
    return float(np.sum(p * np.log(p / q)))


def test_exact_cd_gradient_is_the_gradient_of_the_kl_divergence():
    """With exact moments the CD direction is -d D_KL(p* || p_model) / d(W_ij, b_i) (checked by finite differences)."""
    target, model = random_bm(4, seed=3), random_bm(4, seed=4)
    p_target = joint(target)
    grad_W, grad_b = exact_cd_gradient(model, p_target)
    h = 1e-6
    for i in range(4):
        b = np.array(model.b)
        b[i] += h
        up = kl(p_target, joint(BoltzmannMachine(model.W, b)))
        b[i] -= 2 * h
        down = kl(p_target, joint(BoltzmannMachine(model.W, b)))
        assert -(up - down) / (2 * h) == pytest.approx(grad_b[i], abs=1e-7)
    for i, j in [(0, 1), (0, 3), (1, 2), (2, 3)]:
        values = []
        for sign in (1, -1):
            W = np.array(model.W)
            W[i, j] += sign * h
            W[j, i] += sign * h
            values.append(kl(p_target, joint(BoltzmannMachine(W, model.b))))
        assert -(values[0] - values[1]) / (2 * h) == pytest.approx(grad_W[i, j], abs=1e-7)
    assert np.array_equal(grad_W, grad_W.T) and np.all(np.diag(grad_W) == 0)


def test_exact_cd_updates_converge_to_the_target():
    """Gradient ascent with exact moments reaches the target distribution (the learning rule is right)."""
    target = random_bm(4, seed=11)
    p_target = joint(target)
    W, b = np.zeros((4, 4)), np.zeros(4)
    optimizer = MomentumOptimizer.create(4, momentum=0.5)
    schedule = LearningRateSchedule(1.0, "constant")
    for t in range(3000):
        grad_W, grad_b = exact_cd_gradient(BoltzmannMachine(W, b), p_target)
        W, b = optimizer.step(W, b, grad_W, grad_b, schedule.rate(t))
    assert kl(p_target, joint(BoltzmannMachine(W, b))) < 1e-8
    np.testing.assert_allclose(W, target.W, atol=1e-3)
    np.testing.assert_allclose(b, target.b, atol=1e-3)


def test_sampled_cd_gradient_matches_exact_within_sampling_noise():
    """Model moments from Gibbs samples give the exact update direction up to sampling noise.

    Samples are thinned by 5 sweeps (nearly independent for this 5-unit BM); the standard error of a
    mean of binary variables is at most 0.5 / sqrt(n), so 5 standard errors bound the deviation."""
    target, model = random_bm(5, seed=21), random_bm(5, seed=22)
    n = 20000
    samples = gibbs_sample(model, n, seed=5, burn_in=100, thin=5)
    sampled = cd_gradient(moments_from_distribution(joint(target), 5), moments_from_states(samples))
    exact = exact_cd_gradient(model, joint(target))
    tolerance = 5 * 0.5 / np.sqrt(n)
    assert np.max(np.abs(sampled[0] - exact[0])) < tolerance
    assert np.max(np.abs(sampled[1] - exact[1])) < tolerance


def test_moments_from_states_and_distribution_agree():
    bm = random_bm(3, seed=1)
    p = joint(bm)
    mean, second = moments_from_distribution(p, 3)
    exact_mean, exact_second = exact_moments(bm)
    np.testing.assert_allclose(mean, exact_mean, atol=1e-14)
    np.testing.assert_allclose(second, exact_second, atol=1e-14)
    mean_w, second_w = moments_from_states(all_states(3), weights=p * 7.0)  # weights need not sum to 1
    np.testing.assert_allclose(mean_w, mean, atol=1e-14)
    np.testing.assert_allclose(second_w, second, atol=1e-14)


def test_moments_of_binary_states_are_exact_counts_over_m():
    """Binary states with equal weights (the float32 counting path) against integer counting: every
    moment is count / m exactly, correctly rounded; non-binary states (the float64 path) agree with
    the textbook sums. Catches a wrong normalisation, a transposed product or float32 rounding."""
    rng = np.random.default_rng(5)
    z = (rng.random((301, 7)) < np.linspace(0.1, 0.8, 7)).astype(np.uint8)  # asymmetric activities
    mean, second = moments_from_states(z)
    counts = z.astype(np.int64)
    np.testing.assert_array_equal(mean, counts.sum(axis=0) / 301)
    np.testing.assert_array_equal(second, (counts.T @ counts) / 301)
    weighted = moments_from_states(z, weights=np.ones(301))  # the general path, same moments
    np.testing.assert_allclose(weighted[0], mean, rtol=1e-14)
    np.testing.assert_allclose(weighted[1], second, rtol=1e-14)
    soft = rng.random((40, 3))  # not binary: plain float64 sums
    mean_soft, second_soft = moments_from_states(soft)
    np.testing.assert_allclose(mean_soft, soft.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(second_soft, soft.T @ soft / 40, rtol=1e-13)


def test_block_moments_equal_the_full_counts_inside_and_zero_outside():
    """Second moments per block (independent networks of unequal size) against integer counting of the
    full product: equal inside every block, zero outside; the means unchanged; non-binary states or
    weights with blocks refused. Catches a block placed at the wrong offset or a wrong normalisation."""
    rng = np.random.default_rng(11)
    z = (rng.random((257, 9)) < np.linspace(0.15, 0.85, 9)).astype(np.uint8)
    blocks = [slice(0, 4), slice(4, 5), slice(5, 9)]
    mean, second = moments_from_states(z, blocks=blocks)
    counts = z.astype(np.int64)
    full = (counts.T @ counts) / 257
    inside = np.zeros((9, 9), dtype=bool)
    for block in blocks:
        inside[block, block] = True
    np.testing.assert_array_equal(second[inside], full[inside])
    assert np.all(second[~inside] == 0.0) and np.all(full[~inside] > 0.0)
    np.testing.assert_array_equal(mean, counts.sum(axis=0) / 257)
    with pytest.raises(ValueError, match="blocks"):
        moments_from_states(rng.random((5, 9)), blocks=blocks)
    with pytest.raises(ValueError, match="blocks"):
        moments_from_states(z, weights=np.ones(257), blocks=blocks)


def test_diagonal_blocks_moments_and_update_equal_the_dense_path():
    """moments_from_states(blocks, dense=False) (DiagonalBlocks, what ClampedStatistics hands the block
    update) against the dense block moments and the full integer counts; uint8 states against the same
    states as floats; CDUpdate(blocks) fed DiagonalBlocks moments against the same update fed dense
    moments: parameters and velocities bit for bit. A block read at the wrong offset or a gradient
    densified with wrong entries fail it."""
    from cortexsim.models.cd_learning import CDUpdate, DiagonalBlocks

    rng = np.random.default_rng(12)
    sizes = [4, 1, 5]
    n = sum(sizes)
    edges = np.cumsum([0] + sizes)
    blocks = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
    z = (rng.random((300, n)) < np.linspace(0.1, 0.9, n)).astype(np.uint8)
    mean_dense, dense = moments_from_states(z, blocks=blocks)
    mean_float, dense_float = moments_from_states(z.astype(float), blocks=blocks)
    mean_lazy, lazy = moments_from_states(z, blocks=blocks, dense=False)
    assert isinstance(lazy, DiagonalBlocks) and lazy.shape == (n, n)
    np.testing.assert_array_equal(np.asarray(lazy), dense)
    np.testing.assert_array_equal(dense, dense_float)
    np.testing.assert_array_equal(mean_lazy, mean_dense)
    np.testing.assert_array_equal(mean_dense, mean_float)
    counts = z.astype(np.int64)
    for s in blocks:
        np.testing.assert_array_equal(lazy[s, s], (counts[:, s].T @ counts[:, s]) / 300)
    np.testing.assert_array_equal(lazy[0:2, 5:7], dense[0:2, 5:7])   # any other index: the dense matrix
    mask = np.zeros((n, n))
    for s, size in zip(blocks, sizes):
        mask[s, s] = 1.0 - np.eye(size)
    updates = [CDUpdate(LearningRateSchedule(0.4, "constant"), MomentumOptimizer.create(n, 0.5, 0.01), mask,
                        blocks=blocks) for _ in range(2)]
    params = [(np.zeros((n, n)), np.zeros(n))] * 2
    for iteration in range(3):
        data = moments_from_states(z[rng.integers(0, 300, 40)], blocks=blocks, dense=False)
        model = moments_from_states(z[rng.integers(0, 300, 40)], blocks=blocks, dense=False)
        dense_args = [(m, np.asarray(second)) for m, second in (data, model)]
        params = [updates[0](iteration, *params[0], data, model), updates[1](iteration, *params[1], *dense_args)]
        assert np.array_equal(params[0][0], params[1][0]) and np.array_equal(params[0][1], params[1][1])
        assert np.array_equal(updates[0].optimizer.velocity_W, updates[1].optimizer.velocity_W)
    assert np.any(params[0][0] != 0)
    with pytest.raises(ValueError, match="non-overlapping"):
        DiagonalBlocks([slice(0, 3), slice(2, 4)], [np.zeros((3, 3)), np.zeros((2, 2))], 4)
    with pytest.raises(ValueError, match="shape"):
        DiagonalBlocks([slice(0, 3)], [np.zeros((2, 2))], 4)
    with pytest.raises(ValueError, match="blocks"):
        moments_from_states(np.full((5, n), 2, dtype=np.uint8), blocks=blocks)


def test_learning_rate_schedules():
    inverse = LearningRateSchedule(0.5, "inverse", tau=100)
    assert inverse.rate(0) == 0.5
    assert inverse.rate(100) == pytest.approx(0.25)
    assert LearningRateSchedule(0.3, "constant").rate(1000) == 0.3


@pytest.mark.parametrize("eta0", [0.0, -0.1, float("nan"), float("inf")])
def test_learning_rate_must_be_positive(eta0):
    with pytest.raises(ValueError, match="learning rate"):
        LearningRateSchedule(eta0)


def test_optimizer_step_rejects_non_positive_learning_rate():
    optimizer = MomentumOptimizer.create(3)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.step(np.zeros((3, 3)), np.zeros(3), np.zeros((3, 3)), np.zeros(3), 0.0)


def test_optimizer_momentum_mask_and_state_round_trip():
    optimizer = MomentumOptimizer.create(3, momentum=0.5, weight_decay=0.1)
    mask = block_diagonal_mask([2, 1])
    grad_W = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    grad_b = np.array([1.0, -1.0, 0.5])
    W, b = optimizer.step(np.zeros((3, 3)), np.zeros(3), grad_W, grad_b, 0.1, mask)
    assert W[0, 1] == pytest.approx(0.1) and W[0, 2] == 0.0 and W[1, 2] == 0.0
    saved = optimizer.to_dict()
    W2, b2 = optimizer.step(W, b, grad_W, grad_b, 0.1, mask)
    # velocity = 0.5 * 0.1 + 0.1 * (1 - 0.1 * 0.1) for W[0, 1]
    assert W2[0, 1] == pytest.approx(0.1 + 0.05 + 0.1 * (1.0 - 0.01))
    restored = MomentumOptimizer.from_dict(saved)
    W3, b3 = restored.step(W, b, grad_W, grad_b, 0.1, mask)
    assert np.array_equal(W2, W3) and np.array_equal(b2, b3)
    assert np.array_equal(W3, W3.T) and np.all(np.diag(W3) == 0)


@pytest.mark.parametrize("momentum", [-0.1, 1.0])
def test_optimizer_rejects_bad_momentum(momentum):
    with pytest.raises(ValueError, match="momentum"):
        MomentumOptimizer.create(3, momentum=momentum)


def test_check_binary_data_errors():
    good = np.array([[0, 1, 1], [1, 0, 0]])
    assert check_binary_data(good, 3).dtype == float
    with pytest.raises(ValueError, match="3 columns"):
        check_binary_data(np.zeros((2, 4)), 3)
    with pytest.raises(ValueError, match="binary"):
        check_binary_data(np.array([[0, 0.5, 1]]), 3)
    with pytest.raises(ValueError, match="2-D"):
        check_binary_data(np.zeros(3), 3)
    with pytest.raises(ValueError, match="NaN"):
        check_binary_data(np.array([[0, np.nan, 1]]), 3)


def test_masks():
    mask = bipartite_mask(2, 3)
    assert mask.shape == (5, 5) and mask[:2, :2].sum() == 0 and mask[2:, 2:].sum() == 0 and mask[0, 4] == 1
    block = block_diagonal_mask([2, 3])
    assert block[0, 1] == 1 and block[0, 2] == 0 and np.all(np.diag(block) == 0)
    with pytest.raises(ValueError):
        block_diagonal_mask([])


def test_block_gibbs_samples_the_rbm_distribution_and_keeps_clamps():
    """Exact block Gibbs on a 2+2 RBM: visible marginals match enumeration within 5 standard errors."""
    rng = np.random.default_rng(0)
    W_vh = np.array([[1.0, -1.5], [0.5, 2.0]])
    b_v, b_h = np.array([0.2, -0.3]), np.array([-0.5, 0.4])
    W = np.zeros((4, 4))
    W[:2, 2:], W[2:, :2] = W_vh, W_vh.T
    p = joint(BoltzmannMachine(W, np.concatenate([b_v, b_h])))
    exact_visible = p @ all_states(4)[:, :2].astype(float)
    chains = 4000
    _, v_mean, _ = block_gibbs(W_vh, b_v, b_h, rng.integers(0, 2, (chains, 2)), 30, rng, record_from=10)
    # Each chain's mean over 20 sweeps is bounded in [0, 1]; its spread over chains gives the error.
    stderr = v_mean.std(axis=0) / np.sqrt(chains)
    assert np.all(np.abs(v_mean.mean(axis=0) - exact_visible) < 5 * stderr + 1e-3)
    clamp = np.array([True, False])
    start = np.column_stack([np.ones(chains), np.zeros(chains)])
    v_last, v_mean, _ = block_gibbs(W_vh, b_v, b_h, start, 5, rng, clamp)
    assert np.all(v_last[:, 0] == 1) and np.all(v_mean[:, 0] == 1)


def test_block_update_equals_the_full_update_of_a_block_diagonal_mask():
    """CDUpdate(blocks=...) (the ensembles' per-network path) against the full-matrix update: three networks
    of different sizes, bipartite masks inside the blocks, momentum, weight decay, several iterations and
    moments that are NOT zero outside the blocks (the mask must ignore them on both paths). Parameters
    and velocities bit for bit, the gradient norm to float precision; a step on the wrong block, a
    missing transpose or the velocity kept outside the blocks fail it."""
    from cortexsim.models.cd_learning import (CDUpdate, IterateAverage, LearningRateSchedule, MomentumOptimizer,
                                              bipartite_mask)

    sizes, rng = [5, 7, 4], np.random.default_rng(3)
    n = sum(sizes)
    edges = np.cumsum([0] + sizes)
    blocks = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
    mask = np.zeros((n, n))
    for s, size in zip(blocks, sizes):
        mask[s, s] = bipartite_mask(2, size - 2)
    updates = [CDUpdate(LearningRateSchedule(0.3, "inverse", 5.0), MomentumOptimizer.create(n, 0.6, 0.02), mask,
                        IterateAverage(6, 0.5), blocks=b) for b in (None, blocks)]
    W0 = rng.normal(0, 0.3, (n, n)) * mask
    W0 = W0 + W0.T
    params = [(W0.copy(), rng.normal(0, 0.5, n))] * 2
    for iteration in range(6):
        moments = []
        for _ in range(2):
            second = rng.random((n, n))
            moments.append((rng.random(n), second + second.T))
        params = [update(iteration, W, b, *moments) for update, (W, b) in zip(updates, params)]
        (W_full, b_full), (W_block, b_block) = params
        assert np.array_equal(W_full, W_block) and np.array_equal(b_full, b_block)
        assert np.array_equal(updates[0].optimizer.velocity_W, updates[1].optimizer.velocity_W)
        assert updates[1].last_gradient_norm == pytest.approx(updates[0].last_gradient_norm, rel=1e-12)
    assert np.any(W_full != W0) and np.array_equal(W_full[mask == 0], W0[mask == 0])
    assert all(np.array_equal(a, c) for a, c in zip(updates[0].result(), updates[1].result()))
    with pytest.raises(ValueError, match="zero outside the blocks"):
        CDUpdate(LearningRateSchedule(0.3, "constant"), MomentumOptimizer.create(n), np.ones((n, n)),
                 blocks=blocks)
    with pytest.raises(ValueError, match="blocks need a mask"):
        CDUpdate(LearningRateSchedule(0.3, "constant"), MomentumOptimizer.create(n), None, blocks=blocks)


def test_encoded_arrays_and_diagonal_blocks_round_trip_exactly():
    """encode_array / DiagonalBlocks.to_dict: the same bits back (values that are not short decimals, zeros,
    negative zero, tiny and huge numbers); a corrupt or foreign value gives a clear error; from_dense refuses a
    matrix with entries outside the blocks and keeps its blocks otherwise."""
    from cortexsim.models.cd_learning import DiagonalBlocks, matrix_from_json, matrix_to_json
    from cortexsim.results import decode_array, encode_array

    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0, 1, 20) / 3, [0.0, -0.0, 1e-300, -1e300, np.pi]]).reshape(5, 5)
    back = decode_array(json.loads(json.dumps(encode_array(values))))
    assert back.tobytes() == values.tobytes()
    with pytest.raises(ValueError, match="encode_array"):
        decode_array([[1.0]])
    with pytest.raises(ValueError, match="corrupt"):
        decode_array({**encode_array(values), "data": "abc"})
    full = np.zeros((6, 6))
    full[:2, :2], full[2:, 2:] = values[:2, :2], values[1:, 1:]
    blocks = DiagonalBlocks.from_dense(full, [slice(0, 2), slice(2, 6)])
    assert np.array_equal(np.asarray(blocks), full)
    restored = matrix_from_json(json.loads(json.dumps(matrix_to_json(blocks))))
    assert isinstance(restored, DiagonalBlocks) and np.asarray(restored).tobytes() == full.tobytes()
    assert np.array_equal(matrix_from_json(matrix_to_json(full)), full)
    full[0, 4] = 1.0
    with pytest.raises(ValueError, match="outside the diagonal blocks"):
        DiagonalBlocks.from_dense(full, [slice(0, 2), slice(2, 6)])


def test_unit_on_probability_is_scipys_logistic_without_overflow():
    """Catches a sign error (1 - p), a missing factor 1/2 in the tanh form, and overflow warnings at large |x|."""
    import warnings

    from scipy.special import expit

    from cortexsim.models.cd_learning import unit_on_probability
    x = np.concatenate([np.linspace(-40.0, 40.0, 801), [-1000.0, 1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = unit_on_probability(x)
    np.testing.assert_allclose(p, expit(x), rtol=0, atol=1e-15)
