"""The state of one emulated chip between ``setup()`` calls: its imperfections and its bookkeeping.

A :class:`ChipSession` is created by ``setup()``. It draws the chip's fixed-pattern noise from the
chip seed (the same seed is the same chip, every run), holds the calibration corrections, places
neurons on neuron circuits in creation order, draws trial-to-trial noise at the start of every trial,
and counts what the hardware report needs (runs, configurations, time, weights, clamped parameters).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from cortexsim.seeds import derive_rng

from ..chips import ChipSpec
from .errors import ChipLimitError

__all__ = ["ChipSession", "draw_fixed_pattern_noise", "CALIBRATED_PARAMETERS", "CALIBRATED_FACTORS"]

#: Native parameters whose offsets a calibration can compensate (additive voltage offsets).
CALIBRATED_PARAMETERS = ("E_L", "V_th", "V_reset")

#: Multiplicative deviations a calibration can compensate: leak conductance, membrane capacitance,
#: synaptic time constants and synaptic input gains (per-neuron bias currents / capacitor settings
#: on the chip). The correction is a factor; the realised value is requested x deviation / factor.
CALIBRATED_FACTORS = ("g_L", "C_m", "tau_syn_ex", "tau_syn_in", "gain_exc", "gain_inh")

#: Fixed-pattern noise draws are truncated at this many standard deviations.
TRUNCATION_SD = 3.0

#: Smallest distance (mV) kept between a realised reset and threshold (NEST requires V_reset < V_th).
RESET_MARGIN_MV = 1e-3


def _standard_normal_truncated(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(rng.standard_normal(n), -TRUNCATION_SD, TRUNCATION_SD)


def draw_fixed_pattern_noise(spec: ChipSpec, seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Per-circuit deviations of the analog parameters of the chip ``(spec, seed)``.

    Parameters
    ----------
    spec : ChipSpec
        The chip type.
    seed : int
        Identity of the chip: the same seed always gives the same deviations.
    scale : float
        Multiplies every standard deviation (0 = an ideal chip, 1 = the chip's nominal noise).

    Returns
    -------
    dict
        Native parameter name -> array (n_neurons,): an offset (mV) for "add" parameters, a factor
        for "mul" parameters (1 = no deviation).
    """
    if scale < 0 or not np.isfinite(scale):
        raise ValueError(f"fixed_pattern_noise scale must be finite and >= 0, got {scale}")
    rng = derive_rng(seed, zlib.crc32(spec.name.encode()))
    deviations = {}
    for name in sorted(spec.fixed_pattern_noise):   # fixed order: a chip never depends on dict order
        kind, sd = spec.fixed_pattern_noise[name]
        z = _standard_normal_truncated(rng, spec.n_neurons)
        deviations[name] = sd * scale * z if kind == "add" else 1.0 + sd * scale * z
    return deviations


