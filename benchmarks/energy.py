"""Benchmark: energy per sample (sampling) and per training iteration (CD) on the emulated chip and NEST (issue 20).

The same experiments run on the emulated BrainScaleS-2 (``brainscales``, chip bss2, chip seed 0 with
its fixed-pattern noise, no calibration: the energy does not depend on it) and on NEST, interleaved:

* sampling: a random 5-neuron BM (``random_bm(5, seed)``) for ``--sampling-ms`` of biological time;
  one sample = one network state per tau_ref (10 ms);
* CD: the target task (:mod:`cortexsim.protocols.cd_training`), one 5-neuron target, ``--cd-iterations``
  iterations of ``--cd-sampling-ms`` each plus a 100 ms burn-in per checkpoint segment.

Chip figures are the energy model (:mod:`cortexsim.backends.energy`: the ASIC's published power x
the emulated hardware time; system and prototype figures beside it); NEST figures are the measured
process CPU time of the same experiment x 15 W per busy core (an assumption). The activation
function is the fixed one of references §1 on both (no calibration run; D_KL is reported only to
show what the samples are worth, not as a criterion). CPU times come from a shared 2-core machine
(load averages recorded).

    nice -n 10 .venv/bin/python benchmarks/energy.py [--seeds 1 2 3]

Writes benchmarks/results/energy.json.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from cortexsim.parameters import ActivationFit
from cortexsim.protocols.cd_training import TargetTrainingConfig, train_target
from cortexsim.protocols.sampling import SamplingConfig, sample
from cortexsim.results import library_versions, machine_info, write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "energy.json"
BACKENDS = ("nest", "brainscales")
FIT = ActivationFit(v_p05=-50.61, alpha=0.82)      # references §1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--sampling-ms", type=float, default=20000.0)
    parser.add_argument("--cd-iterations", type=int, default=10)
    parser.add_argument("--cd-sampling-ms", type=float, default=2000.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    loads = [os.getloadavg()]
    runs = {"sampling": {b: [] for b in BACKENDS}, "cd": {b: [] for b in BACKENDS}}
    for seed in args.seeds:
        for backend in BACKENDS:
            result = sample(SamplingConfig(seed=seed, backend=backend, n_neurons=5, duration_ms=args.sampling_ms),
                            fit=FIT)
            runs["sampling"][backend].append({"energy": result.energy, "dkl_sampled_target": result.dkl_sampled_target})
            loads.append(os.getloadavg())
            config = TargetTrainingConfig(seed=seed, backend=backend, n_neurons=5, iterations=args.cd_iterations,
                                          sampling_ms=args.cd_sampling_ms, checkpoint_every=args.cd_iterations,
                                          eval_duration_ms=args.cd_sampling_ms)
            trained = train_target(config, fit=FIT)
            runs["cd"][backend].append({"energy": trained.energy,
                                        "dkl_final": trained.dkl_final[0]["dkl_sampled_target"]})
            loads.append(os.getloadavg())
            print(f"seed {seed} {backend}: {result.energy['j_per_sample']:.3g} J/sample, "
                  f"{trained.energy['j_per_iteration']:.3g} J/CD iteration", flush=True)

    def mean(task, backend, key):
        values = [r["energy"][key] for r in runs[task][backend]]
        return None if any(v is None for v in values) else float(np.mean(values))

    summary = {
        "chip_j_per_sample": mean("sampling", "brainscales", "j_per_sample"),
        "chip_system_j_per_sample": mean("sampling", "brainscales", "system_j_per_sample"),
        "chip_prototype_j_per_sample": mean("sampling", "brainscales", "prototype_j_per_sample"),
        "nest_j_per_sample": mean("sampling", "nest", "j_per_sample"),
        "chip_j_per_cd_iteration": mean("cd", "brainscales", "j_per_iteration"),
        "chip_system_j_per_cd_iteration": mean("cd", "brainscales", "system_j_per_iteration"),
        "nest_j_per_cd_iteration": mean("cd", "nest", "j_per_iteration"),
        "seeds": args.seeds, "sampling_ms": args.sampling_ms, "cd_iterations": args.cd_iterations,
        "cd_sampling_ms": args.cd_sampling_ms,
    }
    summary["nest_over_chip_j_per_sample"] = summary["nest_j_per_sample"] / summary["chip_j_per_sample"]
    summary["nest_over_chip_j_per_cd_iteration"] = summary["nest_j_per_cd_iteration"] / summary["chip_j_per_cd_iteration"]
    output = {
        "summary": summary, "runs": runs,
        "definitions": {"sample": "one network state per tau_ref (10 ms of biological time)",
                        "chip": "ASIC power x emulated hardware time (j_per_*); system power x estimated wall "
                                "time (system_j_per_*); cortexsim.backends.energy lists the sources",
                        "nest": "process CPU time of the simulation (sampling) or the training loop (CD) x "
                                "15 W per busy core (assumption)"},
        "load_average": loads, "versions": library_versions(), "machine": machine_info(),
        "notes": "backends interleaved per seed; CPU times on a shared 2-core machine (load averages recorded)",
    }
    write_json_atomic(args.output, output)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
