"""The CD engine without a simulator: a fake ``sim`` and a network whose "samples" are exact.

The statistics function returns the EXACT moments of the parameters the network currently holds
(enumeration), so the engine's loop - factory, statistics, update, in-place parameter path, segments,
checkpoints - is tested against an independent fact: CD with exact statistics ascends the
log-likelihood, i.e. D_KL(target || model) falls towards 0. A sign error in the update, an update
that is not passed to the network, or a wrong learning-rate schedule stops that. Resumption is tested
bit for bit, with random draws from the engine's generator in every iteration.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cortexsim.models.boltzmann import BoltzmannMachine, exact_moments, joint, random_bm
from cortexsim.models.cd_learning import block_diagonal_mask
from cortexsim.protocols.cd_engine import CDSettings, CDState, Statistics, train_cd


def kl(p, q):
    return float(np.sum(p * np.log(p / q)))


class FakeSim:
    """Counts setups and ends; ``run`` only advances time."""

    def __init__(self):
        self.setups, self.ends, self.t = [], 0, 0.0

    def run(self, duration):
        self.t += duration

    def end(self):
        self.ends += 1


class FakeNetwork:
    def __init__(self, W, b):
        self.set_parameters(W, b)
        self.updates = 0

    def set_parameters(self, W, b):
        self.bm = BoltzmannMachine(np.array(W), np.array(b))
        self.updates = getattr(self, "updates", -1) + 1

    def spiketrains(self, clear=False):
        return []


def make_factory(sim):
    def build(sim_module, W, b, first_iteration):
        sim.setups.append(first_iteration)
        sim.t = 0.0
        return FakeNetwork(W, b)
    return build


class ExactStatistics:
    """Data: exact target moments; model: exact moments of the network's current BM (plus a draw)."""

    def __init__(self, target, noise=0.0):
        self.data = exact_moments(target)
        self.noise = noise
        self.segments = 0

    def __call__(self, network, timed, iteration, duration_ms, rng):
        timed.run(duration_ms)
        mean, second = exact_moments(network.bm)
        if self.noise:
            jitter = rng.normal(0.0, self.noise, mean.shape)
            mean = mean + jitter
        return Statistics(self.data, (mean, second), {"draw": float(mean[0])})

    def end_segment(self, W, b):
        self.segments += 1
        return {"segment_count": self.segments}


def test_exact_statistics_drive_the_model_to_the_target():
    target = random_bm(4, seed=3)
    start = random_bm(4, seed=4, weight_scale=0.1, bias_scale=0.1)
    settings = CDSettings(iterations=300, sampling_ms=100.0, learning_rate=0.5, schedule="constant",
                          schedule_tau=10.0, momentum=0.5, checkpoint_every=60)
    state = CDState.fresh(start.W, start.b, settings)
    sim = FakeSim()
    before = kl(joint(target), joint(start))
    assert train_cd(make_factory(sim), ExactStatistics(target), settings, state, sim)
    after = kl(joint(target), joint(BoltzmannMachine(state.W, state.b)))
    assert before > 0.1 and after < 1e-4 * before, (before, after)
    # five segments: a fresh simulation (setup/build) and an end for each, 100 ms per iteration
    assert sim.setups == [0, 60, 120, 180, 240] and sim.ends == 5
    assert state.history["segment_end"] == [60, 120, 180, 240, 300]
    assert state.history["segment_count"] == [1, 2, 3, 4, 5]
    assert state.history["sampling_ms"] == [100.0] * 300
    assert state.timing["iterations_timed"] == 300


