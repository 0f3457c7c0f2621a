"""Latent Equilibrium (Haider et al. 2021) and Lagrangian microcircuit dynamics in numpy.

One network description (:class:`cortexsim.models.layered.LayeredNetwork`), two dynamics:

* ``prospective=True`` (Latent Equilibrium, LE): every neuron reads out its *prospective* voltage
  ``u_breve = u + tau du/dt``.  With ``tau du/dt = -u + W r_prev + b + e`` this is the instantaneous
  input ``W r_prev + b + e``, so rates ``r = phi(u_breve)`` follow the input without settling.
* ``prospective=False`` (the original energy-based / microcircuit-style dynamics): neurons read out
  their membrane potential ``u``, a low-pass of the input with time constant ``tau``.

Writing ``v_l`` for the read-out potential of layer l (``u_breve`` or ``u``) and ``r_l = phi(v_l)``:

* energy ``E = 1/2 sum_l ||v_l - W_l r_{l-1} - b_l||^2 + beta C``, ``C = 1/2 ||target - r_N||^2``;
* errors ``e_N = beta phi'(v_N) (target - r_N)`` and ``e_l = phi'(v_l) W_{l+1}^T m_{l+1}`` with the
  mismatch ``m_{l+1} = v_{l+1} - W_{l+1} r_l - b_{l+1}``  (``= e_{l+1}`` in LE); a stationary point of
  E in v is an equilibrium of the dynamics;
* plasticity ``dW_l/dt = eta e_l r_{l-1}^T``, ``db_l/dt = eta_bias e_l``.

With ``errors="microcircuit"`` the hidden errors are carried by dendrites instead: interneurons of
layer l predict the next layer (dendritic potential ``v_D = W_IP r_l + b_IP``, soma
``u_I = (1 - lam) v_D + lam v_{l+1}`` nudged by the next layer), the apical dendrite sums top-down
feedback and lateral inhibition ``v_A = B v_{l+1} + W_PI u_I`` and ``e_l = phi'(v_l) v_A``.
Interneuron weights learn ``dW_IP/dt = eta_ip (u_I - v_D) r_l^T`` and ``dW_PI/dt = -eta_pi v_A u_I^T``.
In the self-predicting state (``W_IP = W_{l+1}``, ``b_IP = b_{l+1}``, ``W_PI = -B``, ``B = W_{l+1}^T``)
the apical error equals ``(1 - lam) W_{l+1}^T e_{l+1}``.

Time steps (one Euler step of length dt) follow a fixed order shared with the Brian2 equations
(:mod:`cortexsim.models.latent_equilibrium_brian2`): forward sweep of feed-forward inputs with the
stored errors, output error, backward sweep of errors (top layer first), plasticity with the new
errors, then the membrane update.  Times in ms, potentials and rates dimensionless.
Several independent networks (e.g. seeds) are simulated side by side on a leading batch axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layered import Activation, LayeredNetwork

__all__ = ["LEParameters", "LatentEquilibrium", "energy", "equilibrium_residual", "settle"]

ERROR_MODES = ("direct", "microcircuit")
FEEDBACK_MODES = ("transpose", "random")


@dataclass(frozen=True)
class LEParameters:
    """Parameters of the Lagrangian dynamics.

    Attributes
    ----------
    tau : float
        Membrane time constant in ms (> 0).
    dt : float
        Euler time step in ms (0 < dt <= tau).
    beta : float
        Output nudging strength (dimensionless, >= 0).
    eta : float
        Weight learning rate in 1/ms (>= 0).
    eta_bias : float
        Bias learning rate in 1/ms (>= 0).
    prospective : bool
        True: Latent Equilibrium (read out u + tau du/dt); False: original dynamics (read out u).
    errors : str
        "direct" (errors computed from W^T) or "microcircuit" (interneurons and apical dendrites).
    interneuron_nudging : float
        lam in [0, 1): weight of the next layer's potential in the interneuron soma.
    eta_ip, eta_pi : float
        Learning rates (1/ms, >= 0) of pyramidal-to-interneuron and interneuron-to-pyramidal weights.
    feedback : str
        Top-down weights B in the microcircuit: "transpose" (B = W_{l+1}^T at every step) or
        "random" (fixed random matrices drawn from ``feedback_seed``).
    feedback_seed : int
        Seed of the random feedback weights.
    error_iterations : int
        Sweeps (forward pass, output error, backward pass of errors) per Euler step (>= 1).  1 is the
        explicit scheme: every neuron uses the errors of the previous step (the scheme the Brian2
        equations implement).  K > 1 solves the instantaneous error equations within the step by K
        (relaxed) fixed-point iterations, so errors do not lag the input by a step.
    eta_layer_factors : tuple of float
        Per-weight-layer factors (>= 0, first layer first) multiplying ``eta`` and ``eta_bias``;
        empty (default) means 1 for every layer.
    error_relaxation : float
        gamma in (0, 1]: each sweep moves the errors by gamma times (new - old) errors.  1 is a plain
        fixed-point sweep; gamma < 1 damps the period-2 oscillation of the sweep that appears when
        beta phi'^2 ||W||^2 approaches 1.
    """

    tau: float = 10.0
    dt: float = 0.1
    beta: float = 0.1
    eta: float = 0.0
    eta_bias: float = 0.0
    prospective: bool = True
    errors: str = "direct"
    interneuron_nudging: float = 0.1
    eta_ip: float = 0.0
    eta_pi: float = 0.0
    feedback: str = "transpose"
    feedback_seed: int = 0
    error_iterations: int = 1
    error_relaxation: float = 1.0
    eta_layer_factors: tuple = ()

    def __post_init__(self):
        if not self.tau > 0:
            raise ValueError(f"tau must be > 0 ms, got {self.tau}")
        if not 0 < self.dt <= self.tau:
            raise ValueError(f"dt must lie in (0, tau={self.tau}] ms, got {self.dt}")
        for name in ("beta", "eta", "eta_bias", "eta_ip", "eta_pi"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.errors not in ERROR_MODES:
            raise ValueError(f"errors must be one of {ERROR_MODES}, got {self.errors!r}")
        if self.feedback not in FEEDBACK_MODES:
            raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, got {self.feedback!r}")
        if not (isinstance(self.error_iterations, (int, np.integer)) and self.error_iterations >= 1):
            raise ValueError(f"error_iterations must be an integer >= 1, got {self.error_iterations}")
        if not 0 < self.error_relaxation <= 1:
            raise ValueError(f"error_relaxation must lie in (0, 1], got {self.error_relaxation}")
        if not all(f >= 0 for f in self.eta_layer_factors):
            raise ValueError(f"eta_layer_factors must all be >= 0, got {self.eta_layer_factors}")
        if not 0 <= self.interneuron_nudging < 1:
            raise ValueError(f"interneuron_nudging must lie in [0, 1), got {self.interneuron_nudging}")


def _matvec(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Batched w @ x: (S, n, m) x (S, m) -> (S, n)."""
    return np.matmul(w, x[..., None])[..., 0]


