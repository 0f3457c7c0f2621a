"""Boltzmann machines over binary units: exact enumeration, a Gibbs reference sampler, random BMs.

Conventions used throughout the package
---------------------------------------
* A network has ``n`` units; a state is a 0/1 vector ``z`` of length ``n``.
* Energy ``E(z) = -1/2 z^T W z - b^T z``; the distribution is ``p(z) ∝ exp(-E(z))``.
* ``W`` is symmetric with a zero diagonal, ``b`` is the bias vector (both dimensionless).
* STATE INDEX ``= sum_k z_k * 2**(n-1-k)``: unit 0 is the most significant bit, so the binary
  string of the index, left to right, reads ``z_0 z_1 ... z_{n-1}``.

Exact enumeration handles at most :data:`MAX_EXACT_UNITS` units (2**20 states).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "MAX_EXACT_UNITS",
    "SYMMETRY_TOLERANCE",
    "BoltzmannMachine",
    "all_states",
    "energies",
    "joint",
    "marginals",
    "exact_moments",
    "gibbs_sample",
    "random_bm",
    "states_to_indices",
    "indices_to_states",
    "block_diagonal",
    "block_offsets",
]

MAX_EXACT_UNITS = 20
"""Largest number of units for which the joint distribution is enumerated exactly."""

SYMMETRY_TOLERANCE = 1e-10
"""Relative tolerance for the symmetry and zero-diagonal checks, times ``max(1, max(abs(W)))``."""


@dataclass(frozen=True)
class BoltzmannMachine:
    """A Boltzmann machine with symmetric weights ``W`` (n, n), zero diagonal, and biases ``b`` (n,).

    Parameters
    ----------
    W : np.ndarray
        Symmetric weight matrix, shape (n, n), zero diagonal, finite (dimensionless).
    b : np.ndarray
        Bias vector, shape (n,), finite (dimensionless).

    Raises
    ------
    ValueError
        If shapes are wrong or inconsistent, entries are NaN/inf, ``W`` is not symmetric, or its
        diagonal is not zero. The message names the offending parameter.
    """

    W: np.ndarray
    b: np.ndarray

    def __post_init__(self) -> None:
        try:
            W = np.array(self.W, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"W must be a numeric (n, n) array: {exc}") from None
        try:
            b = np.array(self.b, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"b must be a numeric (n,) array: {exc}") from None
        if W.ndim != 2 or W.shape[0] != W.shape[1]:
            raise ValueError(f"W must be a square 2-D array (n, n), got shape {W.shape}")
        if W.shape[0] < 1:
            raise ValueError("W must have at least one unit, got shape (0, 0)")
        if b.ndim != 1:
            raise ValueError(f"b must be a 1-D array (n,), got shape {b.shape}")
        if W.shape[0] != b.shape[0]:
            raise ValueError(f"W has shape {W.shape} but b has {b.shape[0]} entries; they must match")
        if not np.all(np.isfinite(W)):
            raise ValueError("W contains NaN or inf entries; all weights must be finite")
        if not np.all(np.isfinite(b)):
            raise ValueError("b contains NaN or inf entries; all biases must be finite")
        tol = SYMMETRY_TOLERANCE * max(1.0, float(np.max(np.abs(W))))
        asym = 0.0 if np.array_equal(W, W.T) else float(np.max(np.abs(W - W.T)))  # exact symmetry: one pass
        if asym > tol:
            raise ValueError(f"W must be symmetric: max |W - W^T| = {asym:.3g} exceeds tolerance {tol:.3g}")
        diag = float(np.max(np.abs(np.diag(W))))
        if diag > tol:
            raise ValueError(f"W must have a zero diagonal: max |W_kk| = {diag:.3g} exceeds tolerance {tol:.3g}")
        W.setflags(write=False)
        b.setflags(write=False)
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "b", b)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoltzmannMachine):
            return NotImplemented
        return np.array_equal(self.W, other.W) and np.array_equal(self.b, other.b)

    def __hash__(self) -> int:
        return hash((self.W.shape, self.W.tobytes(), self.b.tobytes()))

    @property
    def n_units(self) -> int:
        """Number of units n."""
        return int(self.b.shape[0])

    def to_dict(self) -> dict:
        """``{"W": [[...], ...], "b": [...]}`` with plain Python floats (JSON-serialisable)."""
        return {"W": self.W.tolist(), "b": self.b.tolist()}

    def to_json(self, path: str | Path) -> Path:
        """Write ``{"W": ..., "b": ...}`` to ``path``; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def from_dict(cls, data: dict, source: str = "dict") -> "BoltzmannMachine":
        """Build from a mapping with keys ``"W"`` and ``"b"``; ``source`` names it in errors."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object with keys 'W' and 'b', got {type(data).__name__}")
        missing = [key for key in ("W", "b") if key not in data]
        if missing:
            raise ValueError(f"{source}: missing key(s) {missing}; expected {{\"W\": [[...]], \"b\": [...]}}")
        try:
            return cls(W=data["W"], b=data["b"])
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> "BoltzmannMachine":
        """Read a BM from a JSON file ``{"W": [[...], ...], "b": [...]}``.

        Raises
        ------
        ValueError
            If the file is missing, is not valid JSON, lacks a key, or holds an invalid BM;
            the message names the file.
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read Boltzmann machine file {path}: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Boltzmann machine file {path} is not valid JSON: {exc}") from None
        return cls.from_dict(data, source=f"Boltzmann machine file {path}")


