"""An emulated BrainScaleS chip as a PyNN backend: ``import cortexsim.backends.brainscales as sim``.

Built on ``pyNN.common`` through ``pyNN.nest``'s classes (the dynamics run on NEST), with the chip
on top: limits checked when a Population or Projection is created (:mod:`.chips` holds them as data),
weights stored as n-bit integers per synapse row with a row scale, per-neuron fixed-pattern noise
drawn from the chip seed (``chip_seed``; the run seed ``seed`` does not change the chip, and
:func:`select_chip` books the chip that every later ``setup()`` uses), optional trial-to-trial
noise, a calibration that measures and compensates
voltage offsets, gains and time constants, Poisson background from the chip's on-chip generators
(:func:`add_poisson_background`, the backend's noise strategy), and a report of hardware time and
resources (:func:`get_hardware_report`).

Example
-------
>>> import cortexsim.backends.brainscales as sim
>>> sim.setup(chip="bss2", chip_seed=3, seed=1, calibration="auto")   # chip 3, run seed 1
>>> cells = sim.Population(10, sim.IF_cond_exp(tau_m=1.0))
>>> noise = sim.Population(10, sim.SpikeSourcePoisson(rate=3000.0))
>>> sim.Projection(noise, cells, sim.OneToOneConnector(), sim.StaticSynapse(weight=0.001))
>>> sim.run(1000.0)
>>> sim.get_hardware_report()["hardware_time_s"]     # 1 s of biological time at speed-up 1e3
0.001

Anything the chip cannot do raises a :class:`ChipConstraintError` (a ``ValueError``) naming the
limit, the requested and the allowed value: :class:`ChipLimitError` for numeric limits,
:class:`UnsupportedFeatureError` for missing features.
"""

from pyNN import errors, random, space                               # noqa: F401
from pyNN.network import Network                                     # noqa: F401
from pyNN.random import NumpyRNG, GSLRNG, RandomDistribution         # noqa: F401
from pyNN.space import Space                                         # noqa: F401
from pyNN.parameters import Sequence                                 # noqa: F401
from pyNN.nest.standardmodels.cells import *                         # noqa: F401,F403
from pyNN.nest.standardmodels.synapses import *                      # noqa: F401,F403
from pyNN.nest.standardmodels.receptors import *                     # noqa: F401,F403
from pyNN.nest.connectors import *                                   # noqa: F401,F403
from pyNN.nest.recording import *                                    # noqa: F401,F403
from pyNN.nest.random import NativeRNG                               # noqa: F401
from pyNN.nest import (initialize, get_current_time, get_time_step,  # noqa: F401
                       get_min_delay, get_max_delay, num_processes, rank)
from pyNN import common as _common

from . import emulator
from ..chips import CHIPS, ChipSpec, chip_spec, max_weight_uS, max_weight  # noqa: F401
from .errors import ChipConstraintError, ChipLimitError, UnsupportedFeatureError  # noqa: F401
from .standardmodels import (TsodyksMarkramSynapse, DCSource, ACSource,  # noqa: F401
                             StepCurrentSource, NoisyCurrentSource, native_cell_type,
                             native_synapse_type, native_electrode_type)
from .populations import Population, PopulationView, Assembly        # noqa: F401
from .projections import Projection                                  # noqa: F401
from .control import (setup, run, run_until, run_for, reset, end,    # noqa: F401
                      get_hardware_report, get_chip, select_chip, selected_chip,
                      device_identity)
from .emulator import ChipSelection, DEFAULT_CHIP_SEED               # noqa: F401
from .background import add_poisson_background                       # noqa: F401

create = _common.build_create(Population)
connect = _common.build_connect(Projection, FixedProbabilityConnector, StaticSynapse)  # noqa: F405
set = _common.set
record = _common.build_record(emulator)


def record_v(source, filename):
    """Record the membrane potential of ``source`` to ``filename``."""
    return record(["v"], source, filename)


def record_gsyn(source, filename):
    """Not available on the chip (conductances cannot be read out); raises UnsupportedFeatureError."""
    return record(["gsyn_exc", "gsyn_inh"], source, filename)


def list_standard_models() -> list[str]:
    """Standard cell types of the current chip (all chips if ``setup()`` has not been called)."""
    session = emulator.chip.session
    specs = [session.spec] if session is not None else list(CHIPS.values())
    return sorted({name for spec in specs for name in spec.cell_types + spec.spike_source_types})