def _outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched outer product: (S, n), (S, m) -> (S, n, m)."""
    return a[..., :, None] * b[..., None, :]


class LatentEquilibrium:
    """Batched numpy simulation of S independent layered networks under Lagrangian dynamics.

    Parameters
    ----------
    networks : LayeredNetwork or list of LayeredNetwork
        Initial networks (copied); all must have the same sizes and activations.
    params : LEParameters
        Dynamics, learning and error-circuit parameters.
    copies : int or None
        None: every network has its own neurons (S = number of networks). An integer B: exactly one
        network whose synapses are shared by B copies of its neurons, each fed its own input (a
        time-continuous mini-batch: the copies' plasticity signals add up in the shared weights).
    dtype : numpy dtype
        Floating-point type of weights and states (float32 halves the cost of large networks).
    """

    def __init__(self, networks, params: LEParameters, copies: int | None = None, dtype=np.float64):
        nets = [networks] if isinstance(networks, LayeredNetwork) else list(networks)
        if not nets:
            raise ValueError("networks must contain at least one LayeredNetwork")
        if copies is not None and (len(nets) != 1 or not (isinstance(copies, (int, np.integer)) and copies >= 1)):
            raise ValueError(f"copies must be an integer >= 1 and needs exactly one network; got copies={copies!r} "
                             f"with {len(nets)} networks")
        self._shared = copies is not None
        self.dtype = np.dtype(dtype)
        sizes = nets[0].sizes
        for net in nets:
            if net.sizes != sizes or net.hidden.name != nets[0].hidden.name or net.output.name != nets[0].output.name:
                raise ValueError(f"all networks must share sizes and activations; got {net.sizes} vs {sizes}")
        self.params = params
        self.sizes = sizes
        self.hidden: Activation = nets[0].hidden
        self.output: Activation = nets[0].output
        self.weights = [np.stack([n.weights[l] for n in nets]).astype(self.dtype) for l in range(len(sizes) - 1)]
        self.biases = [np.stack([n.biases[l] for n in nets]).astype(self.dtype) for l in range(len(sizes) - 1)]
        self.n_networks = int(copies) if self._shared else len(nets)
        if params.eta_layer_factors and len(params.eta_layer_factors) != len(sizes) - 1:
            raise ValueError(f"eta_layer_factors must have {len(sizes) - 1} entries (one per weight layer), "
                             f"got {len(params.eta_layer_factors)}")
        self.reset_state()
        if params.errors == "microcircuit":
            self._init_microcircuit()

    def _mv(self, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        """w @ x per network (w (S, n, m), x (S, m)); with shared copies one matrix product for all."""
        return x @ w[0].T if self._shared else _matvec(w, x)

    def _hebb(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Outer products a b^T per network; with shared copies summed over the copies (shape (1, n, m))."""
        return (a.T @ b)[None] if self._shared else _outer(a, b)

    def _sum(self, a: np.ndarray) -> np.ndarray:
        """Per-network vector; with shared copies summed over the copies (shape (1, n))."""
        return a.sum(axis=0, keepdims=True) if self._shared else a

    # ----------------------------------------------------------------- state
    @property
    def n_layers(self) -> int:
        """Number of weight layers N."""
        return len(self.weights)

    def activation(self, layer: int) -> Activation:
        return self.output if layer == self.n_layers - 1 else self.hidden

    def reset_state(self) -> None:
        """Set potentials, inputs and errors to zero (weights are kept)."""
        shape = [(self.n_networks, n) for n in self.sizes[1:]]
        self.u = [np.zeros(s, dtype=self.dtype) for s in shape]
        self.inputs = [np.zeros(s, dtype=self.dtype) for s in shape]
        self.errors = [np.zeros(s, dtype=self.dtype) for s in shape]

    def _init_microcircuit(self) -> None:
        """Interneuron circuits in the self-predicting state (the state plasticity maintains)."""
        rng = np.random.default_rng(self.params.feedback_seed)
        self.w_ip = [w.copy() for w in self.weights[1:]]
        self.b_ip = [b.copy() for b in self.biases[1:]]
        if self.params.feedback == "random":
            self.feedback = [rng.normal(0.0, 1.0 / np.sqrt(w.shape[1]), size=np.swapaxes(w, 1, 2).shape)
                             for w in self.weights[1:]]
        else:
            self.feedback = [np.swapaxes(w, 1, 2).copy() for w in self.weights[1:]]
        self.w_pi = [-f for f in self.feedback]

    def networks(self) -> list[LayeredNetwork]:
        """The current weights as LayeredNetwork descriptions, one per batch entry."""
        return [LayeredNetwork([w[s].copy() for w in self.weights], [b[s].copy() for b in self.biases],
                               self.hidden, self.output) for s in range(len(self.weights[0]))]

    def readout_potentials(self) -> list[np.ndarray]:
        """v_l: prospective voltages u_breve (LE) or membrane potentials u (original dynamics)."""
        if self.params.prospective:
            return [i + b + e for i, b, e in zip(self.inputs, self.biases, self.errors)]
        return [u.copy() for u in self.u]

    def rates(self) -> list[np.ndarray]:
        """r_l = phi(v_l) of every non-input layer."""
        return [self.activation(l).phi(v) for l, v in enumerate(self.readout_potentials())]

    def output_rates(self) -> np.ndarray:
        """Output layer rates, shape (S, n_out)."""
        return self.rates()[-1]

    # ------------------------------------------------------------------ step
    def _check(self, x: np.ndarray, name: str, n: int) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim == 1:
            x = np.broadcast_to(x, (self.n_networks, x.shape[0]))
        if x.shape != (self.n_networks, n):
            raise ValueError(f"{name} must have shape ({n},) or ({self.n_networks}, {n}), got {x.shape}")
        return x

    def step(self, x: np.ndarray, target: np.ndarray | None = None, learn: bool = True) -> None:
        """Advance all networks by one Euler step of length ``params.dt``.

        Parameters
        ----------
        x : ndarray, shape (n_in,) or (S, n_in)
            Input rates during this step.
        target : ndarray, shape (n_out,) or (S, n_out), or None
            Output target; ``None`` means no nudging (output error 0).
        learn : bool
            Apply the plasticity rules.
        """
        p = self.params
        x = self._check(x, "x", self.sizes[0])
        if target is not None:
            target = self._check(target, "target", self.sizes[-1])
        n = self.n_layers
        for sweep in range(p.error_iterations):
            self._sweep(x, target, learn and sweep == p.error_iterations - 1)
        new_v = self.readout_potentials()
        rates_new = [x] + [self.activation(l).phi(v) for l, v in enumerate(new_v)]
        # 4. plasticity with the new errors and rates, 5. membrane update (Euler, old biases)
        drive = [i + b + e for i, b, e in zip(self.inputs, self.biases, self.errors)]
        if learn and (p.eta > 0 or p.eta_bias > 0):
            factors = p.eta_layer_factors or (1.0,) * n
            for l in range(n):
                self.weights[l] += p.dt * p.eta * factors[l] * self._hebb(self.errors[l], rates_new[l])
                self.biases[l] = self.biases[l] + p.dt * p.eta_bias * factors[l] * self._sum(self.errors[l])
        for l in range(n):
            self.u[l] += p.dt / p.tau * (drive[l] - self.u[l])
        if p.errors == "microcircuit" and p.feedback == "transpose":
            self.feedback = [np.swapaxes(w, 1, 2).copy() for w in self.weights[1:]]

    def _sweep(self, x: np.ndarray, target: np.ndarray | None, learn_interneurons: bool) -> None:
        """Forward sweep with the stored errors, output error, backward sweep (top layer first)."""
        p = self.params
        n = self.n_layers
        gamma = p.error_relaxation
        # 1. forward sweep: feed-forward inputs with the errors stored from the last sweep
        rates_prev = x
        old_v = []
        for l in range(n):
            self.inputs[l] = self._mv(self.weights[l], rates_prev)
            v = self.inputs[l] + self.biases[l] + self.errors[l] if p.prospective else self.u[l]
            old_v.append(v)
            rates_prev = self.activation(l).phi(v)
        # 2. output error, then 3. backward sweep of errors (new errors enter the mismatch above)
        if target is None:
            new_error = np.zeros_like(self.errors[-1])
        else:
            act = self.output
            new_error = p.beta * act.dphi(old_v[-1]) * (target - act.phi(old_v[-1]))
        self.errors[-1] = new_error if gamma == 1.0 else self.errors[-1] + gamma * (new_error - self.errors[-1])
        for l in range(n - 2, -1, -1):
            v_next = self.inputs[l + 1] + self.biases[l + 1] + self.errors[l + 1] if p.prospective else self.u[l + 1]
            rates_l = self.hidden.phi(old_v[l])
            if p.errors == "direct":
                mismatch = v_next - self._mv(self.weights[l + 1], rates_l) - self.biases[l + 1]
                apical = self._mv(np.swapaxes(self.weights[l + 1], 1, 2), mismatch)
            else:
                apical = self._microcircuit_step(l, rates_l, v_next, learn_interneurons)
            new_error = self.hidden.dphi(old_v[l]) * apical
            self.errors[l] = new_error if gamma == 1.0 else self.errors[l] + gamma * (new_error - self.errors[l])

    def _microcircuit_step(self, l: int, rates_l: np.ndarray, v_next: np.ndarray, learn: bool) -> np.ndarray:
        """Apical potential of hidden layer l carried by its interneurons; updates their weights."""
        p = self.params
        lam = p.interneuron_nudging
        dendrite = self._mv(self.w_ip[l], rates_l) + self.b_ip[l]
        soma = (1.0 - lam) * dendrite + lam * v_next
        apical = self._mv(self.feedback[l], v_next) + self._mv(self.w_pi[l], soma)
        if learn:
            self.w_ip[l] += p.dt * p.eta_ip * self._hebb(soma - dendrite, rates_l)
            self.b_ip[l] = self.b_ip[l] + p.dt * p.eta_ip * self._sum(soma - dendrite)
            self.w_pi[l] += -p.dt * p.eta_pi * self._hebb(apical, soma)
        return apical

    def present(self, x: np.ndarray, target: np.ndarray | None, n_steps: int, learn: bool = True) -> np.ndarray:
        """Hold input (and target) for ``n_steps`` steps; return the output rates at the end."""
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        for _ in range(int(n_steps)):
            self.step(x, target, learn)
        return self.output_rates()


def energy(network: LayeredNetwork, x: np.ndarray, potentials: list, target: np.ndarray | None,
           beta: float) -> float:
    """E = 1/2 sum_l ||v_l - W_l phi(v_{l-1}) - b_l||^2 + beta/2 ||target - phi(v_N)||^2.

    ``potentials`` are the read-out potentials v_1..v_N of one network (1-D arrays);
    ``x`` (the input rates) plays the role of r_0.
    """
    if len(potentials) != len(network.weights):
        raise ValueError(f"potentials must list {len(network.weights)} layers, got {len(potentials)}")
    rates_prev = np.asarray(x, dtype=float)
    total = 0.0
    for l, (w, b, v) in enumerate(zip(network.weights, network.biases, potentials)):
        total += 0.5 * float(np.sum((v - w @ rates_prev - b) ** 2))
        rates_prev = network.activation(l).phi(v)
    if target is not None:
        total += beta * 0.5 * float(np.sum((np.asarray(target) - rates_prev) ** 2))
    return total


def equilibrium_residual(network: LayeredNetwork, x: np.ndarray, potentials: list, target: np.ndarray | None,
                         beta: float) -> tuple[np.ndarray, list]:
    """Residual ``v_l - (W_l r_{l-1} + b_l + e_l)`` of the equilibrium equations, and the errors e_l.

    Zero residual <=> du/dt = 0 in both dynamics <=> dE/dv = 0 (a stationary point of the energy).
    """
    rates = [np.asarray(x, dtype=float)] + [network.activation(l).phi(v) for l, v in enumerate(potentials)]
    n = len(network.weights)
    errors = [None] * n
    if target is None:
        errors[-1] = np.zeros_like(potentials[-1])
    else:
        errors[-1] = beta * network.output.dphi(potentials[-1]) * (np.asarray(target) - rates[-1])
    for l in range(n - 2, -1, -1):
        mismatch = potentials[l + 1] - network.weights[l + 1] @ rates[l + 1] - network.biases[l + 1]
        errors[l] = network.hidden.dphi(potentials[l]) * (network.weights[l + 1].T @ mismatch)
    residual = [v - w @ r - b - e for v, w, r, b, e in
                zip(potentials, network.weights, rates[:-1], network.biases, errors)]
    return np.concatenate(residual), errors


def settle(network: LayeredNetwork, x: np.ndarray, target: np.ndarray | None, beta: float,
           tol: float = 1e-14) -> dict:
    """Equilibrium of the Lagrangian dynamics for constant input and target (no plasticity).

    Solves the equilibrium equations (:func:`equilibrium_residual` = 0, the fixed point shared by the
    prospective and the original dynamics) with a Powell hybrid root finder started from the
    feed-forward pass.

    Returns
    -------
    dict with lists (one 1-D array per layer) ``potentials``, ``rates`` (input first), ``errors``,
    and ``residual`` (max abs residual).  Raises RuntimeError if the solver fails.
    """
    from scipy.optimize import root

    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    sizes = network.sizes[1:]
    splits = np.cumsum(sizes)[:-1]
    guess = np.concatenate(network.forward(x)[0][1:])
    sol = root(lambda flat: equilibrium_residual(network, x, np.split(flat, splits), target, beta)[0],
               guess, method="hybr", tol=tol)
    v = np.split(sol.x, splits)
    residual, errors = equilibrium_residual(network, x, v, target, beta)
    worst = float(np.max(np.abs(residual)))
    if not worst < 1e3 * tol + 1e-13:
        raise RuntimeError(f"settle: equilibrium not found (max residual {worst:.2e}, {sol.message})")
    rates = [np.asarray(x, dtype=float)] + [network.activation(l).phi(a) for l, a in enumerate(v)]
    return {"potentials": v, "rates": rates, "errors": errors, "residual": worst}
