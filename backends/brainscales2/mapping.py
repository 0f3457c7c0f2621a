"""Placing the dialect's network onto the emulated chip, running it, and reading the results back.

The dialect (hardware units) is a layer over :mod:`cortexsim.backends.brainscales` (the emulated
bss2 chip in biological units on NEST, the "engine"). A :class:`Mapping` is built when a run needs
one and the network structure changed (populations, projections, recordings, the number of
hardware synapses of a connection) or after ``reset()``; otherwise each run only pushes the current
parameters and weights into the placed network and the emulation continues where it stopped.
A rebuild starts the circuits afresh (membranes at their leak potentials); earlier runs' data are
kept. Engine time 0 is the hardware time ``offset_ms`` at which the mapping was built.

Per neuron population the engine gets an ``IF_curr_exp`` (or ``IF_cond_exp`` for COBA inputs) whose
nominal parameters come from the circuit configuration (:mod:`.hardware_model`); the chip adds each
circuit's fixed-pattern noise. Per projection it gets one engine projection per "synapse layer"
(connections whose weight needs a k-th hardware synapse), so fan-in counts hardware synapse rows.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field

import nest
from pyNN.parameters import Sequence
import numpy as np

from . import hardware_model as hw
from .atomic_neuron import AtomicNeuron
from .ppu import PlasticityState, network_rules
from ..correlation import SensorParameters
from .recording import CADC_SAMPLE_PERIOD_MS
from .standardmodels.cells import (CalibHXNeuronCuba, HXNeuron, SpikeSourceArray, SpikeSourcePoisson,
                                   SpikeSourcePoissonOnChip)

__all__ = ["Mapping", "SetupOptions", "neuron_codes", "biological_parameters"]

#: Largest number of on-chip background generators (one per PADI bus and hemisphere).
N_BACKGROUND_GENERATORS = 8
#: The temporal membrane noise (``setup(membrane_noise=...)``) is redrawn this often (hardware ms).
MEMBRANE_NOISE_PERIOD_MS = 1e-3


@dataclass
class SetupOptions:
    """What ``setup()`` fixed for the session (see :func:`cortexsim.backends.brainscales2.setup`)."""

    timestep_ms: float = 1e-4            # hardware ms per emulation step
    seed: int = 0
    chip_seed: int = 0
    fixed_pattern_noise: bool | float = True
    trial_noise: float = 0.0
    membrane_noise_nA: float = 0.0       # temporal noise: white current noise per circuit (sd, nA)
    neuron_permutation: list | None = None
    background_permutation: list | None = None
    calibration_cache: str | None = None
    correlation_sensors: SensorParameters = field(default_factory=SensorParameters)


def _engine():
    from .. import brainscales
    return brainscales


def neuron_codes(population) -> dict:
    """Flat circuit configuration arrays (n,) of a neuron population: its HXNeuron parameters, or the
    ``actual_hwparams`` of a calibrated population."""
    if isinstance(population.celltype, HXNeuron):
        return population.parameter_arrays()
    neurons = population.celltype._actual_hwparams
    flat = [neuron.as_dict() for neuron in neurons]
    return {name: np.array([f[name] for f in flat]) for name in flat[0]}


def biological_parameters(codes: dict) -> tuple[dict, bool]:
    """Nominal PyNN parameters of the emulated circuits and whether their inputs are conductance-based."""
    coba = bool(np.any(np.asarray(codes["excitatory_input_enable_coba_mode"], dtype=bool)))
    threshold = np.where(np.asarray(codes["threshold_enable"], dtype=bool),
                         hw.hw_to_bio_mv(hw.threshold_volts(codes["threshold_v_threshold"])), hw.ThresholdOff.VALUE_MV)
    cm = hw.membrane_capacitance_nf(codes["membrane_capacitance_capacitance"])
    g_leak = hw.leak_conductance_us(codes["leak_i_bias"], np.asarray(codes["leak_enable_division"], dtype=bool),
                                    np.asarray(codes["leak_enable_multiplication"], dtype=bool))
    parameters = {
        "v_rest": hw.hw_to_bio_mv(hw.leak_volts(codes["leak_v_leak"])),
        "v_reset": hw.hw_to_bio_mv(hw.leak_volts(codes["reset_v_reset"])),
        "v_thresh": threshold,
        "cm": cm,
        "tau_m": cm / g_leak,
        "tau_refrac": hw.refractory_ms(codes["refractory_period_refractory_time"],
                                       codes["refractory_period_input_clock"]),
        "tau_syn_E": hw.tau_syn_ms(codes["excitatory_input_i_bias_tau"]),
        "tau_syn_I": hw.tau_syn_ms(codes["inhibitory_input_i_bias_tau"]),
        "i_offset": hw.offset_current_na(codes["constant_current_enable"], codes["constant_current_i_offset"],
                                         np.asarray(codes["constant_current_type"]) == 1),
    }
    if coba:
        parameters["e_rev_E"] = hw.hw_to_bio_mv(hw.threshold_volts(codes["excitatory_input_v_rev_coba"]))
        parameters["e_rev_I"] = hw.hw_to_bio_mv(hw.threshold_volts(codes["inhibitory_input_v_rev_coba"]))
    return {name: np.asarray(value, dtype=float) for name, value in parameters.items()}, coba


def _weight_units(codes: dict, receptor: str, coba: bool) -> np.ndarray:
    """Engine weight (nA or uS) of one unit of integer weight onto every neuron, for ``receptor``."""
    prefix = "excitatory_input" if receptor == "excitatory" else "inhibitory_input"
    enabled = np.asarray(codes[f"{prefix}_enable"], dtype=bool)
    return np.where(enabled, hw.psc_amplitude(1.0, codes[f"{prefix}_i_bias_gm"], coba), 0.0)


def _synapse_counts(projection) -> tuple:
    """Hardware synapses each connection needs for its current weight (at least one; see
    :func:`~.plasticity_rules.synapses_per_connection`)."""
    magnitude = np.abs(projection.integer_weights())
    return tuple(np.maximum(1, -(-magnitude // 63)).tolist())


def _synapse_layers(projection, counts: tuple) -> list:
    """Per hardware-synapse layer k: arrays (pre, post, integer magnitude) of the connections that have a
    k-th synapse (``counts``: synapses placed per connection); a weight fills its synapses in order."""
    counts = np.asarray(counts, dtype=int)
    magnitude = np.abs(projection.integer_weights())
    pre = np.array([c.presynaptic_index for c in projection.connections], dtype=int)
    post = np.array([c.postsynaptic_index for c in projection.connections], dtype=int)
    layers = []
    for k in range(int(counts.max(initial=0))):
        has = counts > k
        layers.append(np.column_stack([pre[has], post[has], np.clip(magnitude[has] - 63 * k, 0, 63)]).reshape(-1, 3))
    return layers


def _root(cells):
    return getattr(cells, "grandparent", cells)


def _root_indices(cells, indices) -> np.ndarray:
    indices = np.asarray(indices, dtype=int)
    if hasattr(cells, "parent"):
        return np.asarray(cells.index_in_grandparent(indices), dtype=int)
    return indices


@dataclass
class _PlacedProjection:
    layers: list
    engine: list                      # engine projections, one per layer
    signature: tuple                  # hardware synapses placed per connection
    tables: dict = field(default_factory=dict)  # k -> engine connection table, cached after the first run


class Mapping:
    """The dialect's network placed on one emulated chip (see the module docstring)."""

    def __init__(self, state, options: SetupOptions):
        self.state = state
        self.options = options
        state.n_mappings = getattr(state, "n_mappings", 0) + 1
        self.index = state.n_mappings
        self.offset_ms = float(state.t)
        self.engine = _engine()
        self.populations = {}        # id(dialect population) -> engine population (root)
        self.circuits = {}           # id(dialect population) -> circuits (n,)
        self.coba = {}
        self.projections = {}        # id(dialect projection) -> _PlacedProjection
        self.multimeters = []        # (population, variable, device, multimeter, cell ids)
        self.generators = 0
        self.duration_s = 0.0
        self._pushed_parameters = {}  # id(dialect population) -> engine parameters last written
        self._engine_time = None       # engine ms, known after the first run_until
        self.started = time.perf_counter()
        self._build()
        self.duration_s = time.perf_counter() - self.started

    # --- building ----------------------------------------------------------------------------------
    def _engine_setup(self) -> None:
        o = self.options
        # every placement is a new trial on the same chip: its own run seed (trial noise, on-chip sources)
        seed = int(np.random.SeedSequence([int(o.seed), self.index]).generate_state(1)[0])
        self.engine.setup(timestep=o.timestep_ms * hw.SPEEDUP, chip="bss2", chip_seed=int(o.chip_seed),
                          fixed_pattern_noise=o.fixed_pattern_noise, trial_noise=float(o.trial_noise),
                          quantize_weights=False, clip_weights=False, calibration=None, seed=seed,
                          spike_precision="on_grid")
        if o.neuron_permutation is not None:
            self.engine.get_chip().placement = np.asarray(o.neuron_permutation, dtype=int)

    def _neuron_populations(self) -> list:
        return [p for p in self.state.populations if p.celltype.receptor_types]

    def _plan_circuits(self) -> None:
        order = self.engine.get_chip().placement_order()
        position = 0
        for population in self._neuron_populations():
            self.circuits[id(population)] = order[position:position + population.size]
            position += population.size
        if position > len(order):
            from ..brainscales.errors import ChipLimitError
            raise ChipLimitError("bss2", "number of neurons", f"{position} in total", f"at most {len(order)}")

    def _deviations(self) -> dict:
        """Per-circuit deviations the calibration knows (the emulator's cached calibration measurement)."""
        session = self.engine.get_chip()
        if session.fpn_scale == 0 and session.trial_noise == 0:
            n = session.spec.n_neurons
            return {**{k: np.zeros(n) for k in ("E_L", "V_th", "V_reset")},
                    **{k: np.ones(n) for k in ("g_L", "C_m", "tau_syn_ex", "tau_syn_in", "gain_exc", "gain_inh")}}
        from pathlib import Path
        from ..brainscales.calibration import default_cache_path, load_or_measure
        target = "auto"
        if self.options.calibration_cache is not None:
            target = Path(self.options.calibration_cache) / default_cache_path(session).name
        corrections, _ = load_or_measure(session, target, self.engine.run)
        return corrections

    def _calibrate(self) -> None:
        calibrated = [p for p in self._neuron_populations() if isinstance(p.celltype, CalibHXNeuronCuba)]
        if not calibrated:
            return
        for name in CalibHXNeuronCuba.global_parameters:
            values = np.concatenate([np.asarray(p.parameter_arrays()[name], dtype=float) for p in calibrated])
            if not np.all(values == values[0]):
                raise RuntimeError(f"{name} is a technical parameter that must be the same for all calibrated "
                                   f"neurons of the chip; got values {sorted(set(values.tolist()))}")
        pending = []
        for population in calibrated:
            targets = population.parameter_arrays()
            previous = population.celltype._calib_target
            if previous is not None and all(np.array_equal(np.asarray(previous[k]), np.asarray(v))
                                            for k, v in targets.items() if k in previous):
                continue
            pending.append((population, targets))
        if not pending:
            return
        deviations = self._deviations()
        self._engine_setup()              # the measurement used the NEST kernel: start afresh
        for population, targets in pending:
            circuits = self.circuits[id(population)]
            codes = hw.codes_for_targets(targets, {k: v[circuits] for k, v in deviations.items()},
                                         bool(population.celltype.conductance_based))
            neurons = [AtomicNeuron({name: values[i] for name, values in codes.items()})
                       for i in range(population.size)]
            population.celltype._set_calibration({k: np.array(v, copy=True) for k, v in targets.items()}, neurons)

    def _build(self) -> None:
        self._engine_setup()
        self._plan_circuits()
        self._calibrate()
        engine = self.engine
        for population in self.state.populations:
            celltype = population.celltype
            if celltype.receptor_types:
                self._place_neurons(population)
            elif isinstance(celltype, SpikeSourcePoissonOnChip):
                self._place_on_chip_sources(population)
            else:
                times = self._source_times(population)
                label = population.label
                self.populations[id(population)] = engine.Population(
                    population.size, engine.SpikeSourceArray(spike_times=[Sequence(t) for t in times]),
                    label=label)
        for projection in self.state.projections:
            self._place_projection(projection)
            projection._weights_changed = False
        self._check_madc()
        self._set_up_recording()
        self.plasticity = PlasticityState(self, network_rules(self.state), self.options.correlation_sensors)
        self._mapped_sources = {id(p): self._source_key(p) for p in self.state.populations
                                if not p.celltype.receptor_types}

    def _parameters_of(self, population) -> tuple[dict, dict, bool]:
        codes = neuron_codes(population)
        parameters, coba = biological_parameters(codes)
        # the emulation resolves time in steps: a refractory time of 0 lasts one step
        parameters["tau_refrac"] = np.maximum(parameters["tau_refrac"], self.options.timestep_ms * hw.SPEEDUP)
        return codes, parameters, coba

    def _place_neurons(self, population) -> None:
        codes, parameters, coba = self._parameters_of(population)
        engine = self.engine
        celltype = engine.IF_cond_exp if coba else engine.IF_curr_exp
        pynn_logger = logging.getLogger("PyNN")
        level = pynn_logger.level
        pynn_logger.setLevel(logging.ERROR)   # pyNN.nest warns that iaf_psc_exp has no initial I_syn
        try:
            cells = _MappedPopulation(population.size, celltype(**parameters), label=population.label)
        finally:
            pynn_logger.setLevel(level)
        # the circuits run continuously on the chip: a run starts with each membrane at its own leak
        cells.initialize(v=cells.realised_parameters("E_L")["E_L"])
        if self.options.membrane_noise_nA > 0:
            # temporal noise of the circuits (setup(membrane_noise=...)): NEST draws it independently
            # for every target, redrawn every MEMBRANE_NOISE_PERIOD_MS of hardware time
            noise = nest.Create("noise_generator", params={"std": 1000.0 * self.options.membrane_noise_nA,
                                                           "dt": MEMBRANE_NOISE_PERIOD_MS * hw.SPEEDUP})
            nest.Connect(noise, cells.node_collection)
        self.populations[id(population)] = cells
        self._pushed_parameters[id(population)] = parameters
        self.coba[id(population)] = coba
        population._codes_mapped = codes

    def _place_on_chip_sources(self, population) -> None:
        values = population.parameter_arrays()
        rate, seed = np.asarray(values["rate"], dtype=float), np.asarray(values["seed"], dtype=float)
        if not (np.all(rate == rate[0]) and np.all(seed == seed[0])):
            raise ValueError("SpikeSourcePoissonOnChip: rate and seed must be the same for all sources of a population")
        total = float(rate[0]) * population.size
        if total > SpikeSourcePoissonOnChip.background_source_clock_freq:
            raise ValueError(f"SpikeSourcePoissonOnChip: rate x size = {total:g} Hz cannot be realised on hardware "
                             f"(at most {SpikeSourcePoissonOnChip.background_source_clock_freq:g} Hz per generator)")
        self.generators += 1
        if self.generators > N_BACKGROUND_GENERATORS:
            from ..brainscales.errors import ChipLimitError
            raise ChipLimitError("bss2", "on-chip background generators (one per SpikeSourcePoissonOnChip "
                                 "population)", f"{self.generators}", f"at most {N_BACKGROUND_GENERATORS}")
        engine = self.engine
        self.populations[id(population)] = engine.Population(
            population.size, engine.SpikeSourcePoisson(rate=float(rate[0]) / hw.SPEEDUP), label=population.label)
        engine.get_chip().background.append({"population": population.label, "receptor": "any",
                                             "rate_hz": float(rate[0]) / hw.SPEEDUP, "generators": 1,
                                             "neurons": int(population.size),
                                             "hardware_event_rate_hz": total})

    def _source_times(self, population) -> list:
        """Spike times (engine ms, on the time grid, > 0) of every source, from ``offset_ms`` on."""
        celltype = population.celltype
        if isinstance(celltype, SpikeSourcePoisson):
            times_hw = self._poisson_trains(population)
        elif isinstance(celltype, SpikeSourceArray):
            spike_times = population._parameters["spike_times"]
            if not isinstance(spike_times, np.ndarray) or spike_times.dtype != object:
                spike_times = [spike_times] * population.size
            times_hw = [np.asarray(getattr(t, "value", t), dtype=float) for t in spike_times]
        else:
            raise TypeError(f"unknown spike source {type(celltype).__name__}")
        dt = self.options.timestep_ms * hw.SPEEDUP
        out = []
        for times in times_hw:
            times = np.sort(np.asarray(times, dtype=float).ravel())
            if np.any(times < 0) or not np.all(np.isfinite(times)):
                raise ValueError(f"spike times of {population.label!r} must be finite and >= 0 (hardware ms)")
            engine_ms = (times[times >= self.offset_ms - 1e-12] - self.offset_ms) * hw.SPEEDUP
            # on the time grid; the engine needs a spike time after one step plus its fixed delay
            engine_ms = np.maximum(np.round(engine_ms / dt) * dt, 2 * dt)
            out.append(engine_ms)
        return out

    def _poisson_trains(self, population) -> list:
        values = population.parameter_arrays()
        key = tuple(np.asarray(values[k], dtype=float).tobytes() for k in ("start", "rate", "duration"))
        cached = getattr(population, "_poisson_trains", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        rng = self.state.rng
        trains = []
        for start, rate, duration in zip(*(np.asarray(values[k], dtype=float) for k in ("start", "rate", "duration"))):
            duration = min(duration, 1e6)
            n = rng.poisson(rate / 1000.0 * duration)
            trains.append(np.sort(start + rng.random(n) * duration))
        population._poisson_trains = (key, trains)
        return trains

    def _place_projection(self, projection) -> None:
        engine = self.engine
        post_root = _root(projection.post)
        pre_root = _root(projection.pre)
        coba = self.coba[id(post_root)]
        counts = _synapse_counts(projection)
        layers = _synapse_layers(projection, counts)
        placed = _PlacedProjection(layers, [], counts)
        for k, layer in enumerate(layers):
            pre = _root_indices(projection.pre, layer[:, 0]) if len(layer) else layer[:, 0]
            post = _root_indices(projection.post, layer[:, 1]) if len(layer) else layer[:, 1]
            weights = self._engine_weights(projection, post, layer[:, 2], coba)
            rows = np.column_stack([pre, post, weights]) if len(layer) else np.zeros((0, 3))
            engine_projection = engine.Projection(
                self.populations[id(pre_root)], self.populations[id(post_root)],
                engine.FromListConnector(rows.tolist(), column_names=["weight"]),
                engine.StaticSynapse(), receptor_type=projection.receptor_type,
                label=f"{projection.label}[synapse {k}]")
            placed.engine.append(engine_projection)
        self.projections[id(projection)] = placed

    def _engine_weights(self, projection, post_root_indices, magnitudes, coba) -> np.ndarray:
        codes = _root(projection.post)._codes_mapped
        units = _weight_units(codes, projection.receptor_type, coba)[np.asarray(post_root_indices, dtype=int)]
        weights = np.asarray(magnitudes, dtype=float) * units
        inhibitory_current = projection.receptor_type == "inhibitory" and not coba
        return -weights if inhibitory_current else weights

    @staticmethod
    def _fits(placed: "_PlacedProjection", projection) -> bool:
        """Whether the projection's current weights fit the synapses placed for it."""
        counts = _synapse_counts(projection)
        return len(counts) == len(placed.signature) and all(n <= m for n, m in zip(counts, placed.signature))

    def _check_madc(self) -> None:
        sites = []
        for population in self._neuron_populations():
            recorder = population.recorder
            for cell, (_, device) in recorder.analog_sites().items():
                if device == "madc":
                    sites.append(int(self.circuits[id(population)][population.id_to_index(cell)]))
        parities = [c % 2 for c in sites]
        if len(sites) > 2 or len(set(parities)) < len(parities):
            from ..brainscales.errors import ChipLimitError
            raise ChipLimitError("bss2", "MADC recording (one neuron per readout line: at most one even and one odd "
                                 "neuron circuit per run; record more neurons with device='cadc')",
                                 f"circuits {sorted(sites)}", "one even and one odd circuit")

    def _set_up_recording(self) -> None:
        for population in self.state.populations:
            cells = self.populations[id(population)]
            spikes = population.recorder.recorded_ids("spikes")
            if spikes:
                cells[[population.id_to_index(i) for i in spikes]].record("spikes")
            if not population.celltype.receptor_types:
                continue
            groups = {}
            for cell, (variable, device) in population.recorder.analog_sites().items():
                groups.setdefault((variable, device), []).append(cell)
            for (variable, device), ids in sorted(groups.items()):
                if variable == "adaptation":
                    from ..brainscales.errors import UnsupportedFeatureError
                    raise UnsupportedFeatureError("bss2", "not supported by the emulator: recording 'adaptation' "
                                                  "(the adaptation circuit is not emulated)", "adaptation",
                                                  "'v', 'exc_synin', 'inh_synin'")
                ids = sorted(ids)
                nodes = cells.node_collection[[int(population.id_to_index(i)) for i in ids]]
                coba = self.coba[id(population)]
                record_from = {"v": ["V_m"], "exc_synin": ["g_ex", "V_m"] if coba else ["I_syn_ex"],
                               "inh_synin": ["g_in", "V_m"] if coba else ["I_syn_in"]}[variable]
                period_ms = self.options.timestep_ms if device == "madc" else CADC_SAMPLE_PERIOD_MS
                interval = period_ms * hw.SPEEDUP
                meter = nest.Create("multimeter", params={"record_from": record_from, "interval": interval})
                nest.Connect(meter, nodes)
                self.multimeters.append((population, variable, device, meter, ids))

    # --- between runs --------------------------------------------------------------------------------
    def matches(self) -> bool:
        """Whether the placed network still has the dialect network's structure."""
        return all(id(p) in self.projections and self._fits(self.projections[id(p)], p)
                   for p in self.state.projections)

    def push(self) -> None:
        """Write what changed since the last run into the placed network: neuron parameters, weights,
        spike times of the sources played in."""
        for population in self._neuron_populations():
            codes, parameters, coba = self._parameters_of(population)
            if coba != self.coba[id(population)]:
                raise _Rebuild()
            pushed = self._pushed_parameters.get(id(population))
            if pushed is None or any(not np.array_equal(pushed[k], v) for k, v in parameters.items()):
                self.populations[id(population)].set(**parameters)
                self._pushed_parameters[id(population)] = parameters
            population._codes_mapped = codes
        for projection in self.state.projections:
            if getattr(projection, "_weights_changed", True):
                self.push_weights(projection)
        for population in self.state.populations:
            if id(population) in self._mapped_sources:
                self._push_source_times(population)

    def _source_key(self, population) -> list | None:
        """The hardware spike times of a played-in source population (None for on-chip sources)."""
        if isinstance(population.celltype, SpikeSourcePoissonOnChip):
            return None
        celltype = population.celltype
        if isinstance(celltype, SpikeSourcePoisson):
            return self._poisson_trains(population)
        spike_times = population._parameters["spike_times"]
        if not isinstance(spike_times, np.ndarray) or spike_times.dtype != object:
            spike_times = [spike_times] * population.size
        return [np.asarray(getattr(t, "value", t), dtype=float) for t in spike_times]

    def _push_source_times(self, population) -> None:
        """Play the current spike times of a source population from now on (spikes in the past are dropped)."""
        key = self._source_key(population)
        old = self._mapped_sources[id(population)]
        if key is None or (old is not None and len(old) == len(key)
                           and all(np.array_equal(a, b) for a, b in zip(old, key))):
            return
        now = self.engine_time()
        dt = self.options.timestep_ms * hw.SPEEDUP
        times = [t[t > now + dt / 2] for t in self._source_times(population)]
        self.populations[id(population)].set(spike_times=[Sequence(t) for t in times])
        self._mapped_sources[id(population)] = key

    def _engine_table(self, placed: "_PlacedProjection", k: int) -> dict:
        """Connections of the k-th engine projection in NEST's order, cached once the network has run
        (NEST sorts connections when a simulation starts; afterwards the placed network gains none)."""
        table = placed.tables.get(k)
        if table is None:
            table = placed.engine[k]._table()
            if self.engine_time() > 0:
                placed.tables[k] = table
        return table

    def push_weights(self, projection) -> None:
        """Write one projection's current weights (same synapse structure) into the placed network."""
        placed = self.projections[id(projection)]
        if not self._fits(placed, projection):
            raise _Rebuild()
        layers = _synapse_layers(projection, placed.signature)
        post_root = _root(projection.post)
        coba = self.coba[id(post_root)]
        shape = (_root(projection.pre).size, post_root.size)
        for k, layer in enumerate(layers):
            if not len(layer):
                continue
            magnitude = np.zeros(shape)
            cells = (_root_indices(projection.pre, layer[:, 0]), _root_indices(projection.post, layer[:, 1]))
            np.add.at(magnitude, cells, layer[:, 2])
            table = self._engine_table(placed, k)
            weights = np.abs(self._engine_weights(projection, table["post"], magnitude[table["pre"], table["post"]],
                                                  coba))
            placed.engine[k]._write_weights(table, weights)
        projection._weights_changed = False

    # --- running -------------------------------------------------------------------------------------
    def run_until(self, t_hw: float) -> None:
        """Advance the emulation to hardware time ``t_hw`` (ms)."""
        dt = self.options.timestep_ms * hw.SPEEDUP
        target = round((t_hw - self.offset_ms) * hw.SPEEDUP / dt) * dt
        if target > self.engine_time() + 1e-9:
            self.engine.run_until(target)
            self._engine_time = target

    def engine_time(self) -> float:
        """The engine's current time (ms); kept here because asking NEST reads its whole kernel status."""
        if self._engine_time is None:
            self._engine_time = float(self.engine.get_current_time())
        return self._engine_time

    def harvest(self, snippets: dict) -> None:
        """Move the data recorded since the last harvest into ``snippets`` (population id -> snippet)."""
        for population in self.state.populations:
            snippet = snippets.get(id(population))
            if snippet is None:
                continue
            cells = self.populations[id(population)]
            ids = population.recorder.recorded_ids("spikes")
            if ids:
                with warnings.catch_warnings():      # the engine's last step may hold a spike at t_stop
                    warnings.simplefilter("ignore", UserWarning)
                    segment = cells.get_data("spikes", clear=True).segments[-1]
                by_index = {int(t.annotations["source_index"]): t for t in segment.spiketrains}
                for cell in ids:
                    train = by_index.get(int(population.id_to_index(cell)))
                    times = np.asarray(train.rescale("ms").magnitude if train is not None else [], dtype=float)
                    dt = self.options.timestep_ms * hw.SPEEDUP
                    times = np.round(times / dt) * dt           # engine ms, on the time grid
                    snippet["spikes"][int(cell)] = self.offset_ms + times / hw.SPEEDUP
        for population, variable, device, meter, ids in self.multimeters:
            snippet = snippets.get(id(population))
            events = meter.get("events")
            meter.set(n_events=0)
            if snippet is None:
                continue
            cells = self.populations[id(population)]
            senders = np.asarray(events["senders"])
            node_ids = np.asarray(cells.node_collection.tolist())
            storage = snippet["analog"].setdefault(variable, {})
            for cell in ids:
                node = node_ids[population.id_to_index(cell)]
                mask = senders == node
                times = self.offset_ms + np.asarray(events["times"])[mask] / hw.SPEEDUP
                if variable == "v":
                    volts = hw.bio_mv_to_hw(np.asarray(events["V_m"])[mask])
                elif "I_syn_ex" in events or "I_syn_in" in events:
                    current_pa = np.asarray(events["I_syn_ex" if variable == "exc_synin" else "I_syn_in"])[mask]
                    volts = hw.synin_volts(current_pa / 1000.0)
                else:
                    g_ns = np.asarray(events["g_ex" if variable == "exc_synin" else "g_in"])[mask]
                    v = np.asarray(events["V_m"])[mask]
                    e_rev = cells.get("e_rev_E" if variable == "exc_synin" else "e_rev_I", simplify=False)
                    e_rev = np.asarray(e_rev)[population.id_to_index(cell)]
                    volts = hw.synin_volts(g_ns / 1000.0 * np.abs(e_rev - v))
                values = hw.madc_from_volts(volts) if device == "madc" else hw.cadc_from_volts(volts)
                storage[int(cell)] = (times, values, device)

    def read_membranes(self, population, device: str = "cadc") -> np.ndarray:
        """Momentary membrane read-out of every neuron of ``population`` (for plasticity kernels)."""
        root = _root(population)
        cells = self.populations[id(root)]
        v = np.asarray(nest.GetStatus(cells.node_collection, "V_m"), dtype=float)
        volts = hw.bio_mv_to_hw(v)[_root_indices(population, np.arange(population.size))]
        return hw.cadc_from_volts(volts) if device == "cadc" else hw.madc_from_volts(volts)

    def statistics(self) -> dict:
        """Resources of the placed network (for ``get_backend_statistics``)."""
        report = self.engine.get_hardware_report()
        synapses = sum(sum(placed.signature) for placed in self.projections.values())
        external = sum(p.size for p in self.state.populations
                       if not p.celltype.receptor_types and not isinstance(p.celltype, SpikeSourcePoissonOnChip))
        return {"neurons": int(sum(p.size for p in self._neuron_populations())), "synapses": int(synapses),
                "max_synapse_rows_per_neuron": int(report["max_fan_in_used"]),
                "external_spike_sources": int(external), "background_spike_sources": int(self.generators),
                "mapping_duration_s": float(self.duration_s), "chip": report}


class _Rebuild(Exception):
    """The network's structure changed in a way that needs a new mapping."""


def _mapped_population_class():
    engine = _engine()

    class MappedPopulation(engine.Population):
        """Engine population whose parameters come from hardware codes (their ranges are checked there)."""

        def _check_ranges(self, native, indices):
            return None

    return MappedPopulation


class _LazyMapped:
    _cls = None

    def __call__(self, *args, **kwargs):
        if _LazyMapped._cls is None:
            _LazyMapped._cls = _mapped_population_class()
        return _LazyMapped._cls(*args, **kwargs)


_MappedPopulation = _LazyMapped()
