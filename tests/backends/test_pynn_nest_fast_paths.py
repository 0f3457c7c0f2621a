"""cortexsim's NEST fast paths against PyNN's own ``pyNN.nest``: same NEST connections, same dynamics.

Each case builds the same network with ``pyNN.nest`` and with ``cortexsim.backends.pynn_nest`` and
compares what NEST holds (every connection's weight, delay, receptor port and synapse parameters),
and, where it matters, the spikes. The cases are the failures found with PyNN 0.13's scenarios
(issue 14): per-cell-type weight scaling (Izhikevich, IF_curr_delta: weights in mV), STDP onto an
inhibitory conductance receptor (NEST needs Wmax with the sign of the weight), named receptor ports
(a native ``ht_neuron``, a composed ``PointNeuron``), and ``reset()`` without ``t_flush``.
"""

import nest
import numpy as np
import pyNN.nest as pynn_nest
import pytest
from pyNN.parameters import Sequence

from cortexsim.backends import pynn_nest as cortexsim_nest
from cortexsim.backends.pynn_nest import one_call_fallback_reason

_IGNORED = {"port", "sizeof", "synapse_id", "target_thread", "synapse_label"}


def _connections(projection) -> list[dict]:
    """Every connection of ``projection`` as NEST holds it, with sources/targets as PyNN indices."""
    status = nest.GetConnections(synapse_model=projection.nest_synapse_model,
                                 synapse_label=projection.nest_synapse_label).get()
    if isinstance(status["source"], int):
        status = {key: [value] for key, value in status.items()}
    rows = []
    for k in range(len(status["source"])):
        row = {key: values[k] for key, values in status.items() if key not in _IGNORED}
        row["source"] = int(projection.pre.id_to_index(row["source"]))
        row["target"] = int(projection.post.id_to_index(row["target"]))
        rows.append(row)
    return sorted(rows, key=lambda r: (r["source"], r["target"]))


def _both(build):
    """``build(sim)`` on PyNN's own module, then on cortexsim's; each returns (projections, extra)."""
    results = []
    for sim in (pynn_nest, cortexsim_nest):
        sim.setup(timestep=0.1, min_delay=0.1)
        projections, extra = build(sim)
        results.append(([_connections(p) for p in projections], extra,
                         [one_call_fallback_reason(p._connector if hasattr(p, "_connector") else None, p)
                          for p in projections] if sim is cortexsim_nest else None))
        sim.end()
    return results


def _spike_counts(population):
    return [len(st) for st in population.get_data("spikes").segments[0].spiketrains]


def _izhikevich_or_delta(sim, celltype_name):
    source = sim.Population(2, sim.SpikeSourceArray(spike_times=[5.0, 10.0, 15.0]))
    cells = sim.Population(3, getattr(sim, celltype_name)())
    cells.record("spikes")
    projection = sim.Projection(source, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5, delay=1.0))
    sim.run(40.0)
    return [projection], {"spikes": _spike_counts(cells), "weights": projection.get("weight", format="array")}


@pytest.mark.parametrize("celltype_name", ["Izhikevich", "IF_curr_delta"])
def test_weights_in_mV_are_scaled_like_pynn(celltype_name):
    """PyNN multiplies weights onto these cell types by receptor_scale 1e-3: NEST must get 0.5, not 500."""
    (ref, ref_extra, _), (ours, our_extra, reasons) = _both(lambda sim: _izhikevich_or_delta(sim, celltype_name))
    assert reasons == [None]  # the one-call path was taken
    assert ours == ref
    assert [c["weight"] for c in ours[0]] == [0.5] * 6
    assert our_extra["spikes"] == ref_extra["spikes"]
    np.testing.assert_array_equal(our_extra["weights"], ref_extra["weights"])


