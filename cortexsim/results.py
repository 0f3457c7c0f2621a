"""Output folders, atomic JSON writes, library versions and machine information.

Every protocol writes its results through these helpers, so a run interrupted at any moment leaves
either the previous file or the new one, never half a file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["to_jsonable", "write_json_atomic", "read_json", "output_dir", "write_results", "library_versions",
           "machine_info", "save_spiketrains", "RESULTS_FILE", "CONFIG_FILE"]

#: File names every protocol writes into its output folder.
RESULTS_FILE, CONFIG_FILE = "results.json", "config.json"

#: Distributions whose versions a result records.
RECORDED_DISTRIBUTIONS = ("cortexsim", "numpy", "scipy", "PyNN", "nest-simulator", "brian2", "neo",
                          "elephant", "matplotlib", "scikit-learn")


def to_jsonable(obj):
    """Convert dataclasses, numpy scalars/arrays, paths and tuples into JSON-serialisable values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json_atomic(path: str | os.PathLike, data) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(to_jsonable(data), handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_json(path: str | os.PathLike):
    """Read a JSON file; ValueError naming the file if it is not valid JSON."""
    path = Path(path)
    try:
        with open(path) as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


def output_dir(path: str | os.PathLike) -> Path:
    """Create (if needed) and return an output folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"output path {path} exists and is not a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_results(out_dir: str | os.PathLike, results: dict, config=None, chip: dict | None = None) -> Path:
    """Write a run's ``results.json`` (and ``config.json``) atomically: the one way results reach disk.

    Parameters
    ----------
    out_dir : path
        Output folder (created if needed).
    results : dict
        The result's ``to_dict()``.
    config : dataclass, optional
        The run's config, written as ``config.json`` (``cortexsim SUBCOMMAND --config FILE`` re-runs it)
        and recorded under ``"config"`` in ``results.json`` if not already there.
    chip : dict, optional
        The chip a chip backend ran on (its booking: chip, chip seed, calibration); recorded under
        ``"chip"``. Protocols pass :func:`cortexsim.backends.registry.chip_booking` of their backend.

    Returns
    -------
    Path
        The ``results.json`` written.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_results(folder, {"dkl": 0.01}, chip={"chip": "bss2"}).name
    'results.json'
    """
    out = output_dir(out_dir)
    data = dict(results)
    if config is not None:
        config_dict = to_jsonable(config)
        write_json_atomic(out / CONFIG_FILE, config_dict)
        data.setdefault("config", config_dict)
    if chip is not None:
        data["chip"] = dict(chip)
    return write_json_atomic(out / RESULTS_FILE, data)


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on ("not installed" if absent)."""
    versions = {"python": platform.python_version()}
    for name in RECORDED_DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine_info() -> dict:
    """Platform, processor and CPU count of this machine."""
    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "node": platform.node()}


def save_spiketrains(spiketrains, path: str | os.PathLike, name: str = "spikes") -> Path:
    """Save ``neo.SpikeTrain`` objects in a neo Block to ``path`` (neo's PickleIO, read by ``neo.io.PickleIO``)."""
    import neo

    path = Path(path)
    block = neo.Block(name=name)
    segment = neo.Segment(name=name)
    segment.spiketrains.extend(spiketrains)
    block.segments.append(segment)
    tmp = path.with_name(f".{path.name}.tmp")
    neo.io.PickleIO(filename=str(tmp)).write_block(block)
    os.replace(tmp, path)
    return path
