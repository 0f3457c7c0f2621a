"""Ensembles of LIF sampling networks that are each other's noise (Dold et al. 2019; references §2).

M sampling networks of N neurons each live in ONE PyNN network: one population of M * N neurons
(network m holds neurons ``m * N .. m * N + N - 1``), block-diagonal recurrent projections, and a
background selected by ``mode``:

``"poisson"``
    Independent Poisson input per neuron (:func:`cortexsim.backends.noise.add_poisson_background`).
``"ensemble"``
    No random source at all. Each neuron receives ``K`` excitatory and ``K`` inhibitory static
    synapses from ``2 K`` distinct neurons of OTHER networks, drawn once from ``seed``
    (:func:`draw_background_sources`). A short deterministic kick (a ``SpikeSourceArray`` with
    seeded spike times, :func:`kick_spike_times`) and seeded initial membrane potentials set different
    initial conditions; afterwards the dynamics are deterministic.
``"mixture"``
    Both: Poisson rates scaled by ``poisson_fraction`` f, ensemble weights by ``1 - f``, so the mean
    background conductance is that of either pure mode.

Choice of the ensemble weights (documented default, :func:`matched_background`)
------------------------------------------------------------------------------
A Poisson background of rate R and weight w0 per receptor gives the mean conductance
``R w0 tau_syn`` and, for shot noise, the variance ``R w0^2 tau_syn / 2``. K sources firing at rate
nu with weight w give ``K nu w tau_syn`` and (if they were independent Poisson trains)
``K nu w^2 tau_syn / 2``. Choosing ``w = R w0 / (K nu)`` matches the mean conductance, hence the free
mean membrane potential and the effective time constant; with ``K nu = R`` (e.g. K = 60 sources at
nu = 50 Hz for R = 3000 Hz) it would also match the variance if the sources were Poisson trains. They
are not (bursts, regular firing of saturated neurons, correlations; measured by
:mod:`cortexsim.analysis.background`), so K is chosen by measurement instead: the default K = 30 gives
free-membrane fluctuations of the same size as the Poisson background (see :data:`DEFAULT_BACKGROUND`).
The BM translation under ensemble noise uses
:func:`equivalent_noise` (the Poisson background with the same mean conductances) together with an
activation function measured under the ensemble background (probe neurons, see ``activation_probes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import ModuleType

import numpy as np

from ..backends.noise import add_poisson_background
from ..backends.projection_weights import set_projection_weights
from .boltzmann import BoltzmannMachine, block_diagonal
from .lif_translation import (DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, LIFNetworkParameters, NeuronParameters,
                              NoiseParameters, bm_to_lif)
from .sampling_network import SYNAPSE_KINDS, _synapse_type

__all__ = ["NOISE_MODES", "EnsembleBackground", "DEFAULT_BACKGROUND", "Ensemble", "build_ensemble",
           "draw_background_sources", "kick_spike_times", "matched_background", "equivalent_noise",
           "check_ensemble_size"]

#: Noise-source modes of an ensemble.
NOISE_MODES = ("poisson", "ensemble", "mixture")


def _positive(name: str, value, allow_zero: bool = False) -> None:
    ok = np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}")


@dataclass(frozen=True)
class EnsembleBackground:
    """Connectivity and weights of the ensemble background, and the initial kick.

    Attributes
    ----------
    in_degree : int
        K: excitatory sources per neuron, and as many inhibitory ones (>= 1); 2 K distinct neurons
        of other networks.
    weight_exc : float
        Weight of each excitatory background synapse (uS), >= 0.
    weight_inh : float
        Weight of each inhibitory background synapse, as a magnitude (uS), >= 0.
    delay_ms : float
        Shortest delay of the background synapses (ms), > 0 (at least the simulator's minimum delay).
    delay_max_ms : float
        Longest delay (ms), >= delay_ms; each background synapse gets a fixed delay drawn uniformly
        from [delay_ms, delay_max_ms] on the time grid (seeded with the connectivity). Spread
        delays keep the saturated neurons of different networks from locking into one rhythm.
    kick_ms : float
        Duration of the initial kick (ms), >= 0 (0: no kick).
    kick_rate_hz : float
        Rate of the kick spikes per neuron (Hz), >= 0.
    kick_weight : float
        Excitatory weight of a kick spike (uS), >= 0.
    poisson_fraction : float
        f in (0, 1) of the mixture mode: Poisson rates times f, ensemble weights times (1 - f).
    design_rate_hz : float
        Mean firing rate of the ensemble neurons assumed when the weights were chosen (Hz), > 0;
        :func:`equivalent_noise` uses it unless a measured rate is given.
    """

    in_degree: int = 30
    weight_exc: float = 0.001
    weight_inh: float = 0.001
    delay_ms: float = 1.0
    delay_max_ms: float = 1.0
    kick_ms: float = 20.0
    kick_rate_hz: float = 200.0
    kick_weight: float = 0.01
    poisson_fraction: float = 0.5
    design_rate_hz: float = 50.0

    def __post_init__(self) -> None:
        if int(self.in_degree) != self.in_degree or self.in_degree < 1:
            raise ValueError(f"in_degree K must be a positive integer, got {self.in_degree!r}")
        for name in ("weight_exc", "weight_inh", "kick_ms", "kick_rate_hz", "kick_weight"):
            _positive(name, getattr(self, name), allow_zero=True)
        _positive("delay_ms", self.delay_ms)
        if not (np.isfinite(self.delay_max_ms) and self.delay_max_ms >= self.delay_ms):
            raise ValueError(f"delay_max_ms must be >= delay_ms ({self.delay_ms} ms), got {self.delay_max_ms!r}")
        _positive("design_rate_hz", self.design_rate_hz)
        if not 0.0 < self.poisson_fraction < 1.0:
            raise ValueError(f"poisson_fraction must lie in (0, 1), got {self.poisson_fraction!r}")

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def matched_background(noise: NoiseParameters, in_degree: int, source_rate_hz: float,
                       **kwargs) -> EnsembleBackground:
    """Ensemble weights with the mean conductance of the Poisson background ``noise``.

    ``weight = rate * weight0 / (K * source_rate_hz)`` per receptor (see the module docstring);
    further fields of :class:`EnsembleBackground` through ``kwargs``.
    """
    _positive("source_rate_hz", source_rate_hz)
    K = int(in_degree)
    return EnsembleBackground(in_degree=K, weight_exc=noise.rate_exc * noise.weight_exc / (K * source_rate_hz),
                              weight_inh=noise.rate_inh * noise.weight_inh / (K * source_rate_hz),
                              design_rate_hz=float(source_rate_hz), **kwargs)


DEFAULT_BACKGROUND = matched_background(DEFAULT_NOISE, 30, 50.0, delay_max_ms=10.0)
"""K = 30 excitatory + 30 inhibitory sources, 0.002 uS each (:func:`matched_background` of the default
3000 Hz Poisson background at a design rate of 50 Hz), delays uniform in [1, 10] ms.

Measured on NEST (50 random 5-neuron BMs, W, b ~ N(0, 1), 5 s, seed 1): the networks fire at 53.8 Hz
on average under Poisson noise, hence the design rate. With all delays 1 ms, the free membrane
potential at E_l = v_p05 has a standard deviation of 0.93-1.05 mV per neuron under the Poisson
background and 0.97-1.06 mV under this ensemble background (0.59-0.72 mV with K = 60 at 0.001 uS,
1.16-1.26 mV with K = 20 at 0.003 uS), so K = 30 matches both the mean conductance and the size of
the fluctuations; but 1 ms delays let saturated neurons lock into a common 100 Hz rhythm (Fano factor
of the population count in 1 ms bins 1.6-15), which delays spread over [1, 10] ms remove (0.95).
The activation function of ONE neuron under this background (probes sharing one source set) then has
the Poisson width (alpha 0.69-0.92 mV, median 0.80 mV, vs 0.80 mV under Poisson noise), while each
neuron's fixed set of sources shifts its v_p05 (standard deviation 0.9 mV across source sets), an
offset that training absorbs into the biases."""


def equivalent_noise(background: EnsembleBackground, mode: str, poisson: NoiseParameters,
                     source_rate_hz: float | None = None) -> NoiseParameters:
    """The Poisson background with the same mean conductances as the background of ``mode``.

    Ensemble part: rate ``K * source_rate_hz`` (default ``background.design_rate_hz``) at the ensemble
    weight; mixture: the conductances of both parts added (expressed at the Poisson weights).
    Used by the BM -> LIF translation (free membrane mean and total conductance).
    """
    if mode not in NOISE_MODES:
        raise ValueError(f"mode must be one of {NOISE_MODES}, got {mode!r}")
    if mode == "poisson":
        return poisson
    nu = background.design_rate_hz if source_rate_hz is None else float(source_rate_hz)
    _positive("source_rate_hz", nu)
    K = background.in_degree
    if mode == "ensemble":
        return NoiseParameters(rate_exc=K * nu, rate_inh=K * nu, weight_exc=background.weight_exc,
                               weight_inh=background.weight_inh)
    f = background.poisson_fraction
    g_exc = f * poisson.rate_exc * poisson.weight_exc + (1 - f) * K * nu * background.weight_exc
    g_inh = f * poisson.rate_inh * poisson.weight_inh + (1 - f) * K * nu * background.weight_inh
    w_exc = poisson.weight_exc if poisson.weight_exc > 0 else background.weight_exc
    w_inh = poisson.weight_inh if poisson.weight_inh > 0 else background.weight_inh
    return NoiseParameters(rate_exc=g_exc / w_exc if w_exc > 0 else 0.0,
                           rate_inh=g_inh / w_inh if w_inh > 0 else 0.0, weight_exc=w_exc, weight_inh=w_inh)


def check_ensemble_size(n_networks: int, n_neurons: int, in_degree: int, mode: str) -> None:
    """ValueError unless the ensemble can provide 2 K distinct sources from other networks."""
    if mode not in NOISE_MODES:
        raise ValueError(f"mode must be one of {NOISE_MODES}, got {mode!r}")
    if int(n_networks) != n_networks or n_networks < 1:
        raise ValueError(f"n_networks M must be a positive integer, got {n_networks!r}")
    if mode == "poisson":
        return
    if n_networks < 2:
        raise ValueError(f"mode {mode!r} needs at least M = 2 networks (each neuron's background comes from "
                         f"OTHER networks), got M = {n_networks}")
    available = (int(n_networks) - 1) * int(n_neurons)
    if 2 * int(in_degree) > available:
        raise ValueError(f"in_degree K = {in_degree} needs 2K = {2 * int(in_degree)} distinct source neurons in "
                         f"other networks, but only (M - 1) * N = ({n_networks} - 1) * {n_neurons} = {available} "
                         f"exist; use K <= {available // 2} or more networks")


def draw_background_sources(n_networks: int, n_neurons: int, in_degree: int,
                            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random fixed background connectivity: source indices ``(exc, inh)``, each (M * N, K) int64.

    Target neuron i of network ``m = i // N`` gets 2 K distinct sources drawn uniformly without
    replacement from the (M - 1) N neurons of the other networks (``numpy.random.default_rng(seed)``,
    targets in order); the first K are excitatory, the last K inhibitory.
    """
    check_ensemble_size(n_networks, n_neurons, in_degree, "ensemble")
    M, N, K = int(n_networks), int(n_neurons), int(in_degree)
    rng = np.random.default_rng(seed)
    n = M * N
    drawn = np.empty((n, 2 * K), dtype=np.int64)
    for target in range(n):
        start = (target // N) * N
        choice = rng.choice(n - N, size=2 * K, replace=False)
        drawn[target] = np.where(choice >= start, choice + N, choice)  # skip the own network's block
    return drawn[:, :K].copy(), drawn[:, K:].copy()


def kick_spike_times(n_targets: int, duration_ms: float, rate_hz: float, dt_ms: float,
                     seed: int, start_ms: float = 1.0) -> list[np.ndarray]:
    """Seeded Poisson-like kick spike times (ms) on the grid ``start + dt, start + 2 dt, ..., start + duration``.

    Each of the ``duration / dt`` grid steps carries a spike with probability ``rate * dt`` (at most 1).
    ``start_ms`` keeps the first spike after the minimum delay (PyNN on NEST shifts spike-source times
    back by it and rejects times <= 0).
    """
    _positive("dt_ms", dt_ms)
    rng = np.random.default_rng(seed)
    steps = int(np.floor(duration_ms / dt_ms + 1e-9))
    if steps < 1 or rate_hz <= 0:
        return [np.empty(0) for _ in range(n_targets)]
    hits = rng.random((n_targets, steps)) < min(1.0, rate_hz * 1e-3 * dt_ms)
    return [start_ms + dt_ms * (np.flatnonzero(row) + 1.0) for row in hits]


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

    @property
    def n_networks(self) -> int:
        return len(self.bms)

    @property
    def n_neurons(self) -> int:
        """Neurons per network."""
        return self.bms[0].n_units

    @property
    def blocks(self) -> list[slice]:
        """Population slice of each network."""
        N = self.n_neurons
        return [slice(m * N, (m + 1) * N) for m in range(self.n_networks)]

    def set_bms(self, bms: list) -> None:
        """Represent ``bms`` (one per network) from now on: leak potentials and recurrent weights in place."""
        bms = _check_bms(bms, self.n_networks)
        lif = _translate(bms, self.neuron, self.translation_noise, self.fit)
        self.population.set(v_rest=lif.e_leak)
        set_projection_weights(self.sim, self.projection_exc, lif.excitatory_weights)
        set_projection_weights(self.sim, self.projection_inh, lif.inhibitory_weights)
        self.bms = bms

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


def _translate(bms: list, neuron, noise, fit) -> LIFNetworkParameters:
    return bm_to_lif(block_diagonal(bms), neuron, noise, fit)


def _block_pairs(bms: list, neuron, noise, fit):
    """Recurrent (pre, post, weight) lists of the block-diagonal network, excitatory and inhibitory."""
    N = bms[0].n_units
    pre, post = np.nonzero(~np.eye(N, dtype=bool))
    exc, inh, leaks = [], [], []
    for m, bm in enumerate(bms):
        lif = bm_to_lif(bm, neuron, noise, fit)
        leaks.append(lif.e_leak)
        offset = m * N
        exc.append(np.column_stack([pre + offset, post + offset, lif.excitatory_weights[pre, post]]))
        inh.append(np.column_stack([pre + offset, post + offset, lif.inhibitory_weights[pre, post]]))
    return np.concatenate(exc), np.concatenate(inh), np.concatenate(leaks)


def _connect_sources(sim, sources_pop, targets_pop, sources: np.ndarray, weight: float, delays: np.ndarray,
                     receptor: str, label: str):
    K = sources.shape[1]
    rows = np.column_stack([sources.reshape(-1), np.repeat(np.arange(sources.shape[0]), K),
                            np.asarray(delays, dtype=float).reshape(-1)])
    return sim.Projection(sources_pop, targets_pop, sim.FromListConnector(rows, column_names=["delay"]),
                          sim.StaticSynapse(weight=weight), receptor_type=receptor, label=label)


def _delays(background: EnsembleBackground, shape, dt: float, min_delay: float, rng) -> np.ndarray:
    """Background delays (ms) uniform on the dt grid in [delay_ms, delay_max_ms], at least ``min_delay``."""
    low = max(background.delay_ms, min_delay)
    high = max(background.delay_max_ms, low)
    steps = np.arange(np.ceil(low / dt - 1e-9), np.floor(high / dt + 1e-9) + 1) * dt
    return rng.choice(steps, size=shape)


def build_ensemble(sim: ModuleType, bms: list, fit: ActivationFit, mode: str = "ensemble",
                   background: EnsembleBackground | None = None, seed: int = 0,
                   neuron: NeuronParameters = DEFAULT_NEURON, noise: NoiseParameters = DEFAULT_NOISE,
                   translation_noise: NoiseParameters | None = None, synapses: str = "renewing",
                   activation_probes: np.ndarray | None = None, membrane_probes: np.ndarray | None = None,
                   label: str = "ensemble") -> Ensemble:
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
        (sources drawn from the whole ensemble) and record spikes: the activation function under it.
        A 2-D array makes g groups: the p probes of a group share one set of sources, so a group
        measures the activation function of ONE neuron's background (without the offsets between
        neurons that different source sets cause). Probes are numbered group by group.
    membrane_probes : array (q,), optional
        Leak potentials (mV) of non-spiking probes (threshold above e_rev_E) recording ``v``: the free
        membrane potential. Probes are appended after the activation probes in ``ensemble.probes``.

    Raises
    ------
    ValueError
        Unknown mode or synapse kind, fewer than 2 networks or 2 K > (M - 1) N in ensemble/mixture mode.
    """
    bms = _check_bms(bms)
    background = DEFAULT_BACKGROUND if background is None else background
    if synapses not in SYNAPSE_KINDS:
        raise ValueError(f"synapses must be one of {SYNAPSE_KINDS}, got {synapses!r}")
    M, N = len(bms), bms[0].n_units
    check_ensemble_size(M, N, background.in_degree, mode)
    if translation_noise is None:
        translation_noise = equivalent_noise(background, mode, noise)
    rng = np.random.default_rng([int(seed), 1])
    exc_pairs, inh_pairs, e_leak = _block_pairs(bms, neuron, translation_noise, fit)
    cell = neuron.as_pynn()
    cell["v_rest"] = e_leak
    population = sim.Population(M * N, sim.IF_cond_exp(**cell), label=label)
    population.initialize(v=rng.uniform(neuron.v_reset - 5.0, neuron.v_thresh, M * N))
    population.record("spikes")
    delay = max(sim.get_min_delay(), sim.get_time_step())
    projections = []
    for pairs, receptor, tau in ((exc_pairs, "excitatory", neuron.tau_syn_E), (inh_pairs, "inhibitory", neuron.tau_syn_I)):
        synapse = _synapse_type(sim, synapses, tau, delay)
        projections.append(sim.Projection(population, population,
                                          sim.FromListConnector(pairs, column_names=["weight"]), synapse,
                                          receptor_type=receptor, label=f"{label}_{receptor[:3]}"))
    ensemble = Ensemble(sim, mode, bms, fit, neuron, noise, translation_noise, background, synapses, population,
                        projections[0], projections[1])
    probe_leaks = [np.asarray(x, dtype=float).reshape(-1) for x in (activation_probes, membrane_probes) if x is not None]
    group_size = 1 if activation_probes is None or np.ndim(activation_probes) < 2 else np.shape(activation_probes)[1]
    if probe_leaks:
        n_act = 0 if activation_probes is None else int(np.size(activation_probes))
        leaks = np.concatenate(probe_leaks)
        probe_cell = neuron.as_pynn()
        probe_cell["v_rest"] = leaks
        probe_cell["v_thresh"] = np.where(np.arange(leaks.size) < n_act, neuron.v_thresh, neuron.e_rev_E + 10.0)
        ensemble.probes = sim.Population(leaks.size, sim.IF_cond_exp(**probe_cell), label=f"{label}_probes")
        ensemble.probes.initialize(v=leaks)
        ensemble.probes.record("spikes")
        if leaks.size > n_act:
            ensemble.probes[n_act:].record("v")
    if mode in ("ensemble", "mixture"):
        scale = 1.0 if mode == "ensemble" else 1.0 - background.poisson_fraction
        w_exc, w_inh = scale * background.weight_exc, scale * background.weight_inh
        exc, inh = draw_background_sources(M, N, background.in_degree, seed)
        ensemble.sources_exc, ensemble.sources_inh = exc, inh
        dt = sim.get_time_step()
        for name, sources, weight, receptor in (("background_exc", exc, w_exc, "excitatory"),
                                                ("background_inh", inh, w_inh, "inhibitory")):
            ensemble.created[name] = _connect_sources(sim, population, population, sources, weight,
                                                      _delays(background, sources.shape, dt, delay, rng),
                                                      receptor, f"{label}_{name}")
        if ensemble.probes is not None:
            K = background.in_degree
            n_sets = -(-n_act // group_size) + ensemble.probes.size - n_act  # one set per group / membrane probe
            drawn = np.stack([rng.choice(M * N, 2 * K, replace=False) for _ in range(n_sets)])
            set_of_probe = np.concatenate([np.arange(n_act) // group_size,
                                           -(-n_act // group_size) + np.arange(ensemble.probes.size - n_act)])
            probe_drawn = drawn[set_of_probe]
            ensemble.probe_sources = (probe_drawn[:, :K], probe_drawn[:, K:])
            for name, sources, weight, receptor in (("probe_exc", probe_drawn[:, :K], w_exc, "excitatory"),
                                                    ("probe_inh", probe_drawn[:, K:], w_inh, "inhibitory")):
                ensemble.created[name] = _connect_sources(sim, population, ensemble.probes, sources, weight,
                                                          _delays(background, sources.shape, dt, delay, rng),
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
