"""How the PyNN-built Synapses of a network are compiled: specialised equations, source order, fusion.

PyNN creates one Brian2 ``Synapses`` object per projection, ordered by target (it connects one
postsynaptic cell at a time), with every parameter per synapse. The compiled project may use a
cheaper but exactly equivalent form, chosen per run from the runtime objects' current values:

``general``
    PyNN's own equations (any synapse type).
``static``
    PyNN's ``StaticSynapse`` (``g += weight``).
``renewing``
    cortexsim's ``TsodyksMarkramSynapse`` with U = 1 and no facilitation (tau_facil = 0) everywhere
    and one tau_rec per projection, i.e. a renewing synapse (references §1). With U = 1 every spike
    uses all resources (``u = 1``, ``x -> 0``), so the resources available at the next spike are
    ``x = 1 - exp(-(t - t_last) / tau_rec)``: per synapse only ``weight`` and ``t_last`` remain,
    ``tau_rec`` is one shared value, and each event costs one ``exp`` (the general form carries U,
    tau_rec, tau_facil, u, x per synapse and evaluates two ``exp``). Eligible only while the state
    is one the implicit ``x`` reproduces: ``x = 0`` (after a spike) or ``x = 1`` with the last spike
    so long ago that ``exp(-(t - t_last) / tau_rec)`` is 0 in double precision (the initial state).
    The ``exp`` is evaluated through :data:`REUSED_EXP` (``cortexsim_exp_reused``): it returns the
    previous result when its argument equals the previous argument. All synapses of one source
    neuron receive the same spikes, so they hold the same ``t_last`` and, delivered one after the
    other (source order), ask for the same ``exp``: it is computed once per spike instead of once
    per synapse, with bit-identical values (same argument, same ``exp``).
    After the run, synapses that transmitted get ``x = 0``, ``u = 1``, exactly as the general form.

In every form the compiled synapses are stored in source order (so the synapses of a spiking neuron
are contiguous in memory) and a delay that is the same for all synapses of a projection is compiled
as one value. Values are permuted between PyNN's order and the compiled order on the way in and out.

Fusion: an excitatory and an inhibitory projection of the same form between the same populations,
over the same (pre, post) pairs, with the same delays and (renewing) the same tau_rec and the same
state, are compiled as ONE Synapses object with a weight per receptor (``weight_ge``, ``weight_gi``),
which is what a builder creates when a weight may change sign. Each spike then costs one event and
one ``exp`` instead of two, with the same conductance increments (the two renewing synapses of a pair
see the same presynaptic spikes, hence carry the same state).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Carried", "SynapseUnit", "plan_synapses", "FORMS", "REUSED_EXP", "reused_exp_function"]

FORMS = ("general", "static", "renewing")
#: Whether specialised forms and fusion are used (False: PyNN's equations, one object per projection,
#: still in source order); for comparisons and as an escape hatch.
SPECIALISE = True
#: C++ of the renewing form's exp: the previous result for an argument equal to the previous one
#: (bit-identical to exp; exp(0) = 1 exactly is the initial entry). Single-threaded projects only.
REUSED_EXP_CPP = """
static inline double cortexsim_exp_reused(const double x)
{
    static double last_x = 0.0, last_y = 1.0;
    if (x != last_x) {
        last_x = x;
        last_y = exp(x);
    }
    return last_y;
}
"""
#: Name of :data:`REUSED_EXP_CPP` in equations.
REUSED_EXP = "cortexsim_exp_reused"
#: (t - t_last) / tau_rec beyond which exp(-(t - t_last) / tau_rec) is exactly 0 in double precision.
_EXP_UNDERFLOW = 746.0


def reused_exp_function():
    """The Brian2 ``Function`` :data:`REUSED_EXP` (C++ only; numpy's exp as its Python form)."""
    from brian2.core.functions import Function

    function = Function(np.exp, arg_units=[1], return_unit=1, stateless=True)
    function.implementations.add_implementation("cpp", REUSED_EXP_CPP, name=REUSED_EXP)
    return function


def _hash(values) -> str:
    import hashlib

    array = np.ascontiguousarray(np.asarray(values))
    return hashlib.sha256(array.tobytes() + str(array.dtype).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Carried:
    """One runtime variable carried into (and possibly out of) a compiled variable."""

    member: int
    runtime: str
    compiled: str
    shared: bool = False
    read_back: bool = False
    pass_in: bool = True


@dataclass
class _Member:
    """One runtime Synapses object and its permutation into the compiled (source) order."""

    obj: object
    target_var: str
    order: np.ndarray  # runtime index of the k-th compiled synapse


@dataclass
class SynapseUnit:
    """One compiled Synapses object: its equations, connectivity and the runtime values it carries.

    ``carry`` lists :class:`Carried` values: the value of ``runtime`` of member ``member`` (permuted
    into compiled order; only its first value if ``shared``) is passed as ``compiled`` (if ``pass_in``)
    and, if ``read_back``, copied back into the runtime object after the run.
    """

    form: str
    members: list
    source: object
    target: object
    model: str
    on_pre: str
    on_post: str | None
    i: np.ndarray
    j: np.ndarray
    delay: float | None  # one delay (s) for all synapses, or None: per synapse (``delays``)
    delays: np.ndarray | None
    carry: list = field(default_factory=list)

    @property
    def n_synapses(self) -> int:
        return int(self.i.size)

    def signature_items(self) -> dict:
        """What ends up in generated code (for the project signature)."""
        return {"form": self.form, "model": self.model, "on_pre": self.on_pre, "on_post": self.on_post,
                "n_synapses": self.n_synapses, **self._index_hashes(),
                "delay": self.delay if self.delay is not None else _hash(self.delays),
                "targets": [m.target_var for m in self.members]}

    def _index_hashes(self) -> dict:
        cache = getattr(self.members[0].obj, "_cortexsim_source_order", None)
        if cache is not None and cache[2] is self.i and cache[3] is self.j:  # computed with the order
            return {"i_hash": cache[4], "j_hash": cache[5]}
        return {"i_hash": _hash(self.i), "j_hash": _hash(self.j)}

    def state_names(self) -> list[str]:
        """Compiled variables whose values are passed in or read back (each once)."""
        return list(dict.fromkeys(c.compiled for c in self.carry))

    def values(self, carried: Carried) -> np.ndarray:
        """Value of ``carried`` in compiled order."""
        m = self.members[carried.member]
        values = np.asarray(m.obj.variables[carried.runtime].get_value())
        return values[:1].copy() if carried.shared else np.take(values, m.order)  # (take: faster than [order])

    def read_back(self, carried: Carried, values: np.ndarray) -> None:
        """Store compiled-order ``values`` of ``carried`` in the runtime object (if it is read back)."""
        if not carried.read_back or carried.shared:
            return
        m = self.members[carried.member]
        _assign(m.obj.variables[carried.runtime], m.order, values)

    def after_run(self, t_start_s: float) -> None:
        """Form-specific completion of the runtime state (renewing: x and u of synapses that transmitted)."""
        if self.form != "renewing":
            return
        for m in self.members:
            variables = m.obj.variables
            fired = np.asarray(variables["t_last_tm"].get_value()) >= t_start_s
            if fired.any():
                for name, value in (("x_tm", 0.0), ("u_tm", 1.0)):
                    _assign(variables[name], fired, value)


def _assign(variable, where, values) -> None:
    """``variable[where] = values`` for a Brian2 runtime variable: in place in the array the device
    holds (what ``set_value`` writes into), else through a copy and ``set_value``."""
    array = variable.get_value()
    if isinstance(array, np.ndarray) and array.flags.writeable:
        array[where] = values
        if np.may_share_memory(array, variable.get_value()):
            return
    current = np.array(variable.get_value())
    current[where] = values
    variable.set_value(current)


def _order(obj) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Permutation of a Synapses object into (source, target) order and the ordered i, j (cached)."""
    n = len(obj)
    cache = getattr(obj, "_cortexsim_source_order", None)
    if cache is None or cache[0] != n:
        i, j = np.asarray(obj.i[:]), np.asarray(obj.j[:])
        order = np.lexsort((j, i)) if n else np.zeros(0, dtype=np.int64)
        i, j = i[order].astype(np.int32), j[order].astype(np.int32)
        cache = (n, order, i, j, _hash(i), _hash(j))  # hashes for the project signature
        obj._cortexsim_source_order = cache
    return cache[1], cache[2], cache[3]


def _homogeneous(values) -> bool:
    values = np.asarray(values)
    return values.size == 0 or bool(np.all(values == values.flat[0]))


def _renewing_eligible(obj, t_start_s: float) -> bool:
    """U = 1, no facilitation, one tau_rec > 0, and a state the implicit resource variable reproduces."""
    v = {name: np.asarray(obj.variables[name].get_value()) for name in
         ("U", "tau_facil", "tau_rec", "x_tm", "t_last_tm")}
    if v["U"].size == 0:
        return False
    if not (np.all(v["U"] == 1.0) and np.all(v["tau_facil"] <= 0.0) and _homogeneous(v["tau_rec"])
            and v["tau_rec"].flat[0] > 0):
        return False
    gap = (t_start_s - v["t_last_tm"]) / v["tau_rec"].flat[0]
    return bool(np.all((v["x_tm"] == 0.0) | ((v["x_tm"] == 1.0) & (gap > _EXP_UNDERFLOW))))


def _form(obj, t_start_s: float) -> str:
    kind = obj._cortexsim_spec.get("synapse_form")
    if kind == "static":
        return "static"
    if kind == "tsodyks_markram" and _renewing_eligible(obj, t_start_s):
        return "renewing"
    return "general"


def _delays(obj, order) -> tuple[float | None, np.ndarray | None]:
    delays = np.asarray(obj.pre.variables["delay"].get_value(), dtype=float)
    if delays.size != len(obj):  # one delay for the whole pathway
        return float(delays[0]) if delays.size else 0.0, None
    if delays.size and _homogeneous(delays):  # (checked before permuting: same answer, no copy)
        return float(delays[0]), None
    return None, delays[order]


def _units(obj) -> str:
    return obj._cortexsim_spec["weight_units"]


def _single(obj, form: str, t_start_s: float) -> SynapseUnit:
    spec = obj._cortexsim_spec
    order, i, j = _order(obj)
    delay, delays = _delays(obj, order)
    member = _Member(obj, spec["target_var"], order)
    if form == "renewing":
        var = spec["target_var"]
        model = f"weight : {_units(obj)}\nt_last_tm : second\ntau_rec : second (shared)"
        on_pre = f"{var} += weight * (1 - {REUSED_EXP}((t_last_tm - t) / tau_rec))\nt_last_tm = t"
        carry = [Carried(0, "weight", "weight"), Carried(0, "t_last_tm", "t_last_tm", read_back=True),
                 Carried(0, "tau_rec", "tau_rec", shared=True)]
        unit = SynapseUnit(form, [member], obj.source, obj.target, model, on_pre, None, i, j, delay, delays, carry)
    else:
        # a static synapse has only its weight, which a run does not change; the general form may
        # change anything
        names = ["weight"] if form == "static" else [n for n in spec["state"] if n != "delay"]
        carry = [Carried(0, n, n, read_back=form == "general") for n in names]
        unit = SynapseUnit(form, [member], obj.source, obj.target, spec["model"], spec["on_pre"], spec["on_post"],
                           i, j, delay, delays, carry)
    return unit


def _fusable(a: SynapseUnit, b: SynapseUnit) -> bool:
    if a.form not in ("static", "renewing") or a.form != b.form:
        return False
    if a.source is not b.source or a.target is not b.target:
        return False
    if a.members[0].target_var == b.members[0].target_var or a.n_synapses != b.n_synapses:
        return False
    if not (np.array_equal(a.i, b.i) and np.array_equal(a.j, b.j)):
        return False
    if a.delay != b.delay or (a.delay is None and not np.array_equal(a.delays, b.delays)):
        return False
    if a.form == "renewing":
        tau = [np.asarray(u.members[0].obj.variables["tau_rec"].get_value()).flat[0] for u in (a, b)]
        t_last = [u.values(Carried(0, "t_last_tm", "t_last_tm")) for u in (a, b)]
        return tau[0] == tau[1] and np.array_equal(t_last[0], t_last[1])
    return True


def _fuse(a: SynapseUnit, b: SynapseUnit) -> SynapseUnit:
    """One compiled Synapses object for two same-form units over the same pairs (one weight per receptor)."""
    members = [a.members[0], b.members[0]]
    names = [f"weight_{m.target_var}" for m in members]
    units = _units(a.members[0].obj)
    if a.form == "renewing":
        model = (f"{names[0]} : {units}\n{names[1]} : {units}\nt_last_tm : second\ntau_rec : second (shared)")
        on_pre = (f"x_release = 1 - {REUSED_EXP}((t_last_tm - t) / tau_rec)\n"
                  + "".join(f"{m.target_var} += {n} * x_release\n" for m, n in zip(members, names))
                  + "t_last_tm = t")
        # both members end with the same t_last: the compiled value is written back to both
        carry = [Carried(0, "weight", names[0]), Carried(1, "weight", names[1]),
                 Carried(0, "t_last_tm", "t_last_tm", read_back=True),
                 Carried(1, "t_last_tm", "t_last_tm", read_back=True, pass_in=False),
                 Carried(0, "tau_rec", "tau_rec", shared=True)]
    else:
        model = f"{names[0]} : {units}\n{names[1]} : {units}"
        on_pre = "\n".join(f"{m.target_var} += {n}" for m, n in zip(members, names))
        carry = [Carried(0, "weight", names[0]), Carried(1, "weight", names[1])]
    return SynapseUnit(a.form, members, a.source, a.target, model, on_pre, None, a.i, a.j, a.delay, a.delays, carry)


def plan_synapses(synapses: list, t_start_s: float) -> list[SynapseUnit]:
    """Compiled units for the runtime Synapses objects (in creation order), fusing exc/inh pairs."""
    if not SPECIALISE:
        return [_single(obj, "general", t_start_s) for obj in synapses]
    units = [_single(obj, _form(obj, t_start_s), t_start_s) for obj in synapses]
    planned, used = [], set()
    for k, unit in enumerate(units):
        if k in used:
            continue
        partner = next((m for m in range(k + 1, len(units)) if m not in used and _fusable(unit, units[m])), None)
        if partner is None:
            planned.append(unit)
        else:
            used.add(partner)
            planned.append(_fuse(unit, units[partner]))
    return planned
