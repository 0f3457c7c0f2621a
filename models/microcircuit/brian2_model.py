"""The time-continuous microcircuit written as Brian2 equations.

Every population is a ``NeuronGroup`` of multi-compartment rate neurons (the soma is a differential
equation, dendrites are instantaneous summed variables) and every projection is a ``Synapses`` object
whose weight follows the continuous dendritic-prediction rule through a low-pass filter::

    dw/dt     = eta * Delta                                   (clock-driven)
    dDelta/dt = (err_post * r_pre - Delta) / tau_w             (clock-driven)
    v_B_syn_post = w * r_pre                                   (summed)

Top-down weights are a fixed or a learned ``Synapses`` object, or (``topdown="transposed"``) the forward
synapses themselves summing ``w * r_post`` onto the lower layer's apical compartment.

Update order inside one time step (made explicit with ``order``; the numpy twin does the same):
summed variables (dendrites from W(t), u(t)) -> synaptic Euler updates -> somatic Euler updates.
Brian2's ``prefs.codegen.target`` is process-global; :func:`build_brian2_microcircuit` sets it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cortexsim.models.layered import Activation
from cortexsim.models.microcircuit.numpy_twin import pattern_schedule
from cortexsim.models.microcircuit.parameters import (MicrocircuitParams, MicrocircuitWeights,
                                                      basal_attenuation, interneuron_attenuation)

__all__ = ["phi_expression", "Brian2Microcircuit", "build_brian2_microcircuit"]

ORDER_DENDRITES, ORDER_SYNAPSES, ORDER_SOMATA = -10, 0, 10


def phi_expression(act: Activation, arg: str) -> str:
    """Brian2 expression of ``act.phi`` applied to the expression ``arg`` (same formula as numpy)."""
    a = f"({arg})"
    if act.name == "logistic":
        return f"(0.5*(1 + tanh(0.5*{act.params['slope']!r}*{a})))"
    if act.name == "soft_relu":
        g, b, th = act.params["gamma"], act.params["beta"], act.params["theta"]
        return f"({g!r}*log(1 + exp({b!r}*({a} - {th!r}))))"
    if act.name == "tanh":
        return f"tanh({a})"
    if act.name == "linear":
        return a
    raise ValueError(f"no Brian2 expression for activation {act.name!r}")


def _soma(noise: float, extra: str) -> str:
    noise_term = " + sigma*xi*ms**-0.5" if noise > 0 else ""
    return f"du/dt = -g_lk*u {extra}{noise_term} : 1\n"


def _plastic_bias(eta: float, gate: str = "") -> str:
    if eta == 0:
        return "b : 1\n"
    return f"db/dt = {eta!r}/ms*Delta_b : 1\ndDelta_b/dt = ({gate}err - Delta_b)/tau_w : 1\n"


def _plastic_weight(eta: float, signal: str) -> str:
    if eta == 0:
        return "w : 1\n"
    return (f"dw/dt = {eta!r}/ms*Delta : 1 (clock-driven)\n"
            f"dDelta/dt = ({signal} - Delta)/tau_w : 1 (clock-driven)\n")


@dataclass
class Brian2Microcircuit:
    """Handles of a built Brian2 microcircuit."""

    network: object
    groups: dict
    synapses: dict
    monitors: dict
    sizes: list
    weights_template: MicrocircuitWeights

    def run(self, duration_ms: float) -> None:
        import brian2 as b2
        self.network.run(duration_ms * b2.ms, namespace={})

    def weights(self) -> MicrocircuitWeights:
        """Current weights read back from the Brian2 objects."""
        out = self.weights_template.copy()
        for (name, l), syn in self.synapses.items():
            if name in ("W_up", "W_IP", "W_PI", "W_down"):
                getattr(out, name)[l][syn.j[:], syn.i[:]] = np.asarray(syn.w[:])
        for l in range(len(self.sizes) - 1):
            out.b_up[l] = np.asarray(self.groups[("pyr", l + 1)].b[:]).copy()
        for l in range(len(self.sizes) - 2):
            out.b_IP[l] = np.asarray(self.groups[("int", l + 1)].b[:]).copy()
            if ("W_down", l) not in self.synapses:
                out.W_down[l] = out.W_up[l + 1].T.copy()
        return out

    def trajectory(self) -> dict:
        """Recorded ``t`` (ms), ``u`` per layer, ``u_I`` and ``v_A`` per hidden layer (arrays (n_t, n))."""
        n = len(self.sizes) - 1
        mon = self.monitors
        return {"t": np.asarray(mon[("pyr", n)].t_[:]) * 1e3,
                "u": [np.asarray(mon[("pyr", k)].u).T for k in range(1, n + 1)],
                "u_I": [np.asarray(mon[("int", k)].u).T for k in range(1, n)],
                "v_A": [np.asarray(mon[("apical", k)].v_A).T for k in range(1, n)]}


def build_brian2_microcircuit(weights: MicrocircuitWeights, params: MicrocircuitParams, inputs: np.ndarray,
                              targets: np.ndarray | None, pattern_duration: float,
                              record: bool = True, codegen_target: str = "numpy") -> Brian2Microcircuit:
    """Build the microcircuit in Brian2 for a sequence of patterns, each shown ``pattern_duration`` ms.

    ``inputs`` (n_patterns, n_0) are input rates; ``targets`` (n_patterns, n_N) output target potentials
    (NaN entries / None: no nudging). Initial potentials are 0, like the numpy twin's.
    """
    import brian2 as b2

    if pattern_duration <= 0:
        raise ValueError(f"pattern_duration must be > 0 ms, got {pattern_duration}")
    if codegen_target not in ("numpy", "cython"):
        raise ValueError(f"codegen_target must be 'numpy' or 'cython', got {codegen_target!r}")
    b2.prefs.codegen.target = codegen_target
    sizes, n = weights.sizes, weights.n_layers
    rates = params.learning_rates(n)
    inputs, targets = pattern_schedule(inputs, targets, sizes[0], sizes[-1])
    ms = b2.ms
    dt = params.dt * ms
    ns = {"g_lk": params.g_lk / ms, "g_B": params.g_B / ms, "g_A": params.g_A / ms, "g_D": params.g_D / ms,
          "g_som": params.g_som / ms, "g_si": params.g_som_int / ms, "tau_w": params.tau_w * ms,
          "sigma": params.noise, "ms": ms,
          "x_in": b2.TimedArray(inputs, dt=pattern_duration * ms),
          "tgt_on": b2.TimedArray((~np.isnan(targets)).astype(float), dt=pattern_duration * ms),
          "tgt_val": b2.TimedArray(np.nan_to_num(targets, nan=0.0), dt=pattern_duration * ms),
          "free_phase": b2.TimedArray(np.all(np.isnan(targets), axis=1).astype(float), dt=pattern_duration * ms)}
    # lateral plasticity gate: 1 always, or only while no target is shown ("free_phase")
    gate = "free_phase(t)*" if params.interneuron_plasticity == "free_phase" else ""
    groups, synapses, monitors = {}, {}, {}
    groups[("pyr", 0)] = b2.NeuronGroup(sizes[0], "r = x_in(t, i) : 1", dt=dt, namespace=ns, name="input")
    for k in range(1, n + 1):
        act = weights.activation(k)
        lam = basal_attenuation(params, hidden=k < n)
        common = (f"v_B = v_B_syn + b : 1\nv_B_syn : 1\nr = {phi_expression(act, 'u')} : 1\n"
                  f"err = r - {phi_expression(act, f'{lam!r}*v_B')} : 1\n" + _plastic_bias(rates["eta_up"][k - 1]))
        if k < n:
            eqs = (_soma(params.noise, "+ g_B*(v_B - u) + g_A*(v_A - u)") + common
                   + "v_TD : 1\nv_PI : 1\nv_A = v_TD + v_PI : 1\n")
        else:
            eqs = _soma(params.noise, "+ g_B*(v_B - u) + g_som*tgt_on(t, i)*(tgt_val(t, i) - u)") + common
        groups[("pyr", k)] = b2.NeuronGroup(sizes[k], eqs, method="euler", dt=dt, namespace=ns, name=f"pyr{k}")
        groups[("pyr", k)].b = weights.b_up[k - 1]
    for k in range(1, n):
        act = weights.activation(k + 1)
        lam_d = interneuron_attenuation(params)
        eqs = (_soma(params.noise, "+ g_D*(v_D - u) + g_si*(u_next - u)")
               + f"v_D = v_D_syn + b : 1\nv_D_syn : 1\nu_next : 1\nr = {phi_expression(act, 'u')} : 1\n"
               + f"err = r - {phi_expression(act, f'{lam_d!r}*v_D')} : 1\n"
               + _plastic_bias(rates["eta_ip"][k - 1], gate))
        groups[("int", k)] = b2.NeuronGroup(sizes[k + 1], eqs, method="euler", dt=dt, namespace=ns, name=f"int{k}")
        groups[("int", k)].b = weights.b_IP[k - 1]

    def connect(name, l, pre, post, model, matrix, one_to_one=False):
        syn = b2.Synapses(groups[pre], groups[post], model=model, method="euler", dt=dt, namespace=ns,
                          name=f"{name}_{l}")
        if one_to_one:
            syn.connect(j="i")
        else:
            syn.connect()
            syn.w[:] = matrix[np.asarray(syn.j[:]), np.asarray(syn.i[:])]
        synapses[(name, l)] = syn

    for l in range(n):
        model = _plastic_weight(rates["eta_up"][l], "err_post*r_pre") + "v_B_syn_post = w*r_pre : 1 (summed)\n"
        if params.topdown == "transposed" and l >= 1:
            model += "v_TD_pre = w*r_post : 1 (summed)\n"
        connect("W_up", l, ("pyr", l), ("pyr", l + 1), model, weights.W_up[l])
    for l in range(n - 1):
        k = l + 1
        connect("W_IP", l, ("pyr", k), ("int", k), _plastic_weight(rates["eta_ip"][l], f"{gate}err_post*r_pre")
                + "v_D_syn_post = w*r_pre : 1 (summed)\n", weights.W_IP[l])
        connect("W_PI", l, ("int", k), ("pyr", k), _plastic_weight(rates["eta_pi"][l], f"-{gate}v_A_post*r_pre")
                + "v_PI_post = w*r_pre : 1 (summed)\n", weights.W_PI[l])
        if params.topdown != "transposed":
            signal = f"{gate}(r_post - {phi_expression(weights.hidden, 'v_TD_post')})*r_pre"
            eta = rates["eta_down"][l] if params.topdown == "learned" else 0.0
            connect("W_down", l, ("pyr", k + 1), ("pyr", k), _plastic_weight(eta, signal)
                    + "v_TD_post = w*r_pre : 1 (summed)\n", weights.W_down[l])
        connect("nudge", l, ("pyr", k + 1), ("int", k), "u_next_post = u_pre : 1 (summed)\n", None, one_to_one=True)

    # explicit update order: dendrites (summed variables) -> synapses -> somata
    for syn in synapses.values():
        for updater in syn.summed_updaters.values():
            updater.order = ORDER_DENDRITES
        if getattr(syn, "state_updater", None) is not None:
            syn.state_updater.order = ORDER_SYNAPSES
    for key, group in groups.items():
        if key != ("pyr", 0):
            group.state_updater.order = ORDER_SOMATA
    if record:
        for key, group in groups.items():
            if key != ("pyr", 0):
                monitors[key] = b2.StateMonitor(group, "u", record=True, dt=dt, name=f"mon_{key[0]}{key[1]}")
        for k in range(1, n):
            monitors[("apical", k)] = b2.StateMonitor(groups[("pyr", k)], "v_A", record=True, dt=dt,
                                                      when="end", name=f"mon_apical{k}")
    net = b2.Network(*groups.values(), *synapses.values(), *monitors.values())
    return Brian2Microcircuit(net, groups, synapses, monitors, sizes, weights.copy())
