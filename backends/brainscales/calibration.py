"""Calibration of an emulated chip: measure every neuron circuit, compensate its deviations.

The measurement runs on the emulated chip itself, through this backend's PyNN classes, like a
calibration on hardware reads membrane traces: all circuits at once, membrane recorded every
0.01 ms, one run of 150 ms in five phases.

Phase A (leak), 10 ms: v_rest -70 mV, v_thresh -30 mV, tau_m 1 ms. The membrane settles at the circuit's real
leak potential; the last sample minus -70 mV is the leak offset.
Phase B (threshold, reset), 15 ms: v_rest -12 mV (above every real threshold), v_thresh -50 mV,
v_reset -95 mV, tau_m 4 ms: the neuron fires regularly. The membrane is clamped at the real reset potential
during the refractory period (minimum of the trace), and the largest sample before a spike, plus
half the last step, estimates the real threshold. Offsets are the differences to the set values.
Phase C (membrane), 15 + 15 ms: back to the phase-A settings, then a current step of 1 nA. The step
height of the membrane gives the real leak conductance (I / dV); the slope of dV/dt against V
gives the real membrane time constant, and with it the capacitance.
Phase D (synapses), 15 + 40 + 40 ms: one excitatory and, 40 ms later, one inhibitory input spike
of a known weight (tau_syn 3 ms requested). With the measured leak, leak conductance and
capacitance the membrane equation gives the synaptic conductance g(t) = (C dV/dt - g_L (E_L - V)) /
(E_rev - V); a straight-line fit of log g(t) gives the real time constant and the amplitude at the
spike's arrival, i.e. the synaptic gain (amplitude / configured weight).

The corrections are the measured offsets rounded to the chip's calibration step
(``ChipSpec.calibration_step_mV``) and the measured factors rounded to its relative step
(``ChipSpec.calibration_step_relative``); the realised value of a calibrated parameter is then
requested + offset - correction, or requested x deviation / factor. Trial-to-trial noise (if
enabled) disturbs the measurement, as on hardware.

Results are cached as JSON per (chip, seed, noise scale) in ``$CORTEXSIM_CACHE_DIR/brainscales``
(default ``~/.cache/cortexsim/brainscales``) or in the file given as ``setup(calibration=path)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np

from . import emulator
from .chip_state import CALIBRATED_FACTORS, CALIBRATED_PARAMETERS, ChipSession

__all__ = ["measure_offsets", "corrections_from_offsets", "load_or_measure", "default_cache_path",
           "MAX_CALIBRATABLE_FPN_SCALE"]

FORMAT_VERSION = 2
MEASUREMENT_TIMESTEP_MS = 0.01
#: The protocol's voltages keep threshold, leak and reset apart for noise scales up to this value.
MAX_CALIBRATABLE_FPN_SCALE = 1.4

_PHASE_A = {"v_rest": -70.0, "v_thresh": -30.0, "v_reset": -95.0, "tau_m": 1.0}
_PHASE_B = {"v_rest": -12.0, "v_thresh": -50.0, "v_reset": -95.0, "tau_m": 4.0}
_COMMON = {"cm": 0.2, "tau_refrac": 1.0, "tau_syn_E": 3.0, "tau_syn_I": 3.0,
           "e_rev_E": 0.0, "e_rev_I": -100.0}
_T_PHASE_A, _T_PHASE_B = 10.0, 15.0
_T_SETTLE, _T_STEP, _T_SYNAPSE = 15.0, 15.0, 40.0
_STEP_CURRENT_NA = 1.0
_SYNAPSE_WEIGHT_US = 2.0 ** -8          # representable exactly on both chips
#: Samples of g(t) used for the fit: after the arrival (skip the jump) while g > this fraction of its peak.
_FIT_FRACTION = 0.05


def _chip_fingerprint(session: ChipSession) -> str:
    data = json.dumps({"spec": session.spec.fixed_pattern_noise, "n": session.spec.n_neurons,
                       "protocol": [_PHASE_A, _PHASE_B, _COMMON, MEASUREMENT_TIMESTEP_MS, _T_SETTLE,
                                    _T_STEP, _T_SYNAPSE, _STEP_CURRENT_NA, _SYNAPSE_WEIGHT_US]},
                      sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _slope(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line y = a + b x per column over the rows where ``mask``; returns (a, b)."""
    weight = mask.astype(float)
    n = weight.sum(axis=0)
    if np.any(n < 3):
        raise RuntimeError(f"calibration: {int(np.sum(n < 3))} circuits gave fewer than 3 samples to fit")
    x_mean = (weight * x).sum(axis=0) / n
    y_mean = (weight * y).sum(axis=0) / n
    b = (weight * (x - x_mean) * (y - y_mean)).sum(axis=0) / (weight * (x - x_mean) ** 2).sum(axis=0)
    return y_mean - b * x_mean, b


