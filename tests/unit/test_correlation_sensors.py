"""The correlation-sensor model of the emulated chip against literal pair enumerations."""

import math

import numpy as np
import pytest

from cortexsim.backends.correlation import (CorrelationSensors, SensorParameters, draw_sensor_mismatch,
                                                        pair_correlation)


def nearest_by_hand(pre, post, tau):
    """Causal: each post spike with the latest strictly earlier pre spike; acausal: the mirror image."""
    causal = sum(math.exp(-(t - max(p for p in pre if p < t)) / tau) for t in post if any(p < t for p in pre))
    acausal = sum(math.exp(-(p - max(t for t in post if t < p)) / tau) for p in pre if any(t < p for t in post))
    return causal, acausal


def nest_example_stdp(pre, post, amplitude, tau):
    """NEST 3.10's Pong example (``calculate_stdp``, next_neighbor=True), facilitation part, re-told as a loop."""
    pre, post = sorted(pre), sorted(post)
    facilitation, last = 0.0, None
    for t in post:
        position = sum(p < t for p in pre)        # searchsorted(pre, t, side="left")
        if position == last:
            continue
        if position > 0:
            facilitation += amplitude * math.exp(-(t - pre[position - 1]) / tau)
        last = position
    return facilitation


def test_nearest_pairing_matches_a_literal_enumeration():
    rng = np.random.default_rng(3)
    pre = [np.sort(rng.uniform(0, 100, 7)), np.sort(rng.uniform(0, 100, 3)), np.array([])]
    post = [np.sort(rng.uniform(0, 100, 5)), np.sort(rng.uniform(0, 100, 9))]
    tau = np.array([[4.0, 9.0], [2.5, 20.0], [5.0, 5.0]])          # per synapse, asymmetric
    causal, acausal = pair_correlation(pre, post, tau)
    for i in range(3):
        for j in range(2):
            c, a = nearest_by_hand(pre[i].tolist(), post[j].tolist(), tau[i, j])
            assert causal[i, j] == pytest.approx(c, rel=1e-12, abs=1e-15)
            assert acausal[i, j] == pytest.approx(a, rel=1e-12, abs=1e-15)


def test_first_pairing_is_the_next_neighbour_rule_of_nests_pong_example():
    rng = np.random.default_rng(5)
    pre = np.arange(20) * 10.0 + 1.0
    for _ in range(5):
        post = np.sort(rng.uniform(0, 210, rng.integers(0, 40)))
        causal, _ = pair_correlation([pre], [post], tau=64.0, pairing="first")
        assert 36.0 * causal[0, 0] == pytest.approx(nest_example_stdp(pre, post, 36.0, 64.0), rel=1e-12)
    # two posts after one pre: nearest counts both, first only the first
    assert pair_correlation([[0.0]], [[1.0, 2.0]], 1.0)[0][0, 0] == pytest.approx(math.exp(-1) + math.exp(-2))
    assert pair_correlation([[0.0]], [[1.0, 2.0]], 1.0, "first")[0][0, 0] == pytest.approx(math.exp(-1))


def test_simultaneous_spikes_do_not_pair():
    causal, acausal = pair_correlation([[5.0]], [[5.0]], tau=3.0)
    assert causal[0, 0] == 0 and acausal[0, 0] == 0


def test_sensors_fed_in_chunks_equal_the_whole_trains():
    """A run paused at timer events must not lose or double pairs across the pause."""
    rng = np.random.default_rng(11)
    pre = [np.sort(rng.uniform(0, 60, 12)) for _ in range(3)]
    post = [np.sort(rng.uniform(0, 60, 15)) for _ in range(4)]
    p = SensorParameters.ideal(amplitude=1.0, tau_us=5.0, saturation_lsb=255.0)
    amp = np.ones((3, 4, 2))
    whole = CorrelationSensors(p, amp, np.full((3, 4), 5.0), np.full((3, 4), 255.0), rng)
    whole.advance(pre, post)
    chunked = CorrelationSensors(p, amp, np.full((3, 4), 5.0), np.full((3, 4), 255.0), rng)
    for a, b in ((0, 13.7), (13.7, 31.0), (31.0, 60.1)):
        chunked.advance([t[(t >= a) & (t < b)] for t in pre], [t[(t >= a) & (t < b)] for t in post])
    np.testing.assert_allclose(chunked.accumulated, whole.accumulated, rtol=1e-12)
    causal, acausal = pair_correlation(pre, post, 5.0)
    np.testing.assert_allclose(whole.accumulated[..., 0], causal, rtol=1e-12)
    np.testing.assert_allclose(whole.accumulated[..., 1], acausal, rtol=1e-12)


