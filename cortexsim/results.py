"""Output folders, atomic JSON writes, library versions and machine information.

Every protocol writes its results through these helpers, so a run interrupted at any moment leaves
either the previous file or the new one, never half a file.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import math
import numbers
import os
import platform
import tempfile
import time
import zlib
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["to_jsonable", "write_json_atomic", "read_json", "output_dir", "write_results", "library_versions",
           "machine_info", "save_spiketrains", "save_arrays_atomic", "RESULTS_FILE", "CONFIG_FILE",
           "prepare_output_dir", "finish_output_dir", "file_lock", "readable_mode", "differences",
           "describe_differences", "check_structure", "encode_array", "decode_array"]

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
        if obj.dtype.kind in "biu" or (obj.dtype.kind == "f" and np.isfinite(obj).all()):
            return obj.tolist()     # plain numbers: no per-element conversion needed
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
        os.chmod(tmp, readable_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def encode_array(array) -> dict:
    """A float array as a compact, exact JSON value: its little-endian float64 bytes, zlib-compressed, base64.

    For large state in JSON checkpoints (e.g. the CD engine's per-network weight blocks): about 8 bytes per
    value (less for zeros) instead of ~20 characters, written and read without a per-number conversion, and
    exact (:func:`decode_array` returns the same bits).

    Examples
    --------
    >>> value = encode_array(np.array([[0.1, 0.0], [0.0, -2.5]]))
    >>> value["shape"], decode_array(value).tolist()
    ([2, 2], [[0.1, 0.0], [0.0, -2.5]])
    """
    data = np.ascontiguousarray(array, dtype="<f8")
    return {"encoding": "float64-zlib-base64", "shape": list(data.shape),
            "data": base64.b64encode(zlib.compress(data.tobytes(), 1)).decode("ascii")}


def decode_array(value: dict) -> np.ndarray:
    """The array written by :func:`encode_array`; ValueError naming the problem if ``value`` is not one."""
    if not isinstance(value, dict) or value.get("encoding") != "float64-zlib-base64":
        found = value.get("encoding") if isinstance(value, dict) else type(value).__name__
        raise ValueError(f"not an array written by encode_array (encoding float64-zlib-base64), found {found!r}")
    try:
        raw = zlib.decompress(base64.b64decode(value["data"]))
        shape = tuple(int(k) for k in value["shape"])
        return np.frombuffer(raw, dtype="<f8").reshape(shape).astype(float)
    except (KeyError, TypeError, ValueError, zlib.error) as exc:
        raise ValueError(f"corrupt encoded array: {exc}") from None


def readable_mode() -> int:
    """The permission bits of a new file under the current umask (``0o666 & ~umask``).

    ``tempfile.mkstemp`` creates files with mode 0600; atomic writes set this mode before the rename,
    so results are as readable as any other file the user writes.
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def file_lock(path: str | os.PathLike):
    """Hold an exclusive lock (``fcntl.flock``) on ``path`` + ``.lock`` while the block runs.

    Used around read-modify-write of files that several processes share (the calibration caches),
    so that concurrent writers do not lose each other's entries.

    Examples
    --------
    >>> with file_lock(cache_path):
    ...     cache = read_json(cache_path); cache[key] = entry; write_json_atomic(cache_path, cache)
    """
    lock_path = Path(f"{os.fspath(path)}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield lock_path
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def save_arrays_atomic(path: str | os.PathLike, **arrays) -> Path:
    """Write numpy ``arrays`` to a compressed ``.npz`` file atomically (read with ``numpy.load``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    try:
        np.savez_compressed(tmp, **{name: np.asarray(value) for name, value in arrays.items()})
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
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


#: The record of the run that owns an output folder (written by :func:`prepare_output_dir`).
RUN_RECORD = "cortexsim_run.json"
#: Files that mark a folder as holding a run's results (also for folders written before run records).
RESULT_FILES = ("results.json", "config.json", "checkpoint.json")
#: Suffixes of the files a run writes; only such files are removed by ``overwrite``.
OUTPUT_SUFFIXES = (".json", ".png", ".pdf", ".svg", ".pkl", ".npz", ".npy", ".csv", ".txt", ".html")


def _check_folder_path(path: Path, option: str) -> None:
    """``path`` can become a folder: no part of it is a file; ValueError naming ``option`` otherwise."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} exists and is not a folder")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise ValueError(f"{option} {path}: {ancestor} is a file, not a folder")


def _make_writable_folder(path: Path, option: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".cortexsim-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"{option} {path} is not a writable folder: {exc.strerror or exc}") from None


def _previous_run(path: Path) -> dict | None:
    """What is known about the run whose results are in ``path`` (None if the folder holds none)."""
    record_path = path / RUN_RECORD
    if record_path.is_file():
        try:
            record = read_json(record_path)
        except (ValueError, OSError):
            record = {}
        return record if isinstance(record, dict) else {}
    found = [name for name in RESULT_FILES if (path / name).exists()]
    return {"legacy_files": found} if found else None


def _files_of_run(path: Path, record: dict) -> list[Path]:
    """Files the run recorded in ``record`` wrote into ``path``."""
    if "legacy_files" in record:
        names = set(record["legacy_files"])
        try:
            files = read_json(path / "results.json").get("files", {})
            names |= {Path(str(v)).name for v in (files.values() if isinstance(files, dict) else files)}
        except (ValueError, OSError, AttributeError):
            pass
        return [path / name for name in sorted(names) if (path / name).is_file()]
    keep = set(record.get("preexisting", []))
    return [entry for entry in sorted(path.iterdir())
            if entry.is_file() and entry.name not in keep and entry.suffix in OUTPUT_SUFFIXES]


def prepare_output_dir(path: str | os.PathLike, command: str, *, overwrite: bool = False, resume: bool = False,
                       resumable: bool = False, argv: list[str] | None = None, option: str = "--out") -> Path:
    """Check, create and claim the output folder of a run, before any simulation.

    * Every part of ``path`` that exists must be a folder, and the folder must be writable (a probe
      file is written and removed), so a run never loses its results at the end.
    * A folder holding another run's results (``results.json``, ``config.json``, ``checkpoint.json``
      or a run record) is refused unless ``overwrite``; then that run's files are removed first, so
      the folder never mixes two runs. A folder holding a checkpoint of a ``resumable`` command is
      refused with a hint to ``--resume`` it. Files that were in the folder before that run started
      are never touched.
    * With ``resume`` the folder must hold a checkpoint written by the same ``command``.

    The claim is a run record, ``cortexsim_run.json`` (command, arguments, start time, status);
    :func:`finish_output_dir` marks it finished.

    Parameters
    ----------
    path : path
        The output folder.
    command : str
        The subcommand that writes into it (e.g. ``"train-cd"``).
    overwrite, resume : bool
        The user's ``--overwrite`` / ``--resume``.
    resumable : bool
        Whether ``command`` can continue from a checkpoint (``--resume``).
    argv : list of str, optional
        The command line, stored in the run record.
    option : str
        How the user gave ``path`` (for messages).

    Raises
    ------
    ValueError
        Naming the option, the folder and what to do.
    """
    path = Path(path)
    if overwrite and resume:
        raise ValueError("--overwrite and --resume exclude each other: --resume continues the run in the "
                         "folder, --overwrite deletes it")
    _check_folder_path(path, option)
    previous = _previous_run(path) if path.is_dir() else None
    has_checkpoint = (path / "checkpoint.json").is_file()
    if resume:
        if not has_checkpoint:
            raise ValueError(f"{option} {path}: no checkpoint.json to resume from")
        if previous and previous.get("command") not in (None, command):
            raise ValueError(f"{option} {path} holds a checkpoint of `{previous['command']}`, not of `{command}`")
    elif previous is not None:
        unfinished_empty = (previous.get("status", "finished") != "finished" and not has_checkpoint
                            and not (path / "results.json").exists())
        if not overwrite and not unfinished_empty:
            what = f"`{previous['command']}`" if previous.get("command") else "an earlier run"
            if has_checkpoint and previous.get("status") != "finished":
                command_name = previous.get("command", "train-cd")
                again = f"--resume {path}" if resumable else f"`cortexsim {command_name} ... --resume {path}`"
                raise ValueError(f"{option} {path} holds the checkpoint of an unfinished run ({what}): continue it "
                                 f"with {again}, choose another folder, or pass --overwrite (deletes it)")
            raise ValueError(f"{option} {path} holds the results of {what}; choose another folder, or pass "
                             f"--overwrite to replace them")
        for stale in _files_of_run(path, previous):
            stale.unlink()
        (path / RUN_RECORD).unlink(missing_ok=True)
    _make_writable_folder(path, option)
    if resume:      # the record of the run being continued is updated when this attempt ends
        return path
    record = {"command": command, "preexisting": sorted(entry.name for entry in path.iterdir()),
              "status": "running", "argv": list(argv) if argv is not None else None,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_json_atomic(path / RUN_RECORD, record)
    return path


def finish_output_dir(path: str | os.PathLike, status: str = "finished", resumed: bool = False,
                      argv: list[str] | None = None) -> None:
    """Mark the run record of ``path`` (see :func:`prepare_output_dir`) with ``status``.

    A run refused by its checks (``status="failed"``) leaves no trace: a new folder holding only its
    record is removed again, and a refused ``--resume`` leaves the record of the run it would have
    continued untouched.
    """
    path = Path(path)
    record_path = path / RUN_RECORD
    if status == "failed" and resumed:
        return
    if not record_path.is_file():
        if not resumed:
            return
        record = {"command": None, "preexisting": []}      # a folder from before run records
    else:
        record = read_json(record_path)
    if status == "failed" and not record.get("preexisting") and [p.name for p in path.iterdir()] == [RUN_RECORD]:
        record_path.unlink()
        with contextlib.suppress(OSError):
            path.rmdir()
        return
    if resumed:
        record.setdefault("resumed", []).append({"argv": argv, "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    record.update(status=status, ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json_atomic(record_path, record)


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


def differences(old, new, path: str = "") -> list[tuple[str, object, object]]:
    """Leaves in which two JSON-like values differ: ``[(key path, old value, new value), ...]``.

    Dicts are compared key by key (a missing key shows as ``<missing>``), lists of equal length
    element by element; anything else by equality.

    Examples
    --------
    >>> differences({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}})
    [('b.c', 2, 3)]
    """
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            found += differences(old.get(key, "<missing>"), new.get(key, "<missing>"), sub)
        return found
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)) and len(old) == len(new):
        if all(not isinstance(v, (dict, list, tuple)) for v in list(old) + list(new)):
            return [] if list(old) == list(new) else [(path, list(old), list(new))]
        found = []
        for k, (a, b) in enumerate(zip(old, new)):
            found += differences(a, b, f"{path}[{k}]")
        return found
    return [] if old == new else [(path, old, new)]


def describe_differences(old, new, limit: int = 8) -> str:
    """``differences`` as text: ``"key: old -> new; ..."`` (at most ``limit`` entries, long values shortened)."""
    def short(value) -> str:
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."

    found = differences(old, new)
    parts = [f"{key or '<value>'}: {short(a)} -> {short(b)}" for key, a, b in found[:limit]]
    if len(found) > limit:
        parts.append(f"... and {len(found) - limit} more")
    return "; ".join(parts)


def check_structure(template, data, where: str, path: str = "") -> None:
    """Check that JSON ``data`` has the structure of ``template``; ValueError naming ``where`` and the key.

    Rules: every key of a template dict must be present; a number must be a finite number (an int
    where the template has an int), a string a string, a bool a bool; a template list of length
    ``n > 0`` needs a list of length ``n`` whose elements match; an empty template list accepts any
    list whose leaves are numbers, strings, bools or None; a ``None`` in the template accepts anything.
    """
    key = path or "<top level>"
    if template is None:
        return
    if isinstance(template, dict):
        if not isinstance(data, dict):
            raise ValueError(f"{where}: {key} must be a mapping, got {type(data).__name__}")
        for name, sub in template.items():
            if name not in data:
                raise ValueError(f"{where}: key {(path + '.' if path else '') + str(name)} is missing")
            check_structure(sub, data[name], where, f"{path}.{name}" if path else str(name))
        return
    if isinstance(template, (list, tuple)):
        if not isinstance(data, list):
            raise ValueError(f"{where}: {key} must be a list, got {data!r:.60}")
        if template and len(data) != len(template):
            raise ValueError(f"{where}: {key} must have {len(template)} entries, got {len(data)}")
        if template:
            for k, (sub, value) in enumerate(zip(template, data)):
                check_structure(sub, value, where, f"{path}[{k}]")
        else:
            _check_leaves(data, where, path)
        return
    if isinstance(template, bool):
        if not isinstance(data, bool):
            raise ValueError(f"{where}: {key} must be true or false, got {data!r:.60}")
    elif isinstance(template, numbers.Integral):
        if isinstance(data, bool) or not isinstance(data, numbers.Integral):
            raise ValueError(f"{where}: {key} must be an integer, got {data!r:.60}")
    elif isinstance(template, numbers.Real):
        if isinstance(data, bool) or not isinstance(data, numbers.Real) or not math.isfinite(data):
            raise ValueError(f"{where}: {key} must be a finite number, got {data!r:.60}")
    elif isinstance(template, str) and not isinstance(data, str):
        raise ValueError(f"{where}: {key} must be a string, got {data!r:.60}")


def _check_leaves(data, where: str, path: str) -> None:
    if isinstance(data, list):
        for k, value in enumerate(data):
            _check_leaves(value, where, f"{path}[{k}]")
    elif isinstance(data, dict):
        for name, value in data.items():
            _check_leaves(value, where, f"{path}.{name}")
    elif data is not None and not isinstance(data, (str, bool, numbers.Real)):
        raise ValueError(f"{where}: {path} holds {data!r:.60}, not a JSON number")
    elif isinstance(data, numbers.Real) and not isinstance(data, bool) and not math.isfinite(data):
        raise ValueError(f"{where}: {path} must be finite, got {data!r}")
