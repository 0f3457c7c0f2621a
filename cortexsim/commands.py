"""The subcommands of ``cortexsim``: their options and how parsed options become a protocol run.

Part of the CLI layer (imported only by :mod:`cortexsim.cli`, which holds the command table).
Each subcommand has an ``add_<name>_arguments(parser)`` function and a handler ``handle_<name>(args)``
returning the exit code. Times are in ms everywhere.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

__all__ = ["add_common_arguments", "add_chip_options", "book_chip", "record_chip", "CHIP_OPTIONS"]


# --- options every simulation subcommand has ---------------------------------------------------------

def add_common_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """``--backend``, ``--seed``, ``--out``, ``--dt``, ``--parameter-set`` and the chip options."""
    from cortexsim.backends import known_backends
    from cortexsim.parameters import PARAMETER_SETS

    parser.add_argument("--backend", default="nest",
                        help=f"simulator backend, one of {', '.join(known_backends())} (default: nest)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the run (default: 1)")
    parser.add_argument("--out", type=Path, default=Path(default_out), help=f"output folder (default: {default_out})")
    parser.add_argument("--dt", type=float, default=0.1, help="integration step in ms (default: 0.1)")
    parser.add_argument("--parameter-set", choices=tuple(PARAMETER_SETS), default="default",
                        help="neuron and noise parameter set of references §1 (default: default)")
    add_chip_options(parser)


# --- chip backends: which chip, which copy of it, calibrated or not ----------------------------------
#
# A chip backend (one whose module has ``select_chip``, e.g. ``brainscales``) runs every ``setup()`` of
# a protocol on the booked chip; these options book it before the subcommand runs, the way a chip is
# allocated to a job on hardware. The chip seed is the chip's identity (its fixed-pattern noise),
# separate from ``--seed`` (the run's randomness). Options left out keep the backend's defaults
# (brainscales: bss2, chip seed 0, uncalibrated). Giving a chip option with a backend that has no
# chip is an error, not silently ignored.

#: argparse destination -> keyword of the backend's ``select_chip``.
CHIP_OPTIONS = {"chip": "chip", "chip_seed": "chip_seed", "chip_calibration": "calibration"}


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def add_chip_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--chip``, ``--chip-seed`` and ``--chip-calibration`` (for chip backends) to ``parser``.

    The chip names are checked by the backend when the chip is booked (importing the backend here
    would load its simulator for every ``--help``).
    """
    group = parser.add_argument_group("chip backends (--backend brainscales)")
    group.add_argument("--chip", default=None, metavar="{bss2,bss1}",
                       help="which chip to emulate (default: the backend's, bss2)")
    group.add_argument("--chip-seed", type=_non_negative_int, default=None, metavar="N",
                       help="identity of the chip (its fixed-pattern noise; the same seed is the same chip "
                            "every run; default: 0); independent of --seed")
    group.add_argument("--chip-calibration", default=None, metavar="{none,auto,PATH}",
                       help="none: uncalibrated chip (default); auto: measure once and cache per chip; "
                            "PATH: load from or write to this JSON file")


def _chip_options(args: argparse.Namespace) -> dict:
    options = {}
    for dest, keyword in CHIP_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest == "chip_calibration":
            value = None if value == "none" else value
        options[keyword] = value
    return options


def book_chip(args: argparse.Namespace) -> dict | None:
    """Book the chip the parsed ``args`` ask for; returns the booking (plain data) or None.

    Raises
    ------
    ValueError
        A chip option was given for a backend without a chip, naming the options and the backend.
    """
    options = _chip_options(args)
    if not options:
        return None
    from cortexsim.backends import load_backend

    backend = getattr(args, "backend", None)
    given = ", ".join("--" + dest.replace("_", "-") for dest in CHIP_OPTIONS if getattr(args, dest, None) is not None)
    sim = load_backend(backend) if backend is not None else None
    select_chip = getattr(sim, "select_chip", None)
    if select_chip is None:
        raise ValueError(f"{given} apply to backends that run on a chip (e.g. --backend brainscales), "
                         f"not to --backend {backend}")
    select_chip(**options)
    booked = asdict(sim.selected_chip())
    print("chip: " + ", ".join(f"{name}={value}" for name, value in booked.items()))
    return booked


