"""Parameters and weights of a dendritic cortical microcircuit (Sacramento et al. 2018).

Notation (one network with ``N`` weight layers, layer sizes ``n_0 .. n_N``; index ``k`` = 1..N):

* pyramidal layer ``k`` (k < N, "hidden"): soma ``u_k``, basal ``v_B,k = W_up[k] r_{k-1} + b_up[k]``,
  apical ``v_A,k = W_down[k] r_{k+1} + W_PI[k] r_I,k``;
  ``du_k/dt = -g_lk u_k + g_B (v_B,k - u_k) + g_A (v_A,k - u_k) + noise``;
* interneurons of layer ``k`` (k < N, ``n_{k+1}`` of them, nudged one-to-one by layer k+1):
  ``v_D,k = W_IP[k] r_k + b_IP[k]``; ``du_I,k/dt = -g_lk u_I + g_D (v_D - u_I) + g_som_int (u_{k+1} - u_I)``;
* output layer ``N``: no apical compartment, nudged towards a target potential:
  ``du_N/dt = -g_lk u_N + g_B (v_B,N - u_N) + g_som m(t) (u_target - u_N)`` (m = 1 while a target is shown);
* rates: ``r_0 = x`` (the input), ``r_k = phi(u_k)``; interneurons use the transfer function of the layer
  they imitate (``phi`` of layer k+1).

Time in ms, conductances in 1/ms (membrane capacitance 1), potentials and rates dimensionless.
Lists below are indexed 0-based: ``W_up[l]`` is the weight layer from layer l to layer l+1 (l = 0..N-1),
``W_down[l], W_IP[l], W_PI[l], b_IP[l]`` belong to hidden layer l+1 (l = 0..N-2).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from cortexsim.models.layered import Activation, LayeredNetwork

__all__ = ["MicrocircuitParams", "MicrocircuitWeights", "TOPDOWN_MODES", "INTERNEURON_PLASTICITY_MODES",
           "basal_attenuation", "interneuron_attenuation", "self_predicting_weights", "effective_network",
           "sps_tracking_rates"]

TOPDOWN_MODES = ("fixed", "transposed", "learned")
INTERNEURON_PLASTICITY_MODES = ("always", "free_phase")


@dataclass(frozen=True)
class MicrocircuitParams:
    """Conductances, time constants, noise and learning rates of the microcircuit.

    Attributes
    ----------
    g_lk : float
        Somatic leak conductance (1/ms).
    g_B, g_A : float
        Basal and apical coupling conductances of pyramidal somata (1/ms).
    g_D : float
        Dendritic coupling conductance of interneurons (1/ms).
    g_som : float
        Nudging conductance of output somata towards the target (1/ms); "weak nudging" means small.
    g_som_int : float
        Nudging conductance of interneurons towards their partner in the next layer (1/ms).
    dt : float
        Euler time step (ms).
    tau_w : float
        Time constant of the low-pass filter applied to the plasticity signal (ms, > 0).
    noise : float
        Standard deviation of the somatic white noise, per sqrt(ms) (dimensionless potential units).
    topdown : str
        Top-down weights ``W_down``: "fixed", "transposed" (always ``W_up[next].T``) or "learned".
    eta_up, eta_ip, eta_pi, eta_down : tuple of float
        Learning rates (1/ms) of forward (one per weight layer), interneuron (W_IP, one per hidden
        layer), interneuron-to-pyramidal (W_PI) and top-down (W_down, only with "learned") weights.
        Biases learn with the rate of their weights. Empty tuple = all zero.
    interneuron_plasticity : str
        "always": W_IP, b_IP, W_PI and learned W_down follow their rules at all times (Sacramento et
        al. 2018). "free_phase": their plasticity signals enter the low-pass filter only while no output
        target is shown (the filter decays during nudging and the weights keep integrating it), so the
        lateral circuit learns the self-predicting state from free activity and never learns to
        cancel the top-down error. Forward weights learn at all times in both modes.
    """

    g_lk: float = 0.1
    g_B: float = 1.0
    g_A: float = 0.8
    g_D: float = 1.0
    g_som: float = 0.8
    g_som_int: float = 0.8
    dt: float = 0.1
    tau_w: float = 30.0
    noise: float = 0.0
    topdown: str = "fixed"
    eta_up: tuple = ()
    eta_ip: tuple = ()
    eta_pi: tuple = ()
    eta_down: tuple = ()
    interneuron_plasticity: str = "always"

    def __post_init__(self):
        for name in ("g_lk", "g_B", "g_D", "dt", "tau_w"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("g_A", "g_som", "g_som_int", "noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.topdown not in TOPDOWN_MODES:
            raise ValueError(f"topdown must be one of {TOPDOWN_MODES}, got {self.topdown!r}")
        if self.interneuron_plasticity not in INTERNEURON_PLASTICITY_MODES:
            raise ValueError(f"interneuron_plasticity must be one of {INTERNEURON_PLASTICITY_MODES}, "
                             f"got {self.interneuron_plasticity!r}")
        g_max = self.g_lk + max(self.g_B + self.g_A, self.g_B + self.g_som, self.g_D + self.g_som_int)
        if not self.dt * g_max < 1.0:
            raise ValueError(f"dt = {self.dt} ms is too large for forward Euler: dt must be < 1 / (largest "
                             f"total somatic conductance {g_max} /ms) = {1 / g_max:.4g} ms")
        for name in ("eta_up", "eta_ip", "eta_pi", "eta_down"):
            object.__setattr__(self, name, tuple(float(e) for e in getattr(self, name)))

    def learning_rates(self, n_layers: int) -> dict:
        """Learning-rate tuples expanded to full length for ``n_layers`` weight layers (ValueError if wrong)."""
        want = {"eta_up": n_layers, "eta_ip": n_layers - 1, "eta_pi": n_layers - 1, "eta_down": n_layers - 1}
        out = {}
        for name, length in want.items():
            value = getattr(self, name)
            if not value:
                value = (0.0,) * length
            if len(value) != length:
                raise ValueError(f"{name} needs {length} entries for {n_layers} weight layers, got {len(value)}")
            if min(value, default=0.0) < 0:
                raise ValueError(f"{name} entries must be >= 0, got {value}")
            out[name] = value
        if self.topdown != "learned" and any(out["eta_down"]):
            raise ValueError("eta_down is only allowed with topdown='learned'")
        return out

    def with_rates(self, **rates) -> "MicrocircuitParams":
        """Copy with other learning rates (or any other field)."""
        return replace(self, **rates)


def basal_attenuation(params: MicrocircuitParams, hidden: bool) -> float:
    """lambda = g_B / (g_lk + g_B + g_A) (hidden) or g_B / (g_lk + g_B) (output): soma / basal at rest."""
    return params.g_B / (params.g_lk + params.g_B + (params.g_A if hidden else 0.0))


def interneuron_attenuation(params: MicrocircuitParams) -> float:
    """g_D / (g_lk + g_D): interneuron soma / dendrite without nudging."""
    return params.g_D / (params.g_lk + params.g_D)


@dataclass
class MicrocircuitWeights:
    """All synaptic weights of a microcircuit (see module docstring for the indexing)."""

    W_up: list
    b_up: list
    W_down: list
    W_IP: list
    b_IP: list
    W_PI: list
    hidden: Activation
    output: Activation = field(default=None)

    def __post_init__(self):
        n = len(self.W_up)
        if n < 1 or len(self.b_up) != n:
            raise ValueError("W_up and b_up must be non-empty lists of equal length")
        for name in ("W_down", "W_IP", "b_IP", "W_PI"):
            if len(getattr(self, name)) != n - 1:
                raise ValueError(f"{name} must have {n - 1} entries (one per hidden layer), "
                                 f"got {len(getattr(self, name))}")
        LayeredNetwork(self.W_up, self.b_up, self.hidden, self.output)  # shape checks
        sizes = self.sizes
        for l in range(n - 1):
            checks = {"W_down": (sizes[l + 1], sizes[l + 2]), "W_IP": (sizes[l + 2], sizes[l + 1]),
                      "b_IP": (sizes[l + 2],), "W_PI": (sizes[l + 1], sizes[l + 2])}
            for name, shape in checks.items():
                got = np.shape(getattr(self, name)[l])
                if got != shape:
                    raise ValueError(f"{name}[{l}] must have shape {shape}, got {got}")

    @property
    def sizes(self) -> list[int]:
        return [self.W_up[0].shape[1]] + [w.shape[0] for w in self.W_up]

    @property
    def n_layers(self) -> int:
        return len(self.W_up)

    def activation(self, layer: int) -> Activation:
        """Transfer function of pyramidal layer ``layer`` (1..N)."""
        return self.output if layer == self.n_layers else self.hidden

    def copy(self) -> "MicrocircuitWeights":
        def c(ws):   # float32 stays float32 (large networks), everything else becomes float64
            return [np.array(w, dtype=np.result_type(np.asarray(w).dtype, np.float32), copy=True) for w in ws]
        return MicrocircuitWeights(c(self.W_up), c(self.b_up), c(self.W_down), c(self.W_IP), c(self.b_IP),
                                   c(self.W_PI), self.hidden, self.output)

    @classmethod
    def from_network(cls, net: LayeredNetwork, seed: int, topdown_scale: float = 1.0,
                     interneuron_scale: float = 1.0) -> "MicrocircuitWeights":
        """Forward weights from ``net``; top-down, W_IP and W_PI random N(0, scale^2 / fan_in)."""
        rng = np.random.default_rng(seed)
        sizes = net.sizes
        down, ip, bip, pi = [], [], [], []
        for l in range(len(net.weights) - 1):
            n_here, n_next = sizes[l + 1], sizes[l + 2]
            down.append(rng.normal(0, topdown_scale / np.sqrt(n_next), (n_here, n_next)))
            ip.append(rng.normal(0, interneuron_scale / np.sqrt(n_here), (n_next, n_here)))
            bip.append(np.zeros(n_next))
            pi.append(rng.normal(0, interneuron_scale / np.sqrt(n_next), (n_here, n_next)))
        return cls([w.copy() for w in net.weights], [b.copy() for b in net.biases], down, ip, bip, pi,
                   net.hidden, net.output)


def self_predicting_weights(weights: MicrocircuitWeights, params: MicrocircuitParams,
                            transposed_topdown: bool = False) -> MicrocircuitWeights:
    """Return a copy in the self-predicting state (SPS).

    ``W_PI = -W_down`` and ``W_IP = (g_lk + g_D) / g_D * lambda_{k+1} W_up[k+1]`` (same for the biases),
    where ``lambda_{k+1}`` is the basal attenuation of the next layer. Then, without a target, every
    interneuron potential equals its partner's and every apical potential vanishes at the fixed point.
    With ``transposed_topdown`` the top-down weights are first set to ``W_up[k+1].T``.
    """
    out = weights.copy()
    n = out.n_layers
    for l in range(n - 1):
        if transposed_topdown:
            out.W_down[l] = out.W_up[l + 1].T.copy()
        lam_next = basal_attenuation(params, hidden=(l + 2 < n))
        factor = lam_next / interneuron_attenuation(params)
        out.W_IP[l] = factor * out.W_up[l + 1]
        out.b_IP[l] = factor * out.b_up[l + 1]
        out.W_PI[l] = -out.W_down[l]
    return out


def effective_network(weights: MicrocircuitWeights, params: MicrocircuitParams) -> LayeredNetwork:
    """The feed-forward network the microcircuit computes in the self-predicting state.

    Without target and with vanishing apical potentials, ``u_k = lambda_k (W_up r_{k-1} + b_up)``, so the
    equivalent network has weights ``lambda_k W_up[k]`` and biases ``lambda_k b_up[k]``.
    """
    n = weights.n_layers
    lams = [basal_attenuation(params, hidden=(l < n - 1)) for l in range(n)]
    return LayeredNetwork([lam * w for lam, w in zip(lams, weights.W_up)],
                          [lam * b for lam, b in zip(lams, weights.b_up)], weights.hidden, weights.output)


def sps_tracking_rates(params: MicrocircuitParams, eta_up) -> tuple:
    """Interneuron rates (W_IP, one per hidden layer) that keep the self-predicting state while W_up learns.

    At the nudged fixed point near the SPS an interneuron's dendritic-prediction error is
    ``g_som_int / (g_lk + g_D + g_som_int)`` times its partner's forward error, and the SPS needs
    ``W_IP[l] = lambda_{l+2} / lambda_D * W_up[l+1]``; so W_IP learning on the nudged fixed point with
    ``eta_ip[l] = eta_up[l+1] * lambda_{l+2} / lambda_D * (g_lk + g_D + g_som_int) / g_som_int`` changes
    exactly as the SPS requires (to first order in the error). ``lambda`` are the basal attenuations
    (:func:`basal_attenuation`) and ``lambda_D`` the interneuron one (:func:`interneuron_attenuation`).
    The rule is also a delta rule with its own stability bound (``eta_ip T batch sum(r^2) (lambda_D - g_D
    / (g_lk + g_D + g_som_int))`` below 2 for ``T`` ms per pattern and presynaptic rates ``r``), which caps
    the forward rate of every layer that has interneurons.

    Examples
    --------
    >>> p = MicrocircuitParams()          # g_lk 0.1, g_D 1, g_som_int 0.8: factor 1.9 / 0.8 = 2.375
    >>> [round(e, 10) for e in sps_tracking_rates(p, (0.0, 2e-5))]
    [4.75e-05]
    """
    eta_up = tuple(float(e) for e in eta_up)
    n = len(eta_up)
    if n < 1 or min(eta_up) < 0:
        raise ValueError(f"eta_up must list one rate >= 0 per weight layer, got {eta_up}")
    if not params.g_som_int > 0:
        raise ValueError(f"g_som_int must be > 0 for interneurons to track the SPS, got {params.g_som_int}")
    gain = (params.g_lk + params.g_D + params.g_som_int) / params.g_som_int / interneuron_attenuation(params)
    return tuple(eta_up[l + 1] * basal_attenuation(params, hidden=l + 2 < n) * gain for l in range(n - 1))
