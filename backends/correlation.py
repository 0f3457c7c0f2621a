"""Correlation sensors of the emulated BrainScaleS-2 synapses (pure numpy).

Every synapse of BrainScaleS-2 measures the timing of the spikes it sees with two analog
correlation sensors: a *causal* one (presynaptic spike, then postsynaptic spike) and an *acausal*
one (post, then pre). Each pair adds a charge that falls off exponentially with the delay between the
two spikes to an accumulation capacitor of its branch; the plasticity processors (PPUs) read both
capacitors through the column ADCs (CADC, 8 bit) and reset them. A plasticity rule sees, per synapse,
the accumulated correlation since the last reset in CADC units (LSB). This module is that sensor,
with the numbers it uses and where they come from:

amplitude
    Correlation added by one pair at zero delay, in CADC LSB. BrainScaleS-2's calibration library
    (calix, ``CorrelationCalibTarget``) calibrates it to 0.5 LSB per correlated event by default and
    calls 0.2 .. 2 LSB feasible (code). Default here 0.5; allowed 0.2 .. 2.
tau_us
    Time constant of the exponential window, hardware us; the same for the causal and the acausal
    branch because one bias current sets both (calix: "calibration parameters apply to both branches
    equally"; code). calix's default target 5 us, feasible 2 .. 30 us (code). 1 us of hardware time
    is 1 ms of the emulation's biological time (speed-up 1000).
saturation_lsb
    The accumulation capacitor is reset to a voltage whose CADC reading (the "baseline") lies near
    the top of the CADC's reliable range; correlation lowers it, and the result is baseline minus
    reading (calix ``CorrelationMeasurement``: readings of a reset sensor below 120 LSB count as a
    hardware error; code). A sensor therefore saturates once it has accumulated about the baseline:
    *assumption* 200 LSB, with a per-synapse spread of ``saturation_sd_lsb`` (*assumption* 5 LSB).
pairing
    Which pre/post pairs count: a presynaptic spike *sets* the synapse's causal trace (it does not
    add to it) and every postsynaptic spike adds the current value of that trace, i.e. each
    postsynaptic spike pairs with the most recent presynaptic spike only ("nearest" pairing), and
    symmetrically for the acausal branch. *Assumption* (an analog trace that is reset, not
    incremented, by each spike; the nearest-spike scheme of the earlier Spikey chip's hardware STDP
    synapse in the HBP guidebook). :func:`pair_correlation` also offers ``"first"`` pairing (each
    presynaptic spike pairs only with the first postsynaptic spike after it, and vice versa), the
    "next neighbour" pairing of NEST's Pong example (``calculate_stdp(next_neighbor=True)``), for
    software references.
mismatch
    Fixed-pattern noise of the sensors, drawn once per chip (chip seed) and synapse: the amplitude of
    each branch is multiplied by ``1 + N(0, amplitude_sd)`` (*assumption* 0.2; calix notes "a strong
    asymmetry between causal and acausal traces" on many synapses, not corrected by calibration) and
    the time constant by ``1 + N(0, tau_sd)`` (*assumption* 0.1); draws are truncated at +-3 sd.
readout_noise_lsb
    Standard deviation of the CADC read (per read, per synapse and branch; *assumption* 1 LSB). The
    value a rule receives is rounded to an integer LSB and clipped to [0, saturation].
decay of the stored charge
    Not modelled (*assumption*: the accumulation capacitors hold their charge between reads; rules
    read them every few hundred us of hardware time at most).

The functions take spike times in one consistent time unit (the emulator uses its biological ms,
where ``tau_us`` hardware us are ``tau_us`` ms).

Examples
--------
>>> import numpy as np
>>> causal, acausal = pair_correlation([np.array([1.0, 10.0])], [np.array([3.0])], tau=5.0)
>>> round(float(causal[0, 0]), 4), round(float(acausal[0, 0]), 4)     # pre 1 -> post 3; post 3 -> pre 10
(0.6703, 0.2466)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["SensorParameters", "pair_correlation", "CorrelationSensors", "draw_sensor_mismatch", "PAIRINGS"]

#: Pairing schemes of :func:`pair_correlation` (see the module docstring).
PAIRINGS = ("nearest", "first")

#: Allowed ranges of the calibration targets (calix ``CorrelationCalibTarget.feasible_ranges``).
AMPLITUDE_RANGE_LSB = (0.2, 2.0)
TAU_RANGE_US = (2.0, 30.0)


@dataclass(frozen=True)
class SensorParameters:
    """Calibration targets and imperfections of the correlation sensors (see the module docstring).

    Attributes
    ----------
    amplitude : float
        Correlation per pre/post pair at zero delay (CADC LSB), 0.2 .. 2.
    tau_us : float
        Time constant of both branches (hardware us), 2 .. 30.
    saturation_lsb : float
        Correlation at which a sensor saturates (CADC LSB, > 0, at most 255).
    saturation_sd_lsb : float
        Per-synapse spread of the saturation level (LSB, >= 0).
    amplitude_sd, tau_sd : float
        Relative per-synapse mismatch of amplitude (per branch) and time constant (>= 0, < 0.33).
    readout_noise_lsb : float
        Standard deviation of one CADC read (LSB, >= 0).
    """

    amplitude: float = 0.5
    tau_us: float = 5.0
    saturation_lsb: float = 200.0
    saturation_sd_lsb: float = 5.0
    amplitude_sd: float = 0.2
    tau_sd: float = 0.1
    readout_noise_lsb: float = 1.0

    def __post_init__(self):
        low, high = AMPLITUDE_RANGE_LSB
        if not (np.isfinite(self.amplitude) and low <= self.amplitude <= high):
            raise ValueError(f"correlation sensor amplitude must lie in [{low}, {high}] CADC LSB per pair "
                             f"(calibration target range), got {self.amplitude!r}")
        low, high = TAU_RANGE_US
        if not (np.isfinite(self.tau_us) and low <= self.tau_us <= high):
            raise ValueError(f"correlation sensor tau_us must lie in [{low}, {high}] us of hardware time "
                             f"(calibration target range), got {self.tau_us!r}")
        if not (np.isfinite(self.saturation_lsb) and 0 < self.saturation_lsb <= 255):
            raise ValueError(f"correlation sensor saturation_lsb must lie in (0, 255], got {self.saturation_lsb!r}")
        for name in ("saturation_sd_lsb", "readout_noise_lsb"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"correlation sensor {name} must be finite and >= 0, got {value!r}")
        for name in ("amplitude_sd", "tau_sd"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 <= value < 1 / 3):
                raise ValueError(f"correlation sensor {name} must lie in [0, 1/3) (relative), got {value!r}")

    @classmethod
    def ideal(cls, **changes) -> "SensorParameters":
        """Sensors without mismatch, saturation spread or read-out noise (for references and tests)."""
        values = dict(saturation_sd_lsb=0.0, amplitude_sd=0.0, tau_sd=0.0, readout_noise_lsb=0.0)
        values.update(changes)
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


def _as_times(trains) -> list[np.ndarray]:
    return [np.sort(np.asarray(t, dtype=float).ravel()) for t in trains]


def _flatten(trains: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All spike times of ``trains`` sorted by (neuron, time), with the neuron index of each."""
    if not trains:
        return np.zeros(0), np.zeros(0, dtype=int)
    times = np.concatenate(trains) if trains else np.zeros(0)
    ids = np.repeat(np.arange(len(trains)), [len(t) for t in trains])
    return times, ids


