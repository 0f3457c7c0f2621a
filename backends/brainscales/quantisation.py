"""Synaptic weights as n-bit integers per synapse row with a row scale (pure numpy).

A synapse row carries the spikes of one presynaptic cell of one projection; its sign is fixed by the
projection's receptor type, so weights here are magnitudes (>= 0; uS onto conductance-based cells,
nA onto current-based ones, see :func:`~.chips.weight_unit`). Each row has a scale
``m * unit`` (m an integer 1 .. 2**row_scale_bits - 1, ``unit`` a power of two) and each synapse an
integer ``k`` in 0 .. 2**weight_bits - 1; the realised weight is ``k * m * unit``. The row scale is
the smallest one at which the row's largest weight fits, so the row uses the full integer range.

Because ``unit`` is a power of two, every representable weight ``k * m * unit`` is an exact float
and quantising it returns it bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..chips import ChipSpec, max_weight, weight_unit
from .errors import ChipLimitError

__all__ = ["quantise_rows", "snap_to_rows", "check_weight_range"]


def check_weight_range(weights: np.ndarray, spec: ChipSpec, clip: bool, what: str = "synaptic weight",
                       conductance_based: bool = True) -> tuple[np.ndarray, int]:
    """Check magnitudes against the chip's range; clip (counting) only if ``clip`` is True.

    ``conductance_based`` selects the weight unit and range (uS, or nA for current-based cells).

    Returns
    -------
    weights : ndarray
        The (possibly clipped) weights (uS or nA).
    n_clipped : int
        How many weights were clipped to the largest representable weight.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.size == 0:
        return weights, 0
    if not np.all(np.isfinite(weights)):
        raise ChipLimitError(spec.name, what, "a non-finite value", "finite values")
    _, unit_name = weight_unit(spec, conductance_based)
    if np.any(weights < 0):
        raise ChipLimitError(spec.name, f"{what} sign", f"{weights.min():g} {unit_name}",
                             "magnitudes >= 0 (the sign is fixed by the receptor type; use "
                             "receptor_type='inhibitory' for negative weights)")
    w_max = max_weight(spec, conductance_based)
    too_large = weights > w_max
    n_clipped = int(too_large.sum())
    if n_clipped and not clip:
        raise ChipLimitError(spec.name, what, f"{weights.max():g} {unit_name}",
                             f"0 .. {w_max:g} {unit_name} (setup(clip_weights=True) clips instead)")
    if n_clipped:
        weights = np.where(too_large, w_max, weights)
    return weights, n_clipped


def quantise_rows(weights: np.ndarray, rows: np.ndarray, n_rows: int, spec: ChipSpec,
                  conductance_based: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Quantise weight magnitudes row by row.

    Parameters
    ----------
    weights : ndarray, shape (n,)
        Weight magnitudes (uS, or nA if not ``conductance_based``), within the chip's range (see
        :func:`check_weight_range`).
    rows : ndarray of int, shape (n,)
        Row (presynaptic index) of each weight, 0 .. n_rows - 1.
    n_rows : int
        Number of rows.
    spec : ChipSpec
        The chip.
    conductance_based : bool
        Synapses onto conductance-based (uS) or current-based (nA) cells.

    Returns
    -------
    quantised : ndarray, shape (n,)
        Realised weights ``k * m[row] * unit`` (uS or nA).
    row_scale_int : ndarray of int, shape (n_rows,)
        The row-scale DAC value m of every row (1 for rows without weights).
    """
    weights = np.asarray(weights, dtype=float)
    rows = np.asarray(rows, dtype=int)
    if weights.shape != rows.shape:
        raise ValueError(f"weights and rows must have the same shape, got {weights.shape} and {rows.shape}")
    unit, _ = weight_unit(spec, conductance_based)
    row_max = np.zeros(n_rows)
    np.maximum.at(row_max, rows, weights)
    # smallest m with row_max <= max_int * m * unit; the tiny relative slack keeps an exactly
    # representable maximum (ratio an integer) from being bumped up by rounding
    ratio = row_max / (unit * spec.max_weight_int)
    row_scale_int = np.clip(np.ceil(ratio * (1.0 - 1e-12)), 1, spec.max_row_scale_int).astype(int)
    scale = row_scale_int[rows] * unit
    integer_weights = np.minimum(np.rint(weights / scale), spec.max_weight_int)
    return integer_weights * scale, row_scale_int


def snap_to_rows(weights: np.ndarray, rows: np.ndarray, row_scale_int: np.ndarray, spec: ChipSpec,
                 conductance_based: bool = True) -> np.ndarray:
    """Nearest representable weights at the given row scales (read-back of a configured chip)."""
    unit, _ = weight_unit(spec, conductance_based)
    scale = np.asarray(row_scale_int)[np.asarray(rows, dtype=int)] * unit
    return np.minimum(np.rint(np.asarray(weights, dtype=float) / scale), spec.max_weight_int) * scale
