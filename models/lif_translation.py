"""Translation between Boltzmann machines and networks of conductance-based LIF neurons.

Petrovici et al. (2016, PRE 94:042312); see references §1. Units are PyNN's: nF, ms, mV, uS, Hz.

* Biases -> leak potentials: ``E_l,k = v_p05 + alpha * b_k`` from a logistic fit of the activation
  function ``p_on(E_l) = 1 / (1 + exp(-(E_l - v_p05) / alpha))`` measured on uncoupled neurons.
* Weights -> synaptic weights: ``w_bio = W * f`` with a factor ``f`` per TARGET neuron and receptor
  type, from PSP matching in the high-conductance state (see :func:`weight_factors`).
* The inverse map (:func:`lif_to_bm`) undoes both; the round trip is the identity to float precision.

The parameter dataclasses and default sets live in the base layer, :mod:`cortexsim.parameters`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from cortexsim.models.boltzmann import BoltzmannMachine
from cortexsim.parameters import ActivationFit, NeuronParameters, NoiseParameters

__all__ = [
    "LIFNetworkParameters",
    "free_membrane",
    "membrane_mean",
    "transferred_fit",
    "fit_activation",
    "psp_integral_kernel",
    "weight_factors",
    "bm_to_lif",
    "lif_to_bm",
    "RENEWING_TSODYKS_MARKRAM",
]


def membrane_mean(neuron: NeuronParameters, g_exc, g_inh, e_l):
    """Free-membrane mean (mV) at the mean synaptic conductances ``g_exc``, ``g_inh`` (uS) and leak ``e_l`` (mV).

    ``mu = (e_rev_E g_exc + e_rev_I g_inh + e_l g_l) / (g_l + g_exc + g_inh)`` (references §1); arrays broadcast.
    The formula of :func:`free_membrane`, for conductances that differ per neuron.

    Examples
    --------
    >>> from cortexsim.parameters import DEFAULT_NEURON
    >>> float(membrane_mean(DEFAULT_NEURON, 0.0, 0.0, -50.0))    # no synaptic input: the leak potential
    -50.0
    """
    g_l = neuron.g_l
    return (neuron.e_rev_E * np.asarray(g_exc) + neuron.e_rev_I * np.asarray(g_inh) + np.asarray(e_l) * g_l) / (
        g_l + np.asarray(g_exc) + np.asarray(g_inh))


def free_membrane(neuron: NeuronParameters, noise: NoiseParameters, e_l: np.ndarray | float):
    """Free-membrane statistics in the high-conductance state (references §1).

    ``g_syn = w * nu * tau_syn`` (mean conductance of a Poisson-driven exponential synapse; nu in Hz
    is converted to 1/ms), ``g_tot = g_l + g_exc + g_inh``,
    ``mu = (e_rev_E g_exc + e_rev_I g_inh + E_l g_l) / g_tot``, ``tau_eff = C_m / g_tot``.

    Parameters
    ----------
    e_l : float or array
        Leak potential(s) (mV).

    Returns
    -------
    mu : float or array (mV), same shape as ``e_l``
    g_tot : float or array (uS), same shape as ``e_l`` (independent of it)
    tau_eff : float or array (ms), same shape as ``e_l`` (independent of it)
    """
    e_l_arr = np.asarray(e_l, dtype=float)
    if not np.all(np.isfinite(e_l_arr)):
        raise ValueError("e_l must be finite (mV)")
    g_exc = noise.weight_exc * noise.rate_exc * 1e-3 * neuron.tau_syn_E
    g_inh = noise.weight_inh * noise.rate_inh * 1e-3 * neuron.tau_syn_I
    g_tot = neuron.g_l + g_exc + g_inh
    mu = membrane_mean(neuron, g_exc, g_inh, e_l_arr)
    tau_eff = neuron.cm / g_tot
    if e_l_arr.ndim == 0:
        return float(mu), float(g_tot), float(tau_eff)
    return mu, np.full(e_l_arr.shape, g_tot), np.full(e_l_arr.shape, tau_eff)


def transferred_fit(fit: ActivationFit, neuron: NeuronParameters, measured_under: NoiseParameters,
                    now: NoiseParameters) -> ActivationFit:
    """The activation function measured under the background ``measured_under``, moved to the background ``now``.

    Assumes the neuron's firing depends on its free-membrane mean ``mu`` (:func:`free_membrane`) in the same
    way under both backgrounds: the leak potential of ``p_on = 1/2`` becomes the one giving the same
    ``mu`` under ``now``, and the slope ``alpha`` (mV of leak potential per logistic unit) scales with
    ``g_tot(now) / g_tot(measured_under)`` (``d mu / d E_l = g_l / g_tot``). Used when the background
    conductance changes after the calibration (an ensemble whose networks fire less once trained); the
    fluctuations' size is not followed.

    Examples
    --------
    >>> from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE
    >>> weaker = NoiseParameters(rate_exc=1500.0, rate_inh=1500.0, weight_exc=DEFAULT_NOISE.weight_exc,
    ...                          weight_inh=DEFAULT_NOISE.weight_inh)
    >>> moved = transferred_fit(ActivationFit(v_p05=-50.6, alpha=0.8), DEFAULT_NEURON, DEFAULT_NOISE, weaker)
    >>> moved.alpha < 0.8
    True
    """
    mu, g_before, _ = free_membrane(neuron, measured_under, fit.v_p05)
    mu_at_zero, g_now, _ = free_membrane(neuron, now, 0.0)    # mu = mu_at_zero + E_l g_l / g_now
    v_p05 = (mu - mu_at_zero) * g_now / neuron.g_l
    return ActivationFit(v_p05=float(v_p05), alpha=float(fit.alpha * g_now / g_before))


def _logistic(e_l, v_p05, alpha):
    return 0.5 * (1.0 + np.tanh(0.5 * (e_l - v_p05) / alpha))


def fit_activation(e_l: np.ndarray, p_on: np.ndarray, p_min: float = 0.05, p_max: float = 0.95) -> ActivationFit:
    """Least-squares logistic fit of a measured activation function.

    Only points with ``p_min < p_on < p_max`` enter the fit (the tails are dominated by counting
    noise and by deviations from the logistic). The start values come from a straight-line fit of
    ``logit(p_on)`` against ``e_l``; the fit itself is :func:`scipy.optimize.curve_fit`.

    Parameters
    ----------
    e_l : array (m,)
        Leak potentials of the sweep (mV).
    p_on : array (m,)
        Measured fractions of time in the z = 1 state, in [0, 1].
    p_min, p_max : float
        Open interval of p_on values used, 0 <= p_min < p_max <= 1.

    Raises
    ------
    ValueError
        For mismatched shapes, non-finite values, p_on outside [0, 1], a bad interval, or fewer
        than 3 points inside it.
    """
    e_l = np.asarray(e_l, dtype=float)
    p_on = np.asarray(p_on, dtype=float)
    if e_l.ndim != 1 or p_on.shape != e_l.shape:
        raise ValueError(f"e_l and p_on must be 1-D arrays of equal length, got shapes {e_l.shape} and {p_on.shape}")
    if not (np.all(np.isfinite(e_l)) and np.all(np.isfinite(p_on))):
        raise ValueError("e_l and p_on must be finite")
    if np.any((p_on < 0) | (p_on > 1)):
        raise ValueError("p_on must lie in [0, 1]")
    if not 0.0 <= p_min < p_max <= 1.0:
        raise ValueError(f"need 0 <= p_min < p_max <= 1, got p_min={p_min}, p_max={p_max}")
    inside = (p_on > p_min) & (p_on < p_max)
    n_inside = int(inside.sum())
    if n_inside < 3:
        raise ValueError(f"fit_activation needs at least 3 points with {p_min} < p_on < {p_max}, got {n_inside}; "
                         "widen the e_l sweep or lengthen the measurement")
    x, y = e_l[inside], p_on[inside]
    if np.ptp(x) == 0:
        raise ValueError("e_l values inside the fit interval must not all be equal")
    slope, intercept = np.polyfit(x, np.log(y / (1.0 - y)), 1)
    if slope > 0:
        alpha0, v0 = 1.0 / slope, -intercept / slope
    else:  # noisy data with a non-increasing trend: start from the data's centre and spread
        alpha0, v0 = max(np.ptp(x) / 4.0, 1e-3), float(np.mean(x))
    (v_p05, alpha), cov = curve_fit(_logistic, x, y, p0=(v0, alpha0), maxfev=10000)
    if not alpha > 0:
        raise ValueError(f"the logistic fit gave a non-positive width alpha={alpha:.3g} mV; p_on does not "
                         "increase with e_l")
    stderr = np.sqrt(np.diag(cov)) if np.all(np.isfinite(cov)) else np.full(2, np.nan)
    return ActivationFit(v_p05=float(v_p05), alpha=float(alpha), v_p05_stderr=float(stderr[0]),
                         alpha_stderr=float(stderr[1]), n_points=n_inside)


def psp_integral_kernel(tau_syn: float, tau_eff: np.ndarray | float, duration: float) -> np.ndarray | float:
    """``K = int_0^T tau_syn tau_eff / (tau_syn - tau_eff) (exp(-t/tau_syn) - exp(-t/tau_eff)) dt`` (ms^2).

    Closed form, with ``g(tau) = tau (1 - exp(-T/tau))``:
    ``K = tau_syn tau_eff (g(tau_syn) - g(tau_eff)) / (tau_syn - tau_eff)``.
    For ``tau_syn == tau_eff = tau`` the limit is ``K = tau^2 g'(tau) = tau^2 (1 - exp(-T/tau) (1 + T/tau))``
    (the alpha-shaped PSP ``t exp(-t/tau)``). Within a relative distance of 1e-6 the difference
    quotient is replaced by ``g'`` at the midpoint (error ~1e-12 relative).
    """
    tau_eff = np.asarray(tau_eff, dtype=float)
    T = float(duration)

    def g(tau):
        return -tau * np.expm1(-T / tau)

    def g_prime(tau):
        return -np.expm1(-T / tau) - (T / tau) * np.exp(-T / tau)

    diff = tau_syn - tau_eff
    near = np.abs(diff) <= 1e-6 * tau_syn
    safe_diff = np.where(near, 1.0, diff)
    quotient = np.where(near, g_prime(0.5 * (tau_syn + tau_eff)), (g(tau_syn) - g(tau_eff)) / safe_diff)
    kernel = tau_syn * tau_eff * quotient
    return float(kernel) if kernel.ndim == 0 else kernel


def weight_factors(neuron: NeuronParameters, noise: NoiseParameters, fit: ActivationFit, e_leak: np.ndarray):
    r"""Synaptic weight (uS) per unit of BM weight, per target neuron, for each receptor type.

    PSP matching (references §1). At the target's free-membrane mean ``mu`` and total
    conductance ``g_tot`` (hence ``tau_eff = C_m / g_tot``), a single spike through a synapse of
    weight ``w`` gives the conductance ``w exp(-t / tau_syn)`` and, linearising the driving force
    at ``mu``, the PSP

    .. math:: u(t) = \frac{w (E_{rev} - \mu)}{C_m} \frac{\tau_{syn}\tau_{eff}}{\tau_{syn} - \tau_{eff}}
              \left(e^{-t/\tau_{syn}} - e^{-t/\tau_{eff}}\right).

    Its integral over ``[0, tau_ref]`` is ``w (E_rev - mu) K / C_m`` with ``K`` from
    :func:`psp_integral_kernel`. A BM weight ``W`` shifts the target's effective potential by
    ``alpha W g_l / g_tot`` for the whole refractory period, i.e. a rectangle of integral
    ``alpha W (g_l / g_tot) tau_ref``. Equating the two gives, with ``C_m / g_tot = tau_eff``,

    .. math:: f = \frac{w}{W} = \frac{\alpha\, g_l\, \tau_{eff}\, \tau_{ref}}{(E_{rev} - \mu)\, K}.

    The driving force is ``e_rev_E - mu`` with ``tau_syn_E`` for excitatory synapses and
    ``mu - e_rev_I`` with ``tau_syn_I`` for inhibitory ones (both positive; ``f_inh`` multiplies
    ``|W|``).

    Parameters
    ----------
    e_leak : array (n,)
        Leak potentials of the target neurons (mV).

    Returns
    -------
    f_exc, f_inh : arrays (n,) in uS per unit BM weight.

    Raises
    ------
    ValueError
        If a target's mean membrane potential is not between the reversal potentials.
    """
    e_leak = np.asarray(e_leak, dtype=float)
    if e_leak.ndim != 1:
        raise ValueError(f"e_leak must be a 1-D array (n,), got shape {e_leak.shape}")
    mu, g_tot, tau_eff = free_membrane(neuron, noise, e_leak)
    drive_exc = neuron.e_rev_E - mu
    drive_inh = mu - neuron.e_rev_I
    if np.any(drive_exc <= 0) or np.any(drive_inh <= 0):
        raise ValueError(f"mean membrane potentials {np.round(mu, 3)} mV must lie strictly between e_rev_I "
                         f"({neuron.e_rev_I} mV) and e_rev_E ({neuron.e_rev_E} mV); check e_leak")
    T = neuron.tau_refrac
    rectangle = fit.alpha * neuron.g_l * tau_eff * T
    f_exc = rectangle / (drive_exc * psp_integral_kernel(neuron.tau_syn_E, tau_eff, T))
    f_inh = rectangle / (drive_inh * psp_integral_kernel(neuron.tau_syn_I, tau_eff, T))
    return f_exc, f_inh


@dataclass(frozen=True)
class LIFNetworkParameters:
    """Parameters of a LIF sampling network.

    Attributes
    ----------
    e_leak : array (n,)
        Leak potential ``v_rest`` to set on each neuron (mV).
    weights : array (n_pre, n_post)
        Signed synaptic weights (uS): ``weights[j, i]`` is the synapse from neuron j onto neuron i;
        positive -> excitatory receptor, negative -> inhibitory receptor with weight ``|w|``; the
        diagonal is zero.
    """

    e_leak: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        e_leak = np.array(self.e_leak, dtype=float)
        weights = np.array(self.weights, dtype=float)
        if e_leak.ndim != 1:
            raise ValueError(f"e_leak must be a 1-D array (n,), got shape {e_leak.shape}")
        n = e_leak.shape[0]
        if weights.shape != (n, n):
            raise ValueError(f"weights must have shape (n_pre, n_post) = ({n}, {n}) to match e_leak, "
                             f"got {weights.shape}")
        if not np.all(np.isfinite(e_leak)):
            raise ValueError("e_leak contains NaN or inf; leak potentials must be finite (mV)")
        if not np.all(np.isfinite(weights)):
            raise ValueError("weights contain NaN or inf; weights must be finite (uS)")
        if np.any(np.diag(weights) != 0):
            raise ValueError("weights must have a zero diagonal (no self-connections)")
        e_leak.setflags(write=False)
        weights.setflags(write=False)
        object.__setattr__(self, "e_leak", e_leak)
        object.__setattr__(self, "weights", weights)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LIFNetworkParameters):
            return NotImplemented
        return np.array_equal(self.e_leak, other.e_leak) and np.array_equal(self.weights, other.weights)

    __hash__ = None  # type: ignore[assignment]

    @property
    def n_neurons(self) -> int:
        """Number of neurons n."""
        return int(self.e_leak.shape[0])

    @property
    def excitatory_weights(self) -> np.ndarray:
        """(n_pre, n_post) weights of the excitatory projection (uS, >= 0; 0 where inhibitory)."""
        return np.maximum(self.weights, 0.0)  # (one pass; the weights are finite)

    @property
    def inhibitory_weights(self) -> np.ndarray:
        """(n_pre, n_post) magnitudes of the inhibitory projection (uS, >= 0; 0 where excitatory)."""
        magnitudes = np.negative(self.weights)
        return np.maximum(magnitudes, 0.0, out=magnitudes)  # (in place: no second temporary array)


def bm_to_lif(bm: BoltzmannMachine, neuron: NeuronParameters, noise: NoiseParameters,
              fit: ActivationFit) -> LIFNetworkParameters:
    """Translate a BM into leak potentials and signed synaptic weights.

    ``e_leak = v_p05 + alpha * b``; ``weights[j, i] = W[i, j] * f_exc[i]`` if ``W[i, j] > 0`` else
    ``W[i, j] * f_inh[i]`` (sign kept), with the factors of the target neuron i from
    :func:`weight_factors` evaluated at the targets' own leak potentials.
    """
    e_leak = fit.v_p05 + fit.alpha * bm.b
    f_exc, f_inh = weight_factors(neuron, noise, fit, e_leak)
    W = bm.W
    factor = np.where(W > 0, f_exc[:, None], f_inh[:, None])  # indexed [post i, pre j]
    return LIFNetworkParameters(e_leak=e_leak, weights=(W * factor).T)


def lif_to_bm(params: LIFNetworkParameters, neuron: NeuronParameters, noise: NoiseParameters,
              fit: ActivationFit) -> BoltzmannMachine:
    """Inverse of :func:`bm_to_lif`: ``b = (e_leak - v_p05) / alpha``, ``W[i, j] = weights[j, i] / f[i]``.

    Raises
    ------
    ValueError
        If the resulting W is not symmetric (the LIF network does not represent a BM).
    """
    b = (params.e_leak - fit.v_p05) / fit.alpha
    f_exc, f_inh = weight_factors(neuron, noise, fit, params.e_leak)
    w_post_pre = params.weights.T
    factor = np.where(w_post_pre > 0, f_exc[:, None], f_inh[:, None])
    try:
        return BoltzmannMachine(W=w_post_pre / factor, b=b)
    except ValueError as exc:
        raise ValueError(f"the LIF parameters do not correspond to a Boltzmann machine: {exc}") from None


def RENEWING_TSODYKS_MARKRAM(neuron: NeuronParameters, receptor: str = "excitatory") -> dict[str, float]:
    """Tsodyks-Markram parameters of "renewing" synapses: ``U = 1``, ``tau_rec = tau_syn``, ``tau_facil = 0``.

    With U = 1 a spike uses all available resources, which recover with the same time constant
    with which the conductance decays. A second spike at interval dt therefore adds
    ``w (1 - exp(-dt / tau_syn))`` to a conductance of ``w exp(-dt / tau_syn)``: the conductance is
    reset to ``w`` instead of summing to ``w (1 + exp(-dt / tau_syn))``. A burst of a presynaptic
    sampling neuron thus keeps the PSP at the single-spike shape for as long as z = 1, which is what
    the BM translation assumes (Petrovici et al. 2016). See references §1 and §7 for simulator caveats.

    Parameters
    ----------
    receptor : {"excitatory", "inhibitory"}
        Selects ``tau_syn_E`` or ``tau_syn_I`` (equal in both parameter sets shipped here).
    """
    if receptor == "excitatory":
        tau = neuron.tau_syn_E
    elif receptor == "inhibitory":
        tau = neuron.tau_syn_I
    else:
        raise ValueError(f"receptor must be 'excitatory' or 'inhibitory', got {receptor!r}")
    return {"U": 1.0, "tau_rec": float(tau), "tau_facil": 0.0}
