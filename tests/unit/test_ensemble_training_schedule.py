"""Sampling-time schedule and iterate averaging of the ensemble CD loop (pure numpy, deterministic)."""

import numpy as np
import pytest

from cortexsim.protocols.ensemble import EnsembleConfig
from cortexsim.models.cd_learning import IterateAverage, sampling_durations
from cortexsim.protocols.cd_engine import CDSettings


def test_sampling_durations_grow_linearly_on_the_time_grid():
    durations = sampling_durations(1000.0, 3000.0, 5, 0.1)
    np.testing.assert_allclose(durations, [1000.0, 1500.0, 2000.0, 2500.0, 3000.0])
    np.testing.assert_allclose(sampling_durations(500.0, None, 3, 0.1), [500.0] * 3)
    steps = sampling_durations(1.0, 2.0, 4, 0.3) / 0.3
    np.testing.assert_allclose(steps, np.round(steps))  # whole numbers of steps


@pytest.mark.parametrize("first, last, iterations, dt", [(0.0, 1.0, 3, 0.1), (1.0, -1.0, 3, 0.1),
                                                         (1.0, 2.0, 0, 0.1), (1.0, 2.0, 3, 0.0)])
def test_bad_sampling_schedules_raise(first, last, iterations, dt):
    with pytest.raises(ValueError):
        sampling_durations(first, last, iterations, dt)


def test_iterate_average_is_the_mean_of_the_last_fraction():
    average = IterateAverage(iterations=10, fraction=0.3)
    assert average.start == 7
    for iteration in range(10):
        average.add(iteration, np.full((2, 2), float(iteration)), np.array([iteration, -iteration], dtype=float))
    W, b = average.result()
    np.testing.assert_allclose(W, np.full((2, 2), 8.0))  # mean of 7, 8, 9
    np.testing.assert_allclose(b, [8.0, -8.0])
    assert average.count == 3


def test_no_averaging_returns_the_last_iterate():
    average = IterateAverage(iterations=4, fraction=0.0)
    for iteration in range(4):
        average.add(iteration, np.eye(2) * iteration, np.ones(2) * iteration)
    W, b = average.result()
    np.testing.assert_allclose(W, np.eye(2) * 3)
    np.testing.assert_allclose(b, [3.0, 3.0])
    with pytest.raises(ValueError, match="no iterate"):
        IterateAverage(3, 0.5).result()


@pytest.mark.parametrize("field, value", [("average_fraction", 1.0), ("average_fraction", -0.1),
                                          ("sampling_end_ms", 0.0)])
def test_bad_training_settings_raise(field, value):
    with pytest.raises(ValueError, match=field):
        EnsembleConfig(seed=1, **{field: value})
    with pytest.raises(ValueError, match=field):
        CDSettings(iterations=10, sampling_ms=100.0, learning_rate=1.0, schedule="inverse", schedule_tau=50.0,
                   momentum=0.5, **{field: value})
