"""Set-up and control of the BrainScaleS-2 dialect: ``setup``, ``run`` with ``RunCommand``, ``reset``, ``end``.

Times are hardware ms: ``run(0.2)`` emulates 0.2 ms of chip time (200 ms of biological time).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from enum import Enum, auto

import numpy as np
from pyNN import common
from pyNN.recording import get_io

from . import simulator
from .mapping import Mapping, SetupOptions, _Rebuild
from .plasticity_rules import RuleContext
from .ppu import network_rules
from ..correlation import SensorParameters
from .recording import empty_snippet

__all__ = ["RunCommand", "setup", "run", "run_for", "run_until", "reset", "end", "preprocess",
           "get_backend_statistics", "MappedTopologyStatistics", "InjectedConfiguration", "InjectedReadout",
           "initialize", "get_current_time", "get_time_step", "get_min_delay", "get_max_delay",
           "num_processes", "rank"]


class RunCommand(Enum):
    """What ``run(runtime, command)`` does.

    ``PREPARE``: place the network and calibrate (no emulation). ``APPEND``: schedule ``runtime`` ms
    with the current parameters and weights. ``EXECUTE`` (default): run the scheduled snippets,
    then ``runtime`` ms if given.
    """

    PREPARE = auto()
    APPEND = auto()
    EXECUTE = auto()


@dataclass
class InjectedConfiguration:
    """Raw hardware configuration written around the realtime part (hardware only).

    Accepted empty; any content raises "not supported by the emulator" in :func:`setup`.
    """

    pre_non_realtime: dict = field(default_factory=dict)
    pre_realtime: dict = field(default_factory=dict)
    inside_realtime_begin: dict = field(default_factory=dict)
    inside_realtime: dict = field(default_factory=dict)
    inside_realtime_end: dict = field(default_factory=dict)
    post_realtime: dict = field(default_factory=dict)
    ppu_symbols: dict = field(default_factory=dict)


@dataclass
class InjectedReadout:
    """Raw hardware reads around the realtime part (hardware only); accepted empty."""

    pre_realtime: set = field(default_factory=set)
    inside_realtime_begin: set = field(default_factory=set)
    inside_realtime_end: set = field(default_factory=set)
    post_realtime: set = field(default_factory=set)
    ppu_symbols: set = field(default_factory=set)


def _unsupported(feature: str, requested="it", allowed="the emulated chip's own configuration"):
    from ..brainscales.errors import UnsupportedFeatureError
    return UnsupportedFeatureError("bss2", f"not supported by the emulator: {feature}", requested, allowed)


def _is_empty(injected) -> bool:
    return all(not value for value in vars(injected).values())


def _permutation(values, what: str, size: int) -> list:
    values = list(values)
    for value in values:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{what} entries must be integers, got {value!r}")
        if value < 0:
            raise TypeError(f"{what} entries must be >= 0, got {value}")
        if value >= size:
            raise OverflowError(f"{what} entry {value} exceeds the largest index {size - 1}")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat entries, got {values}")
    return [int(v) for v in values]


def _sensor_parameters(value) -> SensorParameters:
    if value is None:
        return SensorParameters()
    if isinstance(value, SensorParameters):
        return value
    if isinstance(value, dict):
        unknown = set(value) - set(SensorParameters.__dataclass_fields__)
        if unknown:
            raise ValueError(f"correlation_sensors: unknown fields {sorted(unknown)}; known: "
                             f"{sorted(SensorParameters.__dataclass_fields__)}")
        return SensorParameters(**value)
    raise TypeError(f"correlation_sensors must be a SensorParameters or a dict, got {type(value).__name__}")


def setup(timestep: float | None = None, min_delay="auto", **extra_params) -> int:
    """Start a new experiment on the emulated BrainScaleS-2 chip (destroys any existing network).

    Parameters
    ----------
    timestep : float, optional
        Emulation step in hardware ms (default 1e-4 ms = 0.1 us, i.e. 0.1 ms of biological time).
    min_delay : "auto" or 0
        The chip has no programmable delays; only 0 ("auto") is allowed.
    **extra_params
        BrainScaleS-2's keywords: ``neuronPermutation`` (list: circuit of the k-th neuron),
        ``backgroundPermutation`` (list: generator of the k-th on-chip source population),
        ``calibration_cache`` (directory of the cached calibration measurement), ``max_delay`` (0),
        ``enable_neuron_bypass`` (False only), ``initial_config``, ``injected_config``,
        ``injected_readout``, ``injected_calib_target``, ``injected_calib_options``, ``connection``
        (None/empty only: raw hardware configuration is not emulated). The emulator's own:
        ``seed`` (run seed: Poisson trains, NEST; default 0), ``chip_seed`` (which emulated chip:
        its fixed-pattern noise; default 0), ``fixed_pattern_noise`` (True, False or a scale),
        ``trial_noise`` (fraction of the nominal noise, redrawn every trial), ``membrane_noise``
        (temporal noise of the analog circuits: standard deviation in nA of a white noise current
        into every neuron circuit, redrawn every 1 us of hardware time, independent between
        circuits; default 0 = none; *assumption*: the emulator's stand-in for the circuits' thermal
        and shot noise, whose magnitude is not known here), ``correlation_sensors``
        (:class:`~cortexsim.backends.correlation.SensorParameters` or a dict of its fields:
        the synapses' correlation sensors as plasticity rules see them). Unknown keywords raise
        KeyError (as on BrainScaleS-2).

    Returns
    -------
    int
        The MPI rank (0).
    """
    params = dict(extra_params)
    max_delay = params.pop("max_delay", "auto")
    if min_delay not in ("auto", 0, 0.0, None) or max_delay not in ("auto", 0, 0.0, None):
        raise _unsupported("synaptic delays", f"min_delay={min_delay!r}, max_delay={max_delay!r}", "0 ('auto')")
    if timestep is None:
        timestep = 1e-4
    if not (isinstance(timestep, (int, float)) and np.isfinite(timestep) and 1e-6 <= timestep <= 1e-3):
        raise ValueError(f"timestep must be a hardware time step in [1e-6, 1e-3] ms, got {timestep!r}")
    options = SetupOptions(timestep_ms=float(timestep))
    for name in ("seed", "chip_seed"):
        value = params.pop(name, 0)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        setattr(options, name, int(value))
    options.fixed_pattern_noise = params.pop("fixed_pattern_noise", True)
    options.trial_noise = params.pop("trial_noise", 0.0)
    options.membrane_noise_nA = params.pop("membrane_noise", 0.0)
    if not (isinstance(options.membrane_noise_nA, (int, float)) and np.isfinite(options.membrane_noise_nA)
            and 0 <= options.membrane_noise_nA <= 10):
        raise ValueError(f"membrane_noise must be a current standard deviation in [0, 10] nA, "
                         f"got {options.membrane_noise_nA!r}")
    if "neuronPermutation" in params:
        options.neuron_permutation = _permutation(params.pop("neuronPermutation"), "neuronPermutation", 512)
    if "backgroundPermutation" in params:
        options.background_permutation = _permutation(params.pop("backgroundPermutation"),
                                                      "backgroundPermutation", 8)
    options.calibration_cache = params.pop("calibration_cache", None)
    options.correlation_sensors = _sensor_parameters(params.pop("correlation_sensors", None))
    if params.pop("enable_neuron_bypass", False):
        raise _unsupported("neuron bypass mode (setup(enable_neuron_bypass=True))")
    for name in ("initial_config", "connection", "injected_calib_target", "injected_calib_options"):
        if params.pop(name, None) is not None:
            raise _unsupported(f"setup({name}=...): raw hardware configuration")
    for name in ("injected_config", "injected_readout"):
        injected = params.pop(name, None)
        if injected is not None and not _is_empty(injected):
            raise _unsupported(f"setup({name}=...): injected hardware configuration")
    if params:
        raise KeyError(f"unhandled extra_params in call to pynn.setup(...): {params}")
    from ..brainscales.control import _fpn_scale
    _fpn_scale(options.fixed_pattern_noise)
    if not (np.isfinite(options.trial_noise) and options.trial_noise >= 0):
        raise ValueError(f"trial_noise must be finite and >= 0, got {options.trial_noise!r}")
    state = simulator.state
    state.clear()
    state.dt = options.timestep_ms
    state.options = options
    state.rng = np.random.default_rng([options.seed, 0xB552])
    state.active = True
    state.scheduled = []
    state.started = time.perf_counter()
    return 0


def _require_setup():
    if not simulator.state.active:
        raise RuntimeError("call cortexsim.backends.brainscales2.setup() first")
    return simulator.state


def _mapping(state) -> Mapping:
    """The placed network, (re)built if the structure changed, otherwise with the current parameters."""
    if state.mapping is None or state.changed_topology or not state.mapping.matches():
        state.mapping = Mapping(state, state.options)
        state.changed_topology = False
        return state.mapping
    try:
        state.mapping.push()
    except _Rebuild:
        state.mapping = Mapping(state, state.options)
    return state.mapping


class _RuleState:
    """What a Python plasticity kernel may touch (weights, sensors, counters and membranes of the placed network)."""

    def __init__(self, mapping: Mapping):
        self.mapping = mapping

    def push_weights(self, projection) -> None:
        self.mapping.push_weights(projection)

    def read_membranes(self, population, device):
        return self.mapping.read_membranes(population, device)

    def read_correlation(self, projection):
        return self.mapping.plasticity.read_correlation(projection)

    def reset_correlation(self, projection, rows=None) -> None:
        self.mapping.plasticity.reset_correlation(projection, rows)

    def rate_counters(self, population, reset: bool):
        return self.mapping.plasticity.rate_counters(population, reset)




def _run_snippet(state, runtime: float) -> None:
    mapping = _mapping(state)
    t0, t1 = state.t, state.t + runtime
    snippets = {}
    for population in state.populations:
        snippet = empty_snippet(t0)
        population.recorder.snippets.append(snippet)
        snippets[id(population)] = snippet
    rules = network_rules(state)
    events = []
    for index, rule in enumerate(rules):
        rule._check_kernel()
        rule._start_run()
        events.extend((float(t), index) for t in rule.timer.event_times(t0, t1))
    context_state = _RuleState(mapping)
    for t_event, index in sorted(events):
        mapping.run_until(t_event)
        mapping.plasticity.collect()          # spikes so far -> correlation sensors, rate counters
        rules[index].statistics["events"] += 1
        rules[index].execute(RuleContext(t_event, rules[index], context_state))
    mapping.run_until(t1)
    mapping.plasticity.collect()
    mapping.harvest(snippets)
    state.t = t1
    state.runtimes.append(runtime)
    state.running = True


def _snapshot(state) -> dict:
    return {"parameters": {id(p): copy.deepcopy(p._parameters) for p in state.populations},
            "hwparams": {id(p): copy.deepcopy(getattr(p.celltype, "_actual_hwparams", None))
                         for p in state.populations},
            "weights": {id(p): p.integer_weights().copy() for p in state.projections},
            "structure": (tuple(id(p) for p in state.populations), tuple(id(p) for p in state.projections))}


def _restore(state, snapshot: dict) -> None:
    for population in state.populations:
        population._parameters = copy.deepcopy(snapshot["parameters"][id(population)])
        if snapshot["hwparams"][id(population)] is not None:
            population.celltype._actual_hwparams = copy.deepcopy(snapshot["hwparams"][id(population)])
    for projection in state.projections:
        for connection, weight in zip(projection.connections, snapshot["weights"][id(projection)].tolist()):
            connection._weight = weight
        projection._weights_changed = True


def run(runtime: float | None, command: RunCommand = RunCommand.EXECUTE) -> float:
    """Run the emulation (hardware ms), or prepare it, or schedule it (see :class:`RunCommand`).

    Returns
    -------
    float
        The current hardware time (ms).
    """
    state = _require_setup()
    if runtime is not None and not (np.isfinite(runtime) and runtime >= 0):
        raise ValueError(f"runtime must be a hardware time >= 0 ms, got {runtime!r}")
    if command == RunCommand.PREPARE:
        _mapping(state)
    elif command == RunCommand.APPEND:
        if runtime is None:
            raise ValueError("Appending a configuration that is executed for no time is forbidden.")
        state.scheduled.append((float(runtime), _snapshot(state)))
    elif command == RunCommand.EXECUTE:
        if runtime is None and not state.scheduled:
            raise ValueError("No experiment scheduled for execution yet; use RunCommand.APPEND to schedule "
                             "the current configuration, or RunCommand.PREPARE to only place the network")
        scheduled, state.scheduled = state.scheduled, []
        if scheduled:
            # APPENDed snippets run with the configuration they were appended with; afterwards the
            # current one is back (weight changes made by plasticity rules in them are not kept)
            current = _snapshot(state)
            try:
                for duration, snapshot in scheduled:
                    if snapshot["structure"] != current["structure"]:
                        raise _unsupported("changing the network structure between RunCommand.APPEND snippets")
                    _restore(state, snapshot)
                    _run_snippet(state, duration)
            finally:
                _restore(state, current)
        if runtime is not None:
            _run_snippet(state, float(runtime))
        for recorder in state.recorders:
            recorder.clear_flag = False
    else:
        raise ValueError(f"command must be a RunCommand, got {command!r}")
    return state.t


run_for = run


def run_until(time_point: float, callbacks=None) -> float:
    """Run until hardware time ``time_point`` (ms)."""
    if callbacks:
        raise _unsupported("run callbacks", "callbacks", "None")
    state = _require_setup()
    return run(max(float(time_point) - state.t, 0.0))


def preprocess() -> None:
    """The same as ``run(None, RunCommand.PREPARE)`` (kept for older scripts)."""
    run(None, RunCommand.PREPARE)


reset = common.build_reset(simulator)


def end() -> None:
    """Finish the experiment: write files requested with ``record(..., to_file=...)`` and discard the network."""
    state = simulator.state
    for population, variables, filename in state.write_on_end:
        population.write_data(get_io(filename), variables)
    state.write_on_end = []
    state.active = False
    state.mapping = None


@dataclass
class MappedTopologyStatistics:
    """Resources of the network placed on the emulated chip (``get_backend_statistics()``).

    Attributes
    ----------
    neurons : int
        Neuron circuits used.
    synapses : int
        Hardware synapses used (a connection of weight > 63 uses several).
    max_synapse_rows_per_neuron : int
        Largest fan-in in synapse rows (at most 256).
    external_spike_sources : int
        Spike sources played into the chip (SpikeSourceArray, SpikeSourcePoisson).
    background_spike_sources : int
        On-chip background generators in use (SpikeSourcePoissonOnChip populations, at most 8).
    mapping_duration_s : float
        Wall time of the last placement (s).
    hardware_time_ms : float
        Hardware time emulated so far in this trial (ms).
    chip : dict
        The emulated chip's report (biological time, speed-up, fixed-pattern noise, ...).
    """

    neurons: int
    synapses: int
    max_synapse_rows_per_neuron: int
    external_spike_sources: int
    background_spike_sources: int
    mapping_duration_s: float
    hardware_time_ms: float
    chip: dict

    def __str__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)}" for k in ("neurons", "synapses", "max_synapse_rows_per_neuron",
                                                              "external_spike_sources", "background_spike_sources",
                                                              "mapping_duration_s", "hardware_time_ms"))
        return f"MappedTopologyStatistics({fields})"


def get_backend_statistics() -> MappedTopologyStatistics:
    """Resources used by the placed network.

    Raises
    ------
    RuntimeError
        Before ``setup()`` or before the network was placed by ``run()`` (or PREPARE).
    """
    state = simulator.state
    if not state.active:
        raise RuntimeError("Backend statistics are only available for an active simulator after calling setup().")
    if state.mapping is None:
        raise RuntimeError("Backend statistics are only available after the network was placed, which happens in "
                           "pynn.run() (or pynn.run(None, pynn.RunCommand.PREPARE)).")
    return MappedTopologyStatistics(hardware_time_ms=float(sum(state.runtimes)), **state.mapping.statistics())


initialize = common.initialize
get_current_time, get_time_step, get_min_delay, get_max_delay, num_processes, rank = \
    common.build_state_queries(simulator)
