"""Why the data ensemble learns slower than the same networks under Poisson noise (issue 22, diagnosis).

The acceptance run (benchmarks/results/ensemble_data.json, seed 1) trained 10 digit RBMs (74 visible +
100 hidden units) by spiking CD under both noise sources; the ensemble's exact read-out of its weights
rose about 2.5 times slower than Poisson's and ended 18 points lower. This script measures, at FIXED
weights and without training, how far the statistics each CD iteration collects are from the exact ones
in both modes: the same networks, the same translation (the activation functions and the ensemble's
source rate measured by that run), the same clamped / free phases as training
(:class:`cortexsim.protocols.cd_engine.ClampedStatistics`: ``batch_size`` images x ``clamp_ms``, then
``model_ms`` free), ``--iterations`` of them per mode, on ``brian2_standalone``:

* clamped phase: each hidden unit's on-fraction (after ``settle_ms``) against the exact ``p(h | v)`` of
  the clamped image (regression slope and intercept, mean difference, RMS error);
* free phase: each unit's on-fraction against long exact block-Gibbs marginals of the same RBM;
* firing rates of all neurons in the clamped and in the free phase (in ensemble mode these neurons ARE
  the background sources: a change between the phases changes every neuron's noise);
* the CD weight gradient (visible-hidden) of the iterations, averaged, against the exact gradient of the
  same images (exact ``p(h | v)`` for the data term, exact-Gibbs moments for the model term): cosine and
  norm ratio; plus the mean per-iteration cosine.

Weights: ``untrained`` (the random initial RBMs) and ``exact`` (each RBM trained by exact-Gibbs CD with the
acceptance schedule, 400 updates; a development seed's initial weights, 7), so the biased statistics are
seen where learning starts and where it should end. Images: the training split of seed 1 (no test image
is used). The network structure (connectivity of the ensemble background) is that of seed 1 (the
acceptance run's compiled projects are reused).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ensemble_data_diagnosis.py [--iterations 20]

Writes benchmarks/results/ensemble_data_diagnosis.json (``summary``: per weights and mode the headline
numbers) and reads the time budget of the acceptance run from ensemble_data.json (training vs evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import logit

from cortexsim.backends.registry import load_backend
from cortexsim.backends.spikes import spike_arrays
from cortexsim.analysis.states import states_on_grid_from_arrays
from cortexsim.models.cd_learning import bipartite_mask, block_gibbs, unit_on_probability
from cortexsim.models.ensemble import equivalent_noise
from cortexsim.parameters import ActivationFit
from cortexsim.protocols.cd_digits import N_PIXELS, N_VISIBLE, initial_rbm, load_digits_split, rbm_parts, train_exact
from cortexsim.models.ensemble_background import SourceEfficacy, tracking_weight_scale, unit_leak_offsets
from cortexsim.protocols.cd_engine import ClampedStatistics, TimedSimulator, block_slices, discard_spikes
from cortexsim.models.boltzmann import BoltzmannMachine
from cortexsim.protocols.ensemble import background_run_settings, measure_background
from cortexsim.protocols.ensemble_data import EnsembleDataConfig, network_factory
from cortexsim.results import library_versions, machine_info, write_json_atomic
from cortexsim.seeds import derive_rng, derive_seed

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "ensemble_data_diagnosis.json"
ACCEPTANCE = ROOT / "results" / "ensemble_data.json"
DEV_SEED = 7
#: the acceptance run's settings (benchmarks/ensemble_data.py, size "full")
FULL = dict(n_networks=10, n_hidden=100, train_iterations=400, learning_rate=0.4, schedule_tau=100.0,
            checkpoint_every=25)


def starting_weights(config: EnsembleDataConfig, data: np.ndarray, kind: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) of every network: the random initial RBM of the development seed, or it trained by exact CD."""
    out = []
    mask = bipartite_mask(N_VISIBLE, config.n_hidden)
    for m in range(config.n_networks):
        rng = derive_rng(DEV_SEED, 40, m)
        start = initial_rbm(config.n_hidden, rng)
        W, b = np.array(start.W), np.array(start.b)
        if kind == "exact":
            chains = data[rng.integers(0, data.shape[0], config.gibbs_chains)].copy()
            update = config.cd_settings().update(mask, W.shape[0])
            W, b, _, _ = train_exact(W, b, update, data, config.train_iterations, config.batch_size, chains, rng)
        out.append((W, b))
    return out


