"""PyNN's NEST backend (``pyNN.nest``) with cortexsim's corrections, as a ``sim`` module.

Everything of ``pyNN.nest`` is re-exported unchanged except:

``TsodyksMarkramSynapse``
    Maps to NEST's ``tsodyks2_synapse`` instead of ``tsodyks_synapse``. Measured with PyNN 0.13 and
    NEST 3.10: ``pyNN.nest.TsodyksMarkramSynapse(U=1, tau_rec=10, tau_facil=0)`` delivers no
    conductance at all, while ``tsodyks2_synapse`` with the same parameters renews the conductance as
    intended (references §7). Parameters and units are PyNN's (weight in uS, times in ms).
``setup``
    Takes ``seed`` (int) as the one seed of a run (NEST's kernel RNG); ``threads`` defaults to 1.
``keep_kernel_status_small``
    Called by ``setup``: keeps NEST's kernel status (read by ``pyNN.nest`` at every run) from growing
    with the number of runs.
``FromListConnector``, ``AllToAllConnector``
    The same connections as PyNN's, made with one NEST call instead of one per target cell where that is
    exactly equivalent (see their ``connect``).
``add_poisson_background``
    Independent Poisson input to every neuron straight from NEST ``poisson_generator`` devices, without
    PyNN's parrot-neuron relays (which double the event load, references §7).
"""

from __future__ import annotations

import builtins
import os
import warnings
from copy import deepcopy

# PyNN 0.13 still calls NEST's deprecated GetStatus/SetStatus and set_verbosity; those warnings
# are about PyNN's internals, not the user's script.
# PyNN's NEST extensions cannot be built against the binary NEST wheel (references §7): nothing of
# cortexsim needs them.
for _message in (r"\s*GetStatus\(\) is deprecated", r"\s*SetStatus\(\) is deprecated",
                 r"\s*Provided for backward compatibility only", r"Cannot find nest-config"):
    warnings.filterwarnings("ignore", message=_message, category=UserWarning)

os.environ.setdefault("PYNEST_QUIET", "1")  # no NEST banner on import (set PYNEST_QUIET=0 to see it)
import nest  # noqa: E402
import numpy as np
import pyNN.nest as _pynn_nest
from pyNN import common as _pynn_common
from pyNN.nest import *  # noqa: F401,F403  (the PyNN API of this backend)
from pyNN.nest.synapses import NESTSynapseMixin as _NESTSynapseMixin
from pyNN.standardmodels import build_translations
from pyNN.standardmodels import synapses as _abstract_synapses

__all__ = [name for name in dir(_pynn_nest) if not name.startswith("_")] + ["add_poisson_background",
                                                                         "keep_kernel_status_small"]


class TsodyksMarkramSynapse(_abstract_synapses.TsodyksMarkramSynapse, _NESTSynapseMixin):
    """Tsodyks-Markram depressing/facilitating synapse, on NEST's ``tsodyks2_synapse``.

    Parameters (PyNN units): weight (uS), delay (ms), U (1), tau_rec (ms), tau_facil (ms).
    With U = 1, tau_rec = tau_syn, tau_facil = 0 it is a "renewing" synapse: a presynaptic burst
    resets the conductance to the weight instead of adding to it.
    """

    translations = build_translations(
        ("weight", "weight", 1000.0),
        ("delay", "delay"),
        ("U", "U"),
        ("tau_rec", "tau_rec"),
        ("tau_facil", "tau_fac"),
    )
    nest_name = "tsodyks2_synapse"
    # Not a subclass of pyNN.nest's TsodyksMarkramSynapse on purpose: PyNN then copies tau_psc into
    # the synapse, a parameter tsodyks2_synapse does not have.

    def _get_nest_synapse_model(self):
        # tsodyks2_synapse starts with u = 0.5 whatever U is, so the first spike would deliver only
        # half the weight for U = 1; start every synapse fully recovered (u = U, x = 1) instead.
        name = super()._get_nest_synapse_model()
        utilisation = self.native_parameters["U"]
        if utilisation.is_homogeneous:
            utilisation.shape = (1,)
            nest.SetDefaults(name, {"u": float(utilisation.evaluate(simplify=True)), "x": 1.0})
        return name


