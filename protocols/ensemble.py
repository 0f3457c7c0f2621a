"""Ensemble protocol: M sampling networks that are each other's noise, against Poisson-driven ones.

``run_ensemble(config)`` (CLI ``cortexsim ensemble``):

1. draws M random target BMs (one per network) and calibrates the activation function under Poisson
   noise (:func:`cortexsim.protocols.calibration.calibrate`, cached);
2. measures the ensemble background: the targets (translated with the Poisson fit) run in ensemble
   mode with probe neurons: uncoupled spiking probes on a sweep of leak potentials give the
   activation function UNDER THE ENSEMBLE BACKGROUND (logistic fit), non-spiking probes the free
   membrane potential; the networks' mean rate gives the equivalent noise of the translation
   (:func:`cortexsim.models.ensemble.equivalent_noise`). A Poisson-mode run gives the same
   statistics for the Poisson background (its input trains shown as K independent Poisson trains of
   rate R / K per receptor, which sum to the background's rate R);
3. evaluates D_KL of every network for: Poisson noise untrained, ensemble noise untrained (translated
   with the ensemble fit), then trains all networks with CD under each noise (same settings,
   :mod:`cortexsim.protocols.ensemble_training`) and evaluates them again;
4. writes ``results.json`` (``dkl_poisson_trained``, ``dkl_ensemble_untrained``,
   ``dkl_ensemble_trained``, ``dkl_poisson_untrained``: median and quartiles over networks of
   D_KL(sampled || target), nats, time-continuous read-out) and figures.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from cortexsim.config import config_to_dict
from cortexsim.results import library_versions, machine_info, output_dir, write_json_atomic

from ..analysis.background import plot_background
from ..analysis.plots import plot_activation_function, plot_learning_curve
from ..backends.registry import backend_info, check_dt, load_backend
from ..models.boltzmann import MAX_EXACT_UNITS, random_bm
from ..models.cd_learning import SCHEDULE_KINDS
from ..models.ensemble import check_ensemble_size, equivalent_noise, matched_background
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE, ActivationFit, NeuronParameters, NoiseParameters
from ..models.sampling_network import SYNAPSE_KINDS
from .calibration import CalibrationConfig, calibrate
from cortexsim.seeds import derive_seed
from .ensemble_training import RunSettings, TrainingSettings, evaluate, measure_background, train

__all__ = ["EnsembleConfig", "run_ensemble", "quartiles"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnsembleConfig:
    """Settings of the ensemble protocol (times in ms, rates in Hz).

    Attributes
    ----------
    seed : int
        Seed of everything (required): targets, connectivity, kick, simulator seeds.
    backend : str
        Registered backend name of the noise-free ensemble (deterministic runs need a seedable one,
        e.g. nest, or the emulated chip ``brainscales``).
    poisson_backend : str, optional
        Backend of the Poisson-driven reference networks and of the Poisson activation fit; None:
        the ensemble backend's registered reference (``Capabilities.reference_backend``: nest for
        the emulated chip) or the ensemble backend itself.
    n_networks : int
        M, >= 2.
    n_neurons : int
        N units per network, 1..20.
    in_degree : int
        K excitatory and K inhibitory background sources per neuron; weights from
        :func:`cortexsim.models.ensemble.matched_background` at ``design_rate_hz``.
    source_sharing : {"random", "disjoint"}
        Whether neurons of one network may share background sources ("random") or not ("disjoint",
        needs 2 K <= M - 1); see :class:`cortexsim.models.ensemble.EnsembleBackground`.
    background_synapse : {"depressing", "static"}
        Kind of the background synapses (:class:`cortexsim.models.ensemble.EnsembleBackground`).
    tau_rec_ms : float
        Recovery time constant of depressing background synapses (ms), > 0.
    design_rate_hz : float
        Source rate assumed by the weight choice (Hz).
    train_iterations : int
        CD iterations (>= 1) for each noise mode.
    sampling_ms : float
        Sampling time of the first CD iteration (ms).
    sampling_end_ms : float, optional
        Sampling time of the last iteration (ms), > 0; linear growth in between. None: constant.
    average_fraction : float
        In [0, 1): trained parameters = mean of the iterates over this last fraction of the
        iterations (Polyak-Ruppert averaging); 0 keeps the last iterate.
    learning_rate, schedule, schedule_tau, momentum :
        CD optimizer (eta0; "constant" or "inverse" eta0 tau / (tau + t); tau in iterations; momentum in [0, 1)).
    eval_duration_ms : float
        Sampling time of each evaluation (ms).
    burn_in_ms : float
        Discarded start of every run (ms), includes the kick.
    calibration_ms : float
        Duration of the background-measurement runs (ms).
    calibration_points : int
        Leak potentials per activation sweep (>= 5), over the Poisson v_p05 +- 8 alpha.
    calibration_groups : int
        Activation sweeps (>= 1); the probes of one sweep share one set of background sources, so
        each sweep measures one neuron's activation function. The ensemble fit is the mean v_p05 and
        the median alpha of the sweeps; the spread of v_p05 (offsets between source sets) is reported.
    delay_max_ms : float
        Background delays are uniform in [1 ms, delay_max_ms] (>= 1 ms). On a backend without
        programmable delays (the emulated chip) every background synapse has the fixed minimal delay
        (one time step) instead.
    membrane_probes : int
        Non-spiking probes (>= 1) recording the free membrane potential (first 5 s are used).
    dt_ms : float
        Integration step (ms).
    synapses, neuron, noise :
        Recurrent synapse kind, neuron parameters, Poisson background.
    """

    seed: int
    backend: str = "nest"
    poisson_backend: str | None = None
    n_networks: int = 50
    n_neurons: int = 5
    in_degree: int = 30
    source_sharing: str = "random"
    background_synapse: str = "depressing"
    tau_rec_ms: float = 40.0
    design_rate_hz: float = 50.0
    train_iterations: int = 150
    sampling_ms: float = 1000.0
    sampling_end_ms: float | None = None
    average_fraction: float = 0.0
    learning_rate: float = 1.0
    schedule: str = "inverse"
    schedule_tau: float = 50.0
    momentum: float = 0.5
    eval_duration_ms: float = 50000.0
    burn_in_ms: float = 200.0
    calibration_ms: float = 20000.0
    calibration_points: int = 25
    calibration_groups: int = 10
    delay_max_ms: float = 10.0
    membrane_probes: int = 5
    dt_ms: float = 0.1
    synapses: str = "renewing"
    neuron: NeuronParameters = DEFAULT_NEURON
    noise: NoiseParameters = DEFAULT_NOISE

    def __post_init__(self):
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        backend_info(self.backend)
        check_dt(self.backend, self.dt_ms)
        check_dt(self.reference_backend, self.dt_ms)
        if not 1 <= int(self.n_neurons) <= MAX_EXACT_UNITS:
            raise ValueError(f"n_neurons must lie in [1, {MAX_EXACT_UNITS}], got {self.n_neurons}")
        check_ensemble_size(self.n_networks, self.n_neurons, self.in_degree, "ensemble", self.source_sharing)
        for name in ("train_iterations", "calibration_points", "calibration_groups", "membrane_probes"):
            minimum = 5 if name == "calibration_points" else 1
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {getattr(self, name)!r}")
        for name in ("sampling_ms", "eval_duration_ms", "calibration_ms", "design_rate_hz", "learning_rate",
                     "schedule_tau"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")
        if not np.isfinite(self.burn_in_ms) or self.burn_in_ms < 0:
            raise ValueError(f"burn_in_ms must be a finite number >= 0 (ms), got {self.burn_in_ms!r}")
        if self.schedule not in SCHEDULE_KINDS:
            raise ValueError(f"schedule must be one of {SCHEDULE_KINDS}, got {self.schedule!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if self.synapses not in SYNAPSE_KINDS:
            raise ValueError(f"synapses must be one of {SYNAPSE_KINDS}, got {self.synapses!r}")
        self.training()  # sampling_end_ms and average_fraction checked there
        self.run_settings()  # background_synapse and tau_rec_ms checked there
        max_neurons = backend_info(self.backend).capabilities.max_neurons
        needed = self.n_networks * self.n_neurons + self.calibration_points * self.calibration_groups \
            + self.membrane_probes
        if max_neurons is not None and needed > max_neurons:
            raise ValueError(f"the ensemble ({self.n_networks} x {self.n_neurons} neurons) and its probes "
                             f"(calibration_points x calibration_groups = {self.calibration_points} x "
                             f"{self.calibration_groups}, membrane_probes = {self.membrane_probes}) need {needed} "
                             f"neurons; backend {self.backend!r} has at most {max_neurons}: use fewer networks or "
                             "probes")

    @property
    def reference_backend(self) -> str:
        """Backend of the Poisson-driven reference (see ``poisson_backend``)."""
        if self.poisson_backend is not None:
            return self.poisson_backend
        return backend_info(self.backend).capabilities.reference_backend or self.backend

    def run_settings(self, backend: str | None = None) -> RunSettings:
        """Settings of the runs on ``backend`` (default: the ensemble backend): without programmable
        delays the background synapses get the fixed minimal delay (one time step)."""
        delays = {"delay_max_ms": self.delay_max_ms}
        if not backend_info(backend or self.backend).capabilities.delays_allowed:
            delays = {"delay_ms": self.dt_ms, "delay_max_ms": self.dt_ms}
        background = matched_background(self.noise, self.in_degree, self.design_rate_hz,
                                        source_sharing=self.source_sharing,
                                        synapse=self.background_synapse, tau_rec_ms=self.tau_rec_ms, **delays)
        return RunSettings(self.dt_ms, self.burn_in_ms, derive_seed(self.seed, 3), background, self.neuron,
                           self.noise, self.synapses)

    def training(self) -> TrainingSettings:
        return TrainingSettings(self.train_iterations, self.sampling_ms, self.learning_rate, self.schedule,
                                self.schedule_tau, self.momentum, self.sampling_end_ms, self.average_fraction)


def quartiles(values) -> dict:
    """``{"median", "q25", "q75", "min", "max"}`` of finite ``values``."""
    v = np.asarray(values, dtype=float)
    q25, median, q75 = np.percentile(v, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75), "min": float(v.min()),
            "max": float(v.max()), "n": int(v.size)}


def run_ensemble(config: EnsembleConfig, out_dir=None, progress: bool = False,
                 poisson_fit: ActivationFit | None = None) -> dict:
    """Run the protocol (see the module docstring); returns the ``results.json`` content.

    ``poisson_fit`` (the activation function under Poisson noise) is calibrated (cached) if not given.
    """
    tic_total = time.perf_counter()
    say = logger.info if progress else (lambda *a, **k: None)
    backends = {"poisson": config.reference_backend, "ensemble": config.backend}
    sims = {mode: load_backend(name) for mode, name in backends.items()}
    run_settings = {mode: config.run_settings(name) for mode, name in backends.items()}
    settings = run_settings["ensemble"]
    targets = [random_bm(config.n_neurons, seed=derive_seed(config.seed, 10, m)) for m in range(config.n_networks)]
    poisson_fit = poisson_fit or calibrate(CalibrationConfig(seed=config.seed, backend=backends["poisson"],
                                                             neuron=config.neuron, noise=config.noise,
                                                             dt_ms=config.dt_ms), progress=progress).fit
    say(f"Poisson activation function ({backends['poisson']}): v_p05 = {poisson_fit.v_p05:.3f} mV, "
        f"alpha = {poisson_fit.alpha:.3f} mV")
    timings, hardware = {}, {}
    tic = time.perf_counter()
    bg_poisson = measure_background(sims["poisson"], config, run_settings["poisson"], targets, poisson_fit, "poisson")
    bg_ensemble = measure_background(sims["ensemble"], config, settings, targets, poisson_fit, "ensemble")
    _record_hardware(hardware, "background", sims["ensemble"])
    timings["background_s"] = time.perf_counter() - tic
    ensemble_fit = bg_ensemble["fit"]
    source_rate = float(np.mean(bg_ensemble["rates_hz"]))
    ensemble_noise = equivalent_noise(settings.background, "ensemble", config.noise, source_rate)
    say(f"ensemble activation function: v_p05 = {ensemble_fit.v_p05:.3f} mV, alpha = {ensemble_fit.alpha:.3f} mV; "
        f"mean rate {source_rate:.1f} Hz")
    modes = {"poisson": (poisson_fit, config.noise), "ensemble": (ensemble_fit, ensemble_noise)}
    evaluations, histories, trained = {}, {}, {}
    for index, (mode, (fit, noise)) in enumerate(modes.items()):
        tic = time.perf_counter()
        sim, mode_settings = sims[mode], run_settings[mode]
        evaluations[f"{mode}_untrained"] = evaluate(sim, mode_settings, targets, targets, fit, mode, noise,
                                                    config.eval_duration_ms, derive_seed(config.seed, 5, index))
        _record_hardware(hardware, f"{mode}_untrained", sim)
        say(f"{mode} untrained: median D_KL {np.median(evaluations[f'{mode}_untrained']['dkl_sampled_target']):.4f}")
        trained[mode], histories[mode] = train(sim, mode_settings, config.training(), targets, targets, fit, mode,
                                               noise, derive_seed(config.seed, 6, index), progress)
        _record_hardware(hardware, f"{mode}_training", sim)
        evaluations[f"{mode}_trained"] = evaluate(sim, mode_settings, trained[mode], targets, fit, mode, noise,
                                                  config.eval_duration_ms, derive_seed(config.seed, 7, index))
        _record_hardware(hardware, f"{mode}_trained", sim)
        say(f"{mode} trained: median D_KL {np.median(evaluations[f'{mode}_trained']['dkl_sampled_target']):.4f}")
        timings[f"{mode}_s"] = time.perf_counter() - tic
    timings["total_s"] = time.perf_counter() - tic_total
    results = _summarise(config, settings, poisson_fit, ensemble_fit, source_rate, bg_poisson, bg_ensemble,
                         evaluations, histories, trained, targets, timings)
    results["backends"] = backends
    if hardware:
        results["hardware"] = hardware
    if out_dir is not None:
        _write_outputs(results, output_dir(out_dir), bg_poisson, bg_ensemble, evaluations, histories, poisson_fit)
    return results


def _record_hardware(store: dict, phase: str, sim) -> None:
    """The chip's report of the run just finished (backends that emulate hardware report one)."""
    report = getattr(sim, "get_hardware_report", None)
    if report is not None:
        store[phase] = report()


