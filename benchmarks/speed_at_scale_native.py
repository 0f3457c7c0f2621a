"""Native reference scripts of benchmarks/speed_at_scale.py: the MNIST-sized RBM written directly in Brian2/NEST.

The network is the one the package builds for an RBM (see :func:`rbm_problem`): ``n_visible +
n_hidden`` conductance-based LIF neurons (default parameter set, leak potentials from the biases),
renewing synapses (Tsodyks-Markram with U = 1, tau_rec = tau_syn, no facilitation) on every
visible-hidden pair in both directions, excitatory or inhibitory by the sign of the weight, delay one
time step, independent 3 kHz excitatory and inhibitory Poisson input per neuron, spikes recorded.

What an experienced user would write by hand for speed:

* ``native_standalone_rbm``: Brian2 ``cpp_standalone``; one synapse per nonzero pair, connected in
  source order; lean renewing synapse (U = 1 folded in: per synapse only the weight and the time of
  the last spike, ``tau_rec`` a constant, one ``exp`` per event), a homogeneous delay, ``PoissonInput``
  noise (100 sources, as in the package).
* ``NativeStandaloneCD``: a whole CD iteration (clamped images, each a leak-potential pattern, then
  the free phase) as ONE launch of the compiled binary: the leak potentials come from a
  ``TimedArray`` (applied by a ``run_regularly`` operation on the schedule's grid), and the schedule
  and the weights are run arguments, so one compilation serves every iteration; spikes are read as
  arrays.
* ``native_nest_rbm``: PyNEST, ``iaf_cond_exp``, one ``tsodyks2_synapse`` per nonzero pair (receptor
  by sign), ``poisson_generator`` noise, one ``spike_recorder``.

Times: ``build_s`` (Python-side network construction), ``compile_s`` (code generation and C++
compilation), ``run_s`` (the simulation), ``read_s`` (spikes to numpy arrays), ``total_s``.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cortexsim.models.boltzmann import BoltzmannMachine
from cortexsim.models.lif_translation import bm_to_lif
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit

#: Activation function of the default parameter set (references §1, measured on NEST).
FIT = ActivationFit(v_p05=-50.61, alpha=0.82)
POISSON_SOURCES = 100
DT_MS = 0.1


def cpu_seconds() -> float:
    """CPU time (s) of this process (all threads) and its finished children (compiled binaries)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def own_cpu_seconds() -> float:
    """CPU time (s) of this process alone (all threads), without its children."""
    times = os.times()
    return times.user + times.system


def scheduling() -> dict:
    """How this process is scheduled: its nice value and, where the kernel groups processes by
    session (autogroup; then a process's nice value counts only within its session), its autogroup."""
    out = {"nice": os.nice(0)}
    try:
        out["autogroup"] = Path("/proc/self/autogroup").read_text().strip()
        out["autogroup_enabled"] = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        pass
    return out


def rbm_problem(n_visible: int = 794, n_hidden: int = 500, seed: int = 1, weight_std: float = 0.1,
                bias_std: float = 0.5) -> BoltzmannMachine:
    """A random RBM as a BoltzmannMachine: W_vh ~ N(0, weight_std^2) (symmetric, bipartite), b ~ N(0, bias_std^2)."""
    rng = np.random.default_rng(seed)
    n = n_visible + n_hidden
    W = np.zeros((n, n))
    W[:n_visible, n_visible:] = rng.normal(0.0, weight_std, (n_visible, n_hidden))
    W = W + W.T
    return BoltzmannMachine(W=W, b=rng.normal(0.0, bias_std, n))


def nonzero_pairs(weights: np.ndarray):
    """Source-ordered (pre, post) of positive and of negative entries of a (n_pre, n_post) weight matrix."""
    exc = np.nonzero(weights > 0)  # np.nonzero is row-major: sorted by source, then target
    inh = np.nonzero(weights < 0)
    return exc, inh


_NEURON = """
dv/dt = (g_l*(v_rest - v) + ge*(e_rev_E - v) + gi*(e_rev_I - v))/C_m : volt (unless refractory)
dge/dt = -ge/tau_syn_E : siemens
dgi/dt = -gi/tau_syn_I : siemens
v_rest : volt
"""
_LEAN_SYNAPSE = "weight : siemens (constant)\nt_last : second"
_LEAN_ON_PRE = "{target} += weight * (1 - exp((t_last - t) / tau_rec))\nt_last = t"