def test_learning_rate_schedule_and_growing_sampling_time_reach_the_statistics():
    target = random_bm(3, seed=1)
    settings = CDSettings(iterations=5, sampling_ms=100.0, sampling_end_ms=500.0, learning_rate=2.0,
                          schedule="inverse", schedule_tau=4.0, momentum=0.0)
    seen = []

    class Recording(ExactStatistics):
        def __call__(self, network, timed, iteration, duration_ms, rng):
            seen.append(duration_ms)
            return super().__call__(network, timed, iteration, duration_ms, rng)

    state = CDState.fresh(np.zeros((3, 3)), np.zeros(3), settings)
    sim = FakeSim()
    train_cd(make_factory(sim), Recording(target), settings, state, sim)
    np.testing.assert_allclose(seen, [100.0, 200.0, 300.0, 400.0, 500.0])
    np.testing.assert_allclose(state.history["learning_rate"], [2.0 * 4.0 / (4.0 + t) for t in range(5)])
    # momentum 0: the first update is exactly eta0 * (data - model) of the zero-parameter model
    data_mean, _ = exact_moments(target)
    first = settings.update(None, 3)
    W, b = first(0, np.zeros((3, 3)), np.zeros(3), exact_moments(target), exact_moments(BoltzmannMachine(
        np.zeros((3, 3)), np.zeros(3))))
    np.testing.assert_allclose(b, 2.0 * (data_mean - 0.5))


def test_stopped_and_resumed_run_is_bit_identical(tmp_path):
    """Checkpoint through JSON after a segment, resume: parameters and history equal the whole run's."""
    target = random_bm(5, seed=7)
    mask = block_diagonal_mask([2, 3])
    settings = CDSettings(iterations=9, sampling_ms=50.0, learning_rate=0.3, schedule="inverse",
                          schedule_tau=5.0, momentum=0.7, weight_decay=0.01, average_fraction=0.4,
                          checkpoint_every=3)

    def fresh():
        return CDState.fresh(np.zeros((5, 5)), np.zeros(5), settings, mask, rng=np.random.default_rng(11))

    whole = fresh()
    sim = FakeSim()
    assert train_cd(make_factory(sim), ExactStatistics(target, noise=0.01), settings, whole, sim, mask)
    path = tmp_path / "checkpoint.json"
    split = fresh()
    assert not train_cd(make_factory(FakeSim()), ExactStatistics(target, noise=0.01), settings, split, FakeSim(),
                        mask, save=lambda s: path.write_text(json.dumps(s.to_dict())), stop_after_iteration=4)
    resumed = CDState.from_dict(json.loads(path.read_text()))
    assert resumed.iteration == 6
    statistics = ExactStatistics(target, noise=0.01)
    statistics.segments = 2
    assert train_cd(make_factory(FakeSim()), statistics, settings, resumed, FakeSim(), mask)
    assert np.array_equal(whole.W, resumed.W) and np.array_equal(whole.b, resumed.b)
    assert whole.history["draw"] == resumed.history["draw"]
    assert whole.history["segment_count"] == resumed.history["segment_count"]
    W_avg, b_avg = whole.trained(settings, mask)
    W_res, b_res = resumed.trained(settings, mask)
    assert np.array_equal(W_avg, W_res) and np.array_equal(b_avg, b_res)
    # the average (last 40 % = 4 iterates) differs from the last iterate, and the mask holds
    assert not np.array_equal(W_avg, whole.W)
    assert np.all(W_avg[:2, 2:] == 0) and np.all(whole.W[:2, 2:] == 0)