def _summarise(config, settings, poisson_fit, ensemble_fit, source_rate, bg_poisson, bg_ensemble, evaluations,
               histories, trained, targets, timings) -> dict:
    dkl = {key: evaluation["dkl_sampled_target"] for key, evaluation in evaluations.items()}
    stats = {f"dkl_{key}": quartiles(values) for key, values in dkl.items()}
    ratio_poisson = stats["dkl_ensemble_trained"]["median"] / stats["dkl_poisson_trained"]["median"]
    gain = stats["dkl_ensemble_untrained"]["median"] / stats["dkl_ensemble_trained"]["median"]
    return {
        **stats,
        "dkl_direction": "D_KL(sampled || target), nats, time-continuous joint distribution per network",
        "ratio_ensemble_trained_to_poisson_trained": ratio_poisson,
        "improvement_ensemble_untrained_to_trained": gain,
        "criteria": {"within_1.5x_of_poisson_trained": bool(ratio_poisson <= 1.5),
                     "at_least_2x_better_than_untrained": bool(gain >= 2.0)},
        "dkl_per_network": dkl,
        "dkl_target_sampled_per_network": {key: e["dkl_target_sampled"] for key, e in evaluations.items()},
        "background": {
            mode: {"inputs": bg["inputs"].summary(), "free_membrane": bg["membrane"].summary(),
                   "network_mean_rate_hz": float(np.mean(bg["rates_hz"]))}
            for mode, bg in (("poisson", bg_poisson), ("ensemble", bg_ensemble))},
        "activation_fit": {"poisson": poisson_fit.to_dict(), "ensemble": ensemble_fit.to_dict(),
                           "ensemble_per_source_set": {"v_p05": bg_ensemble["group_v_p05"],
                                                       "alpha": bg_ensemble["group_alpha"],
                                                       "v_p05_sd_mv": float(np.std(bg_ensemble["group_v_p05"]))},
                           "ensemble_definition": "probe groups sharing one source set; mean v_p05, median alpha"},
        "ensemble_source_rate_hz": source_rate,
        "ensemble_background": settings.background.to_dict(),
        "config": config_to_dict(config),
        "training_history": histories,
        "final_parameters": {mode: [bm.to_dict() for bm in bms] for mode, bms in trained.items()},
        "targets": [bm.to_dict() for bm in targets],
        "timing": timings,
        "versions": library_versions(),
        "machine": machine_info(),
    }


