"""Staggered data / model phases (ensembles on data) and the background weight tracking.

References: the rotation's definition evaluated point by point (what the unstaggered sequence does at
``(t + o_g) mod P``), a fake network whose spikes say which phase each neuron's network was in, a
Monte-Carlo of Poisson trains through U = 1 depressing synapses for the conductance formula.
"""

import numpy as np
import pytest

from cortexsim.models.cd_learning import staggered_phases
from cortexsim.models.ensemble_background import EnsembleBackground, tracking_weight_scale
from cortexsim.protocols.cd_engine import ClampedStatistics, TimedSimulator, block_slices
from cortexsim.models.lif_translation import transferred_fit
from cortexsim.parameters import DEFAULT_NEURON, ActivationFit, NoiseParameters
from cortexsim.protocols.ensemble_data import EnsembleDataConfig, tracking_for_segment


def _doing(phases, t):
    return next(r for a, b, r in phases if a <= t < b)


@pytest.mark.parametrize("n_clamps, clamp_ms, free_ms, groups", [(10, 60.0, 400.0, 10), (4, 50.0, 300.0, 5),
                                                               (3, 20.0, 70.0, 2), (2, 30.0, 10.0, 3)])
def test_each_group_is_the_base_sequence_rotated_by_whole_clamps(n_clamps, clamp_ms, free_ms, groups):
    """Every group: phases tile [0, P) without gap or overlap, each row once for clamp_ms, free_ms in total;
    at every time the group does what the base sequence does at (t + o_g) mod P, with o_g = g P / G rounded
    to whole clamps (computed here independently)."""
    period = n_clamps * clamp_ms + free_ms
    out = staggered_phases(n_clamps, clamp_ms, free_ms, groups)
    assert len(out) == groups
    base = out[0]
    assert base == [(j * clamp_ms, (j + 1) * clamp_ms, j) for j in range(n_clamps)] + \
        [(n_clamps * clamp_ms, period, -1)]
    for g, phases in enumerate(out):
        assert phases[0][0] == 0.0 and phases[-1][1] == period
        assert all(b0 == a1 for (_, b0, _), (a1, _, _) in zip(phases[:-1], phases[1:]))
        rows = [r for _, _, r in phases if r >= 0]
        assert sorted(rows) == list(range(n_clamps))
        assert all(b - a == pytest.approx(clamp_ms) for a, b, r in phases if r >= 0)
        assert sum(b - a for a, b, r in phases if r < 0) == pytest.approx(free_ms)
        offset = round(g * period / groups / clamp_ms) * clamp_ms
        offset = offset if offset < period else offset - clamp_ms
        for t in np.arange(0.25, period, 0.5):
            assert _doing(phases, t) == _doing(base, (t + offset) % period)


def test_clamped_share_is_constant_when_the_rotation_fits():
    """4 clamps of 50 ms, 300 ms free, 5 groups: offsets 0, 100, ... 400 ms, exactly 2 of 5 groups clamped at
    every time; 10 x 60 ms + 400 ms, 10 groups (the acceptance setting): 5 to 7 of 10, and each group's mean
    share while clamped within 0.02 of its mean share while free (all at once: 1 and 0)."""
    t = np.arange(0.5, 500.0, 1.0)
    clamped = np.array([[_doing(p, x) >= 0 for x in t] for p in staggered_phases(4, 50.0, 300.0, 5)])
    np.testing.assert_array_equal(clamped.sum(axis=0), 2)
    t = np.arange(0.5, 1000.0, 1.0)
    clamped = np.array([[_doing(p, x) >= 0 for x in t] for p in staggered_phases(10, 60.0, 400.0, 10)])
    count = clamped.sum(axis=0)
    assert count.min() >= 5 and count.max() <= 7
    share = count / 10
    for c in clamped:
        assert abs(share[c].mean() - share[~c].mean()) < 0.02


@pytest.mark.parametrize("bad", [dict(n_clamps=0), dict(groups=0), dict(clamp_ms=0.0), dict(free_ms=np.nan)])
def test_staggered_phases_refuses_bad_input(bad):
    args = dict(n_clamps=2, clamp_ms=10.0, free_ms=20.0, groups=2) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        staggered_phases(**args)


