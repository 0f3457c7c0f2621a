"""Routes of benchmarks/sampling_speed.py: one function per way of simulating the same M x N networks.

All routes simulate the M independent networks as ONE block-diagonal network (one population of
M * N neurons, one excitatory and one inhibitory recurrent projection holding one synapse per nonzero
within-network weight, on the receptor of its sign, one noise object per receptor), which is how a
user runs many independent networks:

* ``package`` (backend ``nest``, ``brian2`` or ``brian2_standalone``): ``load_backend(name)`` +
  :func:`cortexsim.models.ensemble.build_ensemble` in ``"poisson"`` mode (the package's builder for M
  networks in one population; per-network spike trains are ``ensemble.blocks`` slices).
* ``native_nest``: ``nest.Create`` / ``nest.Connect`` of the same neurons (``iaf_cond_exp``), renewing
  synapses (``tsodyks2_synapse`` U=1) and ``poisson_generator`` noise.
* ``native_brian2`` (runtime or ``cpp_standalone``): the same neurons, renewing synapses and
  ``PoissonInput`` noise written directly in Brian2 as an expert would for speed (exponential Euler,
  dt 0.1 ms, PoissonInput with 100 sources, the renewing synapse with U = 1 folded in: weight and
  last spike time per synapse, one exp per event, synapses in source order, one delay value).
* ``plain_pynn_nest``: a PyNN script on PyNN's own ``pyNN.nest`` module with PyNN's
  ``SpikeSourcePoisson`` sources (relayed through parrot neurons) -- what a user gets without this
  package (renewing synapses through ``native_synapse_type("tsodyks2_synapse")``, since PyNN's
  ``TsodyksMarkramSynapse`` delivers nothing on NEST).

Each function returns build/compile/run/read/total wall times (s; total = the whole process, from the
first call to the spikes as arrays), ``cpu_s``: the CPU time of the timed run (s; this process, all its
threads, plus the compiled binaries it waited for), the load average at the end, and the spike count.
Run time excludes compilation: Brian2 routes first run 0.1 ms (compiling into a fresh project folder),
then time the run.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace

import numpy as np

from cortexsim.backends import load_backend
from cortexsim.backends.spikes import spike_arrays
from cortexsim.models.ensemble import DEFAULT_BACKGROUND, build_ensemble
from cortexsim.models.lif_translation import bm_to_lif
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE

WARM_UP_MS = 0.1
#: Poisson mode of build_ensemble without the initial kick (a SpikeSourceArray, not needed with noise).
POISSON_BACKGROUND = replace(DEFAULT_BACKGROUND, kick_ms=0.0)


def cpu_seconds() -> float:
    """CPU time (s) of this process (all threads) and its finished children (the compiled Brian2 binaries)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def block_pairs(bms, fit):
    """Leak potentials (mV) and the synapses of the block-diagonal network: one per nonzero weight.

    Returns ``leaks, excitatory, inhibitory`` with each synapse set ``(pre, post, weight (uS, > 0))``
    in source order: the synapses the package's builders create (only where W is nonzero, on the
    receptor of its sign).
    """
    leaks, exc, inh = [], [], []
    offset = 0
    for bm in bms:
        lif = bm_to_lif(bm, DEFAULT_NEURON, DEFAULT_NOISE, fit)
        leaks.append(lif.e_leak)
        for out, weights in ((exc, lif.excitatory_weights), (inh, lif.inhibitory_weights)):
            i, j = np.nonzero(weights > 0)
            out.append((i + offset, j + offset, weights[i, j]))
        offset += bm.n_units
    pack = lambda parts: tuple(np.concatenate([p[k] for p in parts]) for k in range(3))  # noqa: E731
    return np.concatenate(leaks), pack(exc), pack(inh)


