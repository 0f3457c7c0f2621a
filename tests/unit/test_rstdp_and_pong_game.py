"""R-STDP maths, the Pong game and the energy model: small cases worked out by hand."""

import numpy as np
import pytest

from cortexsim.backends.energy import CHIP_POWER, chip_energy, energy_comparison, software_energy
from cortexsim.models.pong_game import PongGame
from cortexsim.models.rstdp import MeanReward, distance_reward, reward_table, rstdp_update, winner


def test_reward_table_follows_the_distance_to_the_ball():
    np.testing.assert_allclose(reward_table(5, 10), [0, 0, 0.1, 0.4, 0.7, 1.0, 0.7, 0.4, 0.1, 0])
    assert distance_reward(17) == 0.0
    with pytest.raises(ValueError, match="distances"):
        distance_reward(-1)
    with pytest.raises(ValueError, match="target_row"):
        reward_table(10, 10)


def test_mean_reward_moves_half_way_and_gives_the_success():
    tracker = MeanReward(2)
    assert tracker.update(0, 0.4) == 0.0                  # first visit: the mean starts at the reward
    assert tracker.update(0, 1.0) == pytest.approx(0.6)   # 1.0 - 0.4
    assert tracker.mean[0] == pytest.approx(0.7)          # 0.4 + 0.6 / 2
    assert tracker.update(0, 0.0) == pytest.approx(-0.7)
    assert np.isnan(tracker.mean[1]) and tracker.mean_over_rows() == pytest.approx(0.35)
    nest_style = MeanReward(2, initial_mean=0.0)          # NEST's example starts at 0
    assert nest_style.update(1, 0.4) == pytest.approx(0.4)


@pytest.mark.parametrize("success, sign", [(0.5, 1), (-0.5, -1), (0.0, 0)])
def test_rewards_move_correlated_weights_in_the_direction_of_the_success(success, sign):
    weights = np.array([20.0, 20.0, 20.0])
    correlation = np.array([10.0, 3.0, 0.0])
    new = rstdp_update(weights, correlation, success, learning_rate=0.5, w_max=63)
    np.testing.assert_allclose(new - weights, 0.5 * success * correlation)
    assert np.all(np.sign(new - weights)[:2] == sign) and new[2] == 20.0   # uncorrelated: unchanged
    assert abs(new[0] - 20) > abs(new[1] - 20) or success == 0               # more correlation, more change


def test_rstdp_clips_to_the_weight_range():
    new = rstdp_update([60.0, 2.0], [40.0, 40.0], [1.0, -1.0], learning_rate=1.0, w_min=0.0, w_max=63.0)
    np.testing.assert_array_equal(new, [63.0, 0.0])
    with pytest.raises(ValueError, match="learning_rate"):
        rstdp_update([1.0], [1.0], 1.0, learning_rate=-1.0)


def test_winner_breaks_ties_at_random():
    rng = np.random.default_rng(0)
    picks = {winner([3, 5, 5, 1], rng) for _ in range(50)}
    assert picks == {1, 2}


def test_pong_game_bounces_hits_and_misses():
    game = PongGame(n_rows=10, rng=np.random.default_rng(2))
    game.ball_x, game.ball_y, game.ball_direction = 1.58, 0.55, np.array([1.0, 0.0])
    game.paddle_y = 0.55
    assert game.step(target_row=game.paddle_row()) == "hit" and game.ball_direction[0] < 0
    game.ball_x, game.ball_y, game.ball_direction = 1.58, 0.05, np.array([1.0, 0.0])
    game.paddle_y = 0.9
    assert game.step(target_row=9) == "miss" and game.ball_x == pytest.approx(0.8)   # new ball in the middle
    game.ball_y, game.ball_direction = 0.99, np.array([0.5, 0.5])
    game.ball_x = 0.5
    game.step(0)
    assert game.ball_direction[1] < 0                                                    # bounced off the top
    before = game.paddle_y = 0.5
    game.step(target_row=9)
    assert game.paddle_y == pytest.approx(before + 0.05)                                 # towards the target row


def test_chip_energy_is_power_times_hardware_time():
    e = chip_energy("bss2", hardware_time_s=2e-3, wall_time_s=1.0)
    assert e["asic_j"] == pytest.approx(192e-6 / 276e-6 * 2e-3)
    assert e["prototype_j"] == pytest.approx(0.057 * 2e-3)
    assert e["system_j"] == pytest.approx(5.6 * 1.0)
    assert chip_energy("bss1", 1.0)["asic_j"] is None and CHIP_POWER["bss1"].asic_w is None
    software = software_energy(cpu_time_s=3.0, cpu_power_w_per_core=10.0)
    assert software["energy_j"] == 30.0
    per = energy_comparison(e, software, units=4, unit_name="iteration")
    assert per["software_j_per_iteration"] == 7.5
    assert per["software_over_chip_asic"] == pytest.approx(30.0 / e["asic_j"])
    with pytest.raises(ValueError, match="hardware_time_s"):
        chip_energy("bss2", -1.0)
    with pytest.raises(ValueError, match="chip"):
        chip_energy("loihi", 1.0)
