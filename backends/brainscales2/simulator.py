"""State of the BrainScaleS-2 dialect between ``setup()`` and ``end()``: the network, time, snippets.

Time here is hardware time (ms). The network is described by the dialect's own objects (hardware
parameters, integer weights); :mod:`.mapping` places it onto the emulated chip when a run needs it.
"""

from __future__ import annotations

from pyNN import common

__all__ = ["ID", "State", "state", "name"]

name = "BrainScaleS-2 emulation (cortexsim)"


class ID(int, common.IDMixin):
    """Identifier of one cell of the dialect."""

    def __init__(self, n):
        int.__init__(n)
        common.IDMixin.__init__(self)


class State(common.control.BaseState):
    """Everything ``setup()`` starts and ``end()`` discards (times in hardware ms)."""

    def __init__(self):
        super().__init__()
        self.mpi_rank = 0
        self.num_processes = 1
        self.dt = 1e-4                      # hardware ms per emulation step (0.1 ms biological)
        self.min_delay = 0.0
        self.max_delay = 0.0
        self.record_sample_times = True
        self.active = False
        self.options = None
        self.clear()

    def clear(self) -> None:
        """Forget the network (a new ``setup()``)."""
        self.recorders = set()
        self.write_on_end = []
        self.populations = []
        self.projections = []
        self.id_counter = 0
        self.segment_counter = -1
        self.mapping = None
        self.n_mappings = 0
        self.changed_topology = True
        self.rng = None
        self.reset()

    def reset(self) -> None:
        """Time back to 0 and a new segment; the next run places the network afresh."""
        self.running = False
        self.t = 0.0
        self.t_start = 0.0
        self.segment_counter += 1
        self.runtimes = []
        self.changed_topology = True
        for recorder in self.recorders:
            recorder.snippets = []
        for population in self.populations:
            rule = getattr(population.celltype, "plasticity_rule", None)
            if rule is not None:
                rule._reset_recording()
        for projection in self.projections:
            rule = getattr(projection.synapse_type, "plasticity_rule", None)
            if rule is not None:
                rule._reset_recording()


state = State()
