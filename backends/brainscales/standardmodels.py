"""Model classes of the chip backend.

Cell and synapse classes are ``pyNN.nest``'s; whether the chip supports one is decided when a
Population or Projection is created (``ChipSpec.cell_types`` / ``synapse_types``), so a script that
uses an unsupported model fails there with :class:`~.errors.UnsupportedFeatureError`.

Two classes differ from ``pyNN.nest``:

``TsodyksMarkramSynapse``
    Runs on NEST's ``tsodyks2_synapse`` (the u*x model of the chip's synapse drivers) rather than
    ``tsodyks_synapse``; the latter delivers nothing when tau_rec equals the PSC time constant
    (references §7), which is exactly the "renewing" synapse of the sampling networks. The same
    correction is made in :mod:`cortexsim.backends.pynn_nest`.
current sources
    The chip has no current injection: ``DCSource``, ``ACSource``, ``StepCurrentSource`` and
    ``NoisyCurrentSource`` raise UnsupportedFeatureError when created (use ``i_offset`` for a
    constant current).
"""

from __future__ import annotations

from pyNN.nest.standardmodels import electrodes as _nest_electrodes

from ..pynn_nest import TsodyksMarkramSynapse as _NestTsodyksMarkram
from . import emulator
from .errors import UnsupportedFeatureError

__all__ = ["TsodyksMarkramSynapse", "DCSource", "ACSource", "StepCurrentSource", "NoisyCurrentSource",
           "native_cell_type", "native_synapse_type", "native_electrode_type"]


def _chip_name() -> str:
    session = emulator.chip.session
    return session.spec.name if session is not None else "brainscales"


class TsodyksMarkramSynapse(_NestTsodyksMarkram):
    """Depressing or facilitating synapse (PyNN units: weight uS, delay ms, U, tau_rec ms, tau_facil ms).

    On the chip a synapse row is either depressing (tau_facil = 0) or facilitating (tau_rec at most
    one time step), not both. The engine underneath is the NEST backend's ``tsodyks2_synapse``
    mapping (every synapse starts fully recovered, u = U, x = 1).
    """


def _unsupported_current_source(base: type) -> type:
    def __init__(self, *args, **kwargs):
        raise UnsupportedFeatureError(_chip_name(), "current source", base.__name__,
                                      "none (the chip has no current injection; use the cell "
                                      "parameter i_offset for a constant current)")
    return type(base.__name__, (base,), {"__init__": __init__, "__doc__": base.__doc__})


DCSource = _unsupported_current_source(_nest_electrodes.DCSource)
ACSource = _unsupported_current_source(_nest_electrodes.ACSource)
StepCurrentSource = _unsupported_current_source(_nest_electrodes.StepCurrentSource)
NoisyCurrentSource = _unsupported_current_source(_nest_electrodes.NoisyCurrentSource)


def native_cell_type(model_name: str):
    """Not available: the chip runs only its own neuron circuits."""
    raise UnsupportedFeatureError(_chip_name(), "native NEST cell type", repr(model_name),
                                  "the chip's standard cell types only")


def native_synapse_type(model_name: str):
    """Not available: the chip runs only its own synapse circuits."""
    raise UnsupportedFeatureError(_chip_name(), "native NEST synapse type", repr(model_name),
                                  "the chip's standard synapse types only")


def native_electrode_type(model_name: str):
    """Not available: the chip has no current injection."""
    raise UnsupportedFeatureError(_chip_name(), "native NEST electrode type", repr(model_name), "none")
