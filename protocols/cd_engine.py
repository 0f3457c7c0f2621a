"""The contrastive-divergence engine: the one training loop of every spiking CD task.

A task supplies two things, everything else is the engine's:

* a **network factory** ``build(sim, W, b, first_iteration) -> network``: starts a fresh simulation
  (``sim.setup`` with a seed the task derives from its run seed and ``first_iteration``) and builds the
  network representing ``(W, b)``. The network must offer ``set_parameters(W, b)`` (the in-place update
  path, :func:`cortexsim.models.sampling_network.write_lif`) and ``spiketrains(clear=True)``;
  :class:`~cortexsim.models.sampling_network.SamplingNetwork` (target and digits tasks) and
  :class:`~cortexsim.models.ensemble.Ensemble` do.
* a **statistics function** ``statistics(network, timed, iteration, duration_ms, rng) -> Statistics``:
  runs the network for one iteration (``timed.run(...)``) and returns the data and model moments
  ``(<z>, <z z^T>)`` plus what to record for that iteration. :class:`TargetStatistics` (the exact
  moments of target BMs against each block's sampled distribution) serves the target and ensemble
  tasks; :class:`ClampedStatistics` (data rows clamped onto the visible units, then a free run) the
  data tasks (digits; any network with ``clamp``/``release``).

The engine (:func:`train_cd`) owns the schedule (learning rate, sampling time growing from
``sampling_ms`` to ``sampling_end_ms``), the update (:class:`cortexsim.models.cd_learning.CDUpdate`:
CD direction, momentum optimizer, mask, iterate averaging), the history, the timing and the
checkpoints.

Segments, checkpoints and bit-identical resumption
--------------------------------------------------
Training runs in *segments* of ``checkpoint_every`` iterations (all iterations in one segment if it is
None). Each segment starts a fresh simulation through the factory, burns in for ``burn_in_ms``, and then
only updates parameters in place, iteration by iteration. At the end of every segment the engine's
state (:class:`CDState`: iteration, parameters, optimizer and averaging state, the random generator of
the task's data draws, history, timing) is handed to the ``save`` callback, which writes it atomically
with the rest of the protocol's checkpoint. Because a segment's simulation depends only on (seed,
first iteration, parameters), a resumed run repeats exactly what the uninterrupted run did: on a
seedable backend the final parameters are bit-identical. A deterministic ensemble (no random source at
all) therefore also resumes from its checkpointed state; its dynamics restart at every segment
boundary from the seeded initial conditions, in the uninterrupted run as in the resumed one.
(Re-seeding a running simulation would not be enough: membrane, refractory and synapse states, and
NEST's adaptive integrator steps, would differ.)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np

from cortexsim.checks import check_fraction, check_int, check_non_negative, check_positive
from cortexsim.results import check_structure, describe_differences, read_json, write_json_atomic
from cortexsim.timegrid import grid_duration

from ..analysis.divergence import dkl_both
from ..analysis.states import joint_distribution, states_on_grid, states_on_grid_from_arrays
from ..backends.energy import DEFAULT_CPU_POWER_W_PER_CORE, HardwareTime, experiment_energy
from ..backends.schedules import run_parameter_schedule
from ..backends.spikes import spike_arrays
from ..models.boltzmann import BoltzmannMachine, exact_moments, joint
from ..models.cd_learning import (CDUpdate, DiagonalBlocks, IterateAverage, LearningRateSchedule, MomentumOptimizer,
                                  check_binary_data, matrix_from_json, matrix_to_json, moments_from_distribution,
                                  moments_from_states, sampling_durations, staggered_phases)

__all__ = ["CDSettings", "CDState", "Statistics", "TargetStatistics", "ClampedStatistics", "TimedSimulator", "train_cd",
           "discard_spikes", "mean_rate_hz", "source_rate_hz",
           "training_energy", "CHECKPOINT_FILE", "save_checkpoint", "load_checkpoint", "block_slices", "compose_blocks"]

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.json"


@dataclass(frozen=True)
class CDSettings:
    """How the engine trains (times in ms, ``schedule_tau`` in iterations).

    Attributes
    ----------
    iterations : int
        Parameter updates, >= 1.
    sampling_ms : float
        Sampling time of the first iteration (ms), > 0 (what the statistics function runs per iteration).
    learning_rate : float
        eta0 of the schedule, > 0.
    schedule : {"constant", "inverse"}
        Learning-rate schedule (``inverse``: eta0 * tau / (tau + t)).
    schedule_tau : float
        Decay constant of the inverse schedule (iterations), > 0.
    momentum : float
        Momentum in [0, 1).
    weight_decay : float
        L2 penalty on the weights, >= 0.
    dt_ms : float
        Integration step (ms); sampling times are rounded to it.
    sampling_end_ms : float, optional
        Sampling time of the last iteration (ms); linear growth from ``sampling_ms``. None: constant.
    average_fraction : float
        In [0, 1): the trained parameters are the mean of the iterates over this last fraction of the
        iterations (Polyak-Ruppert averaging); 0 keeps the last iterate.
    checkpoint_every : int, optional
        Iterations per segment (fresh simulation, checkpoint at its end); None: one segment.
    burn_in_ms : float
        Time run and discarded at the start of every segment (ms), >= 0.
    """

    iterations: int
    sampling_ms: float
    learning_rate: float
    schedule: str
    schedule_tau: float
    momentum: float
    weight_decay: float = 0.0
    dt_ms: float = 0.1
    sampling_end_ms: float | None = None
    average_fraction: float = 0.0
    checkpoint_every: int | None = None
    burn_in_ms: float = 0.0

    def __post_init__(self) -> None:
        check_int(self.iterations, "iterations", minimum=1)
        check_positive(self.sampling_ms, "sampling_ms", "ms")
        if self.sampling_end_ms is not None:
            check_positive(self.sampling_end_ms, "sampling_end_ms", "ms")
        LearningRateSchedule(self.learning_rate, self.schedule, self.schedule_tau)
        check_fraction(self.momentum, "momentum")
        check_non_negative(self.weight_decay, "weight_decay")
        check_positive(self.dt_ms, "dt_ms", "ms")
        check_fraction(self.average_fraction, "average_fraction")
        if self.checkpoint_every is not None:
            check_int(self.checkpoint_every, "checkpoint_every", minimum=1)
        check_non_negative(self.burn_in_ms, "burn_in_ms", "ms")

    @property
    def segment_length(self) -> int:
        """Iterations per segment."""
        return int(self.checkpoint_every or self.iterations)

    def durations(self) -> np.ndarray:
        """Sampling time of every iteration (ms), on the dt grid."""
        return sampling_durations(self.sampling_ms, self.sampling_end_ms, self.iterations, self.dt_ms)

    def update(self, mask: np.ndarray | None, n_units: int, blocks: list | None = None) -> CDUpdate:
        """A fresh :class:`~cortexsim.models.cd_learning.CDUpdate` for these settings (``blocks``: update
        independent networks block by block, see there)."""
        return CDUpdate(LearningRateSchedule(self.learning_rate, self.schedule, self.schedule_tau),
                        MomentumOptimizer.create(n_units, self.momentum, self.weight_decay, blocks), mask,
                        IterateAverage(self.iterations, self.average_fraction), blocks)


@dataclass
class CDState:
    """Everything a CD run needs to continue: written at every checkpoint, exact in JSON.

    ``rng`` is the state of the numpy generator the statistics function draws from (None when it
    draws nothing); ``update`` the optimizer and averaging state; ``history`` per-iteration and
    per-segment records; ``timing`` wall times (s).

    Independent networks (``blocks`` in :meth:`fresh` and :func:`train_cd`): ``W``, the weight velocity and
    the iterate average are held per network, as :class:`~cortexsim.models.cd_learning.DiagonalBlocks`, and
    written as such (each block's float64 bytes, compressed, :func:`cortexsim.results.encode_array`; for 10
    MNIST networks of 406 units ~40 MB instead of ~0.6 GB of JSON numbers, the same values). A state
    written with full matrices (before per-network states existed) still loads: :func:`train_cd` with
    ``blocks`` converts it, if it is zero outside the blocks (else ValueError).
    """

    iteration: int
    W: np.ndarray
    b: np.ndarray
    update: dict
    rng: dict | None = None
    history: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)

    @classmethod
    def fresh(cls, W, b, settings: CDSettings, mask: np.ndarray | None = None,
              rng: np.random.Generator | None = None, blocks: list | None = None) -> "CDState":
        """The state before the first iteration, starting from (W, b); ``blocks`` (independent networks): held
        per network (W zero outside the blocks, else ValueError)."""
        b = np.array(b, dtype=float)
        W = np.array(W, dtype=float) if blocks is None else DiagonalBlocks.from_dense(W, blocks, "W")
        update = settings.update(mask, b.shape[0], blocks)
        return cls(0, W, b, update.to_dict(), None if rng is None else rng.bit_generator.state,
                   {"iteration": [], "learning_rate": [], "sampling_ms": [], "gradient_norm": [],
                    "segment_end": []},
                   {"training_wall_s": 0.0, "run_wall_s": 0.0, "build_wall_s": 0.0, "statistics_wall_s": 0.0,
                    "update_wall_s": 0.0, "iterations_timed": 0})

    def generator(self) -> np.random.Generator | None:
        """The numpy generator restored from :attr:`rng`."""
        if self.rng is None:
            return None
        bit_generator = getattr(np.random, self.rng["bit_generator"])()
        bit_generator.state = self.rng
        return np.random.Generator(bit_generator)

    def to_dict(self) -> dict:
        return {"iteration": self.iteration, "W": matrix_to_json(self.W), "b": self.b.tolist(), "update": self.update,
                "rng": self.rng, "history": self.history, "timing": self.timing}

    @classmethod
    def from_dict(cls, data: dict) -> "CDState":
        return cls(int(data["iteration"]), matrix_from_json(data["W"]), np.asarray(data["b"], dtype=float),
                   data["update"], data.get("rng"), data["history"], data["timing"])

    def rescheduled(self, old: CDSettings, new: CDSettings) -> "CDState":
        """This state (of a run with settings ``old``) as the state of a run with ``new.iterations`` updates.

        Allowed only where nothing done so far depends on the total number of updates: ``new`` equals ``old``
        in every other setting; the learning-rate schedule (:class:`LearningRateSchedule`: constant or
        inverse in the iteration) and the momentum optimizer do not read the total; the sampling time of the
        updates done is the same under both (a growing ``sampling_end_ms`` spreads over the total: refused);
        the segments start at the same iterations (``checkpoint_every`` set and this state at a segment
        boundary); and no update done is in the iterate average of either schedule (``self.iteration`` <= the
        first averaged iteration of ``new``). The averaging then starts where ``new`` says. The random
        generator, the parameters, the optimizer state, the history and the timing are kept, so resuming the
        result is the run of ``new`` from scratch (on a seedable backend, bit for bit: the task's seeds must not
        derive from the total either, which the caller checks).

        Parameters
        ----------
        old, new : CDSettings
            The settings this state was trained with, and those to continue with.

        Returns
        -------
        CDState
            A new state; ValueError naming the reason if the change is not allowed.

        Examples
        --------
        >>> old = CDSettings(iterations=10, sampling_ms=100.0, learning_rate=0.1, schedule="inverse",
        ...                  schedule_tau=5.0, momentum=0.5, average_fraction=0.5, checkpoint_every=2)
        >>> state = CDState.fresh(np.zeros((2, 2)), np.zeros(2), old)
        >>> state.iteration = 2
        >>> state.rescheduled(old, dataclasses.replace(old, iterations=6)).update["average"]["start"]
        3
        """
        if dataclasses.replace(old, iterations=new.iterations) != new:
            differ = [f.name for f in dataclasses.fields(CDSettings)
                      if f.name != "iterations" and getattr(old, f.name) != getattr(new, f.name)]
            raise ValueError(f"only iterations may change when a run is rescheduled; also changed: {differ}")
        done = self.iteration
        if done > new.iterations:
            raise ValueError(f"iterations must be >= the {done} updates done, got {new.iterations}")
        if not np.array_equal(old.durations()[:done], new.durations()[:done]):
            raise ValueError("the sampling times of the updates done depend on iterations (sampling_end_ms): "
                             "cannot reschedule")
        if old.checkpoint_every is None or done % old.checkpoint_every:
            raise ValueError(f"the segments depend on iterations (checkpoint_every {old.checkpoint_every}, "
                             f"{done} updates done): cannot reschedule")
        average = IterateAverage(new.iterations, new.average_fraction)
        if self.update["average"]["count"] or done > average.start:
            raise ValueError(f"updates already averaged: {done} updates done, the averaging of {new.iterations} "
                             f"updates starts at {average.start}; cannot reschedule")
        update = {**self.update, "average": {**self.update["average"], "start": average.start}}
        return CDState(done, self.W.copy(), self.b.copy(), update, self.rng, self.history, self.timing)

    def trained(self, settings: CDSettings, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The trained parameters: the iterate average (``average_fraction``) or the last iterate."""
        if self.iteration == 0:
            return self.W.copy(), self.b.copy()
        return settings.update(mask, self.b.shape[0]).load(self.update).result()


