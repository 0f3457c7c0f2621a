"""Set-up and control of the emulated chip: ``setup``, ``run``, ``reset``, ``end``, hardware report."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyNN.nest as _pynn_nest

from . import emulator
from .chip_state import ChipSession
from .emulator import ChipSelection
from ..chips import chip_spec
from .errors import UnsupportedFeatureError
from .plasticity import DEFAULT_PLASTICITY_PERIOD_MS, DEFAULT_STDP_SENSORS
from ..energy import chip_energy
from ..correlation import SensorParameters

__all__ = ["setup", "select_chip", "selected_chip", "device_identity", "run", "run_until", "run_for", "reset", "end",
           "get_hardware_report", "get_chip"]

_DEFAULT_TIMESTEP = 0.1


def _fpn_scale(fixed_pattern_noise) -> float:
    if fixed_pattern_noise is True:
        return 1.0
    if fixed_pattern_noise is False or fixed_pattern_noise is None:
        return 0.0
    scale = float(fixed_pattern_noise)
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"fixed_pattern_noise must be True, False or a scale >= 0, got {fixed_pattern_noise!r}")
    return scale


_FROM_SELECTION = object()   # "not given": take the value from the booked chip (select_chip)


def select_chip(**options) -> ChipSelection:
    """Book the chip that later ``setup()`` calls use for every option they leave out.

    Parameters
    ----------
    **options
        Any of ``chip``, ``chip_seed``, ``fixed_pattern_noise``, ``trial_noise``,
        ``quantize_weights``, ``clip_weights``, ``calibration`` (meanings as in :func:`setup`);
        options not named keep their booked value. ``select_chip()`` without options books the
        default chip again (bss2, chip seed ``DEFAULT_CHIP_SEED``, nominal noise, uncalibrated).

    Returns
    -------
    ChipSelection
        The previous booking (pass ``**dataclasses.asdict(previous)`` to restore it).

    Examples
    --------
    >>> previous = sim.select_chip(chip_seed=5, calibration="auto")
    >>> train_target(TargetTrainingConfig(seed=1, backend="brainscales"))   # every setup: chip 5
    """
    unknown = set(options) - set(ChipSelection.__dataclass_fields__)
    if unknown:
        raise ValueError(f"select_chip got unknown options {sorted(unknown)}; allowed: "
                         f"{sorted(ChipSelection.__dataclass_fields__)}")
    previous = emulator.chip.selection
    selection = replace(previous, **options) if options else ChipSelection()
    chip_spec(selection.chip)
    _check_seed("chip_seed", selection.chip_seed)
    _fpn_scale(selection.fixed_pattern_noise)
    emulator.chip.selection = selection
    return previous


def selected_chip() -> ChipSelection:
    """The chip booked with :func:`select_chip` (the defaults of ``setup()``)."""
    return emulator.chip.selection


def device_identity() -> str:
    """The booked chip as a string (for caches of results measured on it, e.g. activation fits)."""
    selection = emulator.chip.selection
    return ",".join(f"{name}={getattr(selection, name)}" for name in ChipSelection.__dataclass_fields__)


def _check_seed(name: str, value) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def setup(timestep: float = _DEFAULT_TIMESTEP, min_delay: float | str = "auto", *, seed: int = 0,
          chip=_FROM_SELECTION, chip_seed=_FROM_SELECTION, fixed_pattern_noise=_FROM_SELECTION,
          trial_noise=_FROM_SELECTION, quantize_weights=_FROM_SELECTION, clip_weights=_FROM_SELECTION,
          calibration=_FROM_SELECTION, rng_seed: int | None = None,
          plasticity_period: float = DEFAULT_PLASTICITY_PERIOD_MS, correlation_sensors=None, **extra_params) -> int:
    """Start a new emulation on the chip (the PyNN ``setup()`` of this backend).

    Every chip option left out is taken from the booked chip (:func:`select_chip`; by default bss2
    with chip seed ``DEFAULT_CHIP_SEED``, nominal fixed-pattern noise, no calibration). The run
    seed and the chip's identity are separate: ``seed`` changes the run's randomness (Poisson
    input, trial noise), ``chip_seed`` the chip. A protocol that calls ``setup(seed=...)`` with a
    new seed for every run stays on one chip.

    Parameters
    ----------
    timestep : float
        Integration and recording step of the emulation (biological ms, > 0).
    min_delay : float or "auto"
        Minimum delay (ms). On a chip without configurable delays (bss2) it is the time step and
        any other value raises UnsupportedFeatureError.
    seed : int
        Seed of the run's randomness (NEST's RNG, trial-to-trial noise), >= 0.
    chip : {"bss2", "bss1"}
        Which chip to emulate (see :mod:`.chips`).
    chip_seed : int
        Identity of the chip: its fixed-pattern noise. The same chip seed is the same chip every run.
    fixed_pattern_noise : bool or float
        True: the chip's nominal fixed-pattern noise; False: an ideal chip; a float scales the
        nominal standard deviations.
    trial_noise : float
        Trial-to-trial noise, as a fraction (>= 0) of each parameter's nominal fixed-pattern-noise
        standard deviation, redrawn at the start of every trial (after setup and every reset).
    quantize_weights : bool
        Store weights as n-bit integers times a row scale (True) or as floats (False).
    clip_weights : bool
        Clip weights beyond the chip's range to the largest one instead of raising ChipLimitError.
    calibration : None, "auto" or path
        None: uncalibrated. "auto": load the calibration of this chip (chip, chip seed, noise scale)
        from the cache directory or measure and cache it. A path: load it from that JSON file, or
        measure the chip and write it there.
    rng_seed : int, optional
        ``pyNN.nest``'s name for the run seed; overrides ``seed`` when given.
    plasticity_period : float
        Time between two weight updates of the plasticity processors for ``STDPMechanism``
        projections (biological ms, > 0; see :mod:`.plasticity`).
    correlation_sensors : SensorParameters or dict, optional
        The synapses' correlation sensors as STDP reads them (:mod:`cortexsim.backends.correlation`;
        default: amplitude 2 LSB per pair, nominal imperfections; ``tau_us`` comes from each STDP rule).
    **extra_params
        Passed on to ``pyNN.nest.setup`` (e.g. ``threads``, ``verbosity``, ``t_flush``). As on
        ``pyNN.nest``, ``reset()`` after a run needs ``t_flush`` (the emulation runs on NEST).

    Returns
    -------
    int
        The MPI rank (0).
    """
    given = {"chip": chip, "chip_seed": chip_seed, "fixed_pattern_noise": fixed_pattern_noise,
             "trial_noise": trial_noise, "quantize_weights": quantize_weights, "clip_weights": clip_weights,
             "calibration": calibration}
    options = replace(emulator.chip.selection,
                      **{name: value for name, value in given.items() if value is not _FROM_SELECTION})
    spec = chip_spec(options.chip)
    if not (isinstance(timestep, (int, float)) and np.isfinite(timestep) and timestep > 0):
        raise ValueError(f"timestep must be a finite number of ms > 0, got {timestep!r}")
    if not spec.delays_allowed:
        if min_delay not in ("auto", None) and abs(float(min_delay) - timestep) > 1e-12:
            raise UnsupportedFeatureError(spec.name, "min_delay (the chip has no configurable delays)",
                                          f"{min_delay} ms", f"the time step {timestep} ms ('auto')")
        min_delay = timestep
    _check_seed("seed", seed)
    _check_seed("chip_seed", options.chip_seed)
    if rng_seed is not None:
        _check_seed("rng_seed", rng_seed)
    session = ChipSession(spec=spec, seed=int(options.chip_seed),
                          fpn_scale=_fpn_scale(options.fixed_pattern_noise),
                          trial_noise=float(options.trial_noise),
                          quantize_weights=bool(options.quantize_weights),
                          clip_weights=bool(options.clip_weights),
                          rng_seed=int(seed if rng_seed is None else rng_seed))
    if not (isinstance(plasticity_period, (int, float)) and np.isfinite(plasticity_period) and plasticity_period > 0):
        raise ValueError(f"plasticity_period must be a time > 0 ms, got {plasticity_period!r}")
    session.plasticity_period_ms = float(plasticity_period)
    if isinstance(correlation_sensors, dict):
        correlation_sensors = SensorParameters(**{**DEFAULT_STDP_SENSORS.to_dict(), **correlation_sensors})
    elif correlation_sensors is not None and not isinstance(correlation_sensors, SensorParameters):
        raise TypeError(f"correlation_sensors must be a SensorParameters or a dict, got "
                        f"{type(correlation_sensors).__name__}")
    session.sensor_parameters = correlation_sensors
    extra_params.setdefault("verbosity", "error")
    extra_params.setdefault("threads", 1)
    extra_params["rng_seed"] = session.rng_seed % (2 ** 31 - 2) + 1   # NEST needs 1 .. 2**32 - 2
    emulator.chip.session = session
    if options.calibration is not None:
        from .calibration import load_or_measure    # measures with this module's run(); imported lazily
        corrections, source = load_or_measure(session, options.calibration, run)
        session.set_calibration(corrections, source)
        session.forget_network()
    rank = _pynn_nest.setup(timestep=timestep, min_delay=min_delay, **extra_params)
    if "t_flush" not in extra_params:  # reset() needs an explicit t_flush, as on pyNN.nest
        _pynn_nest.simulator.state.t_flush = -1
    from ..pynn_nest import keep_kernel_status_small
    keep_kernel_status_small()      # many runs in a row stay fast (see there)
    return rank


def get_chip() -> ChipSession:
    """The emulated chip of the current ``setup()`` (its noise, calibration and bookkeeping)."""
    return emulator.current_chip()


def _start_run() -> None:
    chip = emulator.current_chip()
    if chip.trial_pending:
        chip.draw_trial_noise()
        if chip.trial_noise > 0:
            for population in chip.populations:
                population._apply_realised()
        chip.trial_pending = False
    if chip.configuration_changed:
        chip.n_configurations += 1
        chip.configuration_changed = False


def _finish_run(t_start: float) -> None:
    chip = emulator.current_chip()
    chip.biological_time_ms += emulator.state.t - t_start
    chip.n_runs += 1


def _run_with_plasticity(t_stop: float, callbacks) -> float:
    """Run to ``t_stop`` (ms), pausing at every plasticity-processor update of the STDP programs."""
    chip = emulator.current_chip()
    if callbacks:
        raise UnsupportedFeatureError(chip.spec.name, "run callbacks with STDP projections", "callbacks", "None")
    period = chip.plasticity_period_ms
    t = emulator.state.t
    while t < t_stop - 1e-9:
        next_update = (np.floor(t / period + 1e-9) + 1.0) * period
        target = min(next_update, t_stop)
        _pynn_nest.run_until(target)
        t = target
        if abs(target - next_update) < 1e-9:
            for program in chip.ppu_programs:
                program.update()
    return emulator.state.t


def run(simtime: float, callbacks=None) -> float:
    """Advance the emulation by ``simtime`` (biological ms); returns the current time (ms)."""
    _start_run()
    t_start = emulator.state.t
    if emulator.current_chip().ppu_programs:
        result = _run_with_plasticity(t_start + simtime, callbacks)
    else:
        result = _pynn_nest.run(simtime, callbacks=callbacks)
    _finish_run(t_start)
    return result


run_for = run


def run_until(time_point: float, callbacks=None) -> float:
    """Advance the emulation until ``time_point`` (biological ms); returns the current time (ms)."""
    _start_run()
    t_start = emulator.state.t
    if emulator.current_chip().ppu_programs:
        result = _run_with_plasticity(time_point, callbacks)
    else:
        result = _pynn_nest.run_until(time_point, callbacks=callbacks)
    _finish_run(t_start)
    return result


def reset(annotations=None) -> None:
    """Start a new trial: time back to 0, state variables to their initial values, new trial noise."""
    _pynn_nest.reset(annotations=annotations)
    emulator.current_chip().trial_pending = True


def end() -> None:
    """Finish the emulation (writes files requested with ``record(..., to_file=...)``)."""
    _pynn_nest.end()


def get_hardware_report() -> dict:
    """What the experiment so far would have cost on the chip.

    Returns
    -------
    dict
        ``biological_time_ms``; ``hardware_time_s`` (biological time / speed-up); ``speedup``;
        ``estimated_wall_time_s`` (configurations x configuration overhead + runs x run overhead +
        hardware time; overheads are assumptions of :mod:`.chips`); ``n_runs``,
        ``n_configurations``; ``used_neurons`` / ``max_neurons``; ``synapse_rows`` (presynaptic
        cells per projection with at least one synapse) and ``synapses``; ``max_fan_in_used``;
        ``quantisation`` (weights, clipped, mean and max absolute error in uS, relative error of the
        summed weights; the same with suffix ``_nA`` for current-based synapses if there are
        any); ``fixed_pattern_noise`` (scale, trial noise, calibration source, residual
        offset standard deviations in mV, relative standard deviations of the multiplicative
        deviations left after calibration); ``background`` (on-chip Poisson generators used and
        available, and each background source), ``clamped_parameters`` (circuits whose realised reset
        or threshold had to be kept below the next voltage), ``energy`` (the energy model,
        :func:`cortexsim.backends.energy.chip_energy`: ASIC energy = published power x hardware time,
        system energy = system power x estimated wall time; J) and ``plasticity`` (STDP projections run
        by the plasticity processors, their update period and the updates so far).
    """
    chip = emulator.current_chip()
    spec = chip.spec
    hardware_time_s = chip.biological_time_ms / 1000.0 / spec.speedup
    wall_time_s = (chip.n_configurations * spec.configuration_overhead_s + chip.n_runs * spec.run_overhead_s
                   + hardware_time_s)
    summaries = [projection.quantisation_summary() for projection in chip.projections]
    n_weights = sum(s["n_weights"] for s in summaries)
    quantisation = {"enabled": chip.quantize_weights, "weight_bits": spec.weight_bits, "n_weights": int(n_weights),
                    "n_clipped": int(sum(s["n_clipped"] for s in summaries))}
    for unit in ("uS", "nA"):       # conductance- and current-based synapses, each in its own unit
        of_unit = [s for s in summaries if s["unit"] == unit]
        if unit == "nA" and not of_unit:
            continue
        n = sum(s["n_weights"] for s in of_unit)
        error_sum = sum(s["abs_error_sum"] for s in of_unit)
        requested_sum = sum(s["requested_sum"] for s in of_unit)
        quantisation[f"mean_abs_error_{unit}"] = error_sum / n if n else 0.0
        quantisation[f"max_abs_error_{unit}"] = max((s["abs_error_max"] for s in of_unit), default=0.0)
        quantisation["relative_error_of_summed_weights" + ("" if unit == "uS" else "_nA")] = (
            error_sum / requested_sum if requested_sum else 0.0)
    return {
        "chip": spec.name,
        "chip_seed": chip.seed,
        "run_seed": chip.rng_seed,
        "speedup": spec.speedup,
        "biological_time_ms": float(chip.biological_time_ms),
        "hardware_time_s": float(hardware_time_s),
        "n_runs": chip.n_runs,
        "n_configurations": chip.n_configurations,
        "estimated_wall_time_s": float(wall_time_s),
        "used_neurons": int(chip.next_circuit),
        "max_neurons": spec.n_neurons,
        "synapse_rows": int(sum(s["n_rows"] for s in summaries)),
        "synapses": int(n_weights),
        "max_fan_in_used": int(chip.fan_in.max(initial=0)),
        "max_fan_in": spec.max_fan_in,
        "quantisation": quantisation,
        "fixed_pattern_noise": {
            "scale": chip.fpn_scale,
            "trial_noise": chip.trial_noise,
            "calibration": chip.calibration_source,
            "residual_offset_sd_mV": chip.residual_offsets(),
            "residual_factor_sd": chip.residual_factors(),
        },
        "background": {
            "generators_used": int(sum(entry["generators"] for entry in chip.background)),
            "generators_available": spec.background_generators,
            "max_event_rate_per_generator_hz_hardware": spec.background_max_event_rate_hz,
            "sources": [dict(entry) for entry in chip.background],
        },
        "clamped_parameters": {name: len(circuits) for name, circuits in chip.clamped_parameters.items()},
        "energy": chip_energy(spec.name, hardware_time_s, wall_time_s),
        "plasticity": {"stdp_projections": len(chip.ppu_programs), "period_ms": chip.plasticity_period_ms,
                       "updates": int(sum(program.updates for program in chip.ppu_programs))},
    }
