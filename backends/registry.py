"""One table of simulator backends: names, PyNN modules, capabilities, and lazy loading.

A backend is a PyNN ``sim`` module: PyNN's own NEST and Brian2 modules with the corrections in
:mod:`cortexsim.backends.pynn_nest` and :mod:`cortexsim.backends.pynn_brian2`, or one of this package's
own (the emulated chip). Their ``setup`` takes ``seed``.
Everything that differs between backends is data in :data:`BACKENDS` (capabilities, limits) or a
function of the backend module (``add_poisson_background``, see :mod:`cortexsim.backends.noise`); models never
branch on a backend's name.

Example
-------
>>> from cortexsim.backends import load_backend
>>> sim = load_backend("nest")          # pyNN.nest with cortexsim's corrections
>>> info = backend_info("nest")         # its capabilities
"""

from __future__ import annotations

import importlib
import importlib.util
import numbers
from dataclasses import asdict, dataclass, field
from types import ModuleType

from .chips import DEFAULT_CHIP, ChipSpec, chip_spec

__all__ = ["Capabilities", "BackendInfo", "BACKENDS", "backend_info", "load_backend",
           "known_backends", "installed_backends", "register_backend", "chip_booking", "check_dt",
           "check_backend_seed", "backend_of_module"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do. ``None`` means "no limit".

    Attributes
    ----------
    dt_range_ms : tuple of float
        Smallest and largest allowed integration step (ms).
    weight_bits : int or None
        Weight resolution in bits (None: floating point).
    max_neurons : int or None
        Largest number of neurons in one network.
    max_fan_in : int or None
        Largest number of presynaptic partners per neuron.
    delays_allowed : bool
        Whether synaptic delays above the minimum can be set.
    seedable : bool
        Whether one seed makes a run reproducible spike for spike.
    speedup : float
        Emulation speed-up over biological time (1.0 for software simulators).
    renewing_synapses : bool
        Whether the package can build renewing (Tsodyks-Markram U=1) synapses on it.
    has_chip : bool
        Whether the backend emulates a chip that is booked before a run (``select_chip``: which chip,
        its identity, its calibration).
    seed_range : tuple of int
        Smallest and largest run seed the backend accepts. Protocols also use ``seed + 1`` (the
        calibration's fine sweep), so the upper end is one below the simulator's own limit.
    reference_backend : str or None
        Software backend whose runs serve as the reference for this one where a protocol compares
        against an idealised run (e.g. Poisson-driven networks beside a chip's noise-free ensemble);
        None: the backend is its own reference.
    dead_time_steps : int
        Integration steps after ``tau_refrac`` before a neuron can fire again: a neuron driven far above
        threshold fires every ``tau_refrac + dead_time_steps * dt`` (measured with IF_cond_exp at
        dt = 0.1 ms: NEST 1, every interval 10.1 ms for tau_refrac 10 ms; the emulated chip (NEST
        underneath) 1; Brian2 0). Protocols that read
        z = 1 for the dead time use it (:mod:`cortexsim.protocols.mixing`); 0 where not measured.
    poisson_sources : bool
        Whether PyNN's ``SpikeSourcePoisson`` can be built and its spikes recorded (False on
        ``brian2_standalone``, whose Poisson background is Brian2's unrecordable ``PoissonInput``);
        protocols that need sample Poisson trains then draw them with numpy from the same parameters.
    """

    dt_range_ms: tuple = (0.001, 1.0)
    weight_bits: int | None = None
    max_neurons: int | None = None
    max_fan_in: int | None = None
    delays_allowed: bool = True
    seedable: bool = True
    speedup: float = 1.0
    renewing_synapses: bool = True
    has_chip: bool = False
    seed_range: tuple = (0, 2**32 - 2)
    reference_backend: str | None = None
    dead_time_steps: int = 0
    poisson_sources: bool = True

    @classmethod
    def from_chip(cls, spec: ChipSpec, **overrides) -> "Capabilities":
        """The capabilities of an emulated chip, derived from its :class:`~cortexsim.backends.chips.ChipSpec`.

        Examples
        --------
        >>> from cortexsim.backends.chips import chip_spec
        >>> Capabilities.from_chip(chip_spec("bss2")).max_fan_in
        256
        """
        values = dict(weight_bits=spec.weight_bits, max_neurons=spec.n_neurons, max_fan_in=spec.max_fan_in,
                      delays_allowed=spec.delays_allowed, speedup=spec.speedup,
                      renewing_synapses="TsodyksMarkramSynapse" in spec.synapse_types)
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class BackendInfo:
    """A registered backend: its name, the PyNN module implementing it, what it needs installed."""

    name: str
    module: str
    requires: tuple
    description: str
    capabilities: Capabilities = field(default_factory=Capabilities)
    #: PyNN's own module of the simulator underneath (``pyNN.nest``, ``pyNN.brian2``): what the
    #: backend must agree with wherever the README lists no deviation (conformance tests, the
    #: PyNN scenario benchmark's regressions). None if there is none.
    pynn_reference: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


BACKENDS: dict[str, BackendInfo] = {}


def register_backend(info: BackendInfo) -> None:
    """Add (or replace) a backend in the registry."""
    BACKENDS[info.name] = info


register_backend(BackendInfo(
    name="nest",
    module="cortexsim.backends.pynn_nest",
    requires=("nest", "pyNN"),
    description="NEST 3 through pyNN.nest, with a working TsodyksMarkramSynapse (tsodyks2_synapse) "
                "and native Poisson noise without relay neurons",
    # NEST's rng_seed must lie in [1, 2**32 - 1]
    capabilities=Capabilities(dt_range_ms=(0.001, 1.0), seedable=True, seed_range=(1, 2**32 - 2),
                              dead_time_steps=1),
    pynn_reference="pyNN.nest",
))
register_backend(BackendInfo(
    name="brian2",
    module="cortexsim.backends.pynn_brian2",
    requires=("brian2", "pyNN"),
    description="Brian2 runtime mode (generated code) through pyNN.brian2, seeded, exponential-Euler "
                "IF_cond_exp, working TsodyksMarkramSynapse, PoissonInput noise",
    capabilities=Capabilities(dt_range_ms=(0.001, 1.0), seedable=True),
    pynn_reference="pyNN.brian2",
))


register_backend(BackendInfo(
    name="brainscales",
    module="cortexsim.backends.brainscales",
    requires=("nest", "pyNN"),
    description="Emulated BrainScaleS chip on NEST (bss2 default, bss1; capabilities of the default chip): "
                "limits checked at creation, "
                "6-bit row-scaled weights, fixed-pattern noise from the chip seed, calibration, "
                "hardware-time report",
    capabilities=Capabilities.from_chip(chip_spec(DEFAULT_CHIP), dt_range_ms=(0.001, 1.0), seedable=True,
                                           has_chip=True, reference_backend="nest", dead_time_steps=1),
    pynn_reference="pyNN.nest",
))


def known_backends() -> list[str]:
    """Names of all registered backends."""
    return sorted(BACKENDS)


def _is_installed(info: BackendInfo) -> bool:
    return all(importlib.util.find_spec(pkg) is not None for pkg in info.requires)


def installed_backends() -> list[str]:
    """Names of registered backends whose required packages are importable."""
    return [name for name in known_backends() if _is_installed(BACKENDS[name])]


def backend_info(name: str) -> BackendInfo:
    """The registry entry for ``name``; ValueError listing the known backends if unknown."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(known_backends())}; "
                         f"installed: {', '.join(installed_backends()) or 'none'}")
    return BACKENDS[name]


def backend_of_module(sim: ModuleType) -> BackendInfo:
    """The registry entry whose ``module`` is ``sim`` (a module :func:`load_backend` returned).

    Raises
    ------
    ValueError
        If no registered backend has this module.

    Examples
    --------
    >>> backend_of_module(load_backend("nest")).name
    'nest'
    """
    name = getattr(sim, "__name__", None)
    for info in BACKENDS.values():
        if info.module == name:
            return info
    raise ValueError(f"{name!r} is not the module of a registered backend; known backends: "
                     f"{', '.join(known_backends())}")


def load_backend(name: str) -> ModuleType:
    """Import and return the PyNN ``sim`` module of backend ``name`` (imported lazily, on first use).

    Raises
    ------
    ValueError
        If ``name`` is not registered or its packages are not installed; the message lists the
        known and the installed backends.
    """
    info = backend_info(name)
    if not _is_installed(info):
        missing = [pkg for pkg in info.requires if importlib.util.find_spec(pkg) is None]
        raise ValueError(f"backend {name!r} is not installed (missing: {', '.join(missing)}); "
                         f"known backends: {', '.join(known_backends())}; "
                         f"installed: {', '.join(installed_backends()) or 'none'}")
    return importlib.import_module(info.module)


def check_backend_seed(name: str, seed, parameter: str = "seed") -> int:
    """Validate a run seed against the range backend ``name`` accepts (``Capabilities.seed_range``).

    Raises
    ------
    ValueError
        Naming ``parameter``, the backend and the allowed range.

    Examples
    --------
    >>> check_backend_seed("nest", 1)
    1
    """
    low, high = backend_info(name).capabilities.seed_range
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not low <= int(seed) <= high:
        raise ValueError(f"{parameter} must be an integer in [{low}, {high}] on backend {name!r}, got {seed!r}")
    return int(seed)


def chip_booking(sim: ModuleType) -> dict | None:
    """The chip a chip backend runs on (``sim.selected_chip()`` as plain data), None for other backends.

    Protocols record it with their results (:func:`cortexsim.results.write_results`), so a result says
    which emulated chip (chip, chip seed, calibration) produced it, through the CLI and the Python API.
    """
    selected = getattr(sim, "selected_chip", None)
    return None if selected is None else asdict(selected())


def check_dt(name: str, dt: float) -> float:
    """Validate an integration step ``dt`` (ms) against the backend's allowed range."""
    low, high = backend_info(name).capabilities.dt_range_ms
    if not (dt == dt) or dt <= 0 or not low <= dt <= high:
        raise ValueError(f"dt must lie in [{low}, {high}] ms on backend {name!r}, got {dt}")
    return float(dt)


register_backend(BackendInfo(
    name="brian2_standalone",
    module="cortexsim.backends.brian2_standalone",
    requires=("brian2", "pyNN"),
    description="Brian2 C++ standalone mode for PyNN-built networks (brian2 cell types and noise): compiled "
                "once per network structure, weights/biases/states passed as run arguments, seeded",
    capabilities=Capabilities(dt_range_ms=(0.001, 1.0), seedable=True, poisson_sources=False),
    pynn_reference="pyNN.brian2",
))