def _stdp_inhibitory(sim):
    source = sim.Population(3, sim.SpikeSourceArray(spike_times=[5.0, 9.0]))
    cells = sim.Population(2, sim.IF_cond_exp(tau_syn_E=3.0, tau_syn_I=7.0))
    stdp = sim.STDPMechanism(timing_dependence=sim.SpikePairRule(tau_plus=15.0, tau_minus=25.0,
                                                                 A_plus=0.01, A_minus=0.02),
                             weight_dependence=sim.AdditiveWeightDependence(w_min=0.0, w_max=0.03),
                             weight=0.01, delay=1.5)
    inhibitory = sim.Projection(source, cells, sim.AllToAllConnector(), stdp, receptor_type="inhibitory")
    excitatory = sim.Projection(source, cells, sim.AllToAllConnector(),
                                sim.StaticSynapse(weight=0.004, delay=2.0), receptor_type="excitatory")
    return [inhibitory, excitatory], {"weights": inhibitory.get("weight", format="array")}


def test_stdp_onto_an_inhibitory_conductance_receptor_connects_like_pynn():
    """NEST needs weight and Wmax of the same sign: PyNN negates both for inhibitory conductances."""
    (ref, ref_extra, _), (ours, our_extra, reasons) = _both(_stdp_inhibitory)
    assert reasons == [None, None]
    assert ours == ref
    assert all(c["Wmax"] == pytest.approx(-30.0) and c["weight"] == pytest.approx(-10.0) for c in ours[0])
    assert all(c["weight"] == pytest.approx(4.0) for c in ours[1])
    np.testing.assert_allclose(our_extra["weights"], 0.01)


def _named_ports(sim):
    source = sim.Population(2, sim.SpikeSourceArray(spike_times=[5.0, 10.0]))
    ht = sim.Population(2, sim.native_cell_type("ht_neuron")())
    projections = [sim.Projection(source, ht, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5),
                                  receptor_type=port) for port in ("AMPA", "NMDA", "GABA_B")]
    composed = sim.Population(2, sim.PointNeuron(sim.LIF(tau_m=10.0, v_rest=-60.0),
                                                 AMPA=sim.CurrExpPostSynapticResponse(tau_syn=1.0),
                                                 GABAA=sim.CurrExpPostSynapticResponse(tau_syn=1.5)))
    projections += [sim.Projection(source, composed, sim.AllToAllConnector(), sim.StaticSynapse(weight=w),
                                   receptor_type=port) for port, w in (("AMPA", 0.01), ("GABAA", -0.1))]
    return projections, {}


def test_named_receptor_ports_reach_nest_like_pynn():
    """Native (ht_neuron) and composed (PointNeuron) cell types: the port must follow receptor_type."""
    (ref, _, _), (ours, _, reasons) = _both(_named_ports)
    assert reasons == [None] * 5
    assert ours == ref
    ports = [{c["receptor"] for c in connections} for connections in ours]
    assert len({frozenset(p) for p in ports[:3]}) == 3  # three different ht_neuron ports
    assert ports[3] != ports[4]


def test_composed_neuron_scenario_runs_and_responds_like_pynn():
    """PyNN scenario test_composed_neuron_model_homogeneous_receptors (crashed with IncompatibleReceptorType)."""
    traces = []
    for sim in (pynn_nest, cortexsim_nest):
        sim.setup(timestep=0.1)
        cells = sim.Population(1, sim.PointNeuron(sim.AdExp(tau_m=10.0, v_rest=-60.0),
                                                  AMPA=sim.AlphaPSR(tau_syn=1.0, e_syn=0.0),
                                                  GABAA=sim.AlphaPSR(tau_syn=1.5, e_syn=-70.0)),
                               initial_values={"v": -60.0})
        cells.record("v")
        inputs = sim.Population(2, sim.SpikeSourceArray(spike_times=[Sequence([30.0]), Sequence([60.0])]))
        sim.Projection(inputs[0:1], cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.01, delay=1.5),
                       receptor_type="AMPA")
        sim.Projection(inputs[1:2], cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1, delay=1.5),
                       receptor_type="GABAA")
        sim.run(100.0)
        traces.append(np.asarray(cells.get_data("v").segments[0].analogsignals[0]).ravel())
        sim.end()
    np.testing.assert_array_equal(traces[1], traces[0])
    assert traces[1][400] > -59.9 and traces[1][700] < -60.1  # the AMPA input excites, the GABAA input inhibits


