"""Urbanczik-Senn learning written as Brian2 equations (spiking two-compartment neuron).

The same model as NEST's ``pp_cond_exp_mc_urbanczik`` + ``urbanczik_synapse`` (see
:mod:`cortexsim.models.microcircuit.urbanczik` for the maths), expressed as one ``NeuronGroup`` and one
``Synapses`` object:

* the neuron integrates soma, dendrite, dendritic current and the teacher's conductances
  (first-order low-pass of the target conductances, a ``TimedArray``); it spikes with probability
  ``1 - exp(-phi(U) dt)`` per step outside a dead time ``t_ref``, without reset;
* every dendritic synapse carries its unit PSP (two clock-driven exponentials), the low-pass filtered
  plasticity signal ``Delta`` and the unclipped weight ``W``; the somatic spike train enters through
  the ``on_post`` pathway (``S(t)`` is a sum of delta functions), ``phi(V_w*)`` continuously::

      dDelta/dt = -(Delta + phi(V_w*) h(V_w*) PSP) / tau_Delta      (clock-driven)
      on_post:    Delta += h(V_w*) PSP / tau_Delta
      dW/dt     = eta_W Delta                                         (clock-driven)
      on_pre:     I_w += clip(W, w_min, w_max);  PSP_L += 1;  PSP_s += 1

Input spikes reach the dendrite one time step after the pattern time, which reproduces the timing of
NEST's generator -> parrot -> neuron chain (with plasticity off the dendritic potentials of the two
simulators then agree to ~1e-7 mV; measured). ``prefs.codegen.target`` is process-wide: :func:`run_brian2_urbanczik`
sets it only for its own run when asked and restores the previous value.
"""

from __future__ import annotations

from cortexsim.seeds import derive_seed

import time

import numpy as np

from cortexsim.models.microcircuit.urbanczik import (UrbanczikConfig, UrbanczikNeuronParams, UrbanczikResult,
                                                     frozen_input_pattern, prediction_error_per_repetition,
                                                     teacher_conductances, weight_update_scale)

__all__ = ["NEURON_EQUATIONS", "SYNAPSE_EQUATIONS", "ON_PRE", "ON_POST", "brian2_namespace",
           "run_brian2_urbanczik"]

NEURON_EQUATIONS = """
dU/dt = (-g_L_soma*(U - E_L) - g_E*(U - E_ex) - g_I*(U - E_in) + g_D*(V_w - U)) / C_soma : volt
dV_w/dt = (-g_L_dend*(V_w - E_L) + I_w) / C_dend : volt
dI_w/dt = -I_w / tau_syn : amp
dg_E/dt = (teacher_g_E(t) - g_E) / tau_syn : siemens
dg_I/dt = (teacher_g_I(t) - g_I) / tau_syn : siemens
V_star = (g_L_soma*E_L + g_D*V_w) / (g_L_soma + g_D) : volt
rate_U = phi_max / (1 + rate_slope*exp(beta*(theta - U))) : Hz
rate_star = phi_max / (1 + rate_slope*exp(beta*(theta - V_star))) : Hz
h_star = 15*beta / (1 + exp(-beta*(theta - V_star))/rate_slope) : 1/volt
"""

#: RK4: exponential Euler would hold I_w fixed over a step and overestimate the dendritic drive by
#: ~dt / (2 tau_syn) (1.7 %, ~0.3 mV); RK4 is stable here (fastest somatic time constant ~0.2 ms > dt / 2.8).
NEURON_METHOD = "rk4"

SPIKE_CONDITION = "rand() < 1 - exp(-rate_U*dt)"

SYNAPSE_EQUATIONS = """
dW/dt = eta_W * Delta : amp (clock-driven)
dDelta/dt = -(Delta + rate_star_post*h_star_post*psp) / tau_delta : hertz/volt (clock-driven)
dpsp_L/dt = -psp_L / tau_L : 1 (clock-driven)
dpsp_s/dt = -psp_s / tau_syn : 1 (clock-driven)
psp = psp_L - psp_s : 1
"""

ON_PRE = "I_w_post += clip(W, w_min, w_max)\npsp_L += 1\npsp_s += 1"
ON_POST = "Delta += h_star_post*psp/tau_delta"


def brian2_namespace(params: UrbanczikNeuronParams) -> dict:
    """Brian2 quantities (with units) of ``params`` used by the equations."""
    import brian2 as b2

    ms, mV, pF, nS, pA = b2.ms, b2.mV, b2.pF, b2.nS, b2.pA
    return {"C_soma": params.C_soma * pF, "C_dend": params.C_dend * pF, "g_L_soma": params.g_L_soma * nS,
            "g_L_dend": params.g_L_dend * nS, "g_D": params.g_D * nS, "E_L": params.E_L * mV,
            "E_ex": params.E_ex * mV, "E_in": params.E_in * mV, "tau_syn": params.tau_syn * ms,
            "tau_L": params.tau_L * ms, "phi_max": params.phi_max / ms, "rate_slope": params.rate_slope,
            "beta": params.beta / mV, "theta": params.theta * mV, "tau_delta": params.tau_delta * ms,
            "eta_W": weight_update_scale(params) * pA * mV, "w_min": params.w_min * pA,
            "w_max": params.w_max * pA}