def gibbs_reference(W: np.ndarray, b: np.ndarray, rng: np.random.Generator, chains: int = 200,
                    sweeps: int = 600, burn_in: int = 100) -> dict:
    """Exact block-Gibbs marginals and <v h^T> of one RBM (Rao-Blackwellised hidden statistics)."""
    W_vh, b_v, b_h = rbm_parts(W, b)
    v = (rng.random((chains, N_VISIBLE)) < 0.5).astype(float)
    v, _, _ = block_gibbs(W_vh, b_v, b_h, v, burn_in, rng)
    v_sum, h_sum, vh_sum, count = 0.0, 0.0, 0.0, 0
    for _ in range(sweeps // 20):
        v, _, _ = block_gibbs(W_vh, b_v, b_h, v, 20, rng)
        p_h = unit_on_probability(b_h + v @ W_vh)
        v_sum, h_sum, vh_sum, count = v_sum + v.sum(0), h_sum + p_h.sum(0), vh_sum + v.T @ p_h, count + chains
    return {"v": v_sum / count, "h": h_sum / count, "vh": vh_sum / count}


def _fit_line(x, y) -> dict:
    x, y = np.asarray(x, dtype=float).reshape(-1), np.asarray(y, dtype=float).reshape(-1)
    slope, intercept = np.polyfit(x, y, 1)
    return {"slope": float(slope), "intercept": float(intercept), "mean_difference": float(np.mean(y - x)),
            "rms_error": float(np.sqrt(np.mean((y - x) ** 2))), "mean_exact": float(np.mean(x)),
            "mean_spiking": float(np.mean(y))}


def _cosine(a, b) -> float:
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300))



def _offsets(network, efficacy_hz: np.ndarray) -> np.ndarray:
    """Per-neuron leak offsets (mV) of the network's own background sources (at its leaks before any offset)."""
    base = network.e_leak - (0.0 if network.leak_offset_mv is None else network.leak_offset_mv)
    return unit_leak_offsets(network.neuron, network.background, network.sources_exc, network.sources_inh, base,
                             np.asarray(efficacy_hz, dtype=float))


def _logit(p):
    """scipy's logit of on-fractions kept away from 0 and 1 (a unit never or always on in the window)."""
    return logit(np.clip(np.asarray(p, dtype=float), 1e-3, 1 - 1e-3))