def _synapse_fit(v, times, t_arrival, t_end, e_leak, g_leak, c_m, e_rev, weight):
    """Gain (amplitude / weight) and time constant (ms) of the conductance after one input spike."""
    window = (times > t_arrival + 3 * MEASUREMENT_TIMESTEP_MS) & (times < t_end)
    dvdt = np.gradient(v, MEASUREMENT_TIMESTEP_MS, axis=0)[window]
    trace = v[window]
    conductance = (c_m * dvdt - g_leak * (e_leak - trace)) / (e_rev - trace)      # uS (nF * mV/ms / mV)
    peak = conductance.max(axis=0)
    t = np.broadcast_to((times[window] - t_arrival)[:, None], conductance.shape)
    after_peak = np.arange(len(t))[:, None] >= conductance.argmax(axis=0)[None, :]
    mask = after_peak & (conductance > _FIT_FRACTION * peak)
    intercept, slope = _slope(t, np.log(np.clip(conductance, 1e-30, None)), mask)
    return np.exp(intercept) / weight, -1.0 / slope


def measure_offsets(session: ChipSession, run) -> dict[str, np.ndarray]:
    """Measure every circuit of ``session``'s chip: voltage offsets and multiplicative deviations.

    Builds and runs the measurement network in a fresh NEST kernel with the backend's ``run(ms)``
    (passed in by :func:`~cortexsim.backends.brainscales.control.setup`, the caller); the caller must
    reset the kernel and ``session.forget_network()`` afterwards (``setup()`` does both).

    Returns
    -------
    dict
        Per circuit (n_neurons,): offsets (mV) of :data:`CALIBRATED_PARAMETERS` and measured
        factors (real / requested) of :data:`CALIBRATED_FACTORS`.
    """
    import pyNN.nest as pynn_nest
    from .populations import Population
    from .projections import Projection
    from pyNN.nest.connectors import AllToAllConnector
    from pyNN.nest.standardmodels.cells import IF_cond_exp, SpikeSourceArray
    from pyNN.nest.standardmodels.synapses import StaticSynapse

    if session.fpn_scale > MAX_CALIBRATABLE_FPN_SCALE:
        raise ValueError(f"calibration supports fixed_pattern_noise scales up to "
                         f"{MAX_CALIBRATABLE_FPN_SCALE}, got {session.fpn_scale}")
    emulator.chip.session = session
    session.forget_network()
    pynn_nest.setup(timestep=MEASUREMENT_TIMESTEP_MS, min_delay=MEASUREMENT_TIMESTEP_MS,
                    rng_seed=session.rng_seed % (2 ** 31 - 2) + 1, threads=1, verbosity="error")
    t_c = _T_PHASE_A + _T_PHASE_B                   # start of phase C (settling)
    t_step = t_c + _T_SETTLE
    t_d = t_step + _T_STEP                          # start of phase D (settling)
    t_exc = t_d + _T_SETTLE
    t_inh = t_exc + _T_SYNAPSE
    t_end = t_inh + _T_SYNAPSE
    cells = Population(session.spec.n_neurons, IF_cond_exp(**_COMMON, **_PHASE_A), label="calibration")
    cells.initialize(v=_PHASE_A["v_rest"])
    sources = {"excitatory": Population(1, SpikeSourceArray(spike_times=[t_exc]), label="cal_exc"),
               "inhibitory": Population(1, SpikeSourceArray(spike_times=[t_inh]), label="cal_inh")}
    projections = {receptor: Projection(source, cells, AllToAllConnector(),
                                        StaticSynapse(weight=_SYNAPSE_WEIGHT_US), receptor_type=receptor)
                   for receptor, source in sources.items()}
    cells.record("v")
    run(_T_PHASE_A)
    cells.set(**_PHASE_B)
    run(_T_PHASE_B)
    cells.set(**_PHASE_A)
    run(_T_SETTLE)
    cells.set(i_offset=_STEP_CURRENT_NA)
    run(_T_STEP)
    cells.set(i_offset=0.0)
    run(t_end - t_d)
    signal = cells.get_data().segments[0].filter(name="v")[0]
    v = np.asarray(signal.magnitude, dtype=float)              # (samples, neurons)
    times = np.asarray(signal.times.rescale("ms").magnitude)
    circuits = cells.circuits
    phase_a = times < _T_PHASE_A - 1e-9
    phase_b = (times > _T_PHASE_A + 1.0) & (times < t_c - 1e-9)   # after the switch has settled
    leak = v[phase_a][-1]
    trace_b = v[phase_b]
    reset = trace_b.min(axis=0)
    peak_index = trace_b.argmax(axis=0)
    columns = np.arange(trace_b.shape[1])
    peak = trace_b[peak_index, columns]
    previous = trace_b[np.maximum(peak_index - 1, 0), columns]
    threshold = peak + 0.5 * np.clip(peak - previous, 0.0, None)
    never_fired = reset > _PHASE_B["v_reset"] + 50.0
    if np.any(never_fired):
        raise RuntimeError(f"calibration: {int(never_fired.sum())} circuits did not fire in phase B")

    # phase C: leak conductance from the step height, time constant from dV/dt = (V_inf - V) / tau
    base = v[np.searchsorted(times, t_step) - 1]
    v_inf = v[np.searchsorted(times, t_d) - 1]
    g_leak = _STEP_CURRENT_NA / (v_inf - base)                  # uS
    rising = (times > t_step + 3 * MEASUREMENT_TIMESTEP_MS) & (times < t_d - 1e-9)
    dvdt = np.gradient(v, MEASUREMENT_TIMESTEP_MS, axis=0)[rising]
    far = (v_inf - v[rising]) > 0.02 * (v_inf - base)
    _, slope = _slope(v[rising], dvdt, far)
    tau_m = -1.0 / slope
    c_m = tau_m * g_leak                                        # nF
    e_leak = v[np.searchsorted(times, t_exc) - 1]

    weights = {receptor: float(np.asarray(projection.get("weight", format="array"))[0, 0])
               for receptor, projection in projections.items()}
    gain_exc, tau_exc = _synapse_fit(v, times, t_exc + MEASUREMENT_TIMESTEP_MS, t_inh, e_leak, g_leak, c_m,
                                     _COMMON["e_rev_E"], weights["excitatory"])
    gain_inh, tau_inh = _synapse_fit(v, times, t_inh + MEASUREMENT_TIMESTEP_MS, t_end, e_leak, g_leak, c_m,
                                     _COMMON["e_rev_I"], weights["inhibitory"])
    nominal_g_leak = _COMMON["cm"] / _PHASE_A["tau_m"]
    measured = {"E_L": leak - _PHASE_A["v_rest"], "V_th": threshold - _PHASE_B["v_thresh"],
                "V_reset": reset - _PHASE_B["v_reset"],
                "g_L": g_leak / nominal_g_leak, "C_m": c_m / _COMMON["cm"],
                "tau_syn_ex": tau_exc / _COMMON["tau_syn_E"], "tau_syn_in": tau_inh / _COMMON["tau_syn_I"],
                "gain_exc": gain_exc, "gain_inh": gain_inh}
    result = {}
    for name, values in measured.items():
        if not np.all(np.isfinite(values)):
            raise RuntimeError(f"calibration: measurement of {name} is not finite on some circuits")
        per_circuit = np.zeros(session.spec.n_neurons) if name in CALIBRATED_PARAMETERS \
            else np.ones(session.spec.n_neurons)
        per_circuit[circuits] = values
        result[name] = per_circuit
    return result


