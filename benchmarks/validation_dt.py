"""NEST vs Brian2 on the same PyNN models, at two time steps: which statistics differ, and does it shrink with dt?

Runs ``cortexsim validate`` (the protocol function, exactly what the command runs) with R = 10
repeats per backend on ``examples/validate_balanced_ei.py`` (conductance-based E/I network) and
``examples/validate_brunel_script.py`` (current-based Brunel network written as a plain PyNN script
that calls ``setup`` itself), at ``--dt 0.1`` and ``--dt 0.01`` ms. For every statistic it records
both backends' means and run-to-run SDs, the difference, the smallest difference the run could
detect (tolerance), the corrected p-value and the verdict, and compares the two time steps: a
difference that comes from time discretisation (NEST's iaf_cond_exp uses an adaptive GSL solver
within each step, spikes on the grid; Brian2 a fixed-step exponential Euler) shrinks with dt; one
that comes from the models themselves does not.

Writes ``benchmarks/results/validation_dt.json`` (``summary``: per model and dt the differing
statistics with both means and the effect size, and per statistic whether the difference shrank),
the whole file again after every (model, dt), so an interrupted run keeps what finished
(``summary.pending`` lists the rest; ``--update`` adds runs to an existing file). The HTML reports go to
``out/validation_dt/MODEL_dtDT/``.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/validation_dt.py

Brian2 names the objects of every repeat anew within a process (``neurongroup``, ``neurongroup_1``,
...) and the names are part of its generated code, so a fresh process per (model, dt) re-uses the
compiled-code cache of an earlier run and saves a compilation per repeat::

    for dt in 0.1 0.01; do .venv/bin/python benchmarks/validation_dt.py --update --models brunel_script --dts $dt; done
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

from cortexsim.protocols.validation import ValidationConfig, validate
from cortexsim.results import library_versions, machine_info, read_json, write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "validation_dt.json"
MODELS = {"balanced_ei": ROOT / "examples" / "validate_balanced_ei.py",
          "brunel_script": ROOT / "examples" / "validate_brunel_script.py"}
#: The time steps the issue compares (ms); runs missing from the file are listed in ``summary.pending``.
DTS_MS = (0.1, 0.01)


def _row(c) -> dict:
    return {"population": c.population, "statistic": c.statistic, "nest": c.mean_a, "brian2": c.mean_b,
            "sd_nest": c.sd_a, "sd_brian2": c.sd_b, "difference": c.difference,
            "relative_difference": c.relative_difference, "tolerance": c.tolerance, "hedges_g": c.hedges_g,
            "p_adjusted": c.p_adjusted, "verdict": c.verdict}


def shrinkage(coarse: list[dict], fine: list[dict]) -> list[dict]:
    """Per statistic: |difference| at the coarse and the fine step and their ratio (fine / coarse)."""
    fine_by_key = {(r["population"], r["statistic"]): r for r in fine}
    rows = []
    for r in coarse:
        other = fine_by_key.get((r["population"], r["statistic"]))
        if other is None or r["verdict"] not in ("agree", "differ") or other["verdict"] not in ("agree", "differ"):
            continue
        ratio = abs(other["difference"]) / abs(r["difference"]) if r["difference"] else float("nan")
        rows.append({"population": r["population"], "statistic": r["statistic"],
                     "difference_coarse": r["difference"], "difference_fine": other["difference"],
                     "ratio_fine_to_coarse": ratio, "verdict_coarse": r["verdict"], "verdict_fine": other["verdict"],
                     "shrinks": bool(np.isfinite(ratio) and ratio < 0.5)})
    return rows


def poisson_source_statistics(backend: str, dt_ms: float, rate_hz: float = 8000.0, n_sources: int = 100,
                              duration_ms: float = 1000.0, bin_ms: float = 1.0, seed: int = 1) -> dict:
    """Rate and Fano factor of ``SpikeSourcePoisson`` spike counts (``bin_ms`` bins) on one backend.

    A Poisson process has Fano factor 1 in any bin. A source that draws at most one spike per time
    step (a Bernoulli trial with p = rate dt) has the right mean but Fano factor 1 - rate dt: 0.2 at
    8 kHz and dt 0.1 ms, 0.92 at dt 0.01 ms. The Brunel network's external drive is such a source.
    """
    from cortexsim.backends import load_backend

    sim = load_backend(backend)
    sim.setup(timestep=dt_ms, seed=seed)
    sources = sim.Population(n_sources, sim.SpikeSourcePoisson(rate=rate_hz))
    sources.record("spikes")
    sim.run(duration_ms)
    trains = sources.get_data("spikes").segments[0].spiketrains
    sim.end()
    edges = np.arange(0.0, duration_ms + bin_ms / 2, bin_ms)
    counts = np.array([np.histogram(np.asarray(train.rescale("ms").magnitude), edges)[0] for train in trains])
    per_source_fano = counts.var(axis=1, ddof=1) / counts.mean(axis=1)
    return {"backend": backend, "dt_ms": dt_ms, "rate_hz_set": rate_hz, "n_sources": n_sources,
            "duration_ms": duration_ms, "bin_ms": bin_ms,
            "rate_hz_measured": float(counts.sum() / n_sources / (duration_ms / 1000.0)),
            "fano_factor": float(per_source_fano.mean()),
            "fano_factor_sem": float(per_source_fano.std(ddof=1) / np.sqrt(n_sources)),
            "fano_factor_bernoulli_per_step": 1.0 - rate_hz * dt_ms / 1000.0, "fano_factor_poisson": 1.0}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--poisson-sources", action="store_true",
                        help="also measure SpikeSourcePoisson count statistics on both backends at every dt")
    parser.add_argument("--dts", nargs="+", type=float, default=list(DTS_MS))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=None,
                        help="simulated time per run (ms; default: each model's DURATION_MS)")
    parser.add_argument("--transient", type=float, default=None,
                        help="initial time left out (ms; default: each model's TRANSIENT_MS)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--reports", type=Path, default=ROOT / "out" / "validation_dt")
    parser.add_argument("--update", action="store_true", help="keep other models/dts of an existing results file")
    args = parser.parse_args(argv)

    previous = read_json(args.out) if args.update and args.out.exists() else {}
    runs = dict(previous.get("runs", {}))
    sources = list(previous.get("poisson_sources", []))
    todo = [(model, dt) for model in args.models for dt in args.dts]
    for model, dt in todo:
        key = f"{model}_dt{dt:g}"
        config = ValidationConfig(seed=args.seed, backends=("nest", "brian2"), repeats=args.repeats, dt_ms=dt,
                                  duration_ms=args.duration, transient_ms=args.transient)
        start = time.perf_counter()
        result = validate(MODELS[model], config, out_dir=args.reports / key, progress=True)
        runs[key] = {"model": model, "dt_ms": dt, "repeats": args.repeats, "seed": args.seed,
                     "duration_ms": result.duration_ms, "transient_ms": result.transient_ms,
                     "exit_code": result.exit_code, "verdict": result.verdict,
                     "wall_time_s": round(time.perf_counter() - start, 1), "load_average_after": os.getloadavg(),
                     "backends": {b: {"status": r.status, "wall_time_s": round(r.wall_time_s, 1), "notes": r.notes}
                                  for b, r in result.backends.items()},
                     "comparisons": [_row(c) for c in result.comparisons],
                     "summaries": result.summaries}
        differing = [f"{c.population}/{c.statistic}" for c in result.comparisons if c.verdict == "differ"]
        print(f"{key}: {result.verdict}; differ: {', '.join(differing) or 'none'} "
              f"({runs[key]['wall_time_s']:.0f} s)", flush=True)
        # the full file (summary included) after every combination: an interrupted run loses nothing
        write_json_atomic(args.out, _results(runs, sources))

    if args.poisson_sources:
        for dt in args.dts:
            for backend in ("nest", "brian2"):
                row = poisson_source_statistics(backend, dt, seed=args.seed)
                sources = [r for r in sources if (r["backend"], r["dt_ms"]) != (backend, dt)] + [row]
                print(f"SpikeSourcePoisson {backend} dt {dt:g}: rate {row['rate_hz_measured']:.0f} Hz, "
                      f"Fano {row['fano_factor']:.3f} (Bernoulli per step {row['fano_factor_bernoulli_per_step']:.2f})",
                      flush=True)
    results = _results(runs, sources)
    write_json_atomic(args.out, results)
    return results


def _differing(comparisons: list[dict]) -> list[dict]:
    """The statistics flagged as different, with both backends' means and the effect size."""
    return [{"statistic": f"{r['population']}/{r['statistic']}", "nest": r["nest"], "brian2": r["brian2"],
             "relative_difference": r["relative_difference"], "hedges_g": r["hedges_g"],
             "p_adjusted": r["p_adjusted"]} for r in comparisons if r["verdict"] == "differ"]


