"""Recurrent synapses of sampling networks: only the synapses that exist, and in-place weight updates.

A Boltzmann machine's weights W become signed synaptic weights ``w`` (uS, ``lif.weights``,
``(n_pre, n_post)``): positive ones act on the excitatory receptor, negative ones (as magnitudes) on
the inhibitory receptor. The builders of :mod:`cortexsim.models.sampling_network` and
:mod:`cortexsim.models.ensemble` create the recurrent synapses through :class:`RecurrentSynapses`:

Which synapses exist
--------------------
``connectivity=None`` (default)
    One synapse per nonzero entry: on the excitatory receptor where ``w > 0``, on the inhibitory one
    where ``w < 0``; none where ``w = 0`` and none from a neuron to itself. An RBM of 794 + 500 units
    gets 794,000 synapses instead of the 3.35 M of all-to-all projections on both receptors, of which
    76 % would carry weight 0.
``connectivity=mask`` (bool ``(n, n)``)
    For weights that change sign (training): an excitatory AND an inhibitory synapse on every pair the
    mask allows (diagonal excluded), the one of the other sign at weight 0. Both projections then run
    over the same pairs in the same order (``brian2_standalone`` compiles them as one object).

A synapse that is absent and a synapse of weight 0 give the same dynamics: a conductance jump of 0
adds nothing (checked against the all-to-all network spike for spike in the tests).

Weight updates, and the rule when a weight crosses zero
-------------------------------------------------------
:meth:`RecurrentSynapses.write` sets every existing synapse (the magnitude on the receptor of the
weight's sign, 0 on the other) through
:func:`cortexsim.backends.projection_weights.set_projection_weights` (one NEST call per projection,
or PyNN's ``Projection.set``). An entry that needs a synapse that does not exist (it was 0 at build,
or changed sign, in a network built without a mask) is **grown**: the missing synapses are created
once, as an additional projection per receptor (logged), and kept from then on. Growth keeps every
update correct; it is exact except for the first event of a grown renewing synapse, which starts fully
recovered (``x = 1``), as a synapse that existed all along would only if its presynaptic neuron had
been silent for much longer than ``tau_rec``. Training loops therefore build with the connectivity
mask of what they train (no growth, exact). With a mask, a nonzero weight outside it is an error.
"""

from __future__ import annotations

import logging
from types import ModuleType

import numpy as np

__all__ = ["SYNAPSE_KINDS", "RECEPTORS", "recurrent_synapse_type", "signed_pairs", "RecurrentSynapses"]

logger = logging.getLogger(__name__)

#: Recurrent synapse kinds: "renewing" (Tsodyks-Markram U=1, tau_rec=tau_syn, tau_facil=0), "static", or
#: "depressing" (Tsodyks-Markram with a given small U and long tau_rec: the mixing mechanism of Leng et al.
#: 2018, see :mod:`cortexsim.models.short_term_depression`).
SYNAPSE_KINDS = ("renewing", "static", "depressing")
RECEPTORS = ("excitatory", "inhibitory")


def recurrent_synapse_type(sim: ModuleType, kind: str, tau_syn: float, delay: float, depression=None):
    """A PyNN synapse type of kind "renewing" (TM, U=1, tau_rec=tau_syn (ms), tau_facil=0), "static", or
    "depressing" (TM with ``depression.U`` and ``depression.tau_rec_ms``, tau_facil=0; ``depression`` a
    :class:`cortexsim.models.short_term_depression.ShortTermDepression`)."""
    if kind == "renewing":
        return sim.TsodyksMarkramSynapse(U=1.0, tau_rec=tau_syn, tau_facil=0.0, weight=0.0, delay=delay)
    if kind == "depressing":
        if depression is None:
            raise ValueError('synapses="depressing" needs depression=ShortTermDepression(U, tau_rec_ms)')
        return sim.TsodyksMarkramSynapse(U=float(depression.U), tau_rec=float(depression.tau_rec_ms),
                                         tau_facil=0.0, weight=0.0, delay=delay)
    return sim.StaticSynapse(weight=0.0, delay=delay)


def _check_connectivity(connectivity, n: int) -> np.ndarray | None:
    if connectivity is None:
        return None
    mask = np.asarray(connectivity)
    if mask.shape != (n, n) or mask.dtype.kind not in "buif" or not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"connectivity must be an (n, n) = ({n}, {n}) mask of 0/1 (or bool) marking the pairs whose "
                         f"weight may be nonzero, got shape {mask.shape} and dtype {mask.dtype}")
    mask = mask.astype(bool)
    np.fill_diagonal(mask, False)
    return mask


