"""The batched full-dynamics microcircuit against the numpy twin (step by step) and the steady state."""

import numpy as np
import pytest

from cortexsim.models.layered import LayeredNetwork, linear, logistic
from cortexsim.models.microcircuit.batched import BatchedMicrocircuit
from cortexsim.models.microcircuit.numpy_twin import NumpyMicrocircuit
from cortexsim.models.microcircuit.parameters import (MicrocircuitParams, MicrocircuitWeights,
                                                      self_predicting_weights)
from cortexsim.models.microcircuit.steady_state import steady_state

SIZES = [5, 7, 6, 3]     # two hidden layers, all sizes different so transposes show


def make_weights(seed=1):
    net = LayeredNetwork.random(SIZES, seed=seed, hidden=logistic(), output=linear(), bias_scale=0.3)
    return MicrocircuitWeights.from_network(net, seed=seed + 50)


def rates(topdown):
    return dict(eta_up=(3e-2, 2e-2, 1e-2), eta_ip=(2e-2, 1e-2), eta_pi=(3e-2, 2e-2),
                eta_down=(1e-2, 2e-2) if topdown == "learned" else (), topdown=topdown, tau_w=3.0)


@pytest.mark.parametrize("topdown", ["fixed", "transposed", "learned"])
def test_one_copy_follows_the_numpy_twin_step_by_step(topdown):
    params = MicrocircuitParams(**rates(topdown))
    weights = make_weights()
    rng = np.random.default_rng(2)
    xs, targets = rng.uniform(0, 1, (3, SIZES[0])), rng.uniform(-0.5, 0.5, (3, SIZES[-1]))
    twin = NumpyMicrocircuit(weights, params)
    batched = BatchedMicrocircuit(weights, params, copies=1)
    for x, t in zip(xs, targets):
        for target in (None, t):                      # a free and a nudged phase per pattern
            for _ in range(40):
                twin.step(x, target)
                batched.step(x[None, :], None if target is None else t[None, :])
    got, want = batched.weights(), twin.weights()
    for name in ("W_up", "b_up", "W_down", "W_IP", "b_IP", "W_PI"):
        for a, b in zip(getattr(got, name), getattr(want, name)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)
    pot = twin.potentials()
    for a, b in zip(batched.u + batched.u_I, pot["u"] + pot["u_I"]):
        np.testing.assert_allclose(a[0], b, rtol=1e-10, atol=1e-12)
    # the weights did move: the comparison is not between two unchanged copies
    assert np.max(np.abs(got.W_up[1] - weights.W_up[1])) > 1e-4


