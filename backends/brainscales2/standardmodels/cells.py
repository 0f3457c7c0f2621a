"""Cell types of the BrainScaleS-2 dialect: hardware neurons, calibrated neurons, spike sources.

``HXNeuron``
    The neuron circuit with its raw configuration (:mod:`..atomic_neuron`: CapMem values 0 .. 1022,
    switches), mapped onto the emulated circuit by :mod:`..hardware_model`. Defaults to the "silent"
    neuron (threshold comparator and synaptic inputs off).
``CalibHXNeuronCuba`` / ``CalibHXNeuronCoba``
    Calibrated neurons with current- or conductance-based synaptic input. Parameters are calibration
    targets in BrainScaleS-2's units (voltages in CADC units, times in hardware us, ``cm`` the
    capacitor code, ``i_synin_gm_*`` and ``synapse_dac_bias`` technical biases). The calibration runs
    on ``pynn.run(...)`` or ``pynn.run(None, pynn.RunCommand.PREPARE)``; afterwards ``calib_target``,
    ``calib_hwparams`` and ``actual_hwparams`` (editable) are available on the cell type and on the
    population.
``SpikeSourceArray``
    Spike times in hardware ms, played in from outside the chip.
``SpikeSourcePoisson``
    ``start`` and ``duration`` in hardware ms, ``rate`` in Hz of hardware time; the trains are drawn
    (seeded by ``setup(seed=...)``) and played in like a ``SpikeSourceArray``.
``SpikeSourcePoissonOnChip``
    One of the chip's on-chip background generators (at most 8 populations): ``rate`` (Hz of hardware
    time) per source and ``seed``; rate x size must not exceed the generator clock (125 MHz). The
    emulation draws the trains from the run seed of ``setup(seed=...)`` (a new one per placement);
    ``seed`` is kept for compatibility.
"""

from __future__ import annotations

import copy

import numpy as np
from pyNN.parameters import Sequence
from pyNN.standardmodels import StandardCellType, build_translations
from pyNN.standardmodels import cells as _pynn_cells

from .. import atomic_neuron
from ..plasticity_rules import PlasticityRuleHandle

__all__ = ["HXNeuron", "CalibHXNeuronCuba", "CalibHXNeuronCoba", "SpikeSourceArray", "SpikeSourcePoisson",
           "SpikeSourcePoissonOnChip"]

#: Clock of the on-chip background generators (Hz of hardware time): rate x size must stay below it.
BACKGROUND_SOURCE_CLOCK_HZ = 125e6

_ANALOG_RECORDABLES = ["v", "exc_synin", "inh_synin", "adaptation"]


class _NeuronCellType(StandardCellType, PlasticityRuleHandle):
    """Common part of the neuron cell types: recordables, receptors, the plasticity-rule handle."""

    recordable = ["spikes"] + _ANALOG_RECORDABLES
    receptor_types = ("excitatory", "inhibitory")
    conductance_based = False
    injectable = False
    always_local = False
    default_initial_values = {}

    def __init__(self, plasticity_rule=None, **parameters):
        PlasticityRuleHandle.__init__(self, plasticity_rule=plasticity_rule)
        StandardCellType.__init__(self, **{name: value for name, value in parameters.items() if value is not None})

    def can_record(self, variable, location=None):
        return variable in self.recordable


class HXNeuron(_NeuronCellType):
    """One neuron circuit configured with its raw hardware parameters (flattened ``AtomicNeuron``).

    Parameters
    ----------
    **parameters
        ``<member>_<attribute>`` entries of :data:`~..atomic_neuron.PARAMETERS`, each a scalar or one
        value per neuron: CapMem values (integers 0 .. 1022), switches (bool), counters. Units are the
        hardware's (dimensionless DAC values); see :mod:`..hardware_model` for what they mean on the
        emulated circuit.

    Examples
    --------
    >>> import cortexsim.backends.brainscales2 as pynn
    >>> pynn.setup()
    >>> pop = pynn.Population(1, pynn.cells.HXNeuron(leak_v_leak=1000, leak_i_bias=200,
    ...                       threshold_v_threshold=300, threshold_enable=True))
    """

    default_parameters = dict(atomic_neuron.DEFAULTS)
    translations = build_translations(*[(name, name) for name in atomic_neuron.DEFAULTS])
    units = {name: "dimensionless" for name in list(atomic_neuron.DEFAULTS) + _ANALOG_RECORDABLES}

    def __init__(self, plasticity_rule=None, **parameters):
        super().__init__(plasticity_rule=plasticity_rule, **parameters)
        self._user_provided_parameters = dict(parameters)

    @staticmethod
    def create_hw_entity(parameters: dict) -> atomic_neuron.AtomicNeuron:
        """The nested configuration of one neuron from its flat parameters."""
        return atomic_neuron.AtomicNeuron(dict(parameters))