@dataclass
class Statistics:
    """One iteration's statistics: data and model moments ``(mean (n,), second (n, n))`` and records."""

    data: tuple
    model: tuple
    record: dict = field(default_factory=dict)


class TimedSimulator:
    """A ``sim`` wrapper that tracks the simulated time itself and the wall time spent in ``sim.run``.

    Asking PyNN-on-NEST for the current time costs a full kernel-status query, so the time is
    counted here (ms since ``setup``). Every run is a whole number of integration steps of ``dt_ms``
    (default: the simulator's), so NEST never sees a duration off its grid.
    """

    def __init__(self, sim: ModuleType, dt_ms: float | None = None):
        self.sim = sim
        self.dt_ms = float(sim.get_time_step()) if dt_ms is None else float(dt_ms)
        self.t_ms = 0.0
        self.run_wall_s = 0.0

    def run(self, duration_ms: float) -> tuple[float, float]:
        """Advance by ``duration_ms`` (rounded up to whole integration steps, see
        :func:`cortexsim.timegrid.grid_duration`); returns the window ``(t_start, t_stop)`` in ms."""
        duration = grid_duration(duration_ms, self.dt_ms)
        start = self.t_ms
        tic = time.perf_counter()
        self.sim.run(duration)
        self.run_wall_s += time.perf_counter() - tic
        self.t_ms += duration
        return start, self.t_ms

    def run_schedule(self, population, name: str, values: np.ndarray, durations_ms) -> list[tuple[float, float]]:
        """Phases in which ``population``'s parameter ``name`` takes ``values[k]`` for ``durations_ms[k]``.

        Through :func:`cortexsim.backends.schedules.run_parameter_schedule` (one launch on backends that
        compile, ``population.set`` + ``run`` per phase elsewhere). Returns the window of every phase (ms).
        """
        durations = [grid_duration(d, self.dt_ms) for d in durations_ms]     # whole integration steps
        start = self.t_ms
        tic = time.perf_counter()
        run_parameter_schedule(self.sim, population, name, values, durations)
        self.run_wall_s += time.perf_counter() - tic
        bounds = start + np.concatenate([[0.0], np.cumsum(np.asarray(durations, dtype=float))])
        self.t_ms = float(bounds[-1])
        return [(float(a), float(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def discard_spikes(network) -> None:
    """Clear the spikes ``network`` recorded so far (e.g. after a burn-in) without reading them into neo
    objects: through :func:`cortexsim.backends.spikes.spike_arrays` where the network has a recording
    ``population`` (3 s less per segment for 1740 neurons on brian2_standalone), else ``spiketrains(clear=True)``."""
    population = getattr(network, "population", None)
    if population is not None and hasattr(population, "recorder"):
        spike_arrays(population, clear=True)
    else:
        network.spiketrains(clear=True)


def block_slices(sizes) -> list[slice]:
    """Consecutive slices of blocks of the given sizes."""
    edges = np.concatenate(([0], np.cumsum(sizes))).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1].tolist(), edges[1:].tolist())]