def test_per_network_state_trains_as_the_full_matrices_and_resumes_from_either_checkpoint(tmp_path):
    """``blocks`` (independent networks): W, velocity and iterate average held per network
    (DiagonalBlocks) and checkpointed compactly. Against the full-matrix run (no blocks) of the same settings
    (momentum, weight decay, averaging, random draws, a start that is NOT zero inside the blocks): the same
    parameters and averages to 1e-12, whether the block run goes through unstopped, stops and resumes from its
    own JSON checkpoint, or resumes from the full run's checkpoint (the format written before per-network
    states existed). A velocity or average not written, or written for the wrong block, fails it; a full W that
    couples the networks is refused with a clear error."""
    from cortexsim.models.cd_learning import DiagonalBlocks

    target = random_bm(7, seed=5)
    sizes = [3, 4]
    blocks = [slice(0, 3), slice(3, 7)]
    mask = block_diagonal_mask(sizes)
    settings = CDSettings(iterations=9, sampling_ms=50.0, learning_rate=0.3, schedule="inverse",
                          schedule_tau=5.0, momentum=0.7, weight_decay=0.01, average_fraction=0.4,
                          checkpoint_every=3)
    start = random_bm(7, seed=6).W * mask

    def fresh(per_network):
        return CDState.fresh(start, np.full(7, 0.1), settings, mask, rng=np.random.default_rng(11),
                             blocks=blocks if per_network else None)

    def run(state, use_blocks, **kwargs):
        statistics = ExactStatistics(target, noise=0.01)
        statistics.segments = state.iteration // 3
        return train_cd(make_factory(FakeSim()), statistics, settings, state, FakeSim(), mask,
                        blocks=blocks if use_blocks else None, **kwargs)

    full = fresh(False)
    assert run(full, False)
    whole = fresh(True)
    assert run(whole, True)
    assert isinstance(whole.W, DiagonalBlocks)

    def check(state):
        np.testing.assert_allclose(np.asarray(state.W), full.W, rtol=0, atol=1e-12)
        np.testing.assert_allclose(state.b, full.b, rtol=0, atol=1e-12)
        for got, want in zip(state.trained(settings, mask), full.trained(settings, mask)):
            np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-12)
        assert state.history["draw"] == full.history["draw"]

    check(whole)
    assert not np.array_equal(full.trained(settings, mask)[0], full.W)     # the average is not the last iterate
    # stopped after a segment, resumed from the block run's own checkpoint (compact: no list of lists for W)
    for per_network_checkpoint in (True, False):
        path = tmp_path / f"checkpoint_{per_network_checkpoint}.json"
        cut = fresh(per_network_checkpoint)
        assert not run(cut, per_network_checkpoint, stop_after_iteration=4,
                       save=lambda s, path=path: path.write_text(json.dumps(s.to_dict())))
        saved = json.loads(path.read_text())
        assert ("diagonal_blocks" in saved["W"]) == per_network_checkpoint
        resumed = CDState.from_dict(saved)
        assert resumed.iteration == 6 and run(resumed, True)
        check(resumed)
    coupled = start.copy()
    coupled[0, 5] = coupled[5, 0] = 0.2
    with pytest.raises(ValueError, match="outside the diagonal blocks"):
        CDState.fresh(coupled, np.zeros(7), settings, mask, blocks=blocks)


@pytest.mark.parametrize("field, value, message", [("iterations", 0, "iterations"),
                                                   ("sampling_ms", -1.0, "sampling_ms"),
                                                   ("learning_rate", 0.0, "learning rate"),
                                                   ("momentum", 1.0, "momentum"),
                                                   ("checkpoint_every", 0, "checkpoint_every"),
                                                   ("burn_in_ms", -5.0, "burn_in_ms")])
def test_bad_settings_are_rejected_with_the_parameter_named(field, value, message):
    base = dict(iterations=3, sampling_ms=10.0, learning_rate=0.1, schedule="constant", schedule_tau=1.0,
                momentum=0.0)
    with pytest.raises(ValueError, match=message):
        CDSettings(**{**base, field: value})


