"""Low-level state of the emulation: NEST's PyNN state (shared) plus the current chip.

The dynamics run on NEST through ``pyNN.nest``'s own simulator state: there is one NEST kernel per
process, so this backend uses ``pyNN.nest.simulator.state`` itself and keeps the chip (limits,
imperfections, bookkeeping) in :data:`chip`.
"""

from __future__ import annotations

from pyNN.nest import simulator as _nest_simulator

from dataclasses import dataclass

from ..chips import DEFAULT_CHIP
from .chip_state import ChipSession

__all__ = ["state", "ID", "name", "chip", "current_chip", "Connection", "ChipSelection", "DEFAULT_CHIP_SEED"]

#: Identity of the chip that ``setup()`` uses unless told otherwise (``chip_seed`` or ``select_chip``).
DEFAULT_CHIP_SEED = 0


@dataclass(frozen=True)
class ChipSelection:
    """The booked chip: what ``setup()`` uses for every option the call leaves out.

    On hardware the chip is chosen when the job is allocated, outside the PyNN script; here it is
    chosen with :func:`~cortexsim.backends.brainscales.select_chip`. Protocols that call
    ``setup(timestep, seed=run_seed)`` again and again (one call per training segment) therefore
    keep running on one and the same chip while their run seeds vary.

    Attributes mirror the ``setup()`` parameters of the same names.
    """

    chip: str = DEFAULT_CHIP
    chip_seed: int = DEFAULT_CHIP_SEED
    fixed_pattern_noise: bool | float = True
    trial_noise: float = 0.0
    quantize_weights: bool = True
    clip_weights: bool = False
    calibration: str | None = None

name = "BrainScaleS emulation (NEST)"  # for annotating output data
state = _nest_simulator.state
ID = _nest_simulator.ID


class _ChipHolder:
    """Holds the :class:`ChipSession` configured by the last ``setup()`` and the booked :class:`ChipSelection`."""

    def __init__(self):
        self.session: ChipSession | None = None
        self.selection: ChipSelection = ChipSelection()


chip = _ChipHolder()


def current_chip() -> ChipSession:
    """The chip configured by ``setup()``; RuntimeError if ``setup()`` has not been called."""
    if chip.session is None:
        raise RuntimeError("call cortexsim.backends.brainscales.setup() before building a network")
    return chip.session


class Connection(_nest_simulator.Connection):
    """One connection of a chip Projection; its weight reads and writes go through the chip."""

    def _get_weight(self):
        return self.parent._connection_weight(self.index)

    def _set_weight(self, w):
        self.parent._set_connection_weight(self.index, w)

    def _set_delay(self, d):
        self.parent._check_delays([float(d)])
        super()._set_delay(d)

    weight = property(_get_weight, _set_weight)
    delay = property(_nest_simulator.Connection._get_delay, _set_delay)