def _one_branch(first: list[np.ndarray], second: list[np.ndarray], tau: np.ndarray, pairing: str,
                last_first: np.ndarray | None) -> np.ndarray:
    """Sum over pairs (spike of ``first`` neuron a, later spike of ``second`` neuron b) of exp(-dt / tau[a, b]).

    Returns an (n_first, n_second) array. ``last_first``: time of each ``first`` neuron's latest spike
    before these trains (-inf if none), so that "nearest" pairing continues across chunks.
    """
    n_a, n_b = len(first), len(second)
    out = np.zeros((n_a, n_b))
    times_b, ids_b = _flatten(second)
    if times_b.size == 0:
        return out
    for a in range(n_a):
        source = first[a]
        if last_first is not None and np.isfinite(last_first[a]):
            source = np.concatenate([[last_first[a]], source])
        if source.size == 0:
            continue
        # latest spike of neuron a strictly before each spike of the second train
        k = np.searchsorted(source, times_b, side="left") - 1
        valid = k >= 0
        if pairing == "first":
            # a spike of neuron a pairs only with the first following spike of each second neuron
            key = ids_b * (source.size + 1) + k
            repeat = np.zeros(key.size, dtype=bool)
            repeat[1:] = key[1:] == key[:-1]
            valid &= ~repeat
        if not np.any(valid):
            continue
        b = ids_b[valid]
        dt = times_b[valid] - source[k[valid]]
        out[a] = np.bincount(b, weights=np.exp(-dt / tau[a, b]), minlength=n_b)
    return out


