"""Tests of the bistable target (cortexsim.models.multimodal), parallel tempering
(cortexsim.models.tempering) and the depression maths (cortexsim.models.short_term_depression)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cortexsim.analysis.divergence import dkl
from cortexsim.analysis.mixing import (effective_sample_size, integrated_autocorrelation_time, nearest_mode,
                                       pattern_overlap, switches_per_second)
from cortexsim.analysis.states import sample_distribution
from cortexsim.models.boltzmann import joint, states_to_indices
from cortexsim.models.boltzmann import all_states
from cortexsim.models.cd_learning import moments_from_distribution, tie_moments
from cortexsim.models.multimodal import bistable_barrier, bistable_bm, bistable_symmetry_orbits
from cortexsim.models.short_term_depression import (ShortTermDepression, depression_weight_factor,
                                                    steady_state_availability, tm_availability_trace)
from cortexsim.models.tempering import geometric_betas, parallel_tempering


def ising_energy(target, z):
    """Mattis energy in spins, written independently of the 0/1 form: -J/2 sum_{i!=j} sigma_i sigma_j s_i s_j."""
    sigma = 2.0 * target.patterns[0] - 1.0
    s = 2.0 * np.asarray(z, dtype=float) - 1.0
    m = sigma @ s
    return -target.coupling / 2.0 * (m**2 - s.size)


def test_bistable_bm_matches_the_mattis_model_by_enumeration():
    target = bistable_bm(6, 0.3, pattern=[1, 0, 1, 0, 1, 0])
    p = joint(target.bm)
    states = np.array(list(itertools.product([0, 1], repeat=6)))
    log_q = -np.array([ising_energy(target, z) for z in states])
    q = np.exp(log_q - log_q.max())
    np.testing.assert_allclose(p, q / q.sum(), rtol=1e-12)


def test_bistable_modes_are_the_two_most_probable_states_and_symmetric():
    target = bistable_bm(8, 0.5)
    p = joint(target.bm)
    top_two = np.sort(np.argsort(p)[-2:])
    np.testing.assert_array_equal(top_two, np.sort(states_to_indices(target.patterns)))
    np.testing.assert_allclose(p, p[::-1], rtol=1e-12)  # index of 1 - z is 2**n - 1 - index
    assert target.barrier() == pytest.approx(bistable_barrier(8, 0.5))  # enumeration vs closed form = 16


@pytest.mark.parametrize("n_units, pattern", [(6, None), (5, [1, 1, 0, 0, 0])])
def test_tied_moments_equal_the_moments_of_the_symmetrised_distribution(n_units, pattern):
    """Tying by the orbits equals averaging an arbitrary distribution over every unit permutation that
    leaves the target's (W, b) unchanged, found by brute force over all n! permutations."""
    target = bistable_bm(n_units, 0.3, pattern=pattern)
    W, b = target.bm.W, target.bm.b
    group = [perm for perm in itertools.permutations(range(n_units))
             if np.allclose(W[np.ix_(perm, perm)], W) and np.allclose(b[list(perm)], b)]
    assert len(group) == (72 if n_units == 6 else 12)       # S3 x S3 x swap; S2 x S3
    p = np.random.default_rng(4).dirichlet(np.ones(2 ** n_units))   # no symmetry at all
    states = all_states(n_units)
    p_sym = np.zeros_like(p)
    for perm in group:
        p_sym[states_to_indices(states[:, list(perm)])] += p / len(group)
    expected_mean, expected_second = moments_from_distribution(p_sym, n_units)
    mean, second = tie_moments(moments_from_distribution(p, n_units), *bistable_symmetry_orbits(target))
    np.testing.assert_allclose(mean, expected_mean, atol=1e-12)
    np.testing.assert_allclose(second, expected_second, atol=1e-12)


def test_tie_moments_bad_input():
    moments = (np.zeros(3), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="unit_orbits"):
        tie_moments(moments, [0, 0], np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="symmetric"):
        tie_moments(moments, [0, 0, 0], np.triu(np.ones((3, 3), int)))


def test_bistable_bad_input():
    with pytest.raises(ValueError, match="coupling"):
        bistable_bm(6, -1.0)
    with pytest.raises(ValueError, match="n_units"):
        bistable_bm(21, 0.5)
    with pytest.raises(ValueError, match="pattern"):
        bistable_bm(4, 0.5, pattern=[1, 0, 2, 0])