class Projection(_pynn_nest.Projection):
    __doc__ = _pynn_nest.Projection.__doc__

    @property
    def nest_connections(self):
        """This projection's connections, read from NEST on every use.

        PyNN caches them behind one global "stale" flag that the first projection to refresh clears,
        so another projection can keep a SynapseCollection from before NEST re-sorted its connections
        (after new connections and a Simulate) and read or write the wrong synapses (seen: weights
        of another projection returned by ``get``).
        """
        if not self._sources:
            return []
        return nest.GetConnections(nest.NodeCollection(sorted(self._sources)),
                                   synapse_model=self.nest_synapse_model,
                                   synapse_label=self.nest_synapse_label)

    def _value_list_to_array(self, attributes):
        """PyNN reads every weight from NEST here; only lists need that (to know which entries exist)."""
        if any(isinstance(v, list) or (isinstance(v, np.ndarray) and v.ndim == 1) for v in attributes.values()):
            return super()._value_list_to_array(attributes)
        return attributes

    def _set_attributes(self, parameter_space):
        """Set weights/delays of all connections with one NEST call (vectorised).

        PyNN 0.13 sets them post-synaptic cell by post-synaptic cell and maps every connection's
        source through per-ID attribute look-ups, which costs ~0.3 s per 100-connection projection
        (measured): too slow for training loops that set weights every iteration. Other
        parameters, and MPI runs, take PyNN's own path.
        """
        names = builtins.set(parameter_space.keys())  # `set` is PyNN's procedural set here
        if not names or not names <= {"weight", "delay"} or num_processes() > 1:
            return super()._set_attributes(parameter_space)
        connections = self.nest_connections
        if len(connections) == 0:
            return None
        parameter_space.evaluate(mask=(slice(None), self.post._mask_local))
        ends = connections.get(("source", "target"))
        sources = np.atleast_1d(np.asarray(ends["source"], dtype=int))
        targets = np.atleast_1d(np.asarray(ends["target"], dtype=int))
        pre_index = _index_of(np.asarray(self.pre.all_cells, dtype=int), sources)
        post_index = _index_of(np.asarray(self.post.all_cells, dtype=int), targets)
        update = {}
        for name in names:
            value = np.asarray(parameter_space[name], dtype=float)
            value = value[pre_index, post_index] if value.ndim == 2 else np.broadcast_to(value, sources.shape)
            if name == "weight" and self.receptor_type == "inhibitory" and self.post.conductance_based:
                value = -value  # NEST's conductance-based inhibitory weights are negative
            update[name] = np.ascontiguousarray(value, dtype=float).tolist()
        # A list of per-connection dicts: NEST's SynapseCollection.set then skips two kernel-status
        # queries that a dict of lists costs (several ms each, growing with simulated time).
        connections.set([dict(zip(update, values)) for values in zip(*update.values())])
        return None


#: NEST synapse models (base names of PyNN's ``*_lbl`` copies) for which every parameter PyNN passes
#: to NEST is a per-connection property: one ``nest.Connect`` with all of them in the synapse
#: specification then creates what PyNN's per-cell ``Connect`` + ``SetStatus`` creates. Models with
#: common (per-model) properties, ``tsodyks_synapse`` (PyNN copies ``tau_psc`` per target) and native
#: synapse types take PyNN's path.
ONE_CALL_SYNAPSE_MODELS = frozenset({"static_synapse", "tsodyks2_synapse", "stdp_synapse"})


