"""Parameter sets of LIF sampling networks (PyNN units: nF, ms, mV, uS, Hz).

Neuron parameters (PyNN ``IF_cond_exp``), Poisson background, the logistic activation-function fit,
and the two parameter sets of references §1 (:data:`PARAMETER_SETS`). Part of the base layer: imports
nothing else of the package, so models, backends and protocols all use these classes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "NeuronParameters",
    "NoiseParameters",
    "ActivationFit",
    "DEFAULT_NEURON",
    "DOLD_NEURON",
    "DEFAULT_NOISE",
    "DOLD_NOISE",
    "PARAMETER_SETS",
    "parameter_set",
]


def _require_finite(obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class NeuronParameters:
    """Parameters of a PyNN ``IF_cond_exp`` neuron (conductance-based LIF, exponential synapses).

    Attributes
    ----------
    cm : float
        Membrane capacitance (nF), > 0.
    tau_m : float
        Membrane time constant C_m / g_l (ms), > 0.
    v_rest : float
        Resting (leak) potential E_l (mV); the translation sets it per neuron from the bias.
    e_rev_E : float
        Excitatory reversal potential (mV), > e_rev_I.
    e_rev_I : float
        Inhibitory reversal potential (mV).
    v_thresh : float
        Spike threshold (mV), > v_reset.
    v_reset : float
        Reset potential (mV), < v_thresh.
    tau_refrac : float
        Refractory period (ms), > 0; a spike sets the sampling state z = 1 for this long.
    tau_syn_E : float
        Excitatory synaptic time constant (ms), > 0.
    tau_syn_I : float
        Inhibitory synaptic time constant (ms), > 0.
    """

    cm: float
    tau_m: float
    v_rest: float
    e_rev_E: float
    e_rev_I: float
    v_thresh: float
    v_reset: float
    tau_refrac: float
    tau_syn_E: float
    tau_syn_I: float

    def __post_init__(self) -> None:
        _require_finite(self, tuple(f for f in self.__dataclass_fields__))
        for name in ("cm", "tau_m", "tau_refrac", "tau_syn_E", "tau_syn_I"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not self.v_reset < self.v_thresh:
            raise ValueError(f"v_reset must be < v_thresh ({self.v_thresh} mV), got {self.v_reset} mV")
        if not self.e_rev_I < self.e_rev_E:
            raise ValueError(f"e_rev_I must be < e_rev_E ({self.e_rev_E} mV), got {self.e_rev_I} mV")

    @property
    def g_l(self) -> float:
        """Leak conductance cm / tau_m (uS)."""
        return self.cm / self.tau_m

    def as_pynn(self) -> dict[str, float]:
        """Parameters under PyNN ``IF_cond_exp`` names (including ``i_offset = 0``)."""
        params = {name: float(value) for name, value in asdict(self).items()}
        params["i_offset"] = 0.0
        return params

    def to_dict(self) -> dict[str, float]:
        """Field name -> value (JSON-serialisable)."""
        return {name: float(value) for name, value in asdict(self).items()}


@dataclass(frozen=True)
class NoiseParameters:
    """Poisson background per neuron: one excitatory and one inhibitory source.

    Attributes
    ----------
    rate_exc : float
        Rate of the excitatory Poisson source (Hz), >= 0.
    rate_inh : float
        Rate of the inhibitory Poisson source (Hz), >= 0.
    weight_exc : float
        Excitatory synaptic weight (uS), >= 0.
    weight_inh : float
        Inhibitory synaptic weight as a positive magnitude (uS), >= 0.
    """

    rate_exc: float
    rate_inh: float
    weight_exc: float
    weight_inh: float

    def __post_init__(self) -> None:
        _require_finite(self, ("rate_exc", "rate_inh", "weight_exc", "weight_inh"))
        for name in ("rate_exc", "rate_inh", "weight_exc", "weight_inh"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (inhibitory weights are given as magnitudes), "
                                 f"got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, float]:
        """Field name -> value (JSON-serialisable)."""
        return {name: float(value) for name, value in asdict(self).items()}


DEFAULT_NEURON = NeuronParameters(
    cm=0.2, tau_m=1.0, v_rest=-50.0, e_rev_E=0.0, e_rev_I=-100.0, v_thresh=-50.0,
    v_reset=-50.001, tau_refrac=10.0, tau_syn_E=10.0, tau_syn_I=10.0,
)
"""Default parameter set of the public Heidelberg sampling library (references §1)."""

DOLD_NEURON = NeuronParameters(
    cm=0.1, tau_m=1.0, v_rest=-52.0, e_rev_E=0.0, e_rev_I=-90.0, v_thresh=-52.0,
    v_reset=-53.0, tau_refrac=10.0, tau_syn_E=10.0, tau_syn_I=10.0,
)
"""Alternative set labelled as Dold's in a student repository (references §1; unverified as the
paper's). ``v_rest`` is not given there; it is set to ``v_thresh`` as a starting value (the
translation overrides it per neuron)."""

DEFAULT_NOISE = NoiseParameters(rate_exc=3000.0, rate_inh=3000.0, weight_exc=0.001, weight_inh=0.001)
"""Default Poisson background: 3000 Hz excitatory and inhibitory, 0.001 uS each."""

DOLD_NOISE = NoiseParameters(rate_exc=2000.0, rate_inh=2000.0, weight_exc=0.001, weight_inh=0.0035)
"""Background of the alternative set: 2000 Hz each, 0.001 uS excitatory, 0.0035 uS inhibitory."""


@dataclass(frozen=True)
class ActivationFit:
    """Logistic activation function ``p_on(E_l) = 1 / (1 + exp(-(E_l - v_p05) / alpha))``.

    Attributes
    ----------
    v_p05 : float
        Leak potential at which p_on = 0.5 (mV).
    alpha : float
        Width of the logistic (mV), > 0.
    v_p05_stderr, alpha_stderr : float
        Standard errors from the fit (mV); NaN if unknown. Not used in comparisons.
    n_points : int
        Number of sweep points used in the fit (0 if unknown). Not used in comparisons.
    """

    v_p05: float
    alpha: float
    v_p05_stderr: float = field(default=float("nan"), compare=False)
    alpha_stderr: float = field(default=float("nan"), compare=False)
    n_points: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        _require_finite(self, ("v_p05", "alpha"))
        if self.alpha <= 0:
            raise ValueError(f"alpha must be > 0 mV, got {self.alpha!r}")

    def p_on(self, e_l: np.ndarray | float) -> np.ndarray | float:
        """Probability of being in the refractory (z = 1) state at leak potential ``e_l`` (mV)."""
        return 0.5 * (1.0 + np.tanh(0.5 * (np.asarray(e_l, dtype=float) - self.v_p05) / self.alpha))

    def to_dict(self) -> dict[str, float]:
        """Field name -> value (JSON-serialisable; NaN stays NaN)."""
        return {"v_p05": float(self.v_p05), "alpha": float(self.alpha), "v_p05_stderr": float(self.v_p05_stderr),
                "alpha_stderr": float(self.alpha_stderr), "n_points": int(self.n_points)}

    @classmethod
    def from_dict(cls, data: dict) -> "ActivationFit":
        """Inverse of :meth:`to_dict` (``v_p05`` and ``alpha`` required; a stderr of None, JSON's NaN, is NaN)."""
        missing = [key for key in ("v_p05", "alpha") if key not in data]
        if missing:
            raise ValueError(f"activation fit data misses key(s) {missing}")
        return cls(**{key: float("nan") if key.endswith("_stderr") and data[key] is None else data[key]
                      for key in ("v_p05", "alpha", "v_p05_stderr", "alpha_stderr", "n_points") if key in data})


#: Named (neuron, noise) parameter sets of references §1: ``default`` and ``dold``.
PARAMETER_SETS: dict[str, tuple[NeuronParameters, NoiseParameters]] = {
    "default": (DEFAULT_NEURON, DEFAULT_NOISE),
    "dold": (DOLD_NEURON, DOLD_NOISE),
}


def parameter_set(name: str) -> tuple[NeuronParameters, NoiseParameters]:
    """The (neuron, noise) parameters of the set called ``name`` (see :data:`PARAMETER_SETS`).

    Examples
    --------
    >>> neuron, noise = parameter_set("dold")
    >>> noise.rate_exc
    2000.0
    """
    if name not in PARAMETER_SETS:
        raise ValueError(f"parameter set must be one of {sorted(PARAMETER_SETS)}, got {name!r}")
    return PARAMETER_SETS[name]