def test_parallel_tempering_samples_the_exact_distribution():
    target = bistable_bm(6, 0.6)  # barrier 10.8: plain Gibbs would sit in one mode
    p = joint(target.bm)
    result = parallel_tempering(target.bm, geometric_betas(5, 0.1), 40_000, seed=11)
    sampled = sample_distribution(result.samples)
    overlap = pattern_overlap(result.samples, target.patterns[0])
    n_eff = effective_sample_size(overlap)
    # Expected D_KL of a multinomial histogram from n_eff independent draws: (K - 1) / (2 n_eff); a
    # wrong swap rule or temperature would bias the beta = 1 chain far beyond 5x that.
    assert dkl(sampled, p) < 5 * (p.size - 1) / (2 * n_eff)
    # Both modes equally often, within 4 sd of a binomial with n_eff draws.
    in_mode = nearest_mode(result.samples, target.patterns, 0)
    share = np.mean(in_mode == 0) / np.mean(in_mode >= 0)
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / n_eff)
    assert np.all(result.swap_acceptance > 0.05)


def test_tempering_mixes_where_single_temperature_gibbs_does_not():
    target = bistable_bm(6, 0.6)
    cold = parallel_tempering(target.bm, [1.0], 20_000, seed=12)
    hot = parallel_tempering(target.bm, geometric_betas(5, 0.1), 20_000, seed=12)
    modes_cold = nearest_mode(cold.samples, target.patterns, 1)
    modes_hot = nearest_mode(hot.samples, target.patterns, 1)
    # Gibbs has to climb the barrier of 10.8 (a handful of crossings in 2e4 sweeps); tempering goes
    # around it (hundreds). A swap rule that never swaps, or swaps the wrong way, leaves them equal.
    cold_switches = switches_per_second(modes_cold, 1.0) * 20.0
    hot_switches = switches_per_second(modes_hot, 1.0) * 20.0
    assert hot_switches > 20 * max(cold_switches, 1.0)
    tau_hot = integrated_autocorrelation_time(pattern_overlap(hot.samples, target.patterns[0]))
    assert tau_hot < 50


def test_tempering_cpu_budget_and_bad_input():
    target = bistable_bm(4, 0.5)
    result = parallel_tempering(target.bm, geometric_betas(3, 0.3), None, seed=1, cpu_budget_s=0.05)
    assert result.cpu_time_s >= 0.05 and result.samples.shape[0] >= 256
    with pytest.raises(ValueError, match="betas"):
        parallel_tempering(target.bm, [0.5, 1.0], 10, seed=1)
    with pytest.raises(ValueError, match="cpu_budget_s"):
        parallel_tempering(target.bm, [1.0], None, seed=1)


def test_steady_state_availability_is_the_fixed_point_of_the_synapse():
    depression = ShortTermDepression(U=0.07, tau_rec_ms=300.0)
    x = tm_availability_trace(np.arange(0, 20_000, 12.0), depression)  # regular spikes every 12 ms
    assert x[0] == 1.0
    assert x[-1] == pytest.approx(steady_state_availability(depression, 12.0), rel=1e-9)


def test_depression_weight_factor_equates_mean_conductance_with_renewing_synapses():
    # Mean conductance over a long regular train at interval tau_ref, integrated numerically:
    # renewing synapse (U = 1, tau_rec = tau_syn) vs the depressing one with the corrected weight.
    tau_ref, tau_syn, dt = 10.0, 8.0, 0.02
    depression = ShortTermDepression(U=0.1, tau_rec_ms=400.0)
    factor = depression_weight_factor(depression, tau_ref, tau_syn)
    spikes = np.arange(0.0, 6000.0, tau_ref)
    t = np.arange(0.0, 6000.0, dt)

    def conductance(jumps):
        g, out, k = 0.0, np.empty(t.size), 0
        for i, now in enumerate(t):
            g *= np.exp(-dt / tau_syn)
            while k < spikes.size and spikes[k] <= now:
                g += jumps[k]
                k += 1
            out[i] = g
        return out

    renew = tm_availability_trace(spikes, ShortTermDepression(U=1.0, tau_rec_ms=tau_syn))
    depress = factor * depression.U * tm_availability_trace(spikes, depression)
    late = t > 4000.0
    assert conductance(depress)[late].mean() == pytest.approx(conductance(renew)[late].mean(), rel=0.01)
