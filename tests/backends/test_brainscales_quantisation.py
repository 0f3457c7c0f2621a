"""Weight quantisation and fixed-pattern noise of the emulated chip as pure numpy (no simulator)."""

import numpy as np
import pytest

from cortexsim.backends.brainscales.chip_state import draw_fixed_pattern_noise
from cortexsim.backends.chips import CHIPS, max_weight_uS
from cortexsim.backends.brainscales.errors import ChipConstraintError, ChipLimitError
from cortexsim.backends.brainscales.quantisation import check_weight_range, quantise_rows, snap_to_rows


@pytest.mark.parametrize("chip", ["bss2", "bss1"])
def test_representable_weights_round_trip_exactly(chip):
    spec = CHIPS[chip]
    rng = np.random.default_rng(1)
    n_rows, per_row = 40, 30
    row_scale = rng.integers(1, spec.max_row_scale_int + 1, n_rows)
    integers = rng.integers(0, spec.max_weight_int + 1, (n_rows, per_row))
    integers[:, 0] = spec.max_weight_int            # every row uses its full range
    rows = np.repeat(np.arange(n_rows), per_row)
    weights = (integers * (row_scale[:, None] * spec.row_scale_unit_uS)).ravel()
    quantised, scale_found = quantise_rows(weights, rows, n_rows, spec)
    np.testing.assert_array_equal(quantised, weights)
    np.testing.assert_array_equal(scale_found, row_scale)
    np.testing.assert_array_equal(snap_to_rows(weights, rows, scale_found, spec), weights)


@pytest.mark.parametrize("chip", ["bss2", "bss1"])
def test_quantisation_is_idempotent_and_within_half_a_step(chip):
    spec = CHIPS[chip]
    rng = np.random.default_rng(2)
    rows = rng.integers(0, 10, 500)
    weights = rng.uniform(0, 0.05, 500)
    quantised, row_scale = quantise_rows(weights, rows, 10, spec)
    step = row_scale[rows] * spec.row_scale_unit_uS
    assert np.all(np.abs(quantised - weights) <= step / 2 + 1e-15)
    assert len(np.unique(np.round(quantised[rows == 0] / step[rows == 0]))) <= spec.max_weight_int + 1
    again, _ = quantise_rows(quantised, rows, 10, spec)
    np.testing.assert_array_equal(again, quantised)


def test_bss1_has_coarser_weights_than_bss2():
    weights = np.linspace(0.0, 0.01, 200)
    rows = np.zeros(200, dtype=int)
    error = {chip: np.abs(quantise_rows(weights, rows, 1, CHIPS[chip])[0] - weights).max() for chip in CHIPS}
    assert error["bss1"] > 3 * error["bss2"]        # 16 vs 64 levels per row


def test_weight_range_errors_name_limit_requested_and_allowed():
    spec = CHIPS["bss2"]
    too_large = 2 * max_weight_uS(spec)
    with pytest.raises(ChipLimitError, match=r"synaptic weight: requested .* allowed 0 \.\. 0\.98"):
        check_weight_range(np.array([0.1, too_large]), spec, clip=False)
    with pytest.raises(ChipConstraintError, match="sign"):
        check_weight_range(np.array([-0.1]), spec, clip=False)
    clipped, n_clipped = check_weight_range(np.array([0.1, too_large]), spec, clip=True)
    assert n_clipped == 1 and clipped[1] == max_weight_uS(spec) and clipped[0] == 0.1
    assert issubclass(ChipLimitError, ValueError)


def test_same_chip_seed_same_fixed_pattern_noise_other_seed_other_noise():
    spec = CHIPS["bss2"]
    first, again, other = (draw_fixed_pattern_noise(spec, seed) for seed in (7, 7, 8))
    for name in spec.fixed_pattern_noise:
        np.testing.assert_array_equal(first[name], again[name])
        assert not np.allclose(first[name], other[name])
    # magnitudes as in the chip data: sample sd within 5 sigma of the nominal one (512 draws,
    # truncated at 3 sd; relative sampling sd of a sd estimate ~ 1/sqrt(2 n) = 3 %)
    for name, (kind, sd) in spec.fixed_pattern_noise.items():
        deviation = first[name] if kind == "add" else first[name] - 1.0
        assert abs(deviation.std() / sd - 1.0) < 5 * (1 / np.sqrt(2 * spec.n_neurons)) + 0.02
    ideal = draw_fixed_pattern_noise(spec, 7, scale=0.0)
    assert all(np.all(ideal[n] == (0.0 if kind == "add" else 1.0))
               for n, (kind, _) in spec.fixed_pattern_noise.items())
    different_chip = draw_fixed_pattern_noise(CHIPS["bss1"], 7)
    assert not np.allclose(first["E_L"], different_chip["E_L"])
