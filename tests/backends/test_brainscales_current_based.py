"""Current-based neurons (IF_curr_exp) on the emulated bss2 chip: PyNN semantics, limits, noise, calibration.

References: PyNN's own NEST module (the same script on ``pyNN.nest``) for the ideal chip; the chip's
fixed-pattern-noise draw (:func:`draw_fixed_pattern_noise`, the definition of a chip) for the noisy
one, against time constants measured from membrane traces.
"""

import numpy as np
import pytest

sim = pytest.importorskip("cortexsim.backends.brainscales")
import pyNN.nest as pynn_nest  # noqa: E402
from pyNN.errors import ConnectionError as PyNNConnectionError  # noqa: E402

from cortexsim.backends.brainscales import ChipLimitError, UnsupportedFeatureError  # noqa: E402
from cortexsim.backends.brainscales.chip_state import draw_fixed_pattern_noise  # noqa: E402

# asymmetric on purpose: tau_syn_E != tau_syn_I != tau_m, exc and inh weights of different size
CELL = dict(cm=0.2, tau_m=10.0, tau_syn_E=3.0, tau_syn_I=6.0, tau_refrac=2.0, v_rest=-65.0,
            v_reset=-70.0, v_thresh=-55.0)


def _two_input_trace(backend, **setup):
    backend.setup(timestep=0.1, **setup)
    source = backend.Population(1, backend.SpikeSourceArray(spike_times=[5.0, 10.0, 15.0, 40.0]))
    cells = backend.Population(3, backend.IF_curr_exp(**CELL))
    backend.Projection(source, cells, backend.AllToAllConnector(), backend.StaticSynapse(weight=1.5),
                       receptor_type="excitatory")
    backend.Projection(source, cells, backend.AllToAllConnector(), backend.StaticSynapse(weight=-0.5),
                       receptor_type="inhibitory")
    cells.record(["v", "spikes"])
    backend.run(80.0)
    segment = cells.get_data().segments[0]
    return segment.filter(name="v")[0].magnitude, [len(t) for t in segment.spiketrains]


def test_ideal_chip_runs_if_curr_exp_exactly_like_pynn_nest():
    v_chip, spikes_chip = _two_input_trace(sim, chip="bss2", fixed_pattern_noise=False, quantize_weights=False)
    v_nest, spikes_nest = _two_input_trace(pynn_nest)
    np.testing.assert_allclose(v_chip, v_nest, atol=1e-9)
    assert spikes_chip == spikes_nest
    assert v_nest.max() > -60.0 and v_nest.min() < -66.0     # both receptors had a visible effect


def test_current_based_weights_are_nA_with_their_own_range_sign_and_quantisation():
    sim.setup(chip="bss2", seed=1)
    spec = sim.CHIPS["bss2"]
    source = sim.Population(4, sim.SpikeSourceArray(spike_times=[1.0]))
    cells = sim.Population(3, sim.IF_curr_exp(**CELL))
    w_max = sim.max_weight(spec, conductance_based=False)
    assert w_max == pytest.approx(63 * 1023 * 2.0 ** -14)
    with pytest.raises(ChipLimitError, match=r"synaptic weight: requested 5 nA, allowed 0 \.\. 3\.93.* nA"):
        sim.Projection(source, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=5.0))
    with pytest.raises(PyNNConnectionError, match="negative"):   # PyNN's own rule for current-based cells
        sim.Projection(source, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5),
                       receptor_type="inhibitory")
    inhibitory = sim.Projection(source, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=-0.5),
                                receptor_type="inhibitory")
    got = inhibitory.get("weight", format="array")
    step = np.ceil(0.5 / (63 * spec.row_scale_unit_nA)) * spec.row_scale_unit_nA    # the row scale
    np.testing.assert_allclose(got, -np.round(0.5 / step) * step)
    assert np.all(got < 0) and not np.allclose(got, -0.5)
    inhibitory.set(weight=-0.25)
    assert np.all(inhibitory.get("weight", format="array") < 0)
    inhibitory[0].weight = -1.0
    assert inhibitory[0].weight == pytest.approx(-1.0, abs=1.0 / 63)
    report = sim.get_hardware_report()["quantisation"]
    assert 0 < report["mean_abs_error_nA"] < w_max / 63 and report["mean_abs_error_uS"] == 0.0
    sim.setup(chip="bss1", seed=1)
    with pytest.raises(UnsupportedFeatureError, match="cell type: requested IF_curr_exp"):
        sim.Population(2, sim.IF_curr_exp())


def _decay_time_constants(**setup) -> np.ndarray:
    """Membrane time constant of 30 circuits, fitted to the free decay from -50 mV to the leak."""
    sim.setup(chip="bss2", timestep=0.05, seed=2, chip_seed=0, **setup)
    cells = sim.Population(30, sim.IF_curr_exp(**dict(CELL, v_thresh=-30.0)))
    cells.initialize(v=-50.0)
    cells.record("v")
    sim.run(150.0)
    signal = cells.get_data().segments[0].filter(name="v")[0]
    v, t = signal.magnitude, signal.times.magnitude
    v_inf = v[-1]
    window = (t > 1.0) & (t < 25.0)
    slopes = np.polyfit(t[window], np.log(v[window] - v_inf), 1)[0]
    return -1.0 / slopes


def test_fixed_pattern_noise_sets_each_circuits_time_constant_and_calibration_removes_it():
    tau = _decay_time_constants()
    deviations = draw_fixed_pattern_noise(sim.CHIPS["bss2"], seed=0)
    expected = CELL["tau_m"] * deviations["C_m"][:30] / deviations["g_L"][:30]
    np.testing.assert_allclose(tau, expected, rtol=0.01)      # fit of an exact exponential
    assert np.std(tau) / np.mean(tau) > 0.08                  # ~14 % spread on this chip
    calibrated = _decay_time_constants(calibration="auto")
    # residual: two 1 % correction steps (C_m and g_L) plus the calibration's fit error
    assert np.std(calibrated) / np.mean(calibrated) < 0.015
    np.testing.assert_allclose(calibrated, CELL["tau_m"], rtol=0.04)
