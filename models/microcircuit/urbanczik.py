"""Urbanczik & Senn (2014) learning by dendritic prediction of somatic spiking: shared parts.

One spiking two-compartment neuron (NEST's ``pp_cond_exp_mc_urbanczik`` in standard units) learns,
through its dendritic synapses, to reproduce a somatic "matching potential" imposed by a teacher
(their Fig. 1B). The same model runs on NEST (:mod:`.urbanczik_nest`) and as Brian2 equations
(:mod:`.urbanczik_brian2`); this module holds what both share (pure numpy):

* soma    ``C_s dU/dt = -g_L (U - E_L) - g_E (U - E_E) - g_I (U - E_I) + g_D (V_w - U)``
* dendrite ``C_d dV_w/dt = -g_Ld (V_w - E_L) + I_w``, ``dI_w/dt = -I_w / tau_s`` and ``I_w += W_i``
  at every spike of input ``i``
* output spikes: inhomogeneous Poisson with rate ``phi(U)``, dead time ``t_ref``, no reset
* dendritic prediction ``V_w* = (g_L E_L + g_D V_w) / (g_L + g_D)``
* ``phi(u) = phi_max / (1 + k exp(beta (theta - u)))``, ``h(u) = 15 phi'(u) / phi(u)`` (NEST's scaling)
* plasticity: ``PI_i = (S(t) - phi(V_w*)) h(V_w*) PSP_i(t)`` with the unit PSP kernel
  ``PSP_i = sum_spikes exp(-s/tau_L) - exp(-s/tau_s)`` (``tau_L = C_d / g_Ld``), low-pass filtered
  ``tau_Delta dDelta_i/dt = -Delta_i + PI_i`` and ``dW_i/dt = eta_W Delta_i`` with
  ``eta_W = 15 eta C_d tau_s / (g_Ld (tau_L - tau_s))`` (pA mV, as ``urbanczik_synapse``); the weight
  transmitted is ``clip(W_i, w_min, w_max)`` (the unclipped integral is kept, as in NEST)
* matching potential ``U_M = (g_E E_E + g_I E_I) / (g_E + g_I)``; learning drives ``V_w*`` to ``U_M``.

Units: ms, mV, pF, nS, pA, Hz. The error curve is the root-mean-square of ``V_w* - U_M`` over each
repetition of the teaching period (mV).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from cortexsim.seeds import derive_rng

__all__ = ["UrbanczikNeuronParams", "UrbanczikConfig", "UrbanczikResult", "frozen_input_pattern",
           "teacher_conductances", "phi", "h", "dendritic_prediction", "matching_potential",
           "weight_update_scale", "prediction_error_per_repetition", "error_fall_ratio", "repetition_noise"]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class UrbanczikNeuronParams:
    """Neuron and synapse parameters (defaults: NEST's example, standard units).

    Attributes
    ----------
    C_soma, C_dend : float
        Membrane capacitances (pF, > 0).
    g_L_soma, g_L_dend : float
        Leak conductances (nS, > 0).
    g_D : float
        Dendrite-to-soma coupling conductance (nS, >= 0; NEST's ``g_sp``).
    E_L, E_ex, E_in : float
        Leak, excitatory and inhibitory reversal potentials (mV).
    tau_syn : float
        Time constant of somatic conductances and dendritic currents (ms, > 0, != C_dend/g_L_dend).
    t_ref : float
        Dead time after an output spike (ms, >= 0).
    phi_max : float
        Maximal rate (1/ms, > 0).
    rate_slope : float
        ``k`` of the rate function (> 0).
    beta : float
        Steepness of the rate function (1/mV, > 0).
    theta : float
        Threshold of the rate function (mV).
    eta : float
        Learning rate in NEST's convention (>= 0).
    tau_delta : float
        Low-pass time constant of the weight change (ms, > 0).
    w_init, w_min, w_max : float
        Initial, minimal and maximal dendritic weights (pA, 0 <= w_min <= w_init <= w_max).
    """

    C_soma: float = 300.0
    C_dend: float = 300.0
    g_L_soma: float = 30.0
    g_L_dend: float = 30.0
    g_D: float = 600.0
    E_L: float = -70.0
    E_ex: float = 0.0
    E_in: float = -75.0
    tau_syn: float = 3.0
    t_ref: float = 3.0
    phi_max: float = 0.15
    rate_slope: float = 0.5
    beta: float = 1.0 / 3.0
    theta: float = -55.0
    eta: float = 0.17
    tau_delta: float = 100.0
    w_init: float = 90.0
    w_min: float = 0.0
    w_max: float = 1350.0

    def __post_init__(self):
        for name in ("C_soma", "C_dend", "g_L_soma", "g_L_dend", "tau_syn", "phi_max", "rate_slope",
                     "beta", "tau_delta"):
            _require(getattr(self, name) > 0, f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("g_D", "t_ref", "eta", "w_min"):
            _require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        _require(self.w_min <= self.w_init <= self.w_max,
                 f"need w_min <= w_init <= w_max (pA), got {self.w_min}, {self.w_init}, {self.w_max}")
        _require(abs(self.tau_L - self.tau_syn) > 1e-9,
                 f"tau_syn ({self.tau_syn} ms) must differ from tau_L = C_dend/g_L_dend ({self.tau_L} ms)")

    @property
    def tau_L(self) -> float:
        """Dendritic membrane time constant ``C_dend / g_L_dend`` (ms)."""
        return self.C_dend / self.g_L_dend


@dataclass(frozen=True)
class UrbanczikConfig:
    """The learning protocol of Urbanczik & Senn (2014) Fig. 1B.

    A frozen pattern of ``n_inputs`` Poisson spike trains (``pattern_ms`` long) is repeated
    ``idle_before + n_repetitions + idle_after`` times; during the middle ``n_repetitions`` a teacher
    drives the somatic conductances ``g_E(t) = g_exc_mean + g_exc_amplitude sin(2 pi f t)``,
    ``g_I = g_inh`` (targets of a first-order low-pass with ``tau_syn``).

    Attributes
    ----------
    seed : int
        Seeds the input pattern and the simulator's random generator (>= 0).
    n_inputs : int
        Number of dendritic input trains (>= 1).
    input_rate : float
        Rate of each input train (Hz, > 0, rate * dt < 1).
    pattern_ms : float
        Duration of one pattern repetition (ms, a positive multiple of dt).
    n_repetitions : int
        Repetitions with the teacher on (>= 2).
    idle_before, idle_after : int
        Repetitions without teacher before and after (>= 0).
    dt : float
        Simulation resolution (ms, > 0).
    g_exc_mean, g_exc_amplitude, g_inh : float
        Teacher conductances (nS, >= 0, amplitude <= mean, g_inh + mean - amplitude > 0).
    teacher_frequency : float
        Frequency of the excitatory teacher conductance (Hz, >= 0).
    """

    seed: int
    n_inputs: int = 200
    input_rate: float = 10.0
    pattern_ms: float = 200.0
    n_repetitions: int = 100
    idle_before: int = 2
    idle_after: int = 2
    dt: float = 0.1
    g_exc_mean: float = 165.0
    g_exc_amplitude: float = 145.0
    g_inh: float = 550.0
    teacher_frequency: float = 10.0

    def __post_init__(self):
        _require(isinstance(self.seed, (int, np.integer)) and self.seed >= 0,
                 f"seed must be an integer >= 0, got {self.seed!r}")
        _require(self.n_inputs >= 1, f"n_inputs must be >= 1, got {self.n_inputs}")
        _require(self.dt > 0, f"dt must be > 0 ms, got {self.dt}")
        _require(0 < self.input_rate * self.dt * 1e-3 < 1,
                 f"input_rate must be in (0, {1e3 / self.dt}) Hz, got {self.input_rate}")
        steps = self.pattern_ms / self.dt
        _require(self.pattern_ms > 0 and abs(steps - round(steps)) < 1e-6,
                 f"pattern_ms must be a positive multiple of dt={self.dt}, got {self.pattern_ms}")
        _require(self.n_repetitions >= 2, f"n_repetitions must be >= 2, got {self.n_repetitions}")
        _require(self.idle_before >= 0 and self.idle_after >= 0,
                 f"idle_before and idle_after must be >= 0, got {self.idle_before}, {self.idle_after}")
        for name in ("g_exc_mean", "g_exc_amplitude", "g_inh", "teacher_frequency"):
            _require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        _require(self.g_exc_amplitude <= self.g_exc_mean,
                 f"g_exc_amplitude ({self.g_exc_amplitude}) must be <= g_exc_mean ({self.g_exc_mean}) nS")
        _require(self.g_inh + self.g_exc_mean - self.g_exc_amplitude > 0,
                 "the teacher's total conductance must stay > 0 (matching potential undefined)")

    @property
    def pattern_steps(self) -> int:
        return int(round(self.pattern_ms / self.dt))

    @property
    def teach_start(self) -> float:
        """Start of the teaching period (ms)."""
        return self.idle_before * self.pattern_ms

    @property
    def teach_stop(self) -> float:
        """End of the teaching period (ms)."""
        return (self.idle_before + self.n_repetitions) * self.pattern_ms

    @property
    def duration(self) -> float:
        """Total simulated time (ms)."""
        return (self.idle_before + self.n_repetitions + self.idle_after) * self.pattern_ms


@dataclass
class UrbanczikResult:
    """Outcome of one run on one simulator.

    Attributes
    ----------
    simulator : str
        "nest" or "brian2" (with the code-generation target).
    errors_rms : numpy.ndarray
        RMS of ``V_w* - U_M`` per teaching repetition (mV).
    errors_mean_abs : numpy.ndarray
        Mean absolute ``V_w* - U_M`` per teaching repetition (mV).
    wall_s : float
        Wall time of build + simulation (s).
    n_output_spikes : int
        Somatic spikes over the whole run.
    final_weights : numpy.ndarray
        Dendritic weights at the end (pA).
    """

    simulator: str
    config: UrbanczikConfig
    params: UrbanczikNeuronParams
    errors_rms: np.ndarray
    errors_mean_abs: np.ndarray
    wall_s: float
    n_output_spikes: int
    final_weights: np.ndarray
    extra: dict = field(default_factory=dict)

    def summary(self, tail: int = 10) -> dict:
        """First, last and tail-mean errors (mV), the fall ratio and run facts as a flat dict."""
        e = self.errors_rms
        tail = min(tail, e.size)
        return {"simulator": self.simulator, "seed": self.config.seed, "repetitions": int(e.size),
                "error_first_mV": float(e[0]), "error_last_mV": float(e[-1]),
                f"error_mean_last{tail}_mV": float(np.mean(e[-tail:])),
                f"fall_ratio_first_over_last{tail}": error_fall_ratio(e, tail),
                "repetition_noise_mV": repetition_noise(e) if e.size >= 3 else None,
                "mean_abs_error_first_mV": float(self.errors_mean_abs[0]),
                "mean_abs_error_last_mV": float(self.errors_mean_abs[-1]), "wall_s": self.wall_s,
                "n_output_spikes": self.n_output_spikes,
                "mean_final_weight_pA": float(np.mean(self.final_weights)),
                **{k: v for k, v in self.extra.items() if k != "traces"}}


def frozen_input_pattern(config: UrbanczikConfig) -> list[np.ndarray]:
    """One Bernoulli-per-step Poisson pattern: for each input, spike times (ms) on the dt grid.

    Times lie in ``[dt, pattern_ms - dt]`` so a repetition never has a spike at its boundaries.
    """
    rng = derive_rng(config.seed, 0)
    p = config.input_rate * config.dt * 1e-3
    steps = np.arange(1, config.pattern_steps)
    draws = rng.random((config.n_inputs, steps.size)) < p
    return [np.round(steps[row] * config.dt, 10) for row in draws]


def teacher_conductances(t: np.ndarray, config: UrbanczikConfig) -> tuple[np.ndarray, np.ndarray]:
    """Target somatic conductances ``(g_E, g_I)`` in nS at times ``t`` (ms); zero outside teaching."""
    t = np.asarray(t, dtype=float)
    on = (t >= config.teach_start) & (t < config.teach_stop)
    g_e = config.g_exc_mean + config.g_exc_amplitude * np.sin(2 * np.pi * config.teacher_frequency * 1e-3 * t)
    return np.where(on, g_e, 0.0), np.where(on, config.g_inh, 0.0)


def phi(u: np.ndarray, params: UrbanczikNeuronParams) -> np.ndarray:
    """Somatic rate function (1/ms) of the potential ``u`` (mV)."""
    return params.phi_max / (1.0 + params.rate_slope * np.exp(params.beta * (params.theta - np.asarray(u))))


def h(u: np.ndarray, params: UrbanczikNeuronParams) -> np.ndarray:
    """``15 phi'(u) / phi(u)`` (1/mV), the factor of NEST's Urbanczik rule."""
    return 15.0 * params.beta / (1.0 + np.exp(-params.beta * (params.theta - np.asarray(u))) / params.rate_slope)


def dendritic_prediction(v_w: np.ndarray, params: UrbanczikNeuronParams) -> np.ndarray:
    """``V_w* = (g_L E_L + g_D V_w) / (g_L + g_D)`` (mV): the somatic potential the dendrite predicts."""
    return (params.g_L_soma * params.E_L + params.g_D * np.asarray(v_w)) / (params.g_L_soma + params.g_D)


def matching_potential(g_e: np.ndarray, g_i: np.ndarray, params: UrbanczikNeuronParams) -> np.ndarray:
    """``U_M = (g_E E_E + g_I E_I) / (g_E + g_I)`` (mV); NaN where both conductances vanish."""
    g_e, g_i = np.asarray(g_e, dtype=float), np.asarray(g_i, dtype=float)
    total = g_e + g_i
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (g_e * params.E_ex + g_i * params.E_in) / total, np.nan)


def weight_update_scale(params: UrbanczikNeuronParams) -> float:
    """``eta_W = 15 eta C_d tau_s / (g_Ld (tau_L - tau_s))`` (pA mV), as in NEST's urbanczik_synapse."""
    return 15.0 * params.eta * params.C_dend * params.tau_syn / (params.g_L_dend * (params.tau_L - params.tau_syn))


def prediction_error_per_repetition(t: np.ndarray, v_w: np.ndarray, g_e: np.ndarray, g_i: np.ndarray,
                                    config: UrbanczikConfig, params: UrbanczikNeuronParams
                                    ) -> tuple[np.ndarray, np.ndarray]:
    """RMS and mean absolute ``V_w* - U_M`` (mV) for each teaching repetition.

    ``t`` (ms) are the sample times of ``v_w`` (dendritic potential, mV) and of the recorded somatic
    conductances ``g_e``, ``g_i`` (nS), each the state at the end of a time step stamped with that end
    time (NEST's multimeter convention). A sample belongs to the repetition containing its step's
    midpoint ``t - dt/2``.
    """
    t = np.asarray(t, dtype=float)
    arrays = [np.asarray(a, dtype=float) for a in (v_w, g_e, g_i)]
    if any(a.shape != t.shape for a in arrays):
        raise ValueError(f"t, v_w, g_e, g_i must have equal shapes, got {[t.shape] + [a.shape for a in arrays]}")
    rep = np.floor((t - 0.5 * config.dt - config.teach_start) / config.pattern_ms).astype(int)
    keep = (rep >= 0) & (rep < config.n_repetitions)
    diff = dendritic_prediction(arrays[0], params) - matching_potential(arrays[1], arrays[2], params)
    diff, rep = diff[keep], rep[keep]
    if np.isnan(diff).any():
        raise ValueError("matching potential undefined (zero conductance) inside the teaching period")
    counts = np.bincount(rep, minlength=config.n_repetitions)
    if np.any(counts == 0):
        raise ValueError("some teaching repetitions have no samples; record with interval dt")
    rms = np.sqrt(np.bincount(rep, diff ** 2, config.n_repetitions) / counts)
    mean_abs = np.bincount(rep, np.abs(diff), config.n_repetitions) / counts
    return rms, mean_abs


def error_fall_ratio(errors: np.ndarray, tail: int = 10) -> float:
    """First repetition's error over the mean of the last ``tail`` repetitions (>= 2 means halved)."""
    errors = np.asarray(errors, dtype=float)
    if errors.ndim != 1 or not 1 <= tail <= errors.size:
        raise ValueError(f"tail must be in [1, {errors.size}] for a 1-d error curve, got {tail}")
    return float(errors[0] / np.mean(errors[-tail:]))


def repetition_noise(errors: np.ndarray) -> float:
    """Noise (standard deviation) of a per-repetition error curve, robust to its slow trend.

    Uses successive differences: for a slowly varying mean plus independent noise of s.d. ``s``,
    ``std(diff(e)) = sqrt(2) s``.
    """
    errors = np.asarray(errors, dtype=float)
    if errors.ndim != 1 or errors.size < 3:
        raise ValueError(f"errors must be a 1-d curve with >= 3 repetitions, got shape {errors.shape}")
    return float(np.std(np.diff(errors), ddof=1) / np.sqrt(2.0))