def record_chip(args: argparse.Namespace) -> dict | None:
    """Write the chip a chip backend ran on into the subcommand's ``results.json`` (key ``"chip"``).

    A no-op (None) for backends without a chip, or when the subcommand wrote no ``results.json`` in
    ``args.out``. The booking is the one in force after the run (``--chip``/``--chip-seed``/
    ``--chip-calibration``, or the backend's default chip); returns it.
    """
    backend, out = getattr(args, "backend", None), getattr(args, "out", None)
    if not isinstance(backend, str) or out is None:
        return None
    from cortexsim.backends import load_backend
    from cortexsim.results import write_json_atomic

    path = Path(out) / "results.json"
    sim = load_backend(backend)
    if getattr(sim, "selected_chip", None) is None or not path.exists():
        return None
    booked = asdict(sim.selected_chip())
    results = json.loads(path.read_text())
    results["chip"] = booked
    write_json_atomic(path, results)
    return booked


# --- calibrate -----------------------------------------------------------------------------------------

def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "out/calibration")
    parser.add_argument("--points", type=int, default=60, help="leak potentials in the fine sweep")
    parser.add_argument("--duration", type=float, default=30000.0, help="simulated time of the fine sweep (ms)")
    parser.add_argument("--no-cache", action="store_true", help="measure even if a cached fit exists")


def handle_calibrate(args) -> int:
    from cortexsim.analysis.plots import plot_activation_function
    from cortexsim.parameters import parameter_set
    from cortexsim.protocols.calibration import CalibrationConfig, calibrate
    from cortexsim.results import output_dir, write_json_atomic

    neuron, noise = parameter_set(args.parameter_set)
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


# --- sample --------------------------------------------------------------------------------------------

def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "out/sample")
    parser.add_argument("--neurons", type=int, default=5, help="units of the random BM (default: 5)")
    parser.add_argument("--duration", type=float, default=10000.0, help="simulated time (ms, default: 10000)")
    parser.add_argument("--bm", type=Path, default=None,
                        help='JSON file {"W": [[...]], "b": [...]} with your own Boltzmann machine')
    parser.add_argument("--synapses", choices=("renewing", "static"), default="renewing",
                        help="recurrent synapses (default: renewing)")


def handle_sample(args) -> int:
    from cortexsim.models.boltzmann import BoltzmannMachine
    from cortexsim.parameters import parameter_set
    from cortexsim.protocols.sampling import SamplingConfig, sample

    neuron, noise = parameter_set(args.parameter_set)
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


# --- train-cd ------------------------------------------------------------------------------------------

def add_train_cd_arguments(parser: argparse.ArgumentParser) -> None:
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


def handle_train_cd(args) -> int:
    from cortexsim.parameters import parameter_set

    neuron, noise = parameter_set(args.parameter_set)
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

        config = DigitsTrainingConfig(n_hidden=args.hidden, **common)
        result = train_digits(config, out_dir=args.out, resume=resume, progress=True)
        summary = result.summary()
        print(f"test accuracy: spiking {summary['test_accuracy']:.3f} (before fine-tuning "
              f"{summary['test_accuracy_before_finetuning']:.3f}), exact-Gibbs baseline "
              f"{summary['baseline_test_accuracy']:.3f}; completion error: spiking "
              f"{summary['completion_error']:.3f}, baseline {summary['baseline_completion_error']:.3f}")
    print(f"results, figures and checkpoint in {args.out}/")
    return 0


# --- ensemble ------------------------------------------------------------------------------------------

