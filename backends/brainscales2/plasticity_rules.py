"""Periodic plasticity rules: ``Timer``, ``PlasticityRule``, the kernel's view of the chip, and the handle.

On BrainScaleS-2 a plasticity rule is a C++ kernel compiled for the chip's plasticity processors
(PPUs) and run at the times of its :class:`Timer`, between stretches of emulation. The emulator has
no PPU compiler: a rule whose kernel is C++ (an overridden :meth:`PlasticityRule.generate_kernel`)
raises :class:`~cortexsim.backends.brainscales.UnsupportedFeatureError` with "not supported by the
emulator: ... give python_kernel" when a run would execute it. The same schedule runs Python kernels:

* a run is split at every timer event of every rule (``Timer(start, period, num_periods)``, hardware
  ms); at each event the emulation is paused and the rule's kernel gets a :class:`RuleContext`;
* the kernel is ``python_kernel`` (a function of the context, given to :class:`PlasticityRule`) or an
  overridden :meth:`PlasticityRule.execute`;
* the context offers what a PPU program sees (:class:`RuleContext`): the synapses of the rule's
  projections as synapse rows (:meth:`RuleContext.synapses`: 6-bit weight magnitudes and the causal
  and acausal correlation sensors of every synapse, readable and resettable, weights writable), the
  rate counters of the rule's populations (spikes since their last reset), the membranes through the
  CADC, the hardware time, and ``reward``: any number or array the experiment wrote into the rule
  between runs (``rule.reward = ...``, the host writing the PPU's memory);
* observables (``observables`` of the rule) are recorded per event and returned by
  ``projection.get_data(name)`` as one list per run of :class:`TimedData` entries (``time`` in FPGA
  clock cycles of 125 MHz, as on hardware, and ``time_ms``; ``data`` one entry per connection).

The PPU model (assumptions of the emulation, sources in :mod:`cortexsim.backends.correlation`):

* the sensors are those of :mod:`~cortexsim.backends.correlation` (nearest-spike pairing,
  exponential window, saturation, per-synapse mismatch of the chip, read-out noise); rules receive
  baseline-subtracted correlation in CADC LSB (0 = none, as calix's correlation measurement reports
  it), integers in [0, saturation];
* weights are 6-bit magnitudes in SRAM: written weights are rounded to integers and clipped to
  0 .. 63, as the PPU's saturating vector arithmetic does; the number clipped is counted
  (``rule.statistics``). Digital SRAM has no write noise, so none is modelled;
* rate counters count each neuron's spikes since their last reset, saturating at 255 (8-bit counters,
  *assumption*);
* a kernel runs in zero hardware time: the emulation is stopped while it runs (on hardware the
  update of a row takes some PPU cycles while the network keeps running).

Example: a rule that strengthens every synapse whose causal correlation exceeds 10 LSB, every 0.1 ms::

    def kernel(context):
        rows = context.synapses(0)
        causal, _ = rows.correlation(reset=True)
        rows.set_weights(rows.weights + (causal > 10))

    rule = pynn.PlasticityRule(pynn.Timer(start=0.1, period=0.1, num_periods=10), python_kernel=kernel)
    pynn.Projection(pre, post, pynn.AllToAllConnector(),
                    pynn.synapses.PlasticSynapse(weight=20, plasticity_rule=rule))

``StaticRecordingSynapse`` uses this machinery with a rule that records ``"weights"`` and the
correlation observables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import numpy as np

__all__ = ["Timer", "PlasticityRule", "PlasticityRuleHandle", "RuleContext", "SynapseRows", "TimedData",
           "FPGA_CLOCK_CYCLES_PER_MS", "WEIGHT_MAX", "RATE_COUNTER_MAX"]

#: Hardware time stamps count FPGA clock cycles (125 MHz): cycles per hardware ms.
FPGA_CLOCK_CYCLES_PER_MS = 125_000
#: Largest weight of one hardware synapse (6 bit).
WEIGHT_MAX = 63
#: Rate counters saturate here (8 bit, *assumption*).
RATE_COUNTER_MAX = 255


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
        first = max(0, int(np.floor((begin - self.start) / self.period)) - 1)
        last = min(self.num_periods, int(np.ceil((end - self.start) / self.period)) + 1)
        times = self.start + self.period * np.arange(first, max(first, last))
        return times[(times >= begin - 1e-12) & (times < end - 1e-12)]

    def __repr__(self):
        return f"Timer(start={self.start}, period={self.period}, num_periods={self.num_periods})"


@dataclass
class TimedData:
    """One recorded value of an observable: ``time`` (FPGA clock cycles), ``time_ms`` (hardware ms), ``data``."""

    time: int
    time_ms: float
    data: list


class SynapseRows:
    """The synapses of one projection as the PPU sees them: rows = presynaptic cells, columns = postsynaptic.

    Obtained from :meth:`RuleContext.synapses`. Arrays have shape (pre size, post size); entries
    without a connection are 0 and stay untouched (``mask`` is False there).

    Attributes
    ----------
    projection : Projection
        The dialect projection.
    mask : ndarray of bool
        Where a connection exists.
    weights : ndarray of int
        Weight magnitudes (0 .. 63, the hardware's 6-bit values; the sign is the row's receptor type).
    """

    def __init__(self, projection, rule: "PlasticityRule", state):
        self.projection = projection
        self._rule = rule
        self._state = state
        shape = (projection.pre.size, projection.post.size)
        pre = np.array([c.presynaptic_index for c in projection.connections], dtype=int)
        post = np.array([c.postsynaptic_index for c in projection.connections], dtype=int)
        magnitudes = np.abs(projection.integer_weights())
        if magnitudes.size and magnitudes.max() > WEIGHT_MAX:
            raise ValueError(f"synapse rows need one hardware synapse per connection: projection "
                             f"{projection.label!r} has a weight of magnitude {magnitudes.max()} > {WEIGHT_MAX}")
        flat = pre * shape[1] + post
        if np.unique(flat).size != flat.size:
            raise ValueError(f"projection {projection.label!r} connects a pair of cells more than once; "
                             "synapse rows need at most one connection per pair")
        self._pre, self._post = pre, post
        self.mask = np.zeros(shape, dtype=bool)
        self.mask[pre, post] = True
        self.weights = np.zeros(shape, dtype=int)
        self.weights[pre, post] = magnitudes

    @property
    def shape(self) -> tuple:
        return self.mask.shape

    def correlation(self, reset: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """One CADC read of the causal and acausal sensors (integer LSB, 0 = no correlation).

        Parameters
        ----------
        reset : bool
            Reset all sensors of these rows after the read (the next read counts from now on).
        """
        causal, acausal = self._state.read_correlation(self.projection)
        causal = np.where(self.mask, causal, 0)
        acausal = np.where(self.mask, acausal, 0)
        if reset:
            self.reset_correlation()
        return causal, acausal

    def reset_correlation(self, rows=None) -> None:
        """Reset the sensors of all rows, or of the rows ``rows`` (presynaptic indices)."""
        self._state.reset_correlation(self.projection, rows)

    def set_weights(self, weights) -> None:
        """Write new weights (array of the rows' shape): rounded to integers and clipped to 0 .. 63.

        Entries without a connection are ignored. The emulation continues with the new weights.
        """
        weights = np.asarray(weights, dtype=float)
        if weights.shape != self.shape:
            raise ValueError(f"weights must have shape {self.shape}, got {weights.shape}")
        if not np.all(np.isfinite(weights[self.mask])):
            raise ValueError("weights written by a plasticity rule must be finite")
        rounded = np.rint(weights[self._pre, self._post])
        clipped = np.clip(rounded, 0, WEIGHT_MAX)
        self._rule.statistics["weights_written"] += int(clipped.size)
        self._rule.statistics["weights_clipped"] += int(np.count_nonzero(clipped != rounded))
        current = self.projection.integer_weights()
        sign = np.sign(current)
        sign[sign == 0] = -1 if self._negative_receptor() else 1
        new = (sign * clipped).astype(int)
        changed = np.flatnonzero(new != current)
        for index in changed.tolist():
            self.projection.connections[index].weight = int(new[index])
        self.weights[self._pre, self._post] = clipped.astype(int)
        if changed.size:
            self._state.push_weights(self.projection)

    def _negative_receptor(self) -> bool:
        return self.projection.receptor_type == "inhibitory" and not getattr(self.projection.post,
                                                                             "conductance_based", False)


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

    @property
    def reward(self):
        """What the experiment last wrote into ``rule.reward`` (None if nothing)."""
        value = self.rule.reward
        return value.copy() if isinstance(value, np.ndarray) else value

    def synapses(self, k: int = 0) -> SynapseRows:
        """The rule's k-th projection as synapse rows (weights and correlation sensors)."""
        return SynapseRows(self.rule._projections[k], self.rule, self._state)

    def rate_counters(self, k: int = 0, reset: bool = True) -> np.ndarray:
        """Spikes of every neuron of the rule's k-th population since the counters' last reset (<= 255).

        Parameters
        ----------
        reset : bool
            Reset the counters after reading them.
        """
        return self._state.rate_counters(self.rule._populations[k], reset)

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


def _unsupported_cpp(rule) -> Exception:
    from ..brainscales.errors import UnsupportedFeatureError
    return UnsupportedFeatureError(
        "bss2", "not supported by the emulator: PPU C++ plasticity kernels "
        f"({type(rule).__name__}.generate_kernel); give python_kernel", "a C++ kernel",
        "a Python kernel: PlasticityRule(timer, python_kernel=function_of_the_context) or an overridden "
        "execute(context)")


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
    python_kernel : callable, optional
        The kernel: called with a :class:`RuleContext` at every timer event.

    Attributes
    ----------
    reward : float, ndarray or None
        Set by the experiment between runs; kernels read it as ``context.reward``.
    statistics : dict
        ``events`` (kernel calls), ``weights_written`` and ``weights_clipped`` (written through
        :meth:`SynapseRows.set_weights`, clipped to 0 .. 63).
    """

    def __init__(self, timer: Timer, observables=None, same_id: int = 0, python_kernel=None):
        if not isinstance(timer, Timer):
            raise TypeError(f"timer must be a Timer, got {type(timer).__name__}")
        if python_kernel is not None and not callable(python_kernel):
            raise TypeError(f"python_kernel must be a function of the RuleContext, got {type(python_kernel).__name__}")
        self.timer = timer
        self.observables = {} if observables is None else observables
        self.same_id = same_id
        self.python_kernel = python_kernel
        self._reward = None
        self.statistics = {"events": 0, "weights_written": 0, "weights_clipped": 0}
        self._projections = []
        self._populations = []
        self._recording_data = None
        self._current_run = None

    @property
    def reward(self):
        return self._reward

    @reward.setter
    def reward(self, value) -> None:
        if value is not None:
            array = np.asarray(value, dtype=float)
            if array.ndim > 1 or not np.all(np.isfinite(array)):
                raise ValueError(f"reward must be None, a finite number or a 1-d array of finite numbers, "
                                 f"got {value!r}")
            value = float(array) if array.ndim == 0 else array.copy()
        self._reward = value

    # --- what subclasses change ------------------------------------------------------------------
    def generate_kernel(self) -> str:
        """C++ source of a PPU kernel (BrainScaleS-2 hardware only; the emulator does not compile it)."""
        return ""

    def execute(self, context: RuleContext) -> None:
        """The rule's action at one timer event: ``python_kernel(context)``; override to write it as a method."""
        if self.python_kernel is not None:
            self.python_kernel(context)
        elif type(self).generate_kernel is not PlasticityRule.generate_kernel:
            raise _unsupported_cpp(self)

    def _check_kernel(self) -> None:
        """UnsupportedFeatureError before a run if the rule only has a C++ kernel."""
        has_python = self.python_kernel is not None or type(self).execute is not PlasticityRule.execute
        if not has_python and type(self).generate_kernel is not PlasticityRule.generate_kernel:
            raise _unsupported_cpp(self)

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