def one_call_fallback_reason(connector, projection) -> str | None:
    """Why ``AllToAllConnector`` must take PyNN's own per-cell path for ``projection`` (None: it need not).

    The one-call path (:meth:`AllToAllConnector.connect`) is used only when all of these hold, so
    that it gives the same connections, NEST weights, delays, receptor ports and synapse parameters
    as PyNN 0.13's ``_convergent_connect``:

    * pre and post are Populations or PopulationViews (no Assembly: mixed cell types);
    * the NEST synapse model is one of :data:`ONE_CALL_SYNAPSE_MODELS`, with PyNN's own weight and
      delay variables;
    * every synapse parameter is one value for all connections (no arrays, functions, random
      distributions: PyNN evaluates those per cell or with NEST's RNGs);
    * no ``location_selector`` and no ``callback`` on the connector, one MPI process, and at least
      two cells to pair (PyNN checks weights only when it creates a connection).

    Everything else PyNN's path does is repeated by the one-call path: the weight checks of
    ``safe`` connectors, the per-cell-type ``receptor_scale`` (Izhikevich, IF_curr_delta: weights
    in mV), negative conductances and ``Wmax`` for inhibitory conductance-based STDP, and the
    receptor port of cell types with named receptors (composed ``PointNeuron``, native types such as
    ``ht_neuron``).
    """
    for side in ("pre", "post"):
        if isinstance(getattr(projection, side), _pynn_common.Assembly):
            return f"{side} is an Assembly"
    model = str(projection.nest_synapse_model)
    base_model = model[:-len("_lbl")] if model.endswith("_lbl") else model
    if base_model not in ONE_CALL_SYNAPSE_MODELS:
        return f"synapse model {base_model} is not one of {sorted(ONE_CALL_SYNAPSE_MODELS)}"
    synapse = projection.synapse_type
    for attribute, default in (("weight_variable", "weight"), ("delay_variable", "delay")):
        if getattr(synapse, attribute, None) not in (None, default):
            return f"the synapse type routes {default} to {getattr(synapse, attribute)}"
    parameters = synapse.native_parameters
    heterogeneous = [name for name in parameters.keys() if not parameters[name].is_homogeneous]
    if heterogeneous:
        return f"synapse parameters {heterogeneous} differ between connections"
    if getattr(connector, "location_selector", None) is not None:
        return "the connector has a location_selector"
    if getattr(connector, "callback", None) is not None:
        return "the connector has a progress callback"
    if num_processes() > 1:
        return "more than one MPI process"
    if projection.pre.size * projection.post.size < 2:
        return "fewer than two cell pairs"
    return None


class AllToAllConnector(_pynn_nest.AllToAllConnector):
    __doc__ = _pynn_nest.AllToAllConnector.__doc__

    def connect(self, projection):
        """One ``nest.Connect(..., "all_to_all")`` where that equals PyNN's path, else PyNN's path.

        PyNN 0.13 calls ``nest.Connect`` once per post-synaptic cell (~2 ms each). The conditions
        are listed in :func:`one_call_fallback_reason`; with native RNGs PyNN itself connects in
        one call, and that path is kept unchanged.
        """
        if (projection.synapse_type.native_parameters.has_native_rngs
                or one_call_fallback_reason(self, projection) is not None):
            return super().connect(projection)
        return self._connect_in_one_call(projection)

    def _connect_in_one_call(self, projection):
        """What PyNN's ``_convergent_connect`` does for every post-synaptic cell, in one NEST call."""
        post_type = projection.post.celltype
        if self.safe:  # PyNN's connector checks the (native, unsigned) values before connecting
            native_values = self._parameters_from_synapse_type(projection, distance_map=None)
            synapse = projection.synapse_type
            for name, check in getattr(synapse, "parameter_checks", {}).items():
                native_name = synapse.translations[name]["translated_name"]
                if native_name in native_values.keys():
                    check(native_values[native_name].evaluate(simplify=True), projection)
        syn_params = self.synapse_parameters(projection)  # weight already negative for inhibitory cond.
        if (projection.receptor_type == "inhibitory" and projection.post.conductance_based
                and "stdp" in projection.nest_synapse_model and "Wmax" in syn_params):
            syn_params["Wmax"] = -syn_params["Wmax"]  # NEST: Wmax has the sign of the weight
        if hasattr(post_type, "receptor_scale"):
            syn_params["weight"] = syn_params["weight"] * post_type.receptor_scale
        if not post_type.standard_receptor_type:
            syn_params["receptor_type"] = post_type.get_receptor_type(projection.receptor_type)
        for name, value in syn_params.items():
            if isinstance(value, np.generic):
                syn_params[name] = value.item()  # NEST chokes on numpy scalar types
        rule_params = {"allow_autapses": self.allow_self_connections, "allow_multapses": False,
                       "rule": "all_to_all"}
        projection._connect(rule_params, syn_params)


