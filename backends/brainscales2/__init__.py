"""BrainScaleS-2's own PyNN dialect on the emulated chip: ``import cortexsim.backends.brainscales2 as pynn``.

Scripts written for ``pynn_brainscales.brainscales2`` (the PyNN package of BrainScaleS-2) run here
with only the import changed: neurons configured with hardware parameters (``cells.HXNeuron``) or
calibrated in hardware units (``cells.CalibHXNeuronCuba``/``Coba``), integer weights 0 .. 63 whose
sign follows the receptor, hardware time (``run(0.2)`` = 0.2 ms on the chip = 200 ms of biology),
spikes and ADC traces (``irregularlysampledsignals``; MADC: one even and one odd neuron per run,
CADC: all neurons, slow), ``RunCommand.PREPARE/APPEND/EXECUTE``, ``pynn.logger``,
``get_backend_statistics()``, ``Timer`` and plasticity rules with Python kernels.

Underneath runs :mod:`cortexsim.backends.brainscales` (the emulated bss2 chip on NEST) with its
fixed-pattern noise (chip seed), limits and hardware report; :mod:`.hardware_model` documents how the
hardware parameters become the emulated circuit's. What the emulator cannot do (PPU C++ kernels,
injected raw configurations, multi-compartment neurons, adaptation, pad read-out) raises
:class:`~cortexsim.backends.brainscales.UnsupportedFeatureError` with "not supported by the
emulator" and the feature's name.

Example
-------
>>> import cortexsim.backends.brainscales2 as pynn
>>> pynn.setup()
>>> pop = pynn.Population(1, pynn.cells.HXNeuron(leak_v_leak=1000, leak_i_bias=200, threshold_v_threshold=300,
...                       threshold_enable=True, refractory_period_refractory_time=120,
...                       membrane_capacitance_capacitance=63))
>>> pop.record(["spikes", "v"])
>>> pynn.run(0.2)
>>> v = pop.get_data("v").segments[0].irregularlysampledsignals[0]    # MADC units vs hardware ms
>>> pynn.end()
"""

from pyNN import errors, random, space                               # noqa: F401
from pyNN.connectors import (AllToAllConnector, OneToOneConnector, FixedProbabilityConnector,  # noqa: F401
                             DistanceDependentProbabilityConnector, DisplacementDependentProbabilityConnector,
                             IndexBasedProbabilityConnector, FromListConnector, FromFileConnector,
                             FixedNumberPreConnector, FixedNumberPostConnector, SmallWorldConnector,
                             CSAConnector, CloneConnector, ArrayConnector, FixedTotalNumberConnector)
from pyNN.parameters import Sequence                                 # noqa: F401
from pyNN.random import NumpyRNG, GSLRNG, RandomDistribution         # noqa: F401
from pyNN.space import Space                                         # noqa: F401
from pyNN import common as _common

from . import helper, logger, simulator, standardmodels             # noqa: F401
from .standardmodels import cells, synapses                          # noqa: F401
from .standardmodels.cells import (HXNeuron, CalibHXNeuronCuba, CalibHXNeuronCoba,  # noqa: F401
                                   SpikeSourceArray, SpikeSourcePoisson, SpikeSourcePoissonOnChip)
from .standardmodels.synapses import StaticSynapse, PlasticSynapse, StaticRecordingSynapse  # noqa: F401
from .plasticity_rules import Timer, PlasticityRule, PlasticityRuleHandle, RuleContext  # noqa: F401
from .populations import Population, PopulationView, Assembly        # noqa: F401
from .projections import Projection                                  # noqa: F401
from .control import (setup, run, run_for, run_until, reset, end, preprocess, RunCommand,  # noqa: F401
                      get_backend_statistics, MappedTopologyStatistics, InjectedConfiguration, InjectedReadout,
                      initialize, get_current_time, get_time_step, get_min_delay, get_max_delay, num_processes,
                      rank)
from ..brainscales.errors import ChipConstraintError, ChipLimitError, UnsupportedFeatureError  # noqa: F401

__all__ = ["list_standard_models", "setup", "end", "run", "run_until", "run_for", "reset", "initialize",
           "get_current_time", "create", "connect", "set", "record", "logger", "preprocess", "RunCommand",
           "Population", "PopulationView", "Assembly", "Projection", "cells", "standardmodels", "synapses",
           "Timer", "PlasticityRule", "get_backend_statistics"]

create = _common.build_create(Population)
connect = _common.build_connect(Projection, FixedProbabilityConnector, StaticSynapse)
set = _common.set
record = _common.build_record(simulator)


def list_standard_models() -> list:
    """The neuron cell types of this dialect."""
    return [HXNeuron, CalibHXNeuronCuba, CalibHXNeuronCoba]
