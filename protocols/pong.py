"""Pong learned with reward-modulated STDP, on the emulated BrainScaleS-2 chip or on NEST.

    cortexsim pong --backend brainscales --seed 1 --iterations 2000 --chip-seed 0 --out out/pong
    cortexsim pong --backend nest --seed 1 --iterations 2000 --out out/pong_nest

The task of Wunderlich et al. 2019 (Front. Neurosci. 13:260): a one-player game of Pong
(:class:`~cortexsim.models.pong_game.PongGame`, 32 rows); in every iteration the input neuron of the
ball's row fires a regular train (20 spikes, 10 ms apart in biological time), 32 output neurons with
all-to-all input synapses compete, the most active one names the row the paddle moves to, and the
synapses of the active input row learn with R-STDP (:mod:`cortexsim.models.rstdp`: bare reward by the
winner's distance to the ball's row, success = reward minus that row's running mean reward, weight
change = learning rate x success x causal correlation). Two routes:

``brainscales`` (the emulated chip)
    BrainScaleS-2's own PyNN dialect (:mod:`cortexsim.backends.brainscales2`): uncalibrated neuron
    circuits (``HXNeuron``, one configuration for all, so every circuit keeps its fixed-pattern
    noise), 6-bit weights, exploration noise from the chip's on-chip Poisson generators, and the
    learning rule as a plasticity kernel that runs at the end of every iteration
    (``Timer(start, period, num_periods)``): it reads the rate counters (winner), the reward the
    experiment wrote for every possible winner (``rule.reward``), the causal correlation sensors of
    the active row, and writes the new 6-bit weights. Before training, each neuron's excitability is
    measured (spikes per iteration with equal probe weights); the learned weights of the target
    synapses (input row i -> output i) are compared with it (Pearson r; learning compensates
    fixed-pattern noise when r < 0).
``nest`` (the software reference)
    PyNN on NEST following NEST 3.10's Pong example (``nest/doc/examples/pynest/pong``: ``iaf_psc_exp``
    neurons with NEST's default parameters, Gaussian white noise current of 220 pA, input weights
    1300 pA, STDP trace amplitude 36, time constant 64 ms, saturation 128 with next-neighbour
    pairing, learning rate 0.7, mean reward starting at 0), written anew for PyNN with 32 x 32 neurons.

Both routes play the same game from the same seed; the result records the bare reward of every
iteration, the weights, the timing and the energy model
(:func:`cortexsim.backends.energy.chip_energy` from the emulated hardware time,
:func:`~cortexsim.backends.energy.software_energy` from the measured CPU time).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cortexsim.results import library_versions, machine_info, output_dir, write_results

from ..analysis.pong import plot_reward_curves, plot_weight_matrix, plot_weights_vs_excitability, running_mean
from ..backends.energy import DEFAULT_CPU_POWER_W_PER_CORE, chip_energy, energy_per_unit, software_energy
from ..models.pong_game import PongGame
from ..models.rstdp import MeanReward, reward_table, rstdp_update, winner

__all__ = ["PongConfig", "PongResult", "NestPongParameters", "ChipPongParameters", "PongKernel", "run",
           "ROUTES", "BACKENDS"]

logger = logging.getLogger(__name__)

#: The backends this protocol runs on (their agents are in :data:`ROUTES`, filled below).
BACKENDS = ("brainscales", "nest")


@dataclass(frozen=True)
class PongConfig:
    """One training run of the Pong agent.

    Attributes
    ----------
    seed : int
        Seed of the run: the game, initial weights, noise (>= 0).
    backend : {"brainscales", "nest"}
        The emulated BrainScaleS-2 chip or the NEST software reference.
    iterations : int
        Training iterations (one ball position, one network run, one weight update each; >= 1).
    n_rows : int
        Rows of the game = input neurons = output neurons (2 .. 128).
    iteration_ms : float
        Biological time of one iteration (ms; on the chip iteration_ms / 1000 hardware ms), > the input train.
    n_input_spikes : int
        Spikes of the active input neuron per iteration (>= 1).
    input_isi_ms : float
        Interval between them (ms, > 0).
    eval_repeats : int
        Evaluation after training, learning off: every row is the ball's row this many times (in
        random order); the mean bare reward of these iterations is "the mean reward after training"
        (>= 1).
    eval_fraction : float
        The training tail also reported: mean bare reward of this last fraction of the training
        iterations (0 < f <= 1).
    chip_seed : int
        Which emulated chip (its fixed-pattern noise; brainscales only).
    fixed_pattern_noise : bool or float
        Whether the chip has its fixed-pattern noise, or a scale of its nominal size (brainscales only).
    probe_repeats : int
        Excitability probe before training: every input row this many times with equal weights and
        no learning (0: no probe).
    cpu_power_w : float
        Power of one busy CPU core for the software energy (W, *assumption*, see
        :mod:`cortexsim.backends.energy`).
    """

    seed: int
    backend: str = "brainscales"
    iterations: int = 2000
    n_rows: int = 32
    iteration_ms: float = 200.0
    n_input_spikes: int = 20
    input_isi_ms: float = 10.0
    eval_repeats: int = 5
    eval_fraction: float = 0.1
    chip_seed: int = 0
    fixed_pattern_noise: bool | float = True
    probe_repeats: int = 2
    cpu_power_w: float = DEFAULT_CPU_POWER_W_PER_CORE

    def __post_init__(self):
        def check(name, ok, allowed):
            if not ok:
                raise ValueError(f"{name} must be {allowed}, got {getattr(self, name)!r}")

        def integer(name):
            value = getattr(self, name)
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

        check("seed", integer("seed") and self.seed >= 0, "an integer >= 0")
        check("backend", self.backend in BACKENDS, f"one of {BACKENDS}")
        check("iterations", integer("iterations") and self.iterations >= 1, "an integer >= 1")
        check("n_rows", integer("n_rows") and 2 <= self.n_rows <= 128, "an integer in [2, 128]")
        check("n_input_spikes", integer("n_input_spikes") and self.n_input_spikes >= 1, "an integer >= 1")
        check("input_isi_ms", np.isfinite(self.input_isi_ms) and self.input_isi_ms > 0, "> 0 ms")
        train = 1.0 + (self.n_input_spikes - 1) * self.input_isi_ms
        check("iteration_ms", np.isfinite(self.iteration_ms) and self.iteration_ms >= train + 5.0,
              f">= the input train plus 5 ms ({train + 5.0:g} ms)")
        check("eval_fraction", 0 < self.eval_fraction <= 1, "in (0, 1]")
        check("eval_repeats", integer("eval_repeats") and self.eval_repeats >= 1, "an integer >= 1")
        check("chip_seed", integer("chip_seed") and self.chip_seed >= 0, "an integer >= 0")
        check("fixed_pattern_noise", isinstance(self.fixed_pattern_noise, (bool, int, float))
              and np.isfinite(float(self.fixed_pattern_noise)) and float(self.fixed_pattern_noise) >= 0,
              "True, False or a scale >= 0")
        check("probe_repeats", integer("probe_repeats") and self.probe_repeats >= 0, "an integer >= 0")
        check("cpu_power_w", np.isfinite(self.cpu_power_w) and 0 < self.cpu_power_w < 1e4, "in (0, 1e4) W")

    def input_train(self, t0_ms: float) -> np.ndarray:
        """Spike times (ms) of the active input in the iteration starting at ``t0_ms`` (1 ms offset, as in
        NEST's example)."""
        return t0_ms + 1.0 + self.input_isi_ms * np.arange(self.n_input_spikes)


# --- the NEST software reference ------------------------------------------------------------------------

@dataclass(frozen=True)
class NestPongParameters:
    """The software reference's network and rule (NEST 3.10's Pong example, ``PongNetRSTDP``; PyNN units).

    Neuron: ``iaf_psc_exp`` defaults (cm 0.25 nF, tau_m 10 ms, tau_syn 2 ms, tau_refrac 2 ms, v_rest
    = v_reset = -70 mV, v_thresh -55 mV). Noise: white current noise, ``stdev_nA`` 0.22 (BG_STD 220 pA),
    redrawn every ``noise_dt_ms`` 1 ms (``noise_generator`` default). Weights: N(1.3, 0.001) nA.
    Rule: trace amplitude 36, tau 64 ms, saturation 128, causal next-neighbour pairs, learning rate
    0.7 in pA per unit (``learning_rate_nA`` 0.0007), mean reward starting at 0.
    """

    cm: float = 0.25
    tau_m: float = 10.0
    tau_syn: float = 2.0
    tau_refrac: float = 2.0
    v_rest: float = -70.0
    v_reset: float = -70.0
    v_thresh: float = -55.0
    noise_stdev_nA: float = 0.22
    noise_dt_ms: float = 1.0
    weight_mean_nA: float = 1.3
    weight_sd_nA: float = 0.001
    stdp_amplitude: float = 36.0
    stdp_tau_ms: float = 64.0
    stdp_saturation: float = 128.0
    learning_rate_nA: float = 0.0007
    initial_mean_reward: float = 0.0


class NestAgent:
    """The software reference on PyNN + NEST (see the module docstring)."""

    def __init__(self, config: PongConfig, rng: np.random.Generator,
                 parameters: NestPongParameters = NestPongParameters()):  # noqa: B008 (frozen)
        from ..backends.registry import load_backend
        self.sim = sim = load_backend("nest")
        self.config, self.p, self.rng = config, parameters, rng
        sim.setup(timestep=0.1, seed=int(rng.integers(1, 2**31 - 2)))
        p = parameters
        n = config.n_rows
        self.inputs = sim.Population(n, sim.SpikeSourceArray(spike_times=[]), label="ball position")
        self.outputs = sim.Population(n, sim.IF_curr_exp(cm=p.cm, tau_m=p.tau_m, tau_syn_E=p.tau_syn,
                                                         tau_syn_I=p.tau_syn, tau_refrac=p.tau_refrac,
                                                         v_rest=p.v_rest, v_reset=p.v_reset,
                                                         v_thresh=p.v_thresh), label="motor")
        self.outputs.initialize(v=p.v_rest)
        self.outputs.record("spikes")
        noise = sim.NoisyCurrentSource(mean=0.0, stdev=p.noise_stdev_nA, dt=p.noise_dt_ms)
        self.outputs.inject(noise)
        self.weights = rng.normal(p.weight_mean_nA, p.weight_sd_nA, (n, n)).clip(0.0)
        self.initial_weights = self.weights.copy()
        self.projection = sim.Projection(self.inputs, self.outputs, sim.AllToAllConnector(),
                                         sim.StaticSynapse(weight=self.weights, delay=0.1),
                                         receptor_type="excitatory")
        self.tracker = MeanReward(n, initial_mean=p.initial_mean_reward)
        self.t_ms = 0.0
        self.active = None

    def play(self, row: int, learn: bool = True) -> tuple[int, float, float, np.ndarray]:
        """One iteration with the ball in ``row``: (winner, bare reward, success, spike counts)."""
        sim, n = self.sim, self.config.n_rows
        train = self.config.input_train(self.t_ms)
        if self.active is not None and self.active != row:
            self.inputs[[self.active]].set(spike_times=[sim.Sequence([])])
        self.inputs[[row]].set(spike_times=[sim.Sequence(train)])
        self.active = row
        sim.run(self.config.iteration_ms)
        self.t_ms += self.config.iteration_ms
        trains = self.outputs.get_data("spikes", clear=True).segments[-1].spiketrains
        by_index = {int(t.annotations["source_index"]): t.magnitude for t in trains}
        post = [by_index.get(j, np.zeros(0)) for j in range(n)]
        counts = np.array([t.size for t in post])
        chosen = winner(counts, self.rng)
        reward = float(reward_table(row, n)[chosen])
        if not learn:
            return chosen, reward, 0.0, counts
        success = self.tracker.update(row, reward)
        from ..backends.correlation import pair_correlation
        p = self.p
        causal, _ = pair_correlation([train], post, tau=p.stdp_tau_ms, pairing="first")
        correlation = np.minimum(p.stdp_amplitude * causal[0], p.stdp_saturation)
        self.weights[row] = rstdp_update(self.weights[row], correlation, success, p.learning_rate_nA, w_min=0.0)
        self.projection.set(weight=self.weights)
        return chosen, reward, success, counts

    weight_unit = "weight (nA)"
    hardware_time_ms = 0.0          # software: no chip time

    def probe_excitability(self, repeats: int) -> np.ndarray:
        """Mean spikes per iteration of every output with all input weights at their mean (no learning)."""
        n = self.config.n_rows
        self.projection.set(weight=np.full((n, n), self.p.weight_mean_nA))
        counts = [self.play(int(row), learn=False)[3] for _ in range(repeats) for row in self.rng.permutation(n)]
        self.projection.set(weight=self.weights)
        return np.mean(counts, axis=0)

    def final_weights(self) -> np.ndarray:
        return self.weights.copy()

    def finish(self) -> dict:
        self.sim.end()
        return {}

    def energy(self, hardware_time_s: float, cpu_s: float, iterations: int) -> dict:
        """Software energy: the training's CPU time x the stated power of a core."""
        software = software_energy(cpu_s, self.config.cpu_power_w)
        return {"model": "software", **software, **energy_per_unit(software, iterations, "iteration")}


# --- the emulated chip ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChipPongParameters:
    """The chip's network and rule (BrainScaleS-2's units; biological equivalents at speed-up 1000).

    Neurons: ``CalibHXNeuronCuba`` calibrated to a leak of ``v_rest_mV`` (-65 mV), reset -70 mV,
    threshold -50 mV, tau_m 20 us (20 ms), refractory time 2 us, capacitor 15 (0.25 nF). The
    calibration removes the circuits' membrane fixed-pattern noise (leak, threshold, reset, leak
    conductance, capacitance); the synaptic inputs are then set to one configuration for every circuit
    (``tau_syn_bias`` 153 = 2 us, ``gm`` 1022), i.e. left uncalibrated, so each neuron keeps the
    chip's mismatch of synaptic gain and time constant (25 % each, :mod:`cortexsim.backends.chips`):
    its excitability differs from its neighbours' and the learned weights must compensate that
    (Wunderlich et al. 2019). ``calibrate_membrane`` False leaves the whole circuit uncalibrated.

    Inputs: 6-bit weights from N(``weight_mean``, ``weight_sd``). Exploration: temporal noise of the
    circuits (``membrane_noise_nA``: white current noise, see ``setup(membrane_noise=...)`` of the
    dialect); "temporal variability for action exploration" (Wunderlich et al. 2019). 0.6 nA was
    chosen on a held-out seed (100, 600 iterations): with 0.3 nA, neurons of low excitability hardly
    spike, see no correlation and never learn (each neuron's mean input weight vs excitability r ~0);
    with 0.6 nA every neuron explores and r was -0.7. Sensors:
    amplitude 2 LSB per pair, tau 20 us (inside calix's calibration ranges). Rule: weight change =
    ``learning_rate`` x success x causal correlation (6-bit LSB per LSB of correlation, about 3 LSB of
    weight per well-timed pair, as model-sw-pong's 0.125 x 36 x exp(-5/64)); the mean reward starts
    at the first reward (model-sw-pong). The learning rate 2 was checked against 1 and 4 on held-out
    seeds (100-102, 2000 iterations, ``benchmarks/pong_learning_rate.py``): it gave the highest mean
    reward after training (0.337 vs 0.321 and 0.318).
    """

    v_rest_mV: float = -65.0
    v_reset_mV: float = -70.0
    v_thresh_mV: float = -50.0
    tau_m_us: float = 20.0
    tau_refrac_us: float = 2.0
    membrane_capacitance: int = 15
    calibrate_membrane: bool = True
    tau_syn_bias: int = 153
    gm: int = 1022
    weight_mean: float = 30.0
    weight_sd: float = 2.0
    membrane_noise_nA: float = 0.6
    sensor_amplitude: float = 2.0
    sensor_tau_us: float = 20.0
    learning_rate: float = 2.0
    probe_weight: int = 35
    correlation_cap_lsb: float | None = None

    def _cadc(self, mv: float) -> float:
        from ..backends.brainscales2 import hardware_model as hw
        return float(hw.cadc_from_volts(hw.bio_mv_to_hw(mv)))

    def calibration_targets(self) -> dict:
        """``CalibHXNeuronCuba`` targets (CADC units, hardware us, codes)."""
        return dict(v_rest=self._cadc(self.v_rest_mV), v_reset=self._cadc(self.v_reset_mV),
                    v_thresh=self._cadc(self.v_thresh_mV), tau_m=self.tau_m_us, tau_refrac=self.tau_refrac_us,
                    cm=self.membrane_capacitance, tau_syn_E=2.0, tau_syn_I=2.0, i_synin_gm_E=800,
                    i_synin_gm_I=800, synapse_dac_bias=600)

    def synaptic_codes(self) -> dict:
        """The synaptic-input configuration every circuit gets (uncalibrated)."""
        return dict(excitatory_input_enable=True, excitatory_input_i_bias_tau=self.tau_syn_bias,
                    excitatory_input_i_bias_gm=self.gm, inhibitory_input_enable=True,
                    inhibitory_input_i_bias_tau=self.tau_syn_bias, inhibitory_input_i_bias_gm=self.gm)

    def neuron_parameters(self) -> dict:
        """``HXNeuron`` codes of the fully uncalibrated variant (the nominal circuit for the targets)."""
        from ..backends.brainscales2 import hardware_model as hw
        c_nf = float(hw.membrane_capacitance_nf(self.membrane_capacitance))
        g_us = c_nf / (self.tau_m_us)                      # tau_m in us of hardware = ms of biology
        return dict(leak_v_leak=int(hw.leak_code(hw.bio_mv_to_hw(self.v_rest_mV))),
                    leak_i_bias=int(round(g_us * 8 * 1022)), leak_enable_division=True,
                    threshold_v_threshold=int(hw.threshold_code(hw.bio_mv_to_hw(self.v_thresh_mV))),
                    threshold_enable=True, reset_v_reset=int(hw.leak_code(hw.bio_mv_to_hw(self.v_reset_mV))),
                    refractory_period_refractory_time=int(round(self.tau_refrac_us / 0.125)),
                    membrane_capacitance_capacitance=self.membrane_capacitance, **self.synaptic_codes())


class PongKernel:
    """The plasticity kernel of the chip route: what the PPU does at the end of every iteration.

    The experiment writes ``row`` (the ball's row, the synapse row that learns) and ``rule.reward``
    (the bare reward for every possible winner) before each run; the kernel reads the rate counters
    (winner, ties broken by its own random numbers), the success from its per-row mean reward, the
    causal correlation of the active row (cut off at ``correlation_cap`` if given, the "accumulated STDP"
    cut-off of both reference codes), writes the new weights (rounded and clipped to 0 .. 63 by the
    chip) and resets sensors and counters. It keeps its results for the host (``last_*``).
    """

    def __init__(self, n_rows: int, learning_rate: float, rng: np.random.Generator,
                 correlation_cap: float | None = None):
        if correlation_cap is not None and not correlation_cap > 0:
            raise ValueError(f"correlation_cap must be > 0 (CADC LSB) or None, got {correlation_cap!r}")
        self.row = None
        self.learning = True
        self.learning_rate = float(learning_rate)
        self.correlation_cap = correlation_cap
        self.rng = rng
        self.tracker = MeanReward(n_rows)
        self.last_winner = self.last_reward = self.last_success = self.last_counts = None

    def __call__(self, context) -> None:
        counts = context.rate_counters(0, reset=True)
        rows = context.synapses(0)
        causal, _ = rows.correlation(reset=True)
        rewards = context.reward
        chosen = winner(counts, self.rng)
        reward = float(rewards[chosen])
        self.last_winner, self.last_reward, self.last_counts, self.last_success = chosen, reward, counts, 0.0
        if not self.learning or self.row is None:
            return
        success = self.tracker.update(self.row, reward)
        self.last_success = success
        correlation = causal[self.row].astype(float)
        if self.correlation_cap is not None:
            correlation = np.minimum(correlation, self.correlation_cap)
        new = rows.weights.astype(float)
        new[self.row] = rstdp_update(new[self.row], correlation, success, self.learning_rate, 0.0, 63.0)
        rows.set_weights(new)


class ChipAgent:
    """The agent on the emulated BrainScaleS-2 chip (see the module docstring)."""

    def __init__(self, config: PongConfig, rng: np.random.Generator,
                 parameters: ChipPongParameters = ChipPongParameters()):  # noqa: B008 (frozen)
        import cortexsim.backends.brainscales2 as pynn
        from ..backends.correlation import SensorParameters

        self.pynn, self.config, self.p, self.rng = pynn, config, parameters, rng
        p, n = parameters, config.n_rows
        self.t_hw = 0.0
        self.period_hw = config.iteration_ms / 1000.0
        pynn.setup(seed=int(rng.integers(0, 2**31 - 2)), chip_seed=config.chip_seed,
                   fixed_pattern_noise=config.fixed_pattern_noise, membrane_noise=p.membrane_noise_nA,
                   correlation_sensors=SensorParameters(amplitude=p.sensor_amplitude, tau_us=p.sensor_tau_us))
        self.kernel = PongKernel(n, p.learning_rate, np.random.default_rng(rng.integers(2**63)), p.correlation_cap_lsb)
        total = config.iterations + (config.probe_repeats + config.eval_repeats) * n + 1
        self.rule = pynn.PlasticityRule(pynn.Timer(start=self.period_hw - 5e-4, period=self.period_hw,
                                                   num_periods=total), python_kernel=self.kernel)
        if p.calibrate_membrane:
            cells = pynn.cells.CalibHXNeuronCuba(plasticity_rule=self.rule, **p.calibration_targets())
        else:
            cells = pynn.cells.HXNeuron(plasticity_rule=self.rule, **p.neuron_parameters())
        self.outputs = pynn.Population(n, cells, label="motor")
        self.inputs = pynn.Population(n, pynn.cells.SpikeSourceArray(spike_times=[]), label="ball position")
        self.initial_weights = np.clip(np.rint(rng.normal(p.weight_mean, p.weight_sd, (n, n))), 0, 63).astype(int)
        self.projection = pynn.Projection(self.inputs, self.outputs, pynn.AllToAllConnector(),
                                          pynn.synapses.PlasticSynapse(weight=self.initial_weights,
                                                                       plasticity_rule=self.rule),
                                          receptor_type="excitatory")
        if p.calibrate_membrane:
            pynn.run(None, pynn.RunCommand.PREPARE)          # calibrates the circuits
            codes = p.synaptic_codes()
            for neuron in self.outputs.actual_hwparams:      # synaptic inputs: one configuration for all
                for receptor in ("excitatory", "inhibitory"):
                    block = getattr(neuron, f"{receptor}_input")
                    block.i_bias_tau = codes[f"{receptor}_input_i_bias_tau"]
                    block.i_bias_gm = codes[f"{receptor}_input_i_bias_gm"]

    def _set_input(self, row: int) -> None:
        train = self.config.input_train(self.t_hw * 1000.0) / 1000.0       # hardware ms
        times = [[] for _ in range(self.config.n_rows)]
        times[row] = train.tolist()
        self.inputs.set(spike_times=[self.pynn.Sequence(t) for t in times])

    def play(self, row: int, learn: bool = True) -> tuple[int, float, float, np.ndarray]:
        """One iteration with the ball in ``row``: (winner, bare reward, success, spike counts)."""
        self._set_input(row)
        self.rule.reward = reward_table(row, self.config.n_rows)
        self.kernel.row = row
        self.kernel.learning = learn
        events = self.rule.statistics["events"]
        self.pynn.run(self.period_hw)
        self.t_hw += self.period_hw
        if self.rule.statistics["events"] != events + 1:
            raise RuntimeError("the plasticity kernel did not run in this iteration (timer exhausted)")
        k = self.kernel
        return k.last_winner, k.last_reward, k.last_success, k.last_counts

    def probe_excitability(self, repeats: int) -> np.ndarray:
        """Mean spikes per iteration of every output with all input weights at the probe weight."""
        n = self.config.n_rows
        self.projection.set(weight=np.full((n, n), self.p.probe_weight))
        counts = []
        for _ in range(repeats):
            for row in self.rng.permutation(n):
                counts.append(self.play(int(row), learn=False)[3])
        self.projection.set(weight=self.initial_weights)
        return np.mean(counts, axis=0)

    weight_unit = "6-bit weight"

    @property
    def hardware_time_ms(self) -> float:
        """Hardware time emulated so far (ms)."""
        return self.t_hw

    @property
    def tracker(self) -> MeanReward:
        return self.kernel.tracker

    def energy(self, hardware_time_s: float, cpu_s: float, iterations: int) -> dict:
        """Chip energy of the training: its hardware time x the published power figures.

        The system figure adds the emulator's assumed host round trip per run (``run_overhead_s`` of
        bss2: the experiment moves the ball on the host between runs).
        """
        from ..backends.chips import chip_spec
        wall = hardware_time_s + iterations * chip_spec("bss2").run_overhead_s
        chip = chip_energy("bss2", hardware_time_s, wall)
        per = energy_per_unit(chip, iterations, "iteration")
        return {"model": "chip", **chip, "j_per_iteration": per["asic_j_per_iteration"],
                "prototype_j_per_iteration": per["prototype_j_per_iteration"],
                "system_j_per_iteration": per["system_j_per_iteration"]}

    def final_weights(self) -> np.ndarray:
        n = self.config.n_rows
        matrix = np.zeros((n, n), dtype=int)
        for c in self.projection.connections:
            matrix[c.presynaptic_index, c.postsynaptic_index] = abs(c.weight)
        return matrix

    def finish(self) -> dict:
        statistics = self.pynn.get_backend_statistics()
        report = dict(statistics.chip)
        report["hardware_time_s_dialect"] = statistics.hardware_time_ms / 1000.0
        report["plasticity_rule"] = dict(self.rule.statistics)
        self.pynn.end()
        return report


# --- the protocol ---------------------------------------------------------------------------------------

#: Backend -> (agent class, its parameter class): what differs between the routes, as data.
ROUTES = {"brainscales": (ChipAgent, ChipPongParameters), "nest": (NestAgent, NestPongParameters)}


@dataclass
class PongResult:
    """What one training run produced (times in s, rewards 0 .. 1).

    Attributes
    ----------
    rewards : ndarray
        Bare reward of every training iteration.
    rows, winners : ndarray
        Ball row and winning output of every iteration.
    mean_reward_over_rows : ndarray
        The running per-row mean reward averaged over the rows visited (the curve of NEST's example).
    weights_initial, weights_final : ndarray
        Input x output weights (chip: 6-bit integers; NEST: nA).
    excitability : ndarray or None
        Mean spikes per probe iteration of every output neuron before training (equal weights).
    eval_rewards, eval_rows : ndarray
        Bare rewards and rows of the evaluation after training (learning off).
    """

    config: PongConfig
    rewards: np.ndarray
    rows: np.ndarray
    winners: np.ndarray
    mean_reward_over_rows: np.ndarray
    weights_initial: np.ndarray
    weights_final: np.ndarray
    excitability: np.ndarray | None
    eval_rewards: np.ndarray
    eval_rows: np.ndarray
    game: dict
    timing: dict
    energy: dict
    hardware: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)

    def mean_reward(self) -> float:
        """Mean bare reward after training: the evaluation (every row ``eval_repeats`` times, no learning)."""
        return float(np.mean(self.eval_rewards))

    def training_tail_reward(self) -> float:
        """Mean bare reward over the last ``eval_fraction`` of the training iterations."""
        n = max(1, int(round(self.config.eval_fraction * self.rewards.size)))
        return float(np.mean(self.rewards[-n:]))

    def _r(self, weights) -> float | None:
        if self.excitability is None or np.std(self.excitability) == 0 or np.std(weights) == 0:
            return None
        return float(np.corrcoef(weights, self.excitability)[0, 1])

    def weight_excitability_r(self) -> float | None:
        """Pearson r between each output neuron's mean learned input weight and its excitability.

        The chip's fixed-pattern noise of a neuron (synaptic gain and time constant) scales all of its
        inputs alike, so compensation shows in the neuron's input weights as a whole: the mean of its
        column of the weight matrix. The correlation of the target weights alone (input i -> output i)
        is :meth:`target_weight_excitability_r`.
        """
        return self._r(np.mean(self.weights_final, axis=0))

    def target_weight_excitability_r(self) -> float | None:
        """Pearson r between the target weights (input i -> output i) and each output's excitability."""
        return self._r(np.diag(self.weights_final))

    def summary(self) -> dict:
        """Headline figures."""
        return {"backend": self.config.backend, "iterations": int(self.rewards.size),
                "mean_reward": self.mean_reward(), "training_tail_reward": self.training_tail_reward(),
                "mean_reward_first_10pct": float(np.mean(self.rewards[:max(1, self.rewards.size // 10)])),
                "mean_reward_over_rows_final": float(self.mean_reward_over_rows[-1]),
                "weight_excitability_r": self.weight_excitability_r(),
                "target_weight_excitability_r": self.target_weight_excitability_r(),
                "hits": self.game["hits"], "misses": self.game["misses"],
                "wall_time_s": self.timing["wall_s"], "cpu_time_s": self.timing["cpu_s"],
                "energy_j_per_iteration": self.energy.get("j_per_iteration")}

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "config": asdict(self.config), "parameters": self.parameters,
                "rewards": self.rewards, "rows": self.rows, "winners": self.winners,
                "mean_reward_over_rows": self.mean_reward_over_rows,
                "weights_initial": self.weights_initial, "weights_final": self.weights_final,
                "excitability": self.excitability, "eval_rewards": self.eval_rewards, "eval_rows": self.eval_rows,
                "game": self.game, "timing": self.timing,
                "energy": self.energy, "hardware": self.hardware, "files": self.files,
                "versions": library_versions(), "machine": machine_info()}


def run(config: PongConfig, out_dir: str | Path | None = None, progress: bool = False,
        parameters: ChipPongParameters | NestPongParameters | None = None) -> PongResult:
    """Train the agent for ``config.iterations`` iterations; write results and figures to ``out_dir``.

    ``parameters``: the route's network and rule (default: ``ChipPongParameters()`` on brainscales,
    ``NestPongParameters()`` on nest); a parameter class of the other route raises ``TypeError``.

    Returns
    -------
    PongResult
    """
    rng = np.random.default_rng([config.seed, 0x9046])
    game_rng, agent_rng = (np.random.default_rng(s) for s in rng.integers(0, 2**63, 2))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    agent_class, parameters_class = ROUTES[config.backend]
    if parameters is None:
        parameters = parameters_class()
    elif not isinstance(parameters, parameters_class):
        raise TypeError(f"parameters must be a {parameters_class.__name__} on backend {config.backend!r}, "
                        f"got {type(parameters).__name__}")
    agent = agent_class(config, agent_rng, parameters)
    excitability = agent.probe_excitability(config.probe_repeats) if config.probe_repeats > 0 else None
    weights_initial = np.array(agent.initial_weights, copy=True)
    game = PongGame(config.n_rows, game_rng)
    n = config.iterations
    rewards, rows, winners, mean_rows = np.zeros(n), np.zeros(n, dtype=int), np.zeros(n, dtype=int), np.zeros(n)
    tracker = agent.tracker
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, desc=f"pong ({config.backend})", unit="it")
    train_cpu0, train_wall0 = time.process_time(), time.perf_counter()
    hardware_ms0 = agent.hardware_time_ms
    for it in range(n):
        row = game.ball_row()
        chosen, reward, _, _ = agent.play(row)
        game.step(chosen)
        rewards[it], rows[it], winners[it] = reward, row, chosen
        mean_rows[it] = tracker.mean_over_rows()
        if bar is not None:
            bar.update(1)
            if it % 50 == 0:
                bar.set_postfix(reward=f"{running_mean(rewards[:it + 1], 100)[-1]:.2f}")
    train_cpu, train_wall = time.process_time() - train_cpu0, time.perf_counter() - train_wall0
    training_hardware_s = (agent.hardware_time_ms - hardware_ms0) / 1000.0
    if bar is not None:
        bar.close()
    eval_rows = np.concatenate([game_rng.permutation(config.n_rows) for _ in range(config.eval_repeats)])
    eval_rewards = np.array([agent.play(int(row), learn=False)[1] for row in eval_rows])
    weights_final = agent.final_weights()
    hardware = agent.finish()
    timing = {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
              "training_wall_s": train_wall, "training_cpu_s": train_cpu,
              "training_hardware_time_s": training_hardware_s}
    energy = agent.energy(training_hardware_s, train_cpu, n)
    result = PongResult(config, rewards, rows, winners, mean_rows, weights_initial, weights_final, excitability,
                        eval_rewards, eval_rows, {"hits": game.hits, "misses": game.misses}, timing, energy, hardware,
                        asdict(parameters))
    if out_dir is not None:
        out = output_dir(out_dir)
        unit = agent.weight_unit
        result.files["reward_curve"] = plot_reward_curves({config.backend: [rewards]}, out / "pong_reward.png").name
        result.files["weights"] = plot_weight_matrix(weights_final, out / "pong_weights.png", unit).name
        if excitability is not None:
            result.files["weights_vs_excitability"] = plot_weights_vs_excitability(
                weights_final, excitability, out / "pong_weights_vs_excitability.png", unit).name
        write_results(out, result.to_dict(), config)
    return result
