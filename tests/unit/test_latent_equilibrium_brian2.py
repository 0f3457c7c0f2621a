"""The Brian2 equations reproduce the numpy dynamics step for step (numpy code generation)."""

import numpy as np
import pytest

from cortexsim.models.latent_equilibrium import LatentEquilibrium, LEParameters
from cortexsim.models.layered import LayeredNetwork

pytest.importorskip("brian2")
from cortexsim.models.latent_equilibrium_brian2 import activation_expressions, simulate_brian2  # noqa: E402


@pytest.mark.parametrize("prospective", [True, False])
def test_brian2_matches_numpy_with_learning(prospective):
    net = LayeredNetwork.random([4, 5, 3, 2], seed=3, bias_scale=0.3)
    rng = np.random.default_rng(1)
    inputs = np.repeat(rng.uniform(0, 1, (4, 4)), 8, axis=0)
    targets = np.repeat(rng.uniform(0, 1, (4, 2)), 8, axis=0)
    targets[8:16] = np.nan  # one presentation without target
    params = LEParameters(tau=2.0, dt=0.2, beta=0.5, eta=0.5, eta_bias=0.3, prospective=prospective)
    res = simulate_brian2(net, params, inputs, targets, codegen_target="numpy")
    sim = LatentEquilibrium(net, params)
    outputs = []
    for x, t in zip(inputs, targets):
        sim.step(x, None if np.isnan(t).any() else t)
        outputs.append(sim.output_rates()[0])
    # same operations in the same order: agreement to round-off
    np.testing.assert_allclose(res["output_rates"], np.array(outputs), rtol=0, atol=1e-12)
    for a, b in zip(res["network"].weights + res["network"].biases, sim.weights + sim.biases):
        np.testing.assert_allclose(a, b[0], rtol=0, atol=1e-12)
    assert max(np.max(np.abs(a - b)) for a, b in zip(res["network"].weights, net.weights)) > 1e-2


def test_unknown_activation_and_error_mode_rejected():
    from cortexsim.models.layered import Activation

    with pytest.raises(ValueError, match="activation"):
        activation_expressions(Activation("step", np.sign, np.zeros_like))
    net = LayeredNetwork.random([2, 3, 2], seed=0)
    with pytest.raises(ValueError, match="errors"):
        simulate_brian2(net, LEParameters(errors="microcircuit"), np.zeros((2, 2)), None)


def test_brian2_rejects_non_explicit_schemes():
    net = LayeredNetwork.random([2, 3, 2], seed=0)
    for params in (LEParameters(error_iterations=2), LEParameters(error_relaxation=0.5),
                   LEParameters(eta_layer_factors=(2.0, 1.0))):
        with pytest.raises(ValueError, match="explicit scheme"):
            simulate_brian2(net, params, np.zeros((2, 2)), None)