def run_brian2_urbanczik(config: UrbanczikConfig, params: UrbanczikNeuronParams | None = None,
                         codegen_target: str | None = None, record_traces: bool = False) -> UrbanczikResult:
    """Run the protocol as Brian2 equations and return per-repetition prediction errors.

    Parameters
    ----------
    config : UrbanczikConfig
        Protocol; the same ``seed`` gives the same input pattern as on NEST and seeds Brian2's
        random numbers (``brian2.seed(derive_seed(seed, 2))``, which also reseeds numpy's global generator).
    params : UrbanczikNeuronParams, optional
        Neuron and synapse parameters (NEST's example by default).
    codegen_target : str, optional
        "numpy" or "cython" for this run only (the previous process-wide value is restored);
        None keeps the current preference.
    record_traces : bool
        Keep (t, U, V_w, g_E, g_I) in ``result.extra["traces"]``.
    """
    import brian2 as b2

    if codegen_target not in (None, "numpy", "cython"):
        raise ValueError(f"codegen_target must be None, 'numpy' or 'cython', got {codegen_target!r}")
    params = params or UrbanczikNeuronParams()
    previous_target = b2.prefs.codegen.target
    try:
        if codegen_target is not None:
            b2.prefs.codegen.target = codegen_target
        return _run(b2, config, params, record_traces)
    finally:
        b2.prefs.codegen.target = previous_target


def _run(b2, config: UrbanczikConfig, params: UrbanczikNeuronParams, record_traces: bool) -> UrbanczikResult:
    ms, mV, nS, pA = b2.ms, b2.mV, b2.nS, b2.pA
    start = time.perf_counter()
    b2.seed(derive_seed(config.seed, 2))
    step = config.dt * ms
    namespace = brian2_namespace(params)

    n_steps = int(round(config.duration / config.dt))
    # the step [t, t + dt) relaxes towards the target at its end, t + dt (as NEST's per-step jumps)
    g_e, g_i = teacher_conductances((np.arange(n_steps) + 1) * config.dt, config)
    namespace["teacher_g_E"] = b2.TimedArray(g_e * nS, dt=step)
    namespace["teacher_g_I"] = b2.TimedArray(g_i * nS, dt=step)

    neuron = b2.NeuronGroup(1, NEURON_EQUATIONS, threshold=SPIKE_CONDITION, refractory=params.t_ref * ms,
                            method=NEURON_METHOD, namespace=namespace, dt=step, name="urbanczik_neuron")
    neuron.U = params.E_L * mV
    neuron.V_w = params.E_L * mV

    pattern = frozen_input_pattern(config)
    indices = np.concatenate([np.full(t.size, i) for i, t in enumerate(pattern)])
    times = np.concatenate(pattern)
    inputs = b2.SpikeGeneratorGroup(config.n_inputs, indices, times * ms, period=config.pattern_ms * ms,
                                    dt=step, name="frozen_pattern")
    synapses = b2.Synapses(inputs, neuron, SYNAPSE_EQUATIONS, on_pre=ON_PRE, on_post=ON_POST,
                           method="exponential_euler", namespace=namespace, dt=step, name="urbanczik_synapses")
    synapses.connect()
    synapses.pre.delay = step
    synapses.W = params.w_init * pA

    # values at the end of each step, stamped with the end time (as NEST's multimeter)
    state = b2.StateMonitor(neuron, ["U", "V_w", "g_E", "g_I"], record=0, dt=step, when="end", name="traces")
    spikes = b2.SpikeMonitor(neuron, name="output_spikes")
    net = b2.Network(neuron, inputs, synapses, state, spikes)
    net.run(config.duration * ms)
    wall = time.perf_counter() - start

    t = np.asarray(state.t / ms) + config.dt
    v_w = np.asarray(state.V_w[0] / mV)
    rms, mean_abs = prediction_error_per_repetition(t, v_w, state.g_E[0] / nS, state.g_I[0] / nS, config, params)
    weights = np.clip(np.asarray(synapses.W / pA), params.w_min, params.w_max)
    # the target actually used ("auto" resolves to cython when a compiler works, else numpy)
    used = type(neuron.state_updater.codeobj).__name__.replace("CodeObject", "").lower() or "unknown"
    extra = {"brian2_version": b2.__version__, "codegen_target": used,
             "integrator": f"neuron {NEURON_METHOD}, synapses exponential Euler, fixed dt"}
    if record_traces:
        extra["traces"] = {"times": t, "U": np.asarray(state.U[0] / mV), "V_w": v_w,
                           "g_E": np.asarray(state.g_E[0] / nS), "g_I": np.asarray(state.g_I[0] / nS)}
    return UrbanczikResult(simulator=f"brian2 ({used})", config=config, params=params,
                           errors_rms=rms, errors_mean_abs=mean_abs, wall_s=wall,
                           n_output_spikes=int(spikes.num_spikes), final_weights=weights, extra=extra)
