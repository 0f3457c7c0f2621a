"""Background noise strategies give the analytic input rate and free-membrane statistics on every backend.

Ten non-spiking IF_cond_exp neurons (threshold far above the membrane) get the package's Poisson
background (NEST: poisson_generator without relays; Brian2 and brian2_standalone: PoissonInput;
brainscales: the emulated chip's on-chip Poisson generators, on an ideal chip -- fixed-pattern noise
and weight quantisation off, since the analytic values are those of the nominal neuron). From the
recorded conductances and membrane potentials, per neuron:

* input rate: a shot-noise conductance with jumps w and decay tau_syn has mean w nu tau_syn
  (Campbell), so nu_hat = <g> / (w tau_syn) must equal the configured rate;
* free membrane mean and standard deviation against the high-conductance-state values: mean from
  :func:`free_membrane`; std from the linearised membrane, var(V) = tau_syn / (tau_syn + tau_eff) *
  sum_x (E_x - mu)^2 w_x^2 nu_x tau_syn / 2 / g_tot^2.

The chip cannot read out conductances (its recordables are spikes and v), so on brainscales the
input rate is checked through the membrane only: a rate off by more than the tolerance would move
the free-membrane mean and sd out of theirs.

Tolerances come from the expected noise of time averages of a process with correlation time tau_syn
over T: SE(mean of g) = sd(g) sqrt(2 tau_syn / T), SE(mean of V) = sd(V) sqrt(2 tau_syn / T),
relative SE(sd of V) = sqrt(tau_syn / T) / 2 -- each checked at 4.5 SE, plus for the membrane a stated
allowance for the approximations of the analytic values (0.1 mV for the mean, 5 % for the sd; the
linearisation's own error is second order in sd(g)/g_tot = 1.5 %).
"""

import numpy as np
import pytest

from cortexsim.backends import installed_backends, load_backend
from cortexsim.backends.noise import add_poisson_background
from cortexsim.models.lif_translation import free_membrane
from cortexsim.parameters import DEFAULT_NEURON, DEFAULT_NOISE

pytestmark = pytest.mark.slow

N_NEURONS = 10
DURATION_MS = 2000.0
SETTLE_MS = 50.0
E_LEAK = np.linspace(-60.0, -45.0, N_NEURONS)
BACKENDS = ["nest", "brian2", "brian2_standalone", "brainscales"]
#: Extra ``setup()`` options per backend: the emulated chip as an ideal chip (see module docstring).
SETUP_OPTIONS = {"brainscales": {"fixed_pattern_noise": False, "quantize_weights": False}}
#: Backends that cannot record synaptic conductances (a hardware chip cannot read them out).
NO_CONDUCTANCE_READOUT = {"brainscales"}


def _analytic_sd_v(mu: np.ndarray) -> np.ndarray:
    neuron, noise = DEFAULT_NEURON, DEFAULT_NOISE
    _, g_tot, tau_eff = free_membrane(neuron, noise, 0.0)
    var = 0.0
    for e_rev, w, nu, tau in ((neuron.e_rev_E, noise.weight_exc, noise.rate_exc, neuron.tau_syn_E),
                              (neuron.e_rev_I, noise.weight_inh, noise.rate_inh, neuron.tau_syn_I)):
        var = var + (e_rev - mu) ** 2 * w**2 * nu * 1e-3 * tau / 2.0
    factor = neuron.tau_syn_E / (neuron.tau_syn_E + tau_eff)
    return np.sqrt(factor * var) / g_tot


@pytest.mark.parametrize("backend", BACKENDS)
def test_noise_input_rate_and_free_membrane(backend):
    if backend not in installed_backends():
        pytest.skip(f"{backend} not installed")
    sim = load_backend(backend)
    if getattr(sim, "add_poisson_background", None) is None:
        pytest.skip(f"{backend} has no noise strategy of its own yet (PyNN's SpikeSourcePoisson fallback)")
    sim.setup(timestep=0.1, seed=7, **SETUP_OPTIONS.get(backend, {}))
    parameters = DEFAULT_NEURON.as_pynn()
    parameters["v_rest"] = E_LEAK
    parameters["v_thresh"] = -20.0  # the HCS membrane stays near -50 mV (sd ~2 mV): never reaches it; -20 mV is within the chip's range
    population = sim.Population(N_NEURONS, sim.IF_cond_exp(**parameters))
    population.initialize(v=E_LEAK)
    conductances = backend not in NO_CONDUCTANCE_READOUT
    population.record(["v", "spikes"] + (["gsyn_exc", "gsyn_inh"] if conductances else []))
    add_poisson_background(sim, population, DEFAULT_NOISE)
    sim.run(DURATION_MS)
    segment = population.get_data().segments[-1]
    sim.end()
    assert sum(len(st) for st in segment.spiketrains) == 0
    signals = {s.name: s for s in segment.analogsignals}
    times = np.asarray(signals["v"].times.rescale("ms"))
    keep = times >= SETTLE_MS
    observed_ms = float(times[keep][-1] - times[keep][0])
    neuron, noise = DEFAULT_NEURON, DEFAULT_NOISE
    checked_rates = (("gsyn_exc", noise.weight_exc, noise.rate_exc, neuron.tau_syn_E),
                     ("gsyn_inh", noise.weight_inh, noise.rate_inh, neuron.tau_syn_I)) if conductances else ()
    for name, w, nu, tau in checked_rates:
        g = np.asarray(signals[name].rescale("uS"))[keep]
        rate_hat = g.mean(axis=0) / (w * tau) * 1e3  # Hz
        sd_g = w * np.sqrt(nu * 1e-3 * tau / 2.0)
        se_rate = sd_g * np.sqrt(2 * tau / observed_ms) / (w * tau) * 1e3
        assert np.all(np.abs(rate_hat - nu) < 4.5 * se_rate), (backend, name, rate_hat, nu, se_rate)
    v = np.asarray(signals["v"].rescale("mV"))[keep]
    mu, _, _ = free_membrane(neuron, noise, E_LEAK)
    sd_v = _analytic_sd_v(mu)
    se_mean = sd_v * np.sqrt(2 * neuron.tau_syn_E / observed_ms)
    assert np.all(np.abs(v.mean(axis=0) - mu) < 4.5 * se_mean + 0.1), (backend, v.mean(axis=0), mu)
    relative_se_sd = np.sqrt(neuron.tau_syn_E / observed_ms) / 2.0
    assert np.all(np.abs(v.std(axis=0) / sd_v - 1.0) < 4.5 * relative_se_sd + 0.05), (backend, v.std(axis=0), sd_v)
