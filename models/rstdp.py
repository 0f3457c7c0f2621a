"""Reward-modulated STDP for the Pong task of Wunderlich et al. 2019 (pure numpy).

The agent sees the ball's vertical position as a one-hot input (one of N input neurons fires a
regular spike train), N output neurons compete, and the most active one names the row the paddle
should move to. After every iteration:

1. the bare reward depends on the distance between the winning output and the ball's row:
   1.0, 0.7, 0.4, 0.1 for distances 0, 1, 2, 3 and 0 beyond (``REWARD_BY_DISTANCE``; the table of
   the original code, electronicvisions/model-sw-pong, and of NEST's Pong example);
2. the "success" is the reward minus the running mean reward of that ball row, and the mean moves
   half-way towards the new reward (``mean += success / 2``; both codes). The first visit of a row
   starts its mean at the first reward (model-sw-pong) unless ``initial_mean`` is given (NEST's
   example starts at 0);
3. every synapse of the active input row changes by ``learning_rate x success x correlation``, the
   causal pre/post correlation of that synapse during the iteration, then the weights are clipped to
   their range (model-sw-pong rounds them to the chip's 6-bit integers).

Examples
--------
>>> import numpy as np
>>> distance_reward(np.array([0, 1, 4]))
array([1. , 0.7, 0. ])
>>> tracker = MeanReward(n_rows=3)
>>> tracker.update(row=1, reward=0.4), tracker.update(row=1, reward=1.0)
(0.0, 0.6)
>>> rstdp_update(np.array([10.0, 10.0]), correlation=np.array([4.0, 0.0]), success=0.5,
...              learning_rate=1.0, w_max=63)
array([12., 10.])
"""

from __future__ import annotations

import numpy as np

__all__ = ["REWARD_BY_DISTANCE", "distance_reward", "reward_table", "MeanReward", "rstdp_update", "winner"]

#: Bare reward by distance between the winning output and the ball's row (larger distances: 0).
REWARD_BY_DISTANCE = (1.0, 0.7, 0.4, 0.1)


def distance_reward(distance) -> np.ndarray:
    """Bare reward for an (array of) absolute distance(s) between winning output and target row.

    Raises
    ------
    ValueError
        For negative or non-integer distances.
    """
    distance = np.asarray(distance)
    if np.any(distance < 0) or np.any(distance != np.round(distance)):
        raise ValueError(f"distances must be integers >= 0, got {distance}")
    table = np.append(REWARD_BY_DISTANCE, 0.0)
    return table[np.minimum(distance.astype(int), len(REWARD_BY_DISTANCE))]


def reward_table(target_row: int, n_outputs: int) -> np.ndarray:
    """Bare reward the agent receives if output ``j`` wins, for every ``j``, when the ball is in ``target_row``.

    >>> reward_table(0, 5)
    array([1. , 0.7, 0.4, 0.1, 0. ])
    """
    if not 0 <= int(target_row) < int(n_outputs):
        raise ValueError(f"target_row must lie in [0, {n_outputs - 1}], got {target_row}")
    return distance_reward(np.abs(np.arange(n_outputs) - int(target_row)))


def winner(counts, rng: np.random.Generator) -> int:
    """Index of the most active output; ties are broken uniformly at random (as in both original codes)."""
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError("counts must be a non-empty 1-d array of spike counts")
    return int(rng.choice(np.flatnonzero(counts == counts.max())))


class MeanReward:
    """Running mean reward per ball row and the success signal ``reward - mean``.

    Parameters
    ----------
    n_rows : int
        Number of ball rows (input neurons).
    rate : float
        Fraction of the success added to the mean per visit (0 < rate <= 1; both originals: 1/2).
    initial_mean : float or None
        Mean before the first visit of a row; None: the first reward (model-sw-pong).
    """

    def __init__(self, n_rows: int, rate: float = 0.5, initial_mean: float | None = None):
        if int(n_rows) < 1:
            raise ValueError(f"n_rows must be >= 1, got {n_rows}")
        if not 0 < rate <= 1:
            raise ValueError(f"rate must lie in (0, 1], got {rate}")
        self.rate = float(rate)
        self.initial_mean = initial_mean
        self.mean = np.full(int(n_rows), np.nan if initial_mean is None else float(initial_mean))

    def update(self, row: int, reward: float) -> float:
        """Register ``reward`` for ``row``; returns the success (reward minus the mean before the update)."""
        if np.isnan(self.mean[row]):
            self.mean[row] = reward
        success = float(reward - self.mean[row])
        self.mean[row] += self.rate * success
        return success

    def mean_over_rows(self) -> float:
        """Mean of the per-row means over the rows visited so far (NaN before any visit)."""
        visited = ~np.isnan(self.mean)
        return float(np.mean(self.mean[visited])) if np.any(visited) else float("nan")


def rstdp_update(weights, correlation, success: float, learning_rate: float, w_min: float = 0.0,
                 w_max: float = np.inf) -> np.ndarray:
    """``clip(w + learning_rate x success x correlation, w_min, w_max)`` (R-STDP, one row or a whole array).

    Parameters
    ----------
    weights, correlation : array_like
        Current weights and the synapses' causal correlation of the iteration (same shape).
    success : float or array_like
        Reward minus mean reward (broadcast against the weights, e.g. one value per row).
    learning_rate : float
        Weight change per unit of success x correlation (>= 0).
    w_min, w_max : float
        Weight range.
    """
    if learning_rate < 0:
        raise ValueError(f"learning_rate must be >= 0, got {learning_rate}")
    weights = np.asarray(weights, dtype=float)
    correlation = np.asarray(correlation, dtype=float)
    return np.clip(weights + learning_rate * np.asarray(success, dtype=float) * correlation, w_min, w_max)
