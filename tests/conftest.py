"""Shared test set-up: a fresh calibration cache per test session, no GUI backend for matplotlib."""

import os

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session", autouse=True)
def fresh_calibration_cache(tmp_path_factory):
    """Calibrations in tests are measured, never taken from a developer's cache."""
    path = tmp_path_factory.mktemp("cortexsim_cache")
    old = os.environ.get("CORTEXSIM_CACHE_DIR")
    os.environ["CORTEXSIM_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("CORTEXSIM_CACHE_DIR", None)
    else:
        os.environ["CORTEXSIM_CACHE_DIR"] = old