def _results(runs: dict, sources: list) -> dict:
    """The results file: summary (per model and dt what differs; per statistic whether it shrinks), runs."""
    summary = {}
    if sources:
        summary["poisson_sources_fano_factor"] = {f"{r['backend']}_dt{r['dt_ms']:g}": round(r["fano_factor"], 3)
                                                  for r in sources}
    for model in MODELS:
        keys = sorted((k for k in runs if runs[k]["model"] == model), key=lambda k: -runs[k]["dt_ms"])
        if not keys:
            continue
        entry = {f"dt{runs[k]['dt_ms']:g}": {
            "verdict": runs[k]["verdict"], "repeats": runs[k].get("repeats"),
            "duration_ms": runs[k]["duration_ms"], "transient_ms": runs[k]["transient_ms"],
            "differ": _differing(runs[k]["comparisons"]),
            "n_compared": sum(r["verdict"] in ("agree", "differ") for r in runs[k]["comparisons"])} for k in keys}
        if len(keys) >= 2:
            coarse, fine = runs[keys[0]], runs[keys[-1]]
            rows = shrinkage(coarse["comparisons"], fine["comparisons"])
            entry["like_with_like"] = (coarse["duration_ms"] == fine["duration_ms"]
                                       and coarse["transient_ms"] == fine["transient_ms"])
            entry["shrinkage"] = rows
            entry["differing_at_coarse_that_shrink"] = [f"{r['population']}/{r['statistic']}" for r in rows
                                                        if r["verdict_coarse"] == "differ" and r["shrinks"]]
            entry["differing_at_coarse_that_do_not_shrink"] = [f"{r['population']}/{r['statistic']}" for r in rows
                                                               if r["verdict_coarse"] == "differ" and not r["shrinks"]]
            entry["differing_at_fine"] = [f"{r['population']}/{r['statistic']}" for r in rows
                                          if r["verdict_fine"] == "differ"]
        summary[model] = entry
    pending = [f"{m}_dt{d:g}" for m in MODELS for d in DTS_MS if f"{m}_dt{d:g}" not in runs]
    summary["complete"] = not pending
    summary["pending"] = pending
    return {"benchmark": "validation_dt", "description": __doc__.split("\n")[0],
            "summary": summary,
            "parameters": {"dts_ms": sorted({r["dt_ms"] for r in runs.values()}, reverse=True),
                           "per_run": {k: {"repeats": r.get("repeats"), "seed": r.get("seed"),
                                           "duration_ms": r["duration_ms"], "transient_ms": r["transient_ms"]}
                                       for k, r in runs.items()},
                           "backends": ["nest", "brian2"], "alpha": 0.05, "correction": "holm",
                           "shrinks_means": "|difference| at the fine dt < 0.5 x |difference| at the coarse dt"},
            "runs": runs, "poisson_sources": sources, "versions": library_versions(),
            "machine": {**machine_info(), "load_average": os.getloadavg()}}


if __name__ == "__main__":
    progress = logging.StreamHandler()
    progress.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger("cortexsim").addHandler(progress)  # "validate: BACKEND seed N" per run
    logging.getLogger("cortexsim").setLevel(logging.INFO)
    main()
