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
    parser.add_argument("--out", type=Path, default=Path(default_out), help=f"output folder (default: {default_out})")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cortexsim`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from cortexsim.protocols.backend_cli import apply_backend_options, record_chip

        apply_backend_options(args)  # books the chip a chip backend runs on (no-op otherwise)
        code = int(args.handler(args) or 0)
        record_chip(args)  # which chip it ran on, into results.json (no-op for backends without a chip)
        return code
    except ValueError as exc:
        print(f"cortexsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cortexsim {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
