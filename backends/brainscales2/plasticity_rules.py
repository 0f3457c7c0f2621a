"""Periodic plasticity rules: ``Timer``, ``PlasticityRule`` and the handle that synapse and cell types carry.

On BrainScaleS-2 a plasticity rule is a C++ kernel compiled for the chip's plasticity processors
(PPUs) and run at the times of its :class:`Timer`, between stretches of emulation. The emulator
has no PPU: a rule whose kernel is C++ (an overridden :meth:`PlasticityRule.generate_kernel`) raises
:class:`~cortexsim.backends.brainscales.UnsupportedFeatureError` ("PPU C++ plasticity kernels")
when a run would execute it. What the emulator does provide is the same schedule with Python:

* a run is split at every timer event of every rule (``Timer(start, period, num_periods)``, hardware
  ms); at each event the emulation is paused and :meth:`PlasticityRule.execute` is called with a
  :class:`RuleContext` (the time; the integer weights of the rule's projections, readable and
  writable; the membrane read-out of its populations through the CADC; a way to record observables);
* observables (``observables`` of the rule) are recorded per event and returned by
  ``projection.get_data(name)`` as one list per run of :class:`TimedData` entries (``time`` in FPGA
  clock cycles of 125 MHz, as on hardware, and ``time_ms``; ``data`` one entry per connection: the
  weights of the hardware synapses that realise it).

Python kernels: subclass :class:`PlasticityRule` and override :meth:`PlasticityRule.execute`
(``context.weights(k)`` / ``context.set_weights(k, w)`` for the k-th projection, ``context.record``).
``StaticRecordingSynapse`` uses this with a rule that only records ``"weights"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import numpy as np

__all__ = ["Timer", "PlasticityRule", "PlasticityRuleHandle", "RuleContext", "TimedData",
           "FPGA_CLOCK_CYCLES_PER_MS"]

#: Hardware time stamps count FPGA clock cycles (125 MHz): cycles per hardware ms.
FPGA_CLOCK_CYCLES_PER_MS = 125_000


class Timer:
    """Periodic schedule of a plasticity rule, in hardware ms.

    Parameters
    ----------
    start : float
        Time of the first event (hardware ms, >= 0).
    period : float
        Time between events (hardware ms, > 0).
    num_periods : int
        Number of events (>= 0).
    """

    def __init__(self, start: float, period: float, num_periods: int, **parameters):
        for name, value, ok in (("start", start, start >= 0), ("period", period, period > 0),
                                ("num_periods", num_periods, num_periods >= 0)):
            if not (np.isfinite(value) and ok):
                raise ValueError(f"Timer {name} must be {'> 0' if name == 'period' else '>= 0'}, got {value!r}")
        self.start = float(start)
        self.period = float(period)
        self.num_periods = int(num_periods)
        self.parameters = parameters

    def event_times(self, begin: float, end: float) -> np.ndarray:
        """Event times (hardware ms) in [begin, end)."""
        times = self.start + self.period * np.arange(self.num_periods)
        return times[(times >= begin - 1e-12) & (times < end - 1e-12)]

    def __repr__(self):
        return f"Timer(start={self.start}, period={self.period}, num_periods={self.num_periods})"


@dataclass
class TimedData:
    """One recorded value of an observable: ``time`` (FPGA clock cycles), ``time_ms`` (hardware ms), ``data``."""

    time: int
    time_ms: float
    data: list


@dataclass
class RuleContext:
    """What a Python kernel sees at one timer event.

    Attributes
    ----------
    time_ms : float
        Hardware time of the event (ms).
    rule : PlasticityRule
        The rule being executed.
    """

    time_ms: float
    rule: "PlasticityRule"
    _state: object = field(repr=False, default=None)

    @property
    def projections(self) -> list:
        return list(self.rule._projections)

    @property
    def populations(self) -> list:
        return list(self.rule._populations)

    def weights(self, k: int = 0) -> np.ndarray:
        """Integer weights (with their sign) of the connections of the rule's k-th projection."""
        return np.array([c.weight for c in self.rule._projections[k].connections], dtype=int)

    def set_weights(self, k: int, weights) -> None:
        """Write integer weights of the k-th projection (same order as :meth:`weights`); the
        emulation continues with them after this event."""
        projection = self.rule._projections[k]
        weights = np.asarray(weights)
        if weights.shape != (len(projection.connections),):
            raise ValueError(f"weights must have shape ({len(projection.connections)},), got {weights.shape}")
        for connection, weight in zip(projection.connections, weights.tolist()):
            connection.weight = weight
        try:
            self._state.push_weights(projection)
        except Exception as error:
            if type(error).__name__ == "_Rebuild":
                raise ValueError("a plasticity rule cannot give a connection more hardware synapses than were "
                                 "placed for it (|weight| > 63 x synapses placed); start with the largest "
                                 "weight") from None
            raise

    def membrane_cadc(self, k: int = 0) -> np.ndarray:
        """CADC readings (8 bit) of the membranes of the rule's k-th population at this moment."""
        return self._state.read_membranes(self.rule._populations[k], "cadc")

    def record(self, observable: str, projection, data: list) -> None:
        """Store ``data`` (one entry per connection) for ``observable`` of ``projection`` at this event."""
        self.rule._store(observable, projection, self.time_ms, data)