def add_ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "out/ensemble")
    parser.add_argument("--networks", type=int, default=50, help="M networks (>= 2, default 50)")
    parser.add_argument("--neurons", type=int, default=5, help="N neurons per network (default 5)")
    parser.add_argument("--in-degree", type=int, default=30, help="K exc. and K inh. background sources (default 30)")
    parser.add_argument("--source-sharing", choices=("random", "disjoint"), default="random",
                        help="disjoint: neurons of one network share no background source (needs 2K <= M - 1)")
    parser.add_argument("--background-synapse", choices=("depressing", "static"), default="depressing",
                        help="background synapses: depressing (TM, U=1; default) or static")
    parser.add_argument("--tau-rec", type=float, default=40.0,
                        help="recovery time constant of depressing background synapses (ms, default 40)")
    parser.add_argument("--train-iterations", type=int, default=150, help="CD iterations per noise mode (default 150)")
    parser.add_argument("--sampling", type=float, default=1000.0, help="sampling time per iteration (ms, default 1000)")
    parser.add_argument("--sampling-end", type=float, default=None,
                        help="sampling time of the last iteration (ms; linear growth; default: constant)")
    parser.add_argument("--average-fraction", type=float, default=0.0,
                        help="average the parameters over this last fraction of iterations (default 0: last iterate)")
    parser.add_argument("--eval-duration", type=float, default=50000.0, help="evaluation time (ms, default 50000)")
    parser.add_argument("--calibration-duration", type=float, default=20000.0,
                        help="background measurement time (ms, default 20000)")


def handle_ensemble(args) -> int:
    from cortexsim.parameters import parameter_set
    from cortexsim.protocols.ensemble import EnsembleConfig, run_ensemble

    neuron, noise = parameter_set(args.parameter_set)
    config = EnsembleConfig(seed=args.seed, backend=args.backend, n_networks=args.networks, n_neurons=args.neurons,
                            in_degree=args.in_degree, source_sharing=args.source_sharing,
                            background_synapse=args.background_synapse, tau_rec_ms=args.tau_rec,
                            train_iterations=args.train_iterations,
                            sampling_ms=args.sampling, sampling_end_ms=args.sampling_end,
                            average_fraction=args.average_fraction, eval_duration_ms=args.eval_duration,
                            calibration_ms=args.calibration_duration, dt_ms=args.dt, neuron=neuron, noise=noise)
    results = run_ensemble(config, out_dir=args.out, progress=True)
    for key in ("dkl_poisson_untrained", "dkl_poisson_trained", "dkl_ensemble_untrained", "dkl_ensemble_trained"):
        q = results[key]
        print(f"{key}: median {q['median']:.4f} (quartiles {q['q25']:.4f}-{q['q75']:.4f})")
    for mode, bg in results["background"].items():
        print(f"{mode} background: input rate {bg['inputs']['mean_rate_hz']:.1f} Hz, CV {bg['inputs']['mean_cv']:.2f}, "
              f"mean |corr| {bg['inputs']['mean_abs_correlation']:.3f}; free membrane std "
              f"{bg['free_membrane']['std_mv']:.2f} mV, correlation time "
              f"{bg['free_membrane']['correlation_time_ms']:.1f} ms")
    print(f"results: {args.out / 'results.json'}; figures: {', '.join(results['files'].values())}")
    return 0


# --- microcircuit --------------------------------------------------------------------------------------

