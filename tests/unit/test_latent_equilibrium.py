"""Unit tests of the numpy Latent Equilibrium / Lagrangian dynamics (deterministic, < 5 s)."""

import numpy as np
import pytest

from cortexsim.models.latent_equilibrium import LatentEquilibrium, LEParameters, energy, settle
from cortexsim.models.layered import LayeredNetwork, logistic, tanh


def small_net(seed=0, sizes=(4, 6, 5, 3)):
    return LayeredNetwork.random(list(sizes), seed=seed, hidden=logistic(), bias_scale=0.3)


def test_parameters_reject_bad_values():
    with pytest.raises(ValueError, match="tau"):
        LEParameters(tau=0.0)
    with pytest.raises(ValueError, match="dt"):
        LEParameters(tau=1.0, dt=2.0)
    with pytest.raises(ValueError, match="errors"):
        LEParameters(errors="apical")
    with pytest.raises(ValueError, match="interneuron_nudging"):
        LEParameters(interneuron_nudging=1.0)
    with pytest.raises(ValueError, match="eta"):
        LEParameters(eta=-1.0)


def test_bad_input_shape_raises():
    sim = LatentEquilibrium(small_net(), LEParameters())
    with pytest.raises(ValueError, match="x must have shape"):
        sim.step(np.zeros(5))
    with pytest.raises(ValueError, match="target must have shape"):
        sim.step(np.zeros(4), np.zeros(2))


def test_prospective_rates_follow_input_in_one_step_for_any_tau():
    net = small_net()
    x = np.random.default_rng(1).uniform(0, 1, 4)
    for tau in (1.0, 10.0, 1000.0):
        sim = LatentEquilibrium(net, LEParameters(tau=tau, dt=0.1))
        sim.step(x)
        np.testing.assert_allclose(sim.output_rates()[0], net.predict(x), rtol=0, atol=1e-14)


def test_original_dynamics_lag_then_settle():
    net = small_net()
    x = np.random.default_rng(1).uniform(0, 1, 4)
    sim = LatentEquilibrium(net, LEParameters(tau=10.0, dt=0.1, prospective=False))
    sim.step(x)
    # after 0.1 ms = 0.01 tau the output has barely moved from rest (phi(0) in the hidden layer)
    assert np.max(np.abs(sim.output_rates()[0] - net.predict(x))) > 0.1
    sim.present(x, None, 2000)  # 20 tau
    np.testing.assert_allclose(sim.output_rates()[0], net.predict(x), atol=1e-6)


def test_learning_is_identical_for_tau_1_and_100_with_prospective_readout():
    net = small_net()
    rng = np.random.default_rng(2)
    xs, ts = rng.uniform(0, 1, (5, 4)), rng.uniform(0, 1, (5, 3))
    finals = []
    for tau in (1.0, 100.0):
        sim = LatentEquilibrium(net, LEParameters(tau=tau, dt=0.05, beta=0.1, eta=0.5, eta_bias=0.5))
        for x, t in zip(xs, ts):
            sim.present(x, t, 10)
        finals.append(sim.weights)
    for a, b in zip(*finals):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(finals[0][0], net.weights[0])


def test_batched_networks_match_single_runs():
    nets = [small_net(0), small_net(1)]
    rng = np.random.default_rng(3)
    x, t = rng.uniform(0, 1, (2, 4)), rng.uniform(0, 1, (2, 3))
    params = LEParameters(tau=5.0, dt=0.5, beta=0.2, eta=0.3, eta_bias=0.1, prospective=False)
    both = LatentEquilibrium(nets, params)
    both.present(x, t, 20)
    for s, net in enumerate(nets):
        one = LatentEquilibrium(net, params)
        one.present(x[s], t[s], 20)
        np.testing.assert_allclose(both.weights[1][s], one.weights[1][0], rtol=1e-13, atol=1e-15)


