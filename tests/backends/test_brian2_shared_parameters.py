"""IF_cond_exp on the brian2 backend: parameters stored once per population behave as in ``pyNN.brian2``.

Homogeneous time constants, capacitance and reversal potentials are stored once per population
(speed); reading views and IDs, ``get(simplify=False)`` and setting any subset must give what
PyNN's own Brian2 module gives (issue 14: they raised ``IndexError``), and the dynamics after a
subset was set must follow each neuron's own value (checked against the analytic membrane charge).
"""

import numpy as np
import pyNN.brian2 as pynn_brian2
import pytest

from cortexsim.backends import load_backend
from cortexsim.backends.pynn_brian2 import is_stored_once

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _parameter_session(sim) -> list:
    """A sequence of PyNN parameter reads and writes; returns every result."""
    sim.setup(timestep=0.1)
    cells = sim.Population(4, sim.IF_cond_exp(tau_m=12.0, cm=0.25, tau_syn_E=3.0, tau_syn_I=7.0))
    other = sim.Population(2, sim.IF_cond_exp(tau_m=[8.0, 9.0]))
    results = [cells.get("tau_m"), cells.get("tau_m", simplify=False), cells[1:3].get("tau_m"),
               cells[1:3].get("cm", simplify=False), cells[2].tau_m, cells.get(["tau_syn_E", "tau_syn_I"])]
    cells[0:2].set(tau_m=15.0)
    results.append(cells.get("tau_m"))
    sim.PopulationView(cells, [3]).set(tau_m=17.0, tau_syn_I=4.0)
    results += [cells.get("tau_m"), cells.get("tau_syn_I")]
    cells[2].tau_m = 20.0
    results += [cells.get("tau_m"), cells[1:3].get("tau_m"), cells[2].tau_m, cells[3].tau_syn_I]
    cells[1:3][0:1].set(cm=0.5)  # a view of a view
    results.append(cells.get("cm", simplify=False))
    assembly = cells + other
    results.append(assembly.get("tau_m"))
    assembly.set(e_rev_I=-75.0)
    results += [cells.get("e_rev_I"), cells.get("e_rev_E", simplify=False)]
    cells.set(tau_syn_E=np.array([1.0, 2.0, 3.0, 4.0]))
    results.append(cells[::2].get("tau_syn_E"))
    sim.end()
    return results


def test_views_ids_and_subsets_like_pynn_brian2():
    reference = _parameter_session(pynn_brian2)
    ours = _parameter_session(load_backend("brian2"))
    assert len(ours) == len(reference)
    for k, (a, b) in enumerate(zip(ours, reference)):
        if isinstance(b, list):
            assert len(a) == len(b), k
            for x, y in zip(a, b):
                np.testing.assert_allclose(x, y, err_msg=f"result {k}")
        else:
            assert np.shape(a) == np.shape(b), f"result {k}: {a!r} vs {b!r}"
            np.testing.assert_allclose(a, b, err_msg=f"result {k}")


def test_storage_stays_shared_while_homogeneous_and_switches_when_not():
    sim = load_backend("brian2")
    sim.setup(timestep=0.1)
    cells = sim.Population(3, sim.IF_cond_exp(tau_m=12.0, v_rest=[-60.0, -61.0, -62.0]))
    group = cells.brian2_group
    assert all(is_stored_once(group, n) for n in ("tau_syn_e", "tau_syn_i", "tau_m", "c_m", "e_rev_e", "e_rev_i"))
    cells.set(tau_m=14.0)            # one value for all: stays shared (the fast state update)
    cells[0:2].set(tau_syn_I=5.0)    # the current value (PyNN default): still homogeneous
    assert is_stored_once(group, "tau_syn_i")
    cells[0:2].set(tau_syn_E=6.0)    # a subset with a new value: per-neuron storage
    assert is_stored_once(group, "tau_m") and not is_stored_once(group, "tau_syn_e")
    cells[1].tau_m = 14.0            # same value: still homogeneous, still shared
    assert is_stored_once(group, "tau_m")
    sim.end()


def _charging_traces(sim, dt=0.1):
    """v of 3 non-spiking cells charged by i_offset; tau_m of cell 0 changed from 10 to 30 ms at 20 ms."""
    sim.setup(timestep=dt)
    cells = sim.Population(3, sim.IF_cond_exp(tau_m=10.0, cm=0.2, v_rest=-65.0, v_thresh=100.0,
                                              i_offset=[0.2, 0.3, 0.4]))
    cells.initialize(v=-65.0)
    cells.record("v")
    sim.run(20.0)
    cells[0].tau_m = 30.0
    sim.run(40.0)
    signal = cells.get_data("v").segments[0].analogsignals[0]
    sim.end()
    return np.asarray(signal.times.rescale("ms")), np.asarray(signal.rescale("mV"))


def _analytic_charging(times):
    """Exact solution: v -> v_rest + i tau / cm with the time constant in force at each time."""
    v = np.empty((times.size, 3))
    for k, i_offset in enumerate((0.2, 0.3, 0.4)):
        v[:, k] = -65.0 + i_offset * 10.0 / 0.2 * (1 - np.exp(-times / 10.0))
    v_20 = -65.0 + 0.2 * 10.0 / 0.2 * (1 - np.exp(-20.0 / 10.0))
    v_inf = -65.0 + 0.2 * 30.0 / 0.2
    late = times > 20.0
    v[late, 0] = v_inf + (v_20 - v_inf) * np.exp(-(times[late] - 20.0) / 30.0)
    return v


def test_subset_set_between_runs_integrates_each_neuron_with_its_own_value():
    times, v = _charging_traces(load_backend("brian2"))
    expected = _analytic_charging(times)
    # Exponential Euler is exact for this linear equation (measured: 1e-13 mV).
    np.testing.assert_allclose(v, expected, atol=1e-6)
    assert v[-1, 0] - v[-1, 1] > 5.0  # tau 30 ms charges cell 0 far above cell 1 (a shared tau would not)
