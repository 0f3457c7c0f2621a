"""Steady-state ("simplified dynamics") microcircuit: fixed points instead of time integration.

For a pattern held long enough (and no noise) every soma relaxes to the fixed point of its equation:

* hidden pyramid: ``u_k = (g_B v_B,k + g_A v_A,k) / (g_lk + g_B + g_A)``;
* interneuron: ``u_I,k = (g_D v_D,k + g_som_int u_{k+1}) / (g_lk + g_D + g_som_int)``;
* output: ``u_N = (g_B v_B,N + g_som m u_target) / (g_lk + g_B + g_som m)``.

The coupled fixed point is found by sweeping these equations in layer order until the largest change
is below ``tol`` (a contraction for the usual conductances and weight scales; non-convergence is
reported, not hidden). Learning then applies the same dendritic-prediction rules as the continuous
model once per pattern: forward weights on the nudged fixed point, interneuron (W_IP), W_PI and
learned top-down weights on the free (target-less) fixed point. A pattern shown for ``T`` ms in the
continuous model changes a weight by about ``eta T signal``; the steady-state step uses exactly that.

``interneuron_phase="nudged"`` lets W_IP learn on the nudged fixed point instead (where the interneuron
is nudged by its partner's nudged potential). Near the self-predicting state its signal there is
``g_som_int / (g_lk + g_D + g_som_int)`` times the forward signal of the partner, so with the rates of
:func:`~cortexsim.models.microcircuit.parameters.sps_tracking_rates` W_IP follows the forward weights it
imitates and the free apical potentials stay at zero while the network learns. Learning W_IP on the free
fixed point instead is a delta rule that lags the moving forward weights; at 784-500-500-10 its
stable rates are too small to follow them (measured: the free apical potentials grow and training
diverges).
All functions are batched over samples (rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cortexsim.models.microcircuit.parameters import (MicrocircuitParams, MicrocircuitWeights,
                                                      basal_attenuation, interneuron_attenuation)

INTERNEURON_PHASES = ("free", "nudged")

__all__ = ["INTERNEURON_PHASES", "SteadyState", "steady_state", "plasticity_signals", "apply_signals", "train_epoch",
           "predict"]


@dataclass
class SteadyState:
    """Fixed point of a batch. Lists are per layer; arrays have shape (batch, n)."""

    rates_in: np.ndarray
    u: list
    u_I: list
    v_B: list
    v_A: list
    v_D: list
    iterations: int
    converged: bool

    def rate(self, weights: MicrocircuitWeights, layer: int) -> np.ndarray:
        """Rates of pyramidal layer ``layer`` (0 = input)."""
        return self.rates_in if layer == 0 else weights.activation(layer).phi(self.u[layer - 1])


def _float_dtype(weights: MicrocircuitWeights) -> np.dtype:
    """float32 if all forward weights are float32 (fast large networks), else float64."""
    return np.result_type(*weights.W_up, np.float32)


def _topdown(weights: MicrocircuitWeights, params: MicrocircuitParams, l: int) -> np.ndarray:
    return weights.W_up[l + 1].T if params.topdown == "transposed" else weights.W_down[l]


def steady_state(weights: MicrocircuitWeights, params: MicrocircuitParams, x: np.ndarray,
                 target: np.ndarray | None = None, tol: float = 1e-10, max_iter: int = 500,
                 start: SteadyState | None = None) -> SteadyState:
    """Fixed point of the microcircuit for inputs ``x`` (batch, n_0) and optional target potentials.

    ``target`` rows/entries that are NaN (or ``target=None``) leave those outputs un-nudged. The sweep
    starts from ``start`` (e.g. the free fixed point of the same batch when computing the nudged one)
    or, if None, from the feed-forward pass of the self-predicting state.
    """
    dtype = _float_dtype(weights)
    x = np.atleast_2d(np.asarray(x, dtype=dtype))
    sizes, n = weights.sizes, weights.n_layers
    if x.shape[1] != sizes[0]:
        raise ValueError(f"x must have shape (batch, {sizes[0]}), got {x.shape}")
    if tol <= 0 or max_iter < 1:
        raise ValueError(f"tol must be > 0 and max_iter >= 1, got {tol}, {max_iter}")
    if target is None:
        nudge = tgt = np.zeros((x.shape[0], sizes[-1]), dtype=dtype)
    else:
        target = np.broadcast_to(np.asarray(target, dtype=dtype), (x.shape[0], sizes[-1]))
        on = ~np.isnan(target)
        nudge = np.where(on, params.g_som, 0.0).astype(dtype)
        tgt = np.where(on, target, 0.0).astype(dtype)
    g_hid = params.g_lk + params.g_B + params.g_A
    g_int = params.g_lk + params.g_D + params.g_som_int
    # the input layer's basal potentials do not change during the sweeps: computed once (or taken from
    # ``start``, which holds them for the same inputs and weights)
    if start is not None:
        if start.rates_in.shape != x.shape:
            raise ValueError(f"start was computed for inputs of shape {start.rates_in.shape}, x has {x.shape}")
        u, u_I = list(start.u), list(start.u_I)
        r = [x] + [weights.activation(l + 1).phi(u[l]) for l in range(n)]
        basal_in = start.v_B[0]
    else:   # feed-forward pass in the self-predicting state
        basal_in = x @ weights.W_up[0].T + weights.b_up[0]
        u, r = [], [x]
        for l in range(n):
            lam = basal_attenuation(params, hidden=l < n - 1)
            u.append(lam * (basal_in if l == 0 else r[-1] @ weights.W_up[l].T + weights.b_up[l]))
            r.append(weights.activation(l + 1).phi(u[-1]))
        u_I = [interneuron_attenuation(params) * (r[l + 1] @ weights.W_IP[l].T + weights.b_IP[l])
               for l in range(n - 1)]
    v_B, v_A, v_D = [None] * n, [None] * (n - 1), [None] * (n - 1)
    converged, iteration = False, 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 (the count is reported after the loop)
        change = 0.0
        for l in range(n):
            k = l + 1
            v_B[l] = basal_in if l == 0 else r[l] @ weights.W_up[l].T + weights.b_up[l]
            if k < n:
                r_int = weights.activation(k + 1).phi(u_I[l])
                v_A[l] = r[k + 1] @ _topdown(weights, params, l).T + r_int @ weights.W_PI[l].T
                new = (params.g_B * v_B[l] + params.g_A * v_A[l]) / g_hid
            else:
                new = (params.g_B * v_B[l] + nudge * tgt) / (params.g_lk + params.g_B + nudge)
            change = max(change, float(np.max(np.abs(new - u[l]))))
            u[l], r[k] = new, weights.activation(k).phi(new)
        for l in range(n - 1):
            v_D[l] = r[l + 1] @ weights.W_IP[l].T + weights.b_IP[l]
            new = (params.g_D * v_D[l] + params.g_som_int * u[l + 1]) / g_int
            change = max(change, float(np.max(np.abs(new - u_I[l]))))
            u_I[l] = new
        if change < tol:
            converged = True
            break
    # dendrites consistent with the final somata
    for l in range(n):
        v_B[l] = basal_in if l == 0 else r[l] @ weights.W_up[l].T + weights.b_up[l]
    for l in range(n - 1):
        r_int = weights.activation(l + 2).phi(u_I[l])
        v_A[l] = r[l + 2] @ _topdown(weights, params, l).T + r_int @ weights.W_PI[l].T
        v_D[l] = r[l + 1] @ weights.W_IP[l].T + weights.b_IP[l]
    return SteadyState(x, u, u_I, v_B, v_A, v_D, iteration, converged)


def plasticity_signals(weights: MicrocircuitWeights, params: MicrocircuitParams, free: SteadyState,
                       nudged: SteadyState, interneuron_phase: str = "free") -> dict:
    """Weight-change directions summed over the batch (the continuous rules' integrands at the fixed points).

    Returns a dict with lists ``W_up, b_up`` (from ``nudged``), ``W_PI, W_down`` (from ``free``) and
    ``W_IP, b_IP`` (from ``free``, or from ``nudged`` if ``interneuron_phase == "nudged"``).
    """
    if interneuron_phase not in INTERNEURON_PHASES:
        raise ValueError(f"interneuron_phase must be one of {INTERNEURON_PHASES}, got {interneuron_phase!r}")
    ip_state = nudged if interneuron_phase == "nudged" else free
    n = weights.n_layers
    out = {name: [] for name in ("W_up", "b_up", "W_IP", "b_IP", "W_PI", "W_down")}
    for l in range(n):
        k = l + 1
        lam = basal_attenuation(params, hidden=k < n)
        act = weights.activation(k)
        err = act.phi(nudged.u[l]) - act.phi(lam * nudged.v_B[l])
        out["W_up"].append(err.T @ nudged.rate(weights, l))
        out["b_up"].append(err.sum(axis=0))
    lam_d = interneuron_attenuation(params)
    for l in range(n - 1):
        act = weights.activation(l + 2)
        r_int = act.phi(ip_state.u_I[l])
        err_int = r_int - act.phi(lam_d * ip_state.v_D[l])
        out["W_IP"].append(err_int.T @ ip_state.rate(weights, l + 1))
        out["b_IP"].append(err_int.sum(axis=0))
        r_here, r_int = free.rate(weights, l + 1), act.phi(free.u_I[l])
        out["W_PI"].append(-free.v_A[l].T @ r_int)
        r_next = free.rate(weights, l + 2)
        recon = weights.hidden.phi(r_next @ weights.W_down[l].T)
        out["W_down"].append((r_here - recon).T @ r_next)
    return out


def apply_signals(weights: MicrocircuitWeights, params: MicrocircuitParams, signals: dict,
                  pattern_duration: float) -> None:
    """In place: ``W += eta * pattern_duration * signal`` with the learning rates of ``params``."""
    rates = params.learning_rates(weights.n_layers)
    for l in range(weights.n_layers):
        step = rates["eta_up"][l] * pattern_duration
        weights.W_up[l] += step * signals["W_up"][l]
        weights.b_up[l] += step * signals["b_up"][l]
    for l in range(weights.n_layers - 1):
        step = rates["eta_ip"][l] * pattern_duration
        weights.W_IP[l] += step * signals["W_IP"][l]
        weights.b_IP[l] += step * signals["b_IP"][l]
        weights.W_PI[l] += rates["eta_pi"][l] * pattern_duration * signals["W_PI"][l]
        if params.topdown == "learned":
            weights.W_down[l] += rates["eta_down"][l] * pattern_duration * signals["W_down"][l]
        elif params.topdown == "transposed":
            weights.W_down[l] = weights.W_up[l + 1].T.copy()


def train_epoch(weights: MicrocircuitWeights, params: MicrocircuitParams, x: np.ndarray,
                targets: np.ndarray | None, pattern_duration: float, batch_size: int, seed: int,
                tol: float = 1e-8, max_iter: int = 200, interneuron_phase: str = "free") -> dict:
    """One shuffled pass over the data, updating ``weights`` in place after every batch.

    A batch update equals presenting its patterns one after another with the weights frozen
    (signals summed). ``targets=None`` trains only the interneuron / top-down weights (no nudging).
    ``interneuron_phase``: fixed point on which W_IP learns (see :func:`plasticity_signals`).
    Returns ``{"max_iterations": int, "all_converged": bool}``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if pattern_duration <= 0:
        raise ValueError(f"pattern_duration must be > 0 ms, got {pattern_duration}")
    x = np.atleast_2d(np.asarray(x, dtype=_float_dtype(weights)))
    order = np.random.default_rng(seed).permutation(x.shape[0])
    max_it, all_conv = 0, True
    for start in range(0, x.shape[0], batch_size):
        idx = order[start:start + batch_size]
        free = steady_state(weights, params, x[idx], None, tol, max_iter)
        nudged = free if targets is None else steady_state(weights, params, x[idx], targets[idx], tol, max_iter,
                                                           start=free)
        apply_signals(weights, params, plasticity_signals(weights, params, free, nudged, interneuron_phase),
                      pattern_duration)
        max_it = max(max_it, free.iterations, nudged.iterations)
        all_conv = all_conv and free.converged and nudged.converged
    return {"max_iterations": max_it, "all_converged": all_conv}


def predict(weights: MicrocircuitWeights, params: MicrocircuitParams, x: np.ndarray,
            tol: float = 1e-8, max_iter: int = 200) -> np.ndarray:
    """Output potentials ``u_N`` at the free fixed point (no target) for inputs ``x``."""
    return steady_state(weights, params, x, None, tol, max_iter).u[-1]
