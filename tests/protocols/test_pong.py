"""The Pong protocol: its plasticity kernel on a fake chip, config checks, and short runs on both routes."""

import json

import numpy as np
import pytest

from cortexsim.protocols.pong import PongConfig, PongKernel, run


class FakeRows:
    def __init__(self, weights, causal):
        self.weights = np.array(weights, dtype=int)
        self._causal = np.array(causal, dtype=int)
        self.written = None
        self.reset = False

    def correlation(self, reset=False):
        self.reset = reset
        return self._causal, np.zeros_like(self._causal)

    def set_weights(self, weights):
        self.written = np.clip(np.rint(weights), 0, 63).astype(int)


class FakeContext:
    def __init__(self, counts, rows, reward):
        self.counts, self.rows, self.reward = np.array(counts), rows, np.asarray(reward, dtype=float)

    def rate_counters(self, k=0, reset=True):
        return self.counts

    def synapses(self, k=0):
        return self.rows


def test_kernel_rewards_the_active_row_with_success_times_correlation():
    kernel = PongKernel(n_rows=3, learning_rate=2.0, rng=np.random.default_rng(0))
    weights = [[20, 20, 20], [20, 20, 20], [20, 20, 20]]
    causal = [[0, 0, 0], [4, 9, 1], [5, 5, 5]]             # row 2 has correlation too: it must not move
    kernel.row = 1
    rows = FakeRows(weights, causal)
    kernel(FakeContext([1, 0, 3], rows, reward=[0.7, 1.0, 0.7]))     # output 2 wins: reward 0.7
    assert kernel.last_winner == 2 and kernel.last_reward == 0.7
    assert kernel.last_success == 0.0                           # first visit: the mean starts at the reward
    np.testing.assert_array_equal(rows.written, weights)
    rows = FakeRows(weights, causal)
    kernel(FakeContext([0, 5, 3], rows, reward=[0.7, 1.0, 0.7]))     # output 1 wins: reward 1.0
    assert kernel.last_success == pytest.approx(0.3)
    np.testing.assert_array_equal(rows.written[1], np.rint(20 + 2.0 * 0.3 * np.array([4, 9, 1])))
    np.testing.assert_array_equal(rows.written[[0, 2]], [[20, 20, 20], [20, 20, 20]])
    assert rows.reset                                           # sensors restart for the next iteration
    rows = FakeRows(weights, causal)
    kernel(FakeContext([9, 0, 0], rows, reward=[0.1, 1.0, 0.7]))     # output 0 wins: 0.1 < mean 0.85
    assert kernel.last_success == pytest.approx(0.1 - 0.85)
    assert np.all(rows.written[1] < 20)                        # punished: the correlated synapses weaken


def test_kernel_cuts_the_correlation_off_at_its_cap():
    kernel = PongKernel(n_rows=2, learning_rate=2.0, rng=np.random.default_rng(0), correlation_cap=5.0)
    kernel.row = 0
    weights = [[20, 20], [20, 20]]
    kernel(FakeContext([1, 0], FakeRows(weights, [[4, 9], [0, 0]]), reward=[0.4, 0.1]))   # first visit: mean 0.4
    rows = FakeRows(weights, [[4, 9], [0, 0]])
    kernel(FakeContext([3, 0], rows, reward=[1.0, 0.7]))                                   # success 0.6
    np.testing.assert_array_equal(rows.written[0], np.rint(20 + 2.0 * 0.6 * np.array([4, 5])))
    with pytest.raises(ValueError, match="correlation_cap"):
        PongKernel(n_rows=2, learning_rate=1.0, rng=np.random.default_rng(0), correlation_cap=0.0)


def test_kernel_without_learning_only_reports():
    kernel = PongKernel(n_rows=2, learning_rate=2.0, rng=np.random.default_rng(0))
    kernel.row, kernel.learning = 0, False
    rows = FakeRows([[10, 10], [10, 10]], [[7, 7], [0, 0]])
    kernel(FakeContext([2, 1], rows, reward=[1.0, 0.7]))
    assert kernel.last_winner == 0 and rows.written is None and np.isnan(kernel.tracker.mean[0])


