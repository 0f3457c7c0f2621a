"""Ensembles that learn from data: M image RBMs that are each other's noise, against Poisson noise.

``run_ensemble_data(config)`` (CLI ``cortexsim ensemble --task digits|mnist``) builds M networks, each the
RBM of the digits or MNIST task (:mod:`cortexsim.protocols.cd_digits`; ``task`` "digits": 64 pixel + 10 label
visible units, scikit-learn's 8x8 digits split by the seed; "mnist": ``image_side**2`` pixels (14: 196)
+ 10 labels, MNIST's 60,000 training and 10,000 test images, binarised; both loaded by
:func:`cortexsim.protocols.cd_digits.load_split`; and ``n_hidden`` hidden units, weights only between the
groups), as ONE ensemble
(:func:`cortexsim.models.ensemble.build_ensemble`), and runs everything twice with the same settings:

``ensemble`` mode
    every neuron's only background is K excitatory and K inhibitory synapses from neurons of the
    OTHER networks (depressing by default, ``background_synapse``); after the seeded kick no random
    source exists;
``poisson`` mode
    the same networks, each neuron with its own Poisson background.

Steps (per mode, after the background measurement of :func:`cortexsim.protocols.ensemble.measure_background`,
which gives the activation function under the ensemble background and the equivalent noise of the
translation):

1. evaluation of the untrained networks (random initial weights, or exact pre-training if
   ``pretrain_iterations`` > 0, reported separately as ``pretrained_exact``);
2. spiking CD training of all M networks at once with the CD engine
   (:func:`cortexsim.protocols.cd_engine.train_cd` with
   :class:`~cortexsim.protocols.cd_engine.ClampedStatistics`): per iteration every network is
   clamped to ``batch_size`` training images one after the other (network m draws its images
   through its own permutation of the training set, so the networks see different images at the
   same time, and a network's background never shows its own input), then all run free for
   ``model_ms``; the update is the digits task's, with a block-diagonal bipartite mask;
3. evaluation of the trained networks.

Evaluation (:func:`evaluate_networks`): the networks are clamped to test images through the digits
task's :func:`~cortexsim.protocols.cd_digits.clamped_readout`; network m sees test image
``(i + offset_m) mod n`` in step i (``offset_m = m n // M``), so all networks see every image, in
different steps, as in training. Classification: pixels clamped, the most active label unit wins;
completion: the pixels that ``occlusions`` leave visible clamped (``half``: bottom half hidden,
``quarter``: bottom-right quadrant, ``random30``: 30 % of the pixels per image), a hidden pixel is
on if its unit was on for more than half the read-out time
(:mod:`cortexsim.models.rbm_readout`). Every network is scored, and the ensemble's vote
(:func:`~cortexsim.models.rbm_readout.majority_vote`, :func:`~cortexsim.models.rbm_readout.vote_completion`).
An exact-Gibbs baseline trains each network's starting RBM with the same update, number of updates
and schedule (:func:`cortexsim.protocols.cd_digits.train_exact`) and scores it with exact block Gibbs.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from dataclasses import MISSING, dataclass, fields, replace

import numpy as np

from cortexsim.checks import check_choice, check_int
from cortexsim.config import config_from_dict, config_to_dict
from cortexsim.parameters import ActivationFit
from cortexsim.results import library_versions, machine_info, output_dir, to_jsonable, write_results
from cortexsim.seeds import derive_rng, derive_seed
from cortexsim.timegrid import check_duration

from ..analysis.background import plot_background
from ..analysis.data_plots import (confusion_matrix, plot_completion_examples, plot_confusion_matrix,
                                   plot_receptive_fields)
from ..analysis.plots import plot_learning_curve
from ..backends.registry import chip_booking, load_backend
from ..models.boltzmann import BoltzmannMachine, block_diagonal
from ..models.cd_learning import bipartite_mask
from ..models.ensemble import check_ensemble_size, equivalent_noise
from ..models.ensemble_background import SourceEfficacy, tracking_weight_scale, unit_leak_offsets
from ..models.lif_translation import transferred_fit
from ..models.rbm_readout import (OCCLUSIONS, accuracy, completion_error, majority_vote, occlusion_mask,
                                  predicted_labels, vote_completion)
from .calibration import CalibrationConfig, calibrate
from .cd_digits import (DATASETS, N_LABELS, N_PIXELS, DigitsRBMSettings, DigitsTrainingConfig, clamped_readout,
                        evaluate_exact, exact_completion, free_energy_accuracy, load_split, pretrain_exact, train_exact)
from .cd_engine import (CDSettings, CDState, ClampedStatistics, TimedSimulator, block_slices, discard_spikes,
                        load_checkpoint, save_checkpoint, source_rate_hz, train_cd)
from .ensemble import background_run_settings, build, measure_background, quartiles

__all__ = ["EnsembleDataConfig", "EnsembleDataResult", "run", "run_ensemble_data", "network_factory",
           "tracking_for_segment", "BACKGROUND_TRACKING", "EVAL_BACKGROUNDS", "SOURCE_UNITS", "measured_background",
           "evaluation_calibration", "reevaluate_trained",
           "evaluate_networks", "train_networks", "ensemble_training_data", "image_rotation", "score_networks",
           "IMAGE_SIDE", "TASKS", "task_defaults", "load_task_split"]

logger = logging.getLogger(__name__)

#: Side of the digits images (pixels).
IMAGE_SIDE = 8
#: Data sets an ensemble learns (``EnsembleDataConfig.task``): scikit-learn's 8x8 digits, MNIST.
TASKS = DATASETS
#: MNIST's training images (the validation images are held out of them).
MNIST_TRAIN_IMAGES = 60000
MODES = ("poisson", "ensemble")
#: Ways of following the ensemble background during training (``EnsembleDataConfig.background_tracking``).
BACKGROUND_TRACKING = ("off", "translation", "weights", "translation_units")
#: How the trained ensemble's evaluation setting is found (:attr:`EnsembleDataConfig.eval_background`).
EVAL_BACKGROUNDS = ("training", "measured")
#: Which units of the other networks may be background sources (:attr:`EnsembleDataConfig.source_units`).
SOURCE_UNITS = ("all", "hidden")
#: Test images per parameter schedule in the evaluation (one launch of the compiled binary on brian2_standalone;
#: the last chunk is padded, so every launch has one shape and the project compiles once).
EVAL_CHUNK = 50


@dataclass(frozen=True)
class EnsembleDataConfig(DigitsRBMSettings):
    """Settings of ``cortexsim ensemble --task digits|mnist`` (times in ms, rates in Hz).

    The digit-RBM settings (data, exact pre-training, CD optimizer, clamped and free phases, read-out,
    evaluation, simulation) are those of the digits task, :class:`~cortexsim.protocols.cd_digits.DigitsRBMSettings`,
    with two other defaults: no exact pre-training (``pretrain_iterations`` 0: random initial weights,
    the spiking figure then owes nothing to exact sampling) and ``learning_rate`` 0.05. The seed seeds
    everything: data split, initial weights, image orders, connectivity, kick, simulator seeds; the
    backend runs both modes (a seedable one for deterministic ensembles, e.g. nest).

    Attributes
    ----------
    task : {"digits", "mnist"}
        The data: "digits" (default; scikit-learn's 8x8 digits, 64 pixels, split by ``test_fraction``) or
        "mnist" (MNIST downsampled to ``image_side`` x ``image_side`` and binarised at ``binarize_threshold``;
        60,000 training images, scored on MNIST's own 10,000 test images, ``n_test_images`` of them if > 0).
        The task sets the pixels per network, the image side of the occlusion masks and figures, and the loader
        (:func:`load_task_split`). The command line's ``--task mnist`` also applies :func:`task_defaults`.
    image_side : int
        MNIST only: side of the downsampled images, in [2, 28] (14: 196 pixels).
    n_train_images : int
        Training images used (the first ones of the task's training split; MNIST's is seeded), 0 (default): all.
    n_networks : int
        M networks, >= 2.
    in_degree, source_sharing, background_synapse, tau_rec_ms, design_rate_hz, delay_max_ms
        Ensemble background, as in ``cortexsim ensemble`` (:class:`cortexsim.protocols.ensemble.EnsembleConfig`).
    source_units : {"all", "hidden"}
        Units of the other networks that may be background sources. ``"all"`` (default): every unit. ``"hidden"``:
        hidden units only (``first_source_unit`` = ``n_visible``), so that no clamped pixel or label unit (firing
        every tau_ref or silent while its image is clamped) drives another network; the source rate the
        translation follows is then the hidden units' (:func:`~cortexsim.protocols.cd_engine.source_rate_hz`).
    train_iterations : int
        Spiking CD updates per mode; the exact baseline makes as many.
    occlusions : tuple of str
        Occlusion kinds of pattern completion (half, quarter, random30); ``n_completion_images`` test
        images are completed per kind.
    calibration_ms, calibration_points, calibration_groups, membrane_probes
        Background measurement (as in ``cortexsim ensemble``).
    burn_in_ms : float
        Discarded start of every simulation (ms), includes the kick.
    stagger_groups : int
        1 (default): in training all networks are clamped at the same time. G in 2 .. ``n_networks``: the
        networks form G groups (network m in group ``m mod G``) whose data and model phases are staggered
        (:func:`cortexsim.models.cd_learning.staggered_phases`; each network keeps ``batch_size`` clamps of
        ``clamp_ms`` and ``model_ms`` of free running per iteration), so the share of clamped background
        sources is about the same in every network's data and model phase. Applies to both modes (the
        Poisson background does not depend on it; the two modes keep one protocol).
    background_tracking : {"off", "translation", "weights", "translation_units"}
        How training follows the ensemble background once the networks' firing rate departs from the
        calibration's (:func:`tracking_for_segment`; each training segment after the first uses the mean
        source rate measured in the previous segment; the trained networks are evaluated with the last
        segment's setting; no effect in Poisson mode). ``"translation"``: the BM -> LIF translation uses
        the equivalent noise at the measured rate and the activation function moved to it
        (:func:`cortexsim.models.lif_translation.transferred_fit`, same free-membrane mean). ``"weights"``:
        the background weights are multiplied by
        :func:`cortexsim.models.ensemble_background.tracking_weight_scale` (the calibration's mean
        conductance restored; at fixed trained weights this overshoots, see
        benchmarks/ensemble_data_diagnosis.md). ``"translation_units"``: ``"translation"`` and, per neuron, its
        leak moved by :func:`cortexsim.models.ensemble_background.unit_leak_offsets` from the weight every
        source released per second in the previous segment
        (:class:`~cortexsim.models.ensemble_background.SourceEfficacy`, recorded as
        ``segment_source_efficacy_hz``): each neuron's fixed set of sources gives it its own mean
        background conductance, an offset the common translation does not see (measured in
        benchmarks/ensemble_data_diagnosis.md, session 4). ``"off"``: nothing follows (default).
    max_background_scale : float
        Bound of the ``"weights"`` factor (>= 1): clipped to [1 / max, max].
    eval_background : {"training", "measured"}
        With ``background_tracking`` "translation" / "translation_units", the setting the trained ensemble is
        read out with. ``"training"`` (default): the last training segment's (its mean source rate and per-neuron
        offsets). ``"measured"``: measured under the evaluation's own background, per read-out kind
        (classification and each occlusion), by :func:`measured_background` on ``eval_calibration_images``
        TRAINING images clamped as the test images will be (the evaluation clamps every network at once, so its
        background differs from the staggered training's); no test image is used for it.
    eval_calibration_images : int
        Training images per read-out kind for ``eval_background`` "measured" (>= 1).
    eval_groups : int
        1 (default): the evaluation clamps every network at once. G in 2 .. ``n_networks``: the networks are read
        in G groups (network m in group ``m mod G``), one group clamped at a time while the others run free, so
        that a network's background holds fewer clamped (image-fixed) sources; costs G times the evaluation.
    eval_calibration_passes : int
        Measurements per kind (>= 1): the first under the last training segment's source rate (no per-neuron
        offsets), each next one under the previous measurement's (the offsets change the neurons' own rates, so the
        measurement is iterated).
    validation_images : int
        0 (default): scored on the test split. V > 0: the first V training images are held out and
        scored instead of the test images (development runs; no test image is used), training uses the rest.

    Examples
    --------
    >>> EnsembleDataConfig(seed=1, n_networks=4, n_hidden=20, in_degree=10).n_units
    94
    >>> EnsembleDataConfig(seed=1, task="mnist", n_networks=4, n_hidden=20, in_degree=10).n_units
    226
    """

    task: str = "digits"
    image_side: int = 14
    n_train_images: int = 0
    pretrain_iterations: int = 0
    learning_rate: float = 0.05
    n_networks: int = 10
    in_degree: int = 30
    source_sharing: str = "random"
    source_units: str = "all"
    background_synapse: str = "depressing"
    tau_rec_ms: float = 40.0
    design_rate_hz: float = 50.0
    delay_max_ms: float = 10.0
    train_iterations: int = 200
    occlusions: tuple = OCCLUSIONS
    calibration_ms: float = 20000.0
    calibration_points: int = 25
    calibration_groups: int = 10
    membrane_probes: int = 5
    burn_in_ms: float = 200.0
    stagger_groups: int = 1
    background_tracking: str = "off"
    max_background_scale: float = 4.0
    validation_images: int = 0
    eval_background: str = "training"
    eval_calibration_images: int = 50
    eval_calibration_passes: int = 2
    eval_groups: int = 1

    def __post_init__(self):
        self.check_rbm_settings()
        check_choice(self.task, "task", TASKS)
        self.data_config()              # image_side, n_train_images, validation_images (the task's loader's checks)
        if self.task == "mnist" and self.validation_images >= MNIST_TRAIN_IMAGES:
            raise ValueError(f"validation_images must be < the {MNIST_TRAIN_IMAGES} MNIST training images, "
                             f"got {self.validation_images}")
        for name, minimum in (("n_networks", 2), ("in_degree", 1), ("train_iterations", 1),
                              ("calibration_points", 5), ("calibration_groups", 1), ("membrane_probes", 1)):
            check_int(getattr(self, name), name, minimum=minimum)
        check_int(self.stagger_groups, "stagger_groups", minimum=1)
        if self.stagger_groups > self.n_networks:
            raise ValueError(f"stagger_groups must be in 1 .. n_networks ({self.n_networks}), "
                             f"got {self.stagger_groups}")
        check_choice(self.background_tracking, "background_tracking", BACKGROUND_TRACKING)
        check_int(self.validation_images, "validation_images", minimum=0)
        check_choice(self.eval_background, "eval_background", EVAL_BACKGROUNDS)
        if self.eval_background == "measured" and self.background_tracking not in ("translation", "translation_units"):
            raise ValueError("eval_background 'measured' needs background_tracking 'translation' or "
                             f"'translation_units' (what it measures), got {self.background_tracking!r}")
        check_int(self.eval_calibration_images, "eval_calibration_images", minimum=1)
        check_int(self.eval_calibration_passes, "eval_calibration_passes", minimum=1)
        check_int(self.eval_groups, "eval_groups", minimum=1)
        if self.eval_groups > self.n_networks:
            raise ValueError(f"eval_groups must be in 1 .. n_networks ({self.n_networks}), got {self.eval_groups}")
        if not np.isfinite(self.max_background_scale) or self.max_background_scale < 1:
            raise ValueError(f"max_background_scale must be a finite number >= 1, got {self.max_background_scale!r}")
        check_choice(self.source_units, "source_units", SOURCE_UNITS)
        check_ensemble_size(self.n_networks, self.n_visible + self.n_hidden, self.in_degree, "ensemble",
                            self.source_sharing, self.first_source_unit)
        occlusions = tuple(self.occlusions) if not isinstance(self.occlusions, str) else (self.occlusions,)
        object.__setattr__(self, "occlusions", occlusions)
        if not occlusions or len(set(occlusions)) != len(occlusions):
            raise ValueError(f"occlusions must name each kind of {OCCLUSIONS} at most once, got {occlusions!r}")
        for kind in occlusions:
            check_choice(kind, "occlusions", OCCLUSIONS)
        check_duration(self.calibration_ms, self.dt_ms, "calibration_ms")
        if not np.isfinite(self.burn_in_ms) or self.burn_in_ms < 0:
            raise ValueError(f"burn_in_ms must be a finite number >= 0 (ms), got {self.burn_in_ms!r}")
        for name in ("design_rate_hz", "tau_rec_ms"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")
        self.cd_settings()              # learning rate, momentum, schedule_tau, weight_decay
        background_run_settings(self, self.backend)   # background synapse kind, delays

    def cd_settings(self) -> CDSettings:
        """How the CD engine trains both modes (one iteration: batch_size clamped images, then model_ms free)."""
        return CDSettings(iterations=self.train_iterations, sampling_ms=self.model_ms, learning_rate=self.learning_rate,
                          schedule=self.schedule, schedule_tau=self.schedule_tau, momentum=self.momentum,
                          weight_decay=self.weight_decay, dt_ms=self.dt_ms, checkpoint_every=self.checkpoint_every,
                          burn_in_ms=self.burn_in_ms)

    def network_config(self, m: int) -> DigitsTrainingConfig:
        """The digits/MNIST-task settings of network ``m``: the shared digit-RBM settings, the data set, its
        own seed (initial weights, pre-training, baseline) and ``train_iterations`` updates."""
        return self.data_config(seed=derive_seed(self.seed, 20, m), iterations=self.train_iterations)

    def data_config(self, **changes) -> DigitsTrainingConfig:
        """The digits/MNIST-task config of this ensemble's data (the shared settings, the data set, image side,
        training / validation / test image counts): what :func:`~cortexsim.protocols.cd_digits.load_split`
        loads from (``changes`` replace fields, e.g. the seed)."""
        shared = {f.name: getattr(self, f.name) for f in fields(DigitsRBMSettings)}
        shared.update(dataset=self.task, image_side=self.image_side, n_train_images=self.n_train_images,
                      validation_images=self.validation_images, occlusions=self.occlusions)
        shared.update(changes)
        return DigitsTrainingConfig(**shared)

    @property
    def n_pixels(self) -> int:
        """Pixels per image (64 for digits, ``image_side**2`` for MNIST)."""
        return N_PIXELS if self.task == "digits" else self.image_side ** 2

    @property
    def side(self) -> int:
        """Side of the task's images (8 for digits, ``image_side`` for MNIST)."""
        return IMAGE_SIDE if self.task == "digits" else self.image_side

    @property
    def n_visible(self) -> int:
        """Visible units per network: pixels + 10 labels (74 digits, 206 MNIST 14x14)."""
        return self.n_pixels + N_LABELS

    @property
    def n_units(self) -> int:
        """Neurons per network."""
        return self.n_visible + self.n_hidden

    @property
    def first_source_unit(self) -> int:
        """First unit of a network that may be a background source (``source_units``; visible units come first)."""
        return self.n_visible if self.source_units == "hidden" else 0