def pair_correlation(pre_times, post_times, tau, pairing: str = "nearest", last_pre=None, last_post=None):
    """Causal and acausal pair correlation of every (pre, post) neuron pair, unit amplitude.

    Parameters
    ----------
    pre_times, post_times : sequence of array_like
        Spike times of each presynaptic / postsynaptic neuron (any consistent unit, e.g. ms).
    tau : float or array_like, shape (n_pre, n_post)
        Time constant of the exponential window (same unit), per synapse if an array.
    pairing : {"nearest", "first"}
        ``"nearest"``: every postsynaptic spike pairs with the latest earlier presynaptic spike
        (causal) and every presynaptic spike with the latest earlier postsynaptic spike (acausal).
        ``"first"``: every presynaptic spike pairs only with the first later postsynaptic spike of
        each neuron (causal), and symmetrically (acausal).
    last_pre, last_post : array_like, optional
        Latest spike time of each neuron before these trains (``-inf`` for none); lets "nearest"
        pairing continue across consecutive chunks of one run.

    Returns
    -------
    causal, acausal : ndarray, shape (n_pre, n_post)
        Sums of ``exp(-|t_post - t_pre| / tau)`` over the counted pairs. Simultaneous spikes do not pair.

    Raises
    ------
    ValueError
        For an unknown pairing, a non-positive time constant, or ``last_*`` with "first" pairing.

    Examples
    --------
    >>> causal, _ = pair_correlation([[0.0]], [[1.0, 2.0]], tau=1.0)              # nearest: both posts pair
    >>> round(float(causal[0, 0]), 4)
    0.5032
    >>> causal, _ = pair_correlation([[0.0]], [[1.0, 2.0]], tau=1.0, pairing="first")
    >>> round(float(causal[0, 0]), 4)
    0.3679
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    pre, post = _as_times(pre_times), _as_times(post_times)
    tau = np.broadcast_to(np.asarray(tau, dtype=float), (len(pre), len(post)))
    if np.any(~np.isfinite(tau)) or np.any(tau <= 0):
        raise ValueError("tau must be finite and > 0")
    if pairing == "first" and (last_pre is not None or last_post is not None):
        raise ValueError("'first' pairing cannot continue across chunks (give whole trains)")
    last_pre = None if last_pre is None else np.asarray(last_pre, dtype=float)
    last_post = None if last_post is None else np.asarray(last_post, dtype=float)
    causal = _one_branch(pre, post, tau, pairing, last_pre)
    acausal = _one_branch(post, pre, tau.T, pairing, last_post).T
    return causal, acausal


def _truncated_normal(rng: np.random.Generator, shape) -> np.ndarray:
    return np.clip(rng.standard_normal(shape), -3.0, 3.0)


def draw_sensor_mismatch(parameters: SensorParameters, chip_seed: int, shape: tuple) -> dict:
    """Per-synapse sensor deviations of one chip: the same chip seed gives the same sensors.

    Parameters
    ----------
    parameters : SensorParameters
        Nominal values and spreads.
    chip_seed : int
        Identity of the chip.
    shape : tuple
        (synapse rows, synapse columns) to draw for.

    Returns
    -------
    dict
        ``amplitude`` (rows, columns, 2: causal, acausal; LSB per pair), ``tau`` (rows, columns; us of
        hardware time) and ``saturation`` (rows, columns; LSB).
    """
    rng = np.random.default_rng([int(chip_seed), 0xC0BB])
    rows, columns = shape
    amplitude = parameters.amplitude * (1.0 + parameters.amplitude_sd * _truncated_normal(rng, (rows, columns, 2)))
    tau = parameters.tau_us * (1.0 + parameters.tau_sd * _truncated_normal(rng, (rows, columns)))
    saturation = parameters.saturation_lsb + parameters.saturation_sd_lsb * _truncated_normal(rng, (rows, columns))
    return {"amplitude": amplitude, "tau": tau, "saturation": np.clip(saturation, 1.0, 255.0)}


class CorrelationSensors:
    """The causal and acausal sensors of a block of synapses (one projection), with their state.

    Parameters
    ----------
    parameters : SensorParameters
        Read-out noise and nominal values (pairing: "nearest", see the module docstring).
    amplitude : ndarray, shape (n_pre, n_post, 2)
        Amplitude of each synapse's causal and acausal branch (LSB per pair).
    tau : ndarray, shape (n_pre, n_post)
        Time constant of each synapse (in the unit of the spike times fed to :meth:`advance`).
    saturation : ndarray, shape (n_pre, n_post)
        Saturation level of each synapse (LSB).
    rng : numpy.random.Generator
        Source of read-out noise (the run's randomness).

    Examples
    --------
    >>> import numpy as np
    >>> p = SensorParameters.ideal(amplitude=2.0, tau_us=10.0)
    >>> s = CorrelationSensors(p, np.full((1, 1, 2), 2.0), np.full((1, 1), 10.0), np.full((1, 1), 200.0),
    ...                        np.random.default_rng(0))
    >>> s.advance([np.array([0.0])], [np.array([10.0])])
    >>> s.read()[0].tolist()          # 2 LSB x exp(-1) = 0.74 reads as 1 LSB
    [[1]]
    """

    def __init__(self, parameters: SensorParameters, amplitude, tau, saturation, rng: np.random.Generator):
        self.parameters = parameters
        self.amplitude = np.asarray(amplitude, dtype=float)
        self.tau = np.asarray(tau, dtype=float)
        self.saturation = np.asarray(saturation, dtype=float)
        n_pre, n_post = self.tau.shape
        if self.amplitude.shape != (n_pre, n_post, 2) or self.saturation.shape != (n_pre, n_post):
            raise ValueError("amplitude must have shape (n_pre, n_post, 2) and saturation (n_pre, n_post)")
        self.rng = rng
        self.accumulated = np.zeros((n_pre, n_post, 2))      # causal, acausal (LSB, before saturation)
        self.last_pre = np.full(n_pre, -np.inf)
        self.last_post = np.full(n_post, -np.inf)

    @property
    def shape(self) -> tuple:
        return self.tau.shape

    def advance(self, pre_times, post_times) -> None:
        """Add the pairs formed by new spikes (times after every earlier call, per neuron)."""
        pre, post = _as_times(pre_times), _as_times(post_times)
        if len(pre) != self.shape[0] or len(post) != self.shape[1]:
            raise ValueError(f"expected {self.shape[0]} presynaptic and {self.shape[1]} postsynaptic trains")
        causal, acausal = pair_correlation(pre, post, self.tau, "nearest", self.last_pre, self.last_post)
        self.accumulated[..., 0] += causal * self.amplitude[..., 0]
        self.accumulated[..., 1] += acausal * self.amplitude[..., 1]
        for i, times in enumerate(pre):
            if times.size:
                self.last_pre[i] = times[-1]
        for j, times in enumerate(post):
            if times.size:
                self.last_post[j] = times[-1]

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """CADC read of both branches: integer LSB in [0, saturation], with read-out noise."""
        values = np.minimum(self.accumulated, self.saturation[..., None])
        noise = self.parameters.readout_noise_lsb
        if noise > 0:
            values = values + noise * self.rng.standard_normal(values.shape)
        values = np.clip(np.rint(values), 0, np.floor(self.saturation)[..., None]).astype(int)
        return values[..., 0], values[..., 1]

    def reset(self, rows=None) -> None:
        """Reset the accumulated correlation of all synapses, or of the synapse rows ``rows`` (presynaptic indices)."""
        if rows is None:
            self.accumulated[:] = 0.0
        else:
            self.accumulated[np.asarray(rows, dtype=int)] = 0.0