def compose_blocks(bms: list) -> BoltzmannMachine:
    """One block-diagonal BM holding independent BMs (in order)."""
    n = sum(bm.n_units for bm in bms)
    W, b = np.zeros((n, n)), np.zeros(n)
    for s, bm in zip(block_slices([bm.n_units for bm in bms]), bms):
        W[s, s], b[s] = bm.W, bm.b
    return BoltzmannMachine(W, b)


class TargetStatistics:
    """Statistics function of target learning: each block of the network should sample its target BM.

    Data statistics are the exact moments of the targets (references §3); model statistics those of
    each block's time-continuous joint distribution over the iteration's window. Records per
    iteration ``dkl_sampled_target`` (one value per block, nats); per segment (the distributions
    pooled over the segment) ``segment_dkl_sampled_target``.
    """

    def __init__(self, targets: list, tau_ref_ms: float):
        self.targets = list(targets)
        self.blocks = block_slices([bm.n_units for bm in self.targets])
        self.tau_ref_ms = float(tau_ref_ms)
        n = sum(bm.n_units for bm in self.targets)
        self.data_mean, self.data_second = np.zeros(n), np.zeros((n, n))
        for s, target in zip(self.blocks, self.targets):
            self.data_mean[s], self.data_second[s, s] = exact_moments(target)
        self.p_targets = [joint(target) for target in self.targets]
        self._pooled = None

    def __call__(self, network, timed: TimedSimulator, iteration: int, duration_ms: float,
                 rng=None) -> Statistics:
        t_start, t_stop = timed.run(duration_ms)
        spiketrains = network.spiketrains(clear=True)
        n = self.data_mean.shape[0]
        model_mean, model_second = np.zeros(n), np.zeros((n, n))
        dkl = []
        if self._pooled is None:
            self._pooled = [np.zeros(2 ** (s.stop - s.start)) for s in self.blocks]
        for k, (s, p_target) in enumerate(zip(self.blocks, self.p_targets)):
            p = joint_distribution(spiketrains[s], self.tau_ref_ms, t_start, t_stop)
            model_mean[s], model_second[s, s] = moments_from_distribution(p, s.stop - s.start)
            self._pooled[k] += p
            dkl.append(dkl_both(p, p_target)["dkl_sampled_target"])
        return Statistics((self.data_mean, self.data_second), (model_mean, model_second),
                          {"dkl_sampled_target": dkl})

    def end_segment(self, W: np.ndarray, b: np.ndarray) -> dict:
        """D_KL(sampled || target) per block of the distributions pooled over the segment."""
        pooled, self._pooled = self._pooled or [], None
        return {"segment_dkl_sampled_target": [dkl_both(p / p.sum(), q)["dkl_sampled_target"]
                                               for p, q in zip(pooled, self.p_targets)]}


