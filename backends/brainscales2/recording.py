"""Recording in the BrainScaleS-2 dialect: spikes, and analog variables through the MADC or the CADC.

Every run (a "snippet" of the experiment) stores what was recorded in it. ``get_data()`` returns a
neo Block whose segment holds spike trains (hardware ms) and, for analog variables, one
``IrregularlySampledSignal`` per neuron and run (times in hardware ms, values in ADC units:
``dimensionless``), annotated with the device.

ADC limits (as on BrainScaleS-2):

* one analog variable per neuron (``v``, ``exc_synin`` or ``inh_synin``);
* MADC: 10 bit, sampled every emulation step (0.1 us of hardware time = 10 MSa/s by default); the
  two readout lines serve one even and one odd neuron circuit, so at most two neurons, of different
  parity, per run (checked when the run places the network);
* CADC: 8 bit, every neuron, one sample per neuron every :data:`CADC_SAMPLE_PERIOD_MS` (1 us).
"""

from __future__ import annotations

from datetime import datetime

import neo
import numpy as np
import pyNN.recording
import quantities as pq
from pyNN import errors
from pyNN.recording import Variable

from . import simulator

__all__ = ["Recorder", "ANALOG_DEVICES", "ANALOG_VARIABLES", "CADC_SAMPLE_PERIOD_MS"]

ANALOG_DEVICES = ("madc", "cadc")
ANALOG_VARIABLES = ("v", "exc_synin", "inh_synin", "adaptation")
#: Time between two CADC samples of one neuron (hardware ms).
CADC_SAMPLE_PERIOD_MS = 1e-3


def _names(variables) -> list:
    if isinstance(variables, str):
        return [variables]
    return [getattr(v, "name", v) for v in variables]


class Recorder(pyNN.recording.Recorder):
    """Records of one population: which cell records what with which device, and per-run data."""

    _simulator = simulator

    def __init__(self, population, file=None):
        super().__init__(population, file=file)
        self.analog_of = {}          # cell id -> (variable, device)
        self.snippets = []           # one dict per run of the current segment

    def record(self, variables, ids, sampling_interval=None, locations=None, device: str = "madc"):
        if sampling_interval is not None:
            raise NotImplementedError("sampling_interval is set by the read-out device on BrainScaleS-2 "
                                      "(device='madc' or 'cadc')")
        if locations is not None:
            from ..brainscales.errors import UnsupportedFeatureError
            raise UnsupportedFeatureError("bss2", "not supported by the emulator: recording locations of "
                                          "multi-compartment neurons", repr(locations), "None")
        names = _names(variables)
        analog = [name for name in names if name != "spikes"]
        if analog:
            if isinstance(device, str) and device.startswith("pad"):
                from ..brainscales.errors import UnsupportedFeatureError
                raise UnsupportedFeatureError("bss2", "not supported by the emulator: analog read-out "
                                              "through the pads", repr(device), f"one of {ANALOG_DEVICES}")
            if device not in ANALOG_DEVICES:
                raise ValueError(f'Device "{device}" is not supported; use one of {ANALOG_DEVICES}')
            if len(set(analog)) > 1:
                raise ValueError(f"only one analog variable can be recorded per neuron, got {sorted(set(analog))}")
        ids = [i for i in ids if i.local]
        for name in names:
            if not self.population.can_record(name):
                raise errors.RecordingError(name, self.population.celltype)
        if analog:
            variable = analog[0]
            for cell in ids:
                previous = self.analog_of.get(int(cell))
                if previous is not None and previous[0] != variable:
                    raise ValueError(f"only one analog variable can be recorded per neuron: cell {int(cell)} "
                                     f"already records {previous[0]!r}, requested {variable!r}")
            for cell in ids:
                self.analog_of[int(cell)] = (variable, device)
        for name in names:
            key = Variable(name=name, location=None, label=None)
            self.recorded[key] = self.recorded[key].union(ids)

    def _record(self, variable, new_ids, sampling_interval=None):
        pass

    def _reset(self):
        self.analog_of = {}

    def _clear_simulator(self):
        self.snippets = []

    def recorded_ids(self, name: str) -> list:
        """Cell ids recording ``name`` (sorted)."""
        return sorted(int(i) for i in self.recorded.get(Variable(name=name, location=None, label=None), ()))

    def _local_count(self, variable, filter_ids=None):
        ids = self.filter_recorded(variable, filter_ids)
        return {int(i): int(sum(len(s["spikes"].get(int(i), ())) for s in self.snippets)) for i in ids}

    def _get_current_segment(self, filter_ids=None, variables="all", clear=False):
        segment = neo.Segment(name=f"segment{simulator.state.segment_counter:03d}",
                              description=self.population.describe(), rec_datetime=datetime.now())
        wanted = set(self.recorded.keys())
        if variables != "all":
            wanted &= {Variable(name=n, location=None, label=None) for n in _names(variables)}
        t_stop = simulator.state.t * pq.ms
        for variable in sorted(wanted, key=lambda v: v.name):
            ids = sorted(self.filter_recorded(variable, filter_ids))
            if variable.name == "spikes":
                for cell in ids:
                    times = [s["spikes"].get(int(cell), np.array([])) for s in self.snippets]
                    times = np.sort(np.concatenate(times)) if times else np.array([])
                    train = neo.SpikeTrain(times * pq.ms, t_start=self._recording_start_time, t_stop=t_stop,
                                           units="ms", source_population=self.population.label,
                                           channel_id=int(cell), source_id=int(cell),
                                           source_index=self.population.id_to_index(int(cell)))
                    train.segment = segment
                    segment.spiketrains.append(train)
                continue
            for snippet in self.snippets:
                for cell in ids:
                    record = snippet["analog"].get(variable.name, {}).get(int(cell))
                    if record is None:
                        continue
                    times, values, device = record
                    if len(times) == 0:
                        continue
                    signal = neo.IrregularlySampledSignal(
                        np.asarray(times, dtype=float), np.asarray(values, dtype=float), units="dimensionless",
                        time_units=pq.ms, name=variable.name, device=device, source_ids=[int(cell)],
                        source_population=self.population.label,
                        array_annotations={"channel_index": [self.population.id_to_index(int(cell))]})
                    signal.segment = segment
                    segment.irregularlysampledsignals.append(signal)
        if clear:
            self.snippets = []
        return segment

    def store_to_cache(self, annotations=None):
        if simulator.state.t != 0 and not self.clear_flag:
            segment = self._get_current_segment()
            segment.annotate(**(annotations or {}))
            self.cache.store(segment)
        self.clear_flag = False
        self._recording_start_time = 0.0 * pq.ms

    def analog_sites(self) -> dict:
        """Cell id -> (variable, device) of every neuron of this population with an analog recording."""
        return dict(self.analog_of)


def empty_snippet(t_start: float) -> dict:
    """Storage of one run: spikes by cell id, analog data by variable and cell id."""
    return {"t_start": float(t_start), "spikes": {}, "analog": {}}
