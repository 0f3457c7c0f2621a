"""The digits data ensemble's accuracy gap over several seeds of one setting (issue 22).

One acceptance-size run gives one gap figure whose seed-to-seed spread is about as large as the criterion itself
(2 points on 359 test images); this collects the finished runs of one background setting on different seeds
(``benchmarks/results/ensemble_data*.json``, each written by ``benchmarks/ensemble_data.py --seed S ...``), checks
that they share every setting but the seed, and writes the gap per seed with its mean and standard error. Files of
``benchmarks/ensemble_data_reevaluate.py`` (both modes re-scored) count as their run with the re-evaluation's settings
(``eval_read_ms``, ``eval_background`` and its diagnosis options), so one read-out setting can be compared over seeds.

    .venv/bin/python benchmarks/ensemble_data_seeds.py --results ensemble_data ensemble_data_seed2 ... \
        --output ensemble_data_seeds

Nothing is simulated; every figure is read from the runs' results.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cortexsim.results import write_json_atomic

ROOT = Path(__file__).resolve().parent
KEYS = ("ensemble_test_accuracy", "poisson_test_accuracy", "accuracy_gap_points", "ensemble_completion_error",
        "poisson_completion_error", "completion_error_ratio", "ensemble_vote_test_accuracy",
        "poisson_vote_test_accuracy")


#: Re-evaluation settings (``ensemble_data_reevaluate`` summaries) that change what a re-scored figure means.
REEVALUATION_KEYS = ("eval_read_ms", "eval_background", "replicas", "refit", "in_degree", "poisson_equivalent")


def run_record(name: str, data: dict, run: str) -> tuple[dict, dict]:
    """(settings incl. the seed, summary figures) of ``run`` in one results file: a benchmark run, or a
    re-evaluation of one (its run's config with the re-evaluation's settings; both modes must be re-scored)."""
    if data.get("benchmark") == "ensemble_data_reevaluate":
        if data["summary"].get("run") != run:
            raise ValueError(f"{name}: a re-evaluation of run {data['summary'].get('run')!r}, not {run!r}")
        if not {"poisson", "ensemble"} <= set(data.get("scores", {})):
            raise ValueError(f"{name}: a re-evaluation of only {sorted(data.get('scores', {}))}; the gap needs both "
                             "modes re-scored (--modes poisson,ensemble)")
        config = dict(data["run_config"])
        config["reevaluation"] = {k: data["summary"].get(k) for k in REEVALUATION_KEYS}
        config["eval_read_ms"] = data["summary"]["eval_read_ms"]
        return config, data["summary"]
    if run not in data.get("runs", {}):
        raise ValueError(f"{name}: no run {run!r} (runs: {sorted(data.get('runs', {}))})")
    return dict(data["runs"][run]["config"]), data["runs"][run]["summary"]


def collect(results: dict[str, dict], run: str = "digits_depressing") -> dict:
    """Per-seed figures of ``run`` in each results file and their mean / standard error over seeds.

    ``results`` maps a file name to its parsed JSON (a benchmark run or a re-evaluation of one, :func:`run_record`).
    Raises ValueError if a file lacks the run, two runs differ in a setting other than the seed, or a seed repeats.

    Examples
    --------
    >>> def one(seed, gap):
    ...     return {"runs": {"digits_depressing": {"config": {"seed": seed, "in_degree": 15},
    ...             "summary": {k: gap if k == "accuracy_gap_points" else 0.5 for k in KEYS}}}}
    >>> out = collect({"a": one(1, 3.0), "b": one(2, 1.0)})
    >>> out["mean"]["accuracy_gap_points"], out["standard_error"]["accuracy_gap_points"]
    (2.0, 1.0)
    """
    per_seed, settings = [], None
    for name, data in results.items():
        config, figures = run_record(name, data, run)
        seed = config.pop("seed")
        if settings is None:
            settings = config
        elif config != settings:
            differing = sorted(k for k in set(config) | set(settings) if config.get(k) != settings.get(k))
            raise ValueError(f"{name}: settings differ from the first file's in {differing}")
        per_seed.append({"file": name, "seed": seed, **{k: figures[k] for k in KEYS}})
    seeds = [row["seed"] for row in per_seed]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"a seed repeats: {seeds}")
    table = {k: np.array([row[k] for row in per_seed], dtype=float) for k in KEYS}
    n = len(per_seed)
    return {"run": run, "settings": settings, "per_seed": per_seed, "n_seeds": n,
            "mean": {k: float(v.mean()) for k, v in table.items()},
            "standard_error": {k: float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else None for k, v in table.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", nargs="+", required=True, help="results file names (benchmarks/results/NAME.json)")
    parser.add_argument("--run", default="digits_depressing")
    parser.add_argument("--output", required=True, help="name of the output file (benchmarks/results/NAME.json)")
    args = parser.parse_args(argv)
    loaded = {}
    for name in args.results:
        path = ROOT / "results" / f"{Path(name).stem}.json"
        if not path.exists():
            parser.error(f"--results: {path} does not exist")
        loaded[path.stem] = json.loads(path.read_text())
    try:
        out = collect(loaded, args.run)
    except ValueError as error:
        parser.error(str(error))
    summary = {"n_seeds": out["n_seeds"], "seeds": [row["seed"] for row in out["per_seed"]],
               "accuracy_gap_points_per_seed": [row["accuracy_gap_points"] for row in out["per_seed"]],
               "mean_accuracy_gap_points": out["mean"]["accuracy_gap_points"],
               "standard_error_accuracy_gap_points": out["standard_error"]["accuracy_gap_points"],
               "mean_completion_error_ratio": out["mean"]["completion_error_ratio"]}
    write_json_atomic(ROOT / "results" / f"{args.output}.json",
                      {"benchmark": "ensemble_data_seeds", "summary": summary, **out,
                       "command": " ".join([Path(sys.executable).name, *sys.argv])})
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