def _brian2_network(b2, leaks, lif_weights, seed, leak_table=None, table_dt_ms=None):
    """Objects of the native Brian2 network (device already selected). Returns (objects, group, synapses, monitor)."""
    neuron = DEFAULT_NEURON
    namespace = {"g_l": neuron.g_l * b2.uS, "e_rev_E": neuron.e_rev_E * b2.mV, "e_rev_I": neuron.e_rev_I * b2.mV,
                 "C_m": neuron.cm * b2.nF, "tau_syn_E": neuron.tau_syn_E * b2.ms,
                 "tau_syn_I": neuron.tau_syn_I * b2.ms, "v_thresh": neuron.v_thresh * b2.mV,
                 "v_reset": neuron.v_reset * b2.mV, "cortexsim_leaks": leak_table}
    group = b2.NeuronGroup(leaks.size, _NEURON, threshold="v > v_thresh", reset="v = v_reset",
                           refractory=neuron.tau_refrac * b2.ms, method="exponential_euler", namespace=namespace)
    group.v_rest = leaks * b2.mV
    group.v = leaks * b2.mV
    objects = [group]
    if leak_table is not None:
        objects.append(group.run_regularly("v_rest = cortexsim_leaks(t, i)", dt=table_dt_ms * b2.ms, when="start"))
    (ei, ej), (ii, ij) = nonzero_pairs(lif_weights)
    synapses = []
    for target, (i, j), tau in (("ge", (ei, ej), neuron.tau_syn_E), ("gi", (ii, ij), neuron.tau_syn_I)):
        syn = b2.Synapses(group, group, _LEAN_SYNAPSE, on_pre=_LEAN_ON_PRE.format(target=target),
                          delay=DT_MS * b2.ms, namespace={"tau_rec": tau * b2.ms})
        syn.connect(i=i, j=j)
        syn.weight = np.abs(lif_weights[i, j]) * b2.uS
        syn.t_last = -1e6 * b2.second
        synapses.append(syn)
    noise = [b2.PoissonInput(group, "ge", POISSON_SOURCES, DEFAULT_NOISE.rate_exc / POISSON_SOURCES * b2.Hz,
                             DEFAULT_NOISE.weight_exc * b2.uS),
             b2.PoissonInput(group, "gi", POISSON_SOURCES, DEFAULT_NOISE.rate_inh / POISSON_SOURCES * b2.Hz,
                             DEFAULT_NOISE.weight_inh * b2.uS)]
    monitor = b2.SpikeMonitor(group)
    return objects + synapses + noise + [monitor], group, synapses, monitor


def _reset_standalone(b2):
    from brian2.devices.device import reset_device

    b2.get_device().reinit()
    reset_device()


def native_standalone_rbm(bm: BoltzmannMachine, duration_ms: float, seed: int, fit: ActivationFit = FIT) -> dict:
    """Sample from ``bm`` for ``duration_ms`` with a native cpp_standalone script; timings and spike count."""
    import brian2 as b2

    stamps = {"start": time.perf_counter()}
    directory = tempfile.mkdtemp(prefix="native_rbm_")
    b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
    b2.prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]
    try:
        b2.start_scope()
        b2.seed(seed)
        b2.defaultclock.dt = DT_MS * b2.ms
        lif = bm_to_lif(bm, DEFAULT_NEURON, DEFAULT_NOISE, fit)
        objects, _, synapses, monitor = _brian2_network(b2, lif.e_leak, lif.weights, seed)
        network = b2.Network(*objects)
        network.run(duration_ms * b2.ms)
        stamps["built"] = time.perf_counter()
        device = b2.get_device()
        device.build(directory=directory, compile=True, run=False, with_output=False)
        stamps["compiled"], cpu_start = time.perf_counter(), cpu_seconds()
        device.run(directory=directory, with_output=False)
        stamps["ran"], cpu = time.perf_counter(), cpu_seconds() - cpu_start
        times, _indices = np.asarray(monitor.t[:] / b2.ms), np.asarray(monitor.i[:])
        stamps["read"] = time.perf_counter()
        n_synapses = sum(len(s) for s in synapses)
    finally:
        _reset_standalone(b2)
    return _timings(stamps, cpu, times.size, n_synapses=n_synapses)