def _floats(text: str) -> tuple:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> tuple:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_microcircuit_arguments(parser: argparse.ArgumentParser) -> None:
    from cortexsim.protocols.microcircuit import LEARNING, TASKS

    parser.add_argument("--task", choices=TASKS, default="yinyang")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="output folder for results.json and figures")
    parser.add_argument("--dynamics", choices=("steady", "full"), default="steady")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--n-train", type=int, default=None,
                        help="training samples (mnist/fashion: first N of the shuffled training set; default all)")
    parser.add_argument("--n-test", type=int, default=None, help="test samples (default: task default / all)")
    parser.add_argument("--topdown", choices=("fixed-random", "fixed", "transposed", "learned"), default=None,
                        help="top-down weights: fixed random (= fixed), transpose of the forward weights, or learned")
    parser.add_argument("--sizes", type=_ints, default=None, help="layer sizes, e.g. 784,1000,10")
    parser.add_argument("--eta-up", type=_floats, default=None, help="forward learning rates (1/ms), one per layer")
    parser.add_argument("--eta-ip", type=_floats, default=None, help="interneuron learning rates (1/ms)")
    parser.add_argument("--eta-pi", type=_floats, default=None, help="interneuron-to-pyramid learning rates (1/ms)")
    parser.add_argument("--batch-size", type=int, default=None, help="patterns per update (full dynamics: copies)")
    parser.add_argument("--learning", choices=LEARNING, default="microcircuit",
                        help="'backprop' trains the equivalent feed-forward network with plain backprop (reference)")
    parser.add_argument("--backprop-lr", type=_floats, default=None,
                        help="backprop learning rates per sample, one per weight layer")
    parser.add_argument("--shallow", action="store_true", help="train only the output layer")
    parser.add_argument("--interneuron-plasticity", choices=("always", "free_phase"), default="always",
                        help="full dynamics: lateral weights learn always or only in free phases")
    parser.add_argument("--readout", choices=("membrane", "prospective"), default="membrane",
                        help="full dynamics: rates from membrane or prospective (LE-style) potentials")
    parser.add_argument("--free-ms", type=float, default=None, help="full dynamics: free phase per pattern (ms)")
    parser.add_argument("--nudge-ms", type=float, default=None, help="full dynamics: nudged phase per pattern (ms)")
    parser.add_argument("--settle-ms", type=float, default=0.0,
                        help="full dynamics: plasticity starts this long after each phase begins (ms)")
    parser.add_argument("--tau-w", type=float, default=30.0, help="full dynamics: plasticity low-pass (ms)")
    parser.add_argument("--validation", action="store_true",
                        help="mnist/fashion: evaluate on 10,000 held-out training images instead of the test set")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")


def handle_microcircuit(args) -> int:
    from cortexsim.protocols.microcircuit import MicrocircuitConfig, run_microcircuit

    topdown = "fixed" if args.topdown == "fixed-random" else args.topdown
    cfg = MicrocircuitConfig(seed=args.seed, task=args.task, dynamics=args.dynamics, epochs=args.epochs,
                             topdown=topdown, shallow=args.shallow, n_train=args.n_train, n_test=args.n_test,
                             sizes=args.sizes, eta_up=args.eta_up, eta_ip=args.eta_ip, eta_pi=args.eta_pi,
                             batch_size=args.batch_size, learning=args.learning, backprop_lr=args.backprop_lr,
                             interneuron_plasticity=args.interneuron_plasticity, readout=args.readout,
                             free_ms=args.free_ms, nudge_ms=args.nudge_ms, settle_ms=args.settle_ms,
                             tau_w=args.tau_w, validation=args.validation, resume=args.resume)
    result = run_microcircuit(cfg, args.out, progress=True)
    print(json.dumps(result.final, indent=2))
    return 0


# --- urbanczik -----------------------------------------------------------------------------------------

def add_urbanczik_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--simulator", choices=("nest", "brian2", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1, help="seed of input pattern, teacher and spikes")
    parser.add_argument("--repetitions", type=int, default=100, help="teaching repetitions of the pattern")
    parser.add_argument("--out", type=Path, default=Path("out/urbanczik"), help="output folder")


def handle_urbanczik(args) -> int:
    from cortexsim.models.microcircuit.urbanczik import UrbanczikConfig
    from cortexsim.protocols.urbanczik import SIMULATORS, run_urbanczik

    simulators = SIMULATORS if args.simulator == "both" else (args.simulator,)
    config = UrbanczikConfig(seed=args.seed, n_repetitions=args.repetitions)
    results = run_urbanczik(config, simulators, args.out)
    print(json.dumps([r.summary() for r in results], indent=2))
    print(f"figure and results in {args.out}/")
    return 0