def corrections_from_offsets(offsets: dict[str, np.ndarray], step_mV: float,
                             step_relative: float | None = None) -> dict[str, np.ndarray]:
    """Corrections the chip can apply: offsets rounded to ``step_mV``; factors (if measured and
    ``step_relative`` is given) rounded to multiples of ``step_relative``."""
    if not step_mV > 0:
        raise ValueError(f"calibration step must be > 0 mV, got {step_mV}")
    corrections = {name: np.round(np.asarray(offsets[name]) / step_mV) * step_mV
                   for name in CALIBRATED_PARAMETERS}
    if step_relative is not None:
        if not step_relative > 0:
            raise ValueError(f"relative calibration step must be > 0, got {step_relative}")
        for name in CALIBRATED_FACTORS:
            if name in offsets:
                corrections[name] = np.maximum(np.round(np.asarray(offsets[name]) / step_relative),
                                               1.0) * step_relative
    return corrections


def default_cache_path(session: ChipSession) -> Path:
    """Cache file of the calibration of ``session``'s chip."""
    root = Path(os.environ.get("CORTEXSIM_CACHE_DIR", Path.home() / ".cache" / "cortexsim"))
    scale = f"{session.fpn_scale:g}".replace(".", "p")
    return root / "brainscales" / f"calibration_{session.spec.name}_seed{session.seed}_fpn{scale}.json"