def measure(sim, config: EnsembleDataConfig, mode: str, fit: ActivationFit, noise, weights: list, data: np.ndarray,
            references: list, iterations: int, seed: int, stagger_groups: int = 1,
            tracking: dict | None = None, efficacy_hz: np.ndarray | None = None) -> dict:
    """Statistics of ``iterations`` CD iterations at fixed ``weights`` (see the module docstring).

    Staggered runs also measure each source's released weight per second (``efficacy_hz``, depressing
    synapses) and compare every unit's free-phase deviation from Gibbs (logit) with the offset its own
    background's mean conductance predicts (:func:`cortexsim.models.ensemble_background.unit_leak_offsets`). ``efficacy_hz`` given (from an
    earlier run): each neuron's leak is moved by minus that offset before the run (per-neuron correction).

    ``stagger_groups`` > 1: the networks' phases staggered as in training with that setting
    (:meth:`ClampedStatistics.staggered_states`); every network is read in its own clamp and free windows,
    and the rates "clamped" / "free" are those of all neurons during the networks' own clamp (after
    ``settle_ms``) / free windows (from the 0/1 states), pooled over the networks. ``tracking``: keywords of
    the network factory (``background_scale`` or ``source_rate_hz``, as training's ``background_tracking``
    sets them per segment)."""
    M, n_units, H = config.n_networks, config.n_units, config.n_hidden
    W = np.zeros((M * n_units,) * 2)
    b = np.zeros(M * n_units)
    for m, (W_m, b_m) in enumerate(weights):
        s = slice(m * n_units, (m + 1) * n_units)
        W[s, s], b[s] = W_m, b_m
    factory = network_factory(sim, config, mode, fit, noise, seed)
    tic = time.perf_counter()
    network = factory(sim, W, b, 0, **(tracking or {}))
    correction = None
    if efficacy_hz is not None:
        correction = _offsets(network, efficacy_hz)
        network.set_leak_offsets(correction)
    efficacy = (SourceEfficacy(M * n_units, config.neuron.tau_refrac, config.readout_dt_ms, config.tau_rec_ms)
                if config.background_synapse == "depressing" else None)
    timed = TimedSimulator(sim, config.dt_ms)
    timed.run(config.burn_in_ms)
    discard_spikes(network)
    visible = np.concatenate([m * n_units + np.arange(N_VISIBLE) for m in range(M)])
    rng = derive_rng(DEV_SEED, 50)
    dt, tau_ref = config.readout_dt_ms, config.neuron.tau_refrac
    exact_h, spiking_h = [], []
    clamped_spikes, clamped_ms, free_spikes, free_ms = np.zeros(M * n_units), 0.0, np.zeros(M * n_units), 0.0
    free_on = np.zeros(M * n_units)
    grads_spiking, grads_exact, cosines = [], [], []
    blocks = block_slices([n_units] * M)
    staggered = ClampedStatistics(np.zeros((1, M * N_VISIBLE)), visible, config.batch_size, config.clamp_ms,
                                  config.settle_ms, dt, config.clamp_bias, blocks=blocks,
                                  stagger_groups=stagger_groups)
    total_on, total_steps = 0.0, 0
    clamped_on, clamped_steps, free_on_all, free_steps = np.zeros(M * n_units), 0, np.zeros(M * n_units), 0
    for _ in range(iterations):
        # network m gets its own image per clamp (different images at the same time, as in training)
        rows = data[rng.integers(0, data.shape[0], (config.batch_size, M))]          # (B, M, 74)
        if stagger_groups > 1:
            states, groups = staggered.staggered_states(network, timed, config.model_ms,
                                                        rows.reshape(config.batch_size, -1))
            total_on, total_steps = total_on + states.sum(axis=0, dtype=float), total_steps + states.shape[0]
            if efficacy is not None:
                efficacy.add(states)
            data_vh_s, data_vh_e = np.zeros((M, N_VISIBLE, H)), np.zeros((M, N_VISIBLE, H))
            free_blocks = []
            for m, (W_m, b_m) in enumerate(weights):
                s = blocks[m]
                W_vh, _, b_h = rbm_parts(W_m, b_m)
                free = []
                for a, b_, row in groups[m % stagger_groups]:
                    if row >= 0:
                        window = states[int(round((a + config.settle_ms) / dt)):int(round(b_ / dt))]
                        clamped_on += window.sum(axis=0, dtype=float)
                        clamped_steps += window.shape[0]
                        h_on = window[:, s].mean(axis=0)[N_VISIBLE:]
                        p_h = unit_on_probability(b_h + rows[row, m] @ W_vh)
                        exact_h.append(p_h)
                        spiking_h.append(h_on)
                        data_vh_e[m] += np.outer(rows[row, m], p_h) / config.batch_size
                        data_vh_s[m] += np.outer(rows[row, m], h_on) / config.batch_size
                    else:
                        window = states[int(round(a / dt)):int(round(b_ / dt))]
                        free_on_all += window.sum(axis=0, dtype=float)
                        free_steps += window.shape[0]
                        free.append(window[:, s].astype(np.float32))
                free_blocks.append(np.vstack(free))
            free_on += np.concatenate([f.mean(axis=0) for f in free_blocks])
            model_vh_s = np.stack([f[:, :N_VISIBLE].T @ f[:, N_VISIBLE:] / f.shape[0] for f in free_blocks])
            model_vh_e = np.stack([ref["vh"] for ref in references])
            grads_spiking.append(data_vh_s - model_vh_s)
            grads_exact.append(data_vh_e - model_vh_e)
            cosines.append(_cosine(grads_spiking[-1], grads_exact[-1]))
            continue
        leaks = network.clamp_schedule(visible, rows.reshape(config.batch_size, -1), config.clamp_bias)
        t_begin = timed.t_ms
        phases = timed.run_schedule(network.population, "v_rest", leaks,
                                    [config.clamp_ms] * config.batch_size + [config.model_ms])
        times, indices = spike_arrays(network.population, clear=True)
        states = states_on_grid_from_arrays(times, indices, M * n_units, tau_ref, t_begin, timed.t_ms, dt)
        total_on, total_steps = total_on + states.sum(axis=0, dtype=float), total_steps + states.shape[0]
        data_vh_s, data_vh_e = np.zeros((M, N_VISIBLE, H)), np.zeros((M, N_VISIBLE, H))
        for k, (t0, t1) in enumerate(phases[:-1]):
            first, last = int(round((t0 + config.settle_ms - t_begin) / dt)), int(round((t1 - t_begin) / dt))
            on = states[first:last].mean(axis=0)
            in_window = (times >= t0 + config.settle_ms) & (times < t1)
            clamped_spikes += np.bincount(indices[in_window], minlength=M * n_units)
            clamped_ms += t1 - t0 - config.settle_ms
            for m, (W_m, b_m) in enumerate(weights):
                W_vh, _, b_h = rbm_parts(W_m, b_m)
                v = rows[k, m]
                p_h = unit_on_probability(b_h + v @ W_vh)
                h_on = on[m * n_units + N_VISIBLE:(m + 1) * n_units]
                exact_h.append(p_h)
                spiking_h.append(h_on)
                data_vh_e[m] += np.outer(v, p_h) / config.batch_size
                data_vh_s[m] += np.outer(v, h_on) / config.batch_size
        t0, t1 = phases[-1]
        first = int(round((t0 - t_begin) / dt))
        free = states[first:].astype(np.float32)
        free_on += free.mean(axis=0)
        in_window = times >= t0
        free_spikes += np.bincount(indices[in_window], minlength=M * n_units)
        free_ms += t1 - t0
        model_vh_s = np.stack([(free[:, m * n_units:m * n_units + N_VISIBLE].T
                                @ free[:, m * n_units + N_VISIBLE:(m + 1) * n_units]) / free.shape[0]
                               for m in range(M)])
        model_vh_e = np.stack([ref["vh"] for ref in references])
        grads_spiking.append(data_vh_s - model_vh_s)
        grads_exact.append(data_vh_e - model_vh_e)
        cosines.append(_cosine(grads_spiking[-1], grads_exact[-1]))
    sim.end()
    free_on /= iterations
    if stagger_groups > 1:    # from the states: on-fraction / tau_ref
        rates_clamped = clamped_on / clamped_steps / tau_ref * 1e3
        rates_free = free_on_all / free_steps / tau_ref * 1e3
    else:
        rates_clamped = clamped_spikes / (clamped_ms * 1e-3)
        rates_free = free_spikes / (free_ms * 1e-3)
    marginal = {"v": [], "h": []}
    spiking = {"v": [], "h": []}
    for m, ref in enumerate(references):
        marginal["v"].append(ref["v"])
        marginal["h"].append(ref["h"])
        spiking["v"].append(free_on[m * n_units:m * n_units + N_VISIBLE])
        spiking["h"].append(free_on[m * n_units + N_VISIBLE:(m + 1) * n_units])
    grad_s, grad_e = np.mean(grads_spiking, axis=0), np.mean(grads_exact, axis=0)
    unit_kind = np.tile(np.r_[np.zeros(N_PIXELS), np.ones(N_VISIBLE - N_PIXELS), 2 * np.ones(H)], M)
    per_unit = {}
    if efficacy is not None and efficacy.duration_ms > 0 and mode == "ensemble":
        efficacy_now = efficacy.per_second()
        offsets = _offsets(network, efficacy_now)
        gibbs = np.concatenate([np.r_[ref["v"], ref["h"]] for ref in references])
        deviation = _logit(free_on) - _logit(gibbs)
        predicted = -offsets / fit.alpha      # logit units: a positive offset needed = the unit is too silent
        usable = (gibbs > 0.02) & (gibbs < 0.98)
        per_unit = {"efficacy_hz": efficacy_now.tolist(),
                    "leak_offset_mv_rms": float(np.sqrt(np.mean(offsets ** 2))),
                    "applied_correction_mv_rms": (None if correction is None
                                                  else float(np.sqrt(np.mean(correction ** 2))))}
        for name, kind in (("pixels", 0), ("labels", 1), ("hidden", 2)):
            sel = usable & (unit_kind == kind)
            if sel.sum() > 3:
                per_unit[f"free_logit_deviation_vs_predicted_{name}"] = {
                    "pearson_r": float(np.corrcoef(predicted[sel], deviation[sel])[0, 1]),
                    "slope": float(np.polyfit(predicted[sel], deviation[sel], 1)[0]),
                    "deviation_rms": float(np.sqrt(np.mean(deviation[sel] ** 2))),
                    "predicted_rms": float(np.sqrt(np.mean(predicted[sel] ** 2))), "units": int(sel.sum())}
    return {
        "per_unit_background": per_unit,
        "clamped_hidden_vs_exact_p_h_given_v": _fit_line(exact_h, spiking_h),
        "free_pixels_vs_gibbs": _fit_line(np.concatenate(marginal["v"]).reshape(M, -1)[:, :N_PIXELS],
                                          np.concatenate(spiking["v"]).reshape(M, -1)[:, :N_PIXELS]),
        "free_labels_vs_gibbs": _fit_line(np.concatenate(marginal["v"]).reshape(M, -1)[:, N_PIXELS:],
                                          np.concatenate(spiking["v"]).reshape(M, -1)[:, N_PIXELS:]),
        "free_hidden_vs_gibbs": _fit_line(marginal["h"], spiking["h"]),
        "rates_hz": {phase: {"all": float(np.mean(rates)), "pixels": float(np.mean(rates[unit_kind == 0])),
                             "labels": float(np.mean(rates[unit_kind == 1])),
                             "hidden": float(np.mean(rates[unit_kind == 2]))}
                     for phase, rates in (("clamped", rates_clamped), ("free", rates_free))},
        "gradient_vh": {"cosine_of_the_averages": _cosine(grad_s, grad_e),
                        "norm_ratio_spiking_to_exact": float(np.linalg.norm(grad_s) / max(np.linalg.norm(grad_e), 1e-300)),
                        "mean_cosine_per_iteration": float(np.mean(cosines)),
                        "projection_on_exact": float(np.sum(grad_s * grad_e) / max(np.sum(grad_e ** 2), 1e-300))},
        "rate_whole_iteration_hz": float(np.mean(total_on) / total_steps / tau_ref * 1e3),
        "stagger_groups": int(stagger_groups), "tracking": dict(tracking or {}),
        "iterations": iterations, "wall_s": time.perf_counter() - tic,
    }


