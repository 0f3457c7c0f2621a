"""Setting every weight of a projection at once, as a backend strategy.

PyNN's ``Projection.set(weight=matrix)`` works on every backend but is slow on ``pyNN.nest``: it looks
up the connections of each postsynaptic cell and maps their sources through ``id_to_index``, which
queries NEST for every call (measured here, NEST 3.10 / PyNN 0.13: 1.8 s for two 50-neuron all-to-all
projections, against 3 ms for one ``SynapseCollection.set``). Training loops update all weights every
iteration, so they use :func:`set_projection_weights`:

* a backend module may provide its own ``set_projection_weights(projection, weights)``;
* otherwise a fast route registered in :data:`FAST_ROUTES` under the backend module's name is used;
* otherwise PyNN's portable ``projection.set(weight=weights)``.

Independent networks in one population (an ensemble) have block-diagonal weights:
:func:`set_projection_block_weights` takes only the diagonal blocks (a backend module may provide
``set_projection_block_weights(projection, starts, blocks)``; otherwise the full matrix is assembled
and set as above), so an update of M networks never builds the (M N, M N) matrix.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

__all__ = ["set_projection_weights", "set_projection_block_weights", "FAST_ROUTES"]


#: Connections per NEST status call: NEST returns every connection's full status dictionary, so reading the
#: endpoints of a 794,000-synapse projection at once held ~1.5 GB; in chunks it holds a few MB.
_CHUNK = 50_000


def _nest_endpoints(connections) -> tuple[np.ndarray, np.ndarray]:
    """Source and target node IDs of a ``SynapseCollection``, read in chunks (bounded memory)."""
    sources, targets = [], []
    for start in range(0, len(connections), _CHUNK):
        endpoints = connections[start:start + _CHUNK].get(["source", "target"])
        sources.append(np.asarray(endpoints["source"], dtype=np.int64).reshape(-1))
        targets.append(np.asarray(endpoints["target"], dtype=np.int64).reshape(-1))
    if not sources:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(sources), np.concatenate(targets)


def _nest_set_weights(projection, weights: np.ndarray) -> None:
    """All weights of a ``pyNN.nest`` projection through one NEST ``SynapseCollection.set``.

    The connections' (pre, post) indices are read once and cached on the projection. NEST re-sorts
    connections at the first ``Simulate`` after any connection was created anywhere in the kernel, which
    changes the order ``GetConnections`` returns; an index read before that sort would put weights on
    the wrong connections. So the cache is keyed by the kernel's total number of connections, and an
    index read since the last change of that number is re-read once after the next ``Simulate`` (the
    biological time has advanced and no connection was created: the order is final). Two cheap kernel
    reads per call (``num_connections``, ``biological_time``) keep it correct; reading the endpoints
    every call would cost tens of ms. Weights are PyNN's (uS, magnitudes for the inhibitory receptor);
    NEST's are nS, negative for inhibition.
    """
    import nest

    total, now = int(nest.num_connections), float(nest.biological_time)
    cache = getattr(projection, "_cortexsim_weight_index", None)
    if cache is None or cache["total"] != total or not (cache["final"] or cache["time"] == now):
        connections = nest.GetConnections(source=projection.pre.node_collection,
                                          target=projection.post.node_collection,
                                          synapse_model=projection.nest_synapse_model,
                                          synapse_label=projection.nest_synapse_label)
        pre_ids = np.asarray(projection.pre.all_cells, dtype=np.int64)
        post_ids = np.asarray(projection.post.all_cells, dtype=np.int64)
        sources, targets = _nest_endpoints(connections)
        pre_order, post_order = np.argsort(pre_ids), np.argsort(post_ids)
        # final: no connection created since the previous read, and a Simulate (which sorts) since then
        final = cache is not None and cache["total"] == total and now > cache["time"]
        cache = {"total": total, "time": now, "final": final, "connections": connections,
                 "pre": pre_order[np.searchsorted(pre_ids, sources, sorter=pre_order)],
                 "post": post_order[np.searchsorted(post_ids, targets, sorter=post_order)]}
        projection._cortexsim_weight_index = cache
    sign = -1.0 if (projection.receptor_type == "inhibitory" and projection.post.conductance_based) else 1.0
    values = sign * 1000.0 * weights[cache["pre"], cache["post"]]  # uS -> nS
    # A list of per-connection dicts: NEST's SynapseCollection.set then skips the two extra kernel-status
    # queries it makes for a dict of lists (each costs several ms, and much more on a busy machine).
    connections = cache["connections"]
    for start in range(0, len(connections), _CHUNK):
        connections[start:start + _CHUNK].set([{"weight": value} for value in values[start:start + _CHUNK].tolist()])


#: Fast routes by backend module name (used when the module has no ``set_projection_weights``).
FAST_ROUTES = {"cortexsim.backends.pynn_nest": _nest_set_weights}


def set_projection_weights(sim: ModuleType, projection, weights) -> None:
    """Set all weights of ``projection`` from ``weights`` (n_pre, n_post) in uS (>= 0 magnitudes).

    Entries without a connection (e.g. the diagonal of an all-to-all projection without
    self-connections) are ignored.

    Raises
    ------
    ValueError
        If ``weights`` has the wrong shape, is negative or not finite where connections exist.
    """
    weights = np.asarray(weights, dtype=float)
    shape = (projection.pre.size, projection.post.size)
    if weights.shape != shape:
        raise ValueError(f"weights must have shape (n_pre, n_post) = {shape}, got {weights.shape}")
    if not (np.all(weights >= 0) and np.all(weights < np.inf)):  # fast path: every entry valid (NaN fails >= 0)
        off_diagonal = weights[~np.eye(*shape, dtype=bool)] if shape[0] == shape[1] else weights
        if not np.all(np.isfinite(off_diagonal)) or np.any(off_diagonal < 0):
            raise ValueError("weights must be finite and >= 0 (uS; inhibitory weights as magnitudes)")
    native = getattr(sim, "set_projection_weights", None) or FAST_ROUTES.get(sim.__name__)
    if native is not None:
        native(projection, weights)
    elif shape[0] == shape[1]:
        projection.set(weight=np.where(np.eye(shape[0], dtype=bool), np.nan, weights))
    else:
        projection.set(weight=weights)


def _check_magnitudes(weights: np.ndarray, square: bool) -> None:
    if not (np.all(weights >= 0) and np.all(weights < np.inf)):  # fast path: every entry valid (NaN fails >= 0)
        off_diagonal = weights[~np.eye(*weights.shape, dtype=bool)] if square else weights
        if not np.all(np.isfinite(off_diagonal)) or np.any(off_diagonal < 0):
            raise ValueError("weights must be finite and >= 0 (uS; inhibitory weights as magnitudes)")


def set_projection_block_weights(sim: ModuleType, projection, starts, blocks) -> None:
    """Set all weights of a projection of a population onto itself from its diagonal blocks (uS, >= 0).

    The same as :func:`set_projection_weights` with the (n, n) matrix that holds ``blocks[k]`` at rows and
    columns ``starts[k] .. starts[k] + len(blocks[k]) - 1`` and zero elsewhere (connections between
    blocks get weight 0), without building that matrix where the backend has a block route.

    Parameters
    ----------
    sim : module
        The PyNN backend module of ``projection``.
    projection : Projection
        Pre- and postsynaptic population of the same size n.
    starts : sequence of int
        First neuron of each block, increasing; blocks must not overlap.
    blocks : sequence of array (size_k, size_k)
        Weight magnitudes of each block, (pre, post) within the block.

    Raises
    ------
    ValueError
        If the projection is not square, blocks overlap or leave the population, or a weight is
        negative or not finite (diagonal entries are ignored, as there).

    Examples
    --------
    >>> set_projection_block_weights(sim, network.recurrent.projection_exc, [0, 174], [w_first, w_second])
    """
    n = projection.pre.size
    if projection.post.size != n:
        raise ValueError(f"block weights need a projection of a population onto one of the same size, got "
                         f"{projection.pre.size} -> {projection.post.size}")
    starts = [int(x) for x in starts]
    blocks = [np.asarray(block, dtype=float) for block in blocks]
    if len(starts) != len(blocks):
        raise ValueError(f"one start per block: got {len(starts)} starts and {len(blocks)} blocks")
    stop = 0
    for start, block in zip(starts, blocks):
        if block.ndim != 2 or block.shape[0] != block.shape[1] or start < stop or start + block.shape[0] > n:
            raise ValueError(f"blocks must be square, increasing and non-overlapping within 0 .. {n}; block at "
                             f"{start} has shape {block.shape}")
        _check_magnitudes(block, True)
        stop = start + block.shape[0]
    native = getattr(sim, "set_projection_block_weights", None)
    if native is not None:
        native(projection, starts, blocks)
        return
    full = np.zeros((n, n))
    for start, block in zip(starts, blocks):
        full[start:start + block.shape[0], start:start + block.shape[0]] = block
    set_projection_weights(sim, projection, full)
