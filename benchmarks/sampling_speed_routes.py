"""Further routes of benchmarks/sampling_speed.py: Brian2 (runtime and C++ standalone) and plain PyNN on NEST.

* ``package_brian2`` / ``package_brian2_standalone``: ``load_backend(name)`` + ``build_sampling_network``.
* ``native_brian2`` / ``native_brian2_standalone``: the same neurons (IF_cond_exp, exponential Euler),
  renewing synapses (Tsodyks-Markram U=1, event-driven), PoissonInput noise and spike monitor written
  directly in Brian2, in runtime mode and in ``cpp_standalone`` mode.
* ``plain_pynn_nest``: PyNN's own ``pyNN.nest`` module with PyNN's ``SpikeSourcePoisson`` sources
  (relayed through parrot neurons) and its own ``TsodyksMarkramSynapse`` -- what a user gets without
  this package.

Each function returns build/compile/run/total wall times (s), the CPU time of the timed run (s; this
process plus the compiled binaries it waited for) and the spike count. Run time excludes compilation:
Brian2 routes first run 0.1 ms (compiling or loading generated code), then time the run.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from cortexsim.backends import load_backend
from cortexsim.models.lif_translation import DEFAULT_NEURON, DEFAULT_NOISE, bm_to_lif
from cortexsim.models.sampling_network import build_sampling_network

WARM_UP_MS = 0.1


def cpu_seconds() -> float:
    """CPU time (s) of this process and its finished children (the compiled Brian2 binaries)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def run_package_brian2(bms, fit, duration_ms, backend, seed):
    sim = load_backend(backend)
    start = time.perf_counter()
    sim.setup(timestep=0.1, seed=seed)
    networks = [build_sampling_network(sim, bm, fit, DEFAULT_NEURON, DEFAULT_NOISE, "renewing", label=f"net{i}")
                for i, bm in enumerate(bms)]
    built = time.perf_counter()
    sim.run(WARM_UP_MS)
    warmed, cpu_start = time.perf_counter(), cpu_seconds()
    sim.run(duration_ms)
    ran, cpu = time.perf_counter(), cpu_seconds() - cpu_start
    n_spikes = sum(len(st) for net in networks for st in net.spiketrains())
    sim.end()
    return {"build_s": built - start, "compile_s": warmed - built, "run_s": ran - warmed,
            "total_s": ran - start, "cpu_s": cpu, "n_spikes": n_spikes}


_NEURON_EQUATIONS = """
dv/dt = (g_l*(v_rest - v) + ge*(e_rev_E - v) + gi*(e_rev_I - v))/C_m : volt (unless refractory)
dge/dt = -ge/tau_syn_E : siemens
dgi/dt = -gi/tau_syn_I : siemens
v_rest : volt
"""
_RENEWING_SYNAPSE = """
weight : siemens
x_tm : 1
t_last_tm : second
"""
_ON_PRE = """
x_tm = 1 - (1 - x_tm) * exp(-(t - t_last_tm) / tau_rec)
{target} += weight * x_tm
x_tm = 0
t_last_tm = t
"""