class CalibHXNeuronCuba(_NeuronCellType):
    """Calibrated neuron with current-based synaptic input; parameters are calibration targets.

    Each parameter is a scalar or one value per neuron; ranges as on BrainScaleS-2.

    Parameters
    ----------
    v_rest, v_reset : float
        Leak and reset potential, CADC units, 50 .. 160.
    v_thresh : float
        Threshold, CADC units, 50 .. 220.
    tau_m : float
        Membrane time constant, us (hardware), 0.5 .. 60.
    tau_syn_E, tau_syn_I : float
        Synaptic time constants, us, 0.3 .. 30.
    cm : int
        Membrane capacitor code, 0 .. 63.
    tau_refrac : float
        Refractory time, us, 0.04 .. 32.
    i_synin_gm_E, i_synin_gm_I : int
        Synaptic input strength (OTA bias), 30 .. 800; the same for all neurons of the chip.
    synapse_dac_bias : int
        Synapse DAC bias, 30 .. 1022 (scales all weights); the same for all neurons of the chip.
    plasticity_rule : PlasticityRule, optional
        Rule evaluated on the neurons' observables.
    """

    default_parameters = {"v_rest": 80.0, "v_reset": 70.0, "v_thresh": 125.0, "tau_m": 10.0, "tau_syn_E": 10.0,
                          "tau_syn_I": 10.0, "cm": 63.0, "tau_refrac": 2.0, "i_synin_gm_E": 500.0,
                          "i_synin_gm_I": 500.0, "synapse_dac_bias": 600.0}
    #: Allowed range of every calibration target (inclusive), in the units of the parameters.
    ranges = {"v_rest": (50, 160), "v_reset": (50, 160), "v_thresh": (50, 220), "tau_m": (0.5, 60.0),
              "tau_syn_E": (0.3, 30.0), "tau_syn_I": (0.3, 30.0), "cm": (0, 63), "tau_refrac": (0.04, 32.0),
              "i_synin_gm_E": (30, 800), "i_synin_gm_I": (30, 800), "synapse_dac_bias": (30, 1022)}
    #: Parameters that must be equal for all calibrated neurons of the chip (technical biases).
    global_parameters = ("i_synin_gm_E", "i_synin_gm_I", "synapse_dac_bias")
    units = {"v_rest": "dimensionless", "v_reset": "dimensionless", "v_thresh": "dimensionless", "tau_m": "us",
             "tau_syn_E": "us", "tau_syn_I": "us", "cm": "dimensionless", "tau_refrac": "us",
             "i_synin_gm_E": "dimensionless", "i_synin_gm_I": "dimensionless", "synapse_dac_bias": "dimensionless",
             **{name: "dimensionless" for name in _ANALOG_RECORDABLES}}
    translations = build_translations(*[(name, name) for name in default_parameters])

    def __init__(self, plasticity_rule=None, **parameters):
        super().__init__(plasticity_rule=plasticity_rule, **parameters)
        self._calib_target = None
        self._calib_hwparams = None
        self._actual_hwparams = None

    @classmethod
    def check_targets(cls, values: dict) -> None:
        """ValueError naming the parameter and its range if a target is out of range (before a calibration)."""
        for name, (low, high) in cls.ranges.items():
            array = np.asarray(values[name], dtype=float)
            bad = ~((array >= low) & (array <= high))
            if np.any(bad):
                raise ValueError(f"{cls.__name__} parameter {name} must lie in [{low}, {high}] "
                                 f"({cls.units.get(name, '')}), got {array[bad][0]:g}")

    def _set_calibration(self, target, hwparams: list) -> None:
        self._calib_target = copy.deepcopy(target)
        self._calib_hwparams = [copy.deepcopy(neuron) for neuron in hwparams]
        self._actual_hwparams = list(hwparams)

    def _require(self, value, name):
        if value is None:
            raise AttributeError(f"{name} is only available after pynn.run() (or "
                                 "pynn.run(None, pynn.RunCommand.PREPARE)), which calibrates the neurons")
        return value

    @property
    def calib_target(self):
        """Cell parameters (a ParameterSpace) used for the last calibration."""
        return self._require(self._calib_target, "calib_target")

    @property
    def calib_hwparams(self) -> list:
        """Circuit configurations (:class:`AtomicNeuron`) the last calibration produced (an archive copy)."""
        return self._require(self._calib_hwparams, "calib_hwparams")

    @property
    def actual_hwparams(self) -> tuple:
        """Circuit configurations used in the runs; edit them to override the calibration
        (``pop.actual_hwparams[0].leak.v_leak = 1022``)."""
        return tuple(self._require(self._actual_hwparams, "actual_hwparams"))


