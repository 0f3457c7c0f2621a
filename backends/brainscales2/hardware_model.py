"""The emulated BrainScaleS-2 neuron circuit: hardware parameters <-> biological parameters (pure numpy).

``cortexsim.backends.brainscales2`` speaks BrainScaleS-2's own units: CapMem DAC values (0 .. 1022),
switches, capacitor and counter settings, ADC readings, integer synaptic weights and hardware time.
The emulator underneath (:mod:`cortexsim.backends.brainscales`, dynamics on NEST) works in PyNN's
biological units. This module is the one documented map between them. Every constant below is an
*assumption* of the emulation chosen to be physically plausible and to reproduce what the public
BrainScaleS-2 example scripts expect (which configuration is "leak over threshold", which fires only
with input, how large a PSP is in ADC units); it is not a measured property of a real chip.

Time
    Hardware runs 1000 times faster than biology: 1 us of hardware time is 1 ms of the emulation.
    ``pynn.run(0.2)`` (hardware ms) runs the emulation for 200 ms. Spike times, ADC sample times and
    timer times are returned in hardware ms.
Voltages
    A hardware voltage V_hw in [0, 1.2] V (the CapMem range) maps linearly onto the biological range
    [-100, -10] mV: ``V_bio = -100 mV + 75 mV/V * V_hw`` (13.3 mV on chip per biological mV).

    * threshold: ``V_hw = code / 1022 * 1.2 V``;
    * leak and reset pass a source follower (gain 0.68, offset 0.19 V; clipped at 0 V):
      ``V_hw = max(code * 0.8 mV - 0.19 V, 0)``, so the documented leak range 300 .. 1000 spans
      0.05 .. 0.61 V. Equal codes do not mean equal voltages: leak 1022 or 1000 over threshold
      300 .. 400 fires on its own ("leak over threshold", 10 .. 20 mV of biology above threshold),
      leak 650 under threshold 400 does not; leak 750 with threshold 300 is just above (4 mV of
      biology: most circuits fire on their own);
    * the COBA reversal potentials (``*_input_v_rev_coba``, an emulator parameter) have no drop.
    * MADC readings: 10 bit over [0, 1.2] V (1.17 mV per LSB); CADC readings and the voltage targets
      of the calibrated cells: 8 bit, 3.75 mV per LSB (CADC 80 = 0.3 V, 160 = 0.6 V).
Membrane
    Capacitance code c (0 .. 63): ``C_m = (c + 1) / 64 nF`` (the +1 is the parasitic capacitance).
    Leak conductance from the leak OTA bias i (0 .. 1022): ``g_L = 1 uS * i / 1022``, divided by 8
    with ``leak_enable_division``, multiplied by 8 with ``leak_enable_multiplication``; i = 0 leaves a
    residual 1e-4 uS. ``tau_m = C_m / g_L`` (c = 63, i = 102: 10 ms, i.e. 10 us of hardware time).
    Refractory time: counter value n times the clock period, 0.125 us (slow clock, ``input_clock``
    0, up to 32 us) or 0.04 us (fast clock, 1).
    Threshold comparator off (``threshold_enable`` False, the "silent" default): the neuron never
    fires (threshold at +1000 mV).
    Constant current: ``constant_current_i_offset`` i gives i / 1022 nA, positive as a source,
    negative as a sink, if ``constant_current_enable``.
Synaptic input (per receptor, ``excitatory_input_*`` / ``inhibitory_input_*``)
    Time constant from the bias i_tau: ``tau_syn = 0.3 ms * 1022 / max(i_tau, 10)`` (0.3 .. 30.7 ms).
    Current-based (default): a synapse of weight w (0 .. 63) adds a current jump of
    ``w / 63 * 0.9 nA * i_gm / 1022`` (i_gm = ``*_i_bias_gm``); ``enable`` False means no input.
    Conductance-based (``*_enable_coba_mode``): a conductance jump of ``w / 63 * 0.05 uS * i_gm / 1022``
    towards the reversal potential ``*_v_rev_coba`` (CapMem code, no source follower).
    Synaptic-input voltages (``exc_synin`` / ``inh_synin`` recordings): the input line rests at
    0.6 V and is pulled down by 0.06 V per nA of synaptic current.
Fixed-pattern noise
    Is not modelled here: the biological parameters computed from the codes are the circuit's
    *nominal* ones, and the emulator adds each circuit's own deviations (leak, threshold and reset
    offsets, leak conductance, capacitance, synaptic time constants and gains; chip seed) exactly as
    for biological-unit scripts. A calibration (``CalibHXNeuronCuba``/``Coba``) inverts this map
    per circuit with the circuit's measured deviations (:func:`codes_for_targets`).
Not modelled
    Technical biases that set operating points only (``*_i_shift_reference``, ``*_i_bias_coba``,
    ``*_enable_small_capacitance``, ``*_enable_high_resistance``, ``reset_i_bias``, the OTA
    degeneration switches, ``refractory_period_reset_holdoff``/``enable_pause``, readout and
    event-routing addresses) are stored and returned but change nothing in the emulation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SPEEDUP", "CAPMEM_MAX", "V_CAPMEM_FULL", "SOURCE_FOLLOWER_DROP", "hw_to_bio_mv", "bio_mv_to_hw",
           "threshold_volts", "leak_volts", "threshold_code", "leak_code", "madc_from_volts", "cadc_from_volts",
           "volts_from_cadc", "membrane_capacitance_nf", "leak_conductance_us", "tau_syn_ms", "tau_syn_code",
           "refractory_ms", "psc_amplitude", "offset_current_na", "synin_volts", "ThresholdOff",
           "codes_for_targets", "MADC_BITS", "CADC_BITS", "CADC_LSB_V", "I_SYN_FULL_NA", "G_SYN_FULL_US"]

#: Hardware time runs this many times faster than biological time.
SPEEDUP = 1000.0
#: Largest CapMem DAC value (1023 switches a cell off on hardware and is refused here).
CAPMEM_MAX = 1022
#: CapMem output range (V).
V_CAPMEM_FULL = 1.2
#: Source follower of the leak/reset path: volts per code and offset (V).
LEAK_VOLTS_PER_CODE, SOURCE_FOLLOWER_DROP = 0.0008, 0.19
#: Biological membrane potential (mV) at 0 V and its slope (mV per V of hardware voltage).
BIO_AT_ZERO_MV, BIO_MV_PER_V = -100.0, 75.0
#: ADC resolutions and the CADC's step (V per LSB).
MADC_BITS, CADC_BITS = 10, 8
CADC_LSB_V = 0.00375
#: Leak conductance at full bias (uS) and the residual one with the bias at 0.
G_LEAK_FULL_US, G_LEAK_RESIDUAL_US = 1.0, 1e-4
#: Synaptic time constant at full bias (ms) and the smallest useful bias.
TAU_SYN_FULL_MS, TAU_SYN_MIN_BIAS = 0.3, 10
#: Refractory counter clock periods (hardware us = biological ms): slow (0), fast (1).
REFRACTORY_CLOCK_US = (0.125, 0.04)
#: Current (nA) / conductance (uS) of a weight-63 synapse at full OTA bias.
I_SYN_FULL_NA, G_SYN_FULL_US = 0.9, 0.05
#: Offset current at full bias (nA).
I_OFFSET_FULL_NA = 1.0
#: Synaptic input line: resting voltage (V) and pull-down per nA of synaptic current (V/nA).
SYNIN_REST_V, SYNIN_V_PER_NA = 0.6, 0.06


class ThresholdOff:
    """Marker value of the biological threshold of a neuron whose comparator is disabled (mV)."""

    VALUE_MV = 1000.0


def hw_to_bio_mv(volts):
    """Biological membrane potential (mV) of a hardware voltage (V)."""
    return BIO_AT_ZERO_MV + BIO_MV_PER_V * np.asarray(volts, dtype=float)


def bio_mv_to_hw(mv):
    """Hardware voltage (V) of a biological membrane potential (mV); the inverse of :func:`hw_to_bio_mv`."""
    return (np.asarray(mv, dtype=float) - BIO_AT_ZERO_MV) / BIO_MV_PER_V


def threshold_volts(code):
    """Threshold voltage (V) of a CapMem code; also the COBA reversal potentials (no source follower)."""
    return np.asarray(code, dtype=float) / CAPMEM_MAX * V_CAPMEM_FULL


def leak_volts(code):
    """Leak or reset voltage (V) of a CapMem code: through the source follower, clipped at 0 V."""
    return np.maximum(np.asarray(code, dtype=float) * LEAK_VOLTS_PER_CODE - SOURCE_FOLLOWER_DROP, 0.0)


def threshold_code(volts):
    """CapMem code (integer, 0 .. 1022) closest to a threshold (or reversal) voltage."""
    return np.clip(np.rint(np.asarray(volts, dtype=float) / V_CAPMEM_FULL * CAPMEM_MAX), 0, CAPMEM_MAX).astype(int)


def leak_code(volts):
    """CapMem code closest to a leak or reset voltage (through the source follower)."""
    codes = np.rint((np.asarray(volts, dtype=float) + SOURCE_FOLLOWER_DROP) / LEAK_VOLTS_PER_CODE)
    return np.clip(codes, 0, CAPMEM_MAX).astype(int)


def madc_from_volts(volts):
    """MADC reading (10 bit, 0 .. 1023) of a voltage (V); clipped at the rails."""
    full = 2 ** MADC_BITS - 1
    return np.clip(np.rint(np.asarray(volts, dtype=float) / V_CAPMEM_FULL * full), 0, full)


def cadc_from_volts(volts):
    """CADC reading (8 bit, 0 .. 255) of a voltage (V); clipped at the rails."""
    return np.clip(np.rint(np.asarray(volts, dtype=float) / CADC_LSB_V), 0, 2 ** CADC_BITS - 1)


def volts_from_cadc(value):
    """Voltage (V) of a CADC value (the unit of the calibration targets v_rest, v_reset, v_thresh, e_rev)."""
    return np.asarray(value, dtype=float) * CADC_LSB_V


def membrane_capacitance_nf(code):
    """Membrane capacitance (nF) of a capacitor setting 0 .. 63 (plus one unit of parasitic capacitance)."""
    return (np.asarray(code, dtype=float) + 1.0) / 64.0


def leak_conductance_us(i_bias, division=False, multiplication=False):
    """Leak conductance (uS) of the leak OTA bias (0 .. 1022) and its /8 and x8 switches."""
    g = G_LEAK_FULL_US * np.asarray(i_bias, dtype=float) / CAPMEM_MAX
    g = g * np.where(np.asarray(division, dtype=bool), 1.0 / 8.0, 1.0) * np.where(
        np.asarray(multiplication, dtype=bool), 8.0, 1.0)
    return np.maximum(g, G_LEAK_RESIDUAL_US)


def tau_syn_ms(i_bias_tau):
    """Synaptic time constant (biological ms = hardware us) of the RC bias (0 .. 1022)."""
    return TAU_SYN_FULL_MS * CAPMEM_MAX / np.maximum(np.asarray(i_bias_tau, dtype=float), TAU_SYN_MIN_BIAS)


def tau_syn_code(tau_ms):
    """Bias (integer 10 .. 1022) closest to a synaptic time constant (ms)."""
    return np.clip(np.rint(TAU_SYN_FULL_MS * CAPMEM_MAX / np.asarray(tau_ms, dtype=float)),
                   TAU_SYN_MIN_BIAS, CAPMEM_MAX).astype(int)


def refractory_ms(counter, input_clock=0):
    """Refractory time (biological ms = hardware us) of a counter value 0 .. 255 and clock 0 (slow) / 1 (fast)."""
    period = np.where(np.asarray(input_clock, dtype=int) == 1, REFRACTORY_CLOCK_US[1], REFRACTORY_CLOCK_US[0])
    return np.asarray(counter, dtype=float) * period


def psc_amplitude(weight, i_bias_gm, conductance_based=False):
    """Current (nA) or conductance (uS) jump of a synapse of integer weight 0 .. 63 at OTA bias i_bias_gm."""
    full = G_SYN_FULL_US if conductance_based else I_SYN_FULL_NA
    return np.asarray(weight, dtype=float) / 63.0 * full * np.asarray(i_bias_gm, dtype=float) / CAPMEM_MAX


def offset_current_na(enable, i_offset, sink=False):
    """Constant current onto the membrane (nA): + source, - sink, 0 if disabled."""
    value = I_OFFSET_FULL_NA * np.asarray(i_offset, dtype=float) / CAPMEM_MAX
    return np.where(np.asarray(enable, dtype=bool), np.where(np.asarray(sink, dtype=bool), -value, value), 0.0)


def synin_volts(current_na):
    """Voltage (V) of a synaptic input line carrying ``current_na`` (nA magnitude)."""
    return np.clip(SYNIN_REST_V - SYNIN_V_PER_NA * np.abs(np.asarray(current_na, dtype=float)), 0.0, V_CAPMEM_FULL)


def _bias_with_switches(g_us):
    """Leak bias and /8, x8 switches realising conductance ``g_us`` with the finest available step."""
    g_us = np.asarray(g_us, dtype=float)
    plain = g_us / G_LEAK_FULL_US * CAPMEM_MAX
    division = plain < 128.0
    multiplication = plain > CAPMEM_MAX
    scaled = np.where(division, plain * 8.0, np.where(multiplication, plain / 8.0, plain))
    return np.clip(np.rint(scaled), 0, CAPMEM_MAX).astype(int), division, multiplication


def codes_for_targets(targets: dict, deviations: dict, conductance_based: bool) -> dict:
    """Per-circuit hardware codes that realise calibration targets on circuits with known deviations.

    The calibration of the calibrated cell types: for every circuit, the codes whose nominal
    biological values, once the circuit's own deviations are added by the chip, equal the targets.
    What is left is the DAC resolution and the accuracy of the measured deviations.

    Parameters
    ----------
    targets : dict of arrays (n,)
        ``v_rest``, ``v_reset``, ``v_thresh`` (CADC units), ``tau_m``, ``tau_syn_E``, ``tau_syn_I``,
        ``tau_refrac`` (us), ``cm`` (capacitor code 0 .. 63), ``i_synin_gm_E``/``I`` (bias),
        ``synapse_dac_bias`` (bias) and, if ``conductance_based``, ``e_rev_E``/``I`` (CADC units).
    deviations : dict of arrays (n,)
        The circuits' measured deviations, as the emulator defines them: additive offsets (mV) of
        ``E_L``, ``V_th``, ``V_reset``; factors (realised / requested) of ``g_L``, ``C_m``,
        ``tau_syn_ex``, ``tau_syn_in``, ``gain_exc``, ``gain_inh``.
    conductance_based : bool
        Whether the synaptic inputs run in COBA mode.

    Returns
    -------
    dict
        HXNeuron parameter name -> array (n,) of codes and switches.

    Examples
    --------
    >>> n = 2
    >>> ideal = {k: np.zeros(n) for k in ("E_L", "V_th", "V_reset")}
    >>> ideal.update({k: np.ones(n) for k in ("g_L", "C_m", "tau_syn_ex", "tau_syn_in", "gain_exc", "gain_inh")})
    >>> t = dict(v_rest=80.0, v_reset=70.0, v_thresh=125.0, tau_m=10.0, tau_syn_E=10.0, tau_syn_I=10.0,
    ...          tau_refrac=2.0, cm=63, i_synin_gm_E=500, i_synin_gm_I=500, synapse_dac_bias=600)
    >>> codes = codes_for_targets({k: np.full(n, v) for k, v in t.items()}, ideal, False)
    >>> int(codes["leak_v_leak"][0]), int(codes["threshold_v_threshold"][0])
    (612, 399)
    """
    n = len(np.atleast_1d(targets["v_rest"]))
    t = {name: np.broadcast_to(np.asarray(value, dtype=float), (n,)) for name, value in targets.items()}
    d = {name: np.broadcast_to(np.asarray(value, dtype=float), (n,)) for name, value in deviations.items()}
    mv_to_v = 1.0 / BIO_MV_PER_V
    codes = {
        "leak_v_leak": leak_code(volts_from_cadc(t["v_rest"]) - d["E_L"] * mv_to_v),
        "reset_v_reset": leak_code(volts_from_cadc(t["v_reset"]) - d["V_reset"] * mv_to_v),
        "threshold_v_threshold": threshold_code(volts_from_cadc(t["v_thresh"]) - d["V_th"] * mv_to_v),
        "threshold_enable": np.ones(n, dtype=bool),
        "membrane_capacitance_capacitance": np.clip(np.rint(t["cm"]), 0, 63).astype(int),
    }
    # tau_m = C f_C / (g f_g): the nominal conductance that gives the target on this circuit
    c_nf = membrane_capacitance_nf(codes["membrane_capacitance_capacitance"])
    g_nominal = c_nf * d["C_m"] / (t["tau_m"] * d["g_L"])
    bias, division, multiplication = _bias_with_switches(g_nominal)
    codes.update({"leak_i_bias": bias, "leak_enable_division": division, "leak_enable_multiplication": multiplication})
    fast = t["tau_refrac"] <= 255 * REFRACTORY_CLOCK_US[1]
    period = np.where(fast, REFRACTORY_CLOCK_US[1], REFRACTORY_CLOCK_US[0])
    codes["refractory_period_input_clock"] = fast.astype(int)
    codes["refractory_period_refractory_time"] = np.clip(np.rint(t["tau_refrac"] / period), 0, 255).astype(int)
    receptors = (("excitatory", "tau_syn_E", "tau_syn_ex", "gain_exc", "i_synin_gm_E"),
                 ("inhibitory", "tau_syn_I", "tau_syn_in", "gain_inh", "i_synin_gm_I"))
    for receptor, tau_name, dev_tau, dev_gain, gm in receptors:
        codes[f"{receptor}_input_enable"] = np.ones(n, dtype=bool)
        codes[f"{receptor}_input_i_bias_tau"] = tau_syn_code(t[tau_name] / d[dev_tau])
        strength = t[gm] * t["synapse_dac_bias"] / 600.0 / d[dev_gain]
        codes[f"{receptor}_input_i_bias_gm"] = np.clip(np.rint(strength), 0, CAPMEM_MAX).astype(int)
        codes[f"{receptor}_input_enable_coba_mode"] = np.full(n, bool(conductance_based))
        if conductance_based:
            reversal = t["e_rev_E" if receptor == "excitatory" else "e_rev_I"]
            codes[f"{receptor}_input_v_rev_coba"] = threshold_code(volts_from_cadc(reversal))
    return codes
