"""Short-term depression of the recurrent synapses of a sampling network (the mixing mechanism).

Leng et al. 2018 (Sci. Rep. 8:10651, "Spiking neurons with short-term synaptic plasticity form
superior generative networks") replace the renewing recurrent synapses of a LIF sampler by
Tsodyks-Markram (TM) synapses with a small utilisation ``U`` and a long recovery time ``tau_rec``: the
synapses of neurons that keep firing (the units of the mode the network sits in) run out of resources,
the mode flattens, and the network moves on to another mode, whose synapses have recovered meanwhile.
The paper's abstract states the mechanism; its exact ``U`` / ``tau_rec`` values were not available
here, so the defaults below (:data:`LENG_LIKE_DEPRESSION`) are this package's choice, measured in
``benchmarks/mixing.py``, not the paper's.

TM synapse (tau_facil = 0, as NEST's ``tsodyks2_synapse`` and the package's Brian2 equations implement it):
on a presynaptic spike after a gap ``h``, ``x <- 1 - (1 - x) exp(-h / tau_rec)``, the conductance jumps
by ``w U x``, then ``x <- x (1 - U)``.

Weight correction (analytic, :func:`depression_weight_factor`): the translated weights of a sampling
network (:func:`cortexsim.models.lif_translation.bm_to_lif`) assume renewing synapses. A unit in state
z = 1 fires about once per refractory period ``tau_ref``; a renewing synapse then holds a mean
conductance ``w (tau_syn / tau_ref) (1 - exp(-tau_ref / tau_syn))``, a TM synapse with small ``U`` sums
its PSPs and holds ``w' U x* tau_syn / tau_ref`` where ``x*`` is the steady-state availability under
regular firing at interval ``tau_ref`` (:func:`steady_state_availability`). The factor ``w' / w`` that
equates the two is ``(1 - exp(-tau_ref / tau_syn)) / (U x*)``: a mode held long enough is then as deep
as with renewing synapses, while the synapses of silent units (recovered, ``x = 1``) are stronger by
``1 / x*`` - the asymmetry that drives the switch to the other mode.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from .lif_translation import LIFNetworkParameters

__all__ = ["ShortTermDepression", "LENG_LIKE_DEPRESSION", "steady_state_availability",
           "depression_weight_factor", "corrected_lif", "tm_availability_trace"]


@dataclass(frozen=True)
class ShortTermDepression:
    """Parameters of depressing Tsodyks-Markram recurrent synapses (tau_facil = 0).

    Attributes
    ----------
    U : float
        Utilisation: share of the available resources used per spike, in (0, 1].
    tau_rec_ms : float
        Recovery time constant of the resources (ms), > 0.
    """

    U: float
    tau_rec_ms: float

    def __post_init__(self) -> None:
        if not isinstance(self.U, (int, float, np.floating, np.integer)) or not 0 < self.U <= 1:
            raise ValueError(f"U must lie in (0, 1], got {self.U!r}")
        if not isinstance(self.tau_rec_ms, (int, float, np.floating, np.integer)) or \
                not math.isfinite(self.tau_rec_ms) or self.tau_rec_ms <= 0:
            raise ValueError(f"tau_rec_ms must be a finite time > 0 (ms), got {self.tau_rec_ms!r}")

    def to_dict(self) -> dict:
        return {name: float(value) for name, value in asdict(self).items()}


#: Small U, long tau_rec (Leng et al. 2018's regime; values chosen and measured here, see module docstring).
LENG_LIKE_DEPRESSION = ShortTermDepression(U=0.1, tau_rec_ms=500.0)


def steady_state_availability(depression: ShortTermDepression, interval_ms: float) -> float:
    """Resource availability ``x`` just before a spike, for regular firing every ``interval_ms`` (ms).

    Fixed point of ``x -> 1 - (1 - x (1 - U)) exp(-interval / tau_rec)``:
    ``x* = (1 - e) / (1 - (1 - U) e)`` with ``e = exp(-interval / tau_rec)``.

    Examples
    --------
    >>> round(steady_state_availability(ShortTermDepression(0.05, 500.0), 10.0), 4)
    0.2878
    """
    if not np.isfinite(interval_ms) or interval_ms <= 0:
        raise ValueError(f"interval_ms must be a finite time > 0 (ms), got {interval_ms!r}")
    e = math.exp(-interval_ms / depression.tau_rec_ms)
    return (1.0 - e) / (1.0 - (1.0 - depression.U) * e)


def depression_weight_factor(depression: ShortTermDepression, tau_ref: float, tau_syn: float) -> float:
    """Factor on the translated (renewing-synapse) weights for depressing synapses (see module docstring).

    ``(1 - exp(-tau_ref / tau_syn)) / (U x*)`` with ``x* =`` :func:`steady_state_availability` at the
    interval ``tau_ref``. Times in ms.

    Examples
    --------
    >>> round(depression_weight_factor(ShortTermDepression(0.05, 500.0), 10.0, 10.0), 2)
    43.93
    """
    for name, value in (("tau_ref", tau_ref), ("tau_syn", tau_syn)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite time > 0 (ms), got {value!r}")
    renewing_share = 1.0 - math.exp(-tau_ref / tau_syn)
    return renewing_share / (depression.U * steady_state_availability(depression, tau_ref))


def corrected_lif(lif: LIFNetworkParameters, factor: float) -> LIFNetworkParameters:
    """``lif`` with every recurrent weight multiplied by ``factor`` (> 0); leak potentials unchanged."""
    if not np.isfinite(factor) or factor <= 0:
        raise ValueError(f"factor must be a finite number > 0, got {factor!r}")
    return replace(lif, weights=np.asarray(lif.weights) * float(factor))


def tm_availability_trace(spike_times_ms, depression: ShortTermDepression) -> np.ndarray:
    """Availability ``x`` seen by each spike of a presynaptic train (before its release), starting at 1.

    A numpy twin of the synapse's event-driven update, used to check the simulators' synapses.
    """
    times = np.asarray(spike_times_ms, dtype=float)
    x, last, out = 1.0, None, np.empty(times.size)
    for k, t in enumerate(times):
        if last is not None:
            x = 1.0 - (1.0 - x) * math.exp(-(t - last) / depression.tau_rec_ms)
        out[k] = x
        x *= 1.0 - depression.U
        last = t
    return out
