"""Shared test set-up: a fresh calibration cache per test session (data sets shared), no GUI backend for
matplotlib."""

import importlib.util
import os
from pathlib import Path

import matplotlib
import pytest

from cortexsim.models.data_packages import data_dir

matplotlib.use("Agg")


@pytest.fixture(scope="session", autouse=True)
def fresh_calibration_cache(tmp_path_factory):
    """Calibrations (and compiled code) in tests are measured / built, never taken from a developer's cache.

    The data sets (MNIST, Fashion-MNIST) stay in the developer's data folder: they are checked against
    their recorded SHA-256 on every load, and fetching them anew in every test session only costs time.
    """
    path = tmp_path_factory.mktemp("cortexsim_cache")
    old = {name: os.environ.get(name) for name in ("CORTEXSIM_CACHE_DIR", "CORTEXSIM_DATA_DIR")}
    os.environ["CORTEXSIM_DATA_DIR"] = str(data_dir())        # resolved before the cache moves
    os.environ["CORTEXSIM_CACHE_DIR"] = str(path)
    yield path
    for name, value in old.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def benchmark_script():
    """Load a script of ``benchmarks/`` as a module: ``benchmark_script("spiking_rbm_data")`` (a fresh module per
    call, so a test's monkeypatching stays in it)."""

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"{name}_under_test", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
