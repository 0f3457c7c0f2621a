"""The command table: every subcommand of ``cortexsim`` is one :class:`Command` in :data:`COMMANDS`.

A subcommand runs a protocol: a frozen config dataclass (its fields documented with units) and a
function ``run(config, out_dir, progress) -> Result`` in a module of :mod:`cortexsim.protocols`. An
entry names the protocol (``"module:ConfigClass"`` per task) and maps its own options to config
fields; :mod:`cortexsim.cli` builds the parser from the table and gives every subcommand the same
contract (``--seed``, ``--out``, ``--config``, ``-v/-q``; ``--backend``, ``--dt``, ``--parameter-set``
and the chip options where the config has those fields; ``--resume`` where ``run`` resumes).

Adding a subcommand::

    Command("mything", "one line of help",
            {"mything": P + "mything:MyThingConfig"},
            (Option("--iterations", "iterations"), Option("--rate", "rate_hz"))),

Help texts and defaults come from the config's field documentation. Checks that hold for every
subcommand go to :data:`CHECKS`, a command's own ones to :attr:`Command.checks`; lines printed after
a run other than the headline figures come from :attr:`Command.report`. Nothing here imports a
protocol: modules are loaded when a command is used.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

__all__ = ["Option", "Command", "COMMANDS", "CHECKS", "P"]


@dataclass(frozen=True)
class Option:
    """A command-line option that sets one config field.

    Attributes
    ----------
    flag : str
        ``--name`` (or a bare name for a positional argument).
    field : str
        The config field it sets.
    help : str, optional
        Help text; default: the field's documentation in the config class.
    negate : bool
        A flag that sets a boolean field to False (e.g. ``--no-cache`` for ``use_cache``).
    action : str, optional
        ``"append"``: the option may be given several times (a tuple field).
    metavar : str, optional
    """

    flag: str
    field: str
    help: str | None = None
    negate: bool = False
    action: str | None = None
    metavar: str | None = None

    @property
    def positional(self) -> bool:
        return not self.flag.startswith("-")


@dataclass(frozen=True)
class Command:
    """One subcommand.

    Attributes
    ----------
    name : str
        The subcommand.
    help : str
        One line.
    protocols : mapping
        Task name -> ``"module:ConfigClass"`` of the protocol; with several tasks the command gets
        ``--task`` (and a config with a ``task`` field receives it). The module provides
        ``run(config, out_dir, progress[, resume])``.
    options : tuple of Option
        The command's own options (the common ones are added from the config's fields).
    defaults : str, optional
        Name of a function of the protocol module: ``function(task)`` returns defaults that depend on
        the config's ``task`` field (applied to fields neither the user nor ``--config`` set).
    checks : tuple of callables
        ``check(config, args)`` run before any simulation, after :data:`CHECKS`; raise ValueError.
    handler : callable, optional
        For commands without a protocol (``backends``): ``handler(args) -> exit code``.
    add_arguments : callable, optional
        Their arguments.
    report : str, optional
        Name of a function of the protocol module: ``report(result) -> list of str``, the lines printed
        after a run (default: the headline figures, ``result.summary()``).
    """

    name: str
    help: str
    protocols: Mapping[str, str] = field(default_factory=dict)
    options: tuple = ()
    defaults: str | None = None
    checks: tuple = ()
    handler: Callable | None = None
    add_arguments: Callable | None = None
    report: str | None = None

    @property
    def tasks(self) -> list[str]:
        return list(self.protocols)

    def protocol(self, task: str | None = None):
        """(module, config class) of ``task`` (the first task by default)."""
        spec = self.protocols[task or self.tasks[0]]
        module_name, class_name = spec.split(":")
        module = importlib.import_module(module_name)
        return module, getattr(module, class_name)


def _check_output_folder(config, args) -> None:
    """The output folder must be a folder (or not exist yet)."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")


def _check_pong_chip(config, args) -> None:
    """Pong runs on bss2's plasticity processors and calibrates its neurons' membranes itself."""
    chip = getattr(args, "chip", None)
    if chip is not None and chip != "bss2":
        raise ValueError(f"--chip: pong runs on bss2 (its plasticity processors), got {chip!r}")
    if getattr(args, "chip_calibration", None) is not None:
        raise ValueError("--chip-calibration: pong calibrates the neurons' membranes itself (BrainScaleS-2's "
                         "calibrated cells); leave it out")


#: Checks every subcommand runs on its config and arguments before any simulation (``check(config, args)``,
#: raising ValueError with a message naming the parameter). Output-folder rules and other checks that
#: hold for every protocol go here; a command's own ones go to :attr:`Command.checks`.
CHECKS: list[Callable] = [_check_output_folder]


