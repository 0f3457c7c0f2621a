"""Latent Equilibrium / original Lagrangian dynamics written as Brian2 equations.

The same equations as :class:`cortexsim.models.latent_equilibrium.LatentEquilibrium` (direct error
mode) for ONE network: a ``NeuronGroup`` per layer (rate neurons with membrane ``u``, prospective
voltage ``u_breve``, error ``err`` (``e`` is a Brian2 constant) and, for learnable biases, ``db/dt``), and a
``Synapses`` object per weight layer with continuous plasticity ``dw/dt = eta err_post r_pre`` and two summed
variables: the feed-forward input ``I_ff_post = w r_pre`` and the back-projected mismatch ``E_back_pre = w m_post``.
The schedule (``when``/``order`` of every code object) reproduces the numpy step order: forward sweep,
output error, backward sweep (top layer first), plasticity, membrane update.  Brian2 is imported
lazily; pass ``codegen_target="numpy"`` to avoid compilation.
"""

from __future__ import annotations

import numpy as np

from .latent_equilibrium import LEParameters
from .layered import Activation, LayeredNetwork

__all__ = ["activation_expressions", "simulate_brian2"]


def activation_expressions(act: Activation, arg: str = "v") -> tuple[str, str]:
    """Brian2 expressions (phi, phi') of ``act`` applied to the variable named ``arg``."""
    p = act.params
    if act.name == "logistic":
        s = float(p["slope"])
        phi = f"(0.5 * (1 + tanh(0.5 * {s!r} * {arg})))"
        return phi, f"({s!r} * {phi} * (1 - {phi}))"
    if act.name == "tanh":
        return f"tanh({arg})", f"(1 - tanh({arg})**2)"
    if act.name == "linear":
        return f"({arg})", "1.0"
    if act.name == "soft_relu":
        g, b, th = float(p["gamma"]), float(p["beta"]), float(p["theta"])
        z = f"({b!r} * ({arg} - {th!r}))"
        return (f"({g!r} * log(1 + exp({z})))", f"({g!r} * {b!r} * 0.5 * (1 + tanh(0.5 * {z})))")
    raise ValueError(f"activation {act.name!r} has no Brian2 expression; known: logistic, tanh, linear, soft_relu")


def _neuron_equations(act: Activation, params: LEParameters, output: bool) -> str:
    phi, dphi = activation_expressions(act)
    readout = "I_ff + b + err" if params.prospective else "u"
    eqs = f"""
    du/dt = (I_ff + b + err - u) / tau : 1
    db/dt = eta_bias * err : 1
    I_ff : 1
    err : 1
    u_breve = I_ff + b + err : 1
    v = {readout} : 1
    r = {phi} : 1
    dr = {dphi} : 1
    m = v - I_ff - b : 1
    """
    if output:
        eqs += "target = target_values(t, i) : 1\non = target_on(t) : 1\n"
    else:
        eqs += "E_back : 1\n"
    return eqs


