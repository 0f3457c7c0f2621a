"""Read-outs of image RBMs: occlusion masks, completion error, the ensemble's votes (hand-computed)."""

import numpy as np
import pytest

from cortexsim.models.rbm_readout import (completion_error, majority_vote, occlusion_mask, predicted_labels,
                                          vote_completion)
from cortexsim.protocols.ensemble_data import ensemble_training_data, image_rotation


def test_majority_vote_against_hand_computed_votes():
    # 4 networks x 3 images x 3 labels.
    a = np.zeros((4, 3, 3))
    # image 0: networks vote 0, 0, 2, 2 -> tie 0 vs 2; summed activity: label 0 1.0+0.6, label 2 0.9+0.9 -> 2
    a[:, 0] = [[1.0, 0.0, 0.1], [0.6, 0.0, 0.5], [0.0, 0.1, 0.9], [0.1, 0.0, 0.9]]
    # image 1: votes 1, 1, 1, 0; the single 0-voter is very active, so summed activity favours 0: the
    # plurality (1) must win, not the soft vote (label 0: 4.0 vs label 1: 1.2)
    a[:, 1] = [[0.3, 0.4, 0.0], [0.3, 0.4, 0.0], [0.3, 0.4, 0.0], [3.1, 0.0, 0.0]]
    # image 2: votes 2, 1, 0, 2 -> 2
    a[:, 2] = [[0.0, 0.1, 0.2], [0.0, 0.3, 0.1], [0.5, 0.0, 0.0], [0.0, 0.0, 0.4]]
    assert majority_vote(a).tolist() == [2, 1, 2]
    assert predicted_labels(a)[:, 1].tolist() == [1, 1, 1, 0]


def test_vote_completion_needs_more_than_half_of_the_networks():
    on = np.array([[[0.9, 0.2, 0.6]], [[0.8, 0.7, 0.4]], [[0.1, 0.9, 0.51]], [[0.2, 0.1, 0.3]]])
    # pixel 0: 2 of 4 on -> off (tie is not a majority); pixel 1: 2 of 4 -> off; pixel 2: 2 of 4 -> off
    assert vote_completion(on).tolist() == [[0.0, 0.0, 0.0]]
    # three networks: 2 of 3 on -> on; 0.5 exactly is not on
    on3 = np.array([[[0.9, 0.5]], [[0.8, 0.5]], [[0.1, 0.9]]])
    assert vote_completion(on3).tolist() == [[1.0, 0.0]]


def test_occlusion_masks_half_quarter_and_random():
    half = occlusion_mask("half", 2, 8)
    assert half.shape == (2, 64)
    assert np.array_equal(np.flatnonzero(half[0]), np.arange(32, 64)) and np.array_equal(half[0], half[1])
    quarter = occlusion_mask("quarter", 1, 8)[0]
    rows, cols = np.divmod(np.arange(64), 8)
    assert np.array_equal(quarter, (rows >= 4) & (cols >= 4))
    assert np.array_equal(np.flatnonzero(occlusion_mask("half", 1, 14)[0]), np.arange(98, 196))
    random = occlusion_mask("random30", 50, 8, np.random.default_rng(1))
    assert np.all(random.sum(axis=1) == 19)                       # round(0.3 * 64)
    assert len({tuple(np.flatnonzero(r)) for r in random}) == 50   # drawn per image
    # every pixel is hidden in about 30 % of 2000 images (binomial SD 1 %: 5 SD bounds)
    many = occlusion_mask("random30", 2000, 8, np.random.default_rng(2)).mean(axis=0)
    assert np.all(np.abs(many - 19 / 64) < 0.055)
    assert np.array_equal(random, occlusion_mask("random30", 50, 8, np.random.default_rng(1)))
    with pytest.raises(ValueError, match="occlusion"):
        occlusion_mask("third", 1, 8)
    with pytest.raises(ValueError, match="rng"):
        occlusion_mask("random30", 1, 8)


def test_completion_error_scores_only_hidden_pixels():
    truth = np.array([[1, 0, 1, 0], [0, 0, 1, 1]], dtype=float)
    hidden = np.array([[False, True, True, False], [True, True, False, False]])
    on = np.array([[0.0, 0.9, 0.6, 1.0],       # visible pixels wrong (not scored); hidden: 1 wrong, 1 right
                   [0.5, 0.2, 0.0, 0.0]])      # 0.5 is not on: right; 0.2 right
    assert completion_error(on, truth, hidden) == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="hides no pixel"):
        completion_error(on, truth, np.zeros_like(hidden))


def test_image_rotation_shows_every_network_every_image_once():
    order = image_rotation(7, 3)
    assert order[:, 0].tolist() == [0, 2, 4]          # offsets m n // M
    for row in order:
        assert sorted(row.tolist()) == list(range(7))
    assert np.all(order[0] != order[1]) and np.all(order[1] != order[2])


def test_networks_see_different_images_in_training():
    data = np.repeat(np.arange(6)[:, None], 74, axis=1) % 2 + 0.0
    data[:, 0] = np.arange(6) / 10.0          # an id per row in the first column (not binary: for the test)
    rows = ensemble_training_data(data, 3, seed=5)
    ids = rows[:, [0, 74, 148]]
    for m in range(3):
        assert sorted(ids[:, m].tolist()) == sorted(data[:, 0].tolist())   # each network: a permutation
    assert not np.array_equal(ids[:, 0], ids[:, 1])