class FromListConnector(_pynn_nest.FromListConnector):
    __doc__ = _pynn_nest.FromListConnector.__doc__

    def connect(self, projection):
        """PyNN's ``FromListConnector.connect`` as ONE ``nest.Connect`` of arrays where that is equivalent.

        PyNN 0.13 loops over the target cells and, for each, copies, updates, translates and evaluates
        the synapse parameters and calls ``nest.Connect`` (measured: most of the time of building a
        794 + 500 RBM). Here the same steps run once on whole arrays: the list sorted by target with the
        same ``np.argsort`` call, the parameter space copied, updated from the columns, translated
        (PyNN's translations of standard synapse types are element-wise) and evaluated; inhibitory
        conductance weights negated as PyNN does; then NEST's array connection (``one_to_one`` on ID
        arrays) with the projection's synapse model and label, local synapse parameters per connection
        and common ones set as PyNN sets them. Used for this backend's projections between whole
        Populations with a standard synapse type (not STDP, not PyNN's own Tsodyks-Markram class, which
        copies ``tau_psc``), standard receptor types, on one MPI process; otherwise PyNN's loop.
        """
        from pyNN import errors
        from pyNN.standardmodels import StandardSynapseType

        synapse = projection.synapse_type
        cells = getattr(projection.post, "celltype", None)
        eligible = (isinstance(projection, Projection) and self.location_selector is None
                    and isinstance(synapse, StandardSynapseType)
                    and not isinstance(synapse, _pynn_nest.TsodyksMarkramSynapse)
                    and "stdp" not in projection.nest_synapse_model
                    and getattr(cells, "standard_receptor_type", False)
                    and not hasattr(cells, "receptor_scale") and num_processes() == 1
                    and not any(hasattr(p, "populations") or hasattr(p, "parent")
                                for p in (projection.pre, projection.post)))
        if not eligible:
            return super().connect(projection)
        names = synapse.get_parameter_names()
        for name in self.column_names:
            if name not in names:
                raise ValueError("%s is not a valid parameter for %s" % (name, type(synapse).__name__))
        if self.conn_list.size == 0:
            return None
        if np.any(self.conn_list[:, 0] >= projection.pre.size):
            raise errors.ConnectionError("source index out of range")
        conn = self.conn_list[np.argsort(self.conn_list[:, 1])]  # PyNN's order (same sort call)
        targets = conn[:, 1].astype(int)
        local = np.arange(projection.post.size)[projection.post._mask_local]
        keep = np.isin(targets, local)  # PyNN connects only existing local cells
        conn, targets = conn[keep], targets[keep]
        if targets.size == 0:
            return None
        parameters = deepcopy(synapse.parameter_space)
        parameters.shape = (targets.size,)
        for column, name in enumerate(self.column_names, 2):
            parameters.update(**{name: conn[:, column]})
        parameters = synapse.translate(parameters)
        parameters.evaluate()
        values = {name: np.broadcast_to(np.asarray(value, dtype=float), targets.shape)
                  for name, value in parameters.items() if name not in ("tau_minus", "dendritic_delay_fraction",
                                                                        "w_min_always_zero_in_NEST")}
        if projection.receptor_type == "inhibitory" and projection.post.conductance_based:
            values["weight"] = -values["weight"]  # NEST: negative weights for inhibitory conductances
        sources = np.asarray(projection.pre.all_cells, dtype=np.int64)[conn[:, 0].astype(int)]
        posts = np.asarray(projection.post.all_cells, dtype=np.int64)[targets]
        base = {"synapse_model": projection.nest_synapse_model, "synapse_label": projection.nest_synapse_label}
        others = {name: value for name, value in values.items() if name not in ("weight", "delay")}
        first = 0
        if projection._common_synapse_property_names is None:
            # PyNN learns which parameters are common from a first connection made with weight and delay
            nest.Connect(sources[:1], posts[:1], "one_to_one", {**base, "weight": values["weight"][:1].copy(),
                                                                "delay": values["delay"][:1].copy()})
            projection._sources.add(int(sources[0]))
            projection._identify_common_synapse_properties()
            connection = nest.GetConnections(source=nest.NodeCollection([int(sources[0])]),
                                             target=nest.NodeCollection([int(posts[0])]),
                                             synapse_model=projection.nest_synapse_model,
                                             synapse_label=projection.nest_synapse_label)
            local_first = {name: float(value[0]) for name, value in others.items()
                           if name not in projection._common_synapse_property_names}
            if local_first:
                connection.set(local_first)
            first = 1
        common = projection._common_synapse_property_names
        for name, value in others.items():
            if name in common:
                projection._set_common_synapse_property(name, value)
        if sources.size > first:
            spec = {**base, "weight": np.ascontiguousarray(values["weight"][first:]),
                    "delay": np.ascontiguousarray(values["delay"][first:])}
            spec.update({name: np.ascontiguousarray(value[first:]) for name, value in others.items()
                         if name not in common})
            nest.Connect(sources[first:], posts[first:], "one_to_one", spec)
        projection._sources.update(np.unique(sources).tolist())
        projection._connections = None
        projection._simulator.state.stale_connection_cache = True
        return None