def _timings(stamps: dict, cpu: float, n_spikes: int, **extra) -> dict:
    out = {"build_s": stamps["built"] - stamps["start"], "compile_s": stamps["compiled"] - stamps["built"],
           "run_s": stamps["ran"] - stamps["compiled"], "read_s": stamps["read"] - stamps["ran"],
           "total_s": stamps["read"] - stamps["start"], "cpu_s": cpu, "n_spikes": int(n_spikes)}
    out.update(extra)
    out["load_average"] = list(os.getloadavg())
    return out


def native_nest_rbm(bm: BoltzmannMachine, duration_ms: float, seed: int, fit: ActivationFit = FIT,
                    threads: int = 1) -> dict:
    """Sample from ``bm`` for ``duration_ms`` with a native PyNEST script; timings, spike count, peak memory."""
    import nest

    neuron = DEFAULT_NEURON
    stamps = {"start": time.perf_counter()}
    lif = bm_to_lif(bm, DEFAULT_NEURON, DEFAULT_NOISE, fit)
    nest.ResetKernel()
    nest.set(resolution=DT_MS, local_num_threads=threads, rng_seed=seed, print_time=False)
    cells = nest.Create("iaf_cond_exp", lif.e_leak.size, params={
        "C_m": 1000.0 * neuron.cm, "g_L": 1000.0 * neuron.cm / neuron.tau_m, "E_L": lif.e_leak,
        "V_th": neuron.v_thresh, "V_reset": neuron.v_reset, "t_ref": neuron.tau_refrac,
        "tau_syn_ex": neuron.tau_syn_E, "tau_syn_in": neuron.tau_syn_I,
        "E_ex": neuron.e_rev_E, "E_in": neuron.e_rev_I, "V_m": lif.e_leak})
    ids = np.array(cells.tolist())
    (ei, ej), (ii, ij) = nonzero_pairs(lif.weights)
    for (i, j), tau in (((ei, ej), neuron.tau_syn_E), ((ii, ij), neuron.tau_syn_I)):
        nest.Connect(ids[i], ids[j], "one_to_one",
                     {"synapse_model": "tsodyks2_synapse", "weight": 1000.0 * lif.weights[i, j],
                      "delay": np.full(i.size, DT_MS), "U": 1.0, "u": 1.0, "x": 1.0, "tau_rec": tau,
                      "tau_fac": 0.0})
    for rate, weight in ((DEFAULT_NOISE.rate_exc, DEFAULT_NOISE.weight_exc),
                         (DEFAULT_NOISE.rate_inh, -DEFAULT_NOISE.weight_inh)):
        generator = nest.Create("poisson_generator", params={"rate": rate})
        nest.Connect(generator, cells, "all_to_all", {"weight": 1000.0 * weight, "delay": DT_MS})
    recorder = nest.Create("spike_recorder")
    nest.Connect(cells, recorder)
    stamps["built"] = stamps["compiled"] = time.perf_counter()
    cpu_start = cpu_seconds()
    nest.Simulate(duration_ms)
    stamps["ran"], cpu = time.perf_counter(), cpu_seconds() - cpu_start
    events = recorder.get("events")
    times, _senders = np.asarray(events["times"]), np.asarray(events["senders"])
    stamps["read"] = time.perf_counter()
    return _timings(stamps, cpu, times.size, n_synapses=int(ei.size + ii.size), threads=threads)


@dataclass
class CDSchedule:
    """One CD iteration: ``n_images`` clamped phases of ``clamp_ms`` each (``settle_ms`` discarded), then ``model_ms`` free."""

    n_images: int = 10
    clamp_ms: float = 60.0
    settle_ms: float = 20.0
    model_ms: float = 400.0
    clamp_bias: float = 40.0
    readout_dt_ms: float = 1.0

    @property
    def duration_ms(self) -> float:
        return self.n_images * self.clamp_ms + self.model_ms

    @property
    def grid_ms(self) -> float:
        """Common grid of the phase boundaries (ms)."""
        steps = np.gcd(int(round(self.clamp_ms / DT_MS)), int(round(self.model_ms / DT_MS)))
        return float(steps * DT_MS)

    def leak_table(self, e_leak: np.ndarray, images: np.ndarray, n_visible: int, fit: ActivationFit) -> np.ndarray:
        """Leak potentials (mV) per grid step (rows) and neuron (columns) over the iteration."""
        grid = self.grid_ms
        rows_per_image, rows_model = int(round(self.clamp_ms / grid)), int(round(self.model_ms / grid))
        table = np.repeat(e_leak[None, :], self.n_images * rows_per_image + rows_model, axis=0)
        clamped = fit.v_p05 + fit.alpha * self.clamp_bias * (2.0 * images - 1.0)
        for k in range(self.n_images):
            table[k * rows_per_image:(k + 1) * rows_per_image, :n_visible] = clamped[k]
        return table


