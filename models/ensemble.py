"""Ensembles of LIF sampling networks that are each other's noise (Dold et al. 2019; references §2).

M sampling networks of N neurons each live in ONE PyNN network: one population of M * N neurons
(network m holds neurons ``m * N .. m * N + N - 1``), block-diagonal recurrent projections, and a
background selected by ``mode``:

``"poisson"``
    Independent Poisson input per neuron (:func:`cortexsim.backends.noise.add_poisson_background`).
``"ensemble"``
    No random source at all. Each neuron receives ``K`` excitatory and ``K`` inhibitory static
    synapses from ``2 K`` distinct neurons of OTHER networks, drawn once from ``seed``
    (:func:`draw_background_sources`; with ``background.first_source_unit`` > 0 only units
    ``first_source_unit .. N - 1`` of each network are sources, e.g. an RBM's hidden units). A short
    deterministic kick (a ``SpikeSourceArray`` with
    seeded spike times, :func:`kick_spike_times`) and seeded initial membrane potentials set different
    initial conditions; afterwards the dynamics are deterministic.
``"mixture"``
    Both: Poisson rates scaled by ``poisson_fraction`` f, ensemble weights by ``1 - f``, so the mean
    background conductance is that of either pure mode.

Choice of the ensemble weights (documented default, :func:`matched_background`)
-------------------------------------------------------------------------------
A Poisson background of rate R and weight w0 per receptor gives the mean conductance
``R w0 tau_syn`` and, for shot noise, the variance ``R w0^2 tau_syn / 2``. K sources firing at rate
nu with weight w give ``K nu w tau_syn`` and (if they were independent Poisson trains)
``K nu w^2 tau_syn / 2``. Choosing ``w = R w0 / (K nu)`` matches the mean conductance, hence the free
mean membrane potential and the effective time constant; with ``K nu = R`` (e.g. K = 60 sources at
nu = 50 Hz for R = 3000 Hz) it would also match the variance if the sources were Poisson trains. They
are not (bursts, regular firing of saturated neurons, correlations; measured by
:mod:`cortexsim.analysis.background`), so K is chosen by measurement instead: K = 30 gives
free-membrane fluctuations of the same size as the Poisson background (see :data:`DEFAULT_BACKGROUND`).
The default background synapses are depressing (Tsodyks-Markram, U = 1, tau_rec = 40 ms): a source's
burst (a sampling neuron refiring every tau_ref while in state z = 1) then delivers mostly its first
spike, which removes the slow fluctuations that static synapses pass on from the other networks'
persistent states; the weight is divided by the mean release fraction ``1 / (1 + nu tau_rec)``.
The BM translation under ensemble noise uses
:func:`equivalent_noise` (the Poisson background with the same mean conductances) together with an
activation function measured under the ensemble background (probe neurons, see ``activation_probes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import ModuleType

import numpy as np

from cortexsim.seeds import derive_rng

from ..backends.noise import add_poisson_background
from .boltzmann import BoltzmannMachine
from .cd_learning import DiagonalBlocks
from .ensemble_background import (BACKGROUND_SYNAPSES, DEFAULT_BACKGROUND, NOISE_MODES, SOURCE_SHARINGS,
                                  EnsembleBackground, background_delays, check_ensemble_size, draw_background_sources,
                                  equivalent_noise, kick_spike_times, matched_background,
                                  source_units)
from .lif_translation import bm_to_lif
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from .recurrent import SYNAPSE_KINDS, RecurrentSynapses, signed_pairs
from .sampling_network import clamped_leak, write_lif

__all__ = ["NOISE_MODES", "SOURCE_SHARINGS", "BACKGROUND_SYNAPSES", "EnsembleBackground", "background_synapse_type",
           "DEFAULT_BACKGROUND", "Ensemble", "build_ensemble", "draw_background_sources", "kick_spike_times",
           "matched_background", "equivalent_noise", "check_ensemble_size"]


@dataclass
class Ensemble:
    """Handles of a built ensemble (see :func:`build_ensemble`).

    Neuron ``k`` of network ``m`` is neuron ``m * n_neurons + k`` of ``population``.
    ``sources_exc``/``sources_inh`` (M * N, K) hold each neuron's background sources (None in Poisson
    mode); ``probe_sources`` likewise for the probe neurons.
    """

    sim: ModuleType
    mode: str
    bms: list
    fit: ActivationFit
    neuron: NeuronParameters
    noise: NoiseParameters
    translation_noise: NoiseParameters
    background: EnsembleBackground
    synapses: str
    population: object
    projection_exc: object
    projection_inh: object
    sources_exc: np.ndarray | None = None
    sources_inh: np.ndarray | None = None
    created: dict = field(default_factory=dict)
    probes: object = None
    probe_sources: tuple | None = None
    recurrent: RecurrentSynapses | None = None
    e_leak: np.ndarray | None = None
    leak_offset_mv: np.ndarray | None = None

    @property
    def n_networks(self) -> int:
        return len(self.bms)

    @property
    def n_neurons(self) -> int:
        """Neurons per network."""
        return self.bms[0].n_units

    @property
    def source_units(self) -> np.ndarray:
        """Population indices of the units that may be background sources (all with
        ``background.first_source_unit`` 0; :func:`cortexsim.models.ensemble_background.source_units`)."""
        return source_units(self.n_networks, self.n_neurons, self.background.first_source_unit)

    @property
    def blocks(self) -> list[slice]:
        """Population slice of each network."""
        N = self.n_neurons
        return [slice(m * N, (m + 1) * N) for m in range(self.n_networks)]

    def set_bms(self, bms: list) -> None:
        """Represent ``bms`` (one per network) from now on: leak potentials and recurrent weights in place.

        Through :func:`cortexsim.models.sampling_network.write_lif`, the update path of every network kind.
        """
        bms = _check_bms(bms, self.n_networks)
        lifs = [bm_to_lif(bm, self.neuron, self.translation_noise, self.fit) for bm in bms]   # network by network
        if self.leak_offset_mv is not None:
            lifs = [replace(lif, e_leak=np.asarray(lif.e_leak, dtype=float) + self.leak_offset_mv[s])
                    for lif, s in zip(lifs, self.blocks)]
        write_lif(self.population, self.recurrent, lifs)
        self.bms, self.e_leak = bms, np.concatenate([np.asarray(lif.e_leak, dtype=float) for lif in lifs])

    def set_leak_offsets(self, offsets_mv) -> None:
        """Add ``offsets_mv`` (mV, one per neuron) to the translated leak potentials, now and after every
        :meth:`set_bms` (e.g. :func:`cortexsim.models.ensemble_background.unit_leak_offsets`); replaces earlier
        offsets."""
        offsets = np.asarray(offsets_mv, dtype=float)
        if offsets.shape != (self.population.size,) or not np.all(np.isfinite(offsets)):
            raise ValueError(f"offsets_mv must be {self.population.size} finite values (mV), got shape {offsets.shape}")
        previous = 0.0 if self.leak_offset_mv is None else self.leak_offset_mv
        self.leak_offset_mv = offsets
        self.e_leak = np.asarray(self.e_leak, dtype=float) - previous + offsets
        self.population.set(v_rest=self.e_leak)

    def clamp(self, units, values, clamp_bias: float) -> None:
        """Clamp ``units`` (indices into all M * N neurons) to ``values`` (0/1) through their leak
        potentials, as :meth:`cortexsim.models.sampling_network.SamplingNetwork.clamp`; :meth:`release` undoes it."""
        self.population.set(v_rest=clamped_leak(self.e_leak, self.fit, units, values, clamp_bias))

    def release(self) -> None:
        """Undo :meth:`clamp`: every neuron gets the leak potential of the BMs represented."""
        self.population.set(v_rest=self.e_leak)

    def clamp_schedule(self, units, rows, clamp_bias: float) -> np.ndarray:
        """Leak potentials (mV) of phases: ``units`` clamped to each row of ``rows``, then released
        (as :meth:`cortexsim.models.sampling_network.SamplingNetwork.clamp_schedule`)."""
        return np.vstack([clamped_leak(self.e_leak, self.fit, units, row, clamp_bias) for row in rows] + [self.e_leak])

    def set_parameters(self, W: np.ndarray, b: np.ndarray) -> None:
        """Represent the block-diagonal BM (W (M N, M N), b (M N,)): network m gets its diagonal block.

        Entries outside the diagonal blocks must be zero (the networks are not coupled by W). ``W`` may be a
        :class:`~cortexsim.models.cd_learning.DiagonalBlocks` of the networks' blocks (the CD engine's
        per-network state): then no full matrix is formed or checked.
        """
        blocks = self.blocks
        n = self.n_networks * self.n_neurons
        b = np.asarray(b, dtype=float)
        if isinstance(W, DiagonalBlocks):
            if [(s.start, s.stop) for s in W.blocks] != [(s.start, s.stop) for s in blocks] or W.n != n:
                raise ValueError(f"W's diagonal blocks must be the {self.n_networks} networks' blocks of "
                                 f"{self.n_neurons} neurons, got {[(s.start, s.stop) for s in W.blocks]} of {W.n}")
        else:
            W = np.asarray(W, dtype=float)
            if W.shape == (n, n) and np.count_nonzero(W) != sum(np.count_nonzero(W[s, s]) for s in blocks):
                raise ValueError("W couples different networks of the ensemble (non-zero entries outside the "
                                 "diagonal blocks)")
        if W.shape != (n, n) or b.shape != (n,):
            raise ValueError(f"W must be ({n}, {n}) and b ({n},) for {self.n_networks} networks of "
                             f"{self.n_neurons} neurons, got {W.shape} and {b.shape}")
        self.set_bms([BoltzmannMachine(W[s, s], b[s]) for s in blocks])

    def spiketrains(self, clear: bool = False) -> list:
        """Recorded spike trains of all M * N neurons (current segment)."""
        return list(self.population.get_data("spikes", clear=clear).segments[-1].spiketrains)

    def generator_models(self) -> list[str]:
        """Names of the backend objects created as noise sources (for inspection)."""
        return sorted(self.created)


def _check_bms(bms, n_networks: int | None = None) -> list:
    bms = list(bms)
    if not bms or not all(isinstance(bm, BoltzmannMachine) for bm in bms):
        raise ValueError("bms must be a non-empty list of BoltzmannMachine objects, one per network")
    sizes = {bm.n_units for bm in bms}
    if len(sizes) != 1:
        raise ValueError(f"all networks of an ensemble must have the same number of neurons, got sizes {sorted(sizes)}")
    if n_networks is not None and len(bms) != n_networks:
        raise ValueError(f"expected {n_networks} BMs (one per network), got {len(bms)}")
    return bms


def _block_rows(bms: list, neuron, noise, fit, connectivity):
    """Recurrent synapses of the block-diagonal network, network by network (source order).

    Returns ``({receptor: (pre, post, magnitude)}, e_leak, allowed)`` with ``allowed`` the sorted keys
    ``pre * n + post`` of the pairs ``connectivity`` allows in every network (None without a mask).
    """
    N = bms[0].n_units
    n = len(bms) * N
    rows = {"excitatory": ([], [], []), "inhibitory": ([], [], [])}
    leaks = []
    for m, bm in enumerate(bms):
        lif = bm_to_lif(bm, neuron, noise, fit)
        leaks.append(lif.e_leak)
        for (receptor, (pre, post)), sign in zip(signed_pairs(lif.weights, connectivity).items(), (1.0, -1.0)):
            rows[receptor][0].append(pre + m * N)
            rows[receptor][1].append(post + m * N)
            rows[receptor][2].append(np.maximum(sign * lif.weights[pre, post], 0.0))
    rows = {receptor: tuple(np.concatenate(part) for part in parts) for receptor, parts in rows.items()}
    allowed = None
    if connectivity is not None:
        pre, post = np.nonzero(np.asarray(connectivity, dtype=bool) & ~np.eye(N, dtype=bool))
        offsets = (np.arange(len(bms)) * N)[:, None]
        allowed = np.sort(((pre + offsets) * n + (post + offsets)).reshape(-1))
    return rows, np.concatenate(leaks), allowed


def background_synapse_type(sim: ModuleType, background: EnsembleBackground, weight: float):
    """PyNN synapse type of the background synapses: static, or depressing (TM, U = 1, tau_facil = 0)."""
    if background.synapse == "depressing":
        return sim.TsodyksMarkramSynapse(U=1.0, tau_rec=background.tau_rec_ms, tau_facil=0.0, weight=weight)
    return sim.StaticSynapse(weight=weight)


def _connect_sources(sim, sources_pop, targets_pop, sources: np.ndarray, synapse, delays: np.ndarray,
                     receptor: str, label: str):
    K = sources.shape[1]
    rows = np.column_stack([sources.reshape(-1), np.repeat(np.arange(sources.shape[0]), K),
                            np.asarray(delays, dtype=float).reshape(-1)])
    return sim.Projection(sources_pop, targets_pop, sim.FromListConnector(rows, column_names=["delay"]),
                          synapse, receptor_type=receptor, label=label)


def build_ensemble(sim: ModuleType, bms: list, fit: ActivationFit, mode: str = "ensemble",
                   background: EnsembleBackground | None = None, seed: int = 0,
                   neuron: NeuronParameters = DEFAULT_NEURON, noise: NoiseParameters = DEFAULT_NOISE,
                   translation_noise: NoiseParameters | None = None, synapses: str = "renewing",
                   activation_probes: np.ndarray | None = None, membrane_probes: np.ndarray | None = None,
                   label: str = "ensemble", connectivity: np.ndarray | None = None) -> Ensemble:
    """Build M sampling networks (one per BM in ``bms``) as one PyNN network (``sim.setup`` called).

    Parameters
    ----------
    sim : module
        PyNN backend module.
    bms : list of BoltzmannMachine
        One target per network, all with the same number of units N.
    fit : ActivationFit
        Activation function under the chosen background (mV); calibrate it under that background.
    mode : {"poisson", "ensemble", "mixture"}
        Noise source (see the module docstring); in ``"ensemble"`` mode no random source is created.
    background : EnsembleBackground, optional
        Ensemble connectivity, weights, kick and mixture fraction (default :data:`DEFAULT_BACKGROUND`).
    seed : int
        Seed of the background connectivity, the kick spike times and the initial membrane
        potentials (numpy); the simulator's own seed is set in ``sim.setup``.
    neuron, noise : NeuronParameters, NoiseParameters
        Neuron parameters and the Poisson background of the ``poisson`` and ``mixture`` modes.
    translation_noise : NoiseParameters, optional
        Background assumed by the BM -> LIF weight translation; default :func:`equivalent_noise`.
    synapses : {"renewing", "static"}
        Recurrent synapse kind.
    activation_probes : array (p,) or (g, p), optional
        Leak potentials (mV) of uncoupled probe neurons that receive the same kind of background
        (sources drawn from the ensemble's source units) and record spikes: the activation function under it.
        A 2-D array makes g groups: the p probes of a group share one set of sources, so a group
        measures the activation function of ONE neuron's background (without the offsets between
        neurons that different source sets cause). Probes are numbered group by group.
    membrane_probes : array (q,), optional
        Leak potentials (mV) of non-spiking probes (threshold 40 mV above v_thresh) recording ``v``: the free
        membrane potential. Probes are appended after the activation probes in ``ensemble.probes``.
    connectivity : bool array (N, N), optional
        Pairs of every network whose weight may become nonzero (training): both receptor synapses
        there. None: one synapse per nonzero weight (see :mod:`cortexsim.models.recurrent`).

    Raises
    ------
    ValueError
        Unknown mode or synapse kind, fewer than 2 networks or 2 K > (M - 1) N in ensemble/mixture mode
        (2 K > M - 1 with ``background.source_sharing="disjoint"``).
    """
    bms = _check_bms(bms)
    background = DEFAULT_BACKGROUND if background is None else background
    if synapses not in SYNAPSE_KINDS:
        raise ValueError(f"synapses must be one of {SYNAPSE_KINDS}, got {synapses!r}")
    M, N = len(bms), bms[0].n_units
    check_ensemble_size(M, N, background.in_degree, mode, background.source_sharing, background.first_source_unit)
    if translation_noise is None:
        translation_noise = equivalent_noise(background, mode, noise)
    rng = derive_rng(seed, 1)
    rows, e_leak, allowed = _block_rows(bms, neuron, translation_noise, fit, connectivity)
    cell = neuron.as_pynn()
    cell["v_rest"] = e_leak
    population = sim.Population(M * N, sim.IF_cond_exp(**cell), label=label)
    population.initialize(v=rng.uniform(neuron.v_reset - 5.0, neuron.v_thresh, M * N))
    population.record("spikes")
    delay = max(sim.get_min_delay(), sim.get_time_step())
    recurrent = RecurrentSynapses.from_rows(sim, population, rows, synapses,
                                            {"excitatory": neuron.tau_syn_E, "inhibitory": neuron.tau_syn_I},
                                            delay, label, allowed)
    ensemble = Ensemble(sim, mode, bms, fit, neuron, noise, translation_noise, background, synapses, population,
                        recurrent.projection_exc, recurrent.projection_inh, recurrent=recurrent,
                        e_leak=np.asarray(e_leak, dtype=float))
    probe_leaks = [np.asarray(x, dtype=float).reshape(-1) for x in (activation_probes, membrane_probes)
                   if x is not None]
    group_size = 1 if activation_probes is None or np.ndim(activation_probes) < 2 else np.shape(activation_probes)[1]
    if probe_leaks:
        n_act = 0 if activation_probes is None else int(np.size(activation_probes))
        leaks = np.concatenate(probe_leaks)
        probe_cell = neuron.as_pynn()
        probe_cell["v_rest"] = leaks
        # non-spiking: 40 mV above the threshold, out of reach of a free membrane in the high-conductance
        # state (fluctuations ~1 mV) and within a chip's voltage range (bss2: up to -10 mV)
        probe_cell["v_thresh"] = np.where(np.arange(leaks.size) < n_act, neuron.v_thresh,
                                          min(neuron.v_thresh + 40.0, neuron.e_rev_E + 10.0))
        ensemble.probes = sim.Population(leaks.size, sim.IF_cond_exp(**probe_cell), label=f"{label}_probes")
        ensemble.probes.initialize(v=leaks)
        ensemble.probes.record("spikes")
        if leaks.size > n_act:
            ensemble.probes[n_act:].record("v")
    if mode in ("ensemble", "mixture"):
        scale = 1.0 if mode == "ensemble" else 1.0 - background.poisson_fraction
        w_exc, w_inh = scale * background.weight_exc, scale * background.weight_inh
        exc, inh = draw_background_sources(M, N, background.in_degree, seed, background.source_sharing,
                                           background.first_source_unit)
        ensemble.sources_exc, ensemble.sources_inh = exc, inh
        dt = sim.get_time_step()
        for name, sources, weight, receptor in (("background_exc", exc, w_exc, "excitatory"),
                                                ("background_inh", inh, w_inh, "inhibitory")):
            ensemble.created[name] = _connect_sources(sim, population, population, sources,
                                                      background_synapse_type(sim, background, weight),
                                                      background_delays(background, sources.shape, dt, delay, rng),
                                                      receptor, f"{label}_{name}")
        if ensemble.probes is not None:
            K = background.in_degree
            n_sets = -(-n_act // group_size) + ensemble.probes.size - n_act  # one set per group / membrane probe
            pool = ensemble.source_units      # all M * N units unless first_source_unit > 0 (same draws then)
            drawn = np.stack([pool[rng.choice(pool.size, 2 * K, replace=False)] for _ in range(n_sets)])
            set_of_probe = np.concatenate([np.arange(n_act) // group_size,
                                           -(-n_act // group_size) + np.arange(ensemble.probes.size - n_act)])
            probe_drawn = drawn[set_of_probe]
            ensemble.probe_sources = (probe_drawn[:, :K], probe_drawn[:, K:])
            for name, sources, weight, receptor in (("probe_exc", probe_drawn[:, :K], w_exc, "excitatory"),
                                                    ("probe_inh", probe_drawn[:, K:], w_inh, "inhibitory")):
                ensemble.created[name] = _connect_sources(sim, population, ensemble.probes, sources,
                                                          background_synapse_type(sim, background, weight),
                                                          background_delays(background, sources.shape, dt, delay, rng),
                                                          receptor, f"{label}_{name}")
        if background.kick_ms > 0 and background.kick_rate_hz > 0 and background.kick_weight > 0:
            times = kick_spike_times(M * N, background.kick_ms, background.kick_rate_hz, sim.get_time_step(),
                                     int(rng.integers(2**31)))
            kick = sim.Population(M * N, sim.SpikeSourceArray(spike_times=[sim.Sequence(t) for t in times]),
                                  label=f"{label}_kick")
            ensemble.created["kick"] = sim.Projection(kick, population, sim.OneToOneConnector(),
                                                      sim.StaticSynapse(weight=background.kick_weight, delay=delay),
                                                      receptor_type="excitatory", label=f"{label}_kick")
    if mode in ("poisson", "mixture"):
        poisson = noise if mode == "poisson" else replace(
            noise, rate_exc=noise.rate_exc * background.poisson_fraction,
            rate_inh=noise.rate_inh * background.poisson_fraction)
        ensemble.created["poisson"] = add_poisson_background(sim, population, poisson)
        if ensemble.probes is not None:
            ensemble.created["probe_poisson"] = add_poisson_background(sim, ensemble.probes, poisson)
    return ensemble