def test_equilibrium_is_stationary_point_of_energy():
    net = LayeredNetwork.random([4, 6, 5, 3], seed=4, hidden=tanh(), bias_scale=0.3)
    rng = np.random.default_rng(4)
    x, t = rng.uniform(0, 1, 4), rng.uniform(0, 1, 3)
    beta = 0.3
    eq = settle(net, x, t, beta)
    v = [a.copy() for a in eq["potentials"]]
    h = 1e-6
    grad = []
    for layer in v:
        for k in range(layer.size):
            keep = layer[k]
            layer[k] = keep + h
            plus = energy(net, x, v, t, beta)
            layer[k] = keep - h
            minus = energy(net, x, v, t, beta)
            layer[k] = keep
            grad.append((plus - minus) / (2 * h))
    # central differences of an O(1) energy: truncation ~h^2, round-off ~1e-16/h = 1e-10
    assert np.max(np.abs(grad)) < 1e-8
    # and the errors are nonzero (the target really nudges the network)
    assert np.linalg.norm(eq["errors"][0]) > 1e-3


def test_microcircuit_in_self_predicting_state_reproduces_direct_errors():
    net = small_net(5)
    rng = np.random.default_rng(5)
    direct = LatentEquilibrium(net, LEParameters(beta=0.2, prospective=True))
    micro = LatentEquilibrium(net, LEParameters(beta=0.2, prospective=True, errors="microcircuit",
                                                interneuron_nudging=0.0))
    for _ in range(5):
        x, t = rng.uniform(0, 1, 4), rng.uniform(0, 1, 3)
        for _ in range(4):
            direct.step(x, t, learn=False)
            micro.step(x, t, learn=False)
            for a, b in zip(direct.errors, micro.errors):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert np.linalg.norm(direct.errors[0]) > 1e-4


def test_interneuron_plasticity_silences_apical_errors_without_target():
    net = LayeredNetwork.random([4, 8, 3], seed=6, hidden=logistic(), bias_scale=0.3)
    params = LEParameters(dt=1.0, beta=0.1, errors="microcircuit", interneuron_nudging=0.5,
                          eta_ip=0.5, eta_pi=0.5, feedback="random", feedback_seed=1)
    sim = LatentEquilibrium(net, params)
    rng = np.random.default_rng(6)
    sim.w_ip[0] = rng.normal(0, 0.5, sim.w_ip[0].shape)
    sim.w_pi[0] = rng.normal(0, 0.5, sim.w_pi[0].shape)
    probe = rng.uniform(0, 1, (50, 4))

    def mean_hidden_error():
        total = 0.0
        for x in probe:
            sim.present(x, None, 3, learn=False)
            total += np.linalg.norm(sim.errors[0])
        return total / len(probe)

    start_error = mean_hidden_error()
    start_ip = np.linalg.norm(sim.w_ip[0][0] - net.weights[1])
    for x in rng.uniform(0, 1, (1000, 4)):  # no target: only the interneuron circuit learns (eta = 0)
        sim.present(x, None, 2)
    # deterministic run; measured ~15x reduction of the apical error, demand 5x
    assert mean_hidden_error() < 0.2 * start_error
    assert np.linalg.norm(sim.w_ip[0][0] - net.weights[1]) < 0.8 * start_ip


def test_dynamics_reach_the_settled_equilibrium():
    net = small_net(7)
    rng = np.random.default_rng(7)
    x, t = rng.uniform(0, 1, 4), rng.uniform(0, 1, 3)
    eq = settle(net, x, t, beta=0.05)
    for prospective, n_steps in ((True, 50), (False, 3000)):
        sim = LatentEquilibrium(net, LEParameters(tau=1.0, dt=0.05 if not prospective else 1.0, beta=0.05,
                                                  prospective=prospective))
        sim.present(x, t, n_steps, learn=False)
        for a, b in zip(sim.readout_potentials(), eq["potentials"]):
            np.testing.assert_allclose(a[0], b, atol=1e-9)