def test_lateral_gate_matches_the_twins_free_phase_plasticity():
    params = MicrocircuitParams(**rates("fixed"), interneuron_plasticity="free_phase")
    weights = make_weights(3)
    rng = np.random.default_rng(4)
    x, t = rng.uniform(0, 1, SIZES[0]), rng.uniform(-0.5, 0.5, SIZES[-1])
    twin = NumpyMicrocircuit(weights, params)
    batched = BatchedMicrocircuit(weights, params, copies=1)
    for target in (None, t, None):
        batched.set_gates(1.0, 0.0 if target is not None else 1.0)
        for _ in range(30):
            twin.step(x, target)
            batched.step(x[None, :], None if target is None else t[None, :])
    for a, b in zip(batched.weights().W_PI + batched.weights().W_IP, twin.weights().W_PI + twin.weights().W_IP):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_copies_run_independently_and_their_signals_add_up():
    params = MicrocircuitParams(**rates("fixed"))
    weights = make_weights(5)
    rng = np.random.default_rng(6)
    xs, ts = rng.uniform(0, 1, (3, SIZES[0])), rng.uniform(-0.5, 0.5, (3, SIZES[-1]))
    batched = BatchedMicrocircuit(weights, params, copies=3)
    batched.step(xs, ts)
    summed = None
    for b in range(3):
        single = BatchedMicrocircuit(weights, params, copies=1)
        single.step(xs[b:b + 1], ts[b:b + 1])
        np.testing.assert_allclose(batched.u[1][b], single.u[1][0], rtol=1e-12)
        f = single.filters()["W_up"][0]
        summed = f if summed is None else summed + f
    np.testing.assert_allclose(batched.filters()["W_up"][0], summed, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("readout,steps", [("prospective", 60), ("membrane", 600)])
def test_both_readouts_settle_on_the_steady_state_fixed_point(readout, steps):
    params = MicrocircuitParams(g_som=0.5)
    weights = make_weights(7)                          # random lateral weights: apical potentials are not 0
    rng = np.random.default_rng(8)
    x, t = rng.uniform(0, 1, (2, SIZES[0])), rng.uniform(-0.5, 0.5, (2, SIZES[-1]))
    model = BatchedMicrocircuit(weights, params, copies=2, readout=readout)
    model.present(x, t, steps)
    fixed = steady_state(weights, params, x, t, tol=1e-13)
    for a, b in zip(model.u + model.u_I, fixed.u + fixed.u_I):
        np.testing.assert_allclose(a, b, atol=1e-8)


def test_prospective_readout_reaches_the_output_in_one_step_per_layer():
    # membrane read-out needs ~ 1 / g_tot = 0.5 ms per layer to follow a new input; the prospective one
    # passes it on within a step (apical inputs are zero in the self-predicting state without target)
    params = MicrocircuitParams()
    weights = self_predicting_weights(make_weights(9), params)
    x = np.random.default_rng(10).uniform(0, 1, (1, SIZES[0]))
    want = steady_state(weights, params, x, None, tol=1e-13).u[-1]
    fast = BatchedMicrocircuit(weights, params, copies=1, readout="prospective")
    slow = BatchedMicrocircuit(weights, params, copies=1, readout="membrane")
    fast.step(x)
    for _ in range(3):
        slow.step(x)
    np.testing.assert_allclose(fast.output_potentials(), want, atol=1e-12)
    assert np.max(np.abs(slow.output_potentials() - want)) > 1e-2


def test_float32_weights_stay_float32_and_bad_input_is_named():
    params = MicrocircuitParams()
    w = make_weights()
    w32 = MicrocircuitWeights(*[[a.astype(np.float32) for a in getattr(w, n)] for n in
                                ("W_up", "b_up", "W_down", "W_IP", "b_IP", "W_PI")], hidden=w.hidden, output=w.output)
    model = BatchedMicrocircuit(w32, params, copies=2)
    model.step(np.zeros((2, SIZES[0]), np.float32))
    assert model.u[0].dtype == np.float32 and model.weights().W_IP[0].dtype == np.float32
    with pytest.raises(ValueError, match=r"x must have shape \(2, 5\)"):
        model.step(np.zeros((3, SIZES[0])))
    with pytest.raises(ValueError, match="copies must be"):
        BatchedMicrocircuit(w, params, copies=0)
    with pytest.raises(ValueError, match="noise must be 0"):
        BatchedMicrocircuit(w, MicrocircuitParams(noise=0.1), copies=1, readout="prospective")


def test_batch_gradients_equal_summed_per_sample_backprop_and_finite_differences():
    net = LayeredNetwork.random([4, 6, 5, 3], seed=11, hidden=logistic(), output=linear(), bias_scale=0.5)
    rng = np.random.default_rng(12)
    x, t = rng.uniform(0, 1, (7, 4)), rng.uniform(-1, 1, (7, 3))
    gw, gb = net.batch_gradients(x, t)
    sums = [net.backprop(xi, ti) for xi, ti in zip(x, t)]
    for l in range(3):
        np.testing.assert_allclose(gw[l], sum(s[0][l] for s in sums), rtol=1e-10)
        np.testing.assert_allclose(gb[l], sum(s[1][l] for s in sums), rtol=1e-10)
    # central finite differences of the summed cost on two entries (independent of backprop)
    for l, (i, j) in ((0, (2, 1)), (2, (1, 4))):
        h = 1e-6
        plus, minus = net.copy(), net.copy()
        plus.weights[l][i, j] += h
        minus.weights[l][i, j] -= h
        fd = 7 * (plus.cost(x, t) - minus.cost(x, t)) / (2 * h)
        assert gw[l][i, j] == pytest.approx(fd, rel=1e-6)


def test_saved_state_continues_exactly():
    params = MicrocircuitParams(**rates("learned"))
    rng = np.random.default_rng(13)
    x, t = rng.uniform(0, 1, (2, SIZES[0])), rng.uniform(-0.5, 0.5, (2, SIZES[-1]))
    whole = BatchedMicrocircuit(make_weights(), params, copies=2, readout="prospective")
    first = BatchedMicrocircuit(make_weights(), params, copies=2, readout="prospective")
    whole.present(x, t, 25)
    first.present(x, t, 10)
    resumed = BatchedMicrocircuit(make_weights(), params, copies=2, readout="prospective")
    resumed.load_state({k: v.copy() for k, v in first.state_arrays().items()})
    resumed.present(x, t, 15)
    for a, b in zip(resumed.weights().W_down + resumed.u, whole.weights().W_down + whole.u):
        np.testing.assert_array_equal(a, b)


def test_gates_scale_the_signal_and_a_closed_gate_only_decays_the_filters():
    # hand computation of one Euler step of the plasticity: W += dt eta Delta (old Delta), then
    # Delta = (1 - dt / tau_w) Delta + dt / tau_w * gate * signal
    params = MicrocircuitParams(**rates("learned"))
    rng = np.random.default_rng(14)
    x, t = rng.uniform(0, 1, (2, SIZES[0])), rng.uniform(-0.5, 0.5, (2, SIZES[-1]))
    model = BatchedMicrocircuit(make_weights(), params, copies=2)
    model.present(x, t, 5)                          # nonzero filters
    before_w, before_f = model.weights(), model.filters()
    model.set_gates(0.0, 0.0)
    model.step(x, t)
    keep, dt = 1 - params.dt / params.tau_w, params.dt
    for name, eta in (("W_up", params.eta_up), ("W_IP", params.eta_ip), ("W_PI", params.eta_pi),
                      ("W_down", params.eta_down)):
        for l, (f_old, f_new) in enumerate(zip(before_f[name], model.filters()[name])):
            np.testing.assert_allclose(f_new, keep * f_old, rtol=1e-12, err_msg=name)
            np.testing.assert_allclose(getattr(model.weights(), name)[l],
                                       getattr(before_w, name)[l] + dt * eta[l] * f_old, rtol=1e-12, atol=1e-15)
    # from zero filters a partly open gate puts that fraction of the open gate's signal into the filters
    half, full = (BatchedMicrocircuit(make_weights(), params, copies=2) for _ in range(2))
    for model in (half, full):
        model.set_gates(0.0, 0.0)
        model.present(x, t, 5)                      # potentials move away from 0, filters stay 0
        model.set_gates(1.0, 1.0)
    half.set_gates(0.5, 0.25)
    half.step(x, t)
    full.step(x, t)
    for name, factor in (("W_up", 0.5), ("b_up", 0.5), ("W_IP", 0.25), ("b_IP", 0.25), ("W_PI", 0.25),
                         ("W_down", 0.25)):
        for a, b in zip(half.filters()[name], full.filters()[name]):
            assert np.max(np.abs(b)) > 1e-6
            np.testing.assert_allclose(a, factor * b, rtol=1e-10, atol=1e-16, err_msg=name)