class CalibHXNeuronCoba(CalibHXNeuronCuba):
    """Calibrated neuron with conductance-based synaptic input.

    Parameters as :class:`CalibHXNeuronCuba` plus ``e_rev_E``, ``e_rev_I``: reversal potentials in
    CADC units, 60 .. 160 (the defaults of BrainScaleS-2's package, 300 and 30, lie outside and are
    accepted as they are there).
    """

    conductance_based = True
    default_parameters = {"v_rest": 110.0, "v_reset": 100.0, "v_thresh": 160.0, "tau_m": 10.0, "tau_syn_E": 10.0,
                          "tau_syn_I": 10.0, "cm": 63.0, "tau_refrac": 2.0, "e_rev_E": 300.0, "e_rev_I": 30.0,
                          "i_synin_gm_E": 180.0, "i_synin_gm_I": 250.0, "synapse_dac_bias": 400.0}
    ranges = dict(CalibHXNeuronCuba.ranges, e_rev_E=(0, 320), e_rev_I=(0, 320))
    units = dict(CalibHXNeuronCuba.units, e_rev_E="dimensionless", e_rev_I="dimensionless")
    translations = build_translations(*[(name, name) for name in default_parameters])


class SpikeSourceArray(_pynn_cells.SpikeSourceArray):
    """Spike times (hardware ms) played into the chip, one array per source."""

    default_parameters = {"spike_times": Sequence([])}
    translations = build_translations(("spike_times", "spike_times"))
    units = {"spike_times": "ms"}
    recordable = ["spikes"]

    def can_record(self, variable, location=None):
        return variable in self.recordable


class SpikeSourcePoisson(_pynn_cells.SpikeSourcePoisson):
    """Poisson trains drawn off-chip and played in: ``start``, ``duration`` (hardware ms), ``rate`` (Hz, hardware)."""

    translations = build_translations(("start", "start"), ("rate", "rate"), ("duration", "duration"))
    recordable = ["spikes"]

    def can_record(self, variable, location=None):
        return variable in self.recordable


class SpikeSourcePoissonOnChip(StandardCellType):
    """On-chip Poisson background generator: ``rate`` (Hz of hardware time) per source and ``seed``."""

    default_parameters = {"rate": 1.0, "seed": 0.0}
    translations = build_translations(("rate", "rate"), ("seed", "seed"))
    units = {"rate": "Hz", "seed": "dimensionless"}
    recordable = ["spikes"]
    receptor_types = ()
    conductance_based = True
    injectable = False
    always_local = True
    default_initial_values = {}
    background_source_clock_freq = BACKGROUND_SOURCE_CLOCK_HZ

    def __init__(self, rate, seed):
        super().__init__(rate=rate, seed=seed)

    def can_record(self, variable, location=None):
        return variable in self.recordable
