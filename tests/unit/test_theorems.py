"""Theorem checks of the Lagrangian dynamics against numpy backprop and finite differences."""

import numpy as np
import pytest

from cortexsim.analysis.theorems import (finite_difference_gradient, theorem1_residuals,
                                         theorem2_convergence, theorem2_relative_errors)
from cortexsim.models.latent_equilibrium import settle
from cortexsim.models.layered import LayeredNetwork, logistic, soft_relu, tanh

NETWORKS = [
    ([5, 8, 3], logistic()),
    ([4, 7, 6, 3], tanh()),
    ([6, 10, 5, 2], soft_relu()),
]


def sample(seed, n_in, n_out):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, n_in), rng.uniform(0, 1, n_out)


@pytest.mark.parametrize("k", range(len(NETWORKS)))
def test_backprop_matches_finite_differences(k):
    sizes, act = NETWORKS[k]
    net = LayeredNetwork.random(sizes, seed=10 + k, hidden=act, bias_scale=0.3)
    x, t = sample(k, sizes[0], sizes[-1])
    gw, gb = net.backprop(x, t)
    fw, fb = finite_difference_gradient(net, x, t, eps=1e-6)
    for a, b in zip(gw + gb, fw + fb):
        # central differences: error ~ eps^2 * C''' + 1e-16 / eps ~ 1e-10 absolute
        np.testing.assert_allclose(a, b, atol=1e-8)


@pytest.mark.parametrize("k", range(len(NETWORKS)))
def test_theorem1_errors_are_backpropagated_at_equilibrium(k):
    sizes, act = NETWORKS[k]
    net = LayeredNetwork.random(sizes, seed=20 + k, hidden=act, bias_scale=0.3)
    x, t = sample(20 + k, sizes[0], sizes[-1])
    eq = settle(net, x, t, beta=0.2)
    assert max(theorem1_residuals(net, eq)) < 1e-10
    assert min(np.linalg.norm(e) for e in eq["errors"]) > 1e-4  # the check is not about zeros


@pytest.mark.parametrize("k", range(len(NETWORKS)))
def test_theorem2_errors_become_gradients_as_beta_vanishes(k):
    sizes, act = NETWORKS[k]
    net = LayeredNetwork.random(sizes, seed=30 + k, hidden=act, bias_scale=0.3)
    x, t = sample(30 + k, sizes[0], sizes[-1])
    betas = [1e-1, 1e-2, 1e-3, 1e-4]
    errors = theorem2_convergence(net, x, t, betas)
    assert errors[-1] < 1e-3
    assert np.all(np.diff(errors) < 0)
    # first order in beta: each decade of beta gains about a decade of accuracy
    assert errors[-1] < 0.05 * errors[0]


def test_theorem2_rejects_nonpositive_beta():
    net = LayeredNetwork.random([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="beta"):
        theorem2_relative_errors(net, np.zeros(3), np.zeros(2), beta=0.0)
