"""The CD engine's data statistics as one parameter schedule (spikes as arrays) against the phase-by-phase
route (clamp / run / release / run, neo spike trains), on NEST where both must give the same spikes.

Reference: ``ClampedStatistics`` on a network without ``clamp_schedule`` (the engine's portable route).
"""

import numpy as np

from cortexsim.backends import load_backend
from cortexsim.models.boltzmann import BoltzmannMachine
from cortexsim.models.cd_learning import bipartite_mask
from cortexsim.models.sampling_network import build_sampling_network
from cortexsim.parameters import ActivationFit
from cortexsim.protocols.cd_engine import ClampedStatistics, TimedSimulator

FIT = ActivationFit(v_p05=-50.61, alpha=0.82)
N_VISIBLE, N_HIDDEN = 6, 4


class _PhaseByPhase:
    """The network without ``clamp_schedule``: the engine falls back to clamp/run/release."""

    def __init__(self, network):
        self._network = network

    def __getattr__(self, name):
        if name == "clamp_schedule":
            raise AttributeError(name)
        return getattr(self._network, name)


def _statistics(one_launch: bool):
    rng = np.random.default_rng(3)
    mask = bipartite_mask(N_VISIBLE, N_HIDDEN)
    W = rng.normal(0.0, 0.8, mask.shape) * mask
    W = np.triu(W, 1) + np.triu(W, 1).T
    bm = BoltzmannMachine(W=W, b=rng.normal(0.0, 0.5, N_VISIBLE + N_HIDDEN))
    data = (rng.random((5, N_VISIBLE)) < 0.5).astype(float)
    sim = load_backend("nest")
    sim.setup(timestep=0.1, seed=9)
    network = build_sampling_network(sim, bm, FIT, connectivity=mask)
    statistics = ClampedStatistics(data, np.arange(N_VISIBLE), batch_size=3, clamp_ms=40.0, settle_ms=10.0,
                                   readout_dt_ms=1.0, clamp_bias=30.0)
    timed = TimedSimulator(sim)
    used = network if one_launch else _PhaseByPhase(network)
    results = [statistics(used, timed, k, 200.0, np.random.default_rng(5 + k)) for k in range(2)]
    sim.end()
    return results, timed.t_ms


def test_one_schedule_gives_the_phase_by_phase_statistics_on_nest():
    """Two iterations: identical data and model moments and the same simulated time; catches phase
    windows shifted by a phase, a missing release before the model phase, a clamp on the wrong units,
    or states read from the wrong window."""
    scheduled, t_scheduled = _statistics(True)
    reference, t_reference = _statistics(False)
    assert t_scheduled == t_reference == 2 * (3 * 40.0 + 200.0)
    for got, expected in zip(scheduled, reference):
        for part in ("data", "model"):
            for a, b in zip(getattr(got, part), getattr(expected, part)):
                np.testing.assert_array_equal(a, b)
        assert got.record == expected.record
    # clamped visible units sit at their data values in the data moments; the model phase is free
    mean_data, _ = scheduled[0].data
    assert 0.05 < scheduled[0].record["model_mean_activity"] < 0.95
    visible_means = mean_data[:N_VISIBLE] * 3  # 3 rows with equal windows: multiples of 1/3
    np.testing.assert_allclose(visible_means, np.round(visible_means), atol=1e-9)
