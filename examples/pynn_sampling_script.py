"""A plain PyNN script using cortexsim: sample from a Boltzmann machine on any backend.

    .venv/bin/python examples/pynn_sampling_script.py nest
    .venv/bin/python examples/pynn_sampling_script.py brian2

The network is built once; a second BM is then sampled by changing weights and leak potentials in
place. Times in ms.
"""

import sys

from cortexsim.analysis.divergence import dkl_both
from cortexsim.analysis.states import joint_distribution
from cortexsim.backends import load_backend
from cortexsim.models.boltzmann import joint, random_bm
from cortexsim.models.sampling_network import build_sampling_network
from cortexsim.protocols.calibration import CalibrationConfig, calibrate

backend = sys.argv[1] if len(sys.argv) > 1 else "nest"
duration = 10000.0  # ms

fit = calibrate(CalibrationConfig(seed=1, backend=backend), progress=True).fit
sim = load_backend(backend)
sim.setup(timestep=0.1, seed=42)
bm = random_bm(5, seed=0)
net = build_sampling_network(sim, bm, fit)
sim.run(duration)
p = joint_distribution(net.spiketrains(clear=True), net.tau_ref, 0.0, duration)
print("BM 0:", dkl_both(p, joint(bm)))

other = random_bm(5, seed=1)
net.set_bm(other)  # new weights and biases, same network
sim.run(duration)
p = joint_distribution(net.spiketrains(), net.tau_ref, duration, 2 * duration)
print("BM 1:", dkl_both(p, joint(other)))
sim.end()
