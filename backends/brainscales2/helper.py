"""Helpers of BrainScaleS-2's package that need a real chip or its calibration database.

They raise :class:`~cortexsim.backends.brainscales.UnsupportedFeatureError`: the emulated chip is
configured through cell parameters and calibrated with ``CalibHXNeuronCuba``/``Coba``.
"""

from __future__ import annotations

__all__ = ["chip_from_file", "chip_from_portable_binary", "chip_from_nightly", "nightly_calib_path",
           "nightly_calib_url", "get_unique_identifier"]


def _unsupported(name: str):
    from ..brainscales.errors import UnsupportedFeatureError
    raise UnsupportedFeatureError("bss2", f"not supported by the emulator: helper.{name} (needs a real chip or "
                                  "its calibration database)", name, "CalibHXNeuronCuba/Coba for calibrated neurons")


def chip_from_file(path):
    _unsupported("chip_from_file")


def chip_from_portable_binary(data):
    _unsupported("chip_from_portable_binary")


def chip_from_nightly():
    _unsupported("chip_from_nightly")


def nightly_calib_path():
    _unsupported("nightly_calib_path")


def nightly_calib_url():
    _unsupported("nightly_calib_url")


def get_unique_identifier():
    _unsupported("get_unique_identifier")
