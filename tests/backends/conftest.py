"""Conformance fixtures: PyNN-style scenarios written once, run on every installed backend.

Modelled on PyNN's ``test/system/scenarios/fixtures.py``: a scenario is a function of ``sim``; the
:func:`backend` fixture runs it on every backend of :func:`installed_backends` (not a fixed pair),
and :attr:`Backend.reference` gives PyNN's own module of the same simulator (the registry's
``pynn_reference``; backends registered without one are not standard PyNN backends and are left
out) so a scenario can compare the two. The emulated chip runs as an *ideal* chip
(no fixed-pattern noise, unquantised weights): what is left are its documented limits.

A scenario a backend cannot run is listed in :data:`UNSUPPORTED` with the reason; the test then
asserts that the backend refuses it with its own clear error (``NotImplementedError`` for
``brian2_standalone``'s ``StandaloneUnsupported``, ``ValueError`` for the chip's
``ChipConstraintError``), so the table cannot go stale silently.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

import pytest

from cortexsim.backends.registry import backend_info, installed_backends, load_backend

#: setup() options per backend for conformance runs.
SETUP_OPTIONS = {"brainscales": {"chip": "bss2", "fixed_pattern_noise": False, "quantize_weights": False}}

#: (scenario, backend) -> why the backend cannot run it (it must raise its "unsupported" error).
UNSUPPORTED = {
    ("renewing_synapse", "brainscales"): "synaptic conductances cannot be read out on the chip",
    ("delayed_transmission", "brainscales"): "bss2 has no configurable synaptic delays",
    ("poisson_sources_seeded", "brian2_standalone"): "SpikeSourcePoisson is not compiled by brian2_standalone",
}

#: (scenario, backend) -> a measured deviation from PyNN's own module that is not yet fixed. The test is
#: marked strict-xfail: it must still fail, so a fix (or a change of the deviation) shows up at once.
KNOWN_DEVIATIONS: dict = {}

#: The error class each backend raises for what it does not support.
UNSUPPORTED_ERRORS = {"brian2_standalone": NotImplementedError, "brainscales": ValueError}


@dataclass
class Backend:
    """A backend under test: its name, its ``sim`` module, and ``setup`` with its conformance options."""

    name: str
    sim: ModuleType

    def setup(self, **options):
        return self.sim.setup(**{**SETUP_OPTIONS.get(self.name, {}), **options})

    @property
    def reference(self) -> ModuleType:
        """PyNN's own module of the simulator underneath."""
        return importlib.import_module(backend_info(self.name).pynn_reference)

    def check_supported(self, scenario: str):
        """A context manager: nothing if supported; else asserts the backend's clear refusal."""
        reason = UNSUPPORTED.get((scenario, self.name))
        if reason is None:
            return _NoCheck()
        return pytest.raises(UNSUPPORTED_ERRORS[self.name])

    def known_deviation(self, scenario: str) -> str | None:
        """The reason of a measured, not yet fixed deviation from PyNN's module (:data:`KNOWN_DEVIATIONS`)."""
        return KNOWN_DEVIATIONS.get((scenario, self.name))

    def supports(self, scenario: str) -> bool:
        return (scenario, self.name) not in UNSUPPORTED


class _NoCheck:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def conformance_backends() -> list[str]:
    """Installed backends that implement PyNN's standard API (those with a ``pynn_reference``; a
    hardware dialect registered without one has its own tests)."""
    return [name for name in installed_backends() if backend_info(name).pynn_reference]


@pytest.fixture(params=conformance_backends())
def backend(request) -> Backend:
    """Every installed backend in turn (end() is called afterwards even if the scenario failed).

    Brian2's runtime code (of both Brian2 backends and of pyNN.brian2, the reference) is generated
    for numpy here: Cython compiles a new extension for every new object name, which costs
    minutes per test on a busy 2-core machine. The target changes how Brian2 executes the same
    equations, not what a script means; the Cython route runs in the other Brian2 tests.
    """
    sim = load_backend(request.param)
    target = None
    if "brian2" in request.param:
        import brian2

        target, brian2.prefs.codegen.target = brian2.prefs.codegen.target, "numpy"
    yield Backend(request.param, sim)
    try:
        sim.end()
    except Exception:
        pass
    if target is not None:
        brian2.prefs.codegen.target = target
