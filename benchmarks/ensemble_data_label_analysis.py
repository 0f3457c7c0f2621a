"""How far a data ensemble's spiking label read-out is from its networks' exact label posterior (issue 22).

Reads a run's results (benchmarks/results/ensemble_data*.json: trained weights, config) and re-evaluations of it
made with ``--keep-label-readout`` (benchmarks/ensemble_data_reevaluate.py: the label units' on-fractions in
classification), and compares, per network, the spiking read-out with the exact posterior p(label | image) of
the same weights (:func:`cortexsim.protocols.cd_digits.free_energy_label_posterior`):

* ``exact_accuracy`` / ``spiking_accuracy``; ``agreement``: share of images whose spiking argmax is the exact one;
* ``exact_p_true`` / ``spiking_p_true``: mean posterior (spiking: normalised on-fractions) of the true label;
* ``total_variation``: mean over images of the total-variation distance of the two label distributions;
* ``log_slope``: least-squares slope of the spiking log-distribution on the exact one (both centred per image,
  0.01 added to each probability); < 1 flatter (hotter) than exact; ``label_bias_sd``: spread over labels of the
  residual's mean (a per-label offset of the read-out).

    .venv/bin/python benchmarks/ensemble_data_label_analysis.py --results benchmarks/results/ensemble_data_dev.json \\
        --readouts benchmarks/results/ensemble_data_reevaluated_dev_labels.json --output ensemble_data_label_analysis_dev

Also, with several ``--compare`` re-evaluation files (with or without label read-outs), the pairwise agreement of
their predictions, per mode: read-outs that agree with each other more than with the exact argmax sample a
stationary conditional of their own. Writes ``benchmarks/results/<output>.json`` (medians over networks in
``summary``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cortexsim.config import config_from_dict
from cortexsim.protocols.cd_digits import free_energy_label_posterior
from cortexsim.protocols.ensemble_data import EnsembleDataConfig, _trained_parameters, load_task_split
from cortexsim.results import library_versions, machine_info, write_json_atomic

ROOT = Path(__file__).resolve().parent
SMOOTHING = 0.01


def compare_network(posterior: np.ndarray, on_fraction: np.ndarray, labels: np.ndarray) -> dict:
    """The figures of the module docstring for one network: ``posterior`` and ``on_fraction`` (n, 10)."""
    spiking = on_fraction / np.maximum(on_fraction.sum(axis=1, keepdims=True), 1e-12)
    rows = np.arange(len(labels))
    y = np.log(spiking + SMOOTHING)
    x = np.log(posterior + SMOOTHING)
    y -= y.mean(axis=1, keepdims=True)
    x -= x.mean(axis=1, keepdims=True)
    slope = float((x * y).sum() / (x * x).sum())
    return {"exact_accuracy": float(np.mean(posterior.argmax(1) == labels)),
            "spiking_accuracy": float(np.mean(on_fraction.argmax(1) == labels)),
            "agreement": float(np.mean(on_fraction.argmax(1) == posterior.argmax(1))),
            "exact_p_true": float(posterior[rows, labels].mean()), "spiking_p_true": float(spiking[rows, labels].mean()),
            "total_variation": float(0.5 * np.abs(spiking - posterior).sum(axis=1).mean()),
            "log_slope": slope, "label_bias_sd": float((y - slope * x).mean(axis=0).std())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", required=True, help="the run's results file")
    parser.add_argument("--run", default="digits_depressing")
    parser.add_argument("--readouts", required=True, help="a re-evaluation made with --keep-label-readout")
    parser.add_argument("--compare", nargs="*", default=[], help="more re-evaluations to compare predictions with")
    parser.add_argument("--weights", default=None, choices=("poisson", "ensemble"),
                        help="whose trained weights every read-out is compared with (default: each mode its own; "
                             "'ensemble' for a --poisson-equivalent re-evaluation)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    run = json.loads(Path(args.results).read_text())["runs"][args.run]
    readouts = json.loads(Path(args.readouts).read_text())
    config = config_from_dict(EnsembleDataConfig, run["config"])
    _, _, test_x, test_y = load_task_split(config)
    n = config.n_units
    summary, per_network, predictions = {"results": args.results, "readouts": args.readouts,
                                         "weights": args.weights or "each mode its own"}, {}, {}
    for mode, scores in readouts["scores"].items():
        if "label_on_fraction" not in scores:
            parser.error(f"--readouts: {args.readouts} has no label_on_fraction for {mode} (--keep-label-readout)")
        W, b = _trained_parameters(run["trained_parameters"][args.weights or mode], config)
        on = np.asarray(scores["label_on_fraction"])
        posteriors = [free_energy_label_posterior(W[s, s], b[s], test_x)
                      for s in (slice(m * n, (m + 1) * n) for m in range(config.n_networks))]
        rows = [compare_network(p, on[m], test_y) for m, p in enumerate(posteriors)]
        per_network[mode] = rows
        for key in rows[0]:
            summary[f"{mode}_{key}"] = float(np.median([r[key] for r in rows]))
        exact = np.stack([p.argmax(1) for p in posteriors])
        predictions[mode] = {"exact": exact,
                             "run": np.asarray(run["scores"][f"{args.weights or mode}_trained"]["predicted"]),
                             Path(args.readouts).stem: on.argmax(2)}
    for path in args.compare:
        other = json.loads(Path(path).read_text())
        for mode, scores in other["scores"].items():
            if mode in predictions:
                predictions[mode][Path(path).stem] = np.asarray(scores["predicted"])
    agreement = {mode: {f"{a} / {b}": float(np.mean(p[a] == p[b])) for i, a in enumerate(p) for b in list(p)[i + 1:]}
                 for mode, p in predictions.items()}
    out = ROOT / "results" / f"{args.output}.json"
    write_json_atomic(out, {"benchmark": "ensemble_data_label_analysis", "summary": summary,
                            "per_network": per_network, "prediction_agreement": agreement,
                            "command": " ".join([Path(sys.executable).name, *sys.argv]),
                            "versions": library_versions(), "machine": machine_info()})
    print(json.dumps({"summary": summary, "prediction_agreement": agreement}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
