"""Multimodal Boltzmann machines: targets whose modes are far apart, for measuring mixing.

:func:`bistable_bm` builds the "duck/rabbit" target of issue 21: two complementary patterns ``xi`` and
``1 - xi`` are the two most probable states, equally probable, separated by an energy barrier that
grows with the coupling. It is the Mattis (single-pattern Hopfield) model written in 0/1 units:
with spins ``s = 2 z - 1`` and ``sigma = 2 xi - 1``, ``E(s) = -J/2 sum_{i != j} sigma_i sigma_j s_i s_j``,
which in the package's convention ``E(z) = -1/2 z^T W z - b^T z`` (:mod:`cortexsim.models.boltzmann`)
is ``W_ij = 4 J sigma_i sigma_j`` (i != j) and ``b_i = -2 J sigma_i sum_{j != i} sigma_j``, up to a
constant. Flipping every unit leaves the energy unchanged, so ``p(z) = p(1 - z)`` exactly.

The barrier: with ``M = sum_i sigma_i s_i`` the energy is ``-J (M^2 - n) / 2``; the modes have
``M = +-n``, the most probable path between them crosses ``M = 0`` (n even), so the barrier is
``J n^2 / 2`` (:func:`bistable_barrier`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boltzmann import BoltzmannMachine, energies, joint, states_to_indices

__all__ = ["MultimodalTarget", "bistable_bm", "bistable_barrier", "half_pattern", "bistable_symmetry_orbits"]


@dataclass(frozen=True)
class MultimodalTarget:
    """A Boltzmann machine with named modes.

    Attributes
    ----------
    bm : BoltzmannMachine
        The target (exact distribution by enumeration: :func:`cortexsim.models.boltzmann.joint`).
    patterns : np.ndarray
        (n_modes, n) binary patterns, the centres of the modes.
    coupling : float
        The coupling J (dimensionless) the target was built with.
    """

    bm: BoltzmannMachine
    patterns: np.ndarray
    coupling: float

    @property
    def n_modes(self) -> int:
        return int(self.patterns.shape[0])

    def mode_probabilities(self) -> np.ndarray:
        """Exact probability of each pattern state (not of its whole basin), by enumeration."""
        return joint(self.bm)[states_to_indices(self.patterns)]

    def barrier(self) -> float:
        """Energy of the lowest state halfway between the first two patterns minus that of pattern 0.

        Computed by enumeration over all states at equal Hamming distance from both patterns
        (independent of the closed form :func:`bistable_barrier`).
        """
        from .boltzmann import all_states

        states = all_states(self.bm.n_units).astype(np.int64)  # uint8 differences would wrap around
        d0 = np.abs(states - self.patterns[0]).sum(axis=1)
        d1 = np.abs(states - self.patterns[1]).sum(axis=1)
        halfway = states[d0 == d1]
        if halfway.size == 0:
            raise ValueError("no state lies halfway between the patterns (odd Hamming distance)")
        return float(energies(self.bm, halfway).min() - energies(self.bm, self.patterns[0]))


def half_pattern(n_units: int) -> np.ndarray:
    """The pattern ``[1] * (n // 2) + [0] * (n - n // 2)`` (first half of the units on)."""
    if int(n_units) != n_units or n_units < 2:
        raise ValueError(f"n_units must be an integer >= 2, got {n_units!r}")
    n = int(n_units)
    return (np.arange(n) < n // 2).astype(np.uint8)


def bistable_bm(n_units: int = 6, coupling: float = 0.4, pattern=None) -> MultimodalTarget:
    """Bistable target: ``pattern`` and its complement, equally probable, with a barrier ``J n^2 / 2``.

    Parameters
    ----------
    n_units : int
        Units (2 .. 20); even ``n`` gives a barrier state exactly halfway.
    coupling : float
        J > 0 (dimensionless). ``W_ij = +-4 J``; the barrier is ``J n^2 / 2`` (e.g. 7.2 for n = 6,
        J = 0.4, so a local sampler (Gibbs, a LIF network) switches rarely).
    pattern : array (n,), optional
        Binary pattern of mode 0 (default :func:`half_pattern`); mode 1 is its complement.

    Returns
    -------
    MultimodalTarget
        With ``patterns = [pattern, 1 - pattern]``.

    Examples
    --------
    >>> target = bistable_bm(4, 0.5)
    >>> target.bm.W[0]
    array([ 0.,  2., -2., -2.])
    >>> target.bm.b
    array([1., 1., 1., 1.])
    """
    if int(n_units) != n_units or not 2 <= n_units <= 20:
        raise ValueError(f"n_units must be an integer in [2, 20], got {n_units!r}")
    if not np.isfinite(coupling) or coupling <= 0:
        raise ValueError(f"coupling must be a finite number > 0, got {coupling!r}")
    n = int(n_units)
    xi = half_pattern(n) if pattern is None else np.asarray(pattern)
    if xi.shape != (n,) or not np.all((xi == 0) | (xi == 1)):
        raise ValueError(f"pattern must be a binary vector of {n} units, got {pattern!r}")
    sigma = 2.0 * xi.astype(float) - 1.0
    J = float(coupling)
    W = 4.0 * J * np.outer(sigma, sigma)
    np.fill_diagonal(W, 0.0)
    b = -2.0 * J * sigma * (sigma.sum() - sigma)
    patterns = np.stack([xi, 1 - xi]).astype(np.uint8)
    patterns.setflags(write=False)
    return MultimodalTarget(BoltzmannMachine(W=W, b=b), patterns, J)


def bistable_barrier(n_units: int, coupling: float) -> float:
    """Closed-form barrier ``J n^2 / 2`` of :func:`bistable_bm` with a balanced pattern and even n."""
    return float(coupling) * int(n_units) ** 2 / 2.0


def bistable_symmetry_orbits(target: MultimodalTarget) -> tuple[np.ndarray, np.ndarray]:
    """Orbits of the unit permutations that leave a :func:`bistable_bm` target unchanged.

    The Mattis target is invariant under any permutation within the units that are on in pattern 0
    and within those that are off; with a balanced pattern also under swapping the two groups. Returns
    ``(unit_orbits (n,), pair_orbits (n, n))`` integer labels for
    :func:`cortexsim.models.cd_learning.tie_moments`: units by group (one orbit when balanced); pairs
    within a group (one orbit per group, one for both when balanced) and across the groups.

    Examples
    --------
    >>> units, pairs = bistable_symmetry_orbits(bistable_bm(4, 0.5))
    >>> units.tolist(), pairs[0].tolist()
    ([0, 0, 0, 0], [0, 0, 2, 2])
    """
    xi = np.asarray(target.patterns[0], dtype=int)
    balanced = 2 * int(xi.sum()) == xi.size
    units = np.zeros(xi.size, dtype=int) if balanced else xi.copy()
    same = xi[:, None] == xi[None, :]
    within = np.zeros_like(same, dtype=int) if balanced else np.broadcast_to(xi[:, None], same.shape).astype(int)
    pairs = np.where(same, within, 2)
    return units, pairs