def simulate_brian2(network: LayeredNetwork, params: LEParameters, inputs: np.ndarray,
                    targets: np.ndarray | None, learn: bool = True, codegen_target: str = "numpy") -> dict:
    """Run the Brian2 version for ``len(inputs)`` steps of ``params.dt``, starting from rest.

    Parameters
    ----------
    network : LayeredNetwork
        Initial weights and biases (not modified).
    params : LEParameters
        Dynamics and learning parameters; ``errors`` must be "direct" and the scheme explicit
        (``error_iterations=1``, ``error_relaxation=1``, no ``eta_layer_factors``): the Brian2 equations
        follow the explicit numpy scheme, where each neuron uses the errors of the previous step.
    inputs : ndarray, shape (n_steps, n_in)
        Input rates, one row per time step.
    targets : ndarray, shape (n_steps, n_out), or None
        Output targets per step; rows of NaN mean "no target" in that step.
    learn : bool
        Apply plasticity (weights and biases).
    codegen_target : str
        Brian2 code generation target ("numpy" or "cython").

    Returns
    -------
    dict with ``output_rates`` (n_steps, n_out) recorded at the end of every step (after the membrane
    update, like ``LatentEquilibrium.output_rates()`` after ``step``), ``network`` (final
    LayeredNetwork), ``u`` and ``errors`` (final per-layer arrays).
    """
    import brian2 as b2

    if params.errors != "direct":
        raise ValueError(f"the Brian2 version implements errors='direct' only, got {params.errors!r}")
    if params.error_iterations != 1 or params.error_relaxation != 1.0 or params.eta_layer_factors:
        raise ValueError("the Brian2 version implements the explicit scheme only (error_iterations=1, "
                         "error_relaxation=1, eta_layer_factors=()); got "
                         f"{params.error_iterations}, {params.error_relaxation}, {params.eta_layer_factors}")
    inputs = np.atleast_2d(np.asarray(inputs, dtype=float))
    n_steps = inputs.shape[0]
    if inputs.shape[1] != network.sizes[0]:
        raise ValueError(f"inputs must have shape (n_steps, {network.sizes[0]}), got {inputs.shape}")
    if targets is None:
        targets = np.full((n_steps, network.sizes[-1]), np.nan)
    targets = np.asarray(targets, dtype=float)
    if targets.shape != (n_steps, network.sizes[-1]):
        raise ValueError(f"targets must have shape ({n_steps}, {network.sizes[-1]}), got {targets.shape}")
    target_on = (~np.isnan(targets).any(axis=1)).astype(float)

    b2.prefs.codegen.target = codegen_target
    dt = params.dt * b2.ms
    ns = {
        "tau": params.tau * b2.ms,
        "beta": params.beta,
        "eta": (params.eta if learn else 0.0) / b2.ms,
        "eta_bias": (params.eta_bias if learn else 0.0) / b2.ms,
        "input_values": b2.TimedArray(inputs, dt=dt),
        "target_values": b2.TimedArray(np.nan_to_num(targets), dt=dt),
        "target_on": b2.TimedArray(target_on, dt=dt),
    }
    net = b2.Network()
    source = b2.NeuronGroup(network.sizes[0], "r = input_values(t, i) : 1", namespace=ns, dt=dt, name="le_input")
    net.add(source)
    n = len(network.weights)
    groups, synapses = [], []
    for l in range(n):
        g = b2.NeuronGroup(network.sizes[l + 1], _neuron_equations(network.activation(l), params, l == n - 1),
                           method="euler", namespace=ns, dt=dt, name=f"le_layer{l + 1}")
        g.b = network.biases[l]
        syn_eqs = "dw/dt = eta * err_post * r_pre : 1 (clock-driven)\nI_ff_post = w * r_pre : 1 (summed)\n"
        if l:
            syn_eqs += "E_back_pre = w * m_post : 1 (summed)\n"
        pre = source if l == 0 else groups[-1]
        s = b2.Synapses(pre, g, syn_eqs, method="euler", namespace=ns, dt=dt, name=f"le_weights{l + 1}")
        s.connect()
        s.w = network.weights[l][s.j[:], s.i[:]]
        groups.append(g)
        synapses.append(s)
    # schedule: every sweep lives in 'before_groups', ordered explicitly; state updates in 'groups'
    order = 0
    for s in synapses:
        s.summed_updaters["I_ff_post"].when = "before_groups"
        s.summed_updaters["I_ff_post"].order = order
        order += 1
    error_ops = [groups[-1].run_regularly("err = beta * on * dr * (target - r)", when="before_groups",
                                          order=order, name="le_output_error")]
    order += 1
    for l in range(n - 2, -1, -1):
        upd = synapses[l + 1].summed_updaters["E_back_pre"]
        upd.when, upd.order = "before_groups", order
        error_ops.append(groups[l].run_regularly("err = dr * E_back", when="before_groups", order=order + 1,
                                                 name=f"le_error{l + 1}"))
        order += 2
    for s in synapses:
        s.state_updater.when, s.state_updater.order = "groups", 0
    for g in groups:
        g.state_updater.when, g.state_updater.order = "groups", 1
    monitor = b2.StateMonitor(groups[-1], "r", record=True, when="end", dt=dt)
    net.add(groups, synapses, error_ops, monitor)
    net.run(n_steps * dt, namespace={})
    weights = [np.zeros_like(w) for w in network.weights]
    for l, s in enumerate(synapses):
        weights[l][s.j[:], s.i[:]] = s.w[:]
    final = LayeredNetwork(weights, [np.asarray(g.b[:]) for g in groups], network.hidden, network.output)
    return {"output_rates": np.asarray(monitor.r[:]).T, "network": final,
            "u": [np.asarray(g.u[:]) for g in groups], "errors": [np.asarray(g.err[:]) for g in groups]}