class ClampedStatistics:
    """Statistics function of learning from data: one clamped data phase and one free model phase.

    Per iteration: ``batch_size`` rows of ``data`` (drawn with the engine's generator) are clamped one
    after the other onto the units ``visible`` for ``clamp_ms`` each, through the network's
    ``clamp(units, values, clamp_bias)`` (then ``release()``). A network with
    ``clamp_schedule(units, rows, clamp_bias)`` (leak potentials per phase) runs the whole iteration as
    ONE parameter schedule instead (:func:`cortexsim.backends.schedules.run_parameter_schedule`: one
    launch of the compiled binary on ``brian2_standalone``, which then also delivers the spikes in
    flight at phase boundaries; ``population.set`` + ``run`` per phase elsewhere, as before) and its
    spikes are read as arrays (:func:`cortexsim.backends.spikes.spike_arrays`). The data statistics are the states read
    after ``settle_ms`` of each clamp, with the clamped units at their clamped values. Then the network
    runs free for the iteration's sampling time (model phase). States are read on a grid of
    ``readout_dt_ms`` (ms). Records ``model_mean_activity`` per iteration; ``on_segment(W, b) -> dict``
    (optional) adds per-segment records (e.g. a test accuracy of the current parameters).

    Parameters
    ----------
    data : array (n_rows, n_visible)
        Binary training rows, one value per unit of ``visible``.
    visible : array of int
        Network units the rows are clamped onto (``n_visible`` of them).
    batch_size : int
        Rows per iteration.
    clamp_ms, settle_ms, readout_dt_ms : float
        Clamp time per row, its discarded start, read-out grid (ms).
    clamp_bias : float
        Bias magnitude that clamps a unit (BM units).
    on_segment : callable, optional
    blocks : list of slice, optional
        Independent networks (units of each): second moments only within them, as
        :class:`~cortexsim.models.cd_learning.DiagonalBlocks` (no full (n, n) arrays,
        :func:`cortexsim.models.cd_learning.moments_from_states`); for a block-diagonal mask, whose
        update reads nothing else, the same training with M times less work on the moments.
    n_units : int, optional
        Units of ONE copy of the trained BM when the network holds several identical copies
        (:class:`cortexsim.models.sampling_network.ReplicatedNetwork`: copy c = units ``c * n_units ..``);
        ``visible`` then indexes one copy. None: the network is one copy.
    data_copies : int
        Copies clamped in the data phase (the first ones), >= 1, dividing ``batch_size``: copy d clamps rows
        ``d * P .. (d + 1) * P - 1`` of the batch (P = batch_size / data_copies) one after the other, all
        copies in parallel, so the data phase takes P clamps. Data moments pool the copies' clamp windows.
    free_chains : int
        Persistent free chains, >= 0: the copies after the data copies, never clamped. With
        free_chains = 0 (and one data copy: today's route) the model moments are the data copies' free
        run after the release (``duration_ms``); with free_chains >= 1 they are the free chains' states
        over the WHOLE iteration (data phase and ``duration_ms``), pooled over the chains, and the data
        copies' free run is not used (no bias towards the last clamped image). In the first iteration of a
        segment (a network not seen before) the free chains are started like today's route: clamped with
        the data copies (chain k with data copy k mod data_copies) during the data phase, their model
        moments from the free run after the release only. (A LIF network of MNIST size started from rest can
        stay in a state with silent hidden units that the RBM does not have; started from an image, it does
        not.) Records ``model_hidden_mean_activity`` (units outside ``visible``) per iteration.
    stagger_groups : int
        >= 1; with ``blocks`` (independent networks) and G > 1, block m belongs to group ``m mod G`` and the
        groups' data and model phases are staggered in time
        (:func:`cortexsim.models.cd_learning.staggered_phases`): each network still gets ``batch_size``
        whole clamps of ``clamp_ms`` and ``duration_ms`` of free running per iteration, but at any moment
        about the same share of networks is clamped (in an ensemble whose networks are each other's
        background, the background then no longer changes between a network's data and model phases).
        The free run may come in two pieces, the first continuing the previous iteration's. 1: all
        networks clamped at once (the unstaggered route, unchanged). Needs ``blocks``, one data copy and no
        free chains.

    source_efficacy : callable, optional
        ``source_efficacy(n_neurons)`` -> a fresh accumulator with ``add(states)`` and ``per_second()``
        (:class:`cortexsim.models.ensemble_background.SourceEfficacy`): every iteration's states of all neurons
        go into it, and each segment records ``segment_source_efficacy_hz`` (per neuron, the weight fraction
        its spikes released per second through the background synapses in that segment).

    Every iteration also records ``mean_rate_hz``: the mean firing rate of all neurons over the whole
    iteration (on-fraction of the states / refractory time).
    """

    def __init__(self, data: np.ndarray, visible, batch_size: int, clamp_ms: float, settle_ms: float,
                 readout_dt_ms: float, clamp_bias: float, on_segment: Callable | None = None,
                 blocks: list | None = None, n_units: int | None = None, data_copies: int = 1,
                 free_chains: int = 0, stagger_groups: int = 1, source_efficacy: Callable | None = None):
        self.visible = np.asarray(visible, dtype=int)
        self.source_efficacy = source_efficacy
        self._efficacy = None    # the current segment's accumulator
        self.data = check_binary_data(data, self.visible.size, "training data")
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.clamp_ms = check_positive(clamp_ms, "clamp_ms", "ms")
        self.settle_ms = check_non_negative(settle_ms, "settle_ms", "ms")
        self.readout_dt_ms = check_positive(readout_dt_ms, "readout_dt_ms", "ms")
        self.clamp_bias = check_positive(clamp_bias, "clamp_bias")
        self.on_segment = on_segment
        self.blocks = None if blocks is None else list(blocks)
        self.data_copies = check_int(data_copies, "data_copies", minimum=1)
        self.free_chains = check_int(free_chains, "free_chains", minimum=0)
        if self.batch_size % self.data_copies:
            raise ValueError(f"data_copies must divide batch_size ({self.batch_size}), got {self.data_copies}")
        self.n_units = None if n_units is None else check_int(n_units, "n_units", minimum=1)
        copies = self.data_copies + self.free_chains
        if copies > 1:
            if self.n_units is None:
                raise ValueError("n_units (units of one copy) is needed with data_copies > 1 or free_chains > 0")
            if self.blocks is not None:
                raise ValueError("blocks (independent networks) and copies (data_copies, free_chains) exclude "
                                 "each other")
            if self.visible.size and (self.visible.min() < 0 or self.visible.max() >= self.n_units):
                raise ValueError(f"visible must index one copy of n_units = {self.n_units} units")
        self.stagger_groups = check_int(stagger_groups, "stagger_groups", minimum=1)
        if self.stagger_groups > 1:
            if self.blocks is None:
                raise ValueError("stagger_groups > 1 needs blocks (the independent networks to stagger)")
            if copies > 1:
                raise ValueError("stagger_groups > 1 excludes data_copies > 1 and free_chains > 0")
            if self.stagger_groups > len(self.blocks):
                raise ValueError(f"stagger_groups must be at most the number of networks ({len(self.blocks)}), "
                                 f"got {self.stagger_groups}")
            for name in ("clamp_ms", "settle_ms"):
                _check_on_grid(getattr(self, name), name, self.readout_dt_ms)
        self._network = None     # the network of the current segment (a new one: the free chains start clamped)

    def _pooled(self, states: np.ndarray, copies: range) -> np.ndarray:
        """Rows of ``states`` (T, all neurons) of the given copies stacked: (T * len(copies), n_units)."""
        if self.n_units is None:
            return states
        return np.vstack([states[:, c * self.n_units:(c + 1) * self.n_units] for c in copies])

    def __call__(self, network, timed: TimedSimulator, iteration: int, duration_ms: float,
                 rng: np.random.Generator) -> Statistics:
        batch = self.data[rng.integers(0, self.data.shape[0], self.batch_size)]
        if self.stagger_groups > 1:
            return self._staggered(network, timed, duration_ms, batch)
        D, n = self.data_copies, self.n_units
        per_copy = self.batch_size // D
        # phase j clamps row d * per_copy + j onto data copy d (all data copies at once)
        clamped = list(range(D))
        start_chains = self.free_chains > 0 and network is not self._network
        if start_chains:    # a new segment: the free chains start from images, clamped with the data copies
            clamped += [D + k for k in range(self.free_chains)]
            self._network = network
        units = self.visible if n is None else np.concatenate([c * n + self.visible for c in clamped])
        phase_rows = [np.concatenate([batch[(c % D) * per_copy + j] for c in clamped]) for j in range(per_copy)]
        t_begin = timed.t_ms
        dt = self.readout_dt_ms
        schedule = getattr(network, "clamp_schedule", None)
        if schedule is not None:
            # the whole iteration as one parameter schedule (one launch on brian2_standalone), spikes as arrays
            leaks = schedule(units, phase_rows, self.clamp_bias)
            phases = timed.run_schedule(network.population, "v_rest", leaks,
                                        [self.clamp_ms] * per_copy + [duration_ms])
            windows, model_window = phases[:-1], phases[-1]
            times, indices = spike_arrays(network.population, clear=True)
            states = states_on_grid_from_arrays(times, indices, network.population.size, network.neuron.tau_refrac,
                                                t_begin, timed.t_ms, dt)
        else:
            windows = []
            for row in phase_rows:
                network.clamp(units, row, self.clamp_bias)
                windows.append(timed.run(self.clamp_ms))
            network.release()
            model_window = timed.run(duration_ms)
            spiketrains = network.spiketrains(clear=True)
            states = states_on_grid(spiketrains, network.neuron.tau_refrac, t_begin, timed.t_ms, dt)
        data_rows = []
        for j, (t0, t1) in enumerate(windows):
            first, last = int(round((t0 + self.settle_ms - t_begin) / dt)), int(round((t1 - t_begin) / dt))
            for d in range(D):
                # 0/1 states (uint8 on the array route): no float copy
                block = self._pooled(states[first:last], range(d, d + 1)).copy()
                block[:, self.visible] = batch[d * per_copy + j]  # the data: clamped units at their clamped values
                data_rows.append(block)
        first = int(round((model_window[0] - t_begin) / dt))
        # with blocks: second moments as DiagonalBlocks (what the block update reads), no full (n, n) arrays
        dense = self.blocks is None
        if self.free_chains:    # the persistent chains over the whole iteration (after the release when started)
            model = moments_from_states(self._pooled(states[first if start_chains else 0:],
                                                     range(D, D + self.free_chains)))
        else:
            model = moments_from_states(self._pooled(states[first:], range(D)), blocks=self.blocks, dense=dense)
        hidden = np.ones(model[0].shape[0], dtype=bool)
        hidden[self.visible] = False
        self._account(states)
        return Statistics(moments_from_states(np.vstack(data_rows), blocks=self.blocks, dense=dense), model,
                          {"model_mean_activity": float(np.mean(model[0])),
                           "model_hidden_mean_activity": float(np.mean(model[0][hidden])) if hidden.any() else None,
                           "mean_rate_hz": source_rate_hz(network, states)})

    def staggered_states(self, network, timed: TimedSimulator, duration_ms: float, batch: np.ndarray
                         ) -> tuple[np.ndarray, list]:
        """Run one staggered iteration (``stagger_groups`` > 1) with the rows ``batch`` (batch_size, n_visible).

        Returns the states of all neurons on the read-out grid from the iteration's start, (T, n) uint8, and
        each group's phases (:func:`cortexsim.models.cd_learning.staggered_phases`, ms from the start;
        network m is in group ``m mod stagger_groups``).
        """
        G, dt = self.stagger_groups, self.readout_dt_ms
        groups = staggered_phases(self.batch_size, self.clamp_ms, duration_ms, G)
        bounds = sorted({t for phases in groups for a, b, _ in phases for t in (a, b)})
        # per block: the positions in ``visible`` of its units
        owned = [(self.visible >= s.start) & (self.visible < s.stop) for s in self.blocks]
        clamps = []                 # per merged interval: (units, values), all of every clamped block
        for a in bounds[:-1]:
            units, values = [], []
            for m, sel in enumerate(owned):
                row = next(r for start, stop, r in groups[m % G] if start <= a < stop)
                if row >= 0:
                    units.append(self.visible[sel])
                    values.append(batch[row][sel])
            clamps.append((np.concatenate(units).astype(int) if units else np.zeros(0, dtype=int),
                           np.concatenate(values) if values else np.zeros(0)))
        durations = np.diff(bounds)
        t_begin = timed.t_ms
        schedule = getattr(network, "clamp_schedule", None)
        if schedule is not None:
            leaks = np.vstack([schedule(u, [v], self.clamp_bias)[0] if u.size else schedule(u, [], self.clamp_bias)[0]
                               for u, v in clamps])
            timed.run_schedule(network.population, "v_rest", leaks, durations)
            times, indices = spike_arrays(network.population, clear=True)
            states = states_on_grid_from_arrays(times, indices, network.population.size, network.neuron.tau_refrac,
                                                t_begin, timed.t_ms, dt)
        else:
            for (u, v), d in zip(clamps, durations):
                if u.size:
                    network.clamp(u, v, self.clamp_bias)
                else:
                    network.release()
                timed.run(d)
            network.release()
            states = states_on_grid(network.spiketrains(clear=True), network.neuron.tau_refrac, t_begin,
                                    timed.t_ms, dt)
        return states, groups

    def _staggered(self, network, timed: TimedSimulator, duration_ms: float, batch: np.ndarray) -> Statistics:
        """One iteration with the groups' phases staggered (``stagger_groups`` > 1, see the class docstring)."""
        G, dt = self.stagger_groups, self.readout_dt_ms
        _check_on_grid(duration_ms, "duration_ms", dt)
        states, groups = self.staggered_states(network, timed, duration_ms, batch)
        self._account(states)

        def index(t):
            return int(round(t / dt))

        per_clamp = index(self.clamp_ms) - index(self.settle_ms)
        data = np.empty((self.batch_size * per_clamp, states.shape[1]), dtype=states.dtype)
        model = np.empty((index(duration_ms), states.shape[1]), dtype=states.dtype)
        for m, s in enumerate(self.blocks):
            free = []
            for a, b, row in groups[m % G]:
                if row >= 0:
                    data[row * per_clamp:(row + 1) * per_clamp, s] = states[index(a + self.settle_ms):index(b), s]
                else:
                    free.append(states[index(a):index(b), s])
            model[:, s] = np.vstack(free)
        for j in range(self.batch_size):  # the data: clamped units at their clamped values
            data[j * per_clamp:(j + 1) * per_clamp, self.visible] = batch[j]
        model_moments = moments_from_states(model, blocks=self.blocks, dense=False)
        hidden = np.ones(model_moments[0].shape[0], dtype=bool)
        hidden[self.visible] = False
        return Statistics(moments_from_states(data, blocks=self.blocks, dense=False), model_moments,
                          {"model_mean_activity": float(np.mean(model_moments[0])),
                           "model_hidden_mean_activity": (float(np.mean(model_moments[0][hidden])) if hidden.any()
                                                          else None),
                           "mean_rate_hz": source_rate_hz(network, states)})

    def _account(self, states: np.ndarray) -> None:
        """Feed one iteration's states (all neurons) to the segment's source-efficacy accumulator, if any."""
        if self.source_efficacy is None:
            return
        if self._efficacy is None:
            self._efficacy = self.source_efficacy(states.shape[1])
        self._efficacy.add(states)

    def end_segment(self, W: np.ndarray, b: np.ndarray) -> dict:
        out = {} if self.on_segment is None else dict(self.on_segment(W, b))
        if self._efficacy is not None:
            out["segment_source_efficacy_hz"] = self._efficacy.per_second().tolist()
            self._efficacy = None
        return out