def time_budget() -> dict:
    """Where the acceptance run's wall time went (from its own timing record)."""
    run = json.loads(ACCEPTANCE.read_text())["runs"]["digits_depressing"]
    t = run["timing"]
    out = {"total_s": t["total_s"], "background_measurement_s": t["background_s"]}
    for mode in ("poisson", "ensemble"):
        training = t["training"][mode]["training_wall_s"]
        out[f"{mode}_training_s"] = training
        # the rest of the mode's wall time: two evaluations (one launch of the binary per clamp then) and the
        # checkpoint writes (full (M N)^2 optimizer state per segment); the run did not time them apart
        out[f"{mode}_evaluations_and_checkpoints_s"] = t[f"{mode}_s"] - training
    out["evaluations_and_checkpoints_share_of_total"] = (sum(v for k, v in out.items() if "evaluations" in k)
                                                         / t["total_s"])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--weights", default="untrained,exact")
    parser.add_argument("--modes", default="poisson,ensemble")
    parser.add_argument("--stagger-groups", type=int, default=1, help="stagger the phases in G groups (1: off)")
    parser.add_argument("--tracking", default="off", choices=("off", "translation", "weights"),
                        help="follow the source rate as training's background_tracking does: the run without it "
                             "(same weights, mode and stagger; measured first if not saved) gives the rate for "
                             "step 0, each further step (--tracking-steps) the previous step's rate")
    parser.add_argument("--tracking-steps", type=int, default=2)
    parser.add_argument("--alpha-scale", type=float, default=1.0,
                        help="multiply the ensemble activation fit's alpha (logistic slope, mV) by this factor: tests "
                             "whether the ensemble's units sample as if at another temperature than the translation "
                             "assumes (tracked runs: the moved fit's alpha scales by the same factor)")
    parser.add_argument("--model-ms", type=float, default=None,
                        help="free (model) phase per iteration in ms (default: the acceptance run's, 400 ms): tests "
                             "whether the free statistics are still biased towards the last clamped image")
    parser.add_argument("--correct-from", default=None,
                        help="name of a saved staggered ensemble run: move each neuron's leak by minus the offset its "
                             "background's mean conductance predicts, from that run's per-source released weight")
    parser.add_argument("--in-degree", type=int, default=30,
                        help="background sources per neuron and type K (the acceptance run: 30); the background "
                             "weights are matched to the same equivalent noise for any K, so the activation fits "
                             "of the acceptance run are reused (tracked runs re-fit them to the measured rate)")
    parser.add_argument("--tag", default="", help="suffix of the run names in the JSON (default: stagger<G> when "
                                                   "staggered; tracked runs add _<tracking>_step<k>)")
    args = parser.parse_args(argv)
    tic = time.perf_counter()
    config = EnsembleDataConfig(seed=1, backend="brian2_standalone", in_degree=args.in_degree,
                                **{**FULL, **({"model_ms": args.model_ms} if args.model_ms else {})})
    accepted = json.loads(ACCEPTANCE.read_text())["runs"]["digits_depressing"]
    fits = {mode: ActivationFit(**{k: v for k, v in accepted["activation_fit"][mode].items()
                                   if k in ("v_p05", "alpha")}) for mode in ("poisson", "ensemble")}
    source_rate = float(accepted["ensemble_source_rate_hz"])
    settings = background_run_settings(config, config.backend)
    noises = {"poisson": config.noise,
              "ensemble": equivalent_noise(settings.background, "ensemble", config.noise, source_rate)}
    data, _, _, _ = load_digits_split(config.binarize_threshold, config.test_fraction, config.seed)  # training split
    sim = load_backend(config.backend)
    recalibration = None
    if args.alpha_scale != 1.0:
        fits["ensemble"] = ActivationFit(v_p05=fits["ensemble"].v_p05, alpha=args.alpha_scale * fits["ensemble"].alpha)
    if args.in_degree != 30:   # the acceptance run's ensemble translation was measured with K = 30: measure it anew
        starts = [BoltzmannMachine(W, b) for W, b in starting_weights(config, data, "untrained")]
        measured = measure_background(sim, config, settings, starts, fits["poisson"], "ensemble")
        fits["ensemble"], source_rate = measured["fit"], measured["source_rate_hz"]
        noises["ensemble"] = equivalent_noise(settings.background, "ensemble", config.noise, source_rate)
        recalibration = {"in_degree": args.in_degree, "v_p05": fits["ensemble"].v_p05,
                         "alpha": fits["ensemble"].alpha, "source_rate_hz": source_rate}
        print(f"recalibrated ensemble translation for K = {args.in_degree}: {recalibration}", flush=True)
    saved = json.loads(OUT.read_text()) if OUT.exists() else {"runs": {}}
    for kind in [k for k in args.weights.split(",") if k]:
        weights = starting_weights(config, data, kind)
        references = [gibbs_reference(W, b, derive_rng(DEV_SEED, 60, m)) for m, (W, b) in enumerate(weights)]
        for index, mode in enumerate([m for m in args.modes.split(",") if m]):
            tag = "_".join(([args.tag] if args.tag else []) + (["corrected"] if args.correct_from else [])) or "_".join(([f"stagger{args.stagger_groups}"] if args.stagger_groups > 1 else [])
                                       + ([f"k{args.in_degree}"] if args.in_degree != 30 else [])
                                       + ([f"alpha{args.alpha_scale:g}"] if args.alpha_scale != 1.0 else [])
                                       + ([f"model{args.model_ms:g}"] if args.model_ms else []))
            key = f"{kind}_{mode}" + (f"_{tag}" if tag else "")
            if args.tracking == "off":
                plan = [(key, False)]
            else:   # True: tracked, from the previous run's rate
                plan = [(f"{key}_{args.tracking}_step{k}", True) for k in range(args.tracking_steps)]
                if "rate_whole_iteration_hz" not in saved["runs"].get(key, {}):
                    plan.insert(0, (key, False))
            previous_rate = saved["runs"].get(key, {}).get("rate_whole_iteration_hz")
            for name, tracked in plan:
                used_rate, tracking = None, {}
                if tracked:
                    used_rate = previous_rate
                    tracking = ({"source_rate_hz": used_rate} if args.tracking == "translation" else
                                {"background_scale": tracking_weight_scale(settings.background, source_rate, used_rate,
                                                                           config.max_background_scale)})
                efficacy = (np.asarray(saved["runs"][args.correct_from]["per_unit_background"]["efficacy_hz"])
                            if args.correct_from and mode == "ensemble" else None)
                result = measure(sim, config, mode, fits[mode], noises[mode], weights, data, references,
                                 args.iterations, derive_seed(DEV_SEED, 30, index), args.stagger_groups, tracking,
                                 efficacy)
                result["corrected_from"] = args.correct_from if efficacy is not None else None
                result["rate_used_for_the_tracking_hz"] = used_rate
                if recalibration is not None and mode == "ensemble":
                    result["recalibrated_translation"] = recalibration
                previous_rate = result["rate_whole_iteration_hz"]
                saved["runs"][name] = result
                _report_and_save(saved, name, result, fits, source_rate, config, tic)
    return 0


