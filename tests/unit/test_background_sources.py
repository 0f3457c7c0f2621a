"""Pure parts of models.ensemble: background connectivity, kick times, matched weights, size checks."""

import numpy as np
import pytest

from cortexsim.models.ensemble import (DEFAULT_BACKGROUND, EnsembleBackground, check_ensemble_size,
                                       draw_background_sources, equivalent_noise, kick_spike_times,
                                       matched_background)
from cortexsim.models.ensemble_background import source_units
from cortexsim.parameters import DEFAULT_NOISE


def test_sources_come_from_other_networks_distinct_and_seeded():
    M, N, K = 7, 4, 5
    exc, inh = draw_background_sources(M, N, K, seed=3)
    assert exc.shape == inh.shape == (M * N, K)
    both = np.hstack([exc, inh])
    for target, row in enumerate(both):
        assert len(set(row)) == 2 * K  # 2K distinct sources, none both excitatory and inhibitory
        assert np.all(row // N != target // N)  # never from the target's own network
        assert np.all((row >= 0) & (row < M * N))
    again = draw_background_sources(M, N, K, seed=3)
    assert np.array_equal(again[0], exc) and np.array_equal(again[1], inh)
    assert not np.array_equal(draw_background_sources(M, N, K, seed=4)[0], exc)


def test_sources_cover_all_other_networks():
    exc, inh = draw_background_sources(3, 5, 5, seed=1)  # 2K = 10 = all other neurons
    for target, row in enumerate(np.hstack([exc, inh])):
        own = target // 5
        assert set(row) == set(range(15)) - set(range(own * 5, own * 5 + 5))


@pytest.mark.parametrize("M, N, K, message", [(1, 5, 1, "at least M = 2"), (3, 5, 6, "2K = 12"),
                                             (2, 5, 3, "only \\(M - 1\\) \\* S")])
def test_too_few_sources_raise(M, N, K, message):
    with pytest.raises(ValueError, match=message):
        check_ensemble_size(M, N, K, "ensemble")
    with pytest.raises(ValueError, match=message):
        draw_background_sources(M, N, K, seed=0)
    check_ensemble_size(M, N, K, "poisson")  # Poisson mode needs no sources


def test_kick_times_are_seeded_on_grid_and_inside_window():
    times = kick_spike_times(50, 20.0, 200.0, 0.1, seed=9)
    again = kick_spike_times(50, 20.0, 200.0, 0.1, seed=9)
    assert all(np.array_equal(a, b) for a, b in zip(times, again))
    flat = np.concatenate(times)
    assert flat.min() > 1.0 and flat.max() <= 21.0 + 1e-9
    assert np.allclose(np.round((flat - 1.0) / 0.1), (flat - 1.0) / 0.1)
    # 50 x 200 steps with p = 0.02: 200 expected spikes, std 14; 5 sigma.
    assert abs(flat.size - 200) < 70
    assert all(t.size == 0 for t in kick_spike_times(3, 0.0, 200.0, 0.1, seed=1))


def test_matched_weights_and_equivalent_noise_keep_the_mean_conductance():
    bg = matched_background(DEFAULT_NOISE, 30, 50.0, synapse="static")
    assert bg.weight_exc == pytest.approx(3000 * 0.001 / (30 * 50))
    assert DEFAULT_BACKGROUND == matched_background(DEFAULT_NOISE, 30, 50.0, delay_max_ms=10.0, synapse="depressing",
                                                    tau_rec_ms=40.0)
    eq = equivalent_noise(bg, "ensemble", DEFAULT_NOISE)
    assert eq.rate_exc * eq.weight_exc == pytest.approx(DEFAULT_NOISE.rate_exc * DEFAULT_NOISE.weight_exc)
    mix = equivalent_noise(bg, "mixture", DEFAULT_NOISE)
    assert mix.rate_inh * mix.weight_inh == pytest.approx(DEFAULT_NOISE.rate_inh * DEFAULT_NOISE.weight_inh)
    assert equivalent_noise(bg, "poisson", DEFAULT_NOISE) == DEFAULT_NOISE
    measured = equivalent_noise(bg, "ensemble", DEFAULT_NOISE, source_rate_hz=60.0)
    assert measured.rate_exc == pytest.approx(30 * 60.0)
    with pytest.raises(ValueError, match="mode"):
        equivalent_noise(bg, "gaussian", DEFAULT_NOISE)


def test_depressing_weights_compensate_the_mean_release_fraction():
    # U = 1: a spike after an exponential ISI of rate nu releases 1 - exp(-ISI / tau_rec) of the
    # weight; its mean is 1 / (1 + nu tau_rec) = 1 / (1 + 0.05 * 40) = 1 / 3 at 50 Hz and 40 ms.
    bg = matched_background(DEFAULT_NOISE, 30, 50.0, synapse="depressing", tau_rec_ms=40.0)
    assert bg.release_fraction(50.0) == pytest.approx(1.0 / 3.0)
    rng = np.random.default_rng(0)
    isi = rng.exponential(1000.0 / 50.0, 200_000)
    assert np.mean(1.0 - np.exp(-isi / 40.0)) == pytest.approx(1.0 / 3.0, abs=0.005)  # 5 sigma of 2e5 draws
    assert bg.weight_exc == pytest.approx(3.0 * 3000 * 0.001 / (30 * 50))
    eq = equivalent_noise(bg, "ensemble", DEFAULT_NOISE)  # full-weight events: K nu / 3
    assert eq.rate_exc * eq.weight_exc == pytest.approx(DEFAULT_NOISE.rate_exc * DEFAULT_NOISE.weight_exc)
    assert matched_background(DEFAULT_NOISE, 30, 50.0, synapse="static").release_fraction(50.0) == 1.0
    with pytest.raises(ValueError, match="synapse"):
        EnsembleBackground(synapse="facilitating")
    with pytest.raises(ValueError, match="tau_rec_ms"):
        EnsembleBackground(tau_rec_ms=0.0)


@pytest.mark.parametrize("field, value", [("in_degree", 0), ("in_degree", 2.5), ("weight_exc", -1.0),
                                          ("poisson_fraction", 1.0), ("delay_ms", 0.0), ("design_rate_hz", 0.0)])
def test_bad_background_parameters_raise(field, value):
    with pytest.raises(ValueError, match=field):
        EnsembleBackground(**{field: value})


def test_bad_delay_range_raises():
    with pytest.raises(ValueError, match="delay_max_ms"):
        EnsembleBackground(delay_ms=2.0, delay_max_ms=1.0)


def test_disjoint_sources_are_not_shared_within_a_network_and_are_seeded():
    M, N, K = 11, 3, 5  # 2K = 10 = M - 1: the tightest disjoint case
    exc, inh = draw_background_sources(M, N, K, seed=2, source_sharing="disjoint")
    both = np.hstack([exc, inh])
    for m in range(M):
        block = both[m * N:(m + 1) * N]
        assert len(set(block.reshape(-1))) == N * 2 * K  # no source used twice within one network
        assert np.all(block // N != m)
    again = draw_background_sources(M, N, K, seed=2, source_sharing="disjoint")
    assert np.array_equal(again[0], exc) and np.array_equal(again[1], inh)
    # the random mode's connectivity is unchanged by the option (same draw as without it)
    assert np.array_equal(draw_background_sources(M, N, K, seed=2)[0],
                          draw_background_sources(M, N, K, seed=2, source_sharing="random")[0])


def test_disjoint_sources_need_2k_at_most_m_minus_1():
    with pytest.raises(ValueError, match="source_sharing='disjoint'.*K <= 5"):
        check_ensemble_size(11, 3, 6, "ensemble", "disjoint")  # 2K = 12 > 10
    with pytest.raises(ValueError, match="source_sharing='disjoint'"):
        draw_background_sources(11, 3, 6, seed=0, source_sharing="disjoint")
    check_ensemble_size(11, 3, 6, "ensemble", "random")  # random sharing only needs 2K <= (M - 1) N
    with pytest.raises(ValueError, match="source_sharing"):
        EnsembleBackground(source_sharing="shared")
    with pytest.raises(ValueError, match="source_sharing"):
        check_ensemble_size(11, 3, 2, "ensemble", "shared")


def _previous_draw(M, N, K, seed, sharing):
    """The connectivity rule before ``first_source_unit`` existed (index arithmetic, not a candidate list)."""
    rng = np.random.default_rng(seed)
    drawn = np.empty((M * N, 2 * K), dtype=np.int64)
    if sharing == "disjoint":
        for m in range(M):
            c = rng.choice(M * N - N, size=N * 2 * K, replace=False)
            drawn[m * N:(m + 1) * N] = np.where(c >= m * N, c + N, c).reshape(N, 2 * K)
    else:
        for target in range(M * N):
            c = rng.choice(M * N - N, size=2 * K, replace=False)
            drawn[target] = np.where(c >= (target // N) * N, c + N, c)
    return drawn[:, :K], drawn[:, K:]


@pytest.mark.parametrize("M, N, K, sharing", [(7, 4, 5, "random"), (11, 3, 5, "disjoint"), (10, 17, 6, "random")])
def test_all_units_as_sources_draw_the_connectivity_of_earlier_runs(M, N, K, sharing):
    # catches: a changed draw for first_source_unit 0 (finished runs would no longer be rebuilt identically)
    for seed in (0, 5):
        old, new = _previous_draw(M, N, K, seed, sharing), draw_background_sources(M, N, K, seed, sharing, 0)
        assert np.array_equal(old[0], new[0]) and np.array_equal(old[1], new[1])


def test_hidden_sources_only_come_from_units_past_the_first_source_unit_of_other_networks():
    M, N, K, first = 6, 7, 4, 3       # 4 source units per network, 20 candidates per target
    exc, inh = draw_background_sources(M, N, K, seed=1, first_source_unit=first)
    both = np.hstack([exc, inh])
    assert np.all(both % N >= first)                              # never a unit below first_source_unit
    assert np.all(both // N != (np.arange(M * N) // N)[:, None])   # never the own network
    assert all(len(set(row)) == 2 * K for row in both)
    np.testing.assert_array_equal(source_units(M, N, first), [m * N + k for m in range(M) for k in range(first, N)])
    # every candidate is used: 2K = 8 of 20 per target, 42 targets -> each candidate drawn ~ 8 * 42 * 6/5 / 24 times
    counts = np.bincount(both.reshape(-1), minlength=M * N)
    assert np.all(counts[source_units(M, N, first)] > 0) and counts.sum() == both.size
    tight = np.hstack(draw_background_sources(3, 5, 2, seed=0, first_source_unit=3))   # 2K = 4 = all candidates
    for target, row in enumerate(tight):
        own = target // 5
        assert set(row) == {m * 5 + k for m in range(3) if m != own for k in (3, 4)}
    disjoint = np.hstack(draw_background_sources(9, 2, 2, seed=3, source_sharing="disjoint", first_source_unit=1))
    for m in range(9):            # N * 2K = 8 = (M - 1) * 1 source per network: all of them, none twice
        assert sorted(disjoint[2 * m:2 * m + 2].reshape(-1)) == [2 * j + 1 for j in range(9) if j != m]


def test_too_few_source_units_or_a_bad_first_source_unit_raise():
    with pytest.raises(ValueError, match="only \\(M - 1\\) \\* S = \\(3 - 1\\) \\* 2 = 4"):
        check_ensemble_size(3, 5, 3, "ensemble", first_source_unit=3)          # 2K = 6 > 4
    check_ensemble_size(3, 5, 2, "ensemble", first_source_unit=3)
    check_ensemble_size(9, 2, 2, "ensemble", "disjoint", first_source_unit=1)     # N * 2K = 4 * 2 <= 8 * 1
    with pytest.raises(ValueError, match="source_sharing='disjoint'.*only \\(M - 1\\) \\* S = 8"):
        check_ensemble_size(9, 3, 2, "ensemble", "disjoint", first_source_unit=2)   # N * 2K = 12 > 8 * 1
    for bad in (5, 7, -1):
        with pytest.raises(ValueError, match="first_source_unit must be in 0 .. N - 1 = 4"):
            check_ensemble_size(3, 5, 1, "ensemble", first_source_unit=bad)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="first_source_unit"):
            EnsembleBackground(first_source_unit=bad)