def _handle_backends(args) -> int:
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


def _add_backends_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="also list backends whose packages are missing")


P = "cortexsim.protocols."

#: Every subcommand, in the order ``cortexsim --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    Command("calibrate", "measure and fit the activation function (cached)",
            {"activation": P + "calibration:CalibrationConfig"},
            (Option("--points", "n_points"), Option("--duration", "duration_ms"),
             Option("--no-cache", "use_cache", negate=True, help="measure even if a cached fit exists"))),
    Command("sample", "sample from a Boltzmann machine with LIF neurons",
            {"bm": P + "sampling:SamplingConfig"},
            (Option("--neurons", "n_neurons"), Option("--duration", "duration_ms"),
             Option("--bm", "bm_file", metavar="FILE"), Option("--synapses", "synapses"))),
    Command("train-cd", "contrastive-divergence training on a spiking sampling network",
            {"target": P + "cd_training:TargetTrainingConfig", "digits": P + "cd_digits:DigitsTrainingConfig",
             "mnist": P + "cd_digits:MnistTrainingConfig"},
            (Option("--iterations", "iterations"), Option("--learning-rate", "learning_rate"),
             Option("--schedule", "schedule"), Option("--schedule-tau", "schedule_tau"),
             Option("--momentum", "momentum"), Option("--checkpoint-every", "checkpoint_every"),
             Option("--bm", "target_file", metavar="FILE"), Option("--neurons", "n_neurons"),
             Option("--init", "init"), Option("--sampling-ms", "sampling_ms"),
             Option("--eval-duration", "eval_duration_ms"), Option("--hidden", "n_hidden"),
             Option("--test-images", "n_test_images", metavar="N"),
             Option("--completion-images", "n_completion_images", metavar="N"),
             Option("--n-hidden", "n_hidden"), Option("--n-train", "n_train_images", metavar="N"),
             Option("--n-test", "n_test_images", metavar="N"),
             Option("--validation-images", "validation_images", metavar="N"),
             Option("--occlusions", "occlusions", metavar="half,quarter,random30"),
             Option("--pretrain-iterations", "pretrain_iterations"), Option("--eval-read", "eval_read_ms"),
             Option("--average-fraction", "average_fraction"), Option("--model-ms", "model_ms"),
             Option("--free-chains", "free_chains", metavar="K"), Option("--data-copies", "data_copies", metavar="D"))),
    Command("ensemble", "sampling networks that are each other's noise vs Poisson noise",
            {"target": P + "ensemble:EnsembleConfig", "digits": P + "ensemble_data:EnsembleDataConfig",
             "mnist": P + "ensemble_data:EnsembleDataConfig"},
            (Option("--networks", "n_networks"), Option("--neurons", "n_neurons"), Option("--in-degree", "in_degree"),
             Option("--source-sharing", "source_sharing"),
             Option("--source-units", "source_units", metavar="all|hidden"),
             Option("--background-synapse", "background_synapse"),
             Option("--tau-rec", "tau_rec_ms"), Option("--train-iterations", "train_iterations"),
             Option("--sampling", "sampling_ms"), Option("--sampling-end", "sampling_end_ms"),
             Option("--average-fraction", "average_fraction"), Option("--eval-duration", "eval_duration_ms"),
             Option("--calibration-duration", "calibration_ms"), Option("--checkpoint-every", "checkpoint_every"),
             Option("--poisson-backend", "poisson_backend"), Option("--calibration-points", "calibration_points"),
             Option("--calibration-groups", "calibration_groups"), Option("--membrane-probes", "membrane_probes"),
             Option("--learning-rate", "learning_rate"), Option("--hidden", "n_hidden"),
             Option("--batch-size", "batch_size"), Option("--test-images", "n_test_images", metavar="N"),
             Option("--completion-images", "n_completion_images", metavar="N"),
             Option("--occlusions", "occlusions", metavar="half,quarter,random30"),
             Option("--pretrain-iterations", "pretrain_iterations"), Option("--model-ms", "model_ms"),
             Option("--eval-read", "eval_read_ms"), Option("--stagger-groups", "stagger_groups", metavar="G"),
             Option("--background-tracking", "background_tracking", metavar="off|translation|weights"),
             Option("--validation-images", "validation_images", metavar="N"),
             Option("--train-images", "n_train_images", metavar="N"), Option("--image-side", "image_side")),
            defaults="task_defaults"),
    Command("microcircuit", "train a dendritic cortical microcircuit (Sacramento 2018)",
            {"microcircuit": P + "microcircuit:MicrocircuitConfig"},
            (Option("--task", "task"), Option("--dynamics", "dynamics"), Option("--epochs", "epochs"),
             Option("--n-train", "n_train"), Option("--n-test", "n_test"), Option("--topdown", "topdown"),
             Option("--sizes", "sizes", metavar="784,1000,10"), Option("--eta-up", "eta_up", metavar="RATES"),
             Option("--eta-ip", "eta_ip", metavar="RATES"), Option("--eta-pi", "eta_pi", metavar="RATES"),
             Option("--eta-down", "eta_down", metavar="RATES"),
             Option("--batch-size", "batch_size"), Option("--learning", "learning"),
             Option("--backprop-lr", "backprop_lr", metavar="RATES"), Option("--shallow", "shallow"),
             Option("--interneuron-plasticity", "interneuron_plasticity"), Option("--readout", "readout"),
             Option("--interneuron-phase", "interneuron_phase"), Option("--weight-scale", "weight_scale"),
             Option("--free-ms", "free_ms"), Option("--nudge-ms", "nudge_ms"), Option("--settle-ms", "settle_ms"),
             Option("--tau-w", "tau_w"), Option("--validation", "validation"))),
    Command("urbanczik", "Urbanczik-Senn dendritic-prediction learning (NEST / Brian2)",
            {"urbanczik": P + "urbanczik:UrbanczikRunConfig"},
            (Option("--backends", "backends", metavar="nest,brian2"), Option("--repetitions", "n_repetitions"))),
    Command("lagrangian", "real-time learning with Latent Equilibrium dynamics",
            {**{task: P + "lagrangian:LagrangianConfig" for task in ("bars", "yinyang", "digits")},
             **{task: P + "lagrangian_images:ImageLagrangianConfig" for task in ("mnist", "fashion")}},
            (Option("--t-pres", "t_pres"), Option("--n-seeds", "n_seeds"), Option("--dynamics", "dynamics"),
             Option("--errors", "errors"), Option("--tau", "tau"), Option("--epochs", "epochs"),
             Option("--hidden", "hidden"), Option("--n-train", "n_train"), Option("--n-test", "n_test"),
             Option("--copies", "copies"), Option("--lr", "lr"), Option("--validation", "validation")),
            defaults="task_defaults"),
    Command("validate", "run a PyNN model on several backends and compare statistics",
            {"validation": P + "validation:ValidationConfig"},
            (Option("model", "model", help="Python file or module defining build(sim)"),
             Option("--backends", "backends", metavar="nest,brian2"), Option("--repeats", "repeats"),
             Option("--duration", "duration_ms"), Option("--transient", "transient_ms"),
             Option("--alpha", "alpha"), Option("--correction", "correction"),
             Option("--alter", "alterations", action="append", metavar="BACKEND:PARAM=FACTOR")),
            report="report_lines"),
    Command("mixing", "mixing between modes: depressing vs renewing recurrent synapses (Leng et al. 2018)",
            {"mixing": P + "mixing:MixingConfig"},
            (Option("--target", "target"), Option("--duration", "duration_ms"),
             Option("--mechanisms", "mechanisms", metavar="renewing,depressing"), Option("--U", "U"),
             Option("--tau-rec", "tau_rec_ms"), Option("--weight-factor-scale", "weight_factor_scale"),
             Option("--weight-correction", "weight_correction"), Option("--cd-iterations", "cd_iterations"),
             Option("--units", "n_units"), Option("--coupling", "coupling"),
             Option("--mode-distance", "mode_max_distance"), Option("--tempering-replicas", "tempering_replicas"),
             Option("--hidden", "digits_hidden"), Option("--class-window", "class_window_ms"),
             Option("--state-window", "state_window_ms"), Option("--cd-learning-rate", "cd_learning_rate"),
             Option("--no-cd-tie", "cd_tied", negate=True))),
    Command("pong", "Pong learned with reward-modulated STDP on the emulated BrainScaleS-2 chip or NEST",
            {"pong": P + "pong:PongConfig"},
            (Option("--iterations", "iterations"), Option("--rows", "n_rows"),
             Option("--probe-repeats", "probe_repeats"), Option("--eval-repeats", "eval_repeats")),
            checks=(_check_pong_chip,)),
    Command("backends", "list the simulator backends, whether installed, and their capabilities",
            handler=_handle_backends, add_arguments=_add_backends_arguments),
)

