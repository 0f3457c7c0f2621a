"""Contrastive-divergence learning of Boltzmann machines from sampled statistics (pure numpy).

The update of a BM with energy ``E(z) = -1/2 z^T W z - b^T z`` (see :mod:`cortexsim.models.boltzmann`)
is the difference of data and model statistics (references §3):

    dW = eta (<z z^T>_data - <z z^T>_model),   db = eta (<z>_data - <z>_model),

with the diagonal of ``dW`` zero and, optionally, a connectivity ``mask`` (e.g. the bipartite mask
of an RBM, or the block-diagonal mask of several independent BMs simulated as one network). With the
exact moments of a target distribution p* as data statistics and the exact moments of the model,
the update is the gradient of ``-D_KL(p* || p_model)`` (the log-likelihood gradient).

Everything here is deterministic numpy: moments from samples or from distributions, the update,
learning-rate schedules, a momentum optimizer whose state can be saved and restored, growing
sampling times, iterate averaging, input checks for training data, and an exact block-Gibbs sampler
for bipartite (restricted) BMs, used as the numpy baseline of the digits task.

:class:`CDUpdate` is the one parameter update every CD loop of the package makes (the spiking
engine :mod:`cortexsim.protocols.cd_engine` and the exact sampler of the digits task): gradient from
data and model moments, learning-rate schedule, momentum optimizer, mask, iterate averaging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cortexsim.results import decode_array, encode_array

from .boltzmann import BoltzmannMachine, all_states, exact_moments

__all__ = [
    "SCHEDULE_KINDS",
    "LearningRateSchedule",
    "MomentumOptimizer",
    "check_binary_data",
    "moments_from_states",
    "DiagonalBlocks",
    "matrix_to_json",
    "matrix_from_json",
    "moments_from_distribution",
    "cd_gradient",
    "exact_cd_gradient",
    "bipartite_mask",
    "unit_on_probability",
    "block_diagonal_mask",
    "block_gibbs",
    "sampling_durations",
    "staggered_phases",
    "IterateAverage",
    "CDUpdate",
    "gradient_norm",
]

#: Learning-rate schedules: ``constant`` eta0; ``inverse`` eta0 * tau / (tau + t) (references §3).
SCHEDULE_KINDS = ("constant", "inverse")


@dataclass(frozen=True)
class LearningRateSchedule:
    """Learning rate eta(t) of iteration t = 0, 1, ... (dimensionless).

    Attributes
    ----------
    eta0 : float
        Initial learning rate, > 0.
    kind : {"constant", "inverse"}
        ``constant``: eta(t) = eta0; ``inverse``: eta(t) = eta0 * tau / (tau + t).
    tau : float
        Decay constant of the inverse schedule (iterations), > 0; 100 in the seeds' code.
    """

    eta0: float
    kind: str = "inverse"
    tau: float = 100.0

    def __post_init__(self) -> None:
        if not isinstance(self.eta0, (int, float, np.integer, np.floating)) or not np.isfinite(self.eta0) \
                or self.eta0 <= 0:
            raise ValueError(f"learning rate eta0 must be a finite number > 0, got {self.eta0!r}")
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"learning-rate schedule kind must be one of {SCHEDULE_KINDS}, got {self.kind!r}")
        if not np.isfinite(self.tau) or self.tau <= 0:
            raise ValueError(f"schedule tau must be a finite number > 0 (iterations), got {self.tau!r}")

    def rate(self, iteration: int) -> float:
        """eta at ``iteration`` (>= 0)."""
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        if self.kind == "constant":
            return float(self.eta0)
        return float(self.eta0 * self.tau / (self.tau + iteration))


def _symmetrise(matrix: np.ndarray) -> np.ndarray:
    out = 0.5 * (matrix + matrix.T)
    np.fill_diagonal(out, 0.0)
    return out


class DiagonalBlocks:
    """A block-diagonal (n, n) matrix held as its diagonal blocks only (zero elsewhere).

    The second moments and CD gradients of M independent networks trained with a block-diagonal mask
    are only ever read block by block (``matrix[s, s]`` for each network's slice ``s``): this holds
    those blocks without the full (n, n) array (for 10 networks of 174 units, 3 MB of blocks instead
    of a 24 MB matrix to allocate and fill every iteration). ``matrix[s, s]`` of one of its blocks
    returns that block (no copy); ``np.asarray(matrix)`` gives the full array, so any consumer of
    dense matrices still works.

    Parameters
    ----------
    blocks : list of slice
        Consecutive, non-overlapping slices of the units (steps of 1), in increasing order.
    parts : list of array
        The block of each slice, ``(s.stop - s.start,) * 2``.
    n : int
        Size of the full matrix (>= the last slice's stop).

    Examples
    --------
    >>> m = DiagonalBlocks([slice(0, 1), slice(1, 3)], [np.ones((1, 1)), 2 * np.ones((2, 2))], 3)
    >>> m[1:3, 1:3].tolist(), np.asarray(m)[0].tolist(), m.shape
    ([[2.0, 2.0], [2.0, 2.0]], [1.0, 0.0, 0.0], (3, 3))
    """

    def __init__(self, blocks: list, parts: list, n: int):
        self.blocks, self.parts, self.n = list(blocks), list(parts), int(n)
        if len(self.blocks) != len(self.parts):
            raise ValueError(f"one part per block: got {len(self.blocks)} blocks and {len(self.parts)} parts")
        stop = 0
        for s, part in zip(self.blocks, self.parts):
            size = s.stop - s.start
            if s.step not in (None, 1) or s.start < stop or size < 1 or s.stop > self.n:
                raise ValueError(f"blocks must be increasing, non-overlapping slices within 0 .. {self.n}, got {s}")
            if np.shape(part) != (size, size):
                raise ValueError(f"the part of block {s} must have shape ({size}, {size}), got {np.shape(part)}")
            stop = s.stop
        self._index = {(s.start, s.stop): k for k, s in enumerate(self.blocks)}

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def __getitem__(self, key):
        if (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, slice) for k in key)
                and key[0] == key[1] and key[0].step in (None, 1)
                and (key[0].start, key[0].stop) in self._index):
            return self.parts[self._index[(key[0].start, key[0].stop)]]
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        out = np.zeros(self.shape, dtype=dtype if dtype is not None else np.result_type(*self.parts))
        for s, part in zip(self.blocks, self.parts):
            out[s, s] = part
        return out

    def copy(self) -> "DiagonalBlocks":
        """A copy with copied parts."""
        return DiagonalBlocks(self.blocks, [np.array(part, dtype=float) for part in self.parts], self.n)

    @classmethod
    def zeros(cls, blocks: list, n: int) -> "DiagonalBlocks":
        """Zero blocks of the slices ``blocks`` of an (n, n) matrix."""
        return cls(blocks, [np.zeros((s.stop - s.start,) * 2) for s in blocks], n)

    @classmethod
    def from_dense(cls, matrix, blocks: list, name: str = "matrix") -> "DiagonalBlocks":
        """The diagonal blocks of a full (n, n) ``matrix`` (copied), which must be zero outside them.

        Raises
        ------
        ValueError
            Naming ``name`` if the matrix is not square or has non-zero entries outside the blocks.

        Examples
        --------
        >>> DiagonalBlocks.from_dense(np.eye(3), [slice(0, 1), slice(1, 3)]).parts[1].tolist()
        [[1.0, 0.0], [0.0, 1.0]]
        """
        if isinstance(matrix, DiagonalBlocks):
            if [(s.start, s.stop) for s in matrix.blocks] != [(s.start, s.stop) for s in blocks]:
                raise ValueError(f"{name} holds other blocks than the ones asked for")
            return matrix.copy()
        array = np.asarray(matrix, dtype=float)
        if array.ndim != 2 or array.shape[0] != array.shape[1]:
            raise ValueError(f"{name} must be a square (n, n) matrix, got shape {array.shape}")
        out = cls(blocks, [np.array(array[s, s]) for s in blocks], array.shape[0])
        inside = sum(np.count_nonzero(part) for part in out.parts)
        if np.count_nonzero(array) != inside:
            raise ValueError(f"{name} has non-zero entries outside the diagonal blocks of the independent networks "
                             f"({np.count_nonzero(array) - inside} of them): it cannot be held block by block")
        return out

    def to_dict(self) -> dict:
        """JSON-serialisable, exact and compact (each part through :func:`cortexsim.results.encode_array`)."""
        return {"diagonal_blocks": [[s.start, s.stop] for s in self.blocks], "n": self.n,
                "parts": [encode_array(part) for part in self.parts]}

    @classmethod
    def from_dict(cls, data: dict) -> "DiagonalBlocks":
        """Restore what :meth:`to_dict` wrote."""
        return cls([slice(int(a), int(b)) for a, b in data["diagonal_blocks"]],
                   [decode_array(part) for part in data["parts"]], int(data["n"]))


def matrix_to_json(matrix):
    """A full matrix as nested lists, a :class:`DiagonalBlocks` as its compact :meth:`~DiagonalBlocks.to_dict`
    (None stays None): how optimizer, averaging and engine states write their matrices."""
    if matrix is None:
        return None
    if isinstance(matrix, DiagonalBlocks):
        return matrix.to_dict()
    return np.asarray(matrix).tolist()


def matrix_from_json(value):
    """Inverse of :func:`matrix_to_json` (nested lists: a float array; a ``diagonal_blocks`` mapping: a
    :class:`DiagonalBlocks`)."""
    if value is None:
        return None
    if isinstance(value, dict):
        if "diagonal_blocks" not in value:
            raise ValueError(f"a stored matrix must be nested lists or diagonal blocks, got keys {sorted(value)}")
        return DiagonalBlocks.from_dict(value)
    return np.asarray(value, dtype=float)


@dataclass
class MomentumOptimizer:
    """Gradient ascent with momentum on (W, b); its state (velocities) can be saved and restored.

    ``v <- momentum * v + eta * (grad - weight_decay * W)``, ``W <- W + v`` (biases: no decay).

    Attributes
    ----------
    momentum : float
        In [0, 1).
    weight_decay : float
        L2 penalty on the weights (per unit learning rate), >= 0.
    velocity_W, velocity_b : ndarray
        Current velocities (zeros at the start).
    """

    momentum: float
    weight_decay: float
    velocity_W: np.ndarray
    velocity_b: np.ndarray

    @classmethod
    def create(cls, n_units: int, momentum: float = 0.0, weight_decay: float = 0.0,
               blocks: list | None = None) -> "MomentumOptimizer":
        """A fresh optimizer for ``n_units`` units (velocities zero; with ``blocks`` the weight velocity is held
        as :class:`DiagonalBlocks`, for weights held that way)."""
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
        if not np.isfinite(weight_decay) or weight_decay < 0:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
        velocity = np.zeros((n_units, n_units)) if blocks is None else DiagonalBlocks.zeros(blocks, n_units)
        return cls(float(momentum), float(weight_decay), velocity, np.zeros(n_units))

    def step(self, W: np.ndarray, b: np.ndarray, grad_W: np.ndarray, grad_b: np.ndarray,
             learning_rate: float, mask: np.ndarray | None = None, blocks: list | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """New (W, b) after one step along (grad_W, grad_b); W stays symmetric with zero diagonal.

        ``blocks`` (list of slices; only with a ``mask`` that is zero outside the diagonal blocks, see
        :class:`CDUpdate`): the weight step is computed block by block, the rest of W and of the
        velocity is left as it is (what the full step does there: the mask zeroes it); the same
        numbers with M times less work for M independent networks. The weights are then held block by
        block (no (n, n) array at all): ``W`` a :class:`DiagonalBlocks` (a full W, zero outside the blocks,
        is converted), the velocity likewise (a full one, e.g. from an older checkpoint, is converted once),
        and the new W is a :class:`DiagonalBlocks`, with the same numbers as the full route.

        Raises
        ------
        ValueError
            If ``learning_rate`` is not > 0 or shapes do not match.
        """
        if not np.isfinite(learning_rate) or learning_rate <= 0:
            raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
        if blocks is not None or isinstance(W, DiagonalBlocks):
            return self._step_blocks(W, b, grad_W, grad_b, learning_rate, mask, blocks)
        W, b = np.asarray(W, dtype=float), np.asarray(b, dtype=float)
        if W.shape != self.velocity_W.shape or grad_W.shape != W.shape:
            raise ValueError(f"W and grad_W must have shape {self.velocity_W.shape}, got {W.shape}, {grad_W.shape}")
        if b.shape != self.velocity_b.shape or grad_b.shape != b.shape:
            raise ValueError(f"b and grad_b must have shape {self.velocity_b.shape}, got {b.shape}, {grad_b.shape}")
        grad_W = np.asarray(grad_W, dtype=float)
        self.velocity_b = self.momentum * self.velocity_b + learning_rate * np.asarray(grad_b, dtype=float)
        step_W = _symmetrise(grad_W - self.weight_decay * W if self.weight_decay else grad_W)
        if mask is not None:
            step_W = step_W * mask
        self.velocity_W = self.momentum * self.velocity_W + learning_rate * step_W
        return W + self.velocity_W, b + self.velocity_b

    def _step_blocks(self, W: "DiagonalBlocks", b, grad_W, grad_b, learning_rate: float, mask, blocks
                     ) -> tuple["DiagonalBlocks", np.ndarray]:
        """:meth:`step` of weights held as :class:`DiagonalBlocks` (the arithmetic of the ``blocks`` route)."""
        if blocks is None or mask is None:
            raise ValueError("weights held as diagonal blocks need the blocks and a mask that is zero outside them")
        W = DiagonalBlocks.from_dense(W, blocks, "W") if not isinstance(W, DiagonalBlocks) else W
        if [(s.start, s.stop) for s in W.blocks] != [(s.start, s.stop) for s in blocks]:
            raise ValueError("W holds other blocks than the update's")
        b = np.asarray(b, dtype=float)
        if W.shape != tuple(np.shape(self.velocity_W)) or tuple(np.shape(grad_W)) != W.shape:
            raise ValueError(f"W and grad_W must have shape {np.shape(self.velocity_W)}, got {W.shape}, "
                             f"{np.shape(grad_W)}")
        if b.shape != self.velocity_b.shape or np.shape(grad_b) != b.shape:
            raise ValueError(f"b and grad_b must have shape {self.velocity_b.shape}, got {b.shape}, "
                             f"{np.shape(grad_b)}")
        if not isinstance(self.velocity_W, DiagonalBlocks):
            self.velocity_W = DiagonalBlocks.from_dense(self.velocity_W, blocks, "the weight velocity")
        self.velocity_b = self.momentum * self.velocity_b + learning_rate * np.asarray(grad_b, dtype=float)
        parts = []
        for k, s in enumerate(blocks):
            W_s, grad_s = W.parts[k], grad_W[s, s]
            step_W = _symmetrise(grad_s - self.weight_decay * W_s if self.weight_decay else grad_s) * mask[s, s]
            self.velocity_W.parts[k] = self.momentum * self.velocity_W.parts[k] + learning_rate * step_W
            parts.append(W_s + self.velocity_W.parts[k])
        return DiagonalBlocks(W.blocks, parts, W.n), b + self.velocity_b

    def to_dict(self) -> dict:
        """JSON-serialisable state (exact: floats are written with full precision by ``json``; a
        :class:`DiagonalBlocks` velocity compactly, :func:`matrix_to_json`)."""
        return {"momentum": self.momentum, "weight_decay": self.weight_decay,
                "velocity_W": matrix_to_json(self.velocity_W), "velocity_b": self.velocity_b.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "MomentumOptimizer":
        """Restore a state written by :meth:`to_dict`."""
        return cls(float(data["momentum"]), float(data["weight_decay"]),
                   matrix_from_json(data["velocity_W"]), np.asarray(data["velocity_b"], dtype=float))


def check_binary_data(data, n_columns: int, name: str = "data") -> np.ndarray:
    """Validate training data: a 2-D array of 0/1 values with ``n_columns`` columns; returns float copy.

    Raises
    ------
    ValueError
        If the data are not 2-D, have the wrong width, are empty, contain NaN/inf, or hold values
        other than 0 and 1 (binarise them first; nothing is clipped or rounded here).
    """
    try:
        array = np.array(data, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric (n_samples, {n_columns}) array: {exc}") from None
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, {n_columns}), got shape {array.shape}")
    if array.shape[1] != n_columns:
        raise ValueError(f"{name} must have {n_columns} columns (one per visible unit), got {array.shape[1]}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample, got 0 rows")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    if not np.all((array == 0) | (array == 1)):
        bad = array[(array != 0) & (array != 1)]
        raise ValueError(f"{name} must be binary (only 0 and 1); found {bad.size} other value(s), e.g. {bad[0]!r}")
    return array


def moments_from_states(states, weights=None, blocks=None, dense: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """First and second moments ``<z>`` (n,) and ``<z z^T>`` (n, n) of binary states (m, n).

    ``weights`` (m,), >= 0, weight each state (e.g. time spent in it); equal weights by default.
    ``blocks`` (list of slices of the units, binary states with equal weights only): the second moment
    only within each block, zero elsewhere (for M independent networks trained with a block-diagonal
    mask: M times less work; the entries within the blocks are exactly those of the full product).
    With ``blocks`` and ``dense=False`` the second moment is a :class:`DiagonalBlocks` (the blocks
    only, no full (n, n) array; :class:`CDUpdate` with the same blocks reads nothing else).
    Integer or bool states (e.g. the uint8 grids of :func:`cortexsim.analysis.states.states_on_grid`)
    are used as they are, without a float64 copy.

    Examples
    --------
    >>> z = np.array([[1, 1, 0], [1, 0, 1]])
    >>> moments_from_states(z, blocks=[slice(0, 2), slice(2, 3)])[1]
    array([[1. , 0.5, 0. ],
           [0.5, 0.5, 0. ],
           [0. , 0. , 0.5]])
    """
    z = np.asarray(states)
    if z.dtype.kind not in "biu":
        z = np.asarray(z, dtype=float)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"states must be a non-empty (m, n) array, got shape {z.shape}")
    if weights is not None or z.shape[0] >= 2**24:
        binary = False
    elif z.dtype.kind in "biu":   # no float copy: 0/1 integers (or bools) are binary
        binary = bool(z.size == 0 or (z.min() >= 0 and z.max() <= 1))
    else:
        binary = bool(np.all((z == 0.0) | (z == 1.0)))
    if blocks is not None and not binary:
        raise ValueError("blocks need binary states with equal weights (fewer than 2**24 of them)")
    if binary:
        # binary states, equal weights: co-activation counts are integers below 2**24, exact in
        # float32 whatever the summation order (twice as fast as float64), then divided by m once
        z32 = z.astype(np.float32)
        mean = z32.sum(axis=0, dtype=np.float64) / z.shape[0]
        if blocks is None:
            return mean, (z32.T @ z32).astype(float) / z.shape[0]
        parts = []
        for block in blocks:
            part = z32[:, block]
            parts.append((part.T @ part).astype(float) / z.shape[0])
        second = DiagonalBlocks(blocks, parts, z.shape[1])
        return mean, (np.asarray(second) if dense else second)
    z = np.asarray(z, dtype=float)
    if weights is None:
        w = np.full(z.shape[0], 1.0 / z.shape[0])
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (z.shape[0],) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be (m,) = ({z.shape[0]},), >= 0, with a positive sum")
        w = w / w.sum()
    mean = w @ z
    second = (z * w[:, None]).T @ z
    return mean, second


def moments_from_distribution(p, n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """Moments of a distribution ``p`` over the 2**n states in index order (unit 0 = MSB)."""
    p = np.asarray(p, dtype=float)
    if p.shape != (2**n_units,):
        raise ValueError(f"p must have 2**{n_units} = {2**n_units} entries, got shape {p.shape}")
    return moments_from_states(all_states(n_units), p)


def cd_gradient(data_moments: tuple[np.ndarray, np.ndarray], model_moments: tuple[np.ndarray, np.ndarray],
                mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CD update direction ``(<zz^T>_data - <zz^T>_model, <z>_data - <z>_model)``.

    The weight part is symmetrised, has a zero diagonal and is multiplied by ``mask`` (n, n) if given.
    """
    mean_data, second_data = (np.asarray(m, dtype=float) for m in data_moments)
    mean_model, second_model = (np.asarray(m, dtype=float) for m in model_moments)
    n = mean_data.shape[0]
    for label, array, shape in (("data mean", mean_data, (n,)), ("model mean", mean_model, (n,)),
                                ("data second moment", second_data, (n, n)),
                                ("model second moment", second_model, (n, n))):
        if array.shape != shape:
            raise ValueError(f"{label} must have shape {shape}, got {array.shape}")
    grad_W = _symmetrise(second_data - second_model)
    if mask is not None:
        mask = np.asarray(mask, dtype=float)
        if mask.shape != (n, n):
            raise ValueError(f"mask must have shape {(n, n)}, got {mask.shape}")
        grad_W = grad_W * mask
    return grad_W, mean_data - mean_model


def tie_moments(moments: tuple[np.ndarray, np.ndarray], unit_orbits, pair_orbits
                ) -> tuple[np.ndarray, np.ndarray]:
    """Moments averaged over the orbits of a symmetry of the target (CD with tied parameters).

    When the target is invariant under a group of unit permutations, its parameters are equal on each
    orbit of units (biases) and of pairs (weights). Averaging the model moments over the same orbits
    makes every parameter of an orbit receive the same CD update, so tied parameters stay tied, and the
    average cancels fluctuations that the symmetry maps onto each other (e.g. which of two symmetric
    modes a short run happened to visit longer).

    Parameters
    ----------
    moments : (mean (n,), second (n, n))
    unit_orbits : int array (n,)
        Orbit label of every unit.
    pair_orbits : int array (n, n)
        Orbit label of every pair (symmetric; the diagonal is ignored: ``<z_i z_i> = <z_i>``).

    Returns
    -------
    (mean, second) with every entry replaced by the mean over its orbit; the diagonal of ``second``
    is the tied mean.

    Examples
    --------
    >>> import numpy as np
    >>> mean, second = np.array([0.2, 0.4]), np.array([[0.2, 0.1], [0.1, 0.4]])
    >>> tied = tie_moments((mean, second), [0, 0], np.zeros((2, 2), int))
    >>> tied[0].tolist(), tied[1].tolist()
    ([0.30000000000000004, 0.30000000000000004], [[0.30000000000000004, 0.1], [0.1, 0.30000000000000004]])
    """
    mean, second = (np.asarray(m, dtype=float) for m in moments)
    n = mean.shape[0]
    units, pairs = np.asarray(unit_orbits), np.asarray(pair_orbits)
    if units.shape != (n,) or pairs.shape != (n, n):
        raise ValueError(f"unit_orbits must have shape {(n,)} and pair_orbits {(n, n)}, got {units.shape} and "
                         f"{pairs.shape}")
    if second.shape != (n, n):
        raise ValueError(f"second moment must have shape {(n, n)}, got {second.shape}")
    if not np.array_equal(pairs, pairs.T):
        raise ValueError("pair_orbits must be symmetric")
    tied_mean = np.empty(n)
    for label in np.unique(units):
        tied_mean[units == label] = mean[units == label].mean()
    tied_second = np.empty((n, n))
    off = ~np.eye(n, dtype=bool)
    symmetric = 0.5 * (second + second.T)
    for label in np.unique(pairs[off]):
        where = (pairs == label) & off
        tied_second[where] = symmetric[where].mean()
    np.fill_diagonal(tied_second, tied_mean)
    return tied_mean, tied_second


def exact_cd_gradient(model: BoltzmannMachine, p_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact update direction for a target distribution ``p_target`` over the model's 2**n states.

    Equals the gradient of ``-D_KL(p_target || p_model)`` with respect to (W_ij for i < j, b).
    """
    data = moments_from_distribution(p_target, model.n_units)
    return cd_gradient(data, exact_moments(model))


def bipartite_mask(n_visible: int, n_hidden: int) -> np.ndarray:
    """Connectivity mask of an RBM: units [visible..., hidden...], 1 between the groups, 0 within."""
    n = n_visible + n_hidden
    mask = np.zeros((n, n))
    mask[:n_visible, n_visible:] = 1.0
    mask[n_visible:, :n_visible] = 1.0
    return mask


def block_diagonal_mask(block_sizes) -> np.ndarray:
    """Mask of independent BMs simulated as one network: 1 within each block (off the diagonal)."""
    sizes = [int(s) for s in block_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"block_sizes must be positive integers, got {block_sizes!r}")
    mask = np.zeros((sum(sizes), sum(sizes)))
    start = 0
    for size in sizes:
        mask[start:start + size, start:start + size] = 1.0
        start += size
    np.fill_diagonal(mask, 0.0)
    return mask


def unit_on_probability(x: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-x)) of a Boltzmann unit's input ``x`` (its on-probability given the others;
    written with tanh, which does not overflow for large negative ``x``).

    Examples
    --------
    >>> unit_on_probability(np.array([0.0, np.log(3.0)]))
    array([0.5 , 0.75])
    """
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def block_gibbs(W_vh: np.ndarray, b_v: np.ndarray, b_h: np.ndarray, v_init: np.ndarray, n_sweeps: int,
                rng: np.random.Generator, clamp_mask: np.ndarray | None = None,
                record_from: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact block-Gibbs sampling of a bipartite BM for many chains at once.

    One sweep draws ``h ~ p(h | v) = sigmoid(b_h + v W_vh)`` then ``v ~ p(v | h) = sigmoid(b_v + h W_vh^T)``;
    visible entries where ``clamp_mask`` is True keep their value from ``v_init`` (clamping).

    Parameters
    ----------
    W_vh : array (n_v, n_h)
        Visible-hidden weights.
    b_v, b_h : arrays (n_v,), (n_h,)
        Biases.
    v_init : array (chains, n_v)
        Start states (and clamped values).
    n_sweeps : int, >= 1
    rng : numpy Generator
    clamp_mask : bool array (chains, n_v) or (n_v,), optional
    record_from : int
        Sweeps before this one are burn-in; the means are over sweeps ``record_from .. n_sweeps - 1``.

    Returns
    -------
    v_last : array (chains, n_v)
        Visible state after the last sweep (to continue persistent chains).
    v_mean : array (chains, n_v)
        Mean sampled visible state over the recorded sweeps.
    h_mean : array (chains, n_h)
        Mean of ``p(h | v)`` over the recorded sweeps (Rao-Blackwellised hidden statistics).
    """
    if int(n_sweeps) < 1 or not 0 <= record_from < n_sweeps:
        raise ValueError(f"need n_sweeps >= 1 and 0 <= record_from < n_sweeps, got {n_sweeps}, {record_from}")
    v = np.array(v_init, dtype=float)
    clamp = None if clamp_mask is None else np.broadcast_to(np.asarray(clamp_mask, dtype=bool), v.shape)
    clamped_values = v.copy()
    v_sum = np.zeros_like(v)
    h_sum = np.zeros((v.shape[0], W_vh.shape[1]))
    for sweep in range(int(n_sweeps)):
        p_h = unit_on_probability(b_h + v @ W_vh)
        h = (rng.random(p_h.shape) < p_h).astype(float)
        p_v = unit_on_probability(b_v + h @ W_vh.T)
        v = (rng.random(p_v.shape) < p_v).astype(float)
        if clamp is not None:
            v = np.where(clamp, clamped_values, v)
        if sweep >= record_from:
            v_sum += v
            h_sum += p_h
    n_recorded = n_sweeps - record_from
    return v, v_sum / n_recorded, h_sum / n_recorded


def sampling_durations(first_ms: float, last_ms: float | None, iterations: int, dt_ms: float) -> np.ndarray:
    """Sampling time of each CD iteration (ms): linear from ``first_ms`` to ``last_ms``, on the dt grid.

    ``last_ms`` None gives ``first_ms`` throughout. Each duration is rounded to a whole number of
    steps ``dt_ms`` (at least one step).
    """
    if int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    if not np.isfinite(dt_ms) or dt_ms <= 0:
        raise ValueError(f"dt_ms must be a finite number > 0, got {dt_ms!r}")
    last_ms = first_ms if last_ms is None else last_ms
    for name, value in (("first_ms", first_ms), ("last_ms", last_ms)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0 (ms), got {value!r}")
    raw = np.linspace(first_ms, last_ms, int(iterations))
    return np.maximum(np.round(raw / dt_ms), 1.0) * dt_ms


def staggered_phases(n_clamps: int, clamp_ms: float, free_ms: float, groups: int) -> list[list[tuple]]:
    """Phases of one CD iteration for ``groups`` groups of networks whose data and model phases are staggered.

    Unstaggered, an iteration of length ``P = n_clamps * clamp_ms + free_ms`` clamps ``n_clamps`` rows
    one after the other (row j in ``[j clamp_ms, (j + 1) clamp_ms)``) and then runs free for ``free_ms``.
    Group g runs the same sequence rotated cyclically by ``o_g``: ``g P / groups`` rounded to a whole
    number of ``clamp_ms`` (so no clamp is cut in two), i.e. at time t of the iteration group g does what
    the unstaggered sequence does at ``(t + o_g) mod P``. Every group keeps ``n_clamps`` whole clamps
    and ``free_ms`` of free running (in at most two pieces, the one at the start continuing the free run
    that ended the previous iteration). At any moment about the fraction ``n_clamps clamp_ms / P`` of
    the groups is clamped (exactly, when ``P / groups`` is a multiple of ``clamp_ms`` that divides
    ``n_clamps clamp_ms``; e.g. 10 clamps of 60 ms, 400 ms free, 10 groups: 5 to 7 of 10 groups, and
    the mean share during each group's clamps 0.600-0.607 against 0.590-0.600 while it runs free), so
    the share of clamped background sources is about the same in the data and in the model phase of
    every network (all networks clamped at once: 1 and 0).

    Parameters
    ----------
    n_clamps : int
        Rows clamped per iteration, >= 1.
    clamp_ms, free_ms : float
        Clamp time per row and free (model-phase) time (ms), > 0.
    groups : int
        Groups, >= 1 (1: the unstaggered sequence).

    Returns
    -------
    list of list of tuple
        One list per group of ``(start_ms, stop_ms, row)`` in time order covering ``[0, P)``; ``row`` is
        the clamped row index, or -1 when free.

    Examples
    --------
    >>> staggered_phases(2, 50.0, 100.0, 2)[1]
    [(0.0, 100.0, -1), (100.0, 150.0, 0), (150.0, 200.0, 1)]
    """
    n_clamps, groups = int(n_clamps), int(groups)
    if n_clamps < 1 or groups < 1:
        raise ValueError(f"n_clamps and groups must be integers >= 1, got {n_clamps!r} and {groups!r}")
    for name, value in (("clamp_ms", clamp_ms), ("free_ms", free_ms)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0 (ms), got {value!r}")
    data_ms = n_clamps * float(clamp_ms)
    period = data_ms + float(free_ms)
    base = [(j * float(clamp_ms), (j + 1) * float(clamp_ms), j) for j in range(n_clamps)] + [(data_ms, period, -1)]
    out = []
    for g in range(groups):
        offset = float(np.round(g * period / groups / clamp_ms)) * float(clamp_ms)
        offset = offset if offset < period else offset - float(clamp_ms)
        phases = []
        for a, b, row in base:      # each phase of the base sequence moves to (a - offset) mod P
            a, b = a - offset, b - offset
            if b <= 0:
                a, b = a + period, b + period
            if a < 0:               # cut by the rotation (only the free phase can be): two pieces
                phases += [(a + period, period, row), (0.0, b, row)]
            else:
                phases.append((a, b, row))
        out.append(sorted((float(a), float(b), int(r)) for a, b, r in phases if b > a))
    return out


class IterateAverage:
    """Running mean of the parameters (W, b) from iteration ``start`` on (Polyak-Ruppert averaging).

    ``start = iterations - round(fraction * iterations)``; with ``fraction`` 0 no iterate is averaged
    and :meth:`result` returns the last one given to :meth:`add`.
    """

    def __init__(self, iterations: int, fraction: float):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"fraction must lie in [0, 1), got {fraction!r}")
        self.start = int(iterations) - int(round(fraction * int(iterations)))
        self.count = 0
        self._sum_W = self._sum_b = self._last = None

    def add(self, iteration: int, W: np.ndarray, b: np.ndarray) -> None:
        """Record the parameters after update ``iteration`` (0-based). ``W`` may be a :class:`DiagonalBlocks`
        (then the sum is held block by block too; a full sum restored from an older state is converted once)."""
        blocks = isinstance(W, DiagonalBlocks)
        self._last = (W.copy() if blocks else np.array(W, dtype=float), np.array(b, dtype=float))
        if iteration >= self.start:
            if self._sum_W is None:
                self._sum_W = (DiagonalBlocks.zeros(W.blocks, W.n) if blocks else np.zeros_like(self._last[0]))
                self._sum_b = np.zeros_like(self._last[1])
            if blocks:
                if not isinstance(self._sum_W, DiagonalBlocks):
                    self._sum_W = DiagonalBlocks.from_dense(self._sum_W, W.blocks, "the averaged weights' sum")
                for total, part in zip(self._sum_W.parts, W.parts):
                    total += part
            else:
                self._sum_W += self._last[0]
            self._sum_b += self._last[1]
            self.count += 1

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The averaged (W, b), or the last iterate when nothing was averaged (W a :class:`DiagonalBlocks` when
        the iterates were)."""
        if self._last is None:
            raise ValueError("no iterate was added")
        if self.count == 0:
            return self._last
        if isinstance(self._sum_W, DiagonalBlocks):
            return (DiagonalBlocks(self._sum_W.blocks, [part / self.count for part in self._sum_W.parts],
                                   self._sum_W.n), self._sum_b / self.count)
        return self._sum_W / self.count, self._sum_b / self.count

    def to_dict(self) -> dict:
        """JSON-serialisable state (exact: ``json`` writes floats with full precision; :class:`DiagonalBlocks`
        compactly, :func:`matrix_to_json`)."""
        as_list = lambda a: None if a is None else a.tolist()  # noqa: E731
        return {"start": self.start, "count": self.count, "sum_W": matrix_to_json(self._sum_W),
                "sum_b": as_list(self._sum_b),
                "last_W": matrix_to_json(self._last[0]) if self._last else None,
                "last_b": as_list(self._last[1]) if self._last else None}

    @classmethod
    def from_dict(cls, data: dict) -> "IterateAverage":
        """Restore a state written by :meth:`to_dict`."""
        average = cls(0, 0.0)
        average.start, average.count = int(data["start"]), int(data["count"])
        as_array = lambda a: None if a is None else np.asarray(a, dtype=float)  # noqa: E731
        average._sum_W, average._sum_b = matrix_from_json(data["sum_W"]), as_array(data["sum_b"])
        if data["last_W"] is not None:
            average._last = (matrix_from_json(data["last_W"]), as_array(data["last_b"]))
        return average


def gradient_norm(grad_W: np.ndarray, grad_b: np.ndarray) -> float:
    """Norm of a CD update direction, each symmetric weight pair counted once:
    ``sqrt(sum(grad_W**2) / 2 + sum(grad_b**2))``."""
    return float(np.sqrt(np.sum(np.asarray(grad_W) ** 2) / 2 + np.sum(np.asarray(grad_b) ** 2)))


class CDUpdate:
    """The CD parameter update: direction, learning-rate schedule, momentum, mask, iterate averaging.

    ``W, b = update(iteration, W, b, data_moments, model_moments)`` moves (W, b) by the optimizer step
    along :func:`cd_gradient` with learning rate ``schedule.rate(iteration)``, and records the new
    iterate for averaging; :meth:`result` gives the trained parameters (the average of the last
    ``average_fraction`` of the iterates, or the last one). Its state (optimizer velocities,
    average) round-trips through :meth:`to_dict` / :meth:`from_dict` exactly, for checkpoints.

    Parameters
    ----------
    schedule : LearningRateSchedule
    optimizer : MomentumOptimizer
    mask : array (n, n), optional
        Connectivity mask of the weights (bipartite for an RBM, block-diagonal for independent BMs).
    average : IterateAverage, optional
        Iterate averaging (default: none, the last iterate is the result).
    blocks : list of slice, optional
        Independent networks (units of each) of a ``mask`` that is zero outside their diagonal blocks:
        the gradient and the step are computed block by block (:meth:`MomentumOptimizer.step`), the
        same parameters (bit for bit; the recorded gradient norm to float precision) with M times less
        work for M networks.

    Raises
    ------
    ValueError
        If ``blocks`` are given without a mask, or the mask is nonzero outside them.

    Examples
    --------
    >>> import numpy as np
    >>> update = CDUpdate(LearningRateSchedule(0.5, "constant"), MomentumOptimizer.create(2))
    >>> data = (np.array([0.5, 0.5]), np.array([[0.5, 0.4], [0.4, 0.5]]))
    >>> model = (np.array([0.5, 0.5]), np.array([[0.5, 0.25], [0.25, 0.5]]))
    >>> W, b = update(0, np.zeros((2, 2)), np.zeros(2), data, model)
    >>> round(float(W[0, 1]), 6), update.last_learning_rate   # 0.5 * (0.4 - 0.25)
    (0.075, 0.5)
    """

    def __init__(self, schedule: LearningRateSchedule, optimizer: MomentumOptimizer, mask: np.ndarray | None = None,
                 average: IterateAverage | None = None, blocks: list | None = None):
        self.schedule = schedule
        self.optimizer = optimizer
        self.mask = None if mask is None else np.asarray(mask, dtype=float)
        self.blocks = None if blocks is None else list(blocks)
        if self.blocks is not None:
            if self.mask is None:
                raise ValueError("blocks need a mask that is zero outside them (a block-diagonal mask)")
            inside = sum(float(np.abs(self.mask[s, s]).sum()) for s in self.blocks)
            if inside != float(np.abs(self.mask).sum()):
                raise ValueError("the mask must be zero outside the blocks to update block by block")
        self.average = average if average is not None else IterateAverage(1, 0.0)
        self.last_learning_rate = float("nan")
        self.last_gradient_norm = float("nan")

    def __call__(self, iteration: int, W: np.ndarray, b: np.ndarray, data_moments, model_moments
                 ) -> tuple[np.ndarray, np.ndarray]:
        eta = self.schedule.rate(iteration)
        if self.blocks is None:
            grad_W, grad_b = cd_gradient(data_moments, model_moments, self.mask)
            norm = gradient_norm(grad_W, grad_b)
        else:  # the gradient of each block (zero outside: the mask), the same numbers as the full one there
            (mean_data, second_data), (mean_model, second_model) = data_moments, model_moments
            grad_W = DiagonalBlocks(self.blocks, [cd_gradient((mean_data[s], second_data[s, s]),
                                                              (mean_model[s], second_model[s, s]), self.mask[s, s])[0]
                                                  for s in self.blocks], self.mask.shape[0])
            grad_b = np.asarray(mean_data, dtype=float) - np.asarray(mean_model, dtype=float)
            norm = float(np.sqrt(sum(np.sum(grad_W[s, s] ** 2) for s in self.blocks) / 2 + np.sum(grad_b ** 2)))
        W, b = self.optimizer.step(W, b, grad_W, grad_b, eta, self.mask, self.blocks)
        self.average.add(iteration, W, b)
        self.last_learning_rate = eta
        self.last_gradient_norm = norm
        return W, b

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The trained parameters: the iterate average, or the last iterate."""
        return self.average.result()

    def to_dict(self) -> dict:
        """Optimizer and averaging state (the schedule and mask are settings, not state)."""
        return {"optimizer": self.optimizer.to_dict(), "average": self.average.to_dict()}

    def load(self, state: dict) -> "CDUpdate":
        """Restore the optimizer and averaging state written by :meth:`to_dict`; returns self."""
        self.optimizer = MomentumOptimizer.from_dict(state["optimizer"])
        self.average = IterateAverage.from_dict(state["average"])
        return self
