"""Benchmark: RBM (64 pixels + 10 labels visible, 100 hidden) on binarised 8x8 digits, spiking (NEST) vs exact Gibbs.

Acceptance (issue 4): spiking classification accuracy on held-out digits within 5 percentage points of
the exact-Gibbs baseline of the same size and above 85 %; pattern-completion error (fraction of wrong
pixels in the bottom half with the top half clamped) reported for both.

Pipeline: exact-sampler pre-training (numpy, persistent block Gibbs), then ``--iterations`` spiking
fine-tuning updates on NEST; the baseline makes the same number of further exact updates.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cd_digits.py [--iterations 60] [--out out/cd_digits]

Writes ``benchmarks/results/cd_digits.json`` (and figures/checkpoints in ``--out``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cortexsim.config import config_to_dict
from cortexsim.protocols.cd_digits import DigitsTrainingConfig, train_digits
from cortexsim.results import library_versions, machine_info, write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "cd_digits.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--test-images", type=int, default=200, help="held-out images classified (0: all 359)")
    parser.add_argument("--completion-images", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--eval-read-ms", type=float, default=150.0)
    parser.add_argument("--out", type=Path, default=Path("out/cd_digits"))
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    config = DigitsTrainingConfig(seed=args.seed, backend="nest", n_hidden=args.hidden, iterations=args.iterations,
                                  eval_read_ms=args.eval_read_ms, n_test_images=args.test_images,
                                  n_completion_images=args.completion_images, checkpoint_every=20)
    start = time.perf_counter()
    result = train_digits(config, out_dir=args.out, resume=args.resume, progress=True)
    wall = time.perf_counter() - start
    s = result.to_dict()
    gap = s["baseline_test_accuracy"] - s["test_accuracy"]
    report = {
        "benchmark": "cd_digits",
        "summary": {"test_accuracy_spiking": s["test_accuracy"], "baseline_test_accuracy_exact_gibbs":
                    s["baseline_test_accuracy"], "completion_error_spiking": s["completion_error"],
                    "completion_error_baseline": s["baseline_completion_error"]},
        "description": "RBM 74 visible (64 binarised pixels + 10 labels) x 100 hidden on scikit-learn 8x8 digits; "
                       "exact pre-training, then spiking fine-tuning on NEST vs the same number of exact updates",
        "test_accuracy_spiking": s["test_accuracy"],
        "test_accuracy_spiking_before_finetuning": s["test_accuracy_before_finetuning"],
        "baseline_test_accuracy_exact_gibbs": s["baseline_test_accuracy"],
        "pretrained_exact": s["pretrained_exact"],
        "completion_error_spiking": s["completion_error"],
        "completion_error_spiking_before_finetuning": s["completion_error_before_finetuning"],
        "completion_error_baseline": s["baseline_completion_error"],
        "accuracy_gap_points": 100 * gap,
        "acceptance": {"within_5_points_of_baseline": bool(gap <= 0.05),
                       "above_85_percent": bool(s["test_accuracy"] > 0.85)},
        "timing": result.timing,
        "wall_time_s": wall,
        "config": config_to_dict(config),
        "activation_fit": result.fit.to_dict(),
        "history": {k: s["history"][k] for k in ("segment_end", "segment_exact_accuracy", "pretrain_curve",
                                                 "baseline_curve")},
        "versions": library_versions(),
        "machine": machine_info(),
    }
    write_json_atomic(RESULTS, report)
    print(f"spiking accuracy {s['test_accuracy']:.3f} (before fine-tuning {s['test_accuracy_before_finetuning']:.3f}), "
          f"exact baseline {s['baseline_test_accuracy']:.3f}; completion error spiking {s['completion_error']:.3f}, "
          f"baseline {s['baseline_completion_error']:.3f}; wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
