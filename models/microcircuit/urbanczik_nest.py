"""Urbanczik-Senn learning on NEST: ``pp_cond_exp_mc_urbanczik`` with ``urbanczik_synapse``.

NEST's own two-compartment model is the subject of this cross-check, so this module talks to pynest
directly (no PyNN). Mapping of :class:`~.urbanczik.UrbanczikNeuronParams` onto NEST:

* neuron: ``g_sp = g_D`` (dendrite-to-soma coupling), ``g_ps = 0``; per-compartment dictionaries
  ``soma`` and ``dendritic`` with ``C_m, g_L, E_L, E_ex, E_in, tau_syn_ex, tau_syn_in``;
* dendritic inputs: ``spike_generator`` -> ``parrot_neuron`` -> ``urbanczik_synapse`` on receptor
  ``dendritic_exc`` (the synapse's plasticity needs a neuron as source);
* teacher: one ``spike_generator`` per somatic receptor firing every time step with
  ``spike_weights = g_target(t) (1 - exp(-dt / tau_syn))``, so that the conductance (which decays with
  ``tau_syn`` and jumps by the weight) settles at ``g_target(t)``.

The neuron keeps NEST's adaptive RKF45 integration; the run is one ``Simulate`` call.
"""

from __future__ import annotations

from cortexsim.seeds import derive_seed

import time

import numpy as np

from cortexsim.models.microcircuit.urbanczik import (UrbanczikConfig, UrbanczikNeuronParams, UrbanczikResult,
                                                     frozen_input_pattern, prediction_error_per_repetition,
                                                     teacher_conductances)

__all__ = ["nest_neuron_parameters", "run_nest_urbanczik"]

NEST_MODEL = "pp_cond_exp_mc_urbanczik"


def nest_neuron_parameters(params: UrbanczikNeuronParams) -> dict:
    """Status dictionary of ``pp_cond_exp_mc_urbanczik`` for ``params``."""
    def compartment(C_m: float, g_L: float) -> dict:
        return {"V_m": params.E_L, "C_m": C_m, "g_L": g_L, "E_L": params.E_L, "E_ex": params.E_ex,
                "E_in": params.E_in, "tau_syn_ex": params.tau_syn, "tau_syn_in": params.tau_syn}

    return {"t_ref": params.t_ref, "g_sp": params.g_D, "g_ps": 0.0,
            "soma": compartment(params.C_soma, params.g_L_soma),
            "dendritic": compartment(params.C_dend, params.g_L_dend),
            "phi_max": params.phi_max, "rate_slope": params.rate_slope, "beta": params.beta,
            "theta": params.theta}


def _teacher_generator(nest, times: np.ndarray, targets: np.ndarray, jump: float):
    on = targets > 0
    return nest.Create("spike_generator", params={"spike_times": times[on],
                                                   "spike_weights": targets[on] * jump})


def run_nest_urbanczik(config: UrbanczikConfig, params: UrbanczikNeuronParams | None = None,
                       record_traces: bool = False) -> UrbanczikResult:
    """Run the protocol on NEST (1 thread) and return per-repetition prediction errors.

    Parameters
    ----------
    config : UrbanczikConfig
        Protocol; ``config.seed`` seeds the input pattern and NEST's ``rng_seed`` (``derive_seed(seed, 1)``).
    params : UrbanczikNeuronParams, optional
        Neuron and synapse parameters (NEST's example by default).
    record_traces : bool
        Keep the recorded traces (t, V_m.s, V_m.p, g_ex.s, g_in.s) in ``result.extra["traces"]``.
    """
    import nest

    params = params or UrbanczikNeuronParams()
    start = time.perf_counter()
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.resolution = config.dt
    nest.local_num_threads = 1
    nest.rng_seed = derive_seed(config.seed, 1)
    nest.print_time = False
    dt = config.dt

    neuron = nest.Create(NEST_MODEL, params=nest_neuron_parameters(params))
    receptors = nest.GetDefaults(NEST_MODEL)["receptor_types"]

    # frozen pattern repeated for every repetition, stored once in the generators
    pattern = frozen_input_pattern(config)
    n_reps = config.idle_before + config.n_repetitions + config.idle_after
    offsets = np.arange(n_reps) * config.pattern_ms
    generators = nest.Create("spike_generator", config.n_inputs)
    for gen, times in zip(generators, pattern):
        gen.spike_times = np.round((times[None, :] + offsets[:, None]).ravel(), 10)
    relays = nest.Create("parrot_neuron", config.n_inputs)
    nest.Connect(generators, relays, "one_to_one", {"delay": dt})
    nest.Connect(relays, neuron, "all_to_all",
                 {"synapse_model": "urbanczik_synapse", "receptor_type": receptors["dendritic_exc"],
                  "weight": params.w_init, "Wmin": params.w_min, "Wmax": params.w_max,
                  "eta": params.eta, "tau_Delta": params.tau_delta, "delay": dt})

    # teacher: one event per step; the event stamped t (delay dt) makes the conductance jump at the end
    # of the step ending at t + dt, so its weight is the target at t + dt
    step_times = np.round(np.arange(1, int(round(config.duration / dt))) * dt, 10)
    g_e_target, g_i_target = teacher_conductances(step_times + dt, config)
    jump = 1.0 - np.exp(-dt / params.tau_syn)
    teach_e = _teacher_generator(nest, step_times, g_e_target, jump)
    teach_i = _teacher_generator(nest, step_times, g_i_target, jump)
    nest.Connect(teach_e, neuron, syn_spec={"receptor_type": receptors["soma_exc"], "weight": 1.0, "delay": dt})
    nest.Connect(teach_i, neuron, syn_spec={"receptor_type": receptors["soma_inh"], "weight": 1.0, "delay": dt})

    meter = nest.Create("multimeter", params={"record_from": ["V_m.s", "V_m.p", "g_ex.s", "g_in.s"],
                                              "interval": dt})
    nest.Connect(meter, neuron)
    spikes = nest.Create("spike_recorder")
    nest.Connect(neuron, spikes)

    nest.Simulate(config.duration)
    wall = time.perf_counter() - start

    ev = meter.events
    rms, mean_abs = prediction_error_per_repetition(ev["times"], ev["V_m.p"], ev["g_ex.s"], ev["g_in.s"],
                                                    config, params)
    weights = np.asarray(nest.GetConnections(relays, neuron).get("weight"), dtype=float)
    extra = {"nest_version": nest.__version__, "integrator": "GSL RKF45 (adaptive)"}
    if record_traces:
        extra["traces"] = {k: np.asarray(ev[k]) for k in ("times", "V_m.s", "V_m.p", "g_ex.s", "g_in.s")}
    return UrbanczikResult(simulator="nest", config=config, params=params, errors_rms=rms,
                           errors_mean_abs=mean_abs, wall_s=wall, n_output_spikes=int(spikes.n_events),
                           final_weights=weights, extra=extra)