@dataclass
class EnsembleDataResult:
    """Outcome of :func:`run`: the ``results.json`` content (see :func:`run_ensemble_data`)."""

    data: dict

    def summary(self) -> dict:
        """Headline figures (medians over networks; vote = the ensemble's vote)."""
        return dict(self.data["summary"])

    def to_dict(self) -> dict:
        return self.data


def task_defaults(task: str) -> dict:
    """Settings ``cortexsim ensemble --task`` applies where neither an option nor ``--config`` sets them.

    "mnist": 200 hidden units (the issue's minimum), the schedule of the spiking MNIST RBM
    (benchmarks/spiking_rbm_data.py: learning rate 0.1, inverse decay tau 2000 updates, chosen with the exact
    model on held-out training images), a 100 ms read-out per test image and segments of 100 updates; the
    digits task keeps the config's defaults.

    Examples
    --------
    >>> task_defaults("mnist")["n_hidden"], task_defaults("digits")
    (200, {})
    """
    if task == "mnist":
        return {"n_hidden": 200, "learning_rate": 0.1, "schedule_tau": 2000.0, "eval_read_ms": 100.0,
                "checkpoint_every": 100}
    return {}


def load_task_split(config: EnsembleDataConfig):
    """The ensemble's data: ``(train_visible (n, P + 10), train_labels, eval_pixels (m, P), eval_labels)``.

    :func:`cortexsim.protocols.cd_digits.load_split` of :meth:`EnsembleDataConfig.data_config`: binarised pixels
    (P = 64 for digits, ``image_side**2`` for MNIST) and one-hot labels; the evaluation images are the test
    split (MNIST: its own test set; the first ``n_test_images`` if > 0) or, with ``validation_images``, that many
    held-out training images (then never trained on).

    Examples
    --------
    >>> data, _, test_x, _ = load_task_split(EnsembleDataConfig(seed=1, n_test_images=20))
    >>> data.shape[1], test_x.shape
    (74, (20, 64))
    """
    return load_split(config.data_config())