class PlasticityRule:
    """A rule executed at the events of its :class:`Timer` (see the module docstring).

    Parameters
    ----------
    timer : Timer
        When the rule runs.
    observables : dict or set, optional
        Names of what the rule records (``projection.get_data(name)``).
    same_id : int
        Identifier shared by rules whose state persists across runs (kept for compatibility).
    """

    def __init__(self, timer: Timer, observables=None, same_id: int = 0):
        if not isinstance(timer, Timer):
            raise TypeError(f"timer must be a Timer, got {type(timer).__name__}")
        self.timer = timer
        self.observables = {} if observables is None else observables
        self.same_id = same_id
        self._projections = []
        self._populations = []
        self._recording_data = None
        self._current_run = None

    # --- what subclasses change ------------------------------------------------------------------
    def generate_kernel(self) -> str:
        """C++ source of a PPU kernel (BrainScaleS-2 hardware only; the emulator does not compile it)."""
        return ""

    def execute(self, context: RuleContext) -> None:
        """The rule's action at one timer event; override with Python to run it on the emulator."""
        if type(self).generate_kernel is not PlasticityRule.generate_kernel:
            from ..brainscales.errors import UnsupportedFeatureError
            raise UnsupportedFeatureError("bss2", "not supported by the emulator: PPU C++ plasticity kernels "
                                          f"({type(self).__name__}.generate_kernel)", "a C++ kernel",
                                          "a Python kernel: override PlasticityRule.execute(context)")

    # --- bookkeeping used by projections, populations and the run loop ---------------------------
    def _add_projection(self, projection) -> None:
        self._projections.append(projection)

    def _add_population(self, population) -> None:
        self._populations.append(population)

    def _start_run(self) -> None:
        if self._recording_data is None:
            self._recording_data = []
        self._current_run = {}
        self._recording_data.append(self._current_run)

    def _store(self, observable, projection, time_ms: float, data: list) -> None:
        entries = self._current_run.setdefault(observable, {}).setdefault(id(projection), [])
        entries.append(TimedData(int(round(time_ms * FPGA_CLOCK_CYCLES_PER_MS)), float(time_ms), data))

    def _data_of(self, observable: str, projection) -> list:
        if self._recording_data is None:
            raise RuntimeError("plasticity rule observables are only available after pynn.run()")
        return [run.get(observable, {}).get(id(projection)) for run in self._recording_data]

    def _reset_recording(self) -> None:
        self._recording_data = None
        self._current_run = None


class PlasticityRuleHandle:
    """Mixin of synapse and cell types that can carry a :class:`PlasticityRule`."""

    def __init__(self, plasticity_rule: PlasticityRule | None = None):
        if plasticity_rule is not None and not isinstance(plasticity_rule, PlasticityRule):
            raise TypeError(f"plasticity_rule must be a PlasticityRule, got {type(plasticity_rule).__name__}")
        self._plasticity_rule = plasticity_rule

    @property
    def plasticity_rule(self) -> PlasticityRule | None:
        return self._plasticity_rule

    @plasticity_rule.setter
    def plasticity_rule(self, rule) -> None:
        PlasticityRuleHandle.__init__(self, rule)


def synapses_per_connection(weight: int) -> list:
    """Weights of the hardware synapses that realise one connection (each 0 .. 63, in order)."""
    magnitude = abs(int(weight))
    n = max(1, ceil(magnitude / 63))
    return [min(63, magnitude - 63 * k) for k in range(n)]