def _plot_dkl(dkl: dict, path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = list(dkl)
    ax.boxplot([np.asarray(dkl[k], dtype=float) for k in labels], showfliers=False)
    for i, key in enumerate(labels, start=1):
        values = np.asarray(dkl[key], dtype=float)
        jitter = np.random.default_rng(i).uniform(-0.15, 0.15, values.size)  # plotting only
        ax.plot(i + jitter, values, ".", alpha=0.5, color=f"C{i}")
    ax.set_xticks(range(1, len(labels) + 1), [k.replace("_", "\n") for k in labels])
    ax.set_yscale("log")
    ax.set_ylabel("D_KL(sampled || target) per network (nats)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _write_outputs(results, out, bg_poisson, bg_ensemble, evaluations, histories, poisson_fit) -> None:
    config = results["config"]
    dkl = {key: evaluations[key]["dkl_sampled_target"] for key in
           ("poisson_untrained", "poisson_trained", "ensemble_untrained", "ensemble_trained")}
    files = {
        "dkl_distributions": _plot_dkl(dkl, out / "dkl_distributions.png",
                                       f"{config['n_networks']} networks x {config['n_neurons']} neurons, "
                                       f"{config['train_iterations']} CD iterations, "
                                       f"eval {config['eval_duration_ms']:g} ms"),
        "background": plot_background({"poisson": bg_poisson["inputs"], "ensemble": bg_ensemble["inputs"]},
                                      {"poisson": bg_poisson["membrane"], "ensemble": bg_ensemble["membrane"]},
                                      out / "background.png", title="background: Poisson vs ensemble"),
        "activation_ensemble": plot_activation_function(
            bg_ensemble["sweep"], bg_ensemble["p_on"][0], bg_ensemble["fit"], out / "activation_ensemble.png",
            title=f"one source set; ensemble fit over {len(bg_ensemble['group_alpha'])} sets (Poisson fit: v_p05 "
                  f"{poisson_fit.v_p05:.2f} mV, alpha {poisson_fit.alpha:.2f} mV)"),
        "training": plot_learning_curve(np.arange(len(histories["poisson"]["dkl_median"])),
                                        {f"{m} noise": histories[m]["dkl_median"] for m in histories},
                                        out / "training.png", ylabel="median D_KL per iteration's samples", logy=True),
    }
    results["files"] = {name: str(path.name) for name, path in files.items()}
    write_json_atomic(out / "config.json", config)
    write_json_atomic(out / "results.json", results)
