"""Full time-continuous microcircuit dynamics for many samples at once (MNIST scale).

:class:`BatchedMicrocircuit` integrates the equations of
:mod:`cortexsim.models.microcircuit.numpy_twin` for ``B`` copies of the network's *neurons* that share
one set of *synapses*: copy b sees its own input pattern, all copies' plasticity signals are summed
into the same low-pass filters and weights. This is the time-continuous counterpart of a mini-batch:
``B`` patterns shown side by side with weights that change continuously. With ``B = 1`` and the
membrane read-out it is the numpy twin step for step (the same update order, see the tests).

Weights are kept per layer (no packed block matrix), in the dtype of the given weights (float32 for
MNIST), so every step costs two matrix products per weight matrix: the dendritic potentials of all
copies and the summed plasticity signal. The weight and filter updates run in place through BLAS (axpy;
one gemm that decays the filter and adds the signal), and a closed gate skips the signal: at
784-500-500-10 with 8 copies in float32 a step costs ~3 ms on one loaded core (was ~8 ms).

One Euler step from t to t + dt (every right-hand side at time t):

1. rates: ``r_k = phi(u_k)`` and interneuron rates ``phi(u_I)`` ("membrane" read-out), or the
   prospective rates of Latent Equilibrium ("prospective": see below);
2. dendrites from the current weights: basal ``v_B``, apical ``v_A``, interneuron dendrites ``v_D``;
3. plasticity: signals ``err r_pre^T`` summed over copies (forward: ``err = r - phi(lambda v_B)``;
   W_IP: ``r_I - phi(lambda_D v_D)``; W_PI: ``-v_A``; learned top-down: ``r_k - phi(W_down r_{k+1})``),
   each multiplied by its gate (0 or 1: forward and lateral gates are set per step by the caller),
   weights ``W += dt eta Delta`` with the old filter state, then ``Delta += dt / tau_w (signal - Delta)``;
4. somata ``u += dt (g_1 v_1 + g_2 v_2 - g_tot u) + noise sqrt(dt) xi``.

Prospective read-out ("prospective", after Haider et al. 2021): a soma reads out
``u_breve = u + du/dt / g_tot`` - the potential it is heading to, ``(g_1 v_1 + g_2 v_2) / g_tot`` -
instead of ``u``. The rates are then found by one sweep per step from the input upwards (the basal
input of layer k uses the new rates of layer k-1, the apical input the previous step's rates of layer
k+1 and of the interneurons), so a new pattern reaches the output within one step per layer and the
plasticity signals no longer contain the somatic relaxation after a pattern change. Noise is not
defined for this read-out (white noise has no prospective value).

Units: time in ms, conductances in 1/ms, potentials and rates dimensionless.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from cortexsim.models.microcircuit.parameters import (MicrocircuitParams, MicrocircuitWeights,
                                                      basal_attenuation, interneuron_attenuation)

__all__ = ["BatchedMicrocircuit", "READOUTS"]

READOUTS = ("membrane", "prospective")


class BatchedMicrocircuit:
    """``copies`` copies of a microcircuit's neurons sharing its synapses (time-continuous, forward Euler).

    Parameters
    ----------
    weights : MicrocircuitWeights
        Initial weights (copied; their dtype, float32 or float64, is kept).
    params : MicrocircuitParams
        Conductances, dt (ms), tau_w (ms), noise, top-down mode and learning rates (1/ms).
    copies : int
        Number of copies B (patterns processed side by side).
    readout : {"membrane", "prospective"}
        Rates from the membrane potential or from the prospective potential (see module docstring).
    seed : int
        Seed of the somatic noise.

    Examples
    --------
    >>> from cortexsim.models.layered import LayeredNetwork, logistic, linear
    >>> net = LayeredNetwork.random([4, 6, 3], seed=1, hidden=logistic(), output=linear())
    >>> params = MicrocircuitParams(eta_up=(1e-3, 1e-3), eta_ip=(1e-3,), eta_pi=(1e-3,))
    >>> model = BatchedMicrocircuit(MicrocircuitWeights.from_network(net, seed=2), params, copies=8)
    >>> x = np.random.default_rng(0).uniform(0, 1, (8, 4))
    >>> for _ in range(100):                       # 10 ms with the output nudged towards 0
    ...     model.step(x, np.zeros((8, 3)))
    >>> model.weights().W_up[0].shape
    (6, 4)
    """

    def __init__(self, weights: MicrocircuitWeights, params: MicrocircuitParams, copies: int,
                 readout: str = "membrane", seed: int = 0):
        if not (isinstance(copies, (int, np.integer)) and copies >= 1):
            raise ValueError(f"copies must be an integer >= 1, got {copies!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if readout == "prospective" and params.noise > 0:
            raise ValueError("noise must be 0 with the prospective read-out (white noise has no prospective value)")
        w = weights.copy()
        self.params, self.readout, self.copies = params, readout, int(copies)
        self.hidden, self.output = w.hidden, w.output
        self.sizes, self.n_layers = w.sizes, w.n_layers
        self.dtype = np.result_type(*w.W_up, np.float32)
        self.W_up = [a.astype(self.dtype) for a in w.W_up]
        self.b_up = [a.astype(self.dtype) for a in w.b_up]
        self.W_down = [a.astype(self.dtype) for a in w.W_down]
        self.W_IP = [a.astype(self.dtype) for a in w.W_IP]
        self.b_IP = [a.astype(self.dtype) for a in w.b_IP]
        self.W_PI = [a.astype(self.dtype) for a in w.W_PI]
        if params.topdown == "transposed":
            self.W_down = [self.W_up[l + 1].T for l in range(self.n_layers - 1)]   # views, always current
        rates = params.learning_rates(self.n_layers)
        self._eta = {name: [e * params.dt for e in values] for name, values in rates.items()}
        self._filters = {name: [np.zeros_like(a) for a in getattr(self, name)]
                         for name in ("W_up", "b_up", "W_IP", "b_IP", "W_PI")}
        self._filters["W_down"] = [np.zeros_like(a) for a in self.W_down] if params.topdown == "learned" else []
        self._rng = np.random.default_rng(seed)
        self._axpy, self._gemm = get_blas_funcs(("axpy", "gemm"), dtype=self.dtype)
        n = self.n_layers
        self._lam = [basal_attenuation(params, hidden=k < n) for k in range(1, n + 1)]
        self._lam_d = interneuron_attenuation(params)
        self.u = [np.zeros((self.copies, s), dtype=self.dtype) for s in self.sizes[1:]]
        self.u_I = [np.zeros((self.copies, self.sizes[k + 1]), dtype=self.dtype) for k in range(1, n)]
        # rates of the previous step (used by the prospective sweep's apical inputs)
        self._r_prev = [phi(u) for phi, u in zip(self._phis(), self.u)]
        self._rI_prev = [self.activation(k + 1).phi(ui) for k, ui in enumerate(self.u_I, start=1)]
        self.time = 0.0
        self.gate_forward = 1.0
        self.gate_lateral = 1.0

    def set_params(self, params: MicrocircuitParams) -> None:
        """Take new learning rates (or other parameters) from now on; the top-down mode must stay."""
        if params.topdown != self.params.topdown:
            raise ValueError(f"the top-down mode cannot change ({self.params.topdown!r} -> {params.topdown!r})")
        self.params = params
        self._eta = {name: [e * params.dt for e in values]
                     for name, values in params.learning_rates(self.n_layers).items()}

    # ------------------------------------------------------------------ helpers
    def activation(self, layer: int):
        """Transfer function of pyramidal layer ``layer`` (1..N)."""
        return self.output if layer == self.n_layers else self.hidden

    def _phis(self):
        return [self.activation(k).phi for k in range(1, self.n_layers + 1)]

    def weights(self) -> MicrocircuitWeights:
        """Copy of the current weights."""
        down = [self.W_up[l + 1].T.copy() for l in range(self.n_layers - 1)] \
            if self.params.topdown == "transposed" else [a.copy() for a in self.W_down]
        return MicrocircuitWeights([a.copy() for a in self.W_up], [a.copy() for a in self.b_up], down,
                                   [a.copy() for a in self.W_IP], [a.copy() for a in self.b_IP],
                                   [a.copy() for a in self.W_PI], self.hidden, self.output)

    def filters(self) -> dict:
        """Copies of the low-pass filter states Delta (same layout as the weights)."""
        return {name: [a.copy() for a in values] for name, values in self._filters.items()}

    def state_arrays(self) -> dict:
        """Everything that evolves (weights, filters, potentials, previous rates, time) as name -> array."""
        out = {"time": np.array(self.time)}
        for name in ("W_up", "b_up", "W_down", "W_IP", "b_IP", "W_PI"):
            if name == "W_down" and self.params.topdown == "transposed":
                continue
            for l, a in enumerate(getattr(self, name)):
                out[f"{name}.{l}"] = a
        for name, values in self._filters.items():
            for l, a in enumerate(values):
                out[f"filter.{name}.{l}"] = a
        for prefix, values in (("u", self.u), ("u_I", self.u_I), ("r_prev", self._r_prev), ("rI_prev", self._rI_prev)):
            for l, a in enumerate(values):
                out[f"{prefix}.{l}"] = a
        return out

    def load_state(self, arrays: dict) -> None:
        """Restore a state saved with :meth:`state_arrays` (shapes must match; ValueError otherwise)."""
        def fill(target_list, key):
            for l, a in enumerate(target_list):
                got = np.asarray(arrays[f"{key}.{l}"])
                if got.shape != a.shape:
                    raise ValueError(f"state {key}.{l} has shape {got.shape}, the model needs {a.shape}")
                a[...] = got
        try:
            for name in ("W_up", "b_up", "W_down", "W_IP", "b_IP", "W_PI"):
                if not (name == "W_down" and self.params.topdown == "transposed"):
                    fill(getattr(self, name), name)
            for name, values in self._filters.items():
                fill(values, f"filter.{name}")
            for key, values in (("u", self.u), ("u_I", self.u_I), ("r_prev", self._r_prev), ("rI_prev", self._rI_prev)):
                fill(values, key)
        except KeyError as exc:
            raise ValueError(f"saved state lacks {exc}") from None
        self.time = float(arrays["time"])

    def set_gates(self, forward: float, lateral: float) -> None:
        """Factors (0..1) on the forward (W_up, b_up) and lateral (W_IP, b_IP, W_PI, W_down) plasticity signals."""
        if not (0 <= forward <= 1 and 0 <= lateral <= 1):
            raise ValueError(f"gates must lie in [0, 1], got forward={forward}, lateral={lateral}")
        self.gate_forward, self.gate_lateral = float(forward), float(lateral)

    def _check(self, x, target):
        x = np.asarray(x, dtype=self.dtype)
        if x.shape != (self.copies, self.sizes[0]):
            raise ValueError(f"x must have shape ({self.copies}, {self.sizes[0]}), got {x.shape}")
        if target is not None:
            target = np.asarray(target, dtype=self.dtype)
            if target.shape != (self.copies, self.sizes[-1]):
                raise ValueError(f"target must have shape ({self.copies}, {self.sizes[-1]}) or be None, "
                                 f"got {target.shape}")
            if np.any(np.isnan(target)):
                raise ValueError("target must not contain NaN; pass None for no nudging")
        return x, target

    # ------------------------------------------------------------------ dynamics
    def step(self, x: np.ndarray, target: np.ndarray | None = None) -> None:
        """Advance all copies by one Euler step with inputs ``x`` (B, n_0) and targets (B, n_N) or None."""
        x, target = self._check(x, target)
        p, n = self.params, self.n_layers
        g_hid = p.g_lk + p.g_B + p.g_A
        g_out = p.g_lk + p.g_B + (p.g_som if target is not None else 0.0)
        g_int = p.g_lk + p.g_D + p.g_som_int
        v_B, v_A, v_D = [None] * n, [None] * (n - 1), [None] * (n - 1)
        if self.readout == "membrane":
            r = [x] + [phi(u) for phi, u in zip(self._phis(), self.u)]
            r_I = [self.activation(k + 2).phi(self.u_I[k]) for k in range(n - 1)]
            for l in range(n):
                v_B[l] = r[l] @ self.W_up[l].T + self.b_up[l]
            for l in range(n - 1):
                v_A[l] = r[l + 2] @ self.W_down[l].T + r_I[l] @ self.W_PI[l].T
                v_D[l] = r[l + 1] @ self.W_IP[l].T + self.b_IP[l]
        else:   # prospective: one upward sweep; apical inputs from the previous step's rates
            r, r_I = [x], [None] * (n - 1)
            for l in range(n):
                v_B[l] = r[l] @ self.W_up[l].T + self.b_up[l]
                if l < n - 1:
                    v_A[l] = self._r_prev[l + 1] @ self.W_down[l].T + self._rI_prev[l] @ self.W_PI[l].T
                    breve = (p.g_B * v_B[l] + p.g_A * v_A[l]) / g_hid
                elif target is not None:
                    breve = (p.g_B * v_B[l] + p.g_som * target) / g_out
                else:
                    breve = p.g_B * v_B[l] / g_out
                r.append(self.activation(l + 1).phi(breve))
                self.u[l] = breve
            for l in range(n - 1):
                v_D[l] = r[l + 1] @ self.W_IP[l].T + self.b_IP[l]
                self.u_I[l] = (p.g_D * v_D[l] + p.g_som_int * self.u[l + 1]) / g_int
                r_I[l] = self.activation(l + 2).phi(self.u_I[l])
            self._r_prev, self._rI_prev = r[1:], r_I
        self._plasticity(r, r_I, v_B, v_A, v_D)
        if self.readout == "membrane":
            self._membranes(v_B, v_A, v_D, target, g_hid, g_out, g_int)
        self.time += p.dt

    def _update(self, weight: np.ndarray, filt: np.ndarray, rate: float, err, pre) -> None:
        """``weight += rate * filt`` (old filter state), then ``filt = keep filt + gain err^T pre``.

        ``err`` (B, n_post) and ``pre`` (B, n_pre) are the plasticity signal's factors, or ``err=None``
        for a closed gate (signal 0). Matrices go through BLAS in place: axpy for the weights and one
        gemm that decays the filter and adds the signal (one pass over each matrix instead of six).
        """
        gain = self.params.dt / self.params.tau_w
        keep = 1.0 - gain
        if weight.ndim == 1:                                     # biases: small, plain numpy
            if rate:
                weight += rate * filt
            filt *= keep
            if err is not None:
                filt += gain * err.sum(axis=0)
            return
        if rate:
            self._axpy(filt.ravel(), weight.ravel(), a=rate)    # in place (contiguous, same dtype)
        if err is None:
            filt *= keep
        else:    # filt^T (Fortran order = filt in C order) = gain pre^T err + keep filt^T
            self._gemm(gain, pre, err, beta=keep, c=filt.T, trans_a=1, overwrite_c=1)

    def _plasticity(self, r, r_I, v_B, v_A, v_D) -> None:
        p, n = self.params, self.n_layers
        f, eta = self._filters, self._eta
        gf, gl = self.gate_forward, self.gate_lateral
        for l in range(n):
            k = l + 1
            err = None
            if gf:
                err = r[k] - self.activation(k).phi(self._lam[l] * v_B[l])
                if gf != 1.0:
                    err *= gf
            self._update(self.W_up[l], f["W_up"][l], eta["eta_up"][l], err, r[l])
            self._update(self.b_up[l], f["b_up"][l], eta["eta_up"][l], err, None)
        for l in range(n - 1):
            err_i = err_a = err_d = None
            if gl:
                err_i = gl * (r_I[l] - self.activation(l + 2).phi(self._lam_d * v_D[l]))
                err_a = -gl * v_A[l]
                if p.topdown == "learned":
                    err_d = gl * (r[l + 1] - self.hidden.phi(r[l + 2] @ self.W_down[l].T))
            self._update(self.W_IP[l], f["W_IP"][l], eta["eta_ip"][l], err_i, r[l + 1])
            self._update(self.b_IP[l], f["b_IP"][l], eta["eta_ip"][l], err_i, None)
            self._update(self.W_PI[l], f["W_PI"][l], eta["eta_pi"][l], err_a, r_I[l])
            if p.topdown == "learned":
                self._update(self.W_down[l], f["W_down"][l], eta["eta_down"][l], err_d, r[l + 2])

    def _membranes(self, v_B, v_A, v_D, target, g_hid, g_out, g_int) -> None:
        p, n, dt = self.params, self.n_layers, self.params.dt
        u_old = [u.copy() for u in self.u]
        for l in range(n):
            if l < n - 1:
                drive = p.g_B * v_B[l] + p.g_A * v_A[l]
                g_tot = g_hid
            else:
                drive = p.g_B * v_B[l] + (p.g_som * target if target is not None else 0.0)
                g_tot = g_out
            self.u[l] += dt * (drive - g_tot * self.u[l])
        for l in range(n - 1):
            self.u_I[l] += dt * (p.g_D * v_D[l] + p.g_som_int * u_old[l + 1] - g_int * self.u_I[l])
        if p.noise > 0:
            scale = p.noise * np.sqrt(dt)
            for arr in self.u + self.u_I:
                arr += (scale * self._rng.standard_normal(arr.shape)).astype(self.dtype)

    def present(self, x: np.ndarray, target: np.ndarray | None, n_steps: int) -> None:
        """Hold inputs ``x`` (B, n_0) and targets (or None) for ``n_steps`` Euler steps."""
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        for _ in range(int(n_steps)):
            self.step(x, target)

    def output_potentials(self) -> np.ndarray:
        """Output somatic potentials (B, n_N): membrane, or prospective for that read-out."""
        return self.u[-1].copy()