def _index_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions of node IDs ``wanted`` in the ID array ``ids``."""
    order = np.argsort(ids)
    return order[np.searchsorted(ids, wanted, sorter=order)]


def setup(timestep: float = 0.1, min_delay: float | str = "auto", seed: int | None = None,
          threads: int = 1, **extra_params):
    """``pyNN.nest.setup`` with one ``seed`` for the whole run and one thread by default.

    Parameters
    ----------
    timestep : float
        Integration and recording step (ms).
    min_delay : float or "auto"
        Minimum synaptic delay (ms).
    seed : int, optional
        Seed of NEST's kernel random number generator; the same seed gives the same spikes.
    threads : int
        Number of NEST threads (>= 1).
    **extra_params
        Passed on to ``pyNN.nest.setup``. ``t_flush`` (ms) is PyNN's opt-in for ``reset()`` on NEST
        (NEST cannot reset; PyNN simulates ``t_flush`` more and hides it). Without it ``reset()``
        raises PyNN's ValueError, also when an earlier ``setup`` in this process passed one
        (``pyNN.nest`` would keep that earlier value).
    """
    if seed is not None:
        extra_params["rng_seed"] = int(seed)
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    extra_params.setdefault("verbosity", "error")
    _POISSON_GENERATORS.clear()  # NEST's kernel is reset: generators of an earlier run are gone
    rank = _pynn_nest.setup(timestep=timestep, min_delay=min_delay, threads=int(threads), **extra_params)
    if "t_flush" not in extra_params:
        _pynn_nest.simulator.state.t_flush = -1  # PyNN's own default: reset() refused
    keep_kernel_status_small()
    return rank


def keep_kernel_status_small() -> None:
    """Stop NEST from shrinking its spike buffers after a ``Simulate`` call with few spikes.

    NEST 3.10 appends every resize of its spike buffers to ``spike_buffer_resize_log``, which is part
    of the kernel status. A script that alternates busy and quiet runs (every training loop) resizes
    the buffers at almost every run, so the log - and with it every ``GetKernelStatus()``, which
    ``pyNN.nest`` calls several times per ``run`` for the current time - grows without bound
    (measured: 26 ms per call after 40 runs of a 64-neuron network, 0.3 ms with this setting). Buffers
    that only grow cost a few kB. Simulation results are unchanged (the buffers only hold spikes in
    transit).
    """
    nest.SetKernelStatus({"spike_buffer_shrink_limit": 0.0})


#: Poisson generators of the current NEST kernel, by rate (Hz): one generator serves every target
#: (NEST draws an independent train per target), so populations share them. Cleared by ``setup``.
_POISSON_GENERATORS: dict = {}


def add_poisson_background(population, rate_exc: float, rate_inh: float,
                           weight_exc: float, weight_inh: float, delay: float | None = None) -> dict:
    """Give every neuron of ``population`` independent excitatory and inhibitory Poisson input.

    One NEST ``poisson_generator`` per rate, connected all-to-all: NEST draws an independent spike
    train for each target, so no relay neurons are needed, and populations with the same rate share
    the generator (fewer nodes to update every step).

    Parameters
    ----------
    population : Population
        Conductance-based neurons (``IF_cond_exp``).
    rate_exc, rate_inh : float
        Rates of the excitatory and inhibitory input trains (Hz, >= 0).
    weight_exc, weight_inh : float
        Conductance jumps (uS, >= 0; the inhibitory one is a magnitude).
    delay : float, optional
        Delay (ms); the simulator's minimum delay by default.

    Returns
    -------
    dict
        The NEST generator node collections, ``{"exc": ..., "inh": ...}``.
    """
    for name, value in (("rate_exc", rate_exc), ("rate_inh", rate_inh),
                        ("weight_exc", weight_exc), ("weight_inh", weight_inh)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    delay = get_min_delay() if delay is None else float(delay)
    targets = population.node_collection
    generators = {}
    # iaf_cond_exp: a positive weight (nS) targets the excitatory receptor, a negative one the inhibitory.
    for label, rate, weight in (("exc", rate_exc, weight_exc), ("inh", rate_inh, -weight_inh)):
        if rate == 0 or weight == 0:
            continue
        generator = _POISSON_GENERATORS.get(float(rate))
        if generator is None:
            generator = nest.Create("poisson_generator", params={"rate": float(rate)})
            _POISSON_GENERATORS[float(rate)] = generator
        nest.Connect(generator, targets, "all_to_all",
                     {"synapse_model": "static_synapse", "weight": 1000.0 * weight, "delay": delay})
        generators[label] = generator
    return generators
