"""Plumbing shared by the CD-training protocols: fast parameter updates, clamping, segments, checkpoints.

Reproducible resumption
-----------------------
Training runs in *segments* of ``checkpoint_every`` iterations. Each segment starts a fresh simulation
(``sim.setup`` with a seed derived from ``(seed, first iteration of the segment)``), builds the
sampling network once with the current parameters, and then only updates leak potentials and weights
in place, iteration by iteration. A checkpoint is written at the end of every segment. Because a
segment's simulation depends only on (seed, iteration, parameters), a run resumed from a checkpoint
repeats exactly what the uninterrupted run did from that point: on a seedable backend (NEST) the
final parameters are bit-identical. (Re-seeding a running simulation would not be enough: membrane,
refractory and synapse states, and NEST's adaptive integrator steps, would differ.)

Clamping
--------
A unit is clamped through its leak potential, i.e. a very strong bias ``+- clamp_bias`` in BM units:
``E_l = v_p05 + alpha * (+- clamp_bias)``. That is a plain PyNN ``population.set(v_rest=...)`` and
works on every backend. The weights onto a clamped unit do not matter while it is clamped, so they
are left as they are.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import ModuleType

import numpy as np

from cortexsim.checks import check_choice, check_fraction, check_int, check_non_negative
from cortexsim.results import read_json, write_json_atomic
from cortexsim.seeds import check_seed

from ..backends.registry import backend_info, check_dt
from ..models.boltzmann import BoltzmannMachine
from ..models.cd_learning import LearningRateSchedule
from ..models.lif_translation import bm_to_lif
from ..models.sampling_network import SYNAPSE_KINDS, SamplingNetwork

__all__ = ["check_training_settings", "apply_bm", "clamped_leak", "set_leak", "TimedSimulator",
           "CHECKPOINT_FILE", "save_checkpoint", "load_checkpoint", "rng_from_state"]

CHECKPOINT_FILE = "checkpoint.json"


def check_training_settings(config) -> None:
    """Checks shared by the CD configs (seed, backend, dt, optimizer, iterations, segments)."""
    check_seed(config.seed)
    backend_info(config.backend)
    check_dt(config.backend, config.dt_ms)
    LearningRateSchedule(config.learning_rate, config.schedule, config.schedule_tau)
    check_fraction(config.momentum, "momentum")
    check_non_negative(config.weight_decay, "weight_decay")
    check_int(config.iterations, "iterations", minimum=1)
    check_int(config.checkpoint_every, "checkpoint_every", minimum=1)
    check_choice(config.synapses, "synapses", SYNAPSE_KINDS)


def apply_bm(network: SamplingNetwork, bm: BoltzmannMachine) -> None:
    """Represent ``bm`` on ``network`` from now on (leak potentials and all weights, in place).

    Same result as ``network.set_bm(bm)``, but the weights go through
    :func:`cortexsim.backends.projection_weights.set_projection_weights` (one call per projection).
    """
    if bm.n_units != network.n_neurons:
        raise ValueError(f"bm has {bm.n_units} units but the network has {network.n_neurons} neurons")
    lif = bm_to_lif(bm, network.neuron, network.noise, network.fit)
    network.population.set(v_rest=lif.e_leak)
    network.recurrent.write(lif.excitatory_weights, lif.inhibitory_weights)
    network.lif = lif
    network.bm = bm


def clamped_leak(network: SamplingNetwork, clamp_index: np.ndarray, clamp_values: np.ndarray,
                 clamp_bias: float) -> np.ndarray:
    """Leak potentials (mV) of the network with units ``clamp_index`` clamped to ``clamp_values`` (0/1).

    A clamped unit gets the bias ``+clamp_bias`` (value 1) or ``-clamp_bias`` (value 0); the others keep
    the leak potential of the BM currently represented.
    """
    values = np.asarray(clamp_values, dtype=float)
    if values.shape != np.shape(clamp_index):
        raise ValueError(f"clamp_values must match clamp_index in shape, got {values.shape} and "
                         f"{np.shape(clamp_index)}")
    e_leak = np.array(network.lif.e_leak, dtype=float)
    e_leak[clamp_index] = network.fit.v_p05 + network.fit.alpha * clamp_bias * (2.0 * values - 1.0)
    return e_leak


def set_leak(network: SamplingNetwork, e_leak: np.ndarray) -> None:
    """Set all leak potentials (mV) in one call (clamping, or ``network.lif.e_leak`` to release)."""
    network.population.set(v_rest=np.asarray(e_leak, dtype=float))


class TimedSimulator:
    """A ``sim`` wrapper that tracks the simulated time itself and the wall time spent in ``sim.run``.

    Asking PyNN-on-NEST for the current time costs a full kernel-status query, so the time is
    counted here (ms since ``setup``).
    """

    def __init__(self, sim: ModuleType):
        self.sim = sim
        self.t_ms = 0.0
        self.run_wall_s = 0.0

    def run(self, duration_ms: float) -> tuple[float, float]:
        """Advance by ``duration_ms``; returns the window ``(t_start, t_stop)`` in ms."""
        start = self.t_ms
        tic = time.perf_counter()
        self.sim.run(float(duration_ms))
        self.run_wall_s += time.perf_counter() - tic
        self.t_ms += float(duration_ms)
        return start, self.t_ms


def save_checkpoint(folder: str | Path, state: dict) -> Path:
    """Write ``state`` atomically to ``folder/checkpoint.json`` (the previous one stays until replaced)."""
    return write_json_atomic(Path(folder) / CHECKPOINT_FILE, state)


def load_checkpoint(folder: str | Path, task: str) -> dict:
    """Read the checkpoint in ``folder``; ValueError if it is missing or belongs to another task."""
    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        raise ValueError(f"no checkpoint to resume from: {path} does not exist")
    state = read_json(path)
    if not isinstance(state, dict) or state.get("task") != task:
        raise ValueError(f"{path} is not a checkpoint of the {task!r} task (found {state.get('task')!r})")
    return state


def rng_from_state(state: dict) -> np.random.Generator:
    """A numpy Generator restored from ``Generator.bit_generator.state``."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