def _check_on_grid(value: float, name: str, readout_dt_ms: float) -> None:
    """Staggered phases are read by index: ``value`` must be a whole number of read-out steps."""
    steps = value / readout_dt_ms
    if abs(steps - round(steps)) > 1e-9 * max(1.0, abs(steps)):
        raise ValueError(f"{name} must be a whole number of readout_dt_ms ({readout_dt_ms} ms) with stagger_groups "
                         f"> 1, got {value!r}")


def mean_rate_hz(states: np.ndarray, tau_ref_ms: float) -> float:
    """Mean firing rate (Hz) of all neurons from their 0/1 states (on for ``tau_ref_ms`` after each spike).

    Examples
    --------
    >>> states = np.zeros((100, 2), dtype=np.uint8)   # 1 ms grid, 100 ms
    >>> states[:10, 0] = states[50:60, 0] = 1          # neuron 0: two spikes (tau_ref 10 ms), neuron 1 silent
    >>> mean_rate_hz(states, 10.0)                    # (20 Hz + 0 Hz) / 2
    10.0
    """
    return float(np.mean(states, dtype=float) / tau_ref_ms * 1e3) if states.size else 0.0


def source_rate_hz(network, states: np.ndarray) -> float:
    """Mean firing rate (Hz, :func:`mean_rate_hz`) of the units of ``network`` that may drive a background: its
    ``source_units`` (population indices, :attr:`cortexsim.models.ensemble.Ensemble.source_units`) if it has them,
    else all units; ``states`` (time, units) holds all of the network's units.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> states = np.zeros((100, 3), dtype=np.uint8)
    >>> states[:10, 0] = 1                               # unit 0: one spike (tau_ref 10 ms) in 100 ms
    >>> net = SimpleNamespace(neuron=SimpleNamespace(tau_refrac=10.0), source_units=np.array([1, 2]))
    >>> source_rate_hz(net, states), round(source_rate_hz(SimpleNamespace(neuron=net.neuron), states), 3)
    (0.0, 3.333)
    """
    units = getattr(network, "source_units", None)
    return mean_rate_hz(states if units is None else states[:, units], network.neuron.tau_refrac)