def states_from_arrays(times_ms: np.ndarray, ids: np.ndarray, n: int, tau_ref: float, t_start: float,
                       t_stop: float, dt: float) -> np.ndarray:
    """Binary states (n_steps, n) on the grid ``t_start + k dt``: z = 1 iff a spike in (t - tau_ref, t]."""
    n_steps = int(np.floor((t_stop - t_start) / dt * (1 + 1e-12)))
    states = np.zeros((n_steps + 1, n), dtype=np.int16)
    # a spike at s turns the state on at the first grid point >= s, off at the first one >= s + tau_ref
    on = np.clip(np.ceil((times_ms - t_start) / dt - 1e-9).astype(int), 0, n_steps)
    off = np.clip(np.ceil((times_ms + tau_ref - t_start) / dt - 1e-9).astype(int), 0, n_steps)
    np.add.at(states, (on, ids), 1)
    np.add.at(states, (off, ids), -1)
    return (np.cumsum(states[:-1], axis=0) > 0).astype(np.float32)


class NativeStandaloneCD:
    """CD iterations of an RBM on a native cpp_standalone binary: one launch per iteration.

    Compiled once (``compile_s``); each :meth:`iteration` passes leak schedule and weights as run
    arguments, runs, reads spikes as arrays, computes data and model moments of the visible-hidden
    block on the read-out grid and returns the CD update of W_vh and b.
    """

    def __init__(self, bm: BoltzmannMachine, n_visible: int, schedule: CDSchedule, seed: int, fit: ActivationFit = FIT):
        import brian2 as b2

        self.b2, self.schedule, self.fit, self.n_visible, self.seed = b2, schedule, fit, n_visible, seed
        stamps = {"start": time.perf_counter()}
        self.directory = tempfile.mkdtemp(prefix="native_cd_")
        b2.set_device("cpp_standalone", directory=self.directory, build_on_run=False)
        b2.prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]
        b2.start_scope()
        b2.seed(seed)
        b2.defaultclock.dt = DT_MS * b2.ms
        lif = bm_to_lif(bm, DEFAULT_NEURON, DEFAULT_NOISE, fit)
        images = np.zeros((schedule.n_images, n_visible))
        table = schedule.leak_table(lif.e_leak, images, n_visible, fit)
        self.timed_array = b2.TimedArray(table * b2.mV, dt=schedule.grid_ms * b2.ms)
        # every pair of the bipartite mask gets a synapse on both receptors (the weights cross zero in training)
        self.mask_pairs = np.nonzero(bm.W != 0)
        objects, self.group, self.synapses, self.monitor = self._build(lif)
        network = b2.Network(*objects)
        network.run(schedule.duration_ms * b2.ms)
        self.build_s = time.perf_counter() - stamps["start"]
        tic = time.perf_counter()
        b2.get_device().build(directory=self.directory, compile=True, run=False, with_output=False)
        self.compile_s = time.perf_counter() - tic
        self.runs = 0

    def _build(self, lif):
        b2, neuron = self.b2, DEFAULT_NEURON
        namespace = {"g_l": neuron.g_l * b2.uS, "e_rev_E": neuron.e_rev_E * b2.mV,
                     "e_rev_I": neuron.e_rev_I * b2.mV, "C_m": neuron.cm * b2.nF,
                     "tau_syn_E": neuron.tau_syn_E * b2.ms, "tau_syn_I": neuron.tau_syn_I * b2.ms,
                     "v_thresh": neuron.v_thresh * b2.mV, "v_reset": neuron.v_reset * b2.mV,
                     "cortexsim_leaks": self.timed_array}
        group = b2.NeuronGroup(lif.e_leak.size, _NEURON, threshold="v > v_thresh", reset="v = v_reset",
                               refractory=neuron.tau_refrac * b2.ms, method="exponential_euler", namespace=namespace)
        group.v = lif.e_leak * b2.mV
        regular = group.run_regularly("v_rest = cortexsim_leaks(t, i)", dt=self.schedule.grid_ms * b2.ms,
                                      when="start")
        i, j = self.mask_pairs
        # one synapse per pair, weight signed: positive -> ge, negative -> gi (one event, one exp)
        syn = b2.Synapses(group, group, "weight : siemens (constant)\nt_last : second",
                          on_pre="x_release = 1 - exp((t_last - t) / tau_rec)\n"
                                 "ge += clip(weight, 0*siemens, inf*siemens) * x_release\n"
                                 "gi += clip(-weight, 0*siemens, inf*siemens) * x_release\nt_last = t",
                          delay=DT_MS * b2.ms, namespace={"tau_rec": neuron.tau_syn_E * b2.ms, "inf": np.inf})
        syn.connect(i=i, j=j)
        syn.weight = lif.weights[i, j] * b2.uS
        syn.t_last = -1e6 * b2.second
        noise = [b2.PoissonInput(group, "ge", POISSON_SOURCES, DEFAULT_NOISE.rate_exc / POISSON_SOURCES * b2.Hz,
                                 DEFAULT_NOISE.weight_exc * b2.uS),
                 b2.PoissonInput(group, "gi", POISSON_SOURCES, DEFAULT_NOISE.rate_inh / POISSON_SOURCES * b2.Hz,
                                 DEFAULT_NOISE.weight_inh * b2.uS)]
        monitor = b2.SpikeMonitor(group)
        return [group, regular, syn] + noise + [monitor], group, [syn], monitor

    def iteration(self, bm: BoltzmannMachine, images: np.ndarray) -> dict:
        """One CD iteration with ``bm`` on ``images`` (n_images, n_visible); returns gradients and timings."""
        b2, schedule = self.b2, self.schedule
        t0 = time.perf_counter()
        lif = bm_to_lif(bm, DEFAULT_NEURON, DEFAULT_NOISE, self.fit)
        i, j = self.mask_pairs
        table = schedule.leak_table(lif.e_leak, images, self.n_visible, self.fit)
        run_args = {self.synapses[0].weight: lif.weights[i, j] * b2.uS, self.timed_array: table * b2.mV,
                    self.group.v: lif.e_leak * b2.mV}
        t1 = time.perf_counter()
        b2.get_device().run(directory=self.directory, with_output=False, run_args=run_args)
        t2 = time.perf_counter()
        times, ids = np.asarray(self.monitor.t_[:]) * 1e3, np.asarray(self.monitor.i[:])
        t3 = time.perf_counter()
        n, nv = lif.e_leak.size, self.n_visible
        states = states_from_arrays(times, ids, n, DEFAULT_NEURON.tau_refrac, 0.0, schedule.duration_ms,
                                    schedule.readout_dt_ms)
        rows = int(round(schedule.clamp_ms / schedule.readout_dt_ms))
        settle = int(round(schedule.settle_ms / schedule.readout_dt_ms))
        data = np.concatenate([states[k * rows + settle:(k + 1) * rows] for k in range(schedule.n_images)])
        for k in range(schedule.n_images):
            data[k * (rows - settle):(k + 1) * (rows - settle), :nv] = images[k]
        model = states[schedule.n_images * rows:]
        grad_W = (data[:, :nv].T @ data[:, nv:]) / data.shape[0] - (model[:, :nv].T @ model[:, nv:]) / model.shape[0]
        grad_b = data.mean(axis=0) - model.mean(axis=0)
        t4 = time.perf_counter()
        self.runs += 1
        return {"grad_W_vh": grad_W, "grad_b": grad_b, "n_spikes": int(times.size),
                "timing": {"prepare_s": t1 - t0, "run_s": t2 - t1, "read_s": t3 - t2, "statistics_s": t4 - t3,
                           "total_s": t4 - t0}}

    def close(self) -> None:
        _reset_standalone(self.b2)