def signed_pairs(weights: np.ndarray, connectivity: np.ndarray | None = None) -> dict:
    """The (pre, post) pairs that get a synapse on each receptor, in source order.

    Parameters
    ----------
    weights : array (n, n)
        Signed synaptic weights (uS; > 0 excitatory, < 0 inhibitory), ``(n_pre, n_post)``.
    connectivity : bool array (n, n), optional
        Pairs whose weight may be nonzero (both receptors there); None: the nonzero entries, by sign.

    Returns
    -------
    dict
        ``{"excitatory": (pre, post), "inhibitory": (pre, post)}``, index arrays sorted by source,
        then target; the diagonal never has a synapse.

    Raises
    ------
    ValueError
        If ``weights`` is not square and finite, or has nonzero entries outside ``connectivity``.

    Examples
    --------
    >>> pairs = signed_pairs(np.array([[0.0, 0.2, -0.1], [0.2, 0.0, 0.0], [-0.1, 0.0, 0.0]]))
    >>> [p.tolist() for p in pairs["excitatory"]], [p.tolist() for p in pairs["inhibitory"]]
    ([[0, 1], [1, 0]], [[0, 2], [2, 0]])
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1] or not np.all(np.isfinite(weights)):
        raise ValueError(f"weights must be a finite square (n, n) array, got shape {weights.shape}")
    n = weights.shape[0]
    mask = _check_connectivity(connectivity, n)
    off = ~np.eye(n, dtype=bool)
    if mask is None:
        return {"excitatory": np.nonzero((weights > 0) & off), "inhibitory": np.nonzero((weights < 0) & off)}
    outside = (weights != 0) & off & ~mask
    if np.any(outside):
        pre, post = np.nonzero(outside)
        raise ValueError(f"weights has {pre.size} nonzero entries outside connectivity (first: pre {pre[0]}, "
                         f"post {post[0]})")
    pairs = np.nonzero(mask)  # row-major: source order
    return {"excitatory": pairs, "inhibitory": pairs}


class RecurrentSynapses:
    """The recurrent synapses of one population onto itself: build, count, write weights, grow.

    Parameters
    ----------
    sim : module
        PyNN backend module (``setup`` called).
    population : Population
        Neurons (conductance-based); presynaptic and postsynaptic.
    kind : {"renewing", "static", "depressing"}
        Synapse kind (see :func:`recurrent_synapse_type`).
    tau_syn : dict
        ``{"excitatory": tau_syn_E, "inhibitory": tau_syn_I}`` (ms): tau_rec of renewing synapses.
    delay : float
        Synaptic delay (ms).
    label : str
        Prefix of the projections' labels.
    connectivity : bool array (n, n), optional
        See the module docstring; None: synapses only where the built weights are nonzero.
    depression : ShortTermDepression, optional
        U and tau_rec (ms) of "depressing" synapses (required for that kind).

    Attributes
    ----------
    projections : dict
        ``{"excitatory": [Projection, ...], "inhibitory": [...]}``: the built projection first, grown
        ones after it.
    """

    def __init__(self, sim: ModuleType, population, kind: str, tau_syn: dict, delay: float, label: str,
                 connectivity: np.ndarray | None = None, depression=None):
        if kind not in SYNAPSE_KINDS:
            raise ValueError(f"synapses must be one of {SYNAPSE_KINDS}, got {kind!r}")
        if kind == "depressing" and depression is None:
            raise ValueError('synapses="depressing" needs depression=ShortTermDepression(U, tau_rec_ms)')
        self.sim, self.population, self.kind, self.tau_syn = sim, population, kind, dict(tau_syn)
        self.depression = depression
        self.delay, self.label = float(delay), label
        self.n = int(population.size)
        self.connectivity = _check_connectivity(connectivity, self.n)
        #: sorted keys pre * n + post of the pairs allowed by the connectivity (None: any pair)
        self.allowed = None if self.connectivity is None else np.flatnonzero(self.connectivity)
        self.projections = {receptor: [] for receptor in RECEPTORS}
        self._sizes = {receptor: [] for receptor in RECEPTORS}
        self._existing = {receptor: np.zeros(0, dtype=np.int64) for receptor in RECEPTORS}  # sorted pre * n + post
        self._covered_cache = {}  # receptor -> (number of synapses, dense mask), see _covered

    @classmethod
    def build(cls, sim: ModuleType, population, weights: np.ndarray, kind: str, tau_syn: dict, delay: float,
              label: str, connectivity: np.ndarray | None = None, depression=None) -> "RecurrentSynapses":
        """Create the synapses for the signed weights ``weights`` (uS, (n, n)) and set them."""
        synapses = cls(sim, population, kind, tau_syn, delay, label, connectivity, depression)
        pairs = signed_pairs(weights, synapses.connectivity)
        weights = np.asarray(weights, dtype=float)
        for receptor, sign in zip(RECEPTORS, (1.0, -1.0)):
            pre, post = pairs[receptor]
            synapses._connect(receptor, pre, post, np.maximum(sign * weights[pre, post], 0.0))
        return synapses

    @classmethod
    def from_rows(cls, sim: ModuleType, population, rows: dict, kind: str, tau_syn: dict, delay: float, label: str,
                  allowed: np.ndarray | None = None) -> "RecurrentSynapses":
        """Create the synapses from ``rows = {receptor: (pre, post, magnitude)}`` (uS, source order).

        For networks too large for dense ``(n, n)`` masks (ensembles): the rows must be what
        :func:`signed_pairs` gives; ``allowed`` holds the sorted keys ``pre * n + post`` of the pairs
        the connectivity allows (None: no mask).
        """
        synapses = cls(sim, population, kind, tau_syn, delay, label)
        synapses.allowed = None if allowed is None else np.unique(np.asarray(allowed, dtype=np.int64))
        for receptor in RECEPTORS:
            pre, post, magnitude = rows[receptor]
            synapses._connect(receptor, np.asarray(pre, dtype=np.int64), np.asarray(post, dtype=np.int64),
                              np.asarray(magnitude, dtype=float))
        return synapses

    def _connect(self, receptor: str, pre: np.ndarray, post: np.ndarray, magnitude: np.ndarray):
        """One projection with connections ``pre[k] -> post[k]`` of weight ``magnitude[k]`` (uS, >= 0)."""
        sim = self.sim
        number = len(self.projections[receptor])
        suffix = receptor[:3] if number == 0 else f"{receptor[:3]}_grown{number}"
        rows = np.column_stack([pre, post, magnitude]).astype(float)
        synapse = recurrent_synapse_type(sim, self.kind, self.tau_syn[receptor], self.delay, self.depression)
        projection = sim.Projection(self.population, self.population,
                                    sim.FromListConnector(rows, column_names=["weight"]), synapse,
                                    receptor_type=receptor, label=f"{self.label}_{suffix}")
        self.projections[receptor].append(projection)
        self._sizes[receptor].append(int(np.size(pre)))
        keys = np.asarray(pre, dtype=np.int64) * self.n + np.asarray(post, dtype=np.int64)
        existing = self._existing[receptor]
        if existing.size == 0 and (keys.size < 2 or np.all(np.diff(keys) > 0)):
            self._existing[receptor] = keys  # source-ordered pairs: already sorted and unique
        else:
            self._existing[receptor] = np.union1d(existing, keys)
        return projection

    @property
    def projection_exc(self):
        """The excitatory projection made at build time."""
        return self.projections["excitatory"][0]

    @property
    def projection_inh(self):
        """The inhibitory projection made at build time."""
        return self.projections["inhibitory"][0]

    def n_synapses(self) -> dict:
        """Number of synapses per receptor (all projections)."""
        return {receptor: int(self._existing[receptor].size) for receptor in RECEPTORS}

    def has_synapse(self, receptor: str) -> np.ndarray:
        """Bool (n, n): where a synapse onto ``receptor`` exists."""
        exists = np.zeros(self.n * self.n, dtype=bool)
        exists[self._existing[receptor]] = True
        return exists.reshape(self.n, self.n)

    def write_blocks(self, starts, excitatory: list, inhibitory: list) -> None:
        """:meth:`write` for block-diagonal weights given as their diagonal blocks (independent networks).

        Block k (``excitatory[k]``, ``inhibitory[k]``: magnitudes, uS, square, >= 0) covers neurons
        ``starts[k] ..`` of the population; every weight outside the blocks is 0. The same synapses are
        grown and the same weights set as by ``write`` of the full matrices, without building them
        (:func:`~cortexsim.backends.projection_weights.set_projection_block_weights`).

        Examples
        --------
        >>> # two networks of 5 neurons in one population:
        >>> # recurrent.write_blocks([0, 5], [exc_0, exc_1], [inh_0, inh_1])
        """
        from ..backends.projection_weights import set_projection_block_weights

        starts = [int(x) for x in starts]
        magnitudes = {"excitatory": [np.asarray(x, dtype=float) for x in excitatory],
                      "inhibitory": [np.asarray(x, dtype=float) for x in inhibitory]}
        missing = {}
        for receptor, blocks in magnitudes.items():
            if len(blocks) != len(starts):
                raise ValueError(f"one {receptor} block per start: got {len(blocks)} blocks and {len(starts)} starts")
            covered = self._covered(receptor)
            keys = []
            for start, block in zip(starts, blocks):
                size = block.shape[0] if block.ndim == 2 else -1
                if block.ndim != 2 or block.shape[1] != size or start < 0 or start + size > self.n:
                    raise ValueError(f"{receptor} block at {start} must be square and lie within the {self.n} "
                                     f"neurons, got shape {block.shape}")
                s = slice(start, start + size)
                if covered is not None:
                    pre, post = np.nonzero((block != 0) & ~covered[s, s])
                else:
                    pre, post = np.nonzero(block)
                    off = pre != post
                    pre, post = pre[off], post[off]
                local = (pre + start) * self.n + (post + start)
                keys.append(local if covered is not None else local[~self._member(local, self._existing[receptor])])
            missing[receptor] = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)

        def block_values(receptor: str, pre: np.ndarray, post: np.ndarray) -> np.ndarray:
            values = np.zeros(pre.size)
            for start, block in zip(starts, magnitudes[receptor]):
                inside = (pre >= start) & (pre < start + block.shape[0])
                values[inside] = block[pre[inside] - start, post[inside] - start]
            return values

        self._grow_missing(missing, block_values)
        for receptor, blocks in magnitudes.items():
            for projection, size in zip(self.projections[receptor], self._sizes[receptor]):
                if size:
                    set_projection_block_weights(self.sim, projection, starts, blocks)

    #: Largest n * n for which :meth:`write` keeps a dense bool mask per receptor (bytes of memory).
    DENSE_MASK_LIMIT = 64_000_000

    def _grow_missing(self, missing: dict, values_at) -> None:
        """Create the synapses ``missing`` (receptor -> flat keys pre * n + post) with the magnitudes
        ``values_at(receptor, pre, post)``; refuse, before creating any, keys outside ``allowed``."""
        if self.allowed is not None:
            for receptor, keys in missing.items():
                keys = keys[~self._member(keys, self.allowed)]
                if keys.size:
                    raise ValueError(f"{keys.size} nonzero {receptor} weights lie outside the network's "
                                     f"connectivity (first: pre {keys[0] // self.n}, post {keys[0] % self.n})")
        for receptor, keys in missing.items():
            if keys.size:
                logger.info("%s: growing %d %s synapses for weights that were zero or changed sign",
                            self.label, keys.size, receptor)
                pre, post = keys // self.n, keys % self.n
                self._connect(receptor, pre, post, values_at(receptor, pre, post))

    def _covered(self, receptor: str) -> np.ndarray | None:
        """Bool (n, n): a synapse onto ``receptor`` exists, or the pair is on the diagonal (never
        connected, ignored); cached until a projection is added. None above :attr:`DENSE_MASK_LIMIT`."""
        if self.n * self.n > self.DENSE_MASK_LIMIT:
            return None
        cache = self._covered_cache
        key = int(self._existing[receptor].size)
        if receptor not in cache or cache[receptor][0] != key:
            covered = self.has_synapse(receptor)
            np.fill_diagonal(covered, True)
            cache[receptor] = (key, covered)
        return cache[receptor][1]

    @staticmethod
    def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
        if sorted_keys.size == 0:
            return np.zeros(keys.size, dtype=bool)
        position = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
        return sorted_keys[position] == keys

    def write(self, excitatory: np.ndarray, inhibitory: np.ndarray) -> None:
        """Set all weights in place: ``excitatory`` and ``inhibitory`` magnitudes (uS, (n, n), >= 0).

        Synapses that an entry needs but that do not exist are grown first (module docstring);
        with a connectivity mask, nonzero entries outside it raise ``ValueError`` before anything
        changes.
        """
        from ..backends.projection_weights import set_projection_weights

        magnitudes = {"excitatory": np.asarray(excitatory, dtype=float),
                      "inhibitory": np.asarray(inhibitory, dtype=float)}
        missing = {}
        for receptor, values in magnitudes.items():
            if values.shape != (self.n, self.n):
                raise ValueError(f"{receptor} weights must have shape ({self.n}, {self.n}), got {values.shape}")
            covered = self._covered(receptor)
            if covered is not None:  # one pass over the dense mask instead of a search per nonzero entry
                missing[receptor] = np.flatnonzero((values != 0) & ~covered)
                continue
            needed = np.flatnonzero(values)
            needed = needed[needed // self.n != needed % self.n]  # the diagonal is never connected (ignored)
            missing[receptor] = needed[~self._member(needed, self._existing[receptor])]
        self._grow_missing(missing, lambda receptor, pre, post: magnitudes[receptor][pre, post])
        for receptor, values in magnitudes.items():
            for projection, size in zip(self.projections[receptor], self._sizes[receptor]):
                if size:
                    set_projection_weights(self.sim, projection, values)
