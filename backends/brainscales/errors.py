"""Errors raised when a PyNN script does not fit the emulated chip.

Every error says which chip, which limit, the requested value and the allowed one, e.g.::

    ChipLimitError: not supported on chip 'bss2': fan-in of neuron 3 of population 'exc':
    requested 300 synapse rows, allowed at most 256

All of them derive from :class:`ChipConstraintError` (itself a ``ValueError``), so one
``except ChipConstraintError`` catches every "does not fit the chip" case.
"""

from __future__ import annotations

__all__ = ["ChipConstraintError", "ChipLimitError", "UnsupportedFeatureError"]


class ChipConstraintError(ValueError):
    """A PyNN script asks for something the emulated chip cannot do ("not supported on this chip")."""

    def __init__(self, chip: str, limit: str, requested, allowed):
        self.chip = chip
        self.limit = limit
        self.requested = requested
        self.allowed = allowed
        super().__init__(f"not supported on chip {chip!r}: {limit}: requested {requested}, "
                         f"allowed {allowed}")


class ChipLimitError(ChipConstraintError):
    """A numeric limit of the chip is exceeded (neurons, fan-in, weight range, parameter range...)."""


class UnsupportedFeatureError(ChipConstraintError):
    """A feature the chip does not have (cell type, synapse type, current source, recordable...)."""
