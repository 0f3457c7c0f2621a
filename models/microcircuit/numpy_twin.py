"""Vectorised numpy twin of the time-continuous microcircuit (same equations and update order as Brian2).

One forward-Euler step from time t to t + dt (every right-hand side is evaluated at time t):

1. rates ``r = phi(u)`` of all somata and the input ``x(t)``;
2. dendritic potentials from the current weights: basal ``v_B``, interneuron dendrites ``v_D``, apical
   ``v_A`` (the Brian2 model's summed variables);
3. plasticity signals ``err r_pre^T`` with ``err = phi(u) - phi(lambda v_B)`` (forward and W_IP),
   ``-v_A`` (W_PI) and ``r_k - phi(v_TD)`` (learned top-down); with
   ``interneuron_plasticity="free_phase"`` the lateral signals are zero while a target is shown;
   weights ``W += dt eta Delta`` with the old filter state, then ``Delta += dt / tau_w (signal - Delta)``;
4. somata ``u += dt (-g_lk u + g_1 (v_1 - u) + g_2 (v_2 - u)) + noise sqrt(dt) xi``.

For speed all weights live in one packed matrix ``M`` (rows: basal/dendritic compartments of all somata
then apical compartments; columns: constant 1 for biases, input, rates of all somata), so a step is one
matrix-vector product and one rank-1 plasticity update. ``MicrocircuitWeights``-style per-layer views
into ``M`` are exposed through :meth:`NumpyMicrocircuit.weights`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from cortexsim.models.microcircuit.parameters import (MicrocircuitParams, MicrocircuitWeights,
                                                      basal_attenuation, interneuron_attenuation)

__all__ = ["NumpyMicrocircuit", "pattern_schedule"]


def pattern_schedule(inputs: np.ndarray, targets: np.ndarray | None, n_inputs: int, n_outputs: int):
    """Validate pattern arrays; returns (inputs, targets) with targets NaN where no target is shown."""
    inputs = np.atleast_2d(np.asarray(inputs, dtype=float))
    if inputs.shape[1] != n_inputs:
        raise ValueError(f"inputs must have shape (n_patterns, {n_inputs}), got {inputs.shape}")
    if targets is None:
        targets = np.full((inputs.shape[0], n_outputs), np.nan)
    targets = np.atleast_2d(np.asarray(targets, dtype=float))
    if targets.shape != (inputs.shape[0], n_outputs):
        raise ValueError(f"targets must have shape ({inputs.shape[0]}, {n_outputs}) or be None, got {targets.shape}")
    return inputs, targets


def _apply_inplace(act, values: np.ndarray, out: np.ndarray) -> None:
    """out[...] = act.phi(values) without temporaries for the common transfer functions."""
    if act.name == "logistic":             # 1 / (1 + exp(-slope u)); equals models.layered's tanh form to 1e-16
        if act.params["slope"] == 1.0:
            expit(values, out=out)
        else:
            np.multiply(values, act.params["slope"], out=out)
            expit(out, out=out)
    elif act.name == "linear":
        out[...] = values
    elif act.name == "tanh":
        np.tanh(values, out=out)
    else:
        out[...] = act.phi(values)


class NumpyMicrocircuit:
    """Time-continuous microcircuit integrated with forward Euler in numpy.

    Parameters
    ----------
    weights : MicrocircuitWeights
        Initial weights (copied).
    params : MicrocircuitParams
        Conductances, dt, low-pass time constant, noise, top-down mode and learning rates.
    seed : int
        Seed of the somatic noise generator (used only if ``params.noise > 0``).
    """

    def __init__(self, weights: MicrocircuitWeights, params: MicrocircuitParams, seed: int = 0):
        self.params = params
        self.hidden, self.output = weights.hidden, weights.output
        self.sizes = weights.sizes
        n = self.n_layers = weights.n_layers
        rates = params.learning_rates(n)
        self._rng = np.random.default_rng(seed)
        sizes = self.sizes
        # soma segments: pyr 1, int 1, pyr 2, int 2, ..., pyr N  -> (start, stop) in the soma vector
        self._pyr, self._int = {}, {}
        pos = 0
        for k in range(1, n + 1):
            self._pyr[k] = slice(pos, pos + sizes[k]); pos += sizes[k]
            if k < n:
                self._int[k] = slice(pos, pos + sizes[k + 1]); pos += sizes[k + 1]
        self.n_somata = pos
        self._api = {k: slice(self.n_somata + self._pyr[k].start, self.n_somata + self._pyr[k].stop)
                     for k in range(1, n)}
        n_rows = self.n_somata + (self._pyr[n].start if n > 1 else 0)
        self._col0 = 1 + sizes[0]                     # first soma column
        n_cols = self._col0 + self.n_somata

        def cols(seg):
            return slice(self._col0 + seg.start, self._col0 + seg.stop)

        def pre_cols(k):                              # rate columns of pyramidal layer k (0 = input)
            return slice(1, 1 + sizes[0]) if k == 0 else cols(self._pyr[k])

        self.M = np.zeros((n_rows, n_cols))
        self.delta = np.zeros_like(self.M)
        self.eta_dt = np.zeros_like(self.M)
        self._views = {"W_up": [], "b_up": [], "W_down": [], "W_IP": [], "b_IP": [], "W_PI": []}
        for l in range(n):
            rows = self._pyr[l + 1]
            self._views["W_up"].append(self.M[rows, pre_cols(l)])
            self._views["b_up"].append(self.M[rows, 0])
            self.eta_dt[rows, pre_cols(l)] = self.eta_dt[rows, 0] = rates["eta_up"][l] * params.dt
        for l in range(n - 1):
            k = l + 1
            self._views["W_IP"].append(self.M[self._int[k], cols(self._pyr[k])])
            self._views["b_IP"].append(self.M[self._int[k], 0])
            eta_ip = rates["eta_ip"][l] * params.dt
            self.eta_dt[self._int[k], cols(self._pyr[k])] = self.eta_dt[self._int[k], 0] = eta_ip
            self._views["W_PI"].append(self.M[self._api[k], cols(self._int[k])])
            self.eta_dt[self._api[k], cols(self._int[k])] = rates["eta_pi"][l] * params.dt
            self._views["W_down"].append(self.M[self._api[k], cols(self._pyr[k + 1])])
        for name, views in self._views.items():
            for view, value in zip(views, getattr(weights, name)):
                view[...] = value
        self._td_cols = [cols(self._pyr[k + 1]) for k in range(1, n)]
        self._eta_down_dt = [e * params.dt for e in rates["eta_down"]]
        self._delta_down = [np.zeros_like(w) for w in self._views["W_down"]]
        if params.topdown == "transposed":
            self._transpose_topdown()

        # per-soma conductances and attenuation factors
        g1 = np.empty(self.n_somata); g2 = np.empty(self.n_somata); lam = np.empty(self.n_somata)
        for k, seg in self._pyr.items():
            g1[seg] = params.g_B
            g2[seg] = params.g_A if k < n else params.g_som
            lam[seg] = basal_attenuation(params, hidden=k < n)
        for seg in self._int.values():
            g1[seg], g2[seg], lam[seg] = params.g_D, params.g_som_int, interneuron_attenuation(params)
        self._g1, self._g2_full, self._lam = g1, g2, lam
        self._g2 = g2.copy()
        self._split = self._int[n - 1].start if n > 1 else 0   # somata from here on use the output phi
        self.p = np.zeros(n_cols); self.p[0] = 1.0
        self.v = np.zeros(n_rows)
        self._v2 = np.zeros(self.n_somata)
        self.err = np.zeros(n_rows)
        self._tmp = np.empty_like(self.M)
        self._du_tmp = np.zeros(self.n_somata)
        self._g1_dt = params.dt * g1
        self._g2_dt, self._g_total_dt = np.zeros(self.n_somata), np.zeros(self.n_somata)
        self._u_keep = np.ones(self.n_somata)
        # persistent views used by _step (the arrays are never reallocated)
        s, som = self._split, self.n_somata
        self._x_view, self._r_view = self.p[1:self._col0], self.p[self._col0:]
        self._v_som, self._v_api = self.v[:som], self.v[som:]
        self._err_som, self._err_api = self.err[:som], self.err[som:]
        # rates phi(u) are written straight into the rate columns of p; phi(lambda v_1) into _phi_pred
        self.u, self._lam_v, self._phi_pred = np.zeros(som), np.zeros(som), np.zeros(som)
        self._rate_phi = [(self.hidden, self.u[:s], self._r_view[:s]), (self.output, self.u[s:], self._r_view[s:])]
        self._pred_phi = [(self.hidden, self._lam_v[:s], self._phi_pred[:s]),
                          (self.output, self._lam_v[s:], self._phi_pred[s:])]
        self._v2_copies = ([(self._v2[self._pyr[k]], self.v[self._api[k]]) for k in range(1, n)]
                           + [(self._v2[self._int[k]], self.u[self._pyr[k + 1]]) for k in range(1, n)])
        self._filter_gain = params.dt / params.tau_w
        self._filter_keep = 1.0 - self._filter_gain
        # per-row gain of the filter input; rows of lateral weights (W_IP, W_PI) are gated in "free_phase"
        self._gain_rows = np.full(n_rows, self._filter_gain)
        self._lateral_rows = np.zeros(n_rows, dtype=bool)
        for k in range(1, n):
            self._lateral_rows[self._int[k]] = self._lateral_rows[self._api[k]] = True
        self._lateral_gate = 1.0
        self._err_scaled = np.zeros(n_rows)
        self._err_col, self._p_row = self._err_scaled[:, None], self.p[None, :]
        self.set_target(None)
        self.time = 0.0

    # ------------------------------------------------------------------ helpers
    def _transpose_topdown(self):
        for l, view in enumerate(self._views["W_down"]):
            np.copyto(view, self._views["W_up"][l + 1].T)

    def _phi(self, values: np.ndarray, out: np.ndarray) -> None:
        s = self._split
        _apply_inplace(self.hidden, values[:s], out[:s])
        _apply_inplace(self.output, values[s:], out[s:])

    def weights(self) -> MicrocircuitWeights:
        """Copy of the current weights as a :class:`MicrocircuitWeights`."""
        v = self._views
        return MicrocircuitWeights(*[[np.array(a) for a in v[name]] for name in
                                     ("W_up", "b_up", "W_down", "W_IP", "b_IP", "W_PI")],
                                   hidden=self.hidden, output=self.output)

    def set_weights(self, weights: MicrocircuitWeights) -> None:
        """Overwrite all weights (shapes must match); the low-pass filter states are kept."""
        if weights.sizes != self.sizes:
            raise ValueError(f"weights have sizes {weights.sizes}, the model has {self.sizes}")
        for name, views in self._views.items():
            for view, value in zip(views, getattr(weights, name)):
                view[...] = value
        if self.params.topdown == "transposed":
            self._transpose_topdown()

    def potentials(self) -> dict:
        """Current somatic potentials: ``{"u": [u_1..u_N], "u_I": [u_I,1..u_I,N-1]}`` (copies)."""
        return {"u": [self.u[self._pyr[k]].copy() for k in sorted(self._pyr)],
                "u_I": [self.u[self._int[k]].copy() for k in sorted(self._int)]}

    def set_potentials(self, u: list, u_I: list) -> None:
        """Set somatic potentials (lists per pyramidal layer 1..N and per interneuron layer 1..N-1)."""
        if len(u) != self.n_layers or len(u_I) != self.n_layers - 1:
            raise ValueError(f"need {self.n_layers} pyramidal and {self.n_layers - 1} interneuron arrays, "
                             f"got {len(u)} and {len(u_I)}")
        for k, values in enumerate(u, start=1):
            self.u[self._pyr[k]] = np.reshape(values, self.sizes[k])
        for k, values in enumerate(u_I, start=1):
            self.u[self._int[k]] = np.reshape(values, self.sizes[k + 1])

    def apical(self) -> np.ndarray:
        """Apical potentials of all hidden layers (concatenated) from the last step."""
        return self.v[self.n_somata:].copy()

    def forward_signals(self) -> list:
        """Instantaneous forward plasticity signals ``err_k r_{k-1}^T`` of the last step, per weight layer."""
        x = self.p[1:self._col0]
        out = []
        for l in range(self.n_layers):
            pre = x if l == 0 else self.p[self._col0 + self._pyr[l].start:self._col0 + self._pyr[l].stop]
            out.append(np.outer(self.err[self._pyr[l + 1]], pre))
        return out

    # ------------------------------------------------------------------ dynamics
    def step(self, x: np.ndarray, target: np.ndarray | None = None) -> None:
        """Advance by one Euler step with input rates ``x`` and output target potentials ``target``.

        ``target`` None (or NaN entries) means no nudging of those output neurons.
        """
        x = np.asarray(x, dtype=float)
        if x.shape != (self.sizes[0],):
            raise ValueError(f"x must have shape ({self.sizes[0]},), got {x.shape}")
        self.set_target(target)
        self._step(x)

    def set_target(self, target: np.ndarray | None) -> None:
        """Nudge the output towards ``target`` potentials from now on (None or NaN entries: no nudging)."""
        out_seg = self._pyr[self.n_layers]
        if target is None:
            self._g2[out_seg] = 0.0
            self._v2[out_seg] = 0.0
        else:
            target = np.asarray(target, dtype=float)
            if target.shape != (self.sizes[-1],):
                raise ValueError(f"target must have shape ({self.sizes[-1]},), got {target.shape}")
            on = ~np.isnan(target)
            self._g2[out_seg] = np.where(on, self.params.g_som, 0.0)
            self._v2[out_seg] = np.where(on, target, 0.0)
        if self.params.interneuron_plasticity == "free_phase":
            self._lateral_gate = 0.0 if target is not None and np.any(on) else 1.0
            self._gain_rows[self._lateral_rows] = self._lateral_gate * self._filter_gain
        self._g2_dt[...] = self.params.dt * self._g2
        self._g_total_dt[...] = self.params.dt * (self.params.g_lk + self._g1 + self._g2)
        self._u_keep[...] = 1.0 - self._g_total_dt

    def _step(self, x: np.ndarray) -> None:
        prm = self.params
        self._x_view[...] = x
        # rates r = phi(u), written into the rate columns of p
        for act, src, dst in self._rate_phi:
            _apply_inplace(act, src, dst)
        np.matmul(self.M, self.p, out=self.v)                   # dendrites from W(t), r(t)
        for dst, src in self._v2_copies:                        # apical / nudging inputs
            dst[...] = src
        np.multiply(self._lam, self._v_som, out=self._lam_v)    # err = phi(u) - phi(lambda v)
        for act, src, dst in self._pred_phi:
            _apply_inplace(act, src, dst)
        np.subtract(self._r_view, self._phi_pred, out=self._err_som)
        np.negative(self._v_api, out=self._err_api)             # W_PI: 0 - v_A
        if prm.topdown == "learned":
            self._learn_topdown()
        # Euler on weights (old filter state) and on the low-pass filter of err r^T
        np.multiply(self.eta_dt, self.delta, out=self._tmp)
        self.M += self._tmp
        self.delta *= self._filter_keep
        np.multiply(self.err, self._gain_rows, out=self._err_scaled)
        np.multiply(self._err_col, self._p_row, out=self._tmp)
        self.delta += self._tmp
        if prm.topdown == "transposed":
            self._transpose_topdown()
        # somata: u += dt (g1 v1 + g2 v2 - g_total u) + noise, as u = (1 - dt g_total) u + dt g1 v1 + dt g2 v2
        tmp = self._du_tmp
        self.u *= self._u_keep
        np.multiply(self._g1_dt, self._v_som, out=tmp)
        self.u += tmp
        np.multiply(self._g2_dt, self._v2, out=tmp)
        self.u += tmp
        if prm.noise > 0:
            self.u += prm.noise * np.sqrt(prm.dt) * self._rng.standard_normal(self.n_somata)
        self.time += prm.dt

    def _learn_topdown(self):
        prm = self.params
        for l, (w, d) in enumerate(zip(self._views["W_down"], self._delta_down)):
            k = l + 1
            r_here = self.p[self._col0 + self._pyr[k].start:self._col0 + self._pyr[k].stop]
            r_next = self.p[self._td_cols[l]]
            signal = self._lateral_gate * np.outer(r_here - self.hidden.phi(w @ r_next), r_next)
            w += self._eta_down_dt[l] * d
            d += prm.dt / prm.tau_w * (signal - d)

    def run(self, inputs: np.ndarray, targets: np.ndarray | None = None, steps_per_pattern: int = 1000,
            record_every: int | None = None, on_pattern_end=None) -> dict:
        """Present each pattern for ``steps_per_pattern`` Euler steps.

        Parameters
        ----------
        inputs : ndarray (n_patterns, n_0)
            Input rates of each pattern.
        targets : ndarray (n_patterns, n_N) or None
            Output target potentials; NaN (or None for all) = no nudging.
        steps_per_pattern : int
            Euler steps per pattern (pattern duration / dt).
        record_every : int or None
            Record somatic and apical potentials every that many steps (None = no recording).
        on_pattern_end : callable(model, pattern_index) or None
            Called after the last step of every pattern.

        Returns
        -------
        dict with ``t`` (ms, time at the START of each recorded step), ``u`` (list per layer of
        (n_rec, n_k) arrays), ``u_I`` and ``v_A`` (lists per hidden layer); empty lists if not recorded.
        """
        if steps_per_pattern < 1:
            raise ValueError(f"steps_per_pattern must be >= 1, got {steps_per_pattern}")
        if record_every is not None and record_every < 1:
            raise ValueError(f"record_every must be >= 1 or None, got {record_every}")
        inputs, targets = pattern_schedule(inputs, targets, self.sizes[0], self.sizes[-1])
        total = inputs.shape[0] * steps_per_pattern
        n_rec = 0 if record_every is None else (total + record_every - 1) // record_every
        rec_u = np.empty((n_rec, self.n_somata)); rec_v = np.empty((n_rec, self.v.size - self.n_somata))
        rec_t = np.empty(n_rec)
        i_rec = 0
        for i_pat in range(inputs.shape[0]):
            x = inputs[i_pat]
            self.set_target(None if np.all(np.isnan(targets[i_pat])) else targets[i_pat])
            for i_step in range(steps_per_pattern):
                record = record_every is not None and (i_pat * steps_per_pattern + i_step) % record_every == 0
                if record:
                    rec_u[i_rec] = self.u; rec_t[i_rec] = self.time
                self._step(x)
                if record:
                    rec_v[i_rec] = self.v[self.n_somata:]; i_rec += 1
            if on_pattern_end is not None:
                on_pattern_end(self, i_pat)
        hidden = range(1, self.n_layers)
        return {"t": rec_t,
                "u": [rec_u[:, self._pyr[k]] for k in range(1, self.n_layers + 1)],
                "u_I": [rec_u[:, self._int[k]] for k in hidden],
                "v_A": [rec_v[:, self._api[k].start - self.n_somata:self._api[k].stop - self.n_somata]
                        for k in hidden]}