def train_cd(build: Callable, statistics: Callable, settings: CDSettings, state: CDState, sim: ModuleType,
             mask: np.ndarray | None = None, save: Callable[[CDState], None] | None = None,
             progress: bool = False, label: str = "CD", stop_after_iteration: int | None = None,
             blocks: list | None = None) -> bool:
    """Run the remaining iterations of ``state`` (updated in place); True when all are done.

    Parameters
    ----------
    build : callable
        Network factory ``build(sim, W, b, first_iteration) -> network`` (calls ``sim.setup``).
    statistics : callable
        ``statistics(network, timed, iteration, duration_ms, rng) -> Statistics``; may have an
        ``end_segment(W, b) -> dict`` method whose values are appended to the history per segment.
    settings : CDSettings
    state : CDState
        Where to start (:meth:`CDState.fresh` or a checkpoint); updated in place.
    sim : module
        The PyNN backend module.
    mask : array (n, n), optional
        Weight connectivity mask (bipartite, block-diagonal).
    save : callable, optional
        Called with the state after every segment (writes the checkpoint atomically).
    progress : bool
        Progress bar with ETA over iterations.
    label : str
        Name of the progress bar.
    stop_after_iteration : int, optional
        Stop after the first segment that ends at or after this iteration and return False (an
        interruption, for tests of resumption).
    blocks : list of slice, optional
        Independent networks of a block-diagonal ``mask``: the update works block by block
        (:class:`~cortexsim.models.cd_learning.CDUpdate`; the same parameters, M times less work), and the
        state holds W, the velocity and the average per network (:class:`CDState`): the factory, the network's
        ``set_parameters`` and ``end_segment`` get W as a :class:`~cortexsim.models.cd_learning.DiagonalBlocks`
        (``W[s, s]`` of a block is that network's weights; ``np.asarray(W)`` the full matrix).
    """
    update = settings.update(mask, state.b.shape[0], blocks).load(state.update)
    durations = settings.durations()
    rng = state.generator()
    if blocks is not None and not isinstance(state.W, DiagonalBlocks):   # a state of full matrices (older checkpoint)
        state.W = DiagonalBlocks.from_dense(state.W, blocks, "the state's W")
    W, b = state.W, state.b
    history, timing = state.history, state.timing
    timing.setdefault("training_cpu_s", 0.0)            # checkpoints written before these keys existed
    timing.setdefault("iterations_cpu_timed", 0)
    hardware = HardwareTime.from_dict(timing.get("hardware"))
    end_segment = getattr(statistics, "end_segment", None)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=settings.iterations, initial=state.iteration, desc=label, unit="it")
    try:
        while state.iteration < settings.iterations:
            first = state.iteration
            last = min(first + settings.segment_length, settings.iterations)
            tic, tic_cpu = time.perf_counter(), time.process_time()
            network = build(sim, W, b, first)
            timed = TimedSimulator(sim, settings.dt_ms)
            if settings.burn_in_ms > 0:
                timed.run(settings.burn_in_ms)
                discard_spikes(network)
            timing["build_wall_s"] += time.perf_counter() - tic
            for iteration in range(first, last):
                tic_statistics = time.perf_counter()
                run_before = timed.run_wall_s
                stats = statistics(network, timed, iteration, float(durations[iteration]), rng)
                timing["statistics_wall_s"] += (time.perf_counter() - tic_statistics
                                                - (timed.run_wall_s - run_before))
                tic_update = time.perf_counter()
                W, b = update(iteration, W, b, stats.data, stats.model)
                network.set_parameters(W, b)
                timing["update_wall_s"] += time.perf_counter() - tic_update
                history["iteration"].append(iteration)
                history["learning_rate"].append(update.last_learning_rate)
                history["sampling_ms"].append(float(durations[iteration]))
                history["gradient_norm"].append(update.last_gradient_norm)
                for key, value in stats.record.items():
                    history.setdefault(key, []).append(value)
                if bar is not None:
                    bar.update(1)
                    if "dkl_sampled_target" in stats.record:
                        bar.set_postfix(dkl_median=f"{np.median(stats.record['dkl_sampled_target']):.4f}")
            hardware.add(sim)
            sim.end()
            timing["run_wall_s"] += timed.run_wall_s
            timing["training_wall_s"] += time.perf_counter() - tic
            timing["training_cpu_s"] += time.process_time() - tic_cpu
            timing["iterations_cpu_timed"] += last - first
            timing["hardware"] = hardware.to_dict()
            timing["iterations_timed"] += last - first
            history["segment_end"].append(last)
            if end_segment is not None:
                for key, value in end_segment(W, b).items():
                    history.setdefault(key, []).append(value)
            state.iteration, state.W, state.b = last, W, b
            state.update = update.to_dict()
            state.rng = None if rng is None else rng.bit_generator.state
            if save is not None:
                save(state)
            if stop_after_iteration is not None and stop_after_iteration <= last < settings.iterations:
                return False
    finally:
        if bar is not None:
            bar.close()
    timing["overhead_fraction"] = 1.0 - timing["run_wall_s"] / max(timing["training_wall_s"], 1e-12)
    timing["overhead_definition"] = "1 - (wall time in sim.run) / (wall time of the training loop)"
    return True