def test_run_rescheduled_to_another_total_equals_the_run_of_that_total_from_scratch():
    """Stopped after 4 updates of a 12-update run (averaging from 6), continued as an 8-update run (averaging
    from 4): parameters, average and history equal the 8-update run's from scratch, bit for bit. Continuing
    the checkpoint without rescheduling averages the wrong window (the check fails for a kept start)."""
    import dataclasses

    target = random_bm(4, seed=5)
    long = CDSettings(iterations=12, sampling_ms=50.0, learning_rate=0.4, schedule="inverse", schedule_tau=3.0,
                      momentum=0.6, weight_decay=0.02, average_fraction=0.5, checkpoint_every=2)
    short = dataclasses.replace(long, iterations=8)

    def fresh(settings):
        return CDState.fresh(np.zeros((4, 4)), np.zeros(4), settings, rng=np.random.default_rng(3))

    scratch = fresh(short)
    assert train_cd(make_factory(FakeSim()), ExactStatistics(target, noise=0.02), short, scratch, FakeSim())
    cut = fresh(long)
    statistics = ExactStatistics(target, noise=0.02)
    assert not train_cd(make_factory(FakeSim()), statistics, long, cut, FakeSim(), stop_after_iteration=4)
    checkpoint = json.dumps(cut.to_dict())
    resumed = CDState.from_dict(json.loads(checkpoint)).rescheduled(long, short)
    assert train_cd(make_factory(FakeSim()), statistics, short, resumed, FakeSim())
    assert np.array_equal(scratch.W, resumed.W) and scratch.history["draw"] == resumed.history["draw"]
    W_scratch, _ = scratch.trained(short)
    assert np.array_equal(W_scratch, resumed.trained(short)[0])
    kept = CDState.from_dict(json.loads(checkpoint))      # the 12-update run's averaging start kept
    assert train_cd(make_factory(FakeSim()), ExactStatistics(target, noise=0.02), short, kept, FakeSim())
    assert np.array_equal(kept.W, scratch.W) and not np.allclose(kept.trained(short)[0], W_scratch)


@pytest.mark.parametrize("base, change, done, needle", [
    ({}, {"iterations": 8, "momentum": 0.5}, 4, "also changed: \\['momentum'\\]"),
    ({}, {"iterations": 6}, 4, "averaged"),                  # the averaging of 6 updates starts at 3 < 4 done
    ({}, {"iterations": 3}, 4, "iterations must be >="),
    ({"sampling_end_ms": 90.0}, {"iterations": 8}, 4, "sampling times"),   # growth spread over the total
    ({}, {"iterations": 8}, 3, "segments"),                  # not at a segment boundary
    ({"checkpoint_every": None}, {"iterations": 8}, 4, "segments"),        # one segment: its end is the total
])
def test_rescheduling_is_refused_where_the_run_depends_on_the_total(base, change, done, needle):
    import dataclasses

    old = CDSettings(**{"iterations": 12, "sampling_ms": 50.0, "learning_rate": 0.4, "schedule": "inverse",
                        "schedule_tau": 3.0, "momentum": 0.6, "average_fraction": 0.5, "checkpoint_every": 2, **base})
    state = CDState.fresh(np.zeros((3, 3)), np.zeros(3), old)
    state.iteration = done
    with pytest.raises(ValueError, match=needle):
        state.rescheduled(old, dataclasses.replace(old, **change))
    state.iteration = 4 if done == 4 else 2
    if not base and change == {"iterations": 8}:     # the allowed neighbour of the refused cases: accepted
        assert state.rescheduled(old, dataclasses.replace(old, **change)).update["average"]["start"] == 4


def test_a_checkpoint_written_before_a_setting_existed_resumes_at_its_default(tmp_path):
    """load_checkpoint(added_defaults=): a setting missing from the checkpoint's config counts as its default (the
    behaviour before it existed): the run resumes with the default and the state's config then holds it; with
    another value it is refused, naming the setting; a setting that differs stays refused."""
    from cortexsim.protocols.cd_engine import load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path, {"task": "t", "config": {"seed": 1, "iterations": 4}})
    state = load_checkpoint(tmp_path, "t", {"seed": 1, "iterations": 4, "groups": 1}, added_defaults={"groups": 1})
    assert state["config"] == {"seed": 1, "iterations": 4, "groups": 1}
    with pytest.raises(ValueError, match="groups"):
        load_checkpoint(tmp_path, "t", {"seed": 1, "iterations": 4, "groups": 2}, added_defaults={"groups": 1})
    with pytest.raises(ValueError, match="groups"):
        load_checkpoint(tmp_path, "t", {"seed": 1, "iterations": 4, "groups": 1})
    with pytest.raises(ValueError, match="iterations"):
        load_checkpoint(tmp_path, "t", {"seed": 1, "iterations": 5, "groups": 1}, added_defaults={"groups": 1})