def run_native_brian2(bms, fit, duration_ms, standalone, seed):
    """The network in plain Brian2 (runtime or cpp_standalone)."""
    import brian2 as b2

    neuron = DEFAULT_NEURON
    start = time.perf_counter()
    directory = None
    if standalone:
        directory = tempfile.mkdtemp(prefix="native_standalone_")
        b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
        b2.prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]
    else:
        b2.prefs.codegen.target = "cython"
    b2.start_scope()
    b2.seed(seed)
    b2.defaultclock.dt = 0.1 * b2.ms
    n = sum(bm.n_units for bm in bms)
    namespace = {"g_l": neuron.g_l * b2.uS, "e_rev_E": neuron.e_rev_E * b2.mV, "e_rev_I": neuron.e_rev_I * b2.mV,
                 "C_m": neuron.cm * b2.nF, "tau_syn_E": neuron.tau_syn_E * b2.ms, "tau_syn_I": neuron.tau_syn_I * b2.ms,
                 "tau_rec": neuron.tau_syn_E * b2.ms, "v_thresh": neuron.v_thresh * b2.mV,
                 "v_reset": neuron.v_reset * b2.mV}
    group = b2.NeuronGroup(n, _NEURON_EQUATIONS, threshold="v > v_thresh", reset="v = v_reset",
                           refractory=neuron.tau_refrac * b2.ms, method="exponential_euler", namespace=namespace)
    e_leak = np.concatenate([bm_to_lif(bm, neuron, DEFAULT_NOISE, fit).e_leak for bm in bms])
    group.v_rest = e_leak * b2.mV
    group.v = e_leak * b2.mV
    pre, post, w_exc, w_inh = [], [], [], []
    offset = 0
    for bm in bms:
        lif = bm_to_lif(bm, neuron, DEFAULT_NOISE, fit)
        i, j = np.nonzero(~np.eye(bm.n_units, dtype=bool))
        pre.append(i + offset)
        post.append(j + offset)
        w_exc.append(lif.excitatory_weights[i, j])
        w_inh.append(lif.inhibitory_weights[i, j])
        offset += bm.n_units
    pre, post = np.concatenate(pre), np.concatenate(post)
    synapses = []
    for target, weights in (("ge", np.concatenate(w_exc)), ("gi", np.concatenate(w_inh))):
        syn = b2.Synapses(group, group, _RENEWING_SYNAPSE, on_pre=_ON_PRE.format(target=target),
                          delay=0.1 * b2.ms, namespace=namespace)
        syn.connect(i=pre, j=post)
        syn.weight = weights * b2.uS
        syn.x_tm = 1.0
        syn.t_last_tm = -1e6 * b2.second
        synapses.append(syn)
    noise = [b2.PoissonInput(group, "ge", 100, DEFAULT_NOISE.rate_exc / 100 * b2.Hz, DEFAULT_NOISE.weight_exc * b2.uS),
             b2.PoissonInput(group, "gi", 100, DEFAULT_NOISE.rate_inh / 100 * b2.Hz, DEFAULT_NOISE.weight_inh * b2.uS)]
    monitor = b2.SpikeMonitor(group)
    network = b2.Network(group, *synapses, *noise, monitor)
    if standalone:
        network.run(duration_ms * b2.ms)
        built = time.perf_counter()
        device = b2.get_device()
        device.build(directory=directory, compile=True, run=False, with_output=False)
        compiled, cpu_start = time.perf_counter(), cpu_seconds()
        device.run(directory=directory, with_output=False)
        ran, cpu = time.perf_counter(), cpu_seconds() - cpu_start
        n_spikes = int(monitor.num_spikes)
        device.reinit()
        from brian2.devices.device import reset_device
        reset_device()
    else:
        built = time.perf_counter()
        network.run(WARM_UP_MS * b2.ms)
        compiled, cpu_start = time.perf_counter(), cpu_seconds()
        network.run(duration_ms * b2.ms)
        ran, cpu = time.perf_counter(), cpu_seconds() - cpu_start
        n_spikes = int(monitor.num_spikes)
    return {"build_s": built - start, "compile_s": compiled - built, "run_s": ran - compiled,
            "total_s": ran - start, "cpu_s": cpu, "n_spikes": n_spikes}


def run_plain_pynn_nest(bms, fit, duration_ms, threads, seed):
    """PyNN's own NEST module: SpikeSourcePoisson noise (parrot relays), PyNN's TsodyksMarkramSynapse."""
    import pyNN.nest as sim

    from cortexsim.backends.noise import add_poisson_background

    start = time.perf_counter()
    sim.setup(timestep=0.1, threads=threads, rng_seed=seed, verbosity="error")
    networks = [build_sampling_network(sim, bm, fit, DEFAULT_NEURON, DEFAULT_NOISE, "renewing",
                                       label=f"net{i}", background=False) for i, bm in enumerate(bms)]
    for network in networks:  # pyNN.nest has no add_poisson_background: PyNN's SpikeSourcePoisson route
        add_poisson_background(sim, network.population, DEFAULT_NOISE)
    built, cpu_start = time.perf_counter(), cpu_seconds()
    sim.run(duration_ms)
    ran, cpu = time.perf_counter(), cpu_seconds() - cpu_start
    n_spikes = sum(len(st) for net in networks for st in net.spiketrains())
    sim.end()
    return {"build_s": built - start, "run_s": ran - built, "total_s": ran - start, "cpu_s": cpu,
            "n_spikes": n_spikes}


def median_entry(runs: dict, keys=("build_s", "compile_s", "run_s", "total_s", "cpu_s")) -> dict:
    """Medians over repeats of package and native runs, and their ratios (package / native)."""
    entry = {"runs": runs}
    for key in keys:
        if key not in runs["package"][0]:
            continue
        package = float(np.median([r[key] for r in runs["package"]]))
        native = float(np.median([r[key] for r in runs["native"]]))
        entry[key] = {"package": package, "native": native,
                      "ratio_package_over_native": package / native if native > 0 else None}
    return entry