def training_energy(timing: dict, cpu_power_w_per_core: float = DEFAULT_CPU_POWER_W_PER_CORE) -> dict | None:
    """Energy per CD training iteration from the ``timing`` of a :class:`CDState` (J; None before any
    iteration, or for a checkpoint written before the CPU time was recorded).

    The chip's energy model (:func:`cortexsim.backends.energy.experiment_energy`: published power x
    emulated hardware time of every segment, burn-in included) on a chip backend; the training loop's
    CPU time (network builds, runs, statistics, updates) x the power of a core on a software backend.
    """
    if not timing.get("iterations_cpu_timed"):
        return None
    return experiment_energy(HardwareTime.from_dict(timing.get("hardware")), timing["training_cpu_s"],
                             timing["iterations_cpu_timed"], "iteration", cpu_power_w_per_core)


def save_checkpoint(folder, state: dict):
    """Write a protocol's checkpoint ``state`` atomically to ``folder/checkpoint.json``."""
    return write_json_atomic(Path(folder) / CHECKPOINT_FILE, state)


def load_checkpoint(folder, task: str, config: dict | None = None, template: dict | None = None,
                    added_defaults: dict | None = None) -> dict:
    """Read and check the checkpoint in ``folder``.

    Parameters
    ----------
    folder : path
        The folder holding ``checkpoint.json``.
    task : str
        The task the checkpoint must belong to.
    config : dict, optional
        The settings of the run that resumes (``config_to_dict``); they must equal the checkpoint's.
    template : dict, optional
        A fresh state of the same run: every key of it must be in the checkpoint with a value of
        the same kind and size (:func:`cortexsim.results.check_structure`).
    added_defaults : dict, optional
        Defaults of settings that may have been added to the task's config after the checkpoint was written
        (their default being the behaviour before they existed): a key of ``config`` missing from the
        checkpoint's config counts as this value there, so the run resumes if ``config`` has the default (and is
        refused, naming the setting, otherwise); the returned state's ``config`` then holds it.

    Examples
    --------
    >>> # a run started before EnsembleDataConfig.eval_groups existed resumes with eval_groups = 1:
    >>> # load_checkpoint(out, "ensemble_data", config_to_dict(config), added_defaults={"eval_groups": 1})

    Raises
    ------
    ValueError
        If the file is missing or not valid JSON, belongs to another task, was written with other
        settings (each differing setting is named with the checkpoint's and the new value), or a
        value is corrupt (the file and the key are named).
    """
    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        raise ValueError(f"no checkpoint to resume from: {path} does not exist")
    state = read_json(path)
    if not isinstance(state, dict) or state.get("task") != task:
        found = state.get("task") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} is not a checkpoint of the {task!r} task (found {found!r})")
    if config is not None:
        if not isinstance(state.get("config"), dict):
            raise ValueError(f"{path}: key config is missing or not a mapping")
        added = {key: value for key, value in (added_defaults or {}).items()
                 if key in config and key not in state["config"]}
        state["config"] = {**state["config"], **added}
        if state["config"] != config:
            raise ValueError(f"{path} was written with other settings (checkpoint -> now): "
                             f"{describe_differences(state['config'], config)}; resume with the checkpoint's "
                             f"settings, or start a new run with --overwrite")
    if template is not None:
        check_structure(template, state, str(path))
    return state