def test_self_connections_of_overlapping_views_like_pynn():
    """allow_self_connections=False drops pairs of the same cell, also between overlapping views."""
    def build(sim):
        cells = sim.Population(5, sim.IF_cond_exp())
        return [sim.Projection(cells[0:4], cells[2:5], sim.AllToAllConnector(allow_self_connections=False),
                               sim.StaticSynapse(weight=0.002, delay=0.5)),
                sim.Projection(cells, cells, sim.AllToAllConnector(allow_self_connections=False),
                               sim.StaticSynapse(weight=0.003), receptor_type="inhibitory")], {}

    (ref, _, _), (ours, _, reasons) = _both(build)
    assert reasons == [None, None]
    assert ours == ref
    assert len(ours[0]) == 4 * 3 - 2 and len(ours[1]) == 20


def test_invalid_weights_are_refused_like_pynn():
    """PyNN's connector checks weight signs before connecting; the one-call path must too."""
    for sim in (pynn_nest, cortexsim_nest):
        sim.setup()
        source, cells = sim.Population(2, sim.IF_cond_exp()), sim.Population(2, sim.IF_cond_exp())
        with pytest.raises(sim.errors.ConnectionError, match="positive"):
            sim.Projection(source, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=-0.01))
        sim.end()


def test_fallback_conditions_are_explicit():
    """Heterogeneous parameters, Assemblies and models with per-cell extras take PyNN's path (same result)."""
    def build(sim):
        source = sim.Population(3, sim.IF_cond_exp())
        cells = sim.Population(2, sim.IF_cond_exp())
        heterogeneous = sim.Projection(source, cells, sim.AllToAllConnector(),
                                       sim.StaticSynapse(weight=np.array([[1, 2], [3, 4], [5, 6]]) * 1e-3))
        assembly = sim.Projection(source + cells, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.001))
        depressing = sim.Projection(source, cells, sim.AllToAllConnector(), sim.TsodyksMarkramSynapse(U=0.5))
        return [heterogeneous, assembly, depressing], {}

    (ref, _, _), (ours, _, reasons) = _both(build)
    assert "differ between connections" in reasons[0] and "Assembly" in reasons[1] and reasons[2] is None
    assert ours[:2] == ref[:2]  # the Tsodyks-Markram synapse is cortexsim's own (tsodyks2_synapse)


def test_reset_without_t_flush_is_refused_like_pynn():
    """No silent t_flush default: reset() after a run raises PyNN's error unless setup(t_flush=...) asked."""
    def reset_after_run(sim, **setup_options):
        sim.setup(**setup_options)
        sim.Population(1, sim.IF_cond_exp())
        sim.run(10.0)
        try:
            sim.reset()
            return "reset", sim.get_current_time()
        except ValueError as error:
            return "refused", str(error)
        finally:
            sim.end()

    pynn_state = pynn_nest.simulator.state
    pynn_state.t_flush = -1  # PyNN's default in a fresh process (a test before may have set one)
    reference = reset_after_run(pynn_nest)
    assert reference[0] == "refused" and "t_flush" in reference[1]
    assert reset_after_run(cortexsim_nest) == reference
    # pyNN.nest keeps the t_flush of an earlier setup() for later ones; cortexsim's setup does not.
    reset_after_run(cortexsim_nest, t_flush=50.0)
    assert reset_after_run(cortexsim_nest) == reference
    with pytest.warns(UserWarning, match="t_flush"):  # asked for: allowed, with PyNN's warning
        assert reset_after_run(cortexsim_nest, t_flush=20.0) == ("reset", 0.0)