# --- lagrangian ----------------------------------------------------------------------------------------

def add_lagrangian_arguments(parser: argparse.ArgumentParser) -> None:
    from cortexsim.protocols.lagrangian import DYNAMICS, TASKS
    from cortexsim.protocols.lagrangian_images import IMAGE_TASKS

    parser.add_argument("--task", choices=TASKS + IMAGE_TASKS, required=True)
    parser.add_argument("--t-pres", type=float, default=None,
                        help="presentation time per pattern (ms; required except for mnist/fashion: tau / 20)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--n-seeds", type=int, default=5, help="networks trained side by side (seeds seed..)")
    parser.add_argument("--dynamics", choices=DYNAMICS + ("backprop",), default="latent_equilibrium",
                        help="'backprop' (mnist/fashion only): plain backprop of the same network, the reference")
    parser.add_argument("--errors", choices=("direct", "microcircuit"), default="direct")
    parser.add_argument("--tau", type=float, default=10.0, help="membrane time constant (ms)")
    parser.add_argument("--epochs", type=int, default=0, help="passes through the training set (0: task default)")
    parser.add_argument("--hidden", type=int, default=0, help="hidden units (0: task default)")
    parser.add_argument("--n-train", type=int, default=None,
                        help="mnist/fashion: first N training images (default all)")
    parser.add_argument("--n-test", type=int, default=None, help="mnist/fashion: first N test images (default all)")
    parser.add_argument("--copies", type=int, default=None, help="mnist/fashion: images shown side by side (batch)")
    parser.add_argument("--lr", type=float, default=None, help="mnist/fashion: learning rate per presentation")
    parser.add_argument("--validation", action="store_true",
                        help="mnist/fashion: evaluate on 10,000 held-out training images instead of the test set")
    parser.add_argument("--out", required=True, help="output folder for results.json and figures")


def handle_lagrangian(args) -> int:
    from cortexsim.protocols.lagrangian import LagrangianConfig, run_lagrangian, task_defaults
    from cortexsim.protocols.lagrangian_images import IMAGE_TASKS, ImageLagrangianConfig, run_lagrangian_images

    if args.task in IMAGE_TASKS:
        if args.errors != "direct":
            raise ValueError("errors 'microcircuit' is not available for the mnist and fashion tasks")
        extra = {k: v for k, v in (("epochs", args.epochs or None), ("lr", args.lr), ("copies", args.copies))
                 if v is not None}
        cfg = ImageLagrangianConfig(task=args.task, seed=args.seed, dynamics=args.dynamics, tau=args.tau,
                                    t_pres=args.t_pres, n_train=args.n_train, n_test=args.n_test,
                                    validation=args.validation, **extra)
        result = run_lagrangian_images(cfg, out_dir=args.out, progress=True)
        print(json.dumps(result.summary(), indent=2))
        return 0
    if args.dynamics == "backprop":
        raise ValueError("dynamics 'backprop' is available for the mnist and fashion tasks only")
    if args.t_pres is None:
        raise ValueError(f"--t-pres is required for task {args.task!r}")
    settings = task_defaults(args.task)
    if args.hidden:
        settings["hidden"] = args.hidden
    if args.epochs:
        settings["epochs"] = args.epochs
    cfg = LagrangianConfig(task=args.task, t_pres=args.t_pres, seed=args.seed, n_seeds=args.n_seeds,
                           dynamics=args.dynamics, errors=args.errors, tau=args.tau, **settings)
    result = run_lagrangian(cfg, out_dir=args.out, progress=True)
    print(json.dumps(result.summary(), indent=2))
    return 0


# --- validate ------------------------------------------------------------------------------------------