def _matches(data: dict, session: ChipSession) -> bool:
    return (data.get("format") == FORMAT_VERSION and data.get("chip") == session.spec.name
            and data.get("seed") == session.seed and data.get("fpn_scale") == session.fpn_scale
            and data.get("fingerprint") == _chip_fingerprint(session))


def load_or_measure(session: ChipSession, calibration: str | os.PathLike, run) -> tuple[dict, str]:
    """Corrections for ``session``'s chip from the cache/file, or measured (and then stored).

    Parameters
    ----------
    session : ChipSession
        The chip.
    calibration : "auto" or path
        "auto": the default cache file (re-measured if missing or for another chip). A path: that
        file; if it exists it must belong to this chip (ValueError otherwise).
    run : callable
        The backend's ``run(duration_ms)``, used to measure when nothing is stored.

    Returns
    -------
    corrections : dict
        Native parameter -> correction per circuit (mV).
    source : str
        Where they came from, for the hardware report ("measured: PATH" or "loaded: PATH").
    """
    if calibration == "auto":
        path, strict = default_cache_path(session), False
    elif isinstance(calibration, (str, os.PathLike)):
        path, strict = Path(calibration), True
    else:
        raise ValueError(f"calibration must be None, 'auto' or a file path, got {calibration!r}")
    if path.exists():
        data = json.loads(path.read_text())
        if _matches(data, session):
            return ({name: np.asarray(values, dtype=float)
                     for name, values in data["corrections"].items()}, f"loaded: {path}")
        if strict:
            raise ValueError(f"calibration file {path} belongs to chip {data.get('chip')!r} seed "
                             f"{data.get('seed')!r} noise scale {data.get('fpn_scale')!r}, not to "
                             f"{session.spec.name!r} seed {session.seed} scale {session.fpn_scale}")
    offsets = measure_offsets(session, run)
    corrections = corrections_from_offsets(offsets, session.spec.calibration_step_mV,
                                           session.spec.calibration_step_relative)
    _write(path, session, offsets, corrections)
    return corrections, f"measured: {path}"


def _write(path: Path, session: ChipSession, offsets: dict, corrections: dict) -> None:
    import nest
    import pyNN
    data = {
        "format": FORMAT_VERSION, "chip": session.spec.name, "seed": session.seed,
        "fpn_scale": session.fpn_scale, "trial_noise": session.trial_noise,
        "fingerprint": _chip_fingerprint(session),
        "calibration_step_mV": session.spec.calibration_step_mV,
        "calibration_step_relative": session.spec.calibration_step_relative,
        "protocol": {"timestep_ms": MEASUREMENT_TIMESTEP_MS, "phase_a": _PHASE_A, "phase_b": _PHASE_B,
                     "common": _COMMON, "durations_ms": [_T_PHASE_A, _T_PHASE_B, _T_SETTLE, _T_STEP,
                                                         _T_SETTLE, _T_SYNAPSE, _T_SYNAPSE],
                     "step_current_nA": _STEP_CURRENT_NA, "synapse_weight_uS": _SYNAPSE_WEIGHT_US},
        "units": "offsets and their corrections in mV; factors (real / requested) dimensionless",
        "measured": {name: np.asarray(v).tolist() for name, v in offsets.items()},
        "corrections": {name: np.asarray(v).tolist() for name, v in corrections.items()},
        "versions": {"numpy": np.__version__, "nest": nest.__version__, "pyNN": pyNN.__version__,
                     "python": platform.python_version()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    temporary.replace(path)