def test_error_iterations_solve_the_equilibrium_within_one_step():
    net = small_net(7)
    rng = np.random.default_rng(7)
    x, t = rng.uniform(0, 1, 4), rng.uniform(0, 1, 3)
    eq = settle(net, x, t, beta=0.5)

    def gap(iterations, relaxation):
        sim = LatentEquilibrium(net, LEParameters(tau=10.0, dt=1.0, beta=0.5, error_iterations=iterations,
                                                  error_relaxation=relaxation))
        sim.step(x, t, learn=False)
        return max(np.max(np.abs(a[0] - b)) for a, b in zip(sim.readout_potentials(), eq["potentials"]))

    # explicit scheme: one step from rest leaves the hidden errors one sweep behind
    assert gap(1, 1.0) > 1e-3
    # the relaxed sweep contracts (factor < 0.5 per sweep here), so 60 sweeps reach round-off
    assert gap(60, 0.7) < 1e-9


def test_error_iteration_parameters_validated():
    with pytest.raises(ValueError, match="error_iterations"):
        LEParameters(error_iterations=0)
    with pytest.raises(ValueError, match="error_relaxation"):
        LEParameters(error_relaxation=0.0)
    with pytest.raises(ValueError, match="error_relaxation"):
        LEParameters(error_relaxation=1.5)


def test_eta_layer_factors_scale_each_layers_update():
    net = small_net(2)
    rng = np.random.default_rng(2)
    x, t = rng.uniform(0, 1, 4), rng.uniform(0, 1, 3)

    def changes(factors):
        sim = LatentEquilibrium(net, LEParameters(tau=10.0, dt=1.0, beta=0.5, eta=0.1, eta_bias=0.1,
                                                  eta_layer_factors=factors))
        sim.present(x, t, 1)
        return [w[0] - w0 for w, w0 in zip(sim.weights + sim.biases, net.weights + net.biases)]

    base, scaled = changes(()), changes((2.0,) + (1.0,) * (len(net.weights) - 1))
    assert np.max(np.abs(base[0])) > 1e-6
    # one step: errors are computed before the weights change, so the first layer's update is exactly
    # doubled and the other layers' updates are unchanged (round-off only)
    np.testing.assert_allclose(scaled[0], 2 * base[0], rtol=1e-12, atol=1e-15)
    for a, b in zip(scaled[1:len(net.weights)], base[1:len(net.weights)]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="eta_layer_factors"):
        LatentEquilibrium(net, LEParameters(eta_layer_factors=(1.0,)))
    with pytest.raises(ValueError, match="eta_layer_factors"):
        LEParameters(eta_layer_factors=(-1.0, 1.0))


def test_shared_copies_run_like_separate_networks_and_sum_their_plasticity():
    from cortexsim.models.latent_equilibrium import LatentEquilibrium, LEParameters
    from cortexsim.models.layered import LayeredNetwork, hard_sigmoid, linear

    net = LayeredNetwork.random([5, 7, 3], seed=4, hidden=hard_sigmoid(), output=linear(), bias_scale=0.3)
    params = LEParameters(tau=10.0, dt=0.1, beta=0.2, eta=0.05, eta_bias=0.03)
    rng = np.random.default_rng(5)
    x, t = rng.uniform(0, 1, (3, 5)), rng.uniform(0, 1, (3, 3))
    shared = LatentEquilibrium(net, params, copies=3)
    separate = LatentEquilibrium([net, net, net], params)
    for _ in range(3):                                   # without plasticity: identical neurons
        shared.step(x, t, learn=False)
        separate.step(x, t, learn=False)
    for a, b in zip(shared.rates(), separate.rates()):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    shared = LatentEquilibrium(net, params, copies=3)
    separate = LatentEquilibrium([net, net, net], params)
    shared.step(x, t)
    separate.step(x, t)
    for l in range(2):                                   # one step: the shared change is the sum of the three
        change = separate.weights[l] - net.weights[l][None]
        np.testing.assert_allclose(shared.weights[l][0] - net.weights[l], change.sum(axis=0), rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(shared.biases[l][0] - net.biases[l],
                                   (separate.biases[l] - net.biases[l][None]).sum(axis=0), rtol=1e-10, atol=1e-15)
    assert np.abs(shared.weights[0][0] - net.weights[0]).max() > 1e-6
    with pytest.raises(ValueError, match="copies"):
        LatentEquilibrium([net, net], params, copies=2)
