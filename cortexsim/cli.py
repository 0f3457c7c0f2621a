"""The ``cortexsim`` command: one subcommand per protocol.

    cortexsim calibrate --backend nest --seed 1 --out out/calibration
    cortexsim sample --backend nest --seed 1 --neurons 5 --duration 10000 --out out/sample
    cortexsim sample --bm my_bm.json --backend brian2 --seed 2 --out out/mine

Every subcommand takes ``--backend``, ``--seed`` and ``--out``; times are in ms. Protocol modules of
other parts of the package register their own subcommands through an ``add_cli(subparsers)``
function listed in :data:`PROTOCOL_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

#: Protocol modules that contribute subcommands through ``add_cli(subparsers)``.
PROTOCOL_MODULES = (
    "cortexsim.protocols.cd_training",
    "cortexsim.protocols.microcircuit",
    "cortexsim.protocols.urbanczik",
    "cortexsim.protocols.lagrangian",
    "cortexsim.protocols.validation",
    "cortexsim.protocols.ensemble",
)

PARAMETER_SETS = ("default", "dold")


def _parameter_set(name: str):
    from cortexsim.models import lif_translation as lt

    return {"default": (lt.DEFAULT_NEURON, lt.DEFAULT_NOISE), "dold": (lt.DOLD_NEURON, lt.DOLD_NOISE)}[name]


def add_common_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """``--backend``, ``--seed``, ``--out`` and ``--dt`` as every simulation subcommand has them."""
    from cortexsim.backends import known_backends

    parser.add_argument("--backend", default="nest",
                        help=f"simulator backend, one of {', '.join(known_backends())} (default: nest)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the run (default: 1)")
    parser.add_argument("--out", type=Path, default=Path(default_out),
                        help=f"output folder (default: {default_out}); refused if it holds another run's results")
    parser.add_argument("--dt", type=float, default=0.1, help="integration step in ms (default: 0.1)")
    parser.add_argument("--parameter-set", choices=PARAMETER_SETS, default="default",
                        help="neuron and noise parameter set of references §1 (default: default)")
    from cortexsim.protocols.backend_cli import add_backend_options

    add_backend_options(parser)      # --chip, --chip-seed, --chip-calibration for chip backends


def _cmd_calibrate(args) -> int:
    from cortexsim.analysis.plots import plot_activation_function
    from cortexsim.protocols.calibration import CalibrationConfig, calibrate
    from cortexsim.results import output_dir, write_json_atomic

    neuron, noise = _parameter_set(args.parameter_set)
    config = CalibrationConfig(seed=args.seed, backend=args.backend, neuron=neuron, noise=noise,
                               dt_ms=args.dt, n_points=args.points, duration_ms=args.duration)
    result = calibrate(config, use_cache=not args.no_cache, progress=True)
    out = output_dir(args.out)
    write_json_atomic(out / "results.json", result.to_dict())
    figure = plot_activation_function(result.e_leak, result.p_on, result.fit, out / "activation_function.png")
    origin = "from cache" if result.from_cache else f"measured in {result.wall_time_s:.1f} s"
    print(f"activation function on {args.backend} ({origin}): v_p05 = {result.fit.v_p05:.3f} mV, "
          f"alpha = {result.fit.alpha:.3f} mV")
    print(f"results: {out / 'results.json'}; figure: {figure}")
    return 0


def _cmd_sample(args) -> int:
    from cortexsim.models.boltzmann import BoltzmannMachine
    from cortexsim.protocols.sampling import SamplingConfig, sample

    neuron, noise = _parameter_set(args.parameter_set)
    bm = BoltzmannMachine.from_json(args.bm) if args.bm is not None else None
    config = SamplingConfig(seed=args.seed, backend=args.backend, n_neurons=args.neurons,
                            duration_ms=args.duration, dt_ms=args.dt, synapses=args.synapses,
                            neuron=neuron, noise=noise)
    result = sample(config, bm=bm, out_dir=args.out, progress=True)
    print(f"sampled {result.bm.n_units} neurons for {config.duration_ms:g} ms on {config.backend} "
          f"(simulation {result.simulation_time_s:.1f} s)")
    print(f"D_KL(sampled || target) = {result.dkl_sampled_target:.4f}")
    print(f"D_KL(target || sampled) = {result.dkl_target_sampled:.4f}")
    print(f"figures and data in {args.out}/: " + ", ".join(result.files.values()) + ", results.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(prog="cortexsim", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)

    calibrate = subparsers.add_parser("calibrate", help="measure and fit the activation function (cached)")
    add_common_arguments(calibrate, "out/calibration")
    calibrate.add_argument("--points", type=int, default=60, help="leak potentials in the fine sweep")
    calibrate.add_argument("--duration", type=float, default=30000.0, help="simulated time of the fine sweep (ms)")
    calibrate.add_argument("--no-cache", action="store_true", help="measure even if a cached fit exists")
    calibrate.set_defaults(handler=_cmd_calibrate)

    sample = subparsers.add_parser("sample", help="sample from a Boltzmann machine with LIF neurons")
    add_common_arguments(sample, "out/sample")
    sample.add_argument("--neurons", type=int, default=5, help="units of the random BM (default: 5)")
    sample.add_argument("--duration", type=float, default=10000.0, help="simulated time (ms, default: 10000)")
    sample.add_argument("--bm", type=Path, default=None,
                        help='JSON file {"W": [[...]], "b": [...]} with your own Boltzmann machine')
    sample.add_argument("--synapses", choices=("renewing", "static"), default="renewing",
                        help="recurrent synapses (default: renewing)")
    sample.set_defaults(handler=_cmd_sample)

    for module_name in PROTOCOL_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # that protocol is not part of this installation
            raise
        module.add_cli(subparsers)
    _add_overwrite_options(subparsers)
    return parser


def _add_overwrite_options(subparsers) -> None:
    """``--overwrite`` for every subcommand that writes into an output folder (``--out``)."""
    for parser in subparsers.choices.values():
        dests = {action.dest for action in parser._actions}
        if "out" in dests and "overwrite" not in dests:
            parser.add_argument("--overwrite", action="store_true",
                                help="replace the results of an earlier run in --out (its files are deleted first)")


def _output_folder(args) -> Path | None:
    """The folder the subcommand writes into: ``--resume DIR`` if given, else ``--out``."""
    resume = getattr(args, "resume", None)
    out = resume if resume is not None else getattr(args, "out", None)
    return Path(out) if out is not None else None


def validate_arguments(args, argv: list[str]) -> Path | None:
    """Checks of the parsed ``args`` that need no simulator, then the output folder is claimed.

    Seeds and integration steps against the backend's ranges, the chip options, and the output
    folder (:func:`cortexsim.results.prepare_output_dir`: writable, not holding another run's
    results unless ``--overwrite``, a checkpoint only with ``--resume``). Runs before the subcommand.

    Returns
    -------
    Path or None
        The claimed output folder.
    """
    from cortexsim.backends.registry import check_dt, check_seed
    from cortexsim.protocols.backend_cli import check_backend_options
    from cortexsim.results import prepare_output_dir

    backend = getattr(args, "backend", None)
    if getattr(args, "seed", None) is not None:
        if isinstance(backend, str):
            check_seed(backend, args.seed, "--seed")
        elif not 0 <= args.seed <= 2**32 - 2:
            raise ValueError(f"--seed must be an integer in [0, {2**32 - 2}], got {args.seed}")
    if isinstance(backend, str) and getattr(args, "dt", None) is not None:
        check_dt(backend, args.dt)
    check_backend_options(args)
    out = _output_folder(args)
    if out is None:
        return None
    resume = getattr(args, "resume", None) is not None
    return prepare_output_dir(out, args.command, overwrite=bool(getattr(args, "overwrite", False)), resume=resume,
                              resumable=hasattr(args, "resume"), argv=["cortexsim", *argv],
                              option="--resume" if resume else "--out")


def _resume_hint(args, argv: list[str], out: Path | None) -> str:
    if out is None or not hasattr(args, "resume") or not (out / "checkpoint.json").is_file():
        return ""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token in ("--out", "--resume"):
            skip = True
            continue
        if token == "--overwrite" or token.startswith(("--out=", "--resume=")):
            continue
        kept.append(token)
    return (f"; the last checkpoint is {out / 'checkpoint.json'}: continue with\n"
            f"  cortexsim {' '.join(kept)} --resume {out}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cortexsim`` command."""
    from cortexsim.results import finish_output_dir

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    out = None
    try:
        out = validate_arguments(args, argv)
        from cortexsim.protocols.backend_cli import apply_backend_options, record_chip

        apply_backend_options(args)  # books the chip a chip backend runs on (no-op otherwise)
        code = int(args.handler(args) or 0)
        record_chip(args)  # which chip it ran on, into results.json (no-op for backends without a chip)
        if out is not None:
            finish_output_dir(out, "finished" if code == 0 else f"exit {code}")
        return code
    except ValueError as exc:
        print(f"cortexsim {args.command}: error: {exc}", file=sys.stderr)
        if out is not None:
            finish_output_dir(out, "failed")
        return 2
    except KeyboardInterrupt:
        if out is not None:
            finish_output_dir(out, "interrupted")
        print(f"cortexsim {args.command}: interrupted{_resume_hint(args, argv, out)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