def _finish(timestamps: dict, cpu: float, n_spikes: int, **extra) -> dict:
    """Wall times (s): build, compile (Brian2; warm-up run on the package), run, read (spikes to arrays,
    or to neo for plain PyNN), total = the whole process from the first call to the spikes in hand."""
    start, built, compiled, ran = (timestamps[k] for k in ("start", "built", "compiled", "ran"))
    read = timestamps.get("read", ran)
    outcome = {"build_s": built - start, "compile_s": compiled - built, "run_s": ran - compiled,
               "read_s": read - ran, "total_s": read - start, "cpu_s": cpu, "n_spikes": int(n_spikes)}
    outcome.update(extra)
    outcome["load_average"] = list(os.getloadavg())
    return outcome


def run_package(bms, fit, duration_ms, backend, seed, threads=1):
    """The package on ``backend``: build_ensemble (Poisson mode), warm-up run (Brian2), timed run."""
    sim = load_backend(backend)
    project_dir = None
    if backend == "brian2_standalone":  # fresh project folder: the first repeat compiles
        project_dir = tempfile.mkdtemp(prefix="sampling_speed_projects_")
        sim.set_project_root(project_dir)
    stamps = {"start": time.perf_counter()}
    sim.setup(timestep=0.1, seed=seed, **({"threads": threads} if backend == "nest" else {}))
    ensemble = build_ensemble(sim, bms, fit, mode="poisson", background=POISSON_BACKGROUND, seed=seed,
                              synapses="renewing")
    stamps["built"] = time.perf_counter()
    if backend != "nest":
        sim.run(WARM_UP_MS)
    stamps["compiled"], cpu_start = time.perf_counter(), cpu_seconds()
    sim.run(duration_ms)
    stamps["ran"], cpu = time.perf_counter(), cpu_seconds() - cpu_start
    _, indices = spike_arrays(ensemble.population)
    stamps["read"] = time.perf_counter()
    per_network = np.bincount(indices // ensemble.n_neurons, minlength=ensemble.n_networks)
    extra = {"n_networks_split": len(per_network), "threads": threads}
    if backend == "brian2_standalone":
        extra["compilations_so_far"] = sim.compilation_count()
    sim.end()
    return _finish(stamps, cpu, sum(per_network), **extra)


def run_native_nest(bms, fit, duration_ms, threads, seed):
    """The network in PyNEST: one iaf_cond_exp population, tsodyks2 synapses, poisson_generator noise."""
    import nest

    neuron = DEFAULT_NEURON
    stamps = {"start": time.perf_counter()}
    leaks, exc, inh = block_pairs(bms, fit)
    nest.ResetKernel()
    nest.set(resolution=0.1, local_num_threads=threads, rng_seed=seed, print_time=False)
    cells = nest.Create("iaf_cond_exp", leaks.size, params={
        "C_m": 1000.0 * neuron.cm, "g_L": 1000.0 * neuron.cm / neuron.tau_m, "E_L": leaks,
        "V_th": neuron.v_thresh, "V_reset": neuron.v_reset, "t_ref": neuron.tau_refrac,
        "tau_syn_ex": neuron.tau_syn_E, "tau_syn_in": neuron.tau_syn_I,
        "E_ex": neuron.e_rev_E, "E_in": neuron.e_rev_I, "V_m": leaks})
    ids = np.array(cells.tolist())
    for (pre, post, weights), sign, tau in ((exc, 1.0, neuron.tau_syn_E), (inh, -1.0, neuron.tau_syn_I)):
        nest.Connect(ids[pre], ids[post], "one_to_one",
                     {"synapse_model": "tsodyks2_synapse", "weight": sign * 1000.0 * weights,
                      "delay": np.full(pre.size, 0.1), "U": 1.0, "u": 1.0, "x": 1.0, "tau_rec": tau,
                      "tau_fac": 0.0})
    for rate, weight in ((DEFAULT_NOISE.rate_exc, DEFAULT_NOISE.weight_exc),
                         (DEFAULT_NOISE.rate_inh, -DEFAULT_NOISE.weight_inh)):
        generator = nest.Create("poisson_generator", params={"rate": rate})
        nest.Connect(generator, cells, "all_to_all", {"weight": 1000.0 * weight, "delay": 0.1})
    recorder = nest.Create("spike_recorder")
    nest.Connect(cells, recorder)
    stamps["built"] = stamps["compiled"] = time.perf_counter()
    cpu_start = cpu_seconds()
    nest.Simulate(duration_ms)
    stamps["ran"], cpu = time.perf_counter(), cpu_seconds() - cpu_start
    events = recorder.get("events")
    times, senders = np.asarray(events["times"]), np.asarray(events["senders"])
    stamps["read"] = time.perf_counter()
    return _finish(stamps, cpu, times.size, threads=threads, n_senders=int(np.unique(senders).size))


_NEURON_EQUATIONS = """
dv/dt = (g_l*(v_rest - v) + ge*(e_rev_E - v) + gi*(e_rev_I - v))/C_m : volt (unless refractory)
dge/dt = -ge/tau_syn_E : siemens
dgi/dt = -gi/tau_syn_I : siemens
v_rest : volt
"""
# Renewing synapse (Tsodyks-Markram with U = 1) written for speed: with U = 1 a spike uses all
# resources, so those available at the next spike are 1 - exp(-(t - t_last) / tau_rec); per synapse
# only the weight and the time of the last spike, one exp per event.
_RENEWING_SYNAPSE = """
weight : siemens (constant)
t_last : second
"""
_ON_PRE = """
{target} += weight * (1 - exp((t_last - t) / tau_rec))
t_last = t
"""


def run_native_brian2(bms, fit, duration_ms, standalone, seed):
    """The network in plain Brian2 (runtime with Cython, or cpp_standalone)."""
    import brian2 as b2

    neuron = DEFAULT_NEURON
    stamps = {"start": time.perf_counter()}
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
    leaks, exc, inh = block_pairs(bms, fit)
    namespace = {"g_l": neuron.g_l * b2.uS, "e_rev_E": neuron.e_rev_E * b2.mV, "e_rev_I": neuron.e_rev_I * b2.mV,
                 "C_m": neuron.cm * b2.nF, "tau_syn_E": neuron.tau_syn_E * b2.ms, "tau_syn_I": neuron.tau_syn_I * b2.ms,
                 "v_thresh": neuron.v_thresh * b2.mV, "v_reset": neuron.v_reset * b2.mV}
    group = b2.NeuronGroup(leaks.size, _NEURON_EQUATIONS, threshold="v > v_thresh", reset="v = v_reset",
                           refractory=neuron.tau_refrac * b2.ms, method="exponential_euler", namespace=namespace)
    group.v_rest = leaks * b2.mV
    group.v = leaks * b2.mV
    synapses = []
    for target, (pre, post, weights), tau in (("ge", exc, neuron.tau_syn_E), ("gi", inh, neuron.tau_syn_I)):
        syn = b2.Synapses(group, group, _RENEWING_SYNAPSE, on_pre=_ON_PRE.format(target=target),
                          delay=0.1 * b2.ms, namespace={"tau_rec": tau * b2.ms})
        syn.connect(i=pre, j=post)
        syn.weight = weights * b2.uS
        syn.t_last = -1e6 * b2.second
        synapses.append(syn)
    noise = [b2.PoissonInput(group, "ge", 100, DEFAULT_NOISE.rate_exc / 100 * b2.Hz, DEFAULT_NOISE.weight_exc * b2.uS),
             b2.PoissonInput(group, "gi", 100, DEFAULT_NOISE.rate_inh / 100 * b2.Hz, DEFAULT_NOISE.weight_inh * b2.uS)]
    monitor = b2.SpikeMonitor(group)
    network = b2.Network(group, *synapses, *noise, monitor)
    if standalone:
        network.run(duration_ms * b2.ms)
        stamps["built"] = time.perf_counter()
        device = b2.get_device()
        device.build(directory=directory, compile=True, run=False, with_output=False)
        stamps["compiled"], cpu_start = time.perf_counter(), cpu_seconds()
        device.run(directory=directory, with_output=False)
        stamps["ran"], cpu = time.perf_counter(), cpu_seconds() - cpu_start
        times, _indices = np.asarray(monitor.t_[:]), np.asarray(monitor.i[:])
        stamps["read"] = time.perf_counter()
        n_spikes = int(times.size)
        device.reinit()
        from brian2.devices.device import reset_device
        reset_device()
    else:
        stamps["built"] = time.perf_counter()
        network.run(WARM_UP_MS * b2.ms)
        stamps["compiled"], cpu_start = time.perf_counter(), cpu_seconds()
        network.run(duration_ms * b2.ms)
        stamps["ran"], cpu = time.perf_counter(), cpu_seconds() - cpu_start
        times, _indices = np.asarray(monitor.t_[:]), np.asarray(monitor.i[:])
        stamps["read"] = time.perf_counter()
        n_spikes = int(times.size)
    return _finish(stamps, cpu, n_spikes)


def run_plain_pynn_nest(bms, fit, duration_ms, threads, seed):
    """A plain PyNN script on ``pyNN.nest``: PyNN's ``SpikeSourcePoisson`` noise (parrot relays).

    Renewing synapses through ``native_synapse_type("tsodyks2_synapse")`` (weights in nS): PyNN's own
    ``TsodyksMarkramSynapse`` on NEST delivers no conductance (references section 7; measured here:
    ~6x fewer spikes), so a plain script needs NEST's synapse to simulate the same network.
    """
    import pyNN.nest as sim

    neuron = DEFAULT_NEURON
    stamps = {"start": time.perf_counter()}
    leaks, exc, inh = block_pairs(bms, fit)
    sim.setup(timestep=0.1, threads=threads, rng_seed=seed, verbosity="error")
    cell = neuron.as_pynn()
    cell["v_rest"] = leaks
    population = sim.Population(leaks.size, sim.IF_cond_exp(**cell), initial_values={"v": leaks})
    population.record("spikes")
    renewing = sim.native_synapse_type("tsodyks2_synapse")
    for (pre, post, weights), receptor, tau in ((exc, "excitatory", neuron.tau_syn_E),
                                                (inh, "inhibitory", neuron.tau_syn_I)):
        connections = np.column_stack([pre, post, 1000.0 * weights])
        sim.Projection(population, population, sim.FromListConnector(connections, column_names=["weight"]),
                       renewing(U=1.0, u=1.0, x=1.0, tau_rec=tau, tau_fac=0.0, delay=0.1), receptor_type=receptor)
    for rate, weight, receptor in ((DEFAULT_NOISE.rate_exc, DEFAULT_NOISE.weight_exc, "excitatory"),
                                   (DEFAULT_NOISE.rate_inh, DEFAULT_NOISE.weight_inh, "inhibitory")):
        sources = sim.Population(leaks.size, sim.SpikeSourcePoisson(rate=rate))
        sim.Projection(sources, population, sim.OneToOneConnector(), sim.StaticSynapse(weight=weight, delay=0.1),
                       receptor_type=receptor)
    stamps["built"] = stamps["compiled"] = time.perf_counter()
    cpu_start = cpu_seconds()
    sim.run(duration_ms)
    stamps["ran"], cpu = time.perf_counter(), cpu_seconds() - cpu_start
    n_spikes = sum(len(st) for st in population.get_data("spikes").segments[-1].spiketrains)
    stamps["read"] = time.perf_counter()
    sim.end()
    return _finish(stamps, cpu, n_spikes, threads=threads)


def median_entry(runs: dict, keys=("build_s", "compile_s", "run_s", "read_s", "total_s", "cpu_s")) -> dict:
    """Medians over repeats of package and native runs, and their ratios (package / native)."""
    entry = {"runs": runs}
    for key in keys:
        package = float(np.median([r[key] for r in runs["package"]]))
        native = float(np.median([r[key] for r in runs["native"]]))
        entry[key] = {"package": package, "native": native,
                      "ratio_package_over_native": package / native if native > 0 else None}
    return entry