@pytest.mark.parametrize("field, value", [("backend", "spinnaker"), ("iterations", 0), ("n_rows", 1),
                                          ("iteration_ms", 150.0), ("eval_fraction", 0.0), ("seed", -1),
                                          ("fixed_pattern_noise", -1.0)])
def test_bad_config_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        PongConfig(**{"seed": 1, field: value})


@pytest.mark.parametrize("backend", ["nest", "brainscales"])
def test_short_run_writes_results_and_figures(tmp_path, backend):
    config = PongConfig(seed=2, backend=backend, iterations=6, n_rows=8, probe_repeats=1)
    result = run(config, out_dir=tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    summary = data["summary"]
    assert summary["iterations"] == 6 and 0 <= summary["mean_reward"] <= 1
    assert len(data["rewards"]) == 6 and np.array(data["weights_final"]).shape == (8, 8)
    assert all((tmp_path / name).exists() for name in data["files"].values())
    assert len(data["excitability"]) == 8
    assert sorted(data["eval_rows"]) == sorted(list(range(8)) * config.eval_repeats)      # every row, no learning
    assert summary["mean_reward"] == pytest.approx(np.mean(data["eval_rewards"]))
    # the rewards are the distance rewards of the recorded winners and rows
    distance = np.abs(result.winners - result.rows)
    np.testing.assert_allclose(result.rewards, np.choose(np.minimum(distance, 4), [1.0, 0.7, 0.4, 0.1, 0.0]))
    assert summary["energy_j_per_iteration"] > 0
    if backend == "brainscales":
        # 0.2 ms of hardware time per iteration at the ASIC's 0.70 W, probe iterations not counted
        assert summary["energy_j_per_iteration"] == pytest.approx(192e-6 / 276e-6 * 0.2e-3, rel=1e-6)
        assert np.issubdtype(np.array(data["weights_final"]).dtype, np.integer)


def test_run_uses_the_given_route_parameters_and_refuses_the_other_routes():
    from dataclasses import replace

    from cortexsim.protocols.pong import ChipPongParameters, NestPongParameters

    config = PongConfig(seed=3, backend="nest", iterations=4, n_rows=4, probe_repeats=0, eval_repeats=1)
    frozen = run(config, parameters=replace(NestPongParameters(), learning_rate_nA=0.0))
    assert frozen.parameters["learning_rate_nA"] == 0.0
    np.testing.assert_array_equal(frozen.weights_final, frozen.weights_initial)        # no learning at rate 0
    with pytest.raises(TypeError, match="NestPongParameters"):
        run(config, parameters=ChipPongParameters())


def test_cli_runs_the_nest_route_and_names_bad_input(tmp_path, capsys):
    from cortexsim.cli import main

    out = tmp_path / "pong"
    assert main(["pong", "--backend", "nest", "--iterations", "3", "--rows", "4", "--probe-repeats", "0",
                 "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["summary"]["iterations"] == 3
    assert main(["pong", "--backend", "nest", "--rows", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "n_rows" in capsys.readouterr().err
    assert main(["pong", "--chip-calibration", "auto", "--out", str(tmp_path / "bad")]) == 2
    assert "--chip-calibration" in capsys.readouterr().err
    assert main(["pong", "--backend", "nest", "--chip-seed", "3", "--out", str(tmp_path / "bad")]) == 2
    assert "--chip-seed" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()                      # refused before anything ran


def test_cli_chip_seed_selects_the_chip_of_the_run():
    from cortexsim.cli import build_config, build_parser

    args = build_parser().parse_args(["pong", "--chip-seed", "3", "--iterations", "5", "--eval-repeats", "1"])
    _, config = build_config(args.command_entry, args)
    assert (config.backend, config.chip_seed, config.iterations, config.eval_repeats) == ("brainscales", 3, 5, 1)
