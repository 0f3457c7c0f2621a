"""Parameters of an ensemble's background (pure numpy): connectivity, weights, delays, kick, modes.

See :mod:`cortexsim.models.ensemble` for the ensemble itself and the reasoning behind the default
weights (:data:`DEFAULT_BACKGROUND`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from cortexsim.models.lif_translation import membrane_mean
from cortexsim.parameters import DEFAULT_NOISE, NeuronParameters, NoiseParameters

log = logging.getLogger(__name__)

__all__ = ["NOISE_MODES", "SOURCE_SHARINGS", "BACKGROUND_SYNAPSES", "EnsembleBackground", "DEFAULT_BACKGROUND",
           "draw_background_sources", "source_units",
           "kick_spike_times", "matched_background", "equivalent_noise", "tracking_weight_scale", "check_ensemble_size",
           "background_delays", "SourceEfficacy", "unit_leak_offsets"]

#: Noise-source modes of an ensemble.
NOISE_MODES = ("poisson", "ensemble", "mixture")

#: How the background sources of the neurons of ONE network relate (:func:`draw_background_sources`).
SOURCE_SHARINGS = ("random", "disjoint")

#: Kinds of background synapse: "static", or "depressing" (Tsodyks-Markram, U = 1, tau_facil = 0).
BACKGROUND_SYNAPSES = ("static", "depressing")


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
    source_sharing : {"random", "disjoint"}
        ``"random"``: each neuron draws its 2 K sources independently, so two neurons of one network
        share about (2 K)^2 / ((M - 1) N) sources (correlated backgrounds). ``"disjoint"``: the N
        neurons of a network draw their N * 2 K sources jointly without replacement, so no source
        feeds two neurons of the same network (needs 2 K <= M - 1). See :func:`draw_background_sources`.
        Measured (benchmarks/ensemble_source_screening.py, NEST, 50 x 5, 150 CD iterations): at K = 24
        "disjoint" lowers the mean absolute correlation of the net background inputs of two neurons of one network from
        0.065 to 0.039 but not the trained D_KL (median 0.0160 vs 0.0165 at 20 s, extrapolated 0.0054 vs
        0.0058; paired p = 0.09 and 0.65), so "random" stays the default (both measured with static
        background synapses).
    synapse : {"depressing", "static"}
        Kind of the background synapses. ``"depressing"``: Tsodyks-Markram with U = 1, no
        facilitation and recovery time ``tau_rec_ms``: a spike releases the recovered fraction
        ``1 - exp(-ISI / tau_rec)`` of the weight, so a source that fires a burst (a sampling neuron
        staying in state z = 1 refires every tau_ref) delivers mostly its first spike. The background
        then carries the other networks' state CHANGES rather than their persistent states, which
        removes the slow part of its power (see :data:`DEFAULT_BACKGROUND` for measurements).
        ``"static"``: every spike delivers the full weight. Depression does not remove the
        periodic drive of SATURATED sources (neurons firing every tau_ref for long stretches): in a
        small untrained ensemble (12 x 5 neurons, K = 10, W, b ~ N(0, 1)) where 27 % of the neurons
        saturated, single probes showed correlation times up to 34 ms; at 50 x 5, K = 30 (about 10 %
        saturated) every probe stayed at or below 5 ms over six connectivity seeds.
    tau_rec_ms : float
        Recovery time constant of the depressing synapses (ms), > 0; ignored for static synapses.
    first_source_unit : int
        Units ``first_source_unit .. N - 1`` of every other network may be background sources, >= 0 (and < N,
        checked where N is known). 0 (default): every unit. An RBM's ``n_visible`` (visible units first): hidden
        units only, so that clamped visible units (firing every tau_ref or silent while an image is clamped) never
        drive another network's background. See :func:`source_units`.
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
    source_sharing: str = "random"
    synapse: str = "depressing"
    tau_rec_ms: float = 40.0
    first_source_unit: int = 0

    def __post_init__(self) -> None:
        if self.synapse not in BACKGROUND_SYNAPSES:
            raise ValueError(f"synapse must be one of {BACKGROUND_SYNAPSES}, got {self.synapse!r}")
        _positive("tau_rec_ms", self.tau_rec_ms)
        if self.source_sharing not in SOURCE_SHARINGS:
            raise ValueError(f"source_sharing must be one of {SOURCE_SHARINGS}, got {self.source_sharing!r}")
        if int(self.in_degree) != self.in_degree or self.in_degree < 1:
            raise ValueError(f"in_degree K must be a positive integer, got {self.in_degree!r}")
        if isinstance(self.first_source_unit, bool) or int(self.first_source_unit) != self.first_source_unit \
                or self.first_source_unit < 0:
            raise ValueError(f"first_source_unit must be an integer >= 0, got {self.first_source_unit!r}")
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

    def release_fraction(self, source_rate_hz: float) -> float:
        """Mean fraction of the weight a spike releases if the sources fired as Poisson trains at ``source_rate_hz``.

        1 for static synapses; ``1 / (1 + nu tau_rec)`` for depressing ones (U = 1: the mean of
        ``1 - exp(-ISI / tau_rec)`` over exponential ISIs of rate nu).
        """
        _positive("source_rate_hz", source_rate_hz)
        if self.synapse == "static":
            return 1.0
        return 1.0 / (1.0 + source_rate_hz * 1e-3 * self.tau_rec_ms)


def matched_background(noise: NoiseParameters, in_degree: int, source_rate_hz: float,
                       **kwargs) -> EnsembleBackground:
    """Ensemble weights with the mean conductance of the Poisson background ``noise``.

    ``weight = rate * weight0 / (K * source_rate_hz * f)`` per receptor, with ``f`` the mean release
    fraction of the synapse kind (:meth:`EnsembleBackground.release_fraction`: 1 for static synapses,
    ``1 / (1 + nu tau_rec)`` for depressing ones; see the module docstring); further fields of
    :class:`EnsembleBackground` (``synapse``, ``tau_rec_ms``, ...) through ``kwargs``.
    """
    _positive("source_rate_hz", source_rate_hz)
    K = int(in_degree)
    shape = EnsembleBackground(in_degree=K, design_rate_hz=float(source_rate_hz), **kwargs)
    per_source = K * source_rate_hz * shape.release_fraction(source_rate_hz)
    return replace(shape, weight_exc=noise.rate_exc * noise.weight_exc / per_source,
                   weight_inh=noise.rate_inh * noise.weight_inh / per_source)


DEFAULT_BACKGROUND = matched_background(DEFAULT_NOISE, 30, 50.0, delay_max_ms=10.0, synapse="depressing",
                                        tau_rec_ms=40.0)
"""K = 30 excitatory + 30 inhibitory sources through DEPRESSING synapses (U = 1, tau_rec = 40 ms),
0.006 uS each (:func:`matched_background` of the default 3000 Hz Poisson background at a design rate
of 50 Hz: 3x the static weight, the inverse of the mean release fraction 1 / (1 + 50 Hz * 40 ms)),
delays uniform in [1, 10] ms.

