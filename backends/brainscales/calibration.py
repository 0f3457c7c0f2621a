"""Calibration of an emulated chip: measure every neuron circuit, compensate its voltage offsets.

The measurement runs on the emulated chip itself, through this backend's PyNN classes, like a
calibration on hardware reads membrane traces: all circuits at once, no synaptic input, membrane
recorded every 0.01 ms.

Phase A (leak), 10 ms: v_rest -70 mV, v_thresh -30 mV, tau_m 1 ms. The membrane settles at the circuit's real
leak potential; the last sample minus -70 mV is the leak offset.
Phase B (threshold, reset), 15 ms: v_rest -12 mV (above every real threshold), v_thresh -50 mV,
v_reset -95 mV, tau_m 4 ms: the neuron fires regularly. The membrane is clamped at the real reset potential
during the refractory period (minimum of the trace), and the largest sample before a spike, plus
half the last step, estimates the real threshold. Offsets are the differences to the set values.

The corrections are the measured offsets rounded to the chip's calibration step
(``ChipSpec.calibration_step_mV``); the realised value of a calibrated parameter is then
requested + offset - correction. Trial-to-trial noise (if enabled) disturbs the measurement, as on
hardware. Time constants, capacitances and synaptic gains are not compensated.

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
from .chip_state import CALIBRATED_PARAMETERS, ChipSession

__all__ = ["measure_offsets", "corrections_from_offsets", "load_or_measure", "default_cache_path",
           "MAX_CALIBRATABLE_FPN_SCALE"]

FORMAT_VERSION = 1
MEASUREMENT_TIMESTEP_MS = 0.01
#: The protocol's voltages keep threshold, leak and reset apart for noise scales up to this value.
MAX_CALIBRATABLE_FPN_SCALE = 1.4

_PHASE_A = {"v_rest": -70.0, "v_thresh": -30.0, "v_reset": -95.0, "tau_m": 1.0}
_PHASE_B = {"v_rest": -12.0, "v_thresh": -50.0, "v_reset": -95.0, "tau_m": 4.0}
_COMMON = {"cm": 0.2, "tau_refrac": 1.0, "tau_syn_E": 5.0, "tau_syn_I": 5.0,
           "e_rev_E": 0.0, "e_rev_I": -100.0}
_T_PHASE_A, _T_PHASE_B = 10.0, 15.0


def _chip_fingerprint(session: ChipSession) -> str:
    data = json.dumps({"spec": session.spec.fixed_pattern_noise, "n": session.spec.n_neurons,
                       "protocol": [_PHASE_A, _PHASE_B, _COMMON, MEASUREMENT_TIMESTEP_MS]}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def measure_offsets(session: ChipSession) -> dict[str, np.ndarray]:
    """Measure the offsets (mV) of leak, threshold and reset of every circuit of ``session``'s chip.

    Builds and runs the measurement network in a fresh NEST kernel; the caller must reset the
    kernel and ``session.forget_network()`` afterwards (``setup()`` does both).
    """
    import pyNN.nest as pynn_nest
    from . import control
    from .populations import Population
    from pyNN.nest.standardmodels.cells import IF_cond_exp

    if session.fpn_scale > MAX_CALIBRATABLE_FPN_SCALE:
        raise ValueError(f"calibration supports fixed_pattern_noise scales up to "
                         f"{MAX_CALIBRATABLE_FPN_SCALE}, got {session.fpn_scale}")
    emulator.chip.session = session
    session.forget_network()
    pynn_nest.setup(timestep=MEASUREMENT_TIMESTEP_MS, min_delay=MEASUREMENT_TIMESTEP_MS,
                    rng_seed=session.rng_seed % (2 ** 31 - 2) + 1, threads=1, verbosity="error")
    cells = Population(session.spec.n_neurons, IF_cond_exp(**_COMMON, **_PHASE_A), label="calibration")
    cells.initialize(v=_PHASE_A["v_rest"])
    cells.record("v")
    control.run(_T_PHASE_A)
    cells.set(**_PHASE_B)
    control.run(_T_PHASE_B)
    signal = cells.get_data().segments[0].filter(name="v")[0]
    v = np.asarray(signal.magnitude, dtype=float)              # (samples, neurons)
    times = np.asarray(signal.times.rescale("ms").magnitude)
    circuits = cells.circuits
    phase_a = times < _T_PHASE_A - 1e-9
    phase_b = times > _T_PHASE_A + 1.0                          # after the switch has settled
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
    offsets = {"E_L": leak - _PHASE_A["v_rest"], "V_th": threshold - _PHASE_B["v_thresh"],
               "V_reset": reset - _PHASE_B["v_reset"]}
    result = {}
    for name, values in offsets.items():
        per_circuit = np.zeros(session.spec.n_neurons)
        per_circuit[circuits] = values
        result[name] = per_circuit
    return result


def corrections_from_offsets(offsets: dict[str, np.ndarray], step_mV: float) -> dict[str, np.ndarray]:
    """Corrections (mV) the chip can apply: the offsets rounded to its calibration step."""
    if not step_mV > 0:
        raise ValueError(f"calibration step must be > 0 mV, got {step_mV}")
    return {name: np.round(np.asarray(offsets[name]) / step_mV) * step_mV for name in CALIBRATED_PARAMETERS}


def default_cache_path(session: ChipSession) -> Path:
    """Cache file of the calibration of ``session``'s chip."""
    root = Path(os.environ.get("CORTEXSIM_CACHE_DIR", Path.home() / ".cache" / "cortexsim"))
    scale = f"{session.fpn_scale:g}".replace(".", "p")
    return root / "brainscales" / f"calibration_{session.spec.name}_seed{session.seed}_fpn{scale}.json"


def _matches(data: dict, session: ChipSession) -> bool:
    return (data.get("format") == FORMAT_VERSION and data.get("chip") == session.spec.name
            and data.get("seed") == session.seed and data.get("fpn_scale") == session.fpn_scale
            and data.get("fingerprint") == _chip_fingerprint(session))


def load_or_measure(session: ChipSession, calibration: str | os.PathLike) -> tuple[dict, str]:
    """Corrections for ``session``'s chip from the cache/file, or measured (and then stored).

    Parameters
    ----------
    session : ChipSession
        The chip.
    calibration : "auto" or path
        "auto": the default cache file (re-measured if missing or for another chip). A path: that
        file; if it exists it must belong to this chip (ValueError otherwise).

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
            return ({name: np.asarray(data["corrections_mV"][name], dtype=float)
                     for name in CALIBRATED_PARAMETERS}, f"loaded: {path}")
        if strict:
            raise ValueError(f"calibration file {path} belongs to chip {data.get('chip')!r} seed "
                             f"{data.get('seed')!r} noise scale {data.get('fpn_scale')!r}, not to "
                             f"{session.spec.name!r} seed {session.seed} scale {session.fpn_scale}")
    offsets = measure_offsets(session)
    corrections = corrections_from_offsets(offsets, session.spec.calibration_step_mV)
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
        "protocol": {"timestep_ms": MEASUREMENT_TIMESTEP_MS, "phase_a": _PHASE_A, "phase_b": _PHASE_B,
                     "common": _COMMON, "durations_ms": [_T_PHASE_A, _T_PHASE_B]},
        "measured_offsets_mV": {name: np.asarray(v).tolist() for name, v in offsets.items()},
        "corrections_mV": {name: np.asarray(v).tolist() for name, v in corrections.items()},
        "versions": {"numpy": np.__version__, "nest": nest.__version__, "pyNN": pyNN.__version__,
                     "python": platform.python_version()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    temporary.replace(path)
