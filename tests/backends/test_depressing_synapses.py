"""Depressing recurrent synapses (the mixing mechanism) on every software backend: each spike's
conductance jump equals w U x of the Tsodyks-Markram equations, integrated independently in numpy."""

import numpy as np
import pytest

from cortexsim.backends import load_backend
from cortexsim.models.sampling_network import recurrent_synapse_type
from cortexsim.models.short_term_depression import ShortTermDepression, tm_availability_trace

BACKENDS = ["nest", "brian2"]
SPIKES = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 150.0, 160.0])  # a train, a pause, two more


def _jumps(times, g, tau_syn):
    """Conductance jump at each arrival (within 3 ms after the spike: delay plus the simulator's relay):
    the one sample-to-sample increase of g, minus the decay of what was there before."""
    jumps = []
    for t in SPIKES:
        window = np.flatnonzero((times >= t) & (times < t + 3.0))
        k = window[np.argmax(np.diff(g[window[0]:window[-1] + 2]))]
        jumps.append(g[k + 1] - g[k] * np.exp(-(times[k + 1] - times[k]) / tau_syn))
    return np.array(jumps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_depressing_synapse_jumps_follow_tsodyks_markram(backend):
    sim = load_backend(backend)
    depression = ShortTermDepression(U=0.3, tau_rec_ms=80.0)  # strong, so every jump differs
    weights = {"excitatory": 0.002, "inhibitory": 0.003}
    tau_syn = {"excitatory": 7.0, "inhibitory": 4.0}
    sim.setup(timestep=0.1, seed=1)
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=SPIKES.tolist()))
    target = sim.Population(1, sim.IF_cond_exp(tau_syn_E=tau_syn["excitatory"], tau_syn_I=tau_syn["inhibitory"],
                                               v_thresh=100.0))
    for receptor, weight in weights.items():
        synapse = recurrent_synapse_type(sim, "depressing", tau_syn[receptor], 1.0, depression)
        projection = sim.Projection(source, target, sim.AllToAllConnector(), synapse, receptor_type=receptor)
        projection.set(weight=weight)
    target.record(["gsyn_exc", "gsyn_inh"])
    sim.run(200.0)
    segment = target.get_data().segments[0]
    sim.end()
    x = tm_availability_trace(SPIKES, depression)
    assert x[5] < 0.5 * x[0] and x[6] > x[5]  # the train depresses the synapse, the pause lets it recover
    for receptor, name in (("excitatory", "gsyn_exc"), ("inhibitory", "gsyn_inh")):
        signal = next(s for s in segment.analogsignals if s.name == name)
        times = np.asarray(signal.times.rescale("ms")).ravel()
        g = np.asarray(signal.rescale("uS")).ravel()
        # The jump may land inside the 0.1 ms sampling step: at most 2.5 % of decay on top of it.
        np.testing.assert_allclose(_jumps(times, g, tau_syn[receptor]), weights[receptor] * depression.U * x,
                                   rtol=0.03, err_msg=f"{backend}, {receptor}")
