"""Per-neuron background offsets of an ensemble (``background_tracking="translation_units"``), pure numpy.

References are independent of the code under test: the released weight of depressing synapses from the
spike times themselves (``1 - exp(-ISI / tau_rec)`` per spike, U = 1), and the free-membrane mean of
:func:`cortexsim.models.lif_translation.free_membrane` with each neuron's own Poisson-equivalent background.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cortexsim.analysis.states import states_on_grid_from_arrays
from cortexsim.models.ensemble_background import DEFAULT_BACKGROUND, SourceEfficacy, unit_leak_offsets
from cortexsim.models.lif_translation import free_membrane
from cortexsim.parameters import DEFAULT_NEURON, NoiseParameters

TAU_REF, DT = 10.0, 0.5


def _trains(rng, n, duration_ms):
    """Spike times on the grid with ISIs >= tau_ref; neuron 0 fires a regular train at 1 / tau_ref (its on-periods
    merge into one: the states alone do not show where its spikes are), neuron 1 never fires."""
    trains = [np.arange(3.0, duration_ms - TAU_REF, TAU_REF), np.zeros(0)]
    for _ in range(n - 2):
        isi = TAU_REF + DT * rng.integers(0, 120, 400)          # 10 .. 70 ms, many at exactly tau_ref
        isi[rng.random(isi.size) < 0.3] = TAU_REF
        times = 1.0 + DT * rng.integers(0, 40) + np.cumsum(isi) - isi[0]
        trains.append(times[times < duration_ms - TAU_REF])
    return trains


@pytest.mark.parametrize("tau_rec", [40.0, 7.0, None])
def test_source_efficacy_equals_the_release_of_the_spike_trains(tau_rec):
    """Catches: consecutive spikes of a regular train counted as one, the recovery run in the wrong direction or
    with the wrong time step, the trains restarted between two add() calls, the rate divided by a wrong duration."""
    rng = np.random.default_rng(3)
    duration = 3000.0
    trains = _trains(rng, 12, duration)
    times = np.concatenate(trains)
    indices = np.concatenate([np.full(t.size, i) for i, t in enumerate(trains)])
    states = states_on_grid_from_arrays(times, indices, len(trains), TAU_REF, 0.0, duration, DT)
    efficacy = SourceEfficacy(len(trains), TAU_REF, DT, tau_rec)
    cut = 2345                                                   # two calls, the cut inside on-periods
    efficacy.add(states[:cut])
    efficacy.add(states[cut:])
    expected = []
    for t in trains:
        if tau_rec is None:
            expected.append(t.size)
        else:
            isi = np.diff(t)
            expected.append(float(t.size > 0) + np.sum(1.0 - np.exp(-isi / tau_rec)))
    np.testing.assert_allclose(efficacy.per_second(), np.array(expected) / (duration * 1e-3), rtol=1e-9, atol=1e-12)


def test_source_efficacy_refuses_bad_settings():
    with pytest.raises(ValueError, match="tau_refrac_ms"):
        SourceEfficacy(3, 10.25, 0.5, 40.0)
    with pytest.raises(ValueError, match="states must be"):
        SourceEfficacy(3, 10.0, 0.5, 40.0).add(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="no states"):
        SourceEfficacy(3, 10.0, 0.5, 40.0).per_second()


def test_leak_offsets_give_every_neuron_the_average_free_membrane_mean():
    """Each neuron i with its leak moved must have the free-membrane mean (references §1) that the average
    background gives at its unmoved leak. Excitatory and inhibitory weights and synaptic time constants differ,
    so a swapped receptor, a missing tau_syn or a sign error fails."""
    rng = np.random.default_rng(5)
    neuron = replace(DEFAULT_NEURON, tau_syn_E=6.0, tau_syn_I=14.0)
    background = replace(DEFAULT_BACKGROUND, weight_exc=0.006, weight_inh=0.0035)
    n, K = 40, 30
    exc, inh = rng.integers(0, n, (n, K)), rng.integers(0, n, (n, K))
    efficacy = rng.gamma(1.5, 12.0, n)
    efficacy[:5] = 0.0                                           # silent sources
    e_leak = rng.uniform(-53.0, -48.0, n)
    offsets = unit_leak_offsets(neuron, background, exc, inh, e_leak, efficacy)
    own = [NoiseParameters(rate_exc=float(efficacy[exc[i]].sum()), rate_inh=float(efficacy[inh[i]].sum()),
                           weight_exc=background.weight_exc, weight_inh=background.weight_inh) for i in range(n)]
    average = NoiseParameters(rate_exc=float(np.mean([o.rate_exc for o in own])),
                              rate_inh=float(np.mean([o.rate_inh for o in own])),
                              weight_exc=background.weight_exc, weight_inh=background.weight_inh)
    for i in range(n):
        assert free_membrane(neuron, own[i], e_leak[i] + offsets[i])[0] == pytest.approx(
            free_membrane(neuron, average, e_leak[i])[0], abs=1e-9)
    assert np.std(offsets) > 0.1                                 # the test has offsets to get right (mV)
    same = unit_leak_offsets(neuron, background, exc, inh, e_leak, np.full(n, 17.0))
    np.testing.assert_allclose(same, 0.0, atol=1e-12)            # equal sources: nothing to correct
    with pytest.raises(ValueError, match="efficacy_hz"):
        unit_leak_offsets(neuron, background, exc, inh, e_leak, -efficacy)
    with pytest.raises(ValueError, match="sources_exc"):
        unit_leak_offsets(neuron, background, exc[:, :3], inh, e_leak, efficacy)


def _greedy_release(states, steps_refractory, dt, tau_rec, cuts):
    """Reference: the rule neuron by neuron in plain Python (a spike at an on-step at least the refractory steps
    after the previous spike; depressing release 1 - (1 - R) decayed per step, R = 0 after a spike)."""
    T, n = states.shape
    released = np.zeros(n)
    for i in range(n):
        since, R = 10 ** 9, 1.0
        for t in range(T):
            since += 1
            R = 1.0 if tau_rec is None else 1.0 - (1.0 - R) * np.exp(-dt / tau_rec)
            if states[t, i] and since >= steps_refractory:
                released[i] += R
                R, since = 0.0, 0
    return released


@pytest.mark.parametrize("tau_rec", [40.0, None])
def test_source_efficacy_follows_the_step_rule_on_arbitrary_states(tau_rec):
    """Vectorised over on-periods: against the rule step by step on states that are NOT all made from spikes a
    refractory period apart (on-periods of random lengths and gaps, some shorter than the refractory period, some
    longer, a few neurons always on or never on), added in several calls cut inside on-periods. Catches: a spike
    missed at an on-period continuing the previous call, on-periods closer than the refractory period taken as
    new spikes, the recovery restarted at a cut, long on-periods counted as one spike."""
    rng = np.random.default_rng(8)
    T, n, r = 3000, 40, 7
    states = np.zeros((T, n), dtype=np.uint8)
    for i in range(n - 2):
        t = int(rng.integers(0, 30))
        while t < T:
            length = int(rng.integers(1, 3 * r)) if i % 3 else r * int(rng.integers(1, 4))
            states[t:t + length, i] = 1
            t += length + int(rng.integers(1, 2 * r if i % 2 else 40))
    states[:, n - 2] = 1                                       # always on; neuron n - 1 never on
    efficacy = SourceEfficacy(n, tau_refrac_ms=r * 0.5, dt_ms=0.5, tau_rec_ms=tau_rec)
    cuts = [0, 1, 700, 703, 2100, T]
    for a, b in zip(cuts[:-1], cuts[1:]):
        efficacy.add(states[a:b])
    expected = _greedy_release(states, r, 0.5, tau_rec, cuts)
    np.testing.assert_allclose(efficacy.per_second() * T * 0.5e-3, expected, rtol=1e-12, atol=1e-12)
    assert expected[n - 2] > 1 and expected[n - 1] == 0