def test_read_quantises_saturates_and_resets():
    p = SensorParameters.ideal(amplitude=2.0, tau_us=10.0, saturation_lsb=30.0)

    def sensor():
        return CorrelationSensors(p, np.array([[[2.0, 0.1]]]), np.full((1, 1), 10.0), np.full((1, 1), 30.0),
                                  np.random.default_rng(0))

    s = sensor()
    s.advance([np.array([0.0])], [np.array([2.0])])                  # 2 exp(-0.2) = 1.64 reads as 2
    assert s.read()[0][0, 0] == 2
    s = sensor()
    pre, post = np.arange(100) * 3.0 + 3.0, np.arange(100) * 3.0 + 4.0
    s.advance([pre], [post])
    causal, acausal = s.read()
    assert causal[0, 0] == 30                                        # 100 x 2 exp(-0.1) = 181: saturated
    expected = 0.1 * nearest_by_hand(pre.tolist(), post.tolist(), 10.0)[1]   # 99 x 0.1 exp(-0.2) = 8.1
    assert acausal[0, 0] == round(expected) == 8
    s.reset()
    assert s.read()[0][0, 0] == 0 and s.read()[1][0, 0] == 0


def test_readout_noise_has_the_stated_standard_deviation():
    p = SensorParameters(amplitude=1.0, readout_noise_lsb=2.0, amplitude_sd=0.0, tau_sd=0.0, saturation_sd_lsb=0.0)
    n = 4000
    s = CorrelationSensors(p, np.ones((n, 1, 2)), np.full((n, 1), 5.0), np.full((n, 1), 200.0),
                           np.random.default_rng(1))
    s.accumulated[:] = 100.0
    causal, _ = s.read()
    # rounding adds 1/12 LSB^2; the sd of the sample sd is about sd / sqrt(2 n) = 0.02
    assert np.std(causal) == pytest.approx(math.sqrt(4.0 + 1 / 12), abs=0.1)
    assert np.mean(causal) == pytest.approx(100.0, abs=0.15)


def test_mismatch_is_the_chips_own():
    p = SensorParameters()
    a = draw_sensor_mismatch(p, 3, (16, 8))
    b = draw_sensor_mismatch(p, 3, (16, 8))
    c = draw_sensor_mismatch(p, 4, (16, 8))
    np.testing.assert_array_equal(a["amplitude"], b["amplitude"])
    assert not np.allclose(a["amplitude"], c["amplitude"])
    big = draw_sensor_mismatch(p, 0, (256, 512))
    assert np.std(big["amplitude"] / p.amplitude) == pytest.approx(p.amplitude_sd, rel=0.05)
    assert np.std(big["tau"] / p.tau_us) == pytest.approx(p.tau_sd, rel=0.05)
    # causal and acausal branches of one synapse are drawn independently (calix: strong asymmetry)
    assert abs(np.corrcoef(big["amplitude"][..., 0].ravel(), big["amplitude"][..., 1].ravel())[0, 1]) < 0.02


@pytest.mark.parametrize("field, value", [("amplitude", 0.1), ("amplitude", 2.5), ("tau_us", 1.0), ("tau_us", 31.0),
                                          ("saturation_lsb", 300.0), ("readout_noise_lsb", -1.0),
                                          ("amplitude_sd", 0.5)])
def test_out_of_range_sensor_parameters_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        SensorParameters(**{field: value})


def test_bad_pairing_and_tau_are_refused():
    with pytest.raises(ValueError, match="pairing"):
        pair_correlation([[0.0]], [[1.0]], 1.0, pairing="all")
    with pytest.raises(ValueError, match="tau"):
        pair_correlation([[0.0]], [[1.0]], 0.0)