def _check_n_units(n: int, name: str = "n") -> int:
    if int(n) != n:
        raise ValueError(f"{name} must be an integer, got {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"{name} must be at least 1, got {n}")
    if n > MAX_EXACT_UNITS:
        raise ValueError(f"exact enumeration handles at most {MAX_EXACT_UNITS} units, got {n}")
    return n


def all_states(n: int) -> np.ndarray:
    """All 2**n binary states in index order, shape (2**n, n), dtype uint8.

    Row ``i`` is the state whose index is ``i`` (unit 0 = most significant bit).
    """
    n = _check_n_units(n)
    return indices_to_states(np.arange(2**n), n)


def states_to_indices(states: np.ndarray) -> np.ndarray:
    """State indices ``sum_k z_k 2**(n-1-k)`` of binary states, shape (m, n) -> (m,) int64.

    A single state of shape (n,) gives a 0-d array.
    """
    states = np.asarray(states)
    if states.ndim not in (1, 2):
        raise ValueError(f"states must have shape (n,) or (m, n), got {states.shape}")
    if states.size and not np.all((states == 0) | (states == 1)):
        raise ValueError("states must contain only 0 and 1")
    n = states.shape[-1]
    if n > 62:
        raise ValueError(f"states must have at most 62 units for int64 indices, got {n}")
    weights = (1 << np.arange(n - 1, -1, -1, dtype=np.int64))
    return states.astype(np.int64) @ weights


def indices_to_states(idx: np.ndarray | int, n: int) -> np.ndarray:
    """Binary states (..., n) uint8 of the state indices ``idx`` (inverse of :func:`states_to_indices`)."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = int(n)
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= 2**n):
        raise ValueError(f"idx must lie in [0, 2**{n} - 1], got range [{idx.min()}, {idx.max()}]")
    shifts = np.arange(n - 1, -1, -1, dtype=np.int64)
    return ((idx[..., None] >> shifts) & 1).astype(np.uint8)


def energies(bm: BoltzmannMachine, states: np.ndarray) -> np.ndarray:
    """Energies ``E(z) = -1/2 z^T W z - b^T z`` of states (m, n) -> (m,) (or (n,) -> scalar)."""
    z = np.asarray(states, dtype=float)
    if z.shape[-1] != bm.n_units:
        raise ValueError(f"states must have {bm.n_units} columns (one per unit), got shape {z.shape}")
    return -0.5 * np.einsum("...i,ij,...j->...", z, bm.W, z) - z @ bm.b


def joint(bm: BoltzmannMachine) -> np.ndarray:
    """Exact joint distribution p(z) over all 2**n states in index order, shape (2**n,), sums to 1.

    Computed stably as ``exp(-E - max(-E))`` normalised.
    """
    states = all_states(bm.n_units)
    log_unnorm = -energies(bm, states)
    p = np.exp(log_unnorm - log_unnorm.max())
    return p / p.sum()


def marginals(bm: BoltzmannMachine) -> np.ndarray:
    """Exact marginals p(z_k = 1), shape (n,)."""
    return joint(bm) @ all_states(bm.n_units).astype(float)


def exact_moments(bm: BoltzmannMachine) -> tuple[np.ndarray, np.ndarray]:
    """Exact first and second moments: ``mean[i] = <z_i>``, ``second[i, j] = <z_i z_j>`` (diag = mean)."""
    p = joint(bm)
    z = all_states(bm.n_units).astype(float)
    mean = p @ z
    second = (z * p[:, None]).T @ z
    return mean, second


def gibbs_sample(
    bm: BoltzmannMachine,
    n_samples: int,
    seed: int | None,
    burn_in: int = 100,
    thin: int = 1,
) -> np.ndarray:
    """Sequential-sweep Gibbs samples from ``bm``, shape (n_samples, n), dtype uint8.

    One sweep updates units 0, 1, ..., n-1 in turn from ``p(z_k = 1 | z_rest) =
    sigmoid(b_k + sum_j W_kj z_j)``. The chain starts from a uniformly random state, discards
    ``burn_in`` sweeps, then records the state after every ``thin``-th sweep.

    Parameters
    ----------
    n_samples : int, >= 1
    seed : int or None
        Seed of ``numpy.random.default_rng``.
    burn_in : int, >= 0
        Sweeps discarded before the first sample.
    thin : int, >= 1
        Sweeps between recorded samples.
    """
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if int(burn_in) != burn_in or burn_in < 0:
        raise ValueError(f"burn_in must be a non-negative integer, got {burn_in!r}")
    if int(thin) != thin or thin < 1:
        raise ValueError(f"thin must be a positive integer, got {thin!r}")
    n_samples, burn_in, thin = int(n_samples), int(burn_in), int(thin)
    rng = np.random.default_rng(seed)
    n = bm.n_units
    W = bm.W
    b = bm.b
    z = rng.integers(0, 2, size=n).astype(float)
    out = np.empty((n_samples, n), dtype=np.uint8)
    total_sweeps = burn_in + n_samples * thin
    uniforms = rng.random((total_sweeps, n))
    # Log-odds threshold: z_k = 1 iff u < sigmoid(a)  <=>  log(u / (1 - u)) < a.
    with np.errstate(divide="ignore"):
        logit_u = np.log(uniforms) - np.log1p(-uniforms)
    recorded = 0
    for sweep in range(total_sweeps):
        row = logit_u[sweep]
        for k in range(n):
            z[k] = 1.0 if row[k] < b[k] + W[k] @ z else 0.0
        if sweep >= burn_in and (sweep - burn_in) % thin == thin - 1:
            out[recorded] = z
            recorded += 1
    return out


def random_bm(n_units: int, seed: int | None, weight_scale: float = 1.0, bias_scale: float = 1.0) -> BoltzmannMachine:
    """A random BM as in Petrovici et al. (references §1).

    ``W = (A + A^T) / 2`` with ``A_ij ~ N(0, weight_scale^2)``, zero diagonal, and
    ``b_k ~ N(0, bias_scale^2)``, drawn (A first, then b) from ``np.random.default_rng(seed)``.
    """
    if int(n_units) != n_units or n_units < 1:
        raise ValueError(f"n_units must be a positive integer, got {n_units!r}")
    if not np.isfinite(weight_scale) or weight_scale < 0:
        raise ValueError(f"weight_scale must be finite and >= 0, got {weight_scale!r}")
    if not np.isfinite(bias_scale) or bias_scale < 0:
        raise ValueError(f"bias_scale must be finite and >= 0, got {bias_scale!r}")
    n = int(n_units)
    rng = np.random.default_rng(seed)
    A = rng.normal(0.0, weight_scale, size=(n, n))
    W = 0.5 * (A + A.T)
    np.fill_diagonal(W, 0.0)
    b = rng.normal(0.0, bias_scale, size=n)
    return BoltzmannMachine(W=W, b=b)


def block_diagonal(bms: list[BoltzmannMachine]) -> BoltzmannMachine:
    """One BM made of independent ones: W block-diagonal, biases concatenated.

    Several small networks then run as one population (unit ``k`` of ``bms[i]`` is unit
    ``offsets[i] + k``, see :func:`block_offsets`); its joint is the product of theirs.
    """
    if not bms:
        raise ValueError("bms must hold at least one BoltzmannMachine")
    n = sum(bm.n_units for bm in bms)
    W = np.zeros((n, n))
    offsets = block_offsets(bms)
    for bm, start in zip(bms, offsets):
        W[start:start + bm.n_units, start:start + bm.n_units] = bm.W
    return BoltzmannMachine(W=W, b=np.concatenate([bm.b for bm in bms]))


def block_offsets(bms: list[BoltzmannMachine]) -> np.ndarray:
    """Index of the first unit of each BM in :func:`block_diagonal` of ``bms``."""
    sizes = np.array([bm.n_units for bm in bms], dtype=int)
    return np.concatenate([[0], np.cumsum(sizes)[:-1]])
