"""Synapse types of the BrainScaleS-2 dialect.

Weights are integers with the sign of the receptor (as in BrainScaleS-2's own package): 0 .. 63 per
hardware synapse, magnitudes above 63 are realised by several synapses (rows) of one connection,
which all count against the neuron's fan-in. Positive for excitatory receptors and for
conductance-based neurons, negative for the inhibitory receptor of current-based neurons. Delays
must be 0 (the chip has no programmable delays).
"""

from __future__ import annotations

from pyNN.standardmodels import build_translations
from pyNN.standardmodels import synapses as _pynn_synapses

from ..plasticity_rules import PlasticityRule, PlasticityRuleHandle, Timer

__all__ = ["StaticSynapse", "PlasticSynapse", "StaticRecordingSynapse"]


class StaticSynapse(_pynn_synapses.StaticSynapse):
    """Synapse with a fixed integer weight (see the module docstring) and delay 0."""

    translations = build_translations(("weight", "weight"), ("delay", "delay"))

    def _get_minimum_delay(self):
        return 0.0


class PlasticSynapse(StaticSynapse, PlasticityRuleHandle):
    """Synapse whose weight a :class:`~..plasticity_rules.PlasticityRule` may change at its timer events."""

    def __init__(self, weight=0, delay=0.0, plasticity_rule: PlasticityRule | None = None):
        StaticSynapse.__init__(self, weight=weight, delay=delay)
        PlasticityRuleHandle.__init__(self, plasticity_rule=plasticity_rule)


class StaticRecordingSynapse(StaticSynapse, PlasticityRuleHandle):
    """Static synapse whose observables are recorded at the events of ``timer``.

    Parameters
    ----------
    timer : Timer
        When to record (hardware ms).
    weight : int
        Integer weight (see the module docstring).
    observables : set of str
        Subset of :data:`POSSIBLE_OBSERVABLES`: ``"weights"`` (per connection, the weights of its
        hardware synapses), ``"correlation_causal"`` / ``"correlation_acausal"`` (per connection, the
        baseline-subtracted CADC read of its correlation sensor, integer LSB; all sensors of the
        projection are reset after each event's reads, see
        :mod:`cortexsim.backends.correlation`). Correlation needs one hardware synapse per
        connection (``|weight| <= 63``).
    """

    POSSIBLE_OBSERVABLES = ["weights", "correlation_causal", "correlation_acausal"]

    class RecordingRule(PlasticityRule):
        """A rule that changes nothing and records the requested observables."""

        def __init__(self, timer: Timer, observables: set):
            super().__init__(timer=timer, observables=set(observables))

        def execute(self, context) -> None:
            from ..plasticity_rules import synapses_per_connection
            wanted = set(self.observables)
            for k, projection in enumerate(context.projections):
                if "weights" in wanted:
                    context.record("weights", projection,
                                   [synapses_per_connection(w) for w in context.weights(k)])
                if wanted & {"correlation_causal", "correlation_acausal"}:
                    rows = context.synapses(k)
                    causal, acausal = rows.correlation(reset=True)
                    pre = [c.presynaptic_index for c in projection.connections]
                    post = [c.postsynaptic_index for c in projection.connections]
                    for name, values in (("correlation_causal", causal), ("correlation_acausal", acausal)):
                        if name in wanted:
                            context.record(name, projection, values[pre, post].tolist())

    def __init__(self, timer: Timer, weight, observables: set):
        unknown = set(observables) - set(self.POSSIBLE_OBSERVABLES)
        if unknown:
            raise ValueError(f"unknown observables {sorted(unknown)}; possible: {self.POSSIBLE_OBSERVABLES}")
        StaticSynapse.__init__(self, weight=weight)
        PlasticityRuleHandle.__init__(self, self.RecordingRule(timer, observables))
        self._observables = set(observables)

    @property
    def observables(self) -> set:
        return self._observables

    @observables.setter
    def observables(self, value: set) -> None:
        self._observables = set(value)
        self.plasticity_rule.observables = set(value)

    @property
    def plasticity_rule(self):
        return self._plasticity_rule

    @plasticity_rule.setter
    def plasticity_rule(self, rule):
        raise RuntimeError("the plasticity rule of a StaticRecordingSynapse cannot be replaced")