def add_validate_arguments(parser: argparse.ArgumentParser) -> None:
    from cortexsim.analysis.compare import CORRECTIONS
    from cortexsim.backends import known_backends

    parser.add_argument("model", help="Python file or module defining build(sim)")
    parser.add_argument("--backends", default="nest,brian2",
                        help=f"comma-separated backends (default nest,brian2; known: {', '.join(known_backends())})")
    parser.add_argument("--repeats", type=int, default=5, help="runs per backend with different seeds (default 5)")
    parser.add_argument("--duration", type=float, default=None, help="simulated time per run (ms; default: model's)")
    parser.add_argument("--transient", type=float, default=None, help="initial time left out (ms; default: model's)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first repeat (default 1)")
    parser.add_argument("--dt", type=float, default=0.1, help="integration step (ms, default 0.1)")
    parser.add_argument("--alpha", type=float, default=0.05, help="error rate of the corrected tests (default 0.05)")
    parser.add_argument("--correction", choices=CORRECTIONS, default="holm", help="multiple-comparison correction")
    parser.add_argument("--alter", action="append", default=[], metavar="BACKEND:PARAM=FACTOR",
                        help="test hook: multiply a cell parameter on one backend, e.g. brian2:tau_m=1.2")
    parser.add_argument("--out", type=Path, default=Path("out/validate"), help="report folder (default out/validate)")


def handle_validate(args) -> int:
    from cortexsim.protocols.validation import Alteration, ValidationConfig, validate

    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    config = ValidationConfig(seed=args.seed, backends=backends, repeats=args.repeats, duration_ms=args.duration,
                              transient_ms=args.transient, dt_ms=args.dt, alpha=args.alpha,
                              correction=args.correction,
                              alterations=tuple(Alteration.parse(text) for text in args.alter))
    result = validate(args.model, config, out_dir=args.out, progress=args.quiet == 0)
    for name, run in result.backends.items():
        line = f"{name}: {run.status}" + (f" ({run.message})" if run.message else "")
        print(line)
        for note in run.notes:
            print(f"{name}: note: {note}")
    for c in result.comparisons:
        print(f"{c.population:>14s} {c.statistic:>12s} {c.group_a} vs {c.group_b}: {c.verdict:8s} "
              f"{c.mean_a:10.4g} vs {c.mean_b:10.4g}  g = {c.hedges_g:7.2f}  p_adj = {c.p_adjusted:.3g}")
    if result.silent_populations:
        print(f"not compared (no spikes on any backend): {', '.join(result.silent_populations)}")
    if result.detectable.get("statement"):
        print(result.detectable["statement"])
    print(f"{result.verdict}; report: {result.files.get('html', '-')}")
    return result.exit_code


# --- backends ------------------------------------------------------------------------------------------

def add_backends_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="also list backends whose packages are missing")


def handle_backends(args) -> int:
    """Print the registered backends: installed or not, and their capabilities."""
    from cortexsim.backends.registry import BACKENDS, installed_backends, known_backends

    installed = set(installed_backends())
    for name in known_backends():
        if name not in installed and not args.all:
            continue
        info = BACKENDS[name]
        caps = info.capabilities
        state = "installed" if name in installed else "not installed (needs " + ", ".join(info.requires) + ")"
        print(f"{name}: {state}")
        print(f"    {info.description}")
        limits = [f"dt {caps.dt_range_ms[0]:g}-{caps.dt_range_ms[1]:g} ms",
                  f"weights {caps.weight_bits}-bit" if caps.weight_bits else "float weights",
                  f"max {caps.max_neurons} neurons" if caps.max_neurons else "any number of neurons",
                  f"fan-in <= {caps.max_fan_in}" if caps.max_fan_in else "any fan-in",
                  "delays" if caps.delays_allowed else "no delays",
                  "seedable" if caps.seedable else "not seedable",
                  f"speed-up {caps.speedup:g}"]
        print("    " + ", ".join(limits))
    return 0