Measured on NEST (50 random 5-neuron BMs, W, b ~ N(0, 1), 5 s, seed 1): the networks fire at 53.8 Hz
on average under Poisson noise, hence the design rate. Static synapses (session 2; weight 0.002 uS):
with all delays 1 ms, the free membrane potential at E_l = v_p05 has a standard deviation of
0.93-1.05 mV per neuron under the Poisson background and 0.97-1.06 mV under the static ensemble
background (0.59-0.72 mV with K = 60 at 0.001 uS, 1.16-1.26 mV with K = 20 at 0.003 uS), so K = 30
matches both the mean conductance and the size of the fluctuations; 1 ms delays let saturated
neurons lock into a common 100 Hz rhythm (Fano factor of the population count in 1 ms bins 1.6-15),
which delays spread over [1, 10] ms remove (0.95). But the static background fluctuates slowly: its
sources are sampling neurons that refire every tau_ref while in state z = 1, so they fire in bursts
and the background follows the other networks' persistent states. The free membrane's correlation
time is 35 ms (Poisson 11.5 ms) and the networks' states decorrelate 3.3x more slowly (27 vs 8.1 ms;
benchmarks/results/ensemble_background_timescales.json), so the trained ensemble needs more
sampling time for the same accuracy and its CD gradients are noisier. Depressing synapses deliver
mostly the first spike of each burst: at tau_rec = 40 ms the free membrane has the Poisson standard
deviation (1.01 vs 1.02 mV) and a correlation time of 3.0 ms, and the states decorrelate in 4.3 ms
(tau_rec = 20 ms: 0.93 mV, 6.1 ms, 7.0 ms; 80 ms: 1.10 mV, 1.2 ms, 3.3 ms). The activation
function of ONE neuron under the background (probes sharing one source set) has the Poisson width,
while each neuron's fixed set of sources shifts its v_p05, an offset that training absorbs into the
biases."""


def equivalent_noise(background: EnsembleBackground, mode: str, poisson: NoiseParameters,
                     source_rate_hz: float | None = None) -> NoiseParameters:
    """The Poisson background with the same mean conductances as the background of ``mode``.

    Ensemble part: rate ``K * source_rate_hz * release_fraction`` (default rate
    ``background.design_rate_hz``; :meth:`EnsembleBackground.release_fraction`) at the ensemble weight;
    mixture: the conductances of both parts added (expressed at the Poisson weights).
    Used by the BM -> LIF translation (free membrane mean and total conductance).
    """
    if mode not in NOISE_MODES:
        raise ValueError(f"mode must be one of {NOISE_MODES}, got {mode!r}")
    if mode == "poisson":
        return poisson
    nu = background.design_rate_hz if source_rate_hz is None else float(source_rate_hz)
    _positive("source_rate_hz", nu)
    K = background.in_degree
    nu_eff = nu * background.release_fraction(nu)  # full-weight events per source and second
    if mode == "ensemble":
        return NoiseParameters(rate_exc=K * nu_eff, rate_inh=K * nu_eff, weight_exc=background.weight_exc,
                               weight_inh=background.weight_inh)
    f = background.poisson_fraction
    g_exc = f * poisson.rate_exc * poisson.weight_exc + (1 - f) * K * nu_eff * background.weight_exc
    g_inh = f * poisson.rate_inh * poisson.weight_inh + (1 - f) * K * nu_eff * background.weight_inh
    w_exc = poisson.weight_exc if poisson.weight_exc > 0 else background.weight_exc
    w_inh = poisson.weight_inh if poisson.weight_inh > 0 else background.weight_inh
    return NoiseParameters(rate_exc=g_exc / w_exc if w_exc > 0 else 0.0,
                           rate_inh=g_inh / w_inh if w_inh > 0 else 0.0, weight_exc=w_exc, weight_inh=w_inh)


def tracking_weight_scale(background: EnsembleBackground, calibrated_rate_hz: float, current_rate_hz: float,
                          max_scale: float = 4.0) -> float:
    """Factor on the background weights that restores the calibrated mean conductance at another source rate.

    The mean conductance of K sources firing as Poisson trains at rate nu is proportional to
    ``w nu f(nu)`` (:meth:`EnsembleBackground.release_fraction` f: 1 static, ``1 / (1 + nu tau_rec)``
    depressing, U = 1). When the networks that are the background fire at ``current_rate_hz`` instead of the
    ``calibrated_rate_hz`` at which the activation function and the translation were measured, weights
    times ``calibrated_rate_hz f(calibrated) / (current_rate_hz f(current))`` give the calibrated mean
    conductance again (the fluctuations are not restored: fewer, larger events). The factor is clipped
    to ``[1 / max_scale, max_scale]``.

    Examples
    --------
    >>> b = EnsembleBackground(synapse="depressing", tau_rec_ms=40.0)
    >>> round(tracking_weight_scale(b, 64.6, 15.0), 3)        # (64.6 / 3.584) / (15 / 1.6)
    1.923
    """
    for name, value in (("calibrated_rate_hz", calibrated_rate_hz), ("current_rate_hz", current_rate_hz)):
        _positive(name, value)
    if not np.isfinite(max_scale) or max_scale < 1:
        raise ValueError(f"max_scale must be a finite number >= 1, got {max_scale!r}")
    conductance = [nu * background.release_fraction(nu) for nu in (float(calibrated_rate_hz), float(current_rate_hz))]
    scale = conductance[0] / conductance[1]
    if not 1.0 / max_scale <= scale <= max_scale:
        log.warning("background weight scale %.3g (calibrated %.3g Hz, now %.3g Hz) clipped to [1/%g, %g]",
                    scale, calibrated_rate_hz, current_rate_hz, max_scale, max_scale)
    return float(np.clip(scale, 1.0 / max_scale, max_scale))


def check_ensemble_size(n_networks: int, n_neurons: int, in_degree: int, mode: str,
                        source_sharing: str = "random", first_source_unit: int = 0) -> None:
    """ValueError unless the ensemble can provide 2 K distinct sources from other networks.

    Sources are units ``first_source_unit .. N - 1`` of the other networks (S = N - ``first_source_unit`` per
    network, :func:`source_units`). With ``source_sharing="disjoint"`` the N neurons of a network need N * 2 K
    distinct sources together, i.e. N * 2 K <= (M - 1) S.
    """
    if source_sharing not in SOURCE_SHARINGS:
        raise ValueError(f"source_sharing must be one of {SOURCE_SHARINGS}, got {source_sharing!r}")
    if mode not in NOISE_MODES:
        raise ValueError(f"mode must be one of {NOISE_MODES}, got {mode!r}")
    if int(n_networks) != n_networks or n_networks < 1:
        raise ValueError(f"n_networks M must be a positive integer, got {n_networks!r}")
    if mode == "poisson":
        return
    if n_networks < 2:
        raise ValueError(f"mode {mode!r} needs at least M = 2 networks (each neuron's background comes from "
                         f"OTHER networks), got M = {n_networks}")
    if not 0 <= int(first_source_unit) < int(n_neurons):
        raise ValueError(f"first_source_unit must be in 0 .. N - 1 = {int(n_neurons) - 1} (units per network), "
                         f"got {first_source_unit!r}")
    per_network = int(n_neurons) - int(first_source_unit)
    available = (int(n_networks) - 1) * per_network
    if 2 * int(in_degree) > available:
        raise ValueError(f"in_degree K = {in_degree} needs 2K = {2 * int(in_degree)} distinct source neurons in "
                         f"other networks, but only (M - 1) * S = ({n_networks} - 1) * {per_network} = {available} "
                         f"exist (S: source units per network); use K <= {available // 2} or more networks")
    if source_sharing == "disjoint" and 2 * int(in_degree) * int(n_neurons) > available:
        raise ValueError(f"in_degree K = {in_degree} with source_sharing='disjoint' needs N * 2K = {n_neurons} * "
                         f"{2 * int(in_degree)} = {2 * int(in_degree) * int(n_neurons)} distinct source neurons per "
                         f"network, but only (M - 1) * S = {available} exist (S: source units per network); use "
                         f"K <= {available // (2 * int(n_neurons))}, more networks, or source_sharing='random'")


def source_units(n_networks: int, n_neurons: int, first_source_unit: int = 0) -> np.ndarray:
    """Population indices of the units that may be background sources: units ``first_source_unit .. N - 1`` of
    every network (network m's unit k is ``m * N + k``).

    Examples
    --------
    >>> source_units(3, 4, first_source_unit=2).tolist()    # the last two units of each of 3 networks of 4
    [2, 3, 6, 7, 10, 11]
    """
    M, N, first = int(n_networks), int(n_neurons), int(first_source_unit)
    return (np.arange(M)[:, None] * N + np.arange(first, N)[None, :]).reshape(-1)


def draw_background_sources(n_networks: int, n_neurons: int, in_degree: int, seed: int,
                            source_sharing: str = "random", first_source_unit: int = 0
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Random fixed background connectivity: source indices ``(exc, inh)``, each (M * N, K) int64.

    Candidates of a target in network ``m = i // N`` are the source units (:func:`source_units`, units
    ``first_source_unit .. N - 1``) of the other networks, in ascending order. ``"random"``: target neuron i gets
    2 K distinct sources drawn uniformly without replacement from its candidates (targets in order).
    ``"disjoint"``: the N * 2 K sources of network m's neurons are drawn together without replacement from its
    candidates and dealt out 2 K per neuron, so neurons of one network share no source. Either way
    ``numpy.random.default_rng(seed)``; the first K are excitatory, the last K inhibitory.

    Examples
    --------
    >>> exc, inh = draw_background_sources(3, 4, in_degree=1, seed=0, first_source_unit=2)
    >>> sorted(set(exc.ravel()) | set(inh.ravel())) <= [2, 3, 6, 7, 10, 11]   # never a unit below 2
    True
    """
    check_ensemble_size(n_networks, n_neurons, in_degree, "ensemble", source_sharing, first_source_unit)
    M, N, K = int(n_networks), int(n_neurons), int(in_degree)
    rng = np.random.default_rng(seed)
    pool = source_units(M, N, first_source_unit)
    network_of = pool // N
    candidates = [pool[network_of != m] for m in range(M)]   # ascending; with all units: c -> c (+ N past block m)
    drawn = np.empty((M * N, 2 * K), dtype=np.int64)
    if source_sharing == "disjoint":
        for m in range(M):
            choice = rng.choice(candidates[m].size, size=N * 2 * K, replace=False)
            drawn[m * N:(m + 1) * N] = candidates[m][choice].reshape(N, 2 * K)
        return drawn[:, :K].copy(), drawn[:, K:].copy()
    for target in range(M * N):
        own = candidates[target // N]
        drawn[target] = own[rng.choice(own.size, size=2 * K, replace=False)]
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


def background_delays(background: EnsembleBackground, shape, dt: float, min_delay: float, rng) -> np.ndarray:
    """Background delays (ms) uniform on the dt grid in [delay_ms, delay_max_ms], at least ``min_delay``."""
    low = max(background.delay_ms, min_delay)
    high = max(background.delay_max_ms, low)
    steps = np.arange(np.ceil(low / dt - 1e-9), np.floor(high / dt + 1e-9) + 1) * dt
    return rng.choice(steps, size=shape)


def _sparse_flatnonzero(mask: np.ndarray) -> np.ndarray:
    """``np.flatnonzero`` of a sparse array of bytes (bool, int8, uint8), faster: the non-zero 8-byte words
    first, then their bytes."""
    flat = np.ascontiguousarray(mask).reshape(-1).view(np.uint8)
    padded = np.zeros(-(-flat.size // 8) * 8, dtype=np.uint8)
    padded[:flat.size] = flat
    words = np.flatnonzero(padded.view(np.uint64))
    candidates = (words[:, None] * 8 + np.arange(8)).reshape(-1)
    return candidates[padded[candidates] != 0]


class SourceEfficacy:
    """Per source neuron: the weight fraction its spikes release per second through the background synapses.

    Accumulates 0/1 states on the read-out grid (a neuron is on for ``tau_refrac_ms`` after each spike;
    :func:`cortexsim.analysis.states.states_on_grid_from_arrays`). Spikes are recovered from the states: an
    on-step at least ``tau_refrac_ms`` after the previous spike is a spike (a new on-period, or the next
    spike of a regular train at 1 / tau_ref). Static synapses (``tau_rec_ms`` None) release 1 per spike
    (the efficacy is the rate); depressing ones (Tsodyks-Markram, U = 1) release the recovered fraction
    ``R`` and then ``R = 0``, with ``1 - R`` decaying by ``exp(-dt / tau_rec)`` per step, so a spike
    ``ISI`` after the previous one releases ``1 - exp(-ISI / tau_rec)`` (the first spike of a neuron 1).
    Consecutive :meth:`add` calls continue the same trains.

    Parameters
    ----------
    n_neurons : int
    tau_refrac_ms, dt_ms : float
        Refractory period and read-out step (ms); ``tau_refrac_ms`` a whole number of steps.
    tau_rec_ms : float or None
        Recovery time constant of depressing synapses (ms); None: static synapses.

    Examples
    --------
    >>> states = np.zeros((40, 1), dtype=np.uint8)
    >>> states[0:10] = states[20:30] = 1            # spikes at 0 and 20 ms (dt 1 ms, tau_ref 10 ms)
    >>> e = SourceEfficacy(1, tau_refrac_ms=10.0, dt_ms=1.0, tau_rec_ms=20.0)
    >>> e.add(states)
    >>> round(float(e.per_second()[0]), 3)          # (1 + (1 - exp(-20 / 20))) / 0.04 s
    40.803
    """

    def __init__(self, n_neurons: int, tau_refrac_ms: float, dt_ms: float, tau_rec_ms: float | None):
        _positive("dt_ms", dt_ms)
        _positive("tau_refrac_ms", tau_refrac_ms)
        if tau_rec_ms is not None:
            _positive("tau_rec_ms", tau_rec_ms)
        steps = tau_refrac_ms / dt_ms
        if abs(steps - round(steps)) > 1e-9 * steps:
            raise ValueError(f"tau_refrac_ms ({tau_refrac_ms}) must be a whole number of dt_ms ({dt_ms})")
        self.steps_refractory = int(round(steps))
        self.dt_ms, self.tau_rec_ms = float(dt_ms), tau_rec_ms
        self.recovered = np.ones(int(n_neurons))
        self.steps_since_spike = np.full(int(n_neurons), np.iinfo(np.int64).max // 2, dtype=np.int64)
        self.released = np.zeros(int(n_neurons))
        self.duration_ms = 0.0

    def add(self, states: np.ndarray) -> None:
        """Continue the trains with ``states`` (steps, n_neurons) of 0/1.

        Vectorised over the on-periods: in an on-period ``[a, e]`` whose start is at least ``tau_refrac_ms`` after
        the previous spike (always so for states made from spikes at least a refractory period apart), the spikes
        are ``a, a + r, a + 2 r, ...`` (r the refractory steps); the first on-period of a call continues the
        previous call's train. Neurons with an on-period that starts earlier (states not made that way) go
        through the step-by-step rule. Released fractions use ``1 - exp(-ISI / tau_rec)`` in closed form (equal
        to the step-by-step recursion to rounding).
        """
        states = np.asarray(states)
        if states.ndim != 2 or states.shape[1] != self.released.size:
            raise ValueError(f"states must be (steps, {self.released.size}), got {states.shape}")
        T, n, r = states.shape[0], states.shape[1], self.steps_refractory
        if T == 0:
            return
        on = (states > 0).view(np.int8)
        edges = np.diff(on, axis=0, prepend=np.zeros((1, n), np.int8), append=np.zeros((1, n), np.int8))
        changes = _sparse_flatnonzero(edges)
        up = edges.reshape(-1)[changes] > 0
        start, neuron = np.divmod(changes[up], n)              # start of each on-period
        stop, stop_neuron = np.divmod(changes[~up], n)         # one past its last on-step
        key = np.int16 if n <= np.iinfo(np.int16).max else np.int64       # int16: a radix sort
        order = np.argsort(neuron.astype(key), kind="stable")  # by neuron, in time order: k-th start <-> k-th stop
        start, neuron = start[order], neuron[order]
        stop = stop[np.argsort(stop_neuron.astype(key), kind="stable")]
        first_of_neuron = np.ones(neuron.size, dtype=bool)
        first_of_neuron[1:] = neuron[1:] != neuron[:-1]
        # the first on-period of a neuron continues the previous call: its first spike where since reaches r
        since_before = self.steps_since_spike[neuron]
        first = np.where(first_of_neuron, np.maximum(start, r - since_before - 1), start)
        count = np.where(first < stop, (stop - 1 - first) // r + 1, 0)
        last = first + (count - 1) * r
        # later on-periods: the previous spike must lie at least r steps before their start (else step by step)
        previous_last = np.concatenate([[0], last[:-1]])
        previous_count = np.concatenate([[0], count[:-1]])
        close = ~first_of_neuron & (previous_count > 0) & (start < previous_last + r)
        # a neuron whose earlier on-period had no spike (cut by the refractory rule) also goes step by step
        close |= ~first_of_neuron & (previous_count == 0)
        slow = np.unique(neuron[close])
        fast = ~np.isin(neuron, slow)
        spike_neuron = np.repeat(neuron[fast], count[fast])
        offsets = np.arange(spike_neuron.size) - np.repeat(np.cumsum(count[fast]) - count[fast], count[fast])
        spike_step = np.repeat(first[fast], count[fast]) + offsets * r
        R0, S0 = self.recovered.copy(), self.steps_since_spike.copy()
        spiked = np.zeros(n, dtype=bool)
        if spike_step.size:
            new_neuron = np.ones(spike_step.size, dtype=bool)
            new_neuron[1:] = spike_neuron[1:] != spike_neuron[:-1]
            if self.tau_rec_ms is None:
                release = np.ones(spike_step.size)
            else:
                tau_steps = self.tau_rec_ms / self.dt_ms
                gap = np.diff(spike_step, prepend=0).astype(float)
                # first spike of a neuron in this call: recovered from R0 over (step + 1) steps
                release = np.where(new_neuron,
                                   1.0 - (1.0 - R0[spike_neuron]) * np.exp(-(spike_step + 1.0) / tau_steps),
                                   -np.expm1(-gap / tau_steps))
            self.released += np.bincount(spike_neuron, weights=release, minlength=n)
            last_of_neuron = np.append(new_neuron[1:], True)
            last_step = np.full(n, -1, dtype=np.int64)
            last_step[spike_neuron[last_of_neuron]] = spike_step[last_of_neuron]
            spiked = last_step >= 0
        decay_T = 0.0 if self.tau_rec_ms is None else np.exp(-T * self.dt_ms / self.tau_rec_ms)
        self.recovered = 1.0 - (1.0 - R0) * decay_T
        self.steps_since_spike = S0 + T
        if spiked.any():
            since = (T - 1 - last_step[spiked]).astype(np.int64)
            self.steps_since_spike[spiked] = since
            self.recovered[spiked] = ((since > 0).astype(float) if self.tau_rec_ms is None
                                      else -np.expm1(-since * self.dt_ms / self.tau_rec_ms))
        if slow.size:
            self._add_step_by_step(states[:, slow], slow, R0[slow], S0[slow])
        self.duration_ms += T * self.dt_ms

    def _add_step_by_step(self, states: np.ndarray, neurons: np.ndarray, R: np.ndarray, since: np.ndarray) -> None:
        """The rule step by step (states of ``neurons`` from their state before the call)."""
        decay = 0.0 if self.tau_rec_ms is None else np.exp(-self.dt_ms / self.tau_rec_ms)
        released = np.zeros(neurons.size)
        since = since.copy()
        for row in states:
            since += 1
            R = 1.0 - (1.0 - R) * decay
            spike = (row > 0) & (since >= self.steps_refractory)
            released += np.where(spike, R, 0.0)
            R = np.where(spike, 0.0, R)
            since[spike] = 0
        self.released[neurons] += released
        self.recovered[neurons], self.steps_since_spike[neurons] = R, since

    def per_second(self) -> np.ndarray:
        """Released weight fraction per second (Hz) of every neuron since the start."""
        if self.duration_ms <= 0:
            raise ValueError("SourceEfficacy: no states added yet")
        return self.released / (self.duration_ms * 1e-3)


def unit_leak_offsets(neuron: NeuronParameters, background: EnsembleBackground, sources_exc: np.ndarray,
                      sources_inh: np.ndarray, e_leak: np.ndarray, efficacy_hz: np.ndarray) -> np.ndarray:
    """Leak shifts (mV) that give every neuron the free-membrane mean of the ensemble's average background.

    Neuron i's own background has the mean conductances ``g_exc_i = w_exc tau_syn_E sum_{j in
    sources_exc[i]} efficacy_j`` (and the same for inh; ``efficacy_hz`` from :class:`SourceEfficacy`: the
    weight fraction source j releases per second), so its free membrane mean (references §1,
    :func:`cortexsim.models.lif_translation.free_membrane`) differs from the one the translation assumes,
    the mean over neurons ``g_exc``, ``g_inh``. The shift moves neuron i's leak from ``e_leak[i]`` to the
    potential giving that mean: ``E_i = (mu_ref(e_leak[i]) g_tot_i - E_E g_exc_i - E_I g_inh_i) / g_l``.
    Quenched per-neuron offsets (each neuron's fixed set of sources, some sparse, some saturated) are removed;
    the sizes of the fluctuations are not followed. Units: uS, ms, mV, Hz.

    Examples
    --------
    >>> from cortexsim.parameters import DEFAULT_NEURON
    >>> exc, inh = np.array([[1], [2]]), np.array([[2], [1]])
    >>> offsets = unit_leak_offsets(DEFAULT_NEURON, DEFAULT_BACKGROUND, exc, inh, np.full(2, -50.0),
    ...                             np.array([0.0, 10.0, 30.0]))
    >>> bool(offsets[1] < 0 < offsets[0])   # neuron 0: less excitation, more inhibition than average -> higher leak
    True
    """
    sources_exc, sources_inh = np.asarray(sources_exc), np.asarray(sources_inh)
    efficacy = np.asarray(efficacy_hz, dtype=float)
    e_leak = np.asarray(e_leak, dtype=float)
    if sources_exc.shape != sources_inh.shape or sources_exc.shape[0] != e_leak.size:
        raise ValueError(f"sources_exc {sources_exc.shape} and sources_inh {sources_inh.shape} must be "
                         f"(n_neurons, K) for {e_leak.size} leak potentials")
    if efficacy.ndim != 1 or not np.all(np.isfinite(efficacy)) or np.any(efficacy < 0):
        raise ValueError("efficacy_hz must be a 1-D array of finite values >= 0 (Hz)")
    g_exc = background.weight_exc * neuron.tau_syn_E * 1e-3 * efficacy[sources_exc].sum(axis=1)
    g_inh = background.weight_inh * neuron.tau_syn_I * 1e-3 * efficacy[sources_inh].sum(axis=1)
    mu_ref = membrane_mean(neuron, float(np.mean(g_exc)), float(np.mean(g_inh)), e_leak)
    # the leak that gives neuron i the mean mu_ref under its own conductances (membrane_mean solved for e_l)
    wanted = (mu_ref * (neuron.g_l + g_exc + g_inh) - neuron.e_rev_E * g_exc - neuron.e_rev_I * g_inh) / neuron.g_l
    return wanted - e_leak