def ensemble_training_data(train_visible: np.ndarray, n_networks: int, seed: int) -> np.ndarray:
    """Training rows of the whole ensemble (n, M * V; V = 74 for digits): row i gives network m image ``perm_m[i]``.

    ``perm_m`` is network m's own permutation of the training set (``derive_rng(seed, 21, m)``), so
    the networks see different images at the same time while :class:`ClampedStatistics` draws rows.
    """
    n = train_visible.shape[0]
    orders = [derive_rng(seed, 21, m).permutation(n) for m in range(int(n_networks))]
    return np.hstack([train_visible[order] for order in orders])


def image_rotation(n_images: int, n_networks: int) -> np.ndarray:
    """(M, n) image index network m sees in evaluation step i: ``(i + m n // M) mod n``."""
    steps = np.arange(int(n_images))
    return np.stack([(steps + (m * n_images) // n_networks) % n_images for m in range(int(n_networks))])


def network_factory(sim, config: EnsembleDataConfig, mode: str, fit: ActivationFit, translation_noise,
                    sim_seed: int):
    """The CD engine's network factory for ``mode``: ``factory(sim, W, b, first_iteration) -> Ensemble``.

    The block-diagonal (W, b) of all networks becomes M networks of one ensemble
    (:func:`cortexsim.protocols.ensemble.build`; in ``"ensemble"`` mode no Poisson source, only the kick);
    segment k > 0 uses the simulator seed ``derive_seed(sim_seed, first_iteration)``. Optional
    (``background_tracking``, :func:`tracking_for_segment`): ``background_scale`` multiplies the ensemble
    background's weights; ``source_rate_hz`` translates with the equivalent noise of the ensemble background
    at that source rate and ``fit`` moved there from ``translation_noise``
    (:func:`cortexsim.models.lif_translation.transferred_fit`); ``source_efficacy_hz`` (per neuron, Hz; ensemble
    mode) moves every neuron's leak by :func:`cortexsim.models.ensemble_background.unit_leak_offsets`.
    """
    settings = background_run_settings(config, config.backend)
    n = config.n_units
    mask = bipartite_mask(config.n_visible, config.n_hidden)

    def factory(sim, W, b, first_iteration, background_scale: float = 1.0, source_rate_hz: float | None = None,
                source_efficacy_hz=None):
        seed = sim_seed if first_iteration == 0 else derive_seed(sim_seed, first_iteration)
        bms = [BoltzmannMachine(W[s, s], b[s]) for s in block_slices([n] * config.n_networks)]
        run_settings, run_fit, run_noise = settings, fit, translation_noise
        if background_scale != 1.0:
            background = replace(settings.background, weight_exc=background_scale * settings.background.weight_exc,
                                 weight_inh=background_scale * settings.background.weight_inh)
            run_settings = replace(settings, background=background)
        if source_rate_hz is not None:
            run_noise = equivalent_noise(settings.background, mode, config.noise, source_rate_hz)
            run_fit = transferred_fit(fit, settings.neuron, translation_noise, run_noise)
        network = build(sim, run_settings, bms, run_fit, mode, run_noise, seed, connectivity=mask)
        if source_efficacy_hz is not None and mode == "ensemble":
            offsets = unit_leak_offsets(network.neuron, network.background, network.sources_exc, network.sources_inh,
                                        network.e_leak, np.asarray(source_efficacy_hz, dtype=float))
            network.set_leak_offsets(offsets)
            logger.info("per-neuron background offsets from iteration %d on: RMS %.3f mV, max %.3f mV",
                        first_iteration, float(np.sqrt(np.mean(offsets ** 2))), float(np.max(np.abs(offsets))))
        return network

    return factory


def evaluate_networks(sim, config: EnsembleDataConfig, factory, W: np.ndarray, b: np.ndarray,
                      test_x: np.ndarray, completion: dict, progress: bool = False, label: str = "",
                      calibration: dict | None = None) -> dict:
    """On-fractions of every network's units for the test images (classification and completion).

    ``completion`` maps an occlusion kind to ``(pixels (c, P), occluded (c, P) bool)`` (P pixels per image). Builds the
    ensemble through ``factory`` (first iteration 0), burns in, and clamps image by image with the
    rotation of :func:`image_rotation`, :data:`EVAL_CHUNK` images per parameter schedule
    (:func:`~cortexsim.protocols.cd_digits.clamped_readout` with ``schedule=True``). Returns
    ``{"classify": (M, n, n_units), kind: (M, c, n_units)}`` with rows in test-image order, and ``run_wall_s``.

    ``calibration`` (optional; ``eval_background`` "measured"): ``{"classify": (pixels, visible), kind: (pixels,
    visible)}`` of TRAINING images per read-out kind (``visible``: the clamped pixels, bool). Each kind is then
    read in its own simulation, built with the factory keywords :func:`measured_background` finds on that kind's
    calibration images; the result also holds them, summarised, under ``"measured_background"``.
    """
    kinds = {"classify": (test_x, np.ones(test_x.shape, dtype=bool), "classification")}
    kinds.update({kind: (pixels, ~occluded, f"completion ({kind})") for kind, (pixels, occluded) in completion.items()})
    result, run_wall_s = {}, 0.0
    if calibration is None:
        network, timed = _burnt_in(sim, config, factory, W, b, {})
        for key, (pixels, visible, name) in kinds.items():
            name = f"{name} {label}".strip()
            result[key] = _readout_networks(network, timed, config, pixels, visible, progress, name)
        sim.end()
        run_wall_s = timed.run_wall_s
    else:
        result["measured_background"] = {}
        for key, (pixels, visible, name) in kinds.items():
            name = f"{name} {label}".strip()
            kwargs, calibration_wall_s = measured_background(sim, config, factory, W, b, *calibration[key],
                                                             progress=progress, label=name)
            network, timed = _burnt_in(sim, config, factory, W, b, kwargs)
            result[key] = _readout_networks(network, timed, config, pixels, visible, progress, name)
            sim.end()
            run_wall_s += calibration_wall_s + timed.run_wall_s
            efficacy = np.asarray(kwargs.get("source_efficacy_hz", [np.nan]), dtype=float)
            result["measured_background"][key] = {
                "source_rate_hz": kwargs["source_rate_hz"], "source_efficacy_mean_hz": float(np.mean(efficacy)),
                "source_efficacy_cv": float(np.std(efficacy) / np.mean(efficacy)) if np.mean(efficacy) > 0 else None}
    result["run_wall_s"] = run_wall_s
    return result


def measured_background(sim, config: EnsembleDataConfig, factory, W: np.ndarray, b: np.ndarray, pixels: np.ndarray,
                        visible: np.ndarray, progress: bool = False, label: str = "") -> tuple[dict, float]:
    """Factory keywords (:func:`network_factory`) of the ensemble's background under an evaluation's own clamps.

    ``config.eval_calibration_passes`` passes; each builds the ensemble through ``factory`` (first iteration 0;
    the first pass with the factory's own source rate, e.g. the last training segment's, and no per-neuron
    offsets, each next one with the previous pass's result), burns in, clamps ``pixels`` (n, P) where
    ``visible`` (n, P) with the rotation of the evaluation (:func:`image_rotation`) and measures over the
    whole clamping time, as training measures its segments: the mean firing rate of the source units
    (``source_rate_hz``, :func:`~cortexsim.protocols.cd_engine.source_rate_hz`) and, with ``background_tracking``
    "translation_units", every neuron's released weight per second (``source_efficacy_hz``,
    :class:`~cortexsim.models.ensemble_background.SourceEfficacy`). Returns the keywords and the wall time
    spent in the simulator (s). Use TRAINING images: no test image enters the read-out setting.
    """
    kwargs, wall_s = {"source_efficacy_hz": None}, 0.0
    units = config.background_tracking == "translation_units"
    for _ in range(config.eval_calibration_passes):
        network, timed = _burnt_in(sim, config, factory, W, b, kwargs)
        efficacy = SourceEfficacy(network.population.size, tau_refrac_ms=network.neuron.tau_refrac,
                                  dt_ms=config.readout_dt_ms,
                                  tau_rec_ms=config.tau_rec_ms if config.background_synapse == "depressing" else None)
        rates = []

        def record(states, efficacy=efficacy, rates=rates, network=network):
            rates.append((source_rate_hz(network, states), states.shape[0]))
            if units:
                efficacy.add(states)

        _readout_networks(network, timed, config, pixels, visible, progress, f"background of {label}".strip(),
                          on_states=record)
        sim.end()
        wall_s += timed.run_wall_s
        rate = float(sum(r * n for r, n in rates) / sum(n for _, n in rates))
        kwargs = {"source_rate_hz": rate} | ({"source_efficacy_hz": efficacy.per_second().tolist()} if units else {})
        logger.info("measured background for %s: mean rate %.2f Hz", label, rate)
    return kwargs, wall_s


def _burnt_in(sim, config: EnsembleDataConfig, factory, W: np.ndarray, b: np.ndarray, kwargs: dict):
    """The ensemble from ``factory(sim, W, b, 0, **kwargs)`` after ``burn_in_ms`` (spikes discarded), its timer."""
    network = factory(sim, W, b, 0, **kwargs)
    timed = TimedSimulator(sim, config.dt_ms)
    if config.burn_in_ms > 0:
        timed.run(config.burn_in_ms)
        discard_spikes(network)
    return network, timed


def _readout_networks(network, timed: TimedSimulator, config: EnsembleDataConfig, pixels: np.ndarray,
                      visible: np.ndarray, progress: bool, name: str, on_states=None) -> np.ndarray:
    """(M, n, n_units) on-fractions: step i clamps image ``image_rotation(n, M)[m, i]`` onto network m's pixels
    where ``visible``, :data:`EVAL_CHUNK` clamps per parameter schedule; rows in image order. With
    ``config.eval_groups`` G > 1 the networks are read group by group (network m in group ``m mod G``), the
    others running free meanwhile (G times the steps)."""
    M, n_units, G = config.n_networks, config.n_units, config.eval_groups
    offsets = np.arange(M) * n_units
    order = image_rotation(pixels.shape[0], M)
    clamps = []
    for group in range(G):
        members = range(group, M, G)
        for i in range(pixels.shape[0]):
            units = np.concatenate([offsets[m] + np.flatnonzero(visible[order[m, i]]) for m in members])
            values = np.concatenate([pixels[order[m, i]][visible[order[m, i]]] for m in members])
            clamps.append((units, values))
    # one parameter schedule per chunk of clamps: on brian2_standalone one launch of the binary per chunk
    # (was one per image: the evaluation then dominated the acceptance run's wall time)
    out = clamped_readout(network, timed, clamps, config, chunk=min(EVAL_CHUNK, len(clamps)), progress=progress,
                          label=name, schedule=True, on_states=on_states)
    per_network = np.empty((M, pixels.shape[0], n_units))
    for m in range(M):   # step i (of network m's group) showed image order[m, i] to network m
        rows = out[(m % G) * pixels.shape[0]:(m % G + 1) * pixels.shape[0]]
        per_network[m, order[m]] = rows[:, offsets[m]:offsets[m] + n_units]
    return per_network


def score_networks(readouts: dict, test_y: np.ndarray, completion: dict, n_pixels: int = N_PIXELS) -> dict:
    """Scores of every network and of the ensemble's vote from :func:`evaluate_networks`' read-outs.

    ``n_pixels``: pixels per image (64 digits, 196 MNIST 14x14); a network's units are ordered [pixels |
    10 labels | hidden], so the label units are ``n_pixels .. n_pixels + 9``.

    Returns ``accuracy`` (per network), ``label_activity`` (per network: the label units' summed on-fraction in
    classification, mean over test images; 1 for a network that always holds one label on), ``vote_accuracy``,
    ``completion_error`` (kind -> per network), ``vote_completion_error`` (kind -> value),
    ``mean_completion_error`` (per network, mean over the kinds), ``vote_mean_completion_error``, ``predicted``
    (per network) and ``vote_predicted`` (labels per test image).
    """
    labels = readouts["classify"][:, :, n_pixels:n_pixels + N_LABELS]
    predicted = predicted_labels(labels)
    vote = majority_vote(labels)
    scores = {"accuracy": [accuracy(p, test_y) for p in predicted], "vote_accuracy": accuracy(vote, test_y),
              "label_activity": labels.sum(axis=2).mean(axis=1).tolist(),
              "predicted": predicted.tolist(), "vote_predicted": vote.tolist(), "completion_error": {},
              "vote_completion_error": {}}
    for kind, (pixels, occluded) in completion.items():
        on = readouts[kind][:, :, :n_pixels]
        scores["completion_error"][kind] = [completion_error(o, pixels, occluded) for o in on]
        scores["vote_completion_error"][kind] = completion_error(vote_completion(on), pixels, occluded)
    kinds = list(completion)
    scores["mean_completion_error"] = np.mean([scores["completion_error"][k] for k in kinds], axis=0).tolist()
    scores["vote_mean_completion_error"] = float(np.mean([scores["vote_completion_error"][k] for k in kinds]))
    return scores


def train_networks(sim, config: EnsembleDataConfig, factory, W: np.ndarray, b: np.ndarray,
                   training_data: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, state: CDState | None = None,
                   save=None, progress: bool = False, mode: str = "", stop_after_iteration: int | None = None,
                   calibrated_rate_hz: float | None = None) -> CDState | None:
    """Spiking CD of all networks at once: the CD engine with ``factory`` and the clamped statistics.

    ``training_data`` (n, M * V; V = pixels + 10) from :func:`ensemble_training_data` is clamped onto the visible units
    of all networks; the update is masked to each network's visible-hidden weights. Starts from the
    block-diagonal (W, b) or continues ``state``; returns the engine state (None if interrupted by
    ``stop_after_iteration``). Per segment, the history records each network's exact free-energy test
    accuracy (``segment_exact_accuracy``). ``config.stagger_groups`` staggers the networks' phases
    (:class:`ClampedStatistics`). With ``config.background_tracking`` on and ``mode == "ensemble"`` the
    factory gets the keywords of :func:`tracking_for_segment` (from the history and ``calibrated_rate_hz``),
    recorded per segment as ``segment_tracking``.
    """
    M, n_units = config.n_networks, config.n_units
    blocks = block_slices([n_units] * M)
    settings, mask = config.cd_settings(), _mask(config)
    if state is None:
        state = CDState.fresh(W, b, settings, mask, rng=np.random.default_rng(derive_seed(config.seed, 13)),
                              blocks=blocks)
    visible = np.concatenate([m * n_units + np.arange(config.n_visible) for m in range(M)])
    tracking = config.background_tracking != "off" and mode == "ensemble"
    if tracking and calibrated_rate_hz is None:
        raise ValueError("background_tracking in ensemble mode needs calibrated_rate_hz")
    current = {"kwargs": {}}

    def on_segment(W, b):
        out = {"segment_exact_accuracy": [free_energy_accuracy(W[s, s], b[s], test_x, test_y) for s in blocks]}
        if tracking:
            out["segment_tracking"] = dict(current["kwargs"])
        return out

    def build_network(sim, W, b, first_iteration):
        if tracking:
            current["kwargs"] = tracking_for_segment(config, state.history, first_iteration, calibrated_rate_hz)
        return factory(sim, W, b, first_iteration, **current["kwargs"])

    efficacy = None
    if tracking and config.background_tracking == "translation_units":
        efficacy = partial(SourceEfficacy, tau_refrac_ms=config.neuron.tau_refrac, dt_ms=config.readout_dt_ms,
                           tau_rec_ms=config.tau_rec_ms if config.background_synapse == "depressing" else None)
    statistics = ClampedStatistics(training_data, visible, config.batch_size, config.clamp_ms, config.settle_ms,
                                   config.readout_dt_ms, config.clamp_bias, on_segment=on_segment, blocks=blocks,
                                   stagger_groups=config.stagger_groups, source_efficacy=efficacy)
    done = train_cd(build_network, statistics, settings, state, sim, mask, save=save, progress=progress,
                    label=f"CD {config.task}, {mode} noise", stop_after_iteration=stop_after_iteration, blocks=blocks)
    return state if done else None


def tracking_for_segment(config: EnsembleDataConfig, history: dict, first_iteration: int,
                         calibrated_rate_hz: float) -> dict:
    """Factory keywords (:func:`network_factory`) of the training segment starting at ``first_iteration``.

    ``{}`` for the first segment and with ``background_tracking`` "off". Otherwise, with nu the mean of
    ``history["mean_rate_hz"]`` (per iteration, :class:`ClampedStatistics`) over the previous segment's
    iterations: ``{"source_rate_hz": nu}`` ("translation") or ``{"background_scale":
    tracking_weight_scale(background, calibrated_rate_hz, nu, max_background_scale)}`` ("weights");
    "translation_units" adds ``source_efficacy_hz``, the previous segment's ``segment_source_efficacy_hz``.
    Depends only on the history, so a resumed run uses the same settings.

    Examples
    --------
    >>> c = EnsembleDataConfig(seed=1, n_networks=4, n_hidden=20, in_degree=10, checkpoint_every=2,
    ...                        background_tracking="weights")
    >>> {k: round(v, 3) for k, v in tracking_for_segment(c, {"mean_rate_hz": [20.0, 10.0]}, 2, 64.6).items()}
    {'background_scale': 1.923}
    """
    if first_iteration <= 0 or config.background_tracking == "off":
        return {}
    length = config.cd_settings().segment_length
    rates = history.get("mean_rate_hz", [])[max(0, first_iteration - length):first_iteration]
    if not rates:
        raise ValueError(f"background tracking: no recorded mean_rate_hz before iteration {first_iteration}")
    rate = float(np.mean(rates))
    if config.background_tracking == "translation":
        return {"source_rate_hz": rate}
    if config.background_tracking == "translation_units":
        ends = list(history.get("segment_end", []))
        if first_iteration not in ends or len(history.get("segment_source_efficacy_hz", [])) != len(ends):
            raise ValueError(f"background tracking: no recorded segment_source_efficacy_hz of the segment ending at "
                             f"iteration {first_iteration}")
        return {"source_rate_hz": rate,
                "source_efficacy_hz": list(history["segment_source_efficacy_hz"][ends.index(first_iteration)])}
    background = background_run_settings(config, config.backend).background
    return {"background_scale": tracking_weight_scale(background, calibrated_rate_hz, rate,
                                                      config.max_background_scale)}


def evaluation_calibration(config: EnsembleDataConfig, data: np.ndarray) -> dict:
    """Training images for :func:`measured_background`, per read-out kind: ``{"classify": (pixels, visible),
    kind: (pixels, visible)}``.

    ``config.eval_calibration_images`` rows of ``data`` (training rows, pixels first), drawn without replacement
    with the config's seed; classification clamps every pixel, each occlusion kind clamps what its own masks
    (:func:`~cortexsim.models.rbm_readout.occlusion_mask`, fresh draws) leave visible.

    Examples
    --------
    >>> c = EnsembleDataConfig(seed=1, n_networks=4, n_hidden=20, in_degree=10, background_tracking="translation",
    ...                        eval_background="measured", eval_calibration_images=5)
    >>> out = evaluation_calibration(c, np.ones((30, c.n_visible)))
    >>> sorted(out), out["classify"][0].shape, bool(out["half"][1].all())
    (['classify', 'half', 'quarter', 'random30'], (5, 64), False)
    """
    n = config.eval_calibration_images
    if n > data.shape[0]:
        raise ValueError(f"eval_calibration_images ({n}) exceeds the {data.shape[0]} training images")
    rows = derive_rng(config.seed, 24).choice(data.shape[0], size=n, replace=False)
    pixels = np.asarray(data[rows, :config.n_pixels])
    out = {"classify": (pixels, np.ones(pixels.shape, dtype=bool))}
    for k, kind in enumerate(config.occlusions):
        out[kind] = (pixels, ~occlusion_mask(kind, n, config.side, derive_rng(config.seed, 25, k)))
    return out


def _exact_baseline(config: EnsembleDataConfig, data, test_x, test_y, completion: dict) -> dict:
    """Per network: the starting RBM (random or exact pre-trained), and the exact-Gibbs baseline trained
    from it with the same update, number of updates and schedule (pure numpy)."""
    mask = bipartite_mask(config.n_visible, config.n_hidden)
    out = {"W": [], "b": [], "pretrained_exact": [], "baseline": [], "baseline_curve": []}
    for m in range(config.n_networks):
        net = config.network_config(m)
        W, b, chains, rng, _ = pretrain_exact(net, data, test_x, test_y)
        out["W"].append(W.tolist())
        out["b"].append(b.tolist())
        eval_rng = np.random.default_rng(derive_seed(net.seed, 12))
        half = completion.get("half", next(iter(completion.values())))
        if config.pretrain_iterations:
            out["pretrained_exact"].append(evaluate_exact(W, b, test_x, test_y, config.eval_gibbs_sweeps,
                                                          config.eval_gibbs_burn_in, eval_rng, *half))
        base_W, base_b, _, curve = train_exact(W, b, config.cd_settings().update(mask, W.shape[0]), data,
                                               config.train_iterations, config.batch_size, chains, rng,
                                               curve_every=config.checkpoint_every, curve_data=(test_x, test_y),
                                               n_visible=config.n_visible)
        score = evaluate_exact(base_W, base_b, test_x, test_y, config.eval_gibbs_sweeps, config.eval_gibbs_burn_in,
                               eval_rng, *half)
        score["completion_error_by_occlusion"] = {
            kind: completion_error(exact_completion(base_W, base_b, pixels, occluded, config.eval_gibbs_sweeps,
                                                    config.eval_gibbs_burn_in, eval_rng), pixels, occluded)
            for kind, (pixels, occluded) in completion.items()}
        score["mean_completion_error"] = float(np.mean(list(score["completion_error_by_occlusion"].values())))
        out["baseline"].append(score)
        out["baseline_curve"].append(curve)
    return out


def _mask(config: EnsembleDataConfig) -> np.ndarray:
    n = config.n_units
    block = bipartite_mask(config.n_visible, config.n_hidden)
    mask = np.zeros((config.n_networks * n,) * 2)
    for s in block_slices([n] * config.n_networks):
        mask[s, s] = block
    return mask


def run(config: EnsembleDataConfig, out_dir=None, progress: bool = False, resume: bool = False):
    """The protocol behind ``cortexsim ensemble --task digits|mnist`` (:func:`run_ensemble_data`)."""
    data = run_ensemble_data(config, out_dir=out_dir, progress=progress, resume=resume)
    return None if data is None else EnsembleDataResult(data)


def run_ensemble_data(config: EnsembleDataConfig, out_dir=None, progress: bool = False,
                      poisson_fit: ActivationFit | None = None, resume: bool = False,
                      stop_after_iteration: int | None = None) -> dict | None:
    """Run the protocol (module docstring); returns the ``results.json`` content (None if interrupted).

    ``poisson_fit`` (activation function under Poisson noise) is calibrated (cached) if not given. With
    ``out_dir`` a checkpoint is written after every phase and training segment; ``resume`` continues it.
    """
    if resume and out_dir is None:
        raise ValueError("resume needs out_dir (the folder holding checkpoint.json)")
    tic_total = time.perf_counter()
    say = logger.info if progress else (lambda *a, **k: None)
    fresh = {"task": "ensemble_data", "config": config_to_dict(config), "prepared": None, "background": None,
             "scores": {}, "training": {}, "trained": {}}
    # settings added to EnsembleDataConfig after a checkpoint was written resume at their defaults (the behaviour
    # before them; e.g. the MNIST acceptance run started before the eval_* settings existed)
    defaults = {f.name: to_jsonable(f.default) for f in fields(EnsembleDataConfig) if f.default is not MISSING}
    state = (load_checkpoint(out_dir, "ensemble_data", fresh["config"], None, added_defaults=defaults) if resume
             else fresh)

    def save() -> None:
        if out_dir is not None:
            save_checkpoint(output_dir(out_dir), state)

    # validation_images > 0 (development): held-out training images instead of the test split
    data, _, test_x, test_y = load_task_split(config)
    completion = _completion_sets(config, test_x)
    sim = load_backend(config.backend)
    poisson_fit = poisson_fit or calibrate(CalibrationConfig(seed=config.seed, backend=config.backend,
                                                             neuron=config.neuron, noise=config.noise,
                                                             dt_ms=config.dt_ms), progress=progress).fit
    if state["prepared"] is None:
        say(f"exact sampler (numpy): start of {config.n_networks} networks and their exact-Gibbs baselines")
        state["prepared"] = _exact_baseline(config, data, test_x, test_y, completion)
        save()
    prepared = state["prepared"]
    start_W = block_diagonal([BoltzmannMachine(np.asarray(W), np.asarray(b))
                              for W, b in zip(prepared["W"], prepared["b"])])
    settings = background_run_settings(config, config.backend)
    tic = time.perf_counter()
    starts = [BoltzmannMachine(np.asarray(W), np.asarray(b)) for W, b in zip(prepared["W"], prepared["b"])]
    backgrounds = {mode: measure_background(sim, config, settings, starts, poisson_fit, mode) for mode in MODES}
    background_s = time.perf_counter() - tic
    ensemble_fit = backgrounds["ensemble"]["fit"]
    source_rate = backgrounds["ensemble"]["source_rate_hz"]
    say(f"ensemble activation function: v_p05 = {ensemble_fit.v_p05:.3f} mV, alpha = {ensemble_fit.alpha:.3f} mV; "
        f"mean rate {source_rate:.1f} Hz")
    modes = {"poisson": (poisson_fit, config.noise),
             "ensemble": (ensemble_fit, equivalent_noise(settings.background, "ensemble", config.noise, source_rate))}
    training_data = ensemble_training_data(data, config.n_networks, config.seed)
    M, n_units = config.n_networks, config.n_units
    mask, cd_settings = _mask(config), config.cd_settings()
    timings = {"background_s": background_s}
    generators = {}
    for index, (mode, (fit, noise)) in enumerate(modes.items()):
        tic = time.perf_counter()
        factory = network_factory(sim, config, mode, fit, noise, derive_seed(config.seed, 6, index))
        if f"{mode}_untrained" not in state["scores"]:
            readouts = evaluate_networks(sim, config, network_factory(sim, config, mode, fit, noise,
                                                                      derive_seed(config.seed, 5, index)),
                                         start_W.W, start_W.b, test_x, completion, progress, f"{mode} untrained")
            state["scores"][f"{mode}_untrained"] = score_networks(readouts, test_y, completion, config.n_pixels)
            save()
        if mode not in state["trained"]:
            cd = (CDState.from_dict(state["training"][mode]) if mode in state["training"] else None)

            def save_training(cd: CDState, mode=mode) -> None:
                state["training"][mode] = cd.to_dict()
                save()

            cd = train_networks(sim, config, _recording_factory(factory, generators, mode), start_W.W, start_W.b,
                                training_data, test_x, test_y, cd, save_training, progress, mode,
                                stop_after_iteration, calibrated_rate_hz=source_rate)
            if cd is None:
                return None
            W, b = cd.trained(cd_settings, mask)
            # the trained blocks are kept below; of the engine state (weights, velocity, average) only its history and
            # timing are needed from now on
            state["training"][mode] = {"history": cd.history, "timing": cd.timing}
            state["trained"][mode] = {"W_blocks": [W[s, s][:config.n_visible, config.n_visible:].tolist()
                                                   for s in block_slices([n_units] * M)],
                                      "b": b.tolist()}
            save()
        if f"{mode}_trained" not in state["scores"]:
            state["scores"][f"{mode}_trained"] = _score_trained(
                sim, config, mode, fit, noise, index, state["trained"][mode],
                state["training"][mode]["history"].get("segment_tracking"), data, test_x, test_y, completion, progress)
            save()
        s = state["scores"][f"{mode}_trained"]
        say(f"{mode} trained: median accuracy {np.median(s['accuracy']):.3f}, vote {s['vote_accuracy']:.3f}")
        timings[f"{mode}_s"] = time.perf_counter() - tic
    timings["total_s"] = time.perf_counter() - tic_total
    results = _summarise(config, state, backgrounds, poisson_fit, ensemble_fit, source_rate, settings, test_y,
                         timings, generators)
    if out_dir is not None:
        _write_outputs(results, output_dir(out_dir), backgrounds, config, chip_booking(sim))
    return results


def _score_trained(sim, config: EnsembleDataConfig, mode: str, fit: ActivationFit, noise, index: int, trained: dict,
                   tracked: list | None, data: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, completion: dict,
                   progress: bool, keep_label_readout: bool = False) -> dict:
    """Scores (:func:`score_networks`, with ``examples``) of the trained networks of ``mode`` (``index`` in
    :data:`MODES`; ``trained`` as stored by the run, ``tracked`` its ``segment_tracking`` history or None);
    ``keep_label_readout``: also the label units' on-fractions in classification (M, n, 10)."""
    W, b = _trained_parameters(trained, config)
    factory = network_factory(sim, config, mode, fit, noise, derive_seed(config.seed, 7, index))
    calibration = None
    if tracked:      # background tracking: evaluated with the last training segment's setting ...
        factory = partial(factory, **tracked[-1])
        if config.eval_background == "measured":     # ... or one measured under the evaluation's own clamps
            calibration = evaluation_calibration(config, data)
    readouts = evaluate_networks(sim, config, factory, W, b, test_x, completion, progress, f"{mode} trained",
                                 calibration)
    scores = score_networks(readouts, test_y, completion, config.n_pixels)
    if "measured_background" in readouts:
        scores["measured_background"] = readouts["measured_background"]
    scores["examples"] = _examples(readouts, completion, config.n_pixels)
    if keep_label_readout:
        scores["label_on_fraction"] = readouts["classify"][:, :, config.n_pixels:config.n_pixels + N_LABELS].tolist()
    return scores


def reevaluate_trained(results: dict, modes=MODES, progress: bool = False, keep_label_readout: bool = False,
                       **changes) -> dict:
    """Score the trained networks of a finished run again, with other evaluation settings.

    ``results``: one run's results (``results.json``, or a run of benchmarks/results/ensemble_data*.json) with
    its ``config``, ``trained_parameters``, ``activation_fit``, ``ensemble_source_rate_hz`` and
    ``training_history``. ``changes``: evaluation settings of :class:`EnsembleDataConfig` only
    (``eval_background``, ``eval_calibration_images``, ``eval_calibration_passes``, ``eval_settle_ms``,
    ``eval_read_ms``). The networks, test images, occlusions and simulator seeds are the run's, so with
    unchanged settings every mode scores as in the run (results of runs before the last tracking entry was
    kept whole lack the ``translation_units`` offsets: then only ``eval_background`` "measured"). Returns
    ``{mode: scores}`` (:func:`score_networks`; with ``keep_label_readout`` also ``label_on_fraction``, the label
    units' on-fractions in classification, (M, n, 10)).

    Examples
    --------
    >>> reevaluate_trained({"config": {}}, learning_rate=0.1)   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: reevaluate_trained changes only the evaluation settings [...], got ['learning_rate']
    """
    allowed = ("eval_background", "eval_calibration_images", "eval_calibration_passes", "eval_read_ms",
               "eval_settle_ms", "eval_groups")
    if set(changes) - set(allowed):
        raise ValueError(f"reevaluate_trained changes only the evaluation settings {list(allowed)}, "
                         f"got {sorted(set(changes) - set(allowed))}")
    for mode in modes:
        check_choice(mode, "modes", MODES)
    config = config_from_dict(EnsembleDataConfig, {**results["config"], **changes})
    data, _, test_x, test_y = load_task_split(config)
    completion = _completion_sets(config, test_x)
    settings = background_run_settings(config, config.backend)
    source_rate = float(results["ensemble_source_rate_hz"])
    fits = {mode: ActivationFit.from_dict(results["activation_fit"][mode]) for mode in MODES}
    noises = {"poisson": config.noise,
              "ensemble": equivalent_noise(settings.background, "ensemble", config.noise, source_rate)}
    tracked = {}
    for mode in modes:
        history = results["training_history"][mode].get("segment_tracking")
        if history:        # results written before the last entry was kept whole lack its per-neuron offsets
            last = dict(history[-1])
            if last.pop("leak_offsets_from_previous_segment", False) and config.eval_background != "measured":
                raise ValueError(f"the results do not store the {mode} run's per-neuron leak offsets "
                                 "(translation_units); re-evaluate it with eval_background='measured'")
            tracked[mode] = [last]
    sim = load_backend(config.backend)
    return {mode: _score_trained(sim, config, mode, fits[mode], noises[mode], MODES.index(mode),
                                 results["trained_parameters"][mode], tracked.get(mode), data, test_x, test_y,
                                 completion, progress, keep_label_readout)
            for mode in modes}


def _completion_sets(config: EnsembleDataConfig, test_x: np.ndarray) -> dict:
    """Occlusion kind -> (the first ``n_completion_images`` test images, their occlusion masks)."""
    pixels = test_x[:config.n_completion_images]
    return {kind: (pixels, occlusion_mask(kind, pixels.shape[0], config.side, derive_rng(config.seed, 22, k)))
            for k, kind in enumerate(config.occlusions)}


def _compact_history(history: dict) -> dict:
    """The training history for the results: per-neuron source efficacies (``translation_units``) summarised
    per segment (mean and coefficient of variation over neurons; the checkpoint keeps them whole), except in the
    last ``segment_tracking`` entry, the setting the trained networks are read out with."""
    out = dict(history)
    efficacies = out.pop("segment_source_efficacy_hz", None)
    if efficacies:
        arrays = [np.asarray(e, dtype=float) for e in efficacies]
        out["segment_source_efficacy_mean_hz"] = [float(a.mean()) for a in arrays]
        out["segment_source_efficacy_cv"] = [float(a.std() / a.mean()) if a.mean() > 0 else None for a in arrays]
    if "segment_tracking" in out:      # the last entry whole: the trained networks' evaluation setting
        out["segment_tracking"] = [{k: v for k, v in entry.items() if k != "source_efficacy_hz"}
                                   | ({"leak_offsets_from_previous_segment": True} if "source_efficacy_hz" in entry
                                      else {})
                                   for entry in out["segment_tracking"][:-1]] + out["segment_tracking"][-1:]
    return out


def _recording_factory(factory, store: dict, mode: str):
    """``factory`` that also records the backend objects each built ensemble created as noise sources."""
    def build_and_record(sim, W, b, first_iteration, **kwargs):
        network = factory(sim, W, b, first_iteration, **kwargs)
        store[mode] = network.generator_models()
        return network
    return build_and_record


def _trained_parameters(trained: dict, config: EnsembleDataConfig) -> tuple[np.ndarray, np.ndarray]:
    n = config.n_units
    W = np.zeros((config.n_networks * n,) * 2)
    for s, W_vh in zip(block_slices([n] * config.n_networks), trained["W_blocks"]):
        block = np.zeros((n, n))
        v = config.n_visible
        block[:v, v:] = W_vh
        block[v:, :v] = np.asarray(W_vh).T
        W[s, s] = block
    return W, np.asarray(trained["b"], dtype=float)


def _examples(readouts: dict, completion: dict, n_pixels: int, n_examples: int = 4) -> dict:
    """Completion examples of network 0 (truth, occluded, completed on-fractions) per occlusion kind."""
    out = {}
    for kind, (pixels, occluded) in completion.items():
        out[kind] = [{"truth": pixels[i].tolist(), "occluded": occluded[i].tolist(),
                      "completed": readouts[kind][0, i, :n_pixels].tolist()}
                     for i in range(min(n_examples, pixels.shape[0]))]
    return out


def _summarise(config, state, backgrounds, poisson_fit, ensemble_fit, source_rate, settings, test_y, timings,
               generators) -> dict:
    scores = state["scores"]
    baseline = state["prepared"]["baseline"]

    def median(key, condition):
        return float(np.median(scores[condition][key]))

    summary = {
        "ensemble_test_accuracy": median("accuracy", "ensemble_trained"),
        "poisson_test_accuracy": median("accuracy", "poisson_trained"),
        "ensemble_completion_error": median("mean_completion_error", "ensemble_trained"),
        "poisson_completion_error": median("mean_completion_error", "poisson_trained"),
        "ensemble_vote_test_accuracy": scores["ensemble_trained"]["vote_accuracy"],
        "poisson_vote_test_accuracy": scores["poisson_trained"]["vote_accuracy"],
        "ensemble_untrained_test_accuracy": median("accuracy", "ensemble_untrained"),
        "ensemble_untrained_completion_error": median("mean_completion_error", "ensemble_untrained"),
        "poisson_untrained_test_accuracy": median("accuracy", "poisson_untrained"),
        "exact_baseline_test_accuracy": float(np.median([b["accuracy"] for b in baseline])),
        "exact_baseline_completion_error": float(np.median([b["mean_completion_error"] for b in baseline])),
        "n_networks": config.n_networks, "n_hidden": config.n_hidden, "train_iterations": config.train_iterations,
        "n_test_images": len(test_y), "background_synapse": config.background_synapse, "task": config.task,
    }
    summary["accuracy_gap_points"] = 100 * (summary["poisson_test_accuracy"] - summary["ensemble_test_accuracy"])
    summary["completion_error_ratio"] = (summary["ensemble_completion_error"]
                                         / max(summary["poisson_completion_error"], 1e-12))
    timing = {mode: dict(state["training"][mode]["timing"]) for mode in MODES}
    for mode in MODES:
        t = timing[mode]
        t["wall_s_per_iteration"] = t["training_wall_s"] / max(t["iterations_timed"], 1)
    return {
        "task": f"ensemble_{config.task}",
        "summary": summary,
        "criteria": {"accuracy_within_2_points_of_poisson": bool(summary["accuracy_gap_points"] <= 2.0),
                     "completion_error_within_1.2x_of_poisson": bool(summary["completion_error_ratio"] <= 1.2),
                     "at_least_10_networks": bool(config.n_networks >= 10)},
        "definitions": {
            "test_accuracy": "median over networks of the share of test images whose most active label unit "
                             "(pixels clamped) is the true label",
            "completion_error": "median over networks of the mean over occlusion kinds of the share of hidden "
                                "pixels predicted wrongly (on if on for > 1/2 of the read-out time)",
            "vote": "plurality of the networks' labels (ties: summed label activity); completion: a pixel is on "
                    "where more than half of the networks predict it on",
            "exact_baseline": "each network's starting RBM trained with exact block-Gibbs CD, same update, "
                              "number of updates and schedule; scored with exact block Gibbs"},
        "scores": {key: {k: v for k, v in value.items() if k != "examples"} for key, value in scores.items()},
        "quartiles_over_networks": {key: {"accuracy": quartiles(value["accuracy"]),
                                          "completion_error": quartiles(value["mean_completion_error"])}
                                    for key, value in scores.items()},
        "exact": {"baseline": baseline, "pretrained_exact": state["prepared"]["pretrained_exact"],
                  "baseline_curve": state["prepared"]["baseline_curve"]},
        "confusion_matrix": {mode: confusion_matrix(test_y, scores[f"{mode}_trained"]["vote_predicted"],
                                                    N_LABELS).tolist() for mode in MODES},
        "examples": {mode: scores[f"{mode}_trained"]["examples"] for mode in MODES},
        "training_history": {mode: _compact_history(state["training"][mode]["history"]) for mode in MODES},
        "timing": {"training": timing, **timings},
        "noise_sources": {mode: generators.get(mode) for mode in MODES},
        "background": {mode: {"inputs": bg["inputs"].summary(), "free_membrane": bg["membrane"].summary(),
                              "network_mean_rate_hz": float(np.mean(bg["rates_hz"])),
                              "inputs_source": bg["inputs_source"]}
                       for mode, bg in backgrounds.items()},
        "activation_fit": {"poisson": poisson_fit.to_dict(), "ensemble": ensemble_fit.to_dict()},
        "ensemble_source_rate_hz": source_rate,
        "ensemble_background": settings.background.to_dict(),
        "trained_parameters": state["trained"],
        "config": config_to_dict(config),
        "versions": library_versions(),
        "machine": machine_info(),
    }


def _write_outputs(results: dict, out, backgrounds: dict, task_config: EnsembleDataConfig,
                   chip: dict | None = None) -> None:
    config = results["config"]
    side, n_pixels = task_config.side, task_config.n_pixels
    files = {}
    curves = {}
    for mode in MODES:
        history = results["training_history"][mode]
        if history.get("segment_end"):
            curves[f"{mode} noise (median over networks)"] = np.median(history["segment_exact_accuracy"], axis=1)
    if curves:
        segment_end = results["training_history"]["ensemble"]["segment_end"]
        files["accuracy_over_training"] = plot_learning_curve(
            segment_end, curves, out / "accuracy_over_training.png",
            ylabel="test accuracy (exact free-energy read-out of the current weights)",
            title=f"{config['n_networks']} networks x {task_config.n_visible} + {config['n_hidden']} units "
                  f"({task_config.task})")
    for mode in MODES:
        files[f"confusion_{mode}"] = plot_confusion_matrix(
            np.asarray(results["confusion_matrix"][mode]), out / f"confusion_{mode}.png",
            title=f"vote of {config['n_networks']} networks, {mode} noise, trained "
                  f"(spiking, {config['eval_read_ms']:g} ms read-out per image)")
        files[f"completion_{mode}"] = plot_completion_examples(
            results["examples"][mode], side, out / f"completion_{mode}.png",
            title=f"network 0, {mode} noise, trained: completed = time on / read-out time "
                  f"({config['eval_read_ms']:g} ms)")
        W_vh = np.asarray(results["trained_parameters"][mode]["W_blocks"][0])
        files[f"receptive_fields_{mode}"] = plot_receptive_fields(
            W_vh[:n_pixels], side, out / f"receptive_fields_{mode}.png",
            title=f"network 0, {mode} noise: pixel -> hidden weights (BM units)")
    files["background"] = plot_background({m: bg["inputs"] for m, bg in backgrounds.items()},
                                          {m: bg["membrane"] for m, bg in backgrounds.items()},
                                          out / "background.png", title="background: Poisson vs ensemble")
    results["files"] = {name: str(path.name) for name, path in files.items()}
    write_results(out, results, results["config"], chip)
