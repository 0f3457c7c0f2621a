"""``cortexsim train-cd``: contrastive-divergence training on a spiking sampling network.

    cortexsim train-cd --task target --backend nest --seed 1 --iterations 100 --out out/cd
    cortexsim train-cd --task target --bm my_bm.json --init random --out out/cd_mine
    cortexsim train-cd --task digits --backend nest --seed 1 --iterations 200 --out out/cd_digits
    cortexsim train-cd --task target --backend nest --seed 1 --iterations 100 --resume out/cd  # continue

Writes ``results.json`` (target: ``dkl_initial``, ``dkl_final``; digits: ``test_accuracy``,
``baseline_test_accuracy``, ``completion_error``), PNG curves and ``checkpoint.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_train_cd_parser"]


def _cmd_train_cd(args) -> int:
    from cortexsim.cli import _parameter_set

    neuron, noise = _parameter_set(args.parameter_set)
    common = dict(seed=args.seed, backend=args.backend, iterations=args.iterations, dt_ms=args.dt,
                  neuron=neuron, noise=noise, momentum=args.momentum, schedule=args.schedule)
    if args.checkpoint_every is not None:
        common["checkpoint_every"] = args.checkpoint_every
    if args.learning_rate is not None:
        common["learning_rate"] = args.learning_rate
    if args.schedule_tau is not None:
        common["schedule_tau"] = args.schedule_tau
    resume = args.resume is not None
    if resume:
        args.out = args.resume
    if args.task != "digits" and (args.test_images != 0 or args.completion_images != 100):
        raise ValueError("--test-images and --completion-images apply to --task digits only")
    if args.task == "target":
        from cortexsim.models.boltzmann import BoltzmannMachine
        from cortexsim.protocols.cd_training import TargetTrainingConfig, train_target

        targets = [BoltzmannMachine.from_json(args.bm)] if args.bm is not None else None
        config = TargetTrainingConfig(n_neurons=args.neurons, init=args.init, sampling_ms=args.sampling_ms,
                                      eval_duration_ms=args.eval_duration, **common)
        result = train_target(config, targets=targets, out_dir=args.out, resume=resume, progress=True)
        summary = result.summary()
        print(f"D_KL(sampled || target) after {config.eval_duration_ms:g} ms: "
              f"{summary['dkl_initial']:.4f} before training, {summary['dkl_final']:.4f} after "
              f"({config.iterations} iterations of {config.sampling_ms:g} ms on {config.backend}); "
              f"overhead outside sim.run {100 * result.timing['overhead_fraction']:.1f} %")
    else:
        if args.bm is not None:
            raise ValueError("--bm applies to --task target only")
        from cortexsim.protocols.cd_digits_training import DigitsTrainingConfig, train_digits

        config = DigitsTrainingConfig(n_hidden=args.hidden, n_test_images=args.test_images,
                                      n_completion_images=args.completion_images, **common)
        result = train_digits(config, out_dir=args.out, resume=resume, progress=True)
        summary = result.summary()
        print(f"test accuracy: spiking {summary['test_accuracy']:.3f} (before fine-tuning "
              f"{summary['test_accuracy_before_finetuning']:.3f}), exact-Gibbs baseline "
              f"{summary['baseline_test_accuracy']:.3f}; completion error: spiking "
              f"{summary['completion_error']:.3f}, baseline {summary['baseline_completion_error']:.3f}")
    print(f"results, figures and checkpoint in {args.out}/")
    return 0


def add_train_cd_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``train-cd`` subcommand on ``subparsers``."""
    from cortexsim.cli import add_common_arguments

    parser = subparsers.add_parser("train-cd", help="contrastive-divergence training on a spiking sampling network",
                                   description=__doc__.split("\n")[0])
    add_common_arguments(parser, "out/train_cd")
    parser.add_argument("--task", choices=("target", "digits"), default="target",
                        help="target: sample from a BM's distribution; digits: RBM on 8x8 digits")
    parser.add_argument("--iterations", type=int, default=100, help="parameter updates (default: 100)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="initial learning rate eta0 > 0 (default: 1.0 target, 0.005 digits)")
    parser.add_argument("--schedule", choices=("constant", "inverse"), default="inverse",
                        help="learning-rate schedule: eta0 or eta0 * tau / (tau + t) (default: inverse)")
    parser.add_argument("--schedule-tau", type=float, default=None,
                        help="tau of the inverse schedule (iterations; default: 20 target, 100 digits)")
    parser.add_argument("--momentum", type=float, default=0.5, help="momentum in [0, 1) (default: 0.5)")
    parser.add_argument("--checkpoint-every", type=int, default=None,
                        help="iterations between checkpoints (default: 5 target, 25 digits)")
    parser.add_argument("--resume", type=Path, default=None, metavar="DIR",
                        help="continue the killed run whose checkpoint.json is in DIR (outputs go there; "
                             "give the same settings)")
    target = parser.add_argument_group("target task")
    target.add_argument("--bm", type=Path, default=None, help='JSON {"W": [[...]], "b": [...]} target BM')
    target.add_argument("--neurons", type=int, default=5, help="units of the random target BM (default: 5)")
    target.add_argument("--init", choices=("translated", "random"), default="translated",
                        help="start from the translated target or from a random BM")
    target.add_argument("--sampling-ms", type=float, default=10000.0,
                        help="sampling time per iteration (ms, default: 1e4; longer iterations amortise the "
                             "fixed cost of reading spikes and setting weights)")
    target.add_argument("--eval-duration", type=float, default=100000.0,
                        help="sampling time of the before/after D_KL measurements (ms, default: 1e5)")
    digits = parser.add_argument_group("digits task")
    digits.add_argument("--hidden", type=int, default=100, help="hidden units (default: 100)")
    digits.add_argument("--test-images", type=int, default=0, metavar="N",
                        help="test images classified by the spiking network before and after fine-tuning "
                             "(the first N of the test split; default 0: all 359, 0.22 s of simulated time each)")
    digits.add_argument("--completion-images", type=int, default=100, metavar="N",
                        help="test images whose bottom half is completed (default: 100)")
    parser.set_defaults(handler=_cmd_train_cd)
    return parser
