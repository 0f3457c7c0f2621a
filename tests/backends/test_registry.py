"""The backend registry: names, capabilities, lazy imports and clear errors."""

import subprocess
import sys

import numpy as np
import pytest

from cortexsim.backends import registry
from cortexsim.backends.registry import (BackendInfo, backend_info, check_dt, installed_backends,
                                         known_backends, load_backend)


def test_nest_and_brian2_are_known_and_installed():
    assert {"nest", "brian2"} <= set(known_backends())
    assert {"nest", "brian2"} <= set(installed_backends())


def test_load_backend_returns_a_pynn_module_with_seeded_setup():
    sim = load_backend("nest")
    for name in ("setup", "run", "Population", "Projection", "IF_cond_exp", "TsodyksMarkramSynapse"):
        assert hasattr(sim, name)
    assert "seed" in sim.setup.__code__.co_varnames


def test_unknown_backend_lists_known_and_installed():
    with pytest.raises(ValueError) as info:
        load_backend("neuron-x")
    message = str(info.value)
    assert "neuron-x" in message and "known backends: " in message and "installed: " in message
    assert "nest" in message and "brian2" in message


def test_uninstalled_backend_names_the_missing_package(monkeypatch):
    fake = BackendInfo(name="fake", module="fake_pynn_module", requires=("no_such_package_xyz",),
                       description="test double")
    monkeypatch.setitem(registry.BACKENDS, "fake", fake)
    assert "fake" in known_backends() and "fake" not in installed_backends()
    with pytest.raises(ValueError, match="not installed .*no_such_package_xyz"):
        load_backend("fake")


def test_importing_the_registry_does_not_import_simulators():
    code = ("import sys, cortexsim.backends, cortexsim.cli; "
            "print(any(m in sys.modules for m in ('nest', 'brian2', 'pyNN.nest', 'pyNN.brian2')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("dt", [0.0, -0.1, float("nan"), 5.0])
def test_dt_outside_the_allowed_range_is_rejected(dt):
    with pytest.raises(ValueError, match=r"dt must lie in \["):
        check_dt("nest", dt)


def test_capabilities_are_data():
    info = backend_info("nest")
    assert info.capabilities.seedable and info.capabilities.speedup == 1.0
    assert info.to_dict()["name"] == "nest"


def test_backend_of_module_finds_the_entry_and_poisson_capability():
    from cortexsim.backends.registry import backend_of_module

    for name in ("nest", "brian2_standalone"):
        assert backend_of_module(load_backend(name)).name == name
    assert backend_info("nest").capabilities.poisson_sources
    assert not backend_info("brian2_standalone").capabilities.poisson_sources   # PoissonInput only
    with pytest.raises(ValueError, match="registered backend"):
        backend_of_module(np)