class _Neuron:
    tau_refrac = 2.0


class _FakeSim:
    """Advances time; the network turns its clamp state over each run into spikes."""

    def __init__(self):
        self.t = 0.0
        self.network = None

    def get_time_step(self):
        return 1.0

    def run(self, duration):
        self.network.advance(self.t, self.t + duration)
        self.t += duration


class _FakeNetwork:
    """Networks of 2 visible + 1 hidden unit (no clamp_schedule: the clamp / run route). Over a run: a unit
    clamped to 1 spikes every tau_ref (on throughout); the hidden unit of a network spikes while ANY of its
    visible units is clamped (it marks the network's data phase); visible unit 0 spikes while its network
    is free (it marks the model phase). Records the number of clamped networks per run."""

    neuron = _Neuron()

    def __init__(self, n_networks):
        self.M, self.n = n_networks, 3
        self.clamped = {}
        self.spikes = [[] for _ in range(3 * n_networks)]
        self.clamped_networks = []

    def clamp(self, units, values, clamp_bias):
        self.clamped = dict(zip(np.asarray(units).tolist(), np.asarray(values).tolist()))

    def release(self):
        self.clamped = {}

    def advance(self, t0, t1):
        blocks = {u // self.n for u in self.clamped}
        self.clamped_networks.append((t1 - t0, len(blocks)))
        ticks = np.arange(t0, t1, self.neuron.tau_refrac).tolist()
        for m in range(self.M):
            on = [m * 3 + 2] if m in blocks else [m * 3]
            on += [u for u, v in self.clamped.items() if v == 1 and u // self.n == m]
            for u in on:
                self.spikes[u] += ticks

    def spiketrains(self, clear=False):
        out = [np.array(s) for s in self.spikes]
        if clear:
            self.spikes = [[] for _ in range(3 * self.M)]
        return out


def _staggered_statistics(groups, batch):
    M = 4
    sim, network = _FakeSim(), _FakeNetwork(M)
    sim.network = network
    visible = np.concatenate([m * 3 + np.arange(2) for m in range(M)])
    statistics = ClampedStatistics(batch, visible, batch.shape[0], 20.0, 4.0, 1.0, 30.0,
                                   blocks=block_slices([3] * M), stagger_groups=groups)
    timed = TimedSimulator(sim, 1.0)
    # rng draws the rows 0, 1, 2 in order: integers(0, 3, 3) of this generator (checked below)
    result = statistics(network, timed, 0, 60.0, np.random.default_rng(0))
    return result, network, timed


def test_staggered_statistics_read_each_network_in_its_own_phases():
    """4 networks in 2 groups, 3 clamps of 20 ms (settle 4), 60 ms free: each network's data moments come from
    its own clamp windows only (its hidden marker on throughout: 1.0; the visible units at the rows), its
    model moments from its own free time only (free marker 1, hidden marker 0), and 2 of 4 networks are
    clamped at every moment. A mix-up of the networks' windows (e.g. all read in group 0's windows) gives
    hidden data means of 1/2 or free markers below 1 for the group 1 networks."""
    batch = np.array([[1, 0, 0, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0, 1, 1], [1, 1, 0, 0, 1, 0, 0, 1]], dtype=float)
    result, network, timed = _staggered_statistics(2, batch)
    assert timed.t_ms == pytest.approx(120.0)
    drawn = batch[np.random.default_rng(0).integers(0, 3, 3)]
    data_mean, model_mean = result.data[0], result.model[0]
    for m in range(4):
        np.testing.assert_allclose(data_mean[m * 3:m * 3 + 2], drawn[:, 2 * m:2 * m + 2].mean(axis=0))
        assert data_mean[m * 3 + 2] == pytest.approx(1.0)
        np.testing.assert_allclose(model_mean[m * 3:m * 3 + 3], [1.0, 0.0, 0.0])
    for _, count in network.clamped_networks:
        assert count == 2
    # rate over the whole iteration from the 0/1 states (on-fraction / tau_ref)
    on_fraction = (4 * 60 + 4 * 60 + np.sum(drawn) * 20) / (12 * 120)
    assert result.record["mean_rate_hz"] == pytest.approx(on_fraction / 2.0 * 1e3)


def test_one_group_is_the_unstaggered_route():
    """stagger_groups = 1 takes the unchanged route: all networks clamped together (4 then 0 clamped)."""
    batch = np.array([[1, 0, 0, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0, 1, 1], [1, 1, 0, 0, 1, 0, 0, 1]], dtype=float)
    result, network, _ = _staggered_statistics(1, batch)
    assert [c for _, c in network.clamped_networks] == [4, 4, 4, 0]
    np.testing.assert_allclose(result.model[0], np.tile([1.0, 0.0, 0.0], 4))


@pytest.mark.parametrize("kwargs, needle", [(dict(stagger_groups=0), "stagger_groups"),
                                            (dict(stagger_groups=2), "needs blocks"),
                                            (dict(stagger_groups=5, blocks=block_slices([3] * 4)), "at most"),
                                            (dict(stagger_groups=2, blocks=block_slices([3] * 4), free_chains=1,
                                                  n_units=3), "exclude"),
                                            (dict(stagger_groups=2, blocks=block_slices([3] * 4), settle_ms=4.5),
                                             "settle_ms must be a whole number")])
def test_clamped_statistics_refuses_bad_stagger(kwargs, needle):
    args = dict(batch_size=3, clamp_ms=20.0, settle_ms=4.0, readout_dt_ms=1.0, clamp_bias=30.0) | kwargs
    with pytest.raises(ValueError, match=needle):
        ClampedStatistics(np.zeros((3, 8)), np.arange(8), **args)


def test_tracking_scale_restores_the_mean_conductance_of_poisson_trains_through_depressing_synapses():
    """Monte-Carlo reference: Poisson trains at 15 Hz through U = 1 synapses with tau_rec 40 ms (each spike
    releases 1 - exp(-ISI / tau_rec)) with weights x scale deliver the mean conductance of the 64.6 Hz trains
    at weight 1 (within 1 %); static synapses: the rate ratio. Clipping at max_scale."""
    rng = np.random.default_rng(4)
    background = EnsembleBackground(synapse="depressing", tau_rec_ms=40.0)

    def released_per_second(rate_hz, seconds=4000.0):
        isi = rng.exponential(1e3 / rate_hz, int(rate_hz * seconds))
        return np.sum(1.0 - np.exp(-isi / 40.0)) / seconds

    scale = tracking_weight_scale(background, 64.6, 15.0)
    assert scale * released_per_second(15.0) == pytest.approx(released_per_second(64.6), rel=0.01)
    static = EnsembleBackground(synapse="static")
    assert tracking_weight_scale(static, 64.6, 20.0) == pytest.approx(64.6 / 20.0)
    assert tracking_weight_scale(static, 64.6, 5.0, max_scale=4.0) == 4.0
    assert tracking_weight_scale(static, 5.0, 64.6, max_scale=4.0) == 0.25
    with pytest.raises(ValueError, match="current_rate_hz"):
        tracking_weight_scale(background, 64.6, 0.0)
    with pytest.raises(ValueError, match="max_scale"):
        tracking_weight_scale(background, 64.6, 15.0, max_scale=0.5)


def test_segment_tracking_uses_only_the_previous_segment():
    """checkpoint_every 2: the segment starting at 4 uses the rates of iterations 2 and 3 (mean 15 Hz), not the
    earlier 100 Hz ones; the first segment and tracking "off" nothing."""
    history = {"mean_rate_hz": [100.0, 100.0, 20.0, 10.0]}
    common = dict(seed=1, n_networks=4, n_hidden=20, in_degree=10, checkpoint_every=2)
    weights = EnsembleDataConfig(**common, background_tracking="weights")
    background = EnsembleBackground(synapse="depressing", tau_rec_ms=40.0)
    assert tracking_for_segment(weights, history, 0, 64.6) == {}
    assert tracking_for_segment(weights, history, 4, 64.6)["background_scale"] == pytest.approx(
        tracking_weight_scale(background, 64.6, 15.0))
    assert tracking_for_segment(weights, history, 2, 64.6)["background_scale"] == pytest.approx(
        tracking_weight_scale(background, 64.6, 100.0))
    translation = EnsembleDataConfig(**common, background_tracking="translation")
    assert tracking_for_segment(translation, history, 4, 64.6) == {"source_rate_hz": 15.0}
    assert tracking_for_segment(EnsembleDataConfig(**common), history, 4, 64.6) == {}
    with pytest.raises(ValueError, match="mean_rate_hz"):
        tracking_for_segment(translation, {"mean_rate_hz": []}, 4, 64.6)


def test_transferred_fit_keeps_the_free_membrane_mean_of_every_bias():
    """Independent reference: mu = (E_E g_E + E_I g_I + E_l g_l) / (g_l + g_E + g_I), g = w nu tau_syn, written
    out here. Asymmetric backgrounds (excitatory and inhibitory rates and weights differ, before and now): for
    biases -2.3, 0 and 1.7 the leak of the moved fit gives under `now` the mean the old leak gave before."""
    n = DEFAULT_NEURON
    before = NoiseParameters(rate_exc=2600.0, rate_inh=3100.0, weight_exc=0.0012, weight_inh=0.0023)
    now = NoiseParameters(rate_exc=900.0, rate_inh=1400.0, weight_exc=0.0019, weight_inh=0.0011)

    def mu(noise, e_l):
        g_e = noise.weight_exc * noise.rate_exc * 1e-3 * n.tau_syn_E
        g_i = noise.weight_inh * noise.rate_inh * 1e-3 * n.tau_syn_I
        return (n.e_rev_E * g_e + n.e_rev_I * g_i + e_l * n.g_l) / (n.g_l + g_e + g_i)

    fit = ActivationFit(v_p05=-50.9, alpha=0.74)
    moved = transferred_fit(fit, n, before, now)
    for bias in (-2.3, 0.0, 1.7):
        assert mu(now, moved.v_p05 + moved.alpha * bias) == pytest.approx(mu(before, fit.v_p05 + fit.alpha * bias),
                                                                          abs=1e-9)
    assert moved.v_p05 != pytest.approx(fit.v_p05, abs=0.05)
    assert transferred_fit(fit, n, before, before) == fit


@pytest.mark.parametrize("kwargs, needle", [(dict(stagger_groups=5), "stagger_groups"),
                                            (dict(stagger_groups=0), "stagger_groups"),
                                            (dict(background_tracking="rates"), "background_tracking"),
                                            (dict(max_background_scale=0.9), "max_background_scale")])
def test_ensemble_data_config_refuses_bad_fix_settings(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        EnsembleDataConfig(seed=1, n_networks=4, n_hidden=20, in_degree=10, **kwargs)


def test_fixes_are_off_by_default():
    config = EnsembleDataConfig(seed=1, n_networks=4, n_hidden=20, in_degree=10)
    assert config.stagger_groups == 1 and config.background_tracking == "off"


def test_hidden_source_units_reach_the_background_and_are_checked_against_the_hidden_pool():
    """``source_units="hidden"``: the background starts its sources at the first hidden unit (74 for digits: 64
    pixels + 10 labels come first), and the size check counts hidden units only (catches: the option not passed on,
    or the check still counting all units)."""
    from cortexsim.protocols.ensemble import background_run_settings
    config = EnsembleDataConfig(seed=1, n_networks=3, n_hidden=20, in_degree=10, source_units="hidden")
    assert config.first_source_unit == 74 and EnsembleDataConfig(seed=1, n_networks=3, n_hidden=20,
                                                                 in_degree=10).first_source_unit == 0
    assert background_run_settings(config, "nest").background.first_source_unit == 74
    EnsembleDataConfig(seed=1, n_networks=3, n_hidden=20, in_degree=21)          # 42 <= 2 * 94 (all units)
    with pytest.raises(ValueError, match="only \\(M - 1\\) \\* S = \\(3 - 1\\) \\* 20 = 40"):
        EnsembleDataConfig(seed=1, n_networks=3, n_hidden=20, in_degree=21, source_units="hidden")
    with pytest.raises(ValueError, match="source_units"):
        EnsembleDataConfig(seed=1, n_networks=3, n_hidden=20, in_degree=10, source_units="visible")
