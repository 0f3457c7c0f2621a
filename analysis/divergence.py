"""Kullback-Leibler divergences between distributions over the 2**n states (in nats).

Two directions are reported for sampling results, named explicitly:

* ``dkl_sampled_target = D_KL(sampled || target) = sum_s p_sampled(s) log(p_sampled(s) / p_target(s))``
  -- the figure quoted by Petrovici et al. and in references §1. States never visited contribute 0;
  the exact target is strictly positive for a finite BM, so this direction is finite.
* ``dkl_target_sampled = D_KL(target || sampled)`` -- penalises target states the sampler never
  visited. With a finite run some states can be empty (p_sampled = 0 where p_target > 0), which would
  make it infinite; it is therefore computed with the sampled distribution regularised as
  ``(p_sampled + epsilon) / (1 + epsilon * 2**n)`` (default ``epsilon = 1e-10``), so an empty state
  contributes about ``p_target(s) * log(p_target(s) / 1e-10)`` -- large, finite, and visible.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NORMALISATION_TOLERANCE", "dkl", "dkl_both", "dkl_over_time", "sampling_error_fit"]

NORMALISATION_TOLERANCE = 1e-6
"""A distribution must sum to 1 within this absolute tolerance."""


def _check_distribution(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D probability vector, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf")
    if np.any(x < 0):
        raise ValueError(f"{name} has negative entries (min {x.min():.3g}); probabilities must be >= 0")
    total = x.sum()
    if abs(total - 1.0) > NORMALISATION_TOLERANCE:
        raise ValueError(f"{name} must sum to 1 within {NORMALISATION_TOLERANCE}, sums to {total:.9g}")
    return x


def dkl(p, q, epsilon: float | None = None) -> float:
    """``D_KL(p || q) = sum_s p(s) log(p(s) / q(s))`` in nats.

    Terms with ``p(s) = 0`` contribute 0. If ``q(s) = 0`` where ``p(s) > 0`` the result is ``inf``,
    unless ``epsilon`` is given: then ``q`` is first regularised as ``(q + epsilon) / (1 + epsilon * len(q))``
    (still a normalised distribution, strictly positive). ``p`` is never modified.

    Raises
    ------
    ValueError
        For shape mismatch, NaN/inf or negative entries, distributions not summing to 1 (tolerance
        :data:`NORMALISATION_TOLERANCE`), or a negative epsilon.
    """
    p = _check_distribution(p, "p")
    q = _check_distribution(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    if epsilon is not None:
        if not np.isfinite(epsilon) or epsilon < 0:
            raise ValueError(f"epsilon must be finite and >= 0, got {epsilon!r}")
        q = (q + epsilon) / (1.0 + epsilon * q.size)
    support = p > 0
    if np.any(q[support] == 0):
        return float("inf")
    return float(np.sum(p[support] * (np.log(p[support]) - np.log(q[support]))))


def dkl_both(sampled, target, epsilon: float = 1e-10) -> dict[str, float]:
    """Both directions for a sampled distribution against its target.

    Returns
    -------
    dict with
        ``dkl_sampled_target``: ``D_KL(sampled || target)``, no regularisation (empty sampled states
        contribute 0; ``inf`` only if the target itself has a zero where the sampler went).
        ``dkl_target_sampled``: ``D_KL(target || sampled)`` with the sampled distribution regularised
        by ``epsilon`` (see :func:`dkl`), so states the sampler never visited give a large finite
        contribution instead of ``inf``.
    """
    return {
        "dkl_sampled_target": dkl(sampled, target),
        "dkl_target_sampled": dkl(target, sampled, epsilon=epsilon),
    }


def dkl_over_time(distributions, target, epsilon: float = 1e-10) -> dict[str, np.ndarray]:
    """:func:`dkl_both` for each row of ``distributions`` (m, 2**n), e.g. from
    :func:`cortexsim.analysis.states.joint_distribution_over_time`.

    Returns
    -------
    dict with arrays (m,) ``dkl_sampled_target`` and ``dkl_target_sampled``.
    """
    distributions = np.asarray(distributions, dtype=float)
    target = _check_distribution(target, "target")
    if distributions.ndim != 2 or distributions.shape[1] != target.size:
        raise ValueError(f"distributions must have shape (m, {target.size}) to match target, got {distributions.shape}")
    forward = np.empty(distributions.shape[0])
    backward = np.empty(distributions.shape[0])
    for row, p in enumerate(distributions):
        result = dkl_both(p, target, epsilon=epsilon)
        forward[row] = result["dkl_sampled_target"]
        backward[row] = result["dkl_target_sampled"]
    return {"dkl_sampled_target": forward, "dkl_target_sampled": backward}


def sampling_error_fit(spiketrains, target, tau_ref: float, t_start: float, duration: float,
                       splits: tuple = (4, 2, 1)) -> dict:
    """Expected ``D_KL(sampled || target)`` after ``duration / n`` ms of sampling and its fit ``D_inf + B / T``.

    One run of ``duration`` ms from ``t_start`` is cut into ``n`` consecutive windows for each ``n`` of
    ``splits`` (:func:`cortexsim.analysis.states.joint_distribution_in_windows`); the mean D_KL over the
    windows estimates the error after ``T = duration / n`` ms. A least-squares line over ``1 / T`` gives
    the floor ``D_inf`` (infinite sampling time: what the weights and the background leave) and ``B`` (ms:
    the sampling-error coefficient, which grows with the mixing time).

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain or arrays (ms)
        Spikes of the network's ``n`` neurons.
    target : array (2**n,)
        Target distribution.
    tau_ref : float
        Refractory time (ms): z = 1 for ``tau_ref`` after a spike.
    t_start, duration : float
        Start (ms) and length (ms, > 0) of the evaluated span.
    splits : tuple of int
        Window counts (at least two different ones, each >= 1).

    Returns
    -------
    dict with ``window_ms`` (one per split), ``dkl_mean`` (mean D_KL over that split's windows),
    ``dkl_inf`` (floor) and ``bias_B_ms`` (slope of D over 1/T, ms).

    Examples
    --------
    >>> import numpy as np
    >>> trains = [np.arange(5.0, 4000.0, 23.0), np.arange(11.0, 4000.0, 31.0)]
    >>> fit = sampling_error_fit(trains, np.full(4, 0.25), tau_ref=10.0, t_start=0.0, duration=4000.0)
    >>> fit["window_ms"]
    [1000.0, 2000.0, 4000.0]
    """
    from cortexsim.analysis.states import joint_distribution_in_windows

    splits = tuple(int(n) for n in splits)
    if len(set(splits)) < 2 or min(splits) < 1:
        raise ValueError(f"splits must hold at least two different window counts >= 1, got {splits}")
    if not np.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be a finite time > 0 ms, got {duration}")
    target = _check_distribution(target, "target")
    values = []
    for n_windows in splits:
        rows = joint_distribution_in_windows(spiketrains, tau_ref, t_start, duration / n_windows, n_windows)
        values.append(float(np.mean([dkl(row, target) for row in rows])))
    inverse_T = np.array(splits, dtype=float) / duration
    slope, intercept = np.polyfit(inverse_T, values, 1)
    return {"window_ms": [duration / n for n in splits], "dkl_mean": values, "dkl_inf": float(intercept),
            "bias_B_ms": float(slope)}
