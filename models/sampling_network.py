"""LIF sampling networks (Petrovici et al. 2016) built with any PyNN backend module ``sim``.

A Boltzmann machine (W, b) becomes a population of conductance-based LIF neurons in the
high-conductance state: leak potentials from the biases, synaptic weights from W (PSP matched, see
:mod:`cortexsim.models.lif_translation`), Poisson background on every neuron. Neuron k is in state
z_k = 1 for tau_ref after each of its spikes.

The network is built once; :meth:`SamplingNetwork.set_parameters` (``set_parameters(W, b)``, or
``set_bm(bm)``) changes leak potentials and weights in place, so training loops never rebuild it. Only
the synapses that exist are created (one per nonzero weight, receptor by sign; or, with
``connectivity``, both receptors on every pair a training mask allows): see
:mod:`cortexsim.models.recurrent` for the rule when a weight crosses zero. All in-place updates of
every network kind (this one, RBMs, :class:`cortexsim.models.ensemble.Ensemble`) go through
:func:`write_lif`: leak potentials with one ``Population.set`` and the weights with
:meth:`cortexsim.models.recurrent.RecurrentSynapses.write` (the backend's fast route where one exists,
exactly equivalent to PyNN's ``Projection.set``). :meth:`SamplingNetwork.clamp` clamps units through
their leak potentials (a very strong bias), :meth:`SamplingNetwork.release` undoes it.

Example
-------
>>> from cortexsim.backends import load_backend
>>> from cortexsim.models.boltzmann import random_bm
>>> from cortexsim.models.lif_translation import ActivationFit
>>> sim = load_backend("nest")
>>> _ = sim.setup(timestep=0.1, seed=1)
>>> net = build_sampling_network(sim, random_bm(5, seed=1), ActivationFit(v_p05=-50.61, alpha=0.82))
>>> _ = sim.run(1000.0)
>>> spiketrains = net.spiketrains()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from ..backends.noise import add_poisson_background
from .boltzmann import BoltzmannMachine
from .lif_translation import LIFNetworkParameters, bm_to_lif
from .recurrent import SYNAPSE_KINDS, RecurrentSynapses, recurrent_synapse_type
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters

__all__ = ["SYNAPSE_KINDS", "SamplingNetwork", "build_sampling_network", "recurrent_synapse_type", "write_lif",
           "clamped_leak", "ReplicatedNetwork", "build_replicated_network"]

def write_lif(population, recurrent: RecurrentSynapses, lif) -> None:
    """Write translated LIF parameters into a built network, in place: the one update path of every network.

    Leak potentials (mV) with one ``population.set(v_rest=...)``; the excitatory and inhibitory weight
    magnitudes (uS, ``(n_pre, n_post)``) with :meth:`~cortexsim.models.recurrent.RecurrentSynapses.write`
    (through :func:`~cortexsim.backends.projection_weights.set_projection_weights`, the backend's fast
    route, NEST: one ``SynapseCollection.set`` per projection, or PyNN's ``Projection.set``; synapses a
    weight needs but that do not exist are grown first, see :mod:`cortexsim.models.recurrent`).

    ``lif`` is one :class:`~cortexsim.models.lif_translation.LIFNetworkParameters`, or a list of them:
    independent networks of the population in consecutive blocks (an ensemble), translated network by
    network; their weights go into the diagonal blocks, zero elsewhere (the same values as the
    translation of the block-diagonal BM, without its full-size arithmetic), through
    :meth:`~cortexsim.models.recurrent.RecurrentSynapses.write_blocks` (no (n, n) matrices).

    Examples
    --------
    >>> # after a CD update of a built network:
    >>> # write_lif(network.population, network.recurrent, bm_to_lif(bm, neuron, noise, fit))
    """
    if isinstance(lif, LIFNetworkParameters):
        population.set(v_rest=np.asarray(lif.e_leak, dtype=float))
        recurrent.write(lif.excitatory_weights, lif.inhibitory_weights)
        return
    lifs = list(lif)
    starts = np.concatenate([[0], np.cumsum([part.n_neurons for part in lifs])[:-1]]).astype(int)
    population.set(v_rest=np.concatenate([np.asarray(part.e_leak, dtype=float) for part in lifs]))
    recurrent.write_blocks(starts, [part.excitatory_weights for part in lifs],
                           [part.inhibitory_weights for part in lifs])


def clamped_leak(e_leak: np.ndarray, fit: ActivationFit, units, values, clamp_bias: float) -> np.ndarray:
    """Leak potentials (mV) with ``units`` clamped to ``values`` (0/1) and the others as in ``e_leak``.

    A clamped unit gets the bias ``+clamp_bias`` (value 1) or ``-clamp_bias`` (value 0): the leak
    potential ``v_p05 +- alpha * clamp_bias``.

    Examples
    --------
    >>> clamped_leak(np.array([-50.0, -51.0]), ActivationFit(v_p05=-50.0, alpha=1.0), [1], [1.0], 40.0)
    array([-50., -10.])
    """
    values = np.asarray(values, dtype=float)
    if values.shape != np.shape(units):
        raise ValueError(f"clamp values must match the clamped units in shape, got {values.shape} and "
                         f"{np.shape(units)}")
    leak = np.array(e_leak, dtype=float)
    leak[units] = fit.v_p05 + fit.alpha * clamp_bias * (2.0 * values - 1.0)
    return leak


@dataclass
class SamplingNetwork:
    """Handles of a built sampling network.

    Attributes
    ----------
    sim : module
        The PyNN backend module.
    population : Population
        The n sampling neurons (``IF_cond_exp``), spikes recorded.
    projection_exc, projection_inh : Projection
        The recurrent projections made at build time onto the excitatory and inhibitory receptors
        (only the synapses that exist, see :mod:`cortexsim.models.recurrent`).
    bm : BoltzmannMachine
        The Boltzmann machine currently represented.
    lif : LIFNetworkParameters
        Its translation (leak potentials in mV, signed weights in uS).
    """

    sim: ModuleType
    population: object
    projection_exc: object
    projection_inh: object
    bm: BoltzmannMachine
    lif: LIFNetworkParameters
    fit: ActivationFit
    neuron: NeuronParameters
    noise: NoiseParameters
    synapses: str
    background: dict = field(default_factory=dict)
    recurrent: RecurrentSynapses | None = None

    @property
    def n_neurons(self) -> int:
        return self.bm.n_units

    @property
    def tau_ref(self) -> float:
        """Refractory time (ms): how long a neuron is in state z = 1 after a spike."""
        return self.neuron.tau_refrac

    def set_bm(self, bm: BoltzmannMachine) -> None:
        """Represent ``bm`` from now on: set leak potentials and weights in place."""
        if not isinstance(bm, BoltzmannMachine):
            raise TypeError(f"bm must be a BoltzmannMachine, got {type(bm).__name__}")
        if bm.n_units != self.n_neurons:
            raise ValueError(f"bm has {bm.n_units} units but the network has {self.n_neurons} neurons")
        self.set_lif(bm_to_lif(bm, self.neuron, self.noise, self.fit), bm)

    def set_parameters(self, W: np.ndarray, b: np.ndarray) -> None:
        """Represent the BM with weights ``W`` (n, n) and biases ``b`` (n,) (validated as a BM)."""
        self.set_bm(BoltzmannMachine(W=W, b=b))

    def set_lif(self, lif: LIFNetworkParameters, bm: BoltzmannMachine | None = None) -> None:
        """Set LIF parameters directly (mV, uS) through :func:`write_lif`; ``bm`` records what they represent."""
        if lif.n_neurons != self.n_neurons:
            raise ValueError(f"lif has {lif.n_neurons} neurons but the network has {self.n_neurons}")
        write_lif(self.population, self.recurrent, lif)
        self.lif = lif
        if bm is not None:
            self.bm = bm

    def clamp(self, units, values, clamp_bias: float) -> None:
        """Clamp ``units`` to ``values`` (0/1) through their leak potentials; the others keep theirs.

        A clamped unit gets the bias ``+clamp_bias`` (value 1) or ``-clamp_bias`` (value 0), i.e. the
        leak potential ``v_p05 +- alpha * clamp_bias`` (mV): a plain PyNN ``population.set`` that
        works on every backend. The weights onto a clamped unit do not matter while it is clamped and
        are left as they are. :meth:`release` undoes every clamp.
        """
        self.population.set(v_rest=clamped_leak(self.lif.e_leak, self.fit, units, values, clamp_bias))

    def release(self) -> None:
        """Undo :meth:`clamp`: every unit gets the leak potential of the BM represented."""
        self.population.set(v_rest=np.asarray(self.lif.e_leak, dtype=float))

    def clamp_schedule(self, units, rows, clamp_bias: float) -> np.ndarray:
        """Leak potentials (mV) of phases: ``units`` clamped to each row of ``rows`` (0/1), then released.

        Row k of the result is :meth:`clamp` with ``rows[k]``, the last row :meth:`release`; shape
        ``(len(rows) + 1, n)``, for :func:`cortexsim.backends.schedules.run_parameter_schedule`.
        """
        e_leak = np.asarray(self.lif.e_leak, dtype=float)
        return np.vstack([clamped_leak(e_leak, self.fit, units, row, clamp_bias) for row in rows] + [e_leak])

    def spiketrains(self, clear: bool = False) -> list:
        """Recorded spike trains (``neo.SpikeTrain``, one per neuron) of the current segment."""
        block = self.population.get_data("spikes", clear=clear)
        return list(block.segments[-1].spiketrains)


def build_sampling_network(sim: ModuleType, bm: BoltzmannMachine, fit: ActivationFit,
                           neuron: NeuronParameters = DEFAULT_NEURON,
                           noise: NoiseParameters = DEFAULT_NOISE,
                           synapses: str = "renewing", label: str = "sampling",
                           background: bool = True, connectivity: np.ndarray | None = None,
                           depression=None) -> SamplingNetwork:
    """Build a LIF sampling network for ``bm`` with backend ``sim`` (``setup`` already called).

    Parameters
    ----------
    sim : module
        A PyNN backend module (see :func:`cortexsim.backends.load_backend`).
    bm : BoltzmannMachine
        Weights and biases to sample from.
    fit : ActivationFit
        Activation function of the neurons under this noise on this backend (mV), from calibration.
    neuron : NeuronParameters
        Neuron parameters (PyNN units); ``v_rest`` is replaced per neuron by the translated leak.
    noise : NoiseParameters
        Poisson background per neuron (Hz, uS).
    synapses : {"renewing", "static"}
        Recurrent synapse kind.
    label : str
        Population label.
    background : bool
        Whether to add the Poisson background (False when another source of noise is wired in).
    connectivity : bool array (n, n), optional
        Pairs whose weight may become nonzero (a training mask): both receptor synapses there. None:
        one synapse per nonzero weight of ``bm`` (see :mod:`cortexsim.models.recurrent`).
    depression : ShortTermDepression, optional
        U and tau_rec (ms) of "depressing" recurrent synapses (required for that kind, else unused).
        The weights written are the translated ones; their correction for depression is the caller's
        (:func:`cortexsim.models.short_term_depression.corrected_lif`).
    """
    if not isinstance(bm, BoltzmannMachine):
        raise TypeError(f"bm must be a BoltzmannMachine, got {type(bm).__name__}")
    if synapses not in SYNAPSE_KINDS:
        raise ValueError(f"synapses must be one of {SYNAPSE_KINDS}, got {synapses!r}")
    if synapses == "depressing" and depression is None:
        raise ValueError('synapses="depressing" needs depression=ShortTermDepression(U, tau_rec_ms)')
    lif = bm_to_lif(bm, neuron, noise, fit)
    n = bm.n_units
    cell_parameters = neuron.as_pynn()
    cell_parameters["v_rest"] = lif.e_leak
    population = sim.Population(n, sim.IF_cond_exp(**cell_parameters), label=label)
    population.initialize(v=lif.e_leak)
    population.record("spikes")
    delay = sim.get_min_delay()
    recurrent = RecurrentSynapses.build(sim, population, lif.weights, synapses,
                                        {"excitatory": neuron.tau_syn_E, "inhibitory": neuron.tau_syn_I}, delay,
                                        label, connectivity, depression=depression)
    network = SamplingNetwork(sim, population, recurrent.projection_exc, recurrent.projection_inh, bm, lif, fit,
                              neuron, noise, synapses, recurrent=recurrent)
    if background:
        network.background = add_poisson_background(sim, population, noise)
    return network


@dataclass
class ReplicatedNetwork:
    """``copies`` identical copies of one BM in ONE population (independent noise, one simulation).

    Copy ``c`` holds neurons ``c * n .. (c + 1) * n - 1`` (``n = bm.n_units``). All copies represent the
    same BM; :meth:`set_parameters` takes the single BM's ``(W (n, n), b (n,))``, translates it once and
    writes it into every diagonal block through :func:`write_lif` (the ensemble's block path). Clamps take
    indices into the whole population (any copy). Built by :func:`build_replicated_network`.

    Attributes
    ----------
    network : SamplingNetwork
        The block-diagonal network of all copies (its ``lif`` is the one of the build).
    copies : int
        Number of copies, >= 1.
    bm : BoltzmannMachine
        The single BM every copy represents.
    e_leak : array (copies * n,)
        Current leak potentials of all neurons (mV), what :meth:`release` restores.
    """

    network: SamplingNetwork
    copies: int
    bm: BoltzmannMachine
    e_leak: np.ndarray

    @property
    def population(self):
        return self.network.population

    @property
    def neuron(self) -> NeuronParameters:
        return self.network.neuron

    @property
    def n_units(self) -> int:
        """Units of one copy."""
        return self.bm.n_units

    def set_parameters(self, W: np.ndarray, b: np.ndarray) -> None:
        """Represent the BM ``(W (n, n), b (n,))`` in every copy (leak potentials and weights in place)."""
        bm = BoltzmannMachine(W=W, b=b)
        if bm.n_units != self.n_units:
            raise ValueError(f"W must be ({self.n_units}, {self.n_units}) for copies of {self.n_units} units, "
                             f"got {np.shape(W)}")
        lif = bm_to_lif(bm, self.network.neuron, self.network.noise, self.network.fit)
        write_lif(self.population, self.network.recurrent, [lif] * self.copies)
        self.bm, self.e_leak = bm, np.tile(np.asarray(lif.e_leak, dtype=float), self.copies)

    def clamp(self, units, values, clamp_bias: float) -> None:
        """Clamp ``units`` (indices into all copies' neurons) to ``values`` (0/1), as :meth:`SamplingNetwork.clamp`."""
        self.population.set(v_rest=clamped_leak(self.e_leak, self.network.fit, units, values, clamp_bias))

    def release(self) -> None:
        """Undo :meth:`clamp`."""
        self.population.set(v_rest=self.e_leak)

    def clamp_schedule(self, units, rows, clamp_bias: float) -> np.ndarray:
        """Leak potentials (mV) of phases: ``units`` clamped to each row of ``rows``, then released
        (as :meth:`SamplingNetwork.clamp_schedule`)."""
        fit = self.network.fit
        return np.vstack([clamped_leak(self.e_leak, fit, units, row, clamp_bias) for row in rows] + [self.e_leak])

    def spiketrains(self, clear: bool = False) -> list:
        """Recorded spike trains of all copies' neurons (current segment)."""
        return self.network.spiketrains(clear=clear)


def build_replicated_network(sim: ModuleType, bm: BoltzmannMachine, fit: ActivationFit, copies: int,
                             neuron: NeuronParameters = DEFAULT_NEURON, noise: NoiseParameters = DEFAULT_NOISE,
                             synapses: str = "renewing", connectivity: np.ndarray | None = None,
                             label: str = "replicas") -> ReplicatedNetwork:
    """Build ``copies`` copies of ``bm`` as one block-diagonal sampling network (``setup`` already called).

    The block-diagonal BM (``bm`` on every diagonal block, no coupling) goes through
    :func:`build_sampling_network`, so each copy is the network ``bm`` alone would give, with its own
    Poisson background: the copies sample independently. ``connectivity`` (bool (n, n)) is one copy's
    training mask (repeated on the blocks).

    Examples
    --------
    >>> # net = build_replicated_network(sim, bm, fit, copies=4, connectivity=bipartite_mask(6, 4))
    >>> # net.set_parameters(W, b)        # W (10, 10): written into all four copies
    """
    if not isinstance(bm, BoltzmannMachine):
        raise TypeError(f"bm must be a BoltzmannMachine, got {type(bm).__name__}")
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < 1:
        raise ValueError(f"copies must be an integer >= 1, got {copies!r}")
    eye = np.eye(int(copies))
    blocks = BoltzmannMachine(W=np.kron(eye, bm.W), b=np.tile(bm.b, copies))
    mask = None if connectivity is None else np.kron(eye, np.asarray(connectivity, dtype=float)).astype(bool)
    network = build_sampling_network(sim, blocks, fit, neuron, noise, synapses, label=label, connectivity=mask)
    return ReplicatedNetwork(network, int(copies), bm, np.asarray(network.lif.e_leak, dtype=float).copy())
