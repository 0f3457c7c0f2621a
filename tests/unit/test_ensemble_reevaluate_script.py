"""benchmarks/ensemble_data_reevaluate.py: the replica layout of its size diagnosis and its refusals."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def script(benchmark_script):
    return benchmark_script("ensemble_data_reevaluate")


@pytest.fixture
def seeds(benchmark_script):
    return benchmark_script("ensemble_data_seeds")


def test_replicas_put_copy_r_of_network_m_at_r_m_plus_m_and_leave_the_run_alone(script):
    """Network m's block and biases reappear at position r M + m of copy r (the protocol reads block k of
    ``W_blocks`` and biases k n .. (k + 1) n for network k); a layout that interleaves copies or shares the
    input's lists fails."""
    n = 2
    run = {"config": {"n_networks": 3}, "trained_parameters": {
        mode: {"W_blocks": [[[m + 0.5]] for m in range(3)], "b": [float(10 * m + i) for m in range(3) for i in range(n)]}
        for mode in ("poisson", "ensemble")}}
    original = json.loads(json.dumps(run))
    out = script.replicated(run, 2)
    assert run == original and out["config"]["n_networks"] == 6
    for trained in out["trained_parameters"].values():
        for k in range(6):
            m = k % 3
            assert trained["W_blocks"][k] == [[m + 0.5]]
            assert trained["b"][k * n:(k + 1) * n] == [10.0 * m, 10.0 * m + 1]


@pytest.mark.parametrize("args, needle", [
    (["--results", "no/such/file.json", "--output", "x"], "--results: no file"),
    (["--results", "{results}", "--run", "mnist_static", "--output", "x"], "--run"),
    (["--results", "{results}", "--modes", "poisson,gibbs", "--output", "x"], "--modes"),
    (["--results", "{results}", "--replicas", "0", "--output", "x"], "--replicas must be >= 1"),
])
def test_bad_arguments_are_refused_before_anything_runs(args, needle, tmp_path, capsys, script):
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"runs": {"digits_depressing": {}}}))
    with pytest.raises(SystemExit) as exit_info:
        script.main([a.format(results=results) for a in args])
    assert exit_info.value.code == 2 and needle in capsys.readouterr().err


def test_seed_collection_averages_the_gap_and_refuses_runs_of_different_settings(seeds):
    """benchmarks/ensemble_data_seeds.py: mean and standard error of the per-seed figures (numpy's by hand here),
    refusal of a run whose settings differ beyond the seed (e.g. a development run among test-set runs) or of a
    repeated seed."""

    def one(seed, gap, **config):
        return {"runs": {"digits_depressing": {
            "config": {"seed": seed, "in_degree": 15, **config},
            "summary": {k: (gap if k == "accuracy_gap_points" else 0.7 + seed / 100) for k in seeds.KEYS}}}}

    out = seeds.collect({"a": one(1, 3.5), "b": one(2, 1.5), "c": one(3, -0.5)})
    assert out["mean"]["accuracy_gap_points"] == pytest.approx(1.5)
    assert out["standard_error"]["accuracy_gap_points"] == pytest.approx(2.0 / 3 ** 0.5)   # sd 2 (ddof 1)
    assert out["mean"]["poisson_test_accuracy"] == pytest.approx(0.72)
    assert [row["seed"] for row in out["per_seed"]] == [1, 2, 3] and out["settings"] == {"in_degree": 15}
    with pytest.raises(ValueError, match=r"settings differ .*\['in_degree'\]"):
        seeds.collect({"a": one(1, 3.5), "b": one(2, 1.5, in_degree=30)})
    with pytest.raises(ValueError, match="a seed repeats"):
        seeds.collect({"a": one(1, 3.5), "b": one(1, 1.5)})
    with pytest.raises(ValueError, match="no run 'digits_static'"):
        seeds.collect({"a": one(1, 3.5)}, run="digits_static")


def test_seed_collection_takes_reevaluations_with_their_read_out_settings(seeds):
    """A re-evaluation file counts as its run with the re-evaluation's read-out window (its own figures, not the
    run's); a re-evaluation is not mixed with a run at another window, nor accepted with only one mode re-scored."""

    def reevaluated(seed, gap, read_ms=800.0, modes=("poisson", "ensemble")):
        summary = {k: (gap if k == "accuracy_gap_points" else 0.6) for k in seeds.KEYS}
        summary.update({"run": "digits_depressing", "eval_read_ms": read_ms, "eval_background": "training",
                        "replicas": 1, "refit": None, "in_degree": 15, "poisson_equivalent": False,
                        "run_accuracy_gap_points": 99.0})
        return {"benchmark": "ensemble_data_reevaluate", "summary": summary, "scores": {m: {} for m in modes},
                "run_config": {"seed": seed, "in_degree": 15, "eval_read_ms": 200.0}}

    def run(seed, gap):
        return {"runs": {"digits_depressing": {"config": {"seed": seed, "in_degree": 15, "eval_read_ms": 200.0},
                                               "summary": {k: gap for k in seeds.KEYS}}}}

    out = seeds.collect({"a": reevaluated(1, 6.0), "b": reevaluated(2, 2.0)})
    assert out["mean"]["accuracy_gap_points"] == pytest.approx(4.0)
    assert out["settings"]["eval_read_ms"] == 800.0
    with pytest.raises(ValueError, match=r"settings differ .*eval_read_ms"):
        seeds.collect({"a": reevaluated(1, 6.0), "b": run(2, 2.0)})
    with pytest.raises(ValueError, match="both"):
        seeds.collect({"a": reevaluated(1, 6.0, modes=("ensemble",))})