def _report_and_save(saved: dict, key_done: str, result: dict, fits: dict, source_rate: float,
                     config: EnsembleDataConfig, tic: float) -> None:
    """Print one run's headline numbers, rebuild the summary over all saved runs, write the JSON."""
    print(f"{key_done}: " + json.dumps({k: v for k, v in result.items()
                                        if k in ("clamped_hidden_vs_exact_p_h_given_v", "rates_hz",
                                                 "gradient_vh", "rate_whole_iteration_hz",
                                                 "tracking")}), flush=True)
    saved["summary"] = {}
    for key, run in saved["runs"].items():
        saved["summary"][f"{key}_clamped_hidden_slope"] = run["clamped_hidden_vs_exact_p_h_given_v"]["slope"]
        saved["summary"][f"{key}_clamped_hidden_mean_difference"] = \
            run["clamped_hidden_vs_exact_p_h_given_v"]["mean_difference"]
        saved["summary"][f"{key}_free_hidden_mean_difference"] = run["free_hidden_vs_gibbs"]["mean_difference"]
        saved["summary"][f"{key}_rate_clamped_hz"] = run["rates_hz"]["clamped"]["all"]
        saved["summary"][f"{key}_rate_free_hz"] = run["rates_hz"]["free"]["all"]
        saved["summary"][f"{key}_gradient_cosine"] = run["gradient_vh"]["cosine_of_the_averages"]
        saved["summary"][f"{key}_gradient_projection_on_exact"] = run["gradient_vh"]["projection_on_exact"]
        if "rate_whole_iteration_hz" in run:
            saved["summary"][f"{key}_rate_whole_iteration_hz"] = run["rate_whole_iteration_hz"]
        for name, value in (run.get("tracking") or {}).items():
            saved["summary"][f"{key}_{name}"] = value
    saved.update(description=__doc__.split("\n\n")[1].replace("\n", " "), time_budget_of_acceptance_run=time_budget(),
                 translation={"fits": {m: {"v_p05": f.v_p05, "alpha": f.alpha} for m, f in fits.items()},
                              "ensemble_source_rate_hz": source_rate, "source": str(ACCEPTANCE.name)},
                 settings={**FULL, "batch_size": config.batch_size, "clamp_ms": config.clamp_ms,
                           "settle_ms": config.settle_ms, "model_ms": config.model_ms,
                           "readout_dt_ms": config.readout_dt_ms, "dev_seed": DEV_SEED,
                           "structure_seed": config.seed, "backend": config.backend},
                 versions=library_versions(), machine=machine_info(), wall_s=time.perf_counter() - tic,
                 load_average_at_end=list(os.getloadavg()),
                 command=" ".join([Path(sys.executable).name, *sys.argv]))
    write_json_atomic(OUT, saved)


if __name__ == "__main__":
    sys.exit(main())
