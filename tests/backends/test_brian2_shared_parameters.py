"""IF_cond_exp on the brian2 backend: homogeneous time constants are stored once per population.

No simulation is run: these tests only build populations and read/set parameters.
"""

import numpy as np
import pytest

from cortexsim.backends import load_backend

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def sim():
    sim = load_backend("brian2")
    sim.setup(timestep=0.1, seed=1)
    yield sim
    sim.end()


def test_homogeneous_parameters_are_shared_and_settable(sim):
    cells = sim.Population(4, sim.IF_cond_exp(tau_syn_E=5.0, tau_syn_I=7.0, tau_m=12.0, cm=0.3,
                                              v_rest=[-60.0, -61.0, -62.0, -63.0]))
    group = cells.brian2_group
    for name in ("tau_syn_e", "tau_syn_i", "tau_m", "c_m", "e_rev_e", "e_rev_i"):
        assert group.variables[name].scalar, name
    assert not group.variables["v_rest"].scalar  # per-neuron values stay per neuron
    np.testing.assert_allclose(cells.get("tau_syn_I"), 7.0)
    cells.set(tau_syn_I=9.0, v_rest=-55.0)
    np.testing.assert_allclose(cells.get("tau_syn_I"), 9.0)
    np.testing.assert_allclose(cells.get("v_rest"), -55.0)


def test_heterogeneous_value_for_a_shared_parameter_raises(sim):
    cells = sim.Population(3, sim.IF_cond_exp(tau_syn_E=5.0))
    with pytest.raises(ValueError, match="tau_syn_e"):
        cells.set(tau_syn_E=[5.0, 6.0, 7.0])
    np.testing.assert_allclose(cells.get("tau_syn_E"), 5.0)  # unchanged


def test_heterogeneous_values_at_creation_stay_per_neuron(sim):
    cells = sim.Population(3, sim.IF_cond_exp(tau_syn_E=[5.0, 6.0, 7.0]))
    assert not cells.brian2_group.variables["tau_syn_e"].scalar
    np.testing.assert_allclose(cells.get("tau_syn_E"), [5.0, 6.0, 7.0])
    cells.set(tau_syn_E=[8.0, 9.0, 10.0])
    np.testing.assert_allclose(cells.get("tau_syn_E"), [8.0, 9.0, 10.0])
