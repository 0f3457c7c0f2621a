"""The emulated chips as data: sizes, weight format, delays, speed-up, supported models, ranges, noise.

This is the one place where chip limits live: the emulated chip backend
(:mod:`cortexsim.backends.brainscales`) enforces them, and the backend registry
(:mod:`cortexsim.backends.registry`) derives the capabilities it reports from them
(:meth:`~cortexsim.backends.registry.Capabilities.from_chip`). Pure data: importing this module
loads no simulator.

Sources (references §4): neuron counts, synapse counts, fan-in, weight bits,
"sign is a property of the synapse row", "delays must be 0" (bss2), speed-ups, STP "depression or
facilitation, not both" (bss1), AdEx neurons, and the fixed-pattern-noise magnitudes of the FACETS
Spikey chip (E_l 2 %, V_th 5 %, V_reset 10 %, g_l 10 %, tau_syn 25 %, g_max 25 %, C_m 10 %).
Everything marked *assumption* below is an emulation choice, not a measured property of the hardware:
parameter ranges in biological units, the row-scale DAC, the bss1 delay range, STP on bss2 (its
synapse drivers have it in the BrainScaleS-2 literature, not in references §4), overhead times, and
the conversion of the Spikey voltage percentages into millivolts, and the weight unit of
current-based synapses.

Current-based neurons (``IF_curr_exp``, bss2 only): BrainScaleS-2's synaptic input is current-based
by default (references §4: ``CalibHXNeuronCuba``); the conductance-based mode is an option of the
same circuit. The emulated current-based neuron shares the circuit's fixed-pattern noise (leak,
threshold and reset offsets, leak conductance and capacitance, which together set tau_m, synaptic
time constants and gains). Its own limits: the ranges of ``_IF_CURR_EXP_RANGES`` (PyNN units) and
weights in nA as n-bit integers times a row scale in steps of ``row_scale_unit_nA`` (*assumption*:
2**-14 nA, so the largest weight, 63 x 1023 steps, is 3.93 nA: a PSP of a few mV on a 0.2 nF
membrane with tau_syn ~ tau_m ~ 10 ms, the span of the conductance-based weights at typical driving
forces). bss1 (HICANN) has conductance-based synapses only.

Voltage fixed-pattern noise (assumption): Spikey's percentages refer to hardware voltages. With a
typical operating voltage of 0.7 V and a hardware-to-biology voltage scale of 10 (10 mV on chip per
biological mV) they become standard deviations of 1.4 mV (E_l), 3.5 mV (V_th) and 7.0 mV (V_reset)
in biological units. Relative noise (g_l, C_m, tau_syn, synaptic gain) is used as given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["ChipSpec", "CHIPS", "DEFAULT_CHIP", "chip_spec", "max_weight_uS", "weight_unit", "max_weight"]

# Biological parameter ranges (PyNN names and units), *assumption*; shared by both chips.
_IF_COND_EXP_RANGES = {
    "cm": (0.05, 1.0),          # nF
    "tau_m": (0.5, 100.0),      # ms
    "tau_refrac": (0.04, 100.0),  # ms
    "tau_syn_E": (0.3, 30.0),   # ms
    "tau_syn_I": (0.3, 30.0),   # ms
    "v_rest": (-100.0, -10.0),  # mV
    "v_reset": (-100.0, -10.0),  # mV
    "v_thresh": (-100.0, -10.0),  # mV
    "e_rev_E": (-40.0, 20.0),   # mV
    "e_rev_I": (-120.0, -40.0),  # mV
    "i_offset": (-1.0, 1.0),    # nA
}
# IF_curr_exp: the same circuit without reversal potentials (assumption, like the ranges above).
_IF_CURR_EXP_RANGES = {name: _IF_COND_EXP_RANGES[name] for name in
                       ("cm", "tau_m", "tau_refrac", "tau_syn_E", "tau_syn_I", "v_rest", "v_reset",
                        "v_thresh", "i_offset")}
_ADEX_RANGES = dict(_IF_COND_EXP_RANGES, **{
    "v_spike": (-60.0, 20.0),   # mV
    "a": (0.0, 100.0),          # nS
    "b": (0.0, 1.0),            # nA
    "tau_w": (1.0, 1000.0),     # ms
    "delta_T": (0.4, 10.0),     # mV
})

# Fixed-pattern noise: native NEST parameter -> (kind, standard deviation). "add": offset in the
# parameter's unit (mV); "mul": relative deviation of a factor (1 + N(0, sd)). Draws are truncated
# at +-3 sd. "gain_exc"/"gain_inh" multiply every weight arriving at the neuron (g_max mismatch).
_SPIKEY_FPN = {
    "E_L": ("add", 1.4),
    "V_th": ("add", 3.5),
    "V_reset": ("add", 7.0),
    "g_L": ("mul", 0.10),
    "C_m": ("mul", 0.10),
    "tau_syn_ex": ("mul", 0.25),
    "tau_syn_in": ("mul", 0.25),
    "gain_exc": ("mul", 0.25),
    "gain_inh": ("mul", 0.25),
}


@dataclass(frozen=True)
class ChipSpec:
    """Limits and imperfections of one emulated chip.

    Attributes
    ----------
    name : str
        Short name used in ``setup(chip=...)``.
    description : str
        Human-readable description.
    n_neurons : int
        Neuron circuits available (spike sources do not use any).
    max_fan_in : int
        Synapse rows per neuron: at most this many synapses (connections) onto one neuron.
    weight_bits : int
        Resolution of a synaptic weight; a weight is an integer 0 .. 2**weight_bits - 1 times the
        scale of its synapse row.
    row_scale_bits : int
        Resolution of the per-row scale DAC (*assumption*): scale = m * row_scale_unit_uS, m = 1 ..
        2**row_scale_bits - 1.
    row_scale_unit_uS : float
        Step of the row scale (uS); a power of two so that representable weights are exact floats.
    row_scale_unit_nA : float or None
        The same for current-based synapses (nA); None if the chip has no current-based neurons.
    delays_allowed : bool
        Whether synaptic delays can be chosen. If False only the fixed minimal delay (one time step)
        exists.
    delay_range_ms : tuple of float or None
        Allowed delays (ms) if delays are allowed (*assumption* for bss1).
    speedup : float
        Hardware runs this many times faster than biological time.
    cell_types : tuple of str
        PyNN neuron models that map onto the neuron circuits.
    spike_source_types : tuple of str
        PyNN spike sources the chip can play in.
    synapse_types : tuple of str
        PyNN synapse models.
    stp_exclusive : bool
        Short-term plasticity is either depressing (tau_facil = 0) or facilitating (tau_rec = 0),
        not both.
    receptor_types : tuple of str
        Receptor types; the sign of a synapse row follows from it.
    recordables : tuple of str
        Variables that can be read out.
    parameter_ranges : dict
        Cell type name -> {PyNN parameter: (low, high)} in PyNN units.
    fixed_pattern_noise : dict
        Native parameter -> ("add" | "mul", standard deviation), see the module docstring.
    calibration_step_mV : float
        Resolution with which a calibration can correct a voltage offset (mV, *assumption*: 10-bit
        DAC over the voltage range).
    calibration_step_relative : float
        Resolution with which a calibration can correct a multiplicative deviation (leak
        conductance, capacitance, synaptic time constants and gains): corrections are multiples of
        this relative step (*assumption*: bias-current DACs give ~1 % steps).
    configuration_overhead_s : float
        Wall time to (re)configure the chip before a run whose parameters changed (s, *assumption*).
    run_overhead_s : float
        Wall time per run for starting it and reading out the results (s, *assumption*).
    background_generators : int
        On-chip Poisson background generators (bss2: the background spike sources, one per
        synapse-driver (PADI) bus and hemisphere, 8 per chip; bss1: the HICANN's 8 background event
        generators, *assumption*). ``add_poisson_background`` uses at least one per receptor type.
    background_max_event_rate_hz : float
        Largest total event rate of one generator in *hardware* time (Hz): a generator drives a
        group of neurons with random addresses, so rate x neurons x speed-up must stay below it
        (BrainScaleS-2's PyNN rejects rate x size above the generator clock; *assumption*: one
        event per cycle of a 125 MHz clock on both chips). A population whose background needs
        more is spread over several generators.
    correlation_sensors : bool
        Whether the emulation has the synapses' correlation sensors and plasticity processors
        (bss2: :mod:`cortexsim.backends.correlation`; ``STDPMechanism`` runs on them). bss1's STDP
        circuits are not emulated.
    """

    name: str
    description: str
    n_neurons: int
    max_fan_in: int
    weight_bits: int
    row_scale_bits: int
    row_scale_unit_uS: float
    row_scale_unit_nA: float | None
    delays_allowed: bool
    delay_range_ms: tuple | None
    speedup: float
    cell_types: tuple
    spike_source_types: tuple
    synapse_types: tuple
    stp_exclusive: bool
    receptor_types: tuple
    recordables: tuple
    parameter_ranges: dict = field(default_factory=dict)
    fixed_pattern_noise: dict = field(default_factory=dict)
    calibration_step_mV: float = 0.1
    calibration_step_relative: float = 0.01
    configuration_overhead_s: float = 1.0
    run_overhead_s: float = 0.05
    background_generators: int = 8
    background_max_event_rate_hz: float = 125e6
    correlation_sensors: bool = False

    @property
    def max_weight_int(self) -> int:
        """Largest integer weight, 2**weight_bits - 1."""
        return 2 ** self.weight_bits - 1

    @property
    def max_row_scale_int(self) -> int:
        """Largest row-scale DAC value, 2**row_scale_bits - 1."""
        return 2 ** self.row_scale_bits - 1

    def to_dict(self) -> dict:
        """Plain-data form, e.g. for a results file."""
        return asdict(self)


def max_weight_uS(spec: ChipSpec) -> float:
    """Largest representable conductance-based weight (uS): full integer weight at the largest row scale."""
    return spec.max_weight_int * spec.max_row_scale_int * spec.row_scale_unit_uS


def weight_unit(spec: ChipSpec, conductance_based: bool = True) -> tuple[float, str]:
    """Row-scale step and its unit for synapses onto conductance-based (uS) or current-based (nA) cells.

    Raises
    ------
    ValueError
        For current-based synapses on a chip without current-based neurons.
    """
    if conductance_based:
        return spec.row_scale_unit_uS, "uS"
    if spec.row_scale_unit_nA is None:
        raise ValueError(f"chip {spec.name!r} has no current-based synapses")
    return spec.row_scale_unit_nA, "nA"


def max_weight(spec: ChipSpec, conductance_based: bool = True) -> float:
    """Largest representable weight magnitude: uS (conductance-based) or nA (current-based)."""
    unit, _ = weight_unit(spec, conductance_based)
    return spec.max_weight_int * spec.max_row_scale_int * unit


CHIPS: dict[str, ChipSpec] = {
    "bss2": ChipSpec(
        name="bss2",
        description="BrainScaleS-2 (HICANN-X) single chip: 512 AdEx neurons, 2 x 256 x 256 synapses, "
                    "6-bit weights, no configurable delays, speed-up 1e3",
        n_neurons=512,
        max_fan_in=256,
        weight_bits=6,
        row_scale_bits=10,
        row_scale_unit_uS=2.0 ** -16,
        row_scale_unit_nA=2.0 ** -14,
        delays_allowed=False,
        delay_range_ms=None,
        speedup=1e3,
        cell_types=("IF_cond_exp", "IF_curr_exp", "EIF_cond_exp_isfa_ista"),
        spike_source_types=("SpikeSourceArray", "SpikeSourcePoisson"),
        synapse_types=("StaticSynapse", "TsodyksMarkramSynapse", "STDPMechanism"),
        stp_exclusive=True,
        receptor_types=("excitatory", "inhibitory"),
        recordables=("spikes", "v"),
        parameter_ranges={"IF_cond_exp": _IF_COND_EXP_RANGES, "IF_curr_exp": _IF_CURR_EXP_RANGES,
                          "EIF_cond_exp_isfa_ista": _ADEX_RANGES},
        fixed_pattern_noise=_SPIKEY_FPN,
        calibration_step_mV=0.12,
        configuration_overhead_s=0.5,
        run_overhead_s=0.02,
        correlation_sensors=True,
    ),
    "bss1": ChipSpec(
        name="bss1",
        description="BrainScaleS-1 (HICANN) single chip: 512 neuron circuits, 114,688 synapses "
                    "(224 rows per neuron), 4-bit weights, STP depression or facilitation, speed-up 1e4",
        n_neurons=512,
        max_fan_in=224,
        weight_bits=4,
        row_scale_bits=10,
        row_scale_unit_uS=2.0 ** -14,
        row_scale_unit_nA=None,
        delays_allowed=True,
        delay_range_ms=(0.1, 10.0),
        speedup=1e4,
        cell_types=("IF_cond_exp", "EIF_cond_exp_isfa_ista"),
        spike_source_types=("SpikeSourceArray", "SpikeSourcePoisson"),
        synapse_types=("StaticSynapse", "TsodyksMarkramSynapse"),
        stp_exclusive=True,
        receptor_types=("excitatory", "inhibitory"),
        recordables=("spikes", "v"),
        parameter_ranges={"IF_cond_exp": _IF_COND_EXP_RANGES,
                          "EIF_cond_exp_isfa_ista": _ADEX_RANGES},
        fixed_pattern_noise=_SPIKEY_FPN,
        calibration_step_mV=0.18,
        configuration_overhead_s=30.0,
        run_overhead_s=0.5,
    ),
}


#: The chip an emulated-chip backend runs on unless another one is booked.
DEFAULT_CHIP = "bss2"


def chip_spec(name: str) -> ChipSpec:
    """The :class:`ChipSpec` called ``name``; ValueError listing the known chips otherwise."""
    if not isinstance(name, str) or name not in CHIPS:
        raise ValueError(f"chip must be one of {sorted(CHIPS)}, got {name!r}")
    return CHIPS[name]
