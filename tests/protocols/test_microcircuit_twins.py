"""The Brian2 equations and the numpy twin integrate the same microcircuit identically."""

import numpy as np
import pytest

pytest.importorskip("brian2")

from cortexsim.models.layered import LayeredNetwork, linear, logistic, soft_relu
from cortexsim.models.microcircuit.brian2_model import build_brian2_microcircuit
from cortexsim.models.microcircuit.numpy_twin import NumpyMicrocircuit
from cortexsim.models.microcircuit.parameters import MicrocircuitParams, MicrocircuitWeights

STEPS = 1000   # 4 patterns x 25 ms at dt = 0.1 ms


@pytest.mark.parametrize("topdown, hidden, lateral", [
    ("fixed", logistic(), "always"), ("transposed", logistic(), "always"),
    ("learned", soft_relu(gamma=0.5, beta=2.0, theta=0.2), "free_phase")])
def test_brian2_and_numpy_twin_agree_over_1000_steps(topdown, hidden, lateral):
    sizes = [4, 6, 5, 3]
    net = LayeredNetwork.random(sizes, seed=1, hidden=hidden, output=linear(), bias_scale=0.2)
    weights = MicrocircuitWeights.from_network(net, seed=2)
    # large learning rates so that every weight moves visibly within 100 ms
    params = MicrocircuitParams(topdown=topdown, eta_up=(1e-2,) * 3, eta_ip=(1e-2,) * 2, eta_pi=(1e-2,) * 2,
                                eta_down=(1e-2,) * 2 if topdown == "learned" else (),
                                interneuron_plasticity=lateral)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4, sizes[0]))
    targets = rng.normal(0, 1, (4, sizes[-1]))
    targets[1] = np.nan                              # one pattern without nudging (free phase)
    model = build_brian2_microcircuit(weights, params, x, targets, pattern_duration=25.0)
    model.run(100.0)
    got = model.trajectory()
    twin = NumpyMicrocircuit(weights, params)
    want = twin.run(x, targets, steps_per_pattern=STEPS // 4, record_every=1)
    np.testing.assert_allclose(got["t"], want["t"], atol=1e-9)
    for a, b in zip(got["u"] + got["u_I"] + got["v_A"], want["u"] + want["u_I"] + want["v_A"]):
        assert a.shape == (STEPS, b.shape[1])
        assert np.max(np.abs(a - b)) <= 1e-6 * np.max(np.abs(b))
    w_b2, w_np = model.weights(), twin.weights()
    for name in ("W_up", "b_up", "W_IP", "b_IP", "W_PI", "W_down"):
        for a, b, start in zip(getattr(w_b2, name), getattr(w_np, name), getattr(weights, name)):
            moved = np.max(np.abs(b - start))
            assert np.max(np.abs(a - b)) <= 1e-6 * max(moved, 1e-12), name
            if name != "W_down" or topdown != "fixed":
                assert moved > 1e-4, f"{name} did not learn, the comparison would be vacuous"