@dataclass
class ChipSession:
    """One configured emulated chip (see module docstring).

    Attributes
    ----------
    spec : ChipSpec
        The chip type.
    seed : int
        The chip's identity (fixed-pattern noise).
    fpn_scale : float
        Scale of the fixed-pattern noise (0 = off).
    trial_noise : float
        Standard deviation of the trial-to-trial noise as a fraction of each parameter's nominal
        fixed-pattern-noise standard deviation (0 = off).
    quantize_weights, clip_weights : bool
        Weight handling switches of ``setup()``.
    rng_seed : int
        Seed of the run's randomness (trial-to-trial noise; NEST's RNG is seeded with it too).
    """

    spec: ChipSpec
    seed: int
    fpn_scale: float
    trial_noise: float
    quantize_weights: bool
    clip_weights: bool
    rng_seed: int
    fixed_pattern: dict = field(init=False)
    calibration: dict = field(init=False)
    calibration_source: str = "none"
    trial: dict = field(init=False)
    next_circuit: int = 0
    populations: list = field(default_factory=list)
    projections: list = field(default_factory=list)
    background: list = field(default_factory=list)
    biological_time_ms: float = 0.0
    n_runs: int = 0
    n_configurations: int = 0
    n_trials: int = 0
    configuration_changed: bool = True
    trial_pending: bool = True
    clamped_parameters: dict = field(default_factory=dict)
    #: Optional placement: entry k is the circuit of the k-th neuron placed (creation order); None
    #: places neurons on circuits 0, 1, 2, ... (BrainScaleS-2's ``neuronPermutation``).
    placement: np.ndarray | None = None
    #: Plasticity processors: STDP programs (one per STDP projection), their update period (biological
    #: ms), the correlation sensors they read, and the next free synapse row for their sensors.
    ppu_programs: list = field(default_factory=list)
    plasticity_period_ms: float = 10.0
    sensor_parameters: object = None
    next_sensor_row: int = 0

    def __post_init__(self):
        if self.trial_noise < 0 or not np.isfinite(self.trial_noise):
            raise ValueError(f"trial_noise must be finite and >= 0, got {self.trial_noise}")
        self.fixed_pattern = draw_fixed_pattern_noise(self.spec, self.seed, self.fpn_scale)
        self.calibration = {name: np.zeros(self.spec.n_neurons) for name in CALIBRATED_PARAMETERS}
        self.calibration.update({name: np.ones(self.spec.n_neurons) for name in CALIBRATED_FACTORS})
        self.trial = self._no_trial_noise()
        self.fan_in = np.zeros(self.spec.n_neurons, dtype=int)
        self._trial_rng = derive_rng(self.rng_seed, 0x7121A1)

    # --- placement -------------------------------------------------------------------------------
    def allocate(self, n: int, label: str) -> np.ndarray:
        """Reserve ``n`` neuron circuits for population ``label``; ChipLimitError if they run out."""
        requested = self.next_circuit + n
        if requested > self.spec.n_neurons:
            raise ChipLimitError(self.spec.name, f"number of neurons (population {label!r} of {n})",
                                 f"{requested} in total", f"at most {self.spec.n_neurons}")
        circuits = np.arange(self.next_circuit, requested)
        if self.placement is not None:
            circuits = self.placement_order()[circuits]
        self.next_circuit = requested
        self.configuration_changed = True
        return circuits

    def placement_order(self) -> np.ndarray:
        """Circuit of the k-th placed neuron for every k: the placement list, then the unused circuits in order."""
        chosen = np.asarray(self.placement if self.placement is not None else [], dtype=int)
        rest = np.setdiff1d(np.arange(self.spec.n_neurons), chosen)
        return np.concatenate([chosen, rest])

    def forget_network(self) -> None:
        """Free all circuits and rows and zero the counters (after a calibration measurement)."""
        self.next_circuit = 0
        self.populations = []
        self.projections = []
        self.background = []
        self.ppu_programs = []
        self.next_sensor_row = 0
        self.fan_in = np.zeros(self.spec.n_neurons, dtype=int)
        self.biological_time_ms = 0.0
        self.n_runs = self.n_configurations = self.n_trials = 0
        self.configuration_changed = self.trial_pending = True
        self.clamped_parameters = {}
        self.trial = self._no_trial_noise()

    # --- imperfections ---------------------------------------------------------------------------
    def _no_trial_noise(self) -> dict:
        return {name: (np.zeros(self.spec.n_neurons) if kind == "add" else np.ones(self.spec.n_neurons))
                for name, (kind, _) in self.spec.fixed_pattern_noise.items()}

    def draw_trial_noise(self) -> None:
        """New trial-to-trial deviations (called at the start of every trial)."""
        self.n_trials += 1
        if self.trial_noise == 0:
            return
        for name in sorted(self.spec.fixed_pattern_noise):
            kind, sd = self.spec.fixed_pattern_noise[name]
            z = _standard_normal_truncated(self._trial_rng, self.spec.n_neurons)
            self.trial[name] = self.trial_noise * sd * z if kind == "add" else 1.0 + self.trial_noise * sd * z

    def realise(self, requested: dict[str, np.ndarray], circuits: np.ndarray) -> dict[str, np.ndarray]:
        """Native parameter values the circuits actually have when ``requested`` is configured.

        Applies fixed-pattern noise, trial-to-trial noise and the calibration corrections. Models
        whose native parameters hold the membrane time constant instead of the leak conductance
        (current-based ``iaf_psc_exp``: ``tau_m``, ``C_m``) get the same circuit deviations:
        ``tau_m`` is multiplied by the realised C_m factor over the realised g_L factor. Where the
        deviations would make a realised reset reach the threshold (or the threshold reach the AdEx
        spike cut-off) the emulation keeps the smallest legal distance and counts the circuit in
        ``clamped_parameters`` (the hardware neuron would then fire at the highest rate it can).
        """
        realised = {}
        for name, values in requested.items():
            values = np.asarray(values, dtype=float)
            if name in self.fixed_pattern:
                kind, _ = self.spec.fixed_pattern_noise[name]
                if kind == "add":
                    values = values + self.fixed_pattern[name][circuits] + self.trial[name][circuits]
                    if name in self.calibration:
                        values = values - self.calibration[name][circuits]
                else:
                    values = values * self.fixed_pattern[name][circuits] * self.trial[name][circuits]
                    if name in self.calibration:
                        values = values / self.calibration[name][circuits]
            realised[name] = values
        if "tau_m" in realised and "g_L" not in realised and "g_L" in self.fixed_pattern:
            realised["tau_m"] = realised["tau_m"] * self._factor("C_m", circuits) / self._factor("g_L", circuits)
        if "V_peak" in realised and "V_th" in realised:
            self._keep_below(realised, "V_th", realised["V_peak"] - 0.1, circuits)
        if "V_th" in realised and "V_reset" in realised:
            self._keep_below(realised, "V_reset", realised["V_th"] - RESET_MARGIN_MV, circuits)
        return realised

    def _factor(self, name: str, circuits: np.ndarray) -> np.ndarray:
        """Realised / requested of a multiplicative parameter on ``circuits`` (1 where it has no noise)."""
        if name not in self.fixed_pattern:
            return np.ones(len(circuits))
        factor = self.fixed_pattern[name][circuits] * self.trial[name][circuits]
        if name in self.calibration:
            factor = factor / self.calibration[name][circuits]
        return factor

    def _keep_below(self, realised: dict, name: str, ceiling: np.ndarray, circuits: np.ndarray) -> None:
        over = realised[name] > ceiling
        if np.any(over):
            realised[name] = np.where(over, ceiling, realised[name])
            clamped = self.clamped_parameters.setdefault(name, set())
            clamped.update(int(c) for c in np.asarray(circuits)[over])

    def synaptic_gain(self, receptor_type: str, circuits: np.ndarray) -> np.ndarray:
        """Per-circuit gain of the synaptic input of ``receptor_type`` (1 = ideal)."""
        name = "gain_exc" if receptor_type == "excitatory" else "gain_inh"
        if name not in self.fixed_pattern:
            return np.ones(len(circuits))
        return self.fixed_pattern[name][circuits] / self.calibration[name][circuits]

    def set_calibration(self, corrections: dict[str, np.ndarray], source: str) -> None:
        """Install calibration corrections per circuit: offsets (mV) for :data:`CALIBRATED_PARAMETERS`,
        factors (> 0) for :data:`CALIBRATED_FACTORS` (a missing factor stays 1: not compensated)."""
        for name in CALIBRATED_PARAMETERS + CALIBRATED_FACTORS:
            if name not in corrections and name in CALIBRATED_FACTORS:
                self.calibration[name] = np.ones(self.spec.n_neurons)
                continue
            values = np.asarray(corrections[name], dtype=float)
            if values.shape != (self.spec.n_neurons,):
                raise ValueError(f"calibration for {name} must have shape ({self.spec.n_neurons},), "
                                 f"got {values.shape}")
            if name in CALIBRATED_FACTORS and not np.all(values > 0):
                raise ValueError(f"calibration factors for {name} must be > 0, got min {values.min()}")
            self.calibration[name] = values
        self.calibration_source = source

    def residual_offsets(self) -> dict[str, float]:
        """Standard deviation (mV) over the used circuits of offset minus correction, per parameter."""
        used = self.placement_order()[:self.next_circuit]
        result = {}
        for name in CALIBRATED_PARAMETERS:
            if name in self.fixed_pattern and used.size:
                result[name] = float(np.std(self.fixed_pattern[name][used] - self.calibration[name][used]))
        return result

    def residual_factors(self) -> dict[str, float]:
        """Relative standard deviation over the used circuits of deviation / correction, per factor."""
        used = self.placement_order()[:self.next_circuit]
        result = {}
        for name in CALIBRATED_FACTORS:
            if name in self.fixed_pattern and used.size:
                result[name] = float(np.std(self.fixed_pattern[name][used] / self.calibration[name][used]))
        return result
